// AVX-512 distance kernels (compiled with -mavx512f -mavx512bw -mavx512vl;
// run only when the CPU has them, see KernelsFor in distance.cpp).
//
// Layout of every kernel: a main loop over 64 floats with 4 independent
// accumulators, a loop over 16 floats, then one masked load for the last
// 1..15 floats (masked-out lanes read as 0 and never fault, so nothing past
// a[n) or b[n) is touched). Cosine carries 3 sums in 4 accumulators each
// (12 of the 32 zmm registers).
#include "core/distance_internal.h"

#if VECEXT_DISTANCE_X86

#include <immintrin.h>

namespace vecext {
namespace {

// REQUIRES: 1 <= r <= 15.
inline __mmask16 TailMask(std::size_t r) { return static_cast<__mmask16>((1u << r) - 1u); }

// Sum of the 16 lanes. (Not _mm512_reduce_add_ps nor _mm512_castps512_ps256:
// in GCC 12 both go through _mm256_undefined_pd, which trips
// -Werror=uninitialized; the zero-masked extracts compile to the same code.)
inline float HorizontalSum(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 y = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 0)),
                                 _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 1)));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps(y, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline __m512 Abs(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

float L2SquaredAvx512(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps();
  __m512 s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps();
  __m512 s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float InnerProductAvx512(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps();
  __m512 s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps();
  __m512 s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// One step of the cosine sums over 16 floats.
inline void CosineStep(__m512 va, __m512 vb, __m512& dot, __m512& aa, __m512& bb) {
  dot = _mm512_fmadd_ps(va, vb, dot);
  aa = _mm512_fmadd_ps(va, va, aa);
  bb = _mm512_fmadd_ps(vb, vb, bb);
}

float CosineAvx512(const float* a, const float* b, std::size_t n) {
  __m512 dot0 = _mm512_setzero_ps(), dot1 = dot0, dot2 = dot0, dot3 = dot0;
  __m512 aa0 = dot0, aa1 = dot0, aa2 = dot0, aa3 = dot0;
  __m512 bb0 = dot0, bb1 = dot0, bb2 = dot0, bb3 = dot0;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    CosineStep(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), dot0, aa0, bb0);
    CosineStep(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), dot1, aa1, bb1);
    CosineStep(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), dot2, aa2, bb2);
    CosineStep(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), dot3, aa3, bb3);
  }
  for (; i + 16 <= n; i += 16) {
    CosineStep(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), dot0, aa0, bb0);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    CosineStep(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), dot1, aa1, bb1);
  }
  return distance_internal::CosineFromSums(
      HorizontalSum(_mm512_add_ps(_mm512_add_ps(dot0, dot1), _mm512_add_ps(dot2, dot3))),
      HorizontalSum(_mm512_add_ps(_mm512_add_ps(aa0, aa1), _mm512_add_ps(aa2, aa3))),
      HorizontalSum(_mm512_add_ps(_mm512_add_ps(bb0, bb1), _mm512_add_ps(bb2, bb3))));
}

float L1Avx512(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps();
  __m512 s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps();
  __m512 s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, Abs(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
    s1 = _mm512_add_ps(s1, Abs(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16))));
    s2 = _mm512_add_ps(s2, Abs(_mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32))));
    s3 = _mm512_add_ps(s3, Abs(_mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48))));
  }
  for (; i + 16 <= n; i += 16) {
    s0 = _mm512_add_ps(s0, Abs(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    s1 = _mm512_add_ps(s1, Abs(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i))));
  }
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float SquaredNormAvx512(const float* a, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps();
  __m512 s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps();
  __m512 s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 a0 = _mm512_loadu_ps(a + i);
    const __m512 a1 = _mm512_loadu_ps(a + i + 16);
    const __m512 a2 = _mm512_loadu_ps(a + i + 32);
    const __m512 a3 = _mm512_loadu_ps(a + i + 48);
    s0 = _mm512_fmadd_ps(a0, a0, s0);
    s1 = _mm512_fmadd_ps(a1, a1, s1);
    s2 = _mm512_fmadd_ps(a2, a2, s2);
    s3 = _mm512_fmadd_ps(a3, a3, s3);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 a0 = _mm512_loadu_ps(a + i);
    s0 = _mm512_fmadd_ps(a0, a0, s0);
  }
  if (i < n) {
    const __m512 a1 = _mm512_maskz_loadu_ps(TailMask(n - i), a + i);
    s1 = _mm512_fmadd_ps(a1, a1, s1);
  }
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

}  // namespace

namespace distance_internal {

const DistanceKernels kAvx512Kernels = {
    &L2SquaredAvx512, &InnerProductAvx512, &CosineAvx512, &L1Avx512, "avx512", &SquaredNormAvx512,
};

}  // namespace distance_internal
}  // namespace vecext

#endif  // VECEXT_DISTANCE_X86
