// libFuzzer target: the binary (send/recv) form of a vector
// (core/vector_binary.h). The first input byte picks a type modifier (-1 or
// a small dim), the rest is the message. An accepted message has exactly
// 4 + 4 * dim bytes of finite floats and encodes back to the same bytes;
// a rejected one names one error. Any violation aborts.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/vector_binary.h"

namespace {

float out[vecext::kVectorMaxDim];

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int typmod = data[0] < 128 ? -1 : data[0] - 127;  // -1, or 1..128
  data++;
  size--;
  // An exact-size heap copy, so that ASan catches any read past the end.
  std::vector<unsigned char> msg(data, data + size);
  vecext::VectorBinaryResult r;
  const vecext::Status st = vecext::DecodeVectorBinary(msg.data(), msg.size(), typmod, out, &r);
  Require(st.ok() == (r.error == vecext::VectorBinaryError::kNone));
  if (!st.ok()) {
    Require(st.message != nullptr && st.message[0] != '\0');
    if (r.error == vecext::VectorBinaryError::kNaN || r.error == vecext::VectorBinaryError::kInfinite)
      Require(r.element_index >= 0 && r.element_index < r.dim);
    return 0;
  }
  Require(r.dim >= 1 && r.dim <= vecext::kVectorMaxDim);
  Require(typmod == -1 || typmod == r.dim);
  Require(size == vecext::VectorBinarySize(r.dim));
  for (int i = 0; i < r.dim; i++) Require(std::isfinite(out[i]));
  std::vector<unsigned char> again(vecext::VectorBinarySize(r.dim));
  vecext::EncodeVectorBinary(out, r.dim, again.data());
  Require(again == msg);
  return 0;
}
