// SQ8 scalar quantization (sq8.h): training, the params blob, encoding,
// query preparation, bounds, and the scalar kernels with their dispatch.
// The error allowances used here are derived in docs/quantization.md.
#include "core/sq8.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/distance_internal.h"
#include "core/index_distance.h"

// The scalar kernels define the reference semantics, as in distance.cpp:
// one float accumulator summed in index order, products rounded before they
// are added (no FMA contraction), whatever the compiler or target.
#if defined(__FAST_MATH__)
#error "src/core/sq8.cpp must not be compiled with -ffast-math"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace vecext {

// The SIMD kernels (sq8_avx2.cpp, sq8_avx512.cpp). Those files do not include
// sq8.h: an inline function of it compiled there with AVX-512 could be the
// copy the linker keeps for every caller.
namespace sq8_internal {
#if VECEXT_DISTANCE_X86
float DotAvx2(const float* a, const std::uint8_t* c, std::size_t n);
float L2Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float L1Avx2(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float CodeL2Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
float CodeL1Avx2(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
float DotAvx512(const float* a, const std::uint8_t* c, std::size_t n);
float L2Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float L1Avx512(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
float CodeL2Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
float CodeL1Avx512(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);
#endif
}  // namespace sq8_internal

namespace {

// ---------------------------------------------------------------------------
// Scalar kernels

float DotScalar(const float* a, const std::uint8_t* c, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) sum += a[i] * static_cast<float>(c[i]);
  return sum;
}

float L2Scalar(const float* a, const float* s, const std::uint8_t* c, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) {
    const float d = a[i] - s[i] * static_cast<float>(c[i]);
    sum += d * d;
  }
  return sum;
}

float L1Scalar(const float* a, const float* s, const std::uint8_t* c, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) sum += std::fabs(a[i] - s[i] * static_cast<float>(c[i]));
  return sum;
}

float CodeL2Scalar(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) {
    const float t = s[i] * static_cast<float>(static_cast<int>(c[i]) - static_cast<int>(d[i]));
    sum += t * t;
  }
  return sum;
}

float CodeL1Scalar(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < n; i++) {
    const int diff = static_cast<int>(c[i]) - static_cast<int>(d[i]);
    sum += s[i] * static_cast<float>(diff < 0 ? -diff : diff);
  }
  return sum;
}

const Sq8Kernels kScalar = {&DotScalar, &L2Scalar, &L1Scalar, &CodeL2Scalar, &CodeL1Scalar, "scalar"};
#if VECEXT_DISTANCE_X86
const Sq8Kernels kAvx2 = {&sq8_internal::DotAvx2,    &sq8_internal::L2Avx2,     &sq8_internal::L1Avx2,
                          &sq8_internal::CodeL2Avx2, &sq8_internal::CodeL1Avx2, "avx2"};
const Sq8Kernels kAvx512 = {&sq8_internal::DotAvx512,    &sq8_internal::L2Avx512,     &sq8_internal::L1Avx512,
                            &sq8_internal::CodeL2Avx512, &sq8_internal::CodeL1Avx512, "avx512"};
#endif

// ---------------------------------------------------------------------------
// Helpers

constexpr double kUnitRoundoff = 1.0 / 16777216.0;            // u = 2^-24, float
constexpr double kDoubleRoundoff = 1.0 / 9007199254740992.0;  // 2^-53
constexpr double kInf = HUGE_VAL;
// Past these, a float sum of the SQL operator may overflow: no finite bound.
constexpr double kFloatSumLimit = 0.25 * static_cast<double>(FLT_MAX);

// 2 gamma_k, with gamma_k = k u / (1 - k u) the classical bound on the
// relative error of a float sum whose terms each pass through at most k
// roundings (products and additions), in any order. The factor 2 is a
// safety margin. See docs/quantization.md.
double Gamma2(double k) { return 2.0 * k * kUnitRoundoff / (1.0 - k * kUnitRoundoff); }

