// The neighbour-selection heuristic (hnsw_heuristic.h).
#include "core/hnsw_heuristic.h"

namespace vecext::hnsw {

int SelectNeighbors(const Candidate* cands, const float* const* vecs, int n, int m, std::size_t dim,
                    DistanceFn dist, bool keep_pruned, int* out) {
  return SelectNeighborsBy(
      cands, n, m, [&](int i, int j) { return dist(vecs[i], vecs[j], dim); }, keep_pruned, out);
}

}  // namespace vecext::hnsw
