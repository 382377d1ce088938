// Shared by the distance kernel files (distance*.cpp) only: the per-ISA
// kernel tables and the cosine epilogue.
//
// The *_avx2.cpp / *_avx512.cpp files are compiled with wider instruction
// sets. Anything they share with other files must have internal linkage
// (static, anonymous namespace): an inline function with external linkage
// would be emitted in each file, and the linker could keep the AVX-512 copy
// for callers that run on any CPU.
#pragma once

#include <cmath>
#include <limits>

#include "core/distance.h"

#if defined(__x86_64__) || defined(__i386__)
#define VECEXT_DISTANCE_X86 1
#else
#define VECEXT_DISTANCE_X86 0
#endif

namespace vecext {
namespace distance_internal {

extern const DistanceKernels kScalarKernels;  // distance.cpp
#if VECEXT_DISTANCE_X86
extern const DistanceKernels kAvx2Kernels;    // distance_avx2.cpp
extern const DistanceKernels kAvx512Kernels;  // distance_avx512.cpp
#endif

// Cosine distance from float sums a.b, |a|^2 and |b|^2, as pgvector computes
// it: similarity in double, clamped to [-1, 1]; NaN if a norm is 0. NaN
// sums give NaN (the comparisons below are false for NaN).
static inline float CosineFromSums(float dot, float norm_a, float norm_b) {
  if (norm_a == 0.0f || norm_b == 0.0f) return std::numeric_limits<float>::quiet_NaN();
  double similarity =
      static_cast<double>(dot) / std::sqrt(static_cast<double>(norm_a) * static_cast<double>(norm_b));
  if (similarity > 1.0) {
    similarity = 1.0;
  } else if (similarity < -1.0) {
    similarity = -1.0;
  }
  return static_cast<float>(1.0 - similarity);
}

}  // namespace distance_internal
}  // namespace vecext