// Roundings per term in the SQL operator's float sums, whatever their order
// (n - 1 additions, the product, the difference): n + 8 is generous.
double SqlGamma(std::size_t n) { return Gamma2(static_cast<double>(n) + 8.0); }

// Roundings per term in our kernel's sum: its accumulators add at most
// ceil(n / lanes) terms each, then a reduction tree of depth <= 7; + 4 for
// the query array, the offset and the final adds (docs/quantization.md).
double KernelGamma(const Sq8Kernels& k, std::size_t n) {
  std::size_t lanes = 1;
  if (std::strcmp(k.isa, "avx512") == 0) lanes = 16;
  if (std::strcmp(k.isa, "avx2") == 0) lanes = 8;
  const double depth = lanes == 1 ? static_cast<double>(n) : static_cast<double>((n + lanes - 1) / lanes) + 16.0;
  return Gamma2(depth + 4.0);
}

// Absolute allowance for underflow: each float operation on subnormals loses
// at most 2^-150; (n + 8) FLT_MIN is 2^24 times more than n terms can lose.
double Tiny(std::size_t n) { return (static_cast<double>(n) + 8.0) * static_cast<double>(FLT_MIN); }

// The smallest float >= d (d >= 0); +inf past FLT_MAX.
float RoundUp(double d) {
  if (!(d <= static_cast<double>(FLT_MAX))) return HUGE_VALF;
  float f = static_cast<float>(d);
  if (static_cast<double>(f) < d) f = std::nextafter(f, HUGE_VALF);
  return f;
}

// Whether every element is finite: by the exponent bits, without a branch
// per element (vectorizes).
bool AllFinite(const float* x, std::size_t n) {
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < n; i++) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bad |= static_cast<std::uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// sum x_i^2 in double, in 4 independent sums (a double add's latency would
// otherwise bound the loop; the order changes the result by a few 2^-53).
double SumOfSquares(const float* x, std::size_t n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(x[i]) * x[i];
    s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    s2 += static_cast<double>(x[i + 2]) * x[i + 2];
    s3 += static_cast<double>(x[i + 3]) * x[i + 3];
  }
  for (; i < n; i++) s0 += static_cast<double>(x[i]) * x[i];
  return (s0 + s1) + (s2 + s3);
}

// The sums Sq8PrepareQuery accumulates, one set per independent chain.
struct PrepareSums {
  double a = 0.0, b = 0.0, c = 0.0, d = 0.0;
  void Add(const PrepareSums& o) {
    a += o.a;
    b += o.b;
    c += o.c;
    d += o.d;
  }
};

// L2/L1: buffer[i] = q - lo, and the norms of q - lo (a: squared, b: L1)
// and of the code box 255 scale (c: squared, d: L1).
inline void PrepareDiffTerm(const float* q, const float* lo, const float* scale, float* buffer, std::size_t i,
                            PrepareSums* s) {
  const double d = static_cast<double>(q[i]) - lo[i];
  const double w = 255.0 * static_cast<double>(scale[i]);
  buffer[i] = static_cast<float>(d);
  s->a += d * d;
  s->b += std::fabs(d);
  s->c += w * w;
  s->d += w;
}

// IP/cosine: buffer[i] = q_i inv scale_i; a: sum q_i inv lo_i; b: the
// magnitude sum |q_i inv| (|lo_i| + 255 scale_i).
inline void PrepareDotTerm(const float* q, double inv, const float* lo, const float* scale, float* buffer, std::size_t i,
                           PrepareSums* s) {
  const double qi = static_cast<double>(q[i]) * inv;
  buffer[i] = static_cast<float>(qi * scale[i]);
  s->a += qi * lo[i];
  s->b += std::fabs(qi) * (std::fabs(static_cast<double>(lo[i])) + 255.0 * scale[i]);
}

