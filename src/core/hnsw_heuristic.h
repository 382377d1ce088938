// Neighbour selection: the HNSW heuristic (Malkov & Yashunin, Algorithm 4,
// without extending the candidates), which keeps a candidate only if it is
// closer to the base element than to every neighbour already kept, so that
// links point in diverse directions.
#pragma once

#include <cstddef>

#include "core/distance.h"
#include "core/hnsw_types.h"

namespace vecext::hnsw {

// Chooses at most m of the n candidates of one base element.
// REQUIRES: cands[0..n) sorted by Closer (ascending distance to the base);
//   vecs[i] points to candidate i's vector of `dim` floats; `dist` is the
//   index distance that produced cands[i].distance (symmetric); out has room
//   for min(n, m) indices; 1 <= m <= kMaxLinks.
// When n <= m every candidate is kept. Otherwise candidates are taken in
// order, each kept unless dist(it, kept) < its distance to the base for some
// kept neighbour; with keep_pruned, pruned candidates then fill the
// remaining places closest first. Writes the chosen indices in ascending
// distance order to out and returns how many.
int SelectNeighbors(const Candidate* cands, const float* const* vecs, int n, int m, std::size_t dim,
                    DistanceFn dist, bool keep_pruned, int* out);

// The same over any element representation (e.g. SQ8 codes): pair(i, j)
// returns the index distance between candidates i and j.
template <class PairDistance>
int SelectNeighborsBy(const Candidate* cands, int n, int m, const PairDistance& pair, bool keep_pruned, int* out) {
  if (n <= m) {
    for (int i = 0; i < n; i++) out[i] = i;
    return n;
  }
  int kept = 0;
  for (int i = 0; i < n && kept < m; i++) {
    bool good = true;
    for (int j = 0; j < kept; j++) {
      if (pair(i, out[j]) < cands[i].distance) {
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
