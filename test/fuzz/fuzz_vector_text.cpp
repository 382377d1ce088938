// libFuzzer target: the text form of a vector (core/vector_text.h).
// Differential: the simdjson path (with its strtof fallback) and the strtof
// loop must decide every input identically (status, error, token, dim and
// the bits of every element), simdjson alone may only accept what strtof
// accepts with the same values, and an accepted vector formats to a text
// that parses back to the same bits. Any disagreement aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/vector_text.h"

namespace {

using vecext::kVectorMaxDim;

float a_out[kVectorMaxDim];
float b_out[kVectorMaxDim];
float c_out[kVectorMaxDim];
char text_out[vecext::VectorTextBufferSize(kVectorMaxDim)];

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024) return -1;
  std::vector<char> text(size + 1);
  std::memcpy(text.data(), data, size);
  text[size] = '\0';
  const std::size_t len = std::strlen(text.data());  // the server sees a C string

  vecext::VectorTextResult a, b;
  const vecext::Status sa = vecext::ParseVectorText(text.data(), len, vecext::VectorTextParser::kSimdjson, a_out, &a);
  const vecext::Status sb = vecext::ParseVectorTextStrtof(text.data(), len, b_out, &b);
  Require(sa.code == sb.code);
  Require(a.error == b.error);
  Require(sa.ok() == (a.error == vecext::VectorTextError::kNone));
  if (a.error == vecext::VectorTextError::kOutOfRange) {
    Require(a.token_offset == b.token_offset && a.token_length == b.token_length);
    Require(a.token_offset + a.token_length <= len);
  }
  int dim = 0;
  if (vecext::TryParseVectorTextSimdjson(text.data(), len, c_out, &dim)) {
    Require(sb.ok() && dim == b.dim);
    Require(std::memcmp(c_out, b_out, sizeof(float) * static_cast<std::size_t>(dim)) == 0);
  }
  if (!sa.ok()) return 0;
  Require(a.dim == b.dim && a.dim >= 1 && a.dim <= kVectorMaxDim);
  Require(std::memcmp(a_out, b_out, sizeof(float) * static_cast<std::size_t>(a.dim)) == 0);

  // Format and parse back: the same bits.
  const std::size_t n = vecext::FormatVectorText(a_out, a.dim, text_out);
  Require(n < sizeof text_out && text_out[n] == '\0');
  vecext::VectorTextResult r;
  Require(vecext::ParseVectorTextStrtof(text_out, n, c_out, &r).ok());
  Require(r.dim == a.dim);
  Require(std::memcmp(c_out, a_out, sizeof(float) * static_cast<std::size_t>(a.dim)) == 0);
  return 0;
}
