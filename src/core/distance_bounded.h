// Squared L2 distance with an early exit: for searches that only need to know
// whether a distance is below a bound (HNSW layer search and neighbour
// selection reject most of the vectors they score).
#pragma once

#include <cstddef>

#include "core/distance.h"

namespace vecext {

// Returns l2(a, b, n) exactly (bit for bit the result of that kernel) when it
// is below `bound`; otherwise some value r with bound <= r <= l2(a, b, n)
// (a partial sum: the rest of the vectors is not read). So `result < bound`
// is true exactly when `l2(a, b, n) < bound`, and a caller that keeps only
// distances below the bound behaves as with l2 itself. NaN inputs give NaN.
// REQUIRES: as for DistanceFn.
using BoundedDistanceFn = float (*)(const float* a, const float* b, std::size_t n, float bound);

// The bounded kernel that matches `l2` (one of the l2_squared kernels of
// Kernels() / KernelsFor()), or nullptr when there is none.
BoundedDistanceFn BoundedL2For(DistanceFn l2);

namespace distance_internal {
float L2SquaredBoundedScalar(const float* a, const float* b, std::size_t n, float bound);
#if defined(__x86_64__) || defined(__i386__)
float L2SquaredBoundedAvx2(const float* a, const float* b, std::size_t n, float bound);
float L2SquaredBoundedAvx512(const float* a, const float* b, std::size_t n, float bound);
#endif
}  // namespace distance_internal

}  // namespace vecext
