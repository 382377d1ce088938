// Distance kernels over float32 vectors, SIMD-dispatched at run time.
#pragma once

#include <cstddef>

namespace vecext {

// A distance kernel. REQUIRES: a and b point to n floats (n >= 1); no alignment.
using DistanceFn = float (*)(const float* a, const float* b, std::size_t n);

enum class Metric : unsigned char { kL2 = 0, kInnerProduct = 1, kCosine = 2, kL1 = 3 };

// The kernels chosen for this CPU (AVX-512, AVX2+FMA, or scalar).
struct DistanceKernels {
  DistanceFn l2_squared;     // sum (a-b)^2
  DistanceFn inner_product;  // sum a*b
  DistanceFn cosine;         // 1 - a.b / (|a||b|), clamped to [0, 2]; NaN if a norm is 0
  DistanceFn l1;             // sum |a-b|
  const char* isa;           // "avx512", "avx2" or "scalar"
};

// The kernels for this CPU, chosen once (thread-safe). Setting the
// environment variable VECEXT_ISA to "scalar" or "avx2" caps the choice
// (for tests and benchmarks).
const DistanceKernels& Kernels();

// Kernels of one instruction set, or nullptr if this CPU cannot run them.
const DistanceKernels* KernelsFor(const char* isa);

// Scalar kernels (always available; the portable fallback).
float L2SquaredScalar(const float* a, const float* b, std::size_t n);
float InnerProductScalar(const float* a, const float* b, std::size_t n);
float CosineScalar(const float* a, const float* b, std::size_t n);
float L1Scalar(const float* a, const float* b, std::size_t n);

// Squared norm sum a*a (dispatched).
float SquaredNorm(const float* a, std::size_t n);

}  // namespace vecext
