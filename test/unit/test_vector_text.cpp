// Unit tests of the vector text parser and formatter (core/vector_text.h).
#include "core/vector_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vecext {
namespace {

struct Parsed {
  Status status;
  VectorTextResult result;
  std::vector<float> values;
};

Parsed Parse(const std::string& text, VectorTextParser parser) {
  Parsed p;
  std::vector<float> out(kVectorMaxDim);
  p.status = ParseVectorText(text.c_str(), text.size(), parser, out.data(), &p.result);
  if (p.status.ok()) p.values.assign(out.begin(), out.begin() + p.result.dim);
  return p;
}

std::uint32_t Bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Both parsers must agree exactly: status, error kind, token, and the bits
// of every value (so that -0 and 0 differ).
void ExpectSameResult(const std::string& text) {
  SCOPED_TRACE("text: \"" + text + "\"");
  const Parsed a = Parse(text, VectorTextParser::kSimdjson);
  const Parsed b = Parse(text, VectorTextParser::kStrtof);
  ASSERT_EQ(a.status.code, b.status.code);
  ASSERT_EQ(a.result.error, b.result.error);
  ASSERT_EQ(a.result.dim, b.result.dim);
  if (a.result.error == VectorTextError::kOutOfRange) {
    EXPECT_EQ(a.result.token_offset, b.result.token_offset);
    EXPECT_EQ(a.result.token_length, b.result.token_length);
  }
  ASSERT_EQ(a.values.size(), b.values.size());
  for (std::size_t i = 0; i < a.values.size(); i++) {
    ASSERT_EQ(Bits(a.values[i]), Bits(b.values[i])) << "element " << i;
  }
}

std::vector<float> Values(const std::string& text, VectorTextParser parser) {
  const Parsed p = Parse(text, parser);
  EXPECT_TRUE(p.status.ok()) << text << ": " << p.status.message;
  return p.values;
}

VectorTextError ErrorOf(const std::string& text, VectorTextParser parser) {
  const Parsed p = Parse(text, parser);
  EXPECT_FALSE(p.status.ok()) << text;
  return p.result.error;
}

const VectorTextParser kParsers[] = {VectorTextParser::kSimdjson, VectorTextParser::kStrtof};

TEST(VectorTextParse, Valid) {
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(Values("[1,2,3]", parser), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(Values("[-1,-2,-3]", parser), (std::vector<float>{-1, -2, -3}));
    EXPECT_EQ(Values(" [ 1,  2 ,    3  ] ", parser), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(Values("\t\n\r[1]\n", parser), (std::vector<float>{1}));
    EXPECT_EQ(Values("[1.23456]", parser), (std::vector<float>{1.23456f}));
    EXPECT_EQ(Values("[1.5e38,-1.5e38]", parser), (std::vector<float>{1.5e38f, -1.5e38f}));
    EXPECT_EQ(Values("[1.5e+38,1.5E-38]", parser), (std::vector<float>{1.5e38f, 1.5e-38f}));
    EXPECT_EQ(Values("[0.1]", parser), (std::vector<float>{0.1f}));
    EXPECT_EQ(Values("[3.4028235e38]", parser),
              (std::vector<float>{std::numeric_limits<float>::max()}));
  }
}

// Texts that JSON rejects but pgvector's strtof loop reads.
TEST(VectorTextParse, StrtofSpellings) {
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(Values("[1.,2.,3.]", parser), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(Values("[.5,-.5]", parser), (std::vector<float>{0.5f, -0.5f}));
    EXPECT_EQ(Values("[+1]", parser), (std::vector<float>{1}));
    EXPECT_EQ(Values("[01,007]", parser), (std::vector<float>{1, 7}));
    EXPECT_EQ(Values("[0x10,0x1p-1]", parser), (std::vector<float>{16, 0.5f}));
    EXPECT_EQ(Values("[1e5]", parser), (std::vector<float>{1e5f}));
    EXPECT_EQ(Values("\v\f[1\v,\f2]\v\f", parser), (std::vector<float>{1, 2}));
  }
  const Parsed p = Parse("[1.,2]", VectorTextParser::kSimdjson);
  EXPECT_TRUE(p.result.fell_back);
  const Parsed q = Parse("[1,2]", VectorTextParser::kSimdjson);
  EXPECT_FALSE(q.result.fell_back);
}

TEST(VectorTextParse, NegativeZero) {
  for (VectorTextParser parser : kParsers) {
    const std::vector<float> v = Values("[-0,0,-0.0,-0e3]", parser);
    ASSERT_EQ(v.size(), 4u);
    EXPECT_TRUE(std::signbit(v[0]));
    EXPECT_FALSE(std::signbit(v[1]));
    EXPECT_TRUE(std::signbit(v[2]));
    EXPECT_TRUE(std::signbit(v[3]));
  }
}

TEST(VectorTextParse, UnderflowIsAccepted) {
  // Like pgvector (it checks only for an infinite ERANGE result).
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(Values("[1e-46,-1e-400]", parser), (std::vector<float>{0, -0.0f}));
    const std::vector<float> v = Values("[1e-45]", parser);
    EXPECT_EQ(v[0], std::numeric_limits<float>::denorm_min());
  }
}

TEST(VectorTextParse, Errors) {
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(ErrorOf("", parser), VectorTextError::kNoOpenBracket);
    EXPECT_EQ(ErrorOf("1,2,3", parser), VectorTextError::kNoOpenBracket);
    EXPECT_EQ(ErrorOf("{1,2}", parser), VectorTextError::kNoOpenBracket);
    EXPECT_EQ(ErrorOf("[]", parser), VectorTextError::kNoDimensions);
    EXPECT_EQ(ErrorOf("[ \t]", parser), VectorTextError::kNoDimensions);
    EXPECT_EQ(ErrorOf("[", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[,", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1,2,3", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1,]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1,,3]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1, ,3]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1a]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[hello,1]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1 2]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[[1]]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[\"1\"]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[true]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[null]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1;2]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[1,2,3]9", parser), VectorTextError::kJunkAfterBracket);
    EXPECT_EQ(ErrorOf("[1] [2]", parser), VectorTextError::kJunkAfterBracket);
    EXPECT_EQ(ErrorOf("[1],", parser), VectorTextError::kJunkAfterBracket);
    EXPECT_EQ(ErrorOf("[NaN,1]", parser), VectorTextError::kNaN);
    EXPECT_EQ(ErrorOf("[nan(123)]", parser), VectorTextError::kNaN);
    EXPECT_EQ(ErrorOf("[Infinity,1]", parser), VectorTextError::kInfinite);
    EXPECT_EQ(ErrorOf("[-inf]", parser), VectorTextError::kInfinite);
    EXPECT_EQ(ErrorOf("[4e38,1]", parser), VectorTextError::kOutOfRange);
    EXPECT_EQ(ErrorOf("[1e400]", parser), VectorTextError::kOutOfRange);
    EXPECT_EQ(ErrorOf("[3.4028236e38]", parser), VectorTextError::kOutOfRange);
  }
}

