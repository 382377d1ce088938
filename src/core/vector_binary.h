// The binary (send/recv) form of a vector, with no Postgres: int16 dim,
// int16 unused (always 0), then dim float4, all in network byte order
// (pgvector's format, src/pg/vector.h). The glue's vector_recv reads it with
// pq_getmsg*; this decoder makes the same decisions on a plain byte buffer,
// so that the format can be unit-tested and fuzzed without a server.
#pragma once

#include <cstddef>

#include "core/status.h"
#include "core/vector_text.h"

namespace vecext {

// Why a binary vector was rejected, in the order the checks run.
enum class VectorBinaryError : unsigned char {
  kNone = 0,
  kTruncated,       // fewer than 4 bytes: no dim/unused header ("insufficient data left in message")
  kNoDimensions,    // dim < 1
  kTooManyDims,     // dim > kVectorMaxDim
  kTypmodMismatch,  // typmod != -1 and typmod != dim
  kUnusedNotZero,   // the reserved int16 is not 0
  kLengthMismatch,  // the bytes after the header are not exactly dim * 4
  kNaN,             // an element is NaN (element_index says which)
  kInfinite,        // an element is infinite
};

// Details of a decode, filled in by DecodeVectorBinary.
struct VectorBinaryResult {
  int dim = 0;                    // the header's dim (sign-extended int16), once read
  int unused = 0;                 // the header's reserved field, once read
  VectorBinaryError error = VectorBinaryError::kNone;
  int element_index = -1;         // kNaN / kInfinite: the first bad element
  std::size_t expected_bytes = 0; // kLengthMismatch: dim * 4
  std::size_t found_bytes = 0;    // kLengthMismatch: bytes after the header
};

// Bytes of the binary form of a `dim`-element vector.
inline constexpr std::size_t VectorBinarySize(int dim) { return 4 + 4 * static_cast<std::size_t>(dim); }

// Decodes data[0..len) into out[0..result->dim).
// typmod is the column's (-1: none). REQUIRES: out has room for
// kVectorMaxDim floats; data may be unaligned. Returns Ok, or (with
// result->error set):
//   kInvalidInput   kTruncated, kNoDimensions, kTypmodMismatch, kUnusedNotZero, kLengthMismatch
//   kLimitExceeded  kTooManyDims
//   kNotFinite      kNaN, kInfinite
// Nothing is written to out unless the header and the length are valid.
// Never throws, never reads past data[len).
Status DecodeVectorBinary(const unsigned char* data, std::size_t len, int typmod, float* out,
                          VectorBinaryResult* result);

// Writes the binary form of x[0..dim) (VectorBinarySize(dim) bytes) to out.
// REQUIRES: 0 <= dim <= 32767.
void EncodeVectorBinary(const float* x, int dim, unsigned char* out);

}  // namespace vecext