// The code of v for one dimension: nearest, clamped to 0..255.
inline int Quantize(double v, float lo, float scale) {
  if (scale == 0.0f) return 0;
  const double t = (v - static_cast<double>(lo)) / static_cast<double>(scale);
  if (!(t > 0.0)) return 0;
  if (t >= 255.0) return 255;
  return static_cast<int>(t + 0.5);
}

// The decoding of code c, exact up to one double rounding (scale * c is exact).
inline double Dequantize(int c, float lo, float scale) {
  return static_cast<double>(lo) + static_cast<double>(scale) * c;
}

// lo and scale for the range [lo_v, hi_v], keeping lo + 255 scale finite.
void SetRange(float lo_v, float hi_v, float* lo, float* scale) {
  *lo = lo_v;
  if (!(hi_v > lo_v)) {
    *scale = 0.0f;
    return;
  }
  float s = static_cast<float>((static_cast<double>(hi_v) - lo_v) / 255.0);
  while (s > 0.0f && !std::isfinite(lo_v + 255.0f * s)) s = std::nextafter(s, 0.0f);
  *scale = s;
}

void PutU32(unsigned char* p, std::uint32_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
  p[2] = static_cast<unsigned char>(v >> 16);
  p[3] = static_cast<unsigned char>(v >> 24);
}

std::uint32_t GetU32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

void PutF32(unsigned char* p, float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  PutU32(p, bits);
}

float GetF32(const unsigned char* p) {
  const std::uint32_t bits = GetU32(p);
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

constexpr unsigned char kMagic[4] = {'S', 'Q', '8', 'P'};
constexpr std::uint32_t kBlobVersion = 1;

}  // namespace

// ---------------------------------------------------------------------------
// Dispatch

const Sq8Kernels* Sq8KernelsFor(const char* isa) {
  const DistanceKernels* k = KernelsFor(isa);  // null when unknown or unsupported
  if (k == nullptr) return nullptr;
  if (std::strcmp(k->isa, "scalar") == 0) return &kScalar;
#if VECEXT_DISTANCE_X86
  if (std::strcmp(k->isa, "avx2") == 0) return &kAvx2;
  if (std::strcmp(k->isa, "avx512") == 0) return &kAvx512;
#endif
  return nullptr;
}

const Sq8Kernels& Sq8KernelsDispatched() {
  static const Sq8Kernels* const kernels = [] {
    const Sq8Kernels* k = Sq8KernelsFor(Kernels().isa);
    return k != nullptr ? k : &kScalar;
  }();
  return *kernels;
}

// ---------------------------------------------------------------------------
// Training

Status Sq8TrainerInit(Sq8Trainer* t, std::uint32_t dim, Metric metric, float* lo, float* scale) {
  if (dim == 0 || dim > kSq8MaxDim) return Status::Error(StatusCode::kInvalidInput, "SQ8 dimensions out of range");
  *t = Sq8Trainer{dim, metric, lo, scale, 0};
  std::fill(lo, lo + dim, HUGE_VALF);
  std::fill(scale, scale + dim, -HUGE_VALF);
  return Status::Ok();
}

Status Sq8TrainerAdd(Sq8Trainer* t, const float* x) {
  const std::size_t n = t->dim;
  if (!AllFinite(x, n)) return Status::Error(StatusCode::kNotFinite, "SQ8: vector has a NaN or infinite element");
  if (IndexNormalizes(t->metric)) {
    const double norm = std::sqrt(SumOfSquares(x, n));
    if (!(norm > 0.0)) return Status::Error(StatusCode::kInvalidInput, "SQ8: zero vector has no cosine distance");
    for (std::size_t i = 0; i < n; i++) {
      const float v = static_cast<float>(x[i] / norm);  // as Sq8Encode normalizes
      t->lo[i] = std::min(t->lo[i], v);
      t->scale[i] = std::max(t->scale[i], v);
    }
  } else {
    for (std::size_t i = 0; i < n; i++) {
      t->lo[i] = std::min(t->lo[i], x[i]);
      t->scale[i] = std::max(t->scale[i], x[i]);
    }
  }
  t->count++;
  return Status::Ok();
}