TEST(VectorTextParse, StatusCodes) {
  EXPECT_EQ(Parse("x", VectorTextParser::kSimdjson).status.code, StatusCode::kInvalidInput);
  EXPECT_EQ(Parse("[]", VectorTextParser::kSimdjson).status.code, StatusCode::kInvalidInput);
  EXPECT_EQ(Parse("[1e39]", VectorTextParser::kSimdjson).status.code, StatusCode::kOutOfRange);
  EXPECT_EQ(Parse("[nan]", VectorTextParser::kSimdjson).status.code, StatusCode::kNotFinite);
  EXPECT_EQ(Parse("[1]x", VectorTextParser::kSimdjson).status.code, StatusCode::kInvalidInput);
}

TEST(VectorTextParse, OutOfRangeToken) {
  for (VectorTextParser parser : kParsers) {
    const std::string text = "[1, -4e38 ,2]";
    const Parsed p = Parse(text, parser);
    ASSERT_EQ(p.result.error, VectorTextError::kOutOfRange);
    EXPECT_EQ(text.substr(p.result.token_offset, p.result.token_length), "-4e38");
  }
}

// Error precedence follows the strtof loop: the first problem from the left.
TEST(VectorTextParse, FirstErrorWins) {
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(ErrorOf("[nan,1e39]", parser), VectorTextError::kNaN);
    EXPECT_EQ(ErrorOf("[1e39,nan]", parser), VectorTextError::kOutOfRange);
    EXPECT_EQ(ErrorOf("[1,x,nan]", parser), VectorTextError::kSyntax);
    EXPECT_EQ(ErrorOf("[nan]junk", parser), VectorTextError::kNaN);
  }
}

