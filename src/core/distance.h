// Distance kernels over float32 vectors, SIMD-dispatched at run time.
//
// Every kernel accumulates in float (like pgvector). The SIMD kernels sum in
// a different order than the scalar ones, so results of different ISAs agree
// only up to float rounding (a few ulp times sqrt(n) relative to sum |term|).
#pragma once

#include <cstddef>

namespace vecext {

// A distance kernel. REQUIRES: a and b point to n floats (n >= 1); no alignment.
// Reads exactly a[0..n) and b[0..n), never past them.
using DistanceFn = float (*)(const float* a, const float* b, std::size_t n);

// A one-vector kernel. REQUIRES: a points to n floats (n >= 1); no alignment.
using NormFn = float (*)(const float* a, std::size_t n);

enum class Metric : unsigned char { kL2 = 0, kInnerProduct = 1, kCosine = 2, kL1 = 3 };

// The kernels of one instruction set.
struct DistanceKernels {
  DistanceFn l2_squared;     // sum (a-b)^2
  DistanceFn inner_product;  // sum a*b
  // 1 - a.b / sqrt(|a|^2 |b|^2), pgvector's semantics: the similarity is
  // clamped to [-1, 1], so the result is in [0, 2]. NaN if |a|^2 or |b|^2 is 0
  // in float (all-zero or all-denormal input), or if an input is NaN or the
  // float sums overflow; the caller decides what NaN means.
  DistanceFn cosine;
  DistanceFn l1;             // sum |a-b|
  const char* isa;           // "avx512", "avx2" or "scalar"
  NormFn squared_norm;       // sum a*a
};

// The kernels for this CPU, chosen once (thread-safe): the widest of
// AVX-512 (F/BW/VL), AVX2+FMA and scalar that the CPU and OS support. The
// environment variable VECEXT_ISA = "scalar" | "avx2" | "avx512", read at the
// first call, caps the choice (for tests and benchmarks); any other value is
// ignored.
const DistanceKernels& Kernels();

// Kernels of one instruction set ("scalar", "avx2" or "avx512"), or nullptr
// if the name is unknown or this CPU cannot run them.
const DistanceKernels* KernelsFor(const char* isa);

// The widest kernels this CPU can run whose ISA is not wider than `cap`.
// A null, empty or unknown cap means no cap. Kernels() is
// SelectKernels(getenv("VECEXT_ISA")), evaluated once.
const DistanceKernels& SelectKernels(const char* cap);

// The kernel of `metric` in `k` (cosine is the full cosine distance).
// REQUIRES: metric is a valid Metric.
DistanceFn KernelForMetric(const DistanceKernels& k, Metric metric);

// Scalar kernels (always available; the portable fallback). One float
// accumulator summed in index order, never fused into FMA: the result is the
// same on every compiler, target and optimisation level.
float L2SquaredScalar(const float* a, const float* b, std::size_t n);
float InnerProductScalar(const float* a, const float* b, std::size_t n);
float CosineScalar(const float* a, const float* b, std::size_t n);
float L1Scalar(const float* a, const float* b, std::size_t n);
float SquaredNormScalar(const float* a, std::size_t n);

// Squared norm sum a*a (dispatched).
float SquaredNorm(const float* a, std::size_t n);

}  // namespace vecext
