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

}  // namespace vecext::hnsw