std::string Ones(int n) {
  std::string s = "[";
  for (int i = 0; i < n; i++) s += i == 0 ? "1" : ",1";
  return s + "]";
}

TEST(VectorTextParse, DimensionLimit) {
  for (VectorTextParser parser : kParsers) {
    EXPECT_EQ(Values(Ones(kVectorMaxDim), parser).size(), static_cast<std::size_t>(kVectorMaxDim));
    EXPECT_EQ(ErrorOf(Ones(kVectorMaxDim + 1), parser), VectorTextError::kTooManyDims);
    // The limit is checked before the element after it is read.
    std::string junk = Ones(kVectorMaxDim);
    junk.back() = ',';
    EXPECT_EQ(ErrorOf(junk + "x]", parser), VectorTextError::kTooManyDims);
    EXPECT_EQ(Parse(Ones(kVectorMaxDim + 1), parser).status.code, StatusCode::kLimitExceeded);
  }
}

// Decimal texts whose nearest double lies exactly halfway between two floats:
// rounding decimal -> double -> float would go wrong (double rounding);
// simdjson must decline them so that strtof decides.
TEST(VectorTextParse, DoubleRoundingTies) {
  // 1 + 2^-24 is the midpoint between 1 and the next float (1 + 2^-23).
  const float above = std::nextafter(1.0f, 2.0f);
  EXPECT_EQ(Values("[1.000000059604644775390625]", VectorTextParser::kSimdjson)[0], 1.0f);
  EXPECT_EQ(Values("[1.00000005960464477539062500001]", VectorTextParser::kSimdjson)[0], above);
  EXPECT_EQ(Values("[1.00000005960464477539062499999]", VectorTextParser::kSimdjson)[0], 1.0f);
  EXPECT_TRUE(Parse("[1.00000005960464477539062500001]", VectorTextParser::kSimdjson).result.fell_back);
  ExpectSameResult("[1.00000005960464477539062500001]");
  ExpectSameResult("[1.00000005960464477539062499999]");
  // Just below the overflow threshold (FLT_MAX + half an ulp).
  ExpectSameResult("[340282356779733661637539395458142568447.9]");
  ExpectSameResult("[340282356779733661637539395458142568448]");
  // Subnormal midpoints: 1.5 * 2^-149 and 2^-150.
  ExpectSameResult("[2.1019476964872256063855943749348741969203929128147736576356024258346614e-45]");
  ExpectSameResult("[2.10194769648722560638559437493487419692039291281477365763560242583466141e-45]");
  ExpectSameResult("[7.00649232162408535461864791644958065640130970938257885878534141944895541e-46]");
  ExpectSameResult("[7.006492321624085354618647916449580656401309709382578858785341419448955413e-46]");
}

TEST(VectorTextParse, Differential) {
  const char* cases[] = {
      "[1,2,3]", "[1.,2]", "[ 1 , 2 ]", "[1e5,1E5,1e+5,1e-5]", "[-0]", "[-0,0]", "[0,-0]",
      "[-0.]", "[-0e0]", "[00]", "[-00]", "[0.0]", "[1,2", "[1,2]]", "[[1,2]]", "[1,{}]",
      "[1]x", "[1] ", "[1]\t\n", "[1]\v", "[]", "[ ]", "", " ", "[", "]", "[,]", "[1,,2]",
      "[1 ,2 ,]", "[nan]", "[NAN]", "[inf]", "[INFINITY]", "[-infinity]", "[1e39]",
      "[-1e39]", "[1e-50]", "[123456789012345678901234567890]", "[9007199254740993]",
      "[18446744073709551615]", "[18446744073709551616]", "[-9223372036854775808]",
      "[-9223372036854775809]", "[0x1p3]", "[0X1P3]", "[1.5e]", "[1e]", "[e1]", "[-]",
      "[+]", "[.]", "[-.5]", "[+.5e1]", "[\"1\"]", "[1,\"a\"]", "[1e1000000]",
      "[0.000000000000000000000000000000000000000000000001]",
  };
  for (const char* c : cases) ExpectSameResult(c);
}

