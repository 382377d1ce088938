// The neighbour-selection heuristic (hnsw_heuristic.h).
#include "core/hnsw_heuristic.h"

namespace vecext::hnsw {

int SelectNeighbors(const Candidate* cands, const float* const* vecs, int n, int m, std::size_t dim,
                    DistanceFn dist, bool keep_pruned, int* out) {
  if (n <= m) {
    for (int i = 0; i < n; i++) out[i] = i;
    return n;
  }
  int kept = 0;
  for (int i = 0; i < n && kept < m; i++) {
    bool good = true;
    for (int j = 0; j < kept; j++) {
      if (dist(vecs[i], vecs[out[j]], dim) < cands[i].distance) {
        good = false;
        break;
      }
    }
    if (good) out[kept++] = i;
  }
  if (!keep_pruned || kept == m) return kept;
  // Every candidate was examined (kept < m). Merge the kept ones with the
  // closest rejected ones, in candidate (ascending distance) order.
  int merged[kMaxLinks];
  int total = 0;
  int next_kept = 0;
  int rejected_room = m - kept;
  for (int c = 0; c < n && total < m; c++) {
    if (next_kept < kept && out[next_kept] == c) {
      merged[total++] = c;
      next_kept++;
    } else if (rejected_room > 0) {
      merged[total++] = c;
      rejected_room--;
    }
  }
  for (int t = 0; t < total; t++) out[t] = merged[t];
  return total;
}

}  // namespace vecext::hnsw
