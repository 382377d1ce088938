// AVX2 + FMA distance kernels (compiled with -mavx2 -mfma; run only when the
// CPU has both, see KernelsFor in distance.cpp).
//
// Layout of every kernel: a main loop over 32 floats with 4 independent
// accumulators (hides the 4-cycle FMA/add latency; two loads per cycle is the
// limit), a loop over 8 floats, then one masked load for the last 1..7 floats
// (masked-out lanes read as 0 and never fault, so nothing past a[n) or b[n)
// is touched). Cosine carries 3 sums, so it unrolls by 16 (6 accumulators).
#include "core/distance_internal.h"

#if VECEXT_DISTANCE_X86

#include <immintrin.h>

#include <cstdint>

namespace vecext {
namespace {

// kTailMask + 8 - r is a mask whose first r lanes are set.
alignas(64) constexpr std::int32_t kTailMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                    0,  0,  0,  0,  0,  0,  0,  0};

// REQUIRES: 1 <= r <= 7.
inline __m256i TailMask(std::size_t r) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTailMask + 8 - r));
}

inline float HorizontalSum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline __m256 Abs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

float L2SquaredAvx2(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    const __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    const __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
    s2 = _mm256_fmadd_ps(d2, d2, s2);
    s3 = _mm256_fmadd_ps(d3, d3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    const __m256i m = TailMask(n - i);
    const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(d, d, s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float InnerProductAvx2(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  if (i < n) {
    const __m256i m = TailMask(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float CosineAvx2(const float* a, const float* b, std::size_t n) {
  __m256 dot0 = _mm256_setzero_ps();
  __m256 dot1 = _mm256_setzero_ps();
  __m256 aa0 = _mm256_setzero_ps();
  __m256 aa1 = _mm256_setzero_ps();
  __m256 bb0 = _mm256_setzero_ps();
  __m256 bb1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = _mm256_loadu_ps(a + i);
    const __m256 b0 = _mm256_loadu_ps(b + i);
    const __m256 a1 = _mm256_loadu_ps(a + i + 8);
    const __m256 b1 = _mm256_loadu_ps(b + i + 8);
    dot0 = _mm256_fmadd_ps(a0, b0, dot0);
    aa0 = _mm256_fmadd_ps(a0, a0, aa0);
    bb0 = _mm256_fmadd_ps(b0, b0, bb0);
    dot1 = _mm256_fmadd_ps(a1, b1, dot1);
    aa1 = _mm256_fmadd_ps(a1, a1, aa1);
    bb1 = _mm256_fmadd_ps(b1, b1, bb1);
  }
  if (i + 8 <= n) {
    const __m256 a0 = _mm256_loadu_ps(a + i);
    const __m256 b0 = _mm256_loadu_ps(b + i);
    dot0 = _mm256_fmadd_ps(a0, b0, dot0);
    aa0 = _mm256_fmadd_ps(a0, a0, aa0);
    bb0 = _mm256_fmadd_ps(b0, b0, bb0);
    i += 8;
  }
  if (i < n) {
    const __m256i m = TailMask(n - i);
    const __m256 a1 = _mm256_maskload_ps(a + i, m);
    const __m256 b1 = _mm256_maskload_ps(b + i, m);
    dot1 = _mm256_fmadd_ps(a1, b1, dot1);
    aa1 = _mm256_fmadd_ps(a1, a1, aa1);
    bb1 = _mm256_fmadd_ps(b1, b1, bb1);
  }
  return distance_internal::CosineFromSums(HorizontalSum(_mm256_add_ps(dot0, dot1)),
                                           HorizontalSum(_mm256_add_ps(aa0, aa1)),
                                           HorizontalSum(_mm256_add_ps(bb0, bb1)));
}

float L1Avx2(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, Abs(_mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
    s1 = _mm256_add_ps(s1, Abs(_mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8))));
    s2 = _mm256_add_ps(s2, Abs(_mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16))));
    s3 = _mm256_add_ps(s3, Abs(_mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24))));
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_add_ps(s0, Abs(_mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
  }
  if (i < n) {
    const __m256i m = TailMask(n - i);
    s1 = _mm256_add_ps(s1, Abs(_mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m))));
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float SquaredNormAvx2(const float* a, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256 a0 = _mm256_loadu_ps(a + i);
    const __m256 a1 = _mm256_loadu_ps(a + i + 8);
    const __m256 a2 = _mm256_loadu_ps(a + i + 16);
    const __m256 a3 = _mm256_loadu_ps(a + i + 24);
    s0 = _mm256_fmadd_ps(a0, a0, s0);
    s1 = _mm256_fmadd_ps(a1, a1, s1);
    s2 = _mm256_fmadd_ps(a2, a2, s2);
    s3 = _mm256_fmadd_ps(a3, a3, s3);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 a0 = _mm256_loadu_ps(a + i);
    s0 = _mm256_fmadd_ps(a0, a0, s0);
  }
  if (i < n) {
    const __m256 a1 = _mm256_maskload_ps(a + i, TailMask(n - i));
    s1 = _mm256_fmadd_ps(a1, a1, s1);
  }
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

}  // namespace

namespace distance_internal {

const DistanceKernels kAvx2Kernels = {
    &L2SquaredAvx2, &InnerProductAvx2, &CosineAvx2, &L1Avx2, "avx2", &SquaredNormAvx2,
};

}  // namespace distance_internal
}  // namespace vecext

#endif  // VECEXT_DISTANCE_X86
