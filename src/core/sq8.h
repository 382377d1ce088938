// SQ8 scalar quantization for the HNSW index: each dimension of a vector is
// stored as one byte c, which decodes to lo[i] + scale[i] * c (c = 0..255).
// docs/quantization.md has the math and the error bounds.
//
//   train     Sq8Train: per-dimension ranges from a sample of vectors
//   store     Sq8Serialize / Sq8Deserialize: the params as a flat byte blob
//   encode    Sq8Encode: codes uint8[dim] + Sq8ElementInfo (12 bytes)
//   search    Sq8PrepareQuery once per query, then Sq8Distance per element:
//             one SIMD kernel over (float query array, uint8 codes)
//   build     Sq8CodeDistance: code-to-code distance (both sides encoded)
//   recheck   Sq8Bounds: lower/upper bounds of the SQL operator's value
//             computed from the approximate distance, never wrong
//
// Distances follow index_distance.h: the "index distance" is squared L2 for
// L2, -q.x for inner product, 1 - q.x over normalized vectors for cosine,
// sum |q - x| for L1. Bounds are in SQL operator units (<-> is the square
// root of squared L2). Vectors are always passed as the user gave them (not
// normalized): under cosine, the functions here normalize themselves, and
// the bounds need the original norm. (Passing vectors already normalized by
// NormalizeInPlace is safe too, except for vectors so small, |x| < ~1e-18,
// that the SQL operator's float sums underflow: the bounds of those hold only
// when the original vector is passed.)
//
// Everything is trivially destructible and works in caller-provided memory:
// nothing here allocates, throws or calls back, so any frame may hold these
// objects across a Postgres call. Kernels read exactly the n codes and n
// floats they are given (never past them), with no alignment requirement;
// 64-byte aligned query buffers are slightly faster.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/distance.h"
#include "core/status.h"

