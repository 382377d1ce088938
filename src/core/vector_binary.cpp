// The binary form of a vector: see vector_binary.h.
#include "core/vector_binary.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace vecext {

namespace {

std::uint16_t LoadBe16(const unsigned char* p) {
  return static_cast<std::uint16_t>((static_cast<unsigned>(p[0]) << 8) | p[1]);
}

std::uint32_t LoadBe32(const unsigned char* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

void StoreBe16(std::uint16_t v, unsigned char* p) {
  p[0] = static_cast<unsigned char>(v >> 8);
  p[1] = static_cast<unsigned char>(v);
}

void StoreBe32(std::uint32_t v, unsigned char* p) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

Status Fail(VectorBinaryResult* result, VectorBinaryError error, StatusCode code, const char* message) {
  result->error = error;
  return Status::Error(code, message);
}

}  // namespace

Status DecodeVectorBinary(const unsigned char* data, std::size_t len, int typmod, float* out,
                          VectorBinaryResult* result) {
  *result = VectorBinaryResult();
  if (len < 4)
    return Fail(result, VectorBinaryError::kTruncated, StatusCode::kInvalidInput, "insufficient data left in message");
  // The header fields are int16 (sign-extended), as in pgvector.
  result->dim = static_cast<std::int16_t>(LoadBe16(data));
  result->unused = static_cast<std::int16_t>(LoadBe16(data + 2));
  const int dim = result->dim;
  if (dim < 1)
    return Fail(result, VectorBinaryError::kNoDimensions, StatusCode::kInvalidInput,
                "vector must have at least 1 dimension");
  if (dim > kVectorMaxDim)
    return Fail(result, VectorBinaryError::kTooManyDims, StatusCode::kLimitExceeded,
                "vector cannot have more than 16000 dimensions");
  if (typmod != -1 && typmod != dim)
    return Fail(result, VectorBinaryError::kTypmodMismatch, StatusCode::kInvalidInput,
                "vector has the wrong number of dimensions for its type modifier");
  if (result->unused != 0)
    return Fail(result, VectorBinaryError::kUnusedNotZero, StatusCode::kInvalidInput, "expected unused to be 0");
  const std::size_t expected = 4 * static_cast<std::size_t>(dim);
  if (len - 4 != expected) {
    result->expected_bytes = expected;
    result->found_bytes = len - 4;
    return Fail(result, VectorBinaryError::kLengthMismatch, StatusCode::kInvalidInput,
                "invalid binary data for type vector");
  }
  for (int i = 0; i < dim; i++) {
    const std::uint32_t bits = LoadBe32(data + 4 + 4 * static_cast<std::size_t>(i));
    float f;
    std::memcpy(&f, &bits, sizeof f);
    out[i] = f;
    if (std::isnan(f)) {
      result->element_index = i;
      return Fail(result, VectorBinaryError::kNaN, StatusCode::kNotFinite, "NaN not allowed in vector");
    }
    if (std::isinf(f)) {
      result->element_index = i;
      return Fail(result, VectorBinaryError::kInfinite, StatusCode::kNotFinite, "infinite value not allowed in vector");
    }
  }
  return Status::Ok();
}

void EncodeVectorBinary(const float* x, int dim, unsigned char* out) {
  StoreBe16(static_cast<std::uint16_t>(dim), out);
  StoreBe16(0, out + 2);
  for (int i = 0; i < dim; i++) {
    std::uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof bits);
    StoreBe32(bits, out + 4 + 4 * static_cast<std::size_t>(i));
  }
}

}  // namespace vecext