// Random texts (formatted floats, random decimal strings, and mutations of
// valid texts) agree between the two parsers.
TEST(VectorTextParse, DifferentialRandom) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  std::uniform_int_distribution<int> small(0, 20);
  const std::string alphabet = "0123456789.,-+eE[] \tx";
  for (int iter = 0; iter < 20000; iter++) {
    std::string text = "[";
    const int n = 1 + small(rng);
    for (int i = 0; i < n; i++) {
      if (i > 0) text += ",";
      switch (small(rng) % 4) {
        case 0: {  // any finite float, formatted
          float f;
          do {
            const std::uint32_t b = any_bits(rng);
            std::memcpy(&f, &b, sizeof f);
          } while (!std::isfinite(f));
          char buf[kFloatTextMaxLen];
          text.append(buf, static_cast<std::size_t>(FormatFloat(f, buf)));
          break;
        }
        case 1: {  // a long random decimal
          text += std::to_string(any_bits(rng)) + "." + std::to_string(any_bits(rng)) + "e" +
                  std::to_string(small(rng) * 4 - 40);
          break;
        }
        case 2:
          text += std::to_string(static_cast<int>(any_bits(rng)));
          break;
        default:
          text += "0." + std::to_string(any_bits(rng));
          break;
      }
    }
    text += "]";
    ExpectSameResult(text);
    // A mutation: replace, insert or delete one character.
    std::string m = text;
    const std::size_t pos = any_bits(rng) % m.size();
    const char c = alphabet[any_bits(rng) % alphabet.size()];
    switch (any_bits(rng) % 3) {
      case 0: m[pos] = c; break;
      case 1: m.insert(pos, 1, c); break;
      default: m.erase(pos, 1); break;
    }
    ExpectSameResult(m);
    if (HasFailure()) return;
  }
}

// Postgres float4out layout, extra_float_digits = 1 (the default).
TEST(VectorTextFormat, Float) {
  auto fmt = [](float f) {
    char buf[kFloatTextMaxLen];
    return std::string(buf, static_cast<std::size_t>(FormatFloat(f, buf)));
  };
  EXPECT_EQ(fmt(0.0f), "0");
  EXPECT_EQ(fmt(-0.0f), "-0");
  EXPECT_EQ(fmt(1.0f), "1");
  EXPECT_EQ(fmt(-1.0f), "-1");
  EXPECT_EQ(fmt(10.0f), "10");
  EXPECT_EQ(fmt(0.1f), "0.1");
  EXPECT_EQ(fmt(1.23456f), "1.23456");
  EXPECT_EQ(fmt(-1.5f), "-1.5");
  EXPECT_EQ(fmt(0.0001f), "0.0001");
  EXPECT_EQ(fmt(0.00012345f), "0.00012345");
  EXPECT_EQ(fmt(0.00001f), "1e-05");
  EXPECT_EQ(fmt(100000.0f), "100000");
  EXPECT_EQ(fmt(123456.0f), "123456");
  EXPECT_EQ(fmt(123456.5f), "123456.5");
  EXPECT_EQ(fmt(999999.0f), "999999");
  EXPECT_EQ(fmt(1000000.0f), "1e+06");
  EXPECT_EQ(fmt(1234567.0f), "1.234567e+06");
  EXPECT_EQ(fmt(1.5e38f), "1.5e+38");
  EXPECT_EQ(fmt(-1.5e-38f), "-1.5e-38");
  EXPECT_EQ(fmt(std::numeric_limits<float>::max()), "3.4028235e+38");
  EXPECT_EQ(fmt(std::numeric_limits<float>::min()), "1.1754944e-38");
  EXPECT_EQ(fmt(std::numeric_limits<float>::denorm_min()), "1e-45");
  EXPECT_EQ(fmt(-std::nextafter(0.00001f, 1.0f)), "-1.0000001e-05");
  EXPECT_EQ(fmt(16777216.0f), "1.6777216e+07");
  // Even significands >= 2^22 where a shorter decimal lies exactly on the
  // rounding boundary: Postgres (and so vector_out) never prints that one.
  EXPECT_EQ(fmt(6.8774384e+07f), "6.8774384e+07");    // not 6.877438e+07
  EXPECT_EQ(fmt(1.19806304e+08f), "1.19806304e+08");  // not 1.198063e+08
  EXPECT_EQ(fmt(-1.05351584e+08f), "-1.05351584e+08");
  EXPECT_EQ(fmt(1.9391439e+09f), "1.9391439e+09");    // not 1.939144e+09
  EXPECT_EQ(fmt(4194304.5f), "4.1943045e+06");
  EXPECT_EQ(fmt(3.0e38f), "3e+38");
}