namespace vecext {

// Dimensions accepted by SQ8 (the vector type's maximum).
constexpr std::uint32_t kSq8MaxDim = 16000;

// ---------------------------------------------------------------------------
// Parameters

// A view of the per-index parameters: dim floats each, in caller memory.
// Invariants (training and Sq8Deserialize establish them): every lo and scale
// is finite, scale >= 0, and lo + 255 * scale is finite. scale == 0 marks a
// constant dimension (every code decodes to lo).
struct Sq8Params {
  std::uint32_t dim = 0;
  const float* lo = nullptr;
  const float* scale = nullptr;
};

// Training: each dimension's range is the min and max of the training
// vectors in that dimension (under cosine, of the normalized vectors), so
// nothing trained on clamps. Clipping to percentiles (0.1%, 1%) was measured
// and rejected: with 8-bit steps it raised the squared error on held-out rows
// for all but uniform data (docs/quantization.md).
//
// Either all at once:
//   Sq8Train(vectors, n, dim, metric, lo, scale)
// or streaming, e.g. during a heap scan, without keeping the vectors:
//   Sq8Trainer t; Sq8TrainerInit(&t, dim, metric, lo, scale);
//   for each x: Sq8TrainerAdd(&t, x);
//   Sq8TrainerFinish(&t);          // lo, scale now hold the params
// While training, scale[] holds the running maximum.
struct Sq8Trainer {
  std::uint32_t dim;
  Metric metric;
  float* lo;
  float* scale;
  std::size_t count;  // vectors added
};

// REQUIRES: lo and scale have dim floats (they receive the params).
// Errors: kInvalidInput (dim out of 1..kSq8MaxDim).
Status Sq8TrainerInit(Sq8Trainer* t, std::uint32_t dim, Metric metric, float* lo, float* scale);

// Adds one raw vector of t->dim floats. Errors (the vector is ignored):
// kNotFinite (a NaN or infinite element), kInvalidInput (a zero vector under
// cosine; such vectors are not indexed).
Status Sq8TrainerAdd(Sq8Trainer* t, const float* x);

// Turns the ranges into params. Errors: kInvalidInput (no vector was added).
Status Sq8TrainerFinish(Sq8Trainer* t);

// Trains on vectors[0..n), each dim floats; stops at the first error.
Status Sq8Train(const float* const* vectors, std::size_t n, std::uint32_t dim, Metric metric, float* lo, float* scale);

// The flat little-endian blob the glue stores in index pages:
//   bytes 0..3    magic "SQ8P"
//   bytes 4..7    format version (1), uint32
//   bytes 8..11   dim, uint32
//   bytes 12..15  reserved, 0
//   then lo[0..dim) and scale[0..dim), IEEE float32 each.
constexpr std::size_t kSq8BlobHeaderBytes = 16;
inline std::size_t Sq8SerializedBytes(std::uint32_t dim) {
  return kSq8BlobHeaderBytes + 8 * static_cast<std::size_t>(dim);
}

// Writes params to out. REQUIRES: out_size >= Sq8SerializedBytes(p.dim).
Status Sq8Serialize(const Sq8Params& p, unsigned char* out, std::size_t out_size);

// Reads the dimension from a blob's header (to size the arrays to read it into).
// Errors: kCorrupted (short blob, bad magic/version, dim out of range).
Status Sq8BlobDim(const unsigned char* blob, std::size_t size, std::uint32_t* dim);

// Reads a blob into lo[0..dim) and scale[0..dim) (dim from Sq8BlobDim) and
// checks the Sq8Params invariants. Errors: kCorrupted.
Status Sq8Deserialize(const unsigned char* blob, std::size_t size, float* lo, float* scale);

// ---------------------------------------------------------------------------
// Encoding

// Per-element side data, stored next to the codes. With x the vector as
// encoded (normalized under cosine) and x^ = lo + scale * c its decoding:
struct Sq8ElementInfo {
  float sq_norm;  // |x^|^2 (code-to-code inner product and cosine)
  float err_l2;   // >= |x - x^|_2, rounded up; under cosine it also absorbs
                  // the row's share of the SQL operator's rounding (tiny
                  // unless |x| is near float underflow/overflow, then +inf)
  float err_l1;   // >= |x - x^|_1, rounded up
};
static_assert(sizeof(Sq8ElementInfo) == 12, "Sq8ElementInfo is stored on disk");

// Encodes x (dim floats, raw): codes[i] = the nearest code to x[i] (values
// outside [lo, lo + 255 scale] clamp to 0 or 255), and its side data.
// Errors: kNotFinite (NaN/Inf element), kInvalidInput (zero vector under cosine).
Status Sq8Encode(const Sq8Params& p, Metric metric, const float* x, std::uint8_t* codes, Sq8ElementInfo* info);

// out[i] = lo[i] + scale[i] * codes[i] in float (tests, tools, re-encoding).
void Sq8Decode(const Sq8Params& p, const std::uint8_t* codes, float* out);

// ---------------------------------------------------------------------------
// Kernels (SIMD, dispatched like the float kernels of distance.h)

// sum a[i] * c[i]
using Sq8DotFn = float (*)(const float* a, const std::uint8_t* c, std::size_t n);
// sum (a[i] - s[i] c[i])^2, or sum |a[i] - s[i] c[i]|
using Sq8OffsetFn = float (*)(const float* a, const float* s, const std::uint8_t* c, std::size_t n);
// sum (s[i] (c[i] - d[i]))^2, or sum s[i] |c[i] - d[i]|
using Sq8CodeFn = float (*)(const float* s, const std::uint8_t* c, const std::uint8_t* d, std::size_t n);

struct Sq8Kernels {
  Sq8DotFn dot;       // asymmetric inner product / cosine
  Sq8OffsetFn l2;     // asymmetric squared L2 (a = q - lo)
  Sq8OffsetFn l1;     // asymmetric L1 (a = q - lo)
  Sq8CodeFn code_l2;  // code-to-code squared L2 (also IP/cosine, see Sq8CodeDistance)
  Sq8CodeFn code_l1;  // code-to-code L1
  const char* isa;    // "avx512", "avx2" or "scalar"
};

// The kernels of the ISA that Kernels() (distance.h) chose: the CPU's widest,
// capped by VECEXT_ISA. Chosen once, thread-safe.
const Sq8Kernels& Sq8KernelsDispatched();

// The kernels of one ISA ("scalar", "avx2", "avx512"), or nullptr when the
// name is unknown or this CPU cannot run them.
const Sq8Kernels* Sq8KernelsFor(const char* isa);

// ---------------------------------------------------------------------------
// Asymmetric search: float query against encoded elements

// A prepared query. It points at the caller's buffer and at p.scale:
// REQUIRES: both outlive it.
struct Sq8Query {
  Metric metric;
  std::uint32_t dim;
  const float* a;      // L2/L1: q - lo; IP: q * scale; cosine: (q/|q|) * scale
  const float* scale;  // p.scale
  float offset;        // IP: q.lo; cosine: (q/|q|).lo; else 0
  Sq8DotFn dot;
  Sq8OffsetFn diff;  // L2: kernels.l2, L1: kernels.l1
  // Constants of Sq8Bounds (docs/quantization.md derives them):
  double q_norm;        // IP: |q| rounded up; else 1
  double kernel_gamma;  // relative rounding allowance of this kernel's float sum
  double sql_gamma;     // same for the SQL operator's float sums, in any order
  double kernel_err;    // absolute error allowance of the approximate distance
                        // (L2: in distance units, not squared)
  double magnitude;     // IP/cosine: bound on sum |q_i x^_i| (q normalized under cosine)
  double tiny;          // absolute allowance for underflow
  bool unbounded;       // the SQL value may be NaN or overflow: trivial bounds
};

// Floats of buffer Sq8PrepareQuery needs.
inline std::size_t Sq8QueryFloats(std::uint32_t dim) { return dim; }

static_assert(std::is_trivially_destructible_v<Sq8Query> && std::is_trivially_copyable_v<Sq8Query>);
static_assert(std::is_trivially_destructible_v<Sq8Trainer> && std::is_trivially_destructible_v<Sq8Params>);

// Prepares q (p.dim floats, raw: under cosine not normalized by the caller,
// the bounds need its original norm) with the dispatched kernels.
// REQUIRES: buffer has Sq8QueryFloats(p.dim) floats.
// Errors: kNotFinite (NaN/Inf element), kInvalidInput (zero vector under cosine).
Status Sq8PrepareQuery(const Sq8Params& p, Metric metric, const float* q, float* buffer, Sq8Query* out);

// Same with the kernels of one ISA (tests, benchmarks).
Status Sq8PrepareQueryWith(const Sq8Kernels& k, const Sq8Params& p, Metric metric, const float* q, float* buffer,
                           Sq8Query* out);

// The approximate index distance between the query and the element encoded
// as codes[0..dim): one kernel call.
//   L2      |q - x^|^2            = kernel l2(q - lo, scale, c)
//   IP      -q.x^                 = -(q.lo + kernel dot(q scale, c))
//   cosine  1 - (q/|q|).x^        = 1 - ((q/|q|).lo + kernel dot((q/|q|) scale, c))
//   L1      |q - x^|_1            = kernel l1(q - lo, scale, c)
inline float Sq8Distance(const Sq8Query& q, const std::uint8_t* codes) {
  switch (q.metric) {
    case Metric::kInnerProduct:
      return -(q.offset + q.dot(q.a, codes, q.dim));
    case Metric::kCosine:
      return 1.0f - (q.offset + q.dot(q.a, codes, q.dim));
    case Metric::kL2:
    case Metric::kL1:
      break;
  }
  return q.diff(q.a, q.scale, codes, q.dim);
}

// Bounds of the SQL operator's value (<->, <#>, <=>, <+> of the query and the
// row's vector as the SQL functions compute it, with float sums in any order)
// given Sq8Distance's result for that row's codes and its side data:
//   lower <= SQL value <= upper, always (including rounding); for <#> a
//   lower bound may be -inf and an upper bound +inf when the values are too
//   large for float; a NaN SQL value (sorts last) is above any bound.
// With e = |x - x^|_2 (err_l2), e1 = |x - x^|_1 (err_l1), A the approximate
// distance, before the rounding allowances:
//   <->  sqrt(A) - e   <= |q - x|_2   <= sqrt(A) + e          (triangle inequality)
//   <#>  A - |q| e     <= -q.x        <= A + |q| e            (Cauchy-Schwarz)
//   <=>  A - e         <= 1 - cos     <= A + e   within [0,2] (|q/|q|| = 1)
//   <+>  A - e1        <= |q - x|_1   <= A + e1               (triangle inequality)
struct Sq8DistanceBounds {
  double lower;
  double upper;
};
Sq8DistanceBounds Sq8Bounds(const Sq8Query& q, float distance, const Sq8ElementInfo& info);

// ---------------------------------------------------------------------------
// Code-to-code distance (graph build over codes only)

// The approximate index distance between two encoded elements:
//   L2      |x^ - y^|^2 = sum (scale (c - d))^2               (kernel code_l2)
//   IP      -x^.y^      = -(|x^|^2 + |y^|^2 - |x^ - y^|^2) / 2  (same kernel)
//   cosine  1 - x^.y^
//   L1      sum scale |c - d|                                 (kernel code_l1)
// The IP/cosine form loses accuracy when |x^ - y^| << |x^| (rounding of
// |x^|^2, relative 2^-24): fine for choosing neighbours, not for bounds.
float Sq8CodeDistance(const Sq8Kernels& k, const Sq8Params& p, Metric metric, const std::uint8_t* a,
                      const Sq8ElementInfo& ia, const std::uint8_t* b, const Sq8ElementInfo& ib);

}  // namespace vecext
