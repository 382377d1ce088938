// Scalar distance kernels and the run-time choice of kernels (distance.h).
#include "core/distance.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/distance_internal.h"

// The scalar kernels define the reference semantics: one float accumulator,
// summed in index order, each product rounded before it is added. Without
// -ffast-math the compiler may neither reassociate nor vectorize these float
// sums. It may still fuse a*b+c into one FMA when the target has FMA (GCC
// does by default in GNU mode, e.g. on aarch64); the pragmas below forbid
// that, so results do not depend on the compiler or the target.
#if defined(__FAST_MATH__)
#error "src/core/distance.cpp must not be compiled with -ffast-math"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace vecext {

float L2SquaredScalar(const float* a, const float* b, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

float InnerProductScalar(const float* a, const float* b, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) sum += a[i] * b[i];
  return sum;
}

float CosineScalar(const float* a, const float* b, std::size_t n) {
  float dot = 0.0f;
  float norm_a = 0.0f;
  float norm_b = 0.0f;
  for (std::size_t i = 0; i < n; i++) {
    dot += a[i] * b[i];
    norm_a += a[i] * a[i];
    norm_b += b[i] * b[i];
  }
  return distance_internal::CosineFromSums(dot, norm_a, norm_b);
}

float L1Scalar(const float* a, const float* b, std::size_t n) {
  float sum = 0.0f;
  // fabs, not d < 0 ? -d : d: the comparison compiles to a branch that
  // mispredicts on every other element of real data.
  for (std::size_t i = 0; i < n; i++) sum += std::fabs(a[i] - b[i]);
  return sum;
}

float SquaredNormScalar(const float* a, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) sum += a[i] * a[i];
  return sum;
}

namespace distance_internal {

const DistanceKernels kScalarKernels = {
    &L2SquaredScalar, &InnerProductScalar, &CosineScalar, &L1Scalar, "scalar", &SquaredNormScalar,
};

}  // namespace distance_internal

namespace {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA, OS saves YMM state
  bool avx512 = false;  // AVX-512 F/BW/VL, OS saves ZMM state
};

CpuFeatures DetectCpu() {
  CpuFeatures f;
#if VECEXT_DISTANCE_X86
  // libgcc / compiler-rt also check XCR0, so a feature is reported only when
  // the OS saves the corresponding register state.
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = f.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#endif
  return f;
}

const CpuFeatures& Cpu() {
  static const CpuFeatures features = DetectCpu();  // thread-safe initialisation
  return features;
}

// Widest first.
const char* const kIsaOrder[] = {"avx512", "avx2", "scalar"};
constexpr std::size_t kIsaCount = sizeof(kIsaOrder) / sizeof(kIsaOrder[0]);

}  // namespace

const DistanceKernels* KernelsFor(const char* isa) {
  if (isa == nullptr) return nullptr;
  if (std::strcmp(isa, "scalar") == 0) return &distance_internal::kScalarKernels;
#if VECEXT_DISTANCE_X86
  if (std::strcmp(isa, "avx2") == 0) return Cpu().avx2 ? &distance_internal::kAvx2Kernels : nullptr;
  if (std::strcmp(isa, "avx512") == 0) {
    return Cpu().avx512 ? &distance_internal::kAvx512Kernels : nullptr;
  }
#endif
  return nullptr;
}

const DistanceKernels& SelectKernels(const char* cap) {
  std::size_t first = 0;
  if (cap != nullptr) {
    for (std::size_t i = 0; i < kIsaCount; i++) {
      if (std::strcmp(cap, kIsaOrder[i]) == 0) first = i;
    }
  }
  for (std::size_t i = first; i < kIsaCount; i++) {
    if (const DistanceKernels* k = KernelsFor(kIsaOrder[i])) return *k;
  }
  return distance_internal::kScalarKernels;
}

const DistanceKernels& Kernels() {
  static const DistanceKernels& kernels = SelectKernels(std::getenv("VECEXT_ISA"));
  return kernels;
}

DistanceFn KernelForMetric(const DistanceKernels& k, Metric metric) {
  switch (metric) {
    case Metric::kL2:
      return k.l2_squared;
    case Metric::kInnerProduct:
      return k.inner_product;
    case Metric::kCosine:
      return k.cosine;
    case Metric::kL1:
      return k.l1;
  }
  return k.l2_squared;
}

float SquaredNorm(const float* a, std::size_t n) { return Kernels().squared_norm(a, n); }

}  // namespace vecext