Status Sq8TrainerFinish(Sq8Trainer* t) {
  if (t->count == 0) return Status::Error(StatusCode::kInvalidInput, "SQ8 training needs at least one vector");
  for (std::uint32_t i = 0; i < t->dim; i++) SetRange(t->lo[i], t->scale[i], &t->lo[i], &t->scale[i]);
  return Status::Ok();
}

Status Sq8Train(const float* const* vectors, std::size_t n, std::uint32_t dim, Metric metric, float* lo, float* scale) {
  Sq8Trainer t;
  Status st = Sq8TrainerInit(&t, dim, metric, lo, scale);
  for (std::size_t j = 0; st.ok() && j < n; j++) st = Sq8TrainerAdd(&t, vectors[j]);
  return st.ok() ? Sq8TrainerFinish(&t) : st;
}

// ---------------------------------------------------------------------------
// Serialization

Status Sq8Serialize(const Sq8Params& p, unsigned char* out, std::size_t out_size) {
  if (p.dim == 0 || p.dim > kSq8MaxDim) return Status::Error(StatusCode::kInvalidInput, "SQ8 dimensions out of range");
  if (out_size < Sq8SerializedBytes(p.dim)) {
    return Status::Error(StatusCode::kInvalidInput, "SQ8 params buffer too small");
  }
  std::memcpy(out, kMagic, 4);
  PutU32(out + 4, kBlobVersion);
  PutU32(out + 8, p.dim);
  PutU32(out + 12, 0);
  unsigned char* q = out + kSq8BlobHeaderBytes;
  for (std::uint32_t i = 0; i < p.dim; i++, q += 4) PutF32(q, p.lo[i]);
  for (std::uint32_t i = 0; i < p.dim; i++, q += 4) PutF32(q, p.scale[i]);
  return Status::Ok();
}

Status Sq8BlobDim(const unsigned char* blob, std::size_t size, std::uint32_t* dim) {
  if (size < kSq8BlobHeaderBytes || std::memcmp(blob, kMagic, 4) != 0) {
    return Status::Error(StatusCode::kCorrupted, "SQ8 params: bad header");
  }
  if (GetU32(blob + 4) != kBlobVersion) return Status::Error(StatusCode::kCorrupted, "SQ8 params: unknown version");
  const std::uint32_t d = GetU32(blob + 8);
  if (d == 0 || d > kSq8MaxDim || GetU32(blob + 12) != 0) {
    return Status::Error(StatusCode::kCorrupted, "SQ8 params: bad dimensions");
  }
  if (size < Sq8SerializedBytes(d)) return Status::Error(StatusCode::kCorrupted, "SQ8 params: truncated");
  *dim = d;
  return Status::Ok();
}

