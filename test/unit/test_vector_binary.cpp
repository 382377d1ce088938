// Unit tests of the binary (send/recv) form of a vector (core/vector_binary.h).
#include "core/vector_binary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace vecext {
namespace {

std::vector<unsigned char> Encode(const std::vector<float>& x) {
  std::vector<unsigned char> out(VectorBinarySize(static_cast<int>(x.size())));
  EncodeVectorBinary(x.data(), static_cast<int>(x.size()), out.data());
  return out;
}

struct Decoded {
  Status status;
  VectorBinaryResult result;
  std::vector<float> values;
};

Decoded Decode(const std::vector<unsigned char>& bytes, int typmod = -1) {
  Decoded d;
  std::vector<float> out(kVectorMaxDim, -7.0f);
  d.status = DecodeVectorBinary(bytes.data(), bytes.size(), typmod, out.data(), &d.result);
  if (d.status.ok()) d.values.assign(out.begin(), out.begin() + d.result.dim);
  return d;
}

TEST(VectorBinary, LayoutIsNetworkOrder) {
  auto bytes = Encode({1.0f, -2.5f});
  // dim 2, unused 0, 1.0f = 0x3F800000, -2.5f = 0xC0200000, big-endian.
  const std::vector<unsigned char> expected = {0, 2, 0, 0, 0x3F, 0x80, 0, 0, 0xC0, 0x20, 0, 0};
  EXPECT_EQ(bytes, expected);
}

TEST(VectorBinary, RoundTripsBitExact) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int dim : {1, 2, 3, 17, 1000, kVectorMaxDim}) {
    std::vector<float> x(dim);
    for (auto& f : x) {
      do {
        std::uint32_t b = bits(rng);
        std::memcpy(&f, &b, sizeof f);
      } while (!std::isfinite(f));
    }
    auto d = Decode(Encode(x));
    ASSERT_TRUE(d.status.ok()) << d.status.message;
    ASSERT_EQ(d.result.dim, dim);
    EXPECT_EQ(0, std::memcmp(d.values.data(), x.data(), sizeof(float) * dim));
  }
}

TEST(VectorBinary, NegativeZeroAndDenormalsSurvive) {
  std::vector<float> x = {-0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::lowest()};
  auto d = Decode(Encode(x));
  ASSERT_TRUE(d.status.ok());
  EXPECT_TRUE(std::signbit(d.values[0]));
  EXPECT_EQ(d.values[1], std::numeric_limits<float>::denorm_min());
}

TEST(VectorBinary, TruncatedHeader) {
  for (std::size_t len = 0; len < 4; len++) {
    std::vector<unsigned char> bytes(len, 0);
    auto d = Decode(bytes);
    EXPECT_EQ(d.status.code, StatusCode::kInvalidInput);
    EXPECT_EQ(d.result.error, VectorBinaryError::kTruncated);
  }
}

TEST(VectorBinary, DimensionLimits) {
  auto zero = Decode({0, 0, 0, 0});
  EXPECT_EQ(zero.result.error, VectorBinaryError::kNoDimensions);
  // 0xFFFF is -1 as an int16 (pgvector reads dim as int16).
  auto negative = Decode({0xFF, 0xFF, 0, 0});
  EXPECT_EQ(negative.result.error, VectorBinaryError::kNoDimensions);
  EXPECT_EQ(negative.result.dim, -1);
  // 16001 dims, even with the right number of bytes.
  std::vector<unsigned char> big(VectorBinarySize(kVectorMaxDim + 1), 0);
  big[0] = static_cast<unsigned char>((kVectorMaxDim + 1) >> 8);
  big[1] = static_cast<unsigned char>((kVectorMaxDim + 1) & 0xFF);
  auto too_many = Decode(big);
  EXPECT_EQ(too_many.status.code, StatusCode::kLimitExceeded);
  EXPECT_EQ(too_many.result.error, VectorBinaryError::kTooManyDims);
}

TEST(VectorBinary, TypmodAndUnused) {
  auto bytes = Encode({1, 2, 3});
  EXPECT_TRUE(Decode(bytes, 3).status.ok());
  EXPECT_EQ(Decode(bytes, 4).result.error, VectorBinaryError::kTypmodMismatch);
  bytes[3] = 1;
  auto d = Decode(bytes);
  EXPECT_EQ(d.result.error, VectorBinaryError::kUnusedNotZero);
  EXPECT_EQ(d.result.unused, 1);
}

TEST(VectorBinary, LengthMustMatchExactly) {
  auto bytes = Encode({1, 2, 3});
  auto shorter = bytes;
  shorter.pop_back();
  auto d = Decode(shorter);
  EXPECT_EQ(d.result.error, VectorBinaryError::kLengthMismatch);
  EXPECT_EQ(d.result.expected_bytes, 12u);
  EXPECT_EQ(d.result.found_bytes, 11u);
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(Decode(longer).result.error, VectorBinaryError::kLengthMismatch);
}

TEST(VectorBinary, NonFiniteElements) {
  auto nan = Encode({1, std::numeric_limits<float>::quiet_NaN(), 3});
  auto d = Decode(nan);
  EXPECT_EQ(d.status.code, StatusCode::kNotFinite);
  EXPECT_EQ(d.result.error, VectorBinaryError::kNaN);
  EXPECT_EQ(d.result.element_index, 1);
  auto inf = Decode(Encode({-std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(inf.result.error, VectorBinaryError::kInfinite);
  EXPECT_EQ(inf.result.element_index, 0);
}

TEST(VectorBinary, NothingWrittenOnHeaderOrLengthErrors) {
  std::vector<float> out(4, 9.0f);
  VectorBinaryResult r;
  const unsigned char bad[] = {0, 4, 0, 0, 1, 2, 3};
  EXPECT_FALSE(DecodeVectorBinary(bad, sizeof bad, -1, out.data(), &r).ok());
  for (float f : out) EXPECT_EQ(f, 9.0f);
}

}  // namespace
}  // namespace vecext
