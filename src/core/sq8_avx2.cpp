// AVX2 + FMA SQ8 kernels (compiled with -mavx2 -mfma; used only when the CPU
// has both, see Sq8KernelsFor in sq8.cpp). Semantics in sq8.h.
//
// Layout of every kernel: a main loop over 32 elements with 4 independent
// accumulators, a loop over 8, then the last 1..7 elements: floats with a
// masked load, codes gathered byte by byte into one 64-bit word (AVX2 has no
// masked byte load), so nothing past a[n), s[n), c[n) or d[n) is touched.
// Codes widen with vpmovzxbd straight from memory (8 bytes per load).
#include "core/distance_internal.h"

#if VECEXT_DISTANCE_X86

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace vecext {
namespace sq8_internal {

float DotAvx2(const float* a, const std::uint8_t* c, std::size_t n);
float L2Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float L1Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float CodeL2Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
float CodeL1Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);

}  // namespace sq8_internal

namespace {

// kTailMask + 8 - r is a mask whose first r lanes are set.
alignas(64) constexpr std::int32_t kTailMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// REQUIRES: 1 <= r <= 7.
inline __m256i TailMask(std::size_t r) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTailMask + 8 - r));
}

// Codes c[0..8) as 8 int32 lanes.
inline __m256i Codes8(const std::uint8_t* c) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
}

// Codes c[0..r) as int32 lanes, the other lanes 0. REQUIRES: 1 <= r <= 7.
inline __m256i CodesTail(const std::uint8_t* c, std::size_t r) {
  std::uint64_t w = 0;
  for (std::size_t j = 0; j < r; j++) w |= static_cast<std::uint64_t>(c[j]) << (8 * j);
  return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(w)));
}

inline __m256 ToFloat(__m256i v) { return _mm256_cvtepi32_ps(v); }

inline float HorizontalSum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float Sum4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

inline __m256 Abs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// One step of each kernel over 8 elements, accumulating into acc.
struct DotStep {
  const float* a;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m256& acc) const {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ToFloat(Codes8(c + i)), acc);
  }
  void Tail(std::size_t i, std::size_t r, __m256& acc) const {
    acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, TailMask(r)), ToFloat(CodesTail(c + i, r)), acc);
  }
};

// d = a - s c (one rounding).
inline __m256 Residual(__m256 a, __m256 s, __m256i c) { return _mm256_fnmadd_ps(s, ToFloat(c), a); }

struct L2Step {
  const float* a;
  const float* s;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m256& acc) const {
    const __m256 d = Residual(_mm256_loadu_ps(a + i), _mm256_loadu_ps(s + i), Codes8(c + i));
    acc = _mm256_fmadd_ps(d, d, acc);
  }
  void Tail(std::size_t i, std::size_t r, __m256& acc) const {
    const __m256i m = TailMask(r);
    const __m256 d = Residual(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(s + i, m), CodesTail(c + i, r));
    acc = _mm256_fmadd_ps(d, d, acc);
  }
};

struct L1Step {
  const float* a;
  const float* s;
  const std::uint8_t* c;
  void Prefetch(std::size_t i) const { __builtin_prefetch(c + i); }
  void operator()(std::size_t i, __m256& acc) const {
    acc = _mm256_add_ps(acc, Abs(Residual(_mm256_loadu_ps(a + i), _mm256_loadu_ps(s + i), Codes8(c + i))));
  }
  void Tail(std::size_t i, std::size_t r, __m256& acc) const {
    const __m256i m = TailMask(r);
    acc = _mm256_add_ps(acc,
                        Abs(Residual(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(s + i, m), CodesTail(c + i, r))));
  }
};

struct CodeL2Step {
  const float* s;
  const std::uint8_t* c;
  const std::uint8_t* d;
  static __m256 Apply(__m256 s, __m256i c, __m256i d, __m256 acc) {
    const __m256 t = _mm256_mul_ps(s, ToFloat(_mm256_sub_epi32(c, d)));
    return _mm256_fmadd_ps(t, t, acc);
  }
  void Prefetch(std::size_t i) const {
    __builtin_prefetch(c + i);
    __builtin_prefetch(d + i);
  }
  void operator()(std::size_t i, __m256& acc) const {
    acc = Apply(_mm256_loadu_ps(s + i), Codes8(c + i), Codes8(d + i), acc);
  }
  void Tail(std::size_t i, std::size_t r, __m256& acc) const {
    acc = Apply(_mm256_maskload_ps(s + i, TailMask(r)), CodesTail(c + i, r), CodesTail(d + i, r), acc);
  }
};

struct CodeL1Step {
  const float* s;
  const std::uint8_t* c;
  const std::uint8_t* d;
  static __m256 Apply(__m256 s, __m256i c, __m256i d, __m256 acc) {
    return _mm256_fmadd_ps(s, ToFloat(_mm256_abs_epi32(_mm256_sub_epi32(c, d))), acc);
  }
  void Prefetch(std::size_t i) const {
    __builtin_prefetch(c + i);
    __builtin_prefetch(d + i);
  }
  void operator()(std::size_t i, __m256& acc) const {
    acc = Apply(_mm256_loadu_ps(s + i), Codes8(c + i), Codes8(d + i), acc);
  }
  void Tail(std::size_t i, std::size_t r, __m256& acc) const {
    acc = Apply(_mm256_maskload_ps(s + i, TailMask(r)), CodesTail(c + i, r), CodesTail(d + i, r), acc);
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
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (i + kSq8PrefetchAhead < n) step.Prefetch(i + kSq8PrefetchAhead);
    step(i, s0);
    step(i + 8, s1);
    step(i + 16, s2);
    step(i + 24, s3);
  }
  for (; i + 8 <= n; i += 8) step(i, s0);
  if (i < n) step.Tail(i, n - i, s1);
  return Sum4(s0, s1, s2, s3);
}

}  // namespace

namespace sq8_internal {

float DotAvx2(const float* a, const std::uint8_t* c, std::size_t n) { return Run(DotStep{a, c}, n); }

float L2Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n) { return Run(L2Step{a, s, c}, n); }

float L1Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n) { return Run(L1Step{a, s, c}, n); }

float CodeL2Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  return Run(CodeL2Step{s, c, d}, n);
}

float CodeL1Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  return Run(CodeL1Step{s, c, d}, n);
}

}  // namespace sq8_internal
}  // namespace vecext

#endif  // VECEXT_DISTANCE_X86