Status Sq8Deserialize(const unsigned char* blob, std::size_t size, float* lo, float* scale) {
  std::uint32_t dim = 0;
  Status st = Sq8BlobDim(blob, size, &dim);
  if (!st.ok()) return st;
  const unsigned char* q = blob + kSq8BlobHeaderBytes;
  for (std::uint32_t i = 0; i < dim; i++, q += 4) lo[i] = GetF32(q);
  for (std::uint32_t i = 0; i < dim; i++, q += 4) scale[i] = GetF32(q);
  for (std::uint32_t i = 0; i < dim; i++) {
    if (!std::isfinite(lo[i]) || !std::isfinite(scale[i]) || !(scale[i] >= 0.0f) ||
        !std::isfinite(lo[i] + 255.0f * scale[i])) {
      return Status::Error(StatusCode::kCorrupted, "SQ8 params: invalid range");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Encoding

Status Sq8Encode(const Sq8Params& p, Metric metric, const float* x, std::uint8_t* codes, Sq8ElementInfo* info) {
  const std::size_t n = p.dim;
  if (!AllFinite(x, n)) return Status::Error(StatusCode::kNotFinite, "SQ8: vector has a NaN or infinite element");
  const double sum_sq = SumOfSquares(x, n);
  double norm = 1.0;
  const bool normalize = IndexNormalizes(metric);
  if (normalize) {
    norm = std::sqrt(sum_sq);
    if (!(norm > 0.0)) return Status::Error(StatusCode::kInvalidInput, "SQ8: zero vector has no cosine distance");
  }
  double err2 = 0.0, err1 = 0.0, dec2 = 0.0, src2 = 0.0;
  for (std::size_t i = 0; i < n; i++) {
    const double v = normalize ? x[i] / norm : static_cast<double>(x[i]);
    const int c = Quantize(v, p.lo[i], p.scale[i]);
    codes[i] = static_cast<std::uint8_t>(c);
    const double xh = Dequantize(c, p.lo[i], p.scale[i]);
    const double e = v - xh;
    err2 += e * e;
    err1 += std::fabs(e);
    dec2 += xh * xh;
    src2 += v * v;
  }
  // The double arithmetic above (decoding, the division under cosine, the
  // sums) errs by at most (n + 4) 2^-53 relative to |x| + |x^| per norm.
  const double slack = (static_cast<double>(n) + 4.0) * 2.0 * kDoubleRoundoff;
  const double scale_sum = std::sqrt(src2) + std::sqrt(dec2);
  double e2 = std::sqrt(err2) * (1.0 + slack) + slack * scale_sum;
  const double e1 = err1 * (1.0 + slack) + slack * std::sqrt(static_cast<double>(n)) * scale_sum;
  if (normalize) {
    // The SQL operator's share for this row: its float sums may underflow
    // (absolute n 2^-150 against |x|^2) or overflow (docs/quantization.md).
    // + 4u: x may itself be a normalized float vector (NormalizeInPlace),
    // whose direction is within 2u of the original's.
    const double sigma = (static_cast<double>(n) + 8.0) * std::ldexp(1.0, -150) / sum_sq;
    e2 = (sum_sq >= kFloatSumLimit || sigma > 1e-3) ? kInf : e2 + 4.0 * sigma + 4.0 * kUnitRoundoff;
  }
  info->sq_norm = static_cast<float>(dec2);
  info->err_l2 = RoundUp(e2);
  info->err_l1 = RoundUp(e1);
  return Status::Ok();
}

void Sq8Decode(const Sq8Params& p, const std::uint8_t* codes, float* out) {
  for (std::uint32_t i = 0; i < p.dim; i++) out[i] = p.lo[i] + p.scale[i] * static_cast<float>(codes[i]);
}

// ---------------------------------------------------------------------------
// Queries and bounds

Status Sq8PrepareQuery(const Sq8Params& p, Metric metric, const float* q, float* buffer, Sq8Query* out) {
  return Sq8PrepareQueryWith(Sq8KernelsDispatched(), p, metric, q, buffer, out);
}

Status Sq8PrepareQueryWith(const Sq8Kernels& k, const Sq8Params& p, Metric metric, const float* q, float* buffer,
                           Sq8Query* out) {
  const std::size_t n = p.dim;
  if (!AllFinite(q, n)) return Status::Error(StatusCode::kNotFinite, "SQ8: query has a NaN or infinite element");
  Sq8Query r;
  r.metric = metric;
  r.dim = p.dim;
  r.a = buffer;
  r.scale = p.scale;
  r.offset = 0.0f;
  r.dot = k.dot;
  r.diff = metric == Metric::kL1 ? k.l1 : k.l2;
  r.q_norm = 1.0;
  r.kernel_gamma = KernelGamma(k, n);
  r.sql_gamma = SqlGamma(n);
  r.kernel_err = 0.0;
  r.magnitude = 0.0;
  r.tiny = Tiny(n);
  r.unbounded = false;
  switch (metric) {
    case Metric::kL2:
    case Metric::kL1: {
      // a = q - lo; each term's difference a - s c errs by at most
      // 2.01 u (|q - lo| + s c) (docs/quantization.md).
      PrepareSums s0, s1, s2, s3;
      std::size_t i = 0;
      for (; i + 4 <= n; i += 4) {
        PrepareDiffTerm(q, p.lo, p.scale, buffer, i, &s0);
        PrepareDiffTerm(q, p.lo, p.scale, buffer, i + 1, &s1);
        PrepareDiffTerm(q, p.lo, p.scale, buffer, i + 2, &s2);
        PrepareDiffTerm(q, p.lo, p.scale, buffer, i + 3, &s3);
      }
      for (; i < n; i++) PrepareDiffTerm(q, p.lo, p.scale, buffer, i, &s0);
      s0.Add(s1);
      s2.Add(s3);
      s0.Add(s2);
      const double dev2 = s0.a, dev1 = s0.b, box2 = s0.c, box1 = s0.d;
      if (!AllFinite(buffer, n)) r.unbounded = true;
      const double per_term = 2.0 * 2.01 * kUnitRoundoff;  // safety factor 2
      r.kernel_err = metric == Metric::kL2 ? per_term * (std::sqrt(dev2) + std::sqrt(box2)) + r.tiny
                                           : per_term * (dev1 + box1) + r.tiny;
      break;
    }
    case Metric::kInnerProduct:
    case Metric::kCosine: {
      const double sum_sq = SumOfSquares(q, n);
      double inv = 1.0;
      if (metric == Metric::kCosine) {
        if (!(sum_sq > 0.0)) return Status::Error(StatusCode::kInvalidInput, "SQ8: zero query has no cosine distance");
        inv = 1.0 / std::sqrt(sum_sq);
        const double sigma = (static_cast<double>(n) + 8.0) * std::ldexp(1.0, -150) / sum_sq;
        if (sum_sq >= kFloatSumLimit || sigma > 1e-3) r.unbounded = true;
        // The SQL operator's share for the query, and 4u for a query that
        // was normalized in float by the caller (see Sq8Encode).
        r.tiny += 4.0 * sigma + 4.0 * kUnitRoundoff;
      } else {
        r.q_norm = std::sqrt(sum_sq) * (1.0 + 1e-12);
      }
      PrepareSums s0, s1, s2, s3;
      std::size_t i = 0;
      for (; i + 4 <= n; i += 4) {
        PrepareDotTerm(q, inv, p.lo, p.scale, buffer, i, &s0);
        PrepareDotTerm(q, inv, p.lo, p.scale, buffer, i + 1, &s1);
        PrepareDotTerm(q, inv, p.lo, p.scale, buffer, i + 2, &s2);
        PrepareDotTerm(q, inv, p.lo, p.scale, buffer, i + 3, &s3);
      }
      for (; i < n; i++) PrepareDotTerm(q, inv, p.lo, p.scale, buffer, i, &s0);
      s0.Add(s1);
      s2.Add(s3);
      s0.Add(s2);
      const double offset = s0.a, magnitude = s0.b;
      r.offset = static_cast<float>(offset);
      r.magnitude = magnitude;
      // The kernel's sum, the rounding of the query array and of the offset,
      // the final adds: kernel_gamma of sum |terms| <= magnitude (+1 for
      // cosine's 1 - y).
      r.kernel_err = r.kernel_gamma * (magnitude + (metric == Metric::kCosine ? 1.0 : 0.0));
      if (!(magnitude * (1.0 + r.sql_gamma) < kFloatSumLimit)) r.unbounded = true;
      break;
    }
  }
  *out = r;
  return Status::Ok();
}

Sq8DistanceBounds Sq8Bounds(const Sq8Query& q, float distance, const Sq8ElementInfo& info) {
  const double a = distance;
  const double gk = q.kernel_gamma;
  const double gs = q.sql_gamma;
  const double tiny = q.tiny;
  double lower = 0.0, upper = kInf;
  switch (q.metric) {
    case Metric::kL2: {
      if (q.unbounded || !std::isfinite(a)) return {0.0, kInf};
      const double e = info.err_l2;
      // The computed differences d' (|d' - (q - x^)| <= kernel_err) have
      // |d'|^2 within a (1 +- gk), up to underflow; |q - x| is within e of
      // |q - x^|.
      const double lo_d = std::sqrt(std::max(0.0, (a - tiny) / (1.0 + gk))) - q.kernel_err - e;
      const double hi_d = std::sqrt((a + tiny) / (1.0 - gk)) + q.kernel_err + e;
      // The SQL float sum of squares is within |q - x|^2 (1 +- gs), up to underflow.
      lower = lo_d > 0.0 ? std::sqrt(std::max(0.0, lo_d * lo_d * (1.0 - gs) - tiny)) : 0.0;
      const double hi_sq = hi_d * hi_d * (1.0 + gs) + tiny;
      upper = hi_sq < kFloatSumLimit ? std::sqrt(hi_sq) : kInf;
      break;
    }
    case Metric::kL1: {
      if (q.unbounded || !std::isfinite(a)) return {0.0, kInf};
      const double e = info.err_l1;
      const double lo_d = (a - tiny) / (1.0 + gk) - q.kernel_err - e;
      const double hi_d = (a + tiny) / (1.0 - gk) + q.kernel_err + e;
      lower = std::max(0.0, lo_d * (1.0 - gs) - tiny);
      const double hi = hi_d * (1.0 + gs) + tiny;
      upper = hi < kFloatSumLimit ? hi : kInf;
      break;
    }
    case Metric::kInnerProduct: {
      const double qe = q.q_norm * static_cast<double>(info.err_l2);
      const double sql_magnitude = q.magnitude + qe;  // >= sum |q_i x_i|
      if (q.unbounded || !std::isfinite(a) || !(sql_magnitude * (1.0 + gs) < kFloatSumLimit)) {
        return {-kInf, kInf};
      }
      const double slack = qe + q.kernel_err + gs * sql_magnitude + tiny;
      lower = a - slack;
      upper = a + slack;
      break;
    }
    case Metric::kCosine: {
      if (q.unbounded || !std::isfinite(a)) return {0.0, 2.0};
      // 1.5 gs = 3 gamma_{n+8} covers the SQL similarity's error 2.01 gamma_n.
      const double slack = static_cast<double>(info.err_l2) + q.kernel_err + 1.5 * gs + tiny;
      lower = std::max(0.0, a - slack);
      upper = a + slack;
      break;
    }
  }
  // The double arithmetic above: a few roundings of 2^-53 each.
  lower = lower > 0.0 ? lower * (1.0 - 1e-12) : lower * (1.0 + 1e-12);
  upper = upper > 0.0 ? upper * (1.0 + 1e-12) : upper * (1.0 - 1e-12);
  if (q.metric == Metric::kCosine) upper = std::min(upper, 2.0);
  return {lower, upper};
}

// ---------------------------------------------------------------------------
// Code-to-code distance

float Sq8CodeDistance(const Sq8Kernels& k, const Sq8Params& p, Metric metric, const std::uint8_t* a,
                      const Sq8ElementInfo& ia, const std::uint8_t* b, const Sq8ElementInfo& ib) {
  switch (metric) {
    case Metric::kL2:
      return k.code_l2(p.scale, a, b, p.dim);
    case Metric::kL1:
      return k.code_l1(p.scale, a, b, p.dim);
    case Metric::kInnerProduct:
    case Metric::kCosine: {
      const float dot = 0.5f * (ia.sq_norm + ib.sq_norm - k.code_l2(p.scale, a, b, p.dim));
      return metric == Metric::kCosine ? 1.0f - dot : -dot;
    }
  }
  return k.code_l2(p.scale, a, b, p.dim);
}

}  // namespace vecext