TEST(VectorTextFormat, Vector) {
  const float x[] = {1, -2.5f, 0.1f, 1e-7f};
  char buf[VectorTextBufferSize(4)];
  const std::size_t n = FormatVectorText(x, 4, buf);
  EXPECT_EQ(std::string(buf), "[1,-2.5,0.1,1e-07]");
  EXPECT_EQ(n, std::strlen(buf));
  char one[VectorTextBufferSize(1)];
  FormatVectorText(x, 1, one);
  EXPECT_EQ(std::string(one), "[1]");
}

// Every text fits the documented bound, is as short as possible (but for
// boundary ties), and reads back as exactly the same float.
TEST(VectorTextFormat, RoundTripRandomBits) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  int longest = 0;
  for (int i = 0; i < 500000; i++) {
    const std::uint32_t b = any_bits(rng);
    float f;
    std::memcpy(&f, &b, sizeof f);
    if (!std::isfinite(f)) continue;
    char buf[kFloatTextMaxLen + 1];
    const int n = FormatFloat(f, buf);
    ASSERT_LE(n, kFloatTextMaxLen);
    longest = std::max(longest, n);
    buf[n] = '\0';
    const float back = std::strtof(buf, nullptr);
    ASSERT_EQ(Bits(back), Bits(f)) << buf;
    // Shortest: %.*g with fewer significant digits never round-trips.
    // Significant digits: neither leading zeros nor the trailing zeros of an
    // integer written without a point ("262120") count.
    std::string sig;
    bool point = false;
    for (int k = 0; k < n && buf[k] != 'e'; k++) {
      if (buf[k] == '.') point = true;
      if (buf[k] >= '0' && buf[k] <= '9' && (buf[k] != '0' || !sig.empty())) sig += buf[k];
    }
    if (!point) {
      while (!sig.empty() && sig.back() == '0') sig.pop_back();
    }
    const int digits = static_cast<int>(sig.size());
    // (Skipped at powers of two, where the round-trip interval is lopsided.)
    if (f != 0.0f && digits > 1 && (b & 0x7fffffu) != 0) {
      char shorter[40];
      std::snprintf(shorter, sizeof shorter, "%.*e", digits - 2, static_cast<double>(f));
      // It does not read back as f, or it lies exactly on the boundary of
      // f's rounding interval, which Postgres's output never uses.
      if (Bits(std::strtof(shorter, nullptr)) == Bits(f)) {
        const long double c = std::strtold(shorter, nullptr);
        const long double hi = (static_cast<long double>(f) + std::nextafter(f, HUGE_VALF)) / 2;
        const long double lo = (static_cast<long double>(f) + std::nextafter(f, -HUGE_VALF)) / 2;
        ASSERT_TRUE(c == hi || c == lo) << buf << " vs " << shorter;
      }
    }
  }
  EXPECT_EQ(longest, kFloatTextMaxLen);  // the bound is reached
}

TEST(VectorTextFormat, RoundTripThroughParser) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(1536);
  for (float& v : x) v = normal(rng);
  std::vector<char> buf(VectorTextBufferSize(1536));
  const std::size_t n = FormatVectorText(x.data(), 1536, buf.data());
  for (VectorTextParser parser : kParsers) {
    const std::vector<float> back = Values(std::string(buf.data(), n), parser);
    ASSERT_EQ(back.size(), x.size());
    for (std::size_t i = 0; i < x.size(); i++) ASSERT_EQ(Bits(back[i]), Bits(x[i]));
  }
}

TEST(VectorTextFormat, BufferBound) {
  // A longest element text (sign, 9 digits, point, "e-XX"), three times:
  // the bound has one spare byte (it counts a comma per element).
  const float worst = -0x1.9eb31cp-110f;
  char buf[kFloatTextMaxLen];
  ASSERT_EQ(FormatFloat(worst, buf), kFloatTextMaxLen);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(kFloatTextMaxLen)), "-1.24794135e-33");
  const float x[] = {worst, worst, worst};
  char out[VectorTextBufferSize(3)];
  EXPECT_EQ(FormatVectorText(x, 3, out) + 2, VectorTextBufferSize(3));
}

}  // namespace
}  // namespace vecext
