// AVX-512 SQ8 kernels (compiled with -mavx512f -mavx512bw -mavx512vl; used
// only when the CPU has them, see Sq8KernelsFor in sq8.cpp). Semantics in sq8.h.
//
// Layout of every kernel: a main loop over 64 elements with 4 independent
// accumulators, a loop over 16, then one masked step for the last 1..15
// (masked float and byte loads: masked-out lanes read as 0 and never fault,
// so nothing past a[n), s[n), c[n) or d[n) is touched). Codes widen with
// vpmovzxbd straight from memory (16 bytes per load).
#include "core/distance_internal.h"

#if VECEXT_DISTANCE_X86

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace vecext {
namespace sq8_internal {

float DotAvx512(const float* a, const std::uint8_t* c, std::size_t n);
float L2Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float L1Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float CodeL2Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
float CodeL1Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);

}  // namespace sq8_internal

namespace {

// REQUIRES: 1 <= r <= 15.
inline __mmask16 TailMask(std::size_t r) { return static_cast<__mmask16>((1u << r) - 1u); }

// The unmasked forms of vpmovzxbd, vcvtdq2ps and vpabsd go through
// _mm512_undefined_* in GCC 12, which trips -Werror=maybe-uninitialized;
// the zero-masked forms with every lane selected compile to the same code.
constexpr __mmask16 kAll = 0xffff;

// Codes c[0..16) as int32 lanes.
inline __m512i Codes16(const std::uint8_t* c) {
  return _mm512_maskz_cvtepu8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
}

// Codes c[i] for the lanes of m, the others 0.
inline __m512i CodesMasked(__mmask16 m, const std::uint8_t* c) {
  return _mm512_maskz_cvtepu8_epi32(kAll, _mm_maskz_loadu_epi8(m, c));
}

inline __m512 ToFloat(__m512i v) { return _mm512_maskz_cvtepi32_ps(kAll, v); }

// Sum of the 16 lanes (zero-masked extracts: see distance_avx512.cpp on GCC 12).
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

// d = a - s c (one rounding).
inline __m512 Residual(__m512 a, __m512 s, __m512i c) { return _mm512_fnmadd_ps(s, ToFloat(c), a); }

// One step of each kernel over 16 elements: full, or masked (the tail).
struct DotStep {
  const float* a;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m512& acc) const {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), ToFloat(Codes16(c + i)), acc);
  }
  void Tail(std::size_t i, __mmask16 m, __m512& acc) const {
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), ToFloat(CodesMasked(m, c + i)), acc);
  }
};

struct L2Step {
  const float* a;
  const float* s;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m512& acc) const {
    const __m512 d = Residual(_mm512_loadu_ps(a + i), _mm512_loadu_ps(s + i), Codes16(c + i));
    acc = _mm512_fmadd_ps(d, d, acc);
  }
  void Tail(std::size_t i, __mmask16 m, __m512& acc) const {
    const __m512 d = Residual(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, s + i), CodesMasked(m, c + i));
    acc = _mm512_fmadd_ps(d, d, acc);
  }
};

struct L1Step {
  const float* a;
  const float* s;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m512& acc) const {
    acc = _mm512_add_ps(acc, Abs(Residual(_mm512_loadu_ps(a + i), _mm512_loadu_ps(s + i), Codes16(c + i))));
  }
  void Tail(std::size_t i, __mmask16 m, __m512& acc) const {
    acc = _mm512_add_ps(
        acc, Abs(Residual(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, s + i), CodesMasked(m, c + i))));
  }
};

struct CodeL2Step {
  const float* s;
  const std::uint8_t* c;
  const std::uint8_t* d;
  static __m512 Apply(__m512 s, __m512i c, __m512i d, __m512 acc) {
    const __m512 t = _mm512_mul_ps(s, ToFloat(_mm512_sub_epi32(c, d)));
    return _mm512_fmadd_ps(t, t, acc);
  }
  void Prefetch(std::size_t i) const {
    __builtin_prefetch(c + i);
    __builtin_prefetch(d + i);
  }
  void operator()(std::size_t i, __m512& acc) const {
    acc = Apply(_mm512_loadu_ps(s + i), Codes16(c + i), Codes16(d + i), acc);
  }
  void Tail(std::size_t i, __mmask16 m, __m512& acc) const {
    acc = Apply(_mm512_maskz_loadu_ps(m, s + i), CodesMasked(m, c + i), CodesMasked(m, d + i), acc);
  }
};

struct CodeL1Step {
  const float* s;
  const std::uint8_t* c;
  const std::uint8_t* d;
  static __m512 Apply(__m512 s, __m512i c, __m512i d, __m512 acc) {
    return _mm512_fmadd_ps(s, ToFloat(_mm512_maskz_abs_epi32(kAll, _mm512_sub_epi32(c, d))), acc);
  }
  void Prefetch(std::size_t i) const {
    __builtin_prefetch(c + i);
    __builtin_prefetch(d + i);
  }
  void operator()(std::size_t i, __m512& acc) const {
    acc = Apply(_mm512_loadu_ps(s + i), Codes16(c + i), Codes16(d + i), acc);
  }
  void Tail(std::size_t i, __mmask16 m, __m512& acc) const {
    acc = Apply(_mm512_maskz_loadu_ps(m, s + i), CodesMasked(m, c + i), CodesMasked(m, d + i), acc);
  }
};

// The main loop prefetches the codes this many bytes ahead (only inside the
// array: never past c[n) or d[n)). The index's store prefetches the first
// 16 lines (1 KiB) of each element before scoring it; past that, rows of
// 1536 and more codes were waiting on memory: in the server, 100 queries
// against 20,000 x 3072 SQ8 rows ran 11% faster at ef_search 80 with it
// (bench/micro: pool_head/sq8_l2/avx512/3072 about 15% faster). Below
// 1024 codes it never fires. __builtin_prefetch, not _mm_prefetch: GCC 12
// dropped the latter here.
#ifndef VECEXT_SQ8_PREFETCH_AHEAD
#define VECEXT_SQ8_PREFETCH_AHEAD 1024
#endif
constexpr std::size_t kSq8PrefetchAhead = VECEXT_SQ8_PREFETCH_AHEAD;

// The common loop structure (see the top of the file). Always inlined into
// the exported kernels: at -O2 with -fstack-protector-strong (the server's
// flags) GCC otherwise calls it out of line with the step spilled to a
// canary-protected stack frame, which cost 10-15% at 128 dimensions.
template <class Step>
__attribute__((always_inline)) inline float Run(const Step& step, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps();
  __m512 s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps();
  __m512 s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (i + kSq8PrefetchAhead < n) step.Prefetch(i + kSq8PrefetchAhead);
    step(i, s0);
    step(i + 16, s1);
    step(i + 32, s2);
    step(i + 48, s3);
  }
  for (; i + 16 <= n; i += 16) step(i, s0);
  if (i < n) step.Tail(i, TailMask(n - i), s1);
  return HorizontalSum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

}  // namespace

namespace sq8_internal {

float DotAvx512(const float* a, const std::uint8_t* c, std::size_t n) { return Run(DotStep{a, c}, n); }

float L2Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n) { return Run(L2Step{a, s, c}, n); }

float L1Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n) { return Run(L1Step{a, s, c}, n); }

float CodeL2Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  return Run(CodeL2Step{s, c, d}, n);
}

float CodeL1Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  return Run(CodeL1Step{s, c, d}, n);
}

}  // namespace sq8_internal
}  // namespace vecext

#endif  // VECEXT_DISTANCE_X86
