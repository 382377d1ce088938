// Parsing and formatting the text form of a vector (vector_text.h).
#include "core/vector_text.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <simdjson.h>

namespace vecext {

namespace {

// pgvector's whitespace (array_isspace): not locale-dependent.
inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline const char* SkipSpace(const char* p) {
  while (IsSpace(*p)) p++;
  return p;
}

Status Fail(VectorTextResult* result, VectorTextError error) {
  result->error = error;
  switch (error) {
    case VectorTextError::kNoOpenBracket:
      return Status::Error(StatusCode::kInvalidInput, "vector contents must start with \"[\"");
    case VectorTextError::kNoDimensions:
      return Status::Error(StatusCode::kInvalidInput, "vector must have at least 1 dimension");
    case VectorTextError::kTooManyDims:
      return Status::Error(StatusCode::kLimitExceeded, "vector has too many dimensions");
    case VectorTextError::kOutOfRange:
      return Status::Error(StatusCode::kOutOfRange, "number is out of range for type vector");
    case VectorTextError::kNaN:
      return Status::Error(StatusCode::kNotFinite, "NaN not allowed in vector");
    case VectorTextError::kInfinite:
      return Status::Error(StatusCode::kNotFinite, "infinite value not allowed in vector");
    case VectorTextError::kJunkAfterBracket:
      return Status::Error(StatusCode::kInvalidInput, "junk after closing right brace");
    case VectorTextError::kSyntax:
    case VectorTextError::kNone:
      break;
  }
  result->error = VectorTextError::kSyntax;
  return Status::Error(StatusCode::kInvalidInput, "invalid input syntax for type vector");
}

// ---------------------------------------------------------------------------
// simdjson

// Texts longer than this go straight to strtof, so that one huge literal does
// not leave a huge parser and buffer behind in the backend.
constexpr std::size_t kSimdjsonMaxLen = std::size_t{1} << 20;

// The per-thread parser and its padded input buffer, reused across calls.
struct SimdjsonState {
  simdjson::dom::parser parser;
  char* buf = nullptr;
  std::size_t cap = 0;

  SimdjsonState() = default;
  SimdjsonState(const SimdjsonState&) = delete;
  SimdjsonState& operator=(const SimdjsonState&) = delete;
  ~SimdjsonState() { std::free(buf); }

  // A buffer of at least n bytes, or nullptr.
  char* Buffer(std::size_t n) {
    if (n > cap) {
      std::size_t want = cap == 0 ? 4096 : cap;
      while (want < n) want *= 2;
      char* b = static_cast<char*>(std::malloc(want));
      if (b == nullptr) return nullptr;
      std::free(buf);
      buf = b;
      cap = want;
    }
    return buf;
  }
};

SimdjsonState* State() {
  // Constructed on first use; allocation happens lazily inside simdjson
  // (error codes, no exceptions) and in Buffer().
  static thread_local SimdjsonState state;
  return &state;
}

// Converts the double simdjson read from a decimal number d to the float
// strtof would return for d. Returns false when that cannot be decided from
// the double alone: an overflow (strtof reports ERANGE), or a double that
// lies exactly halfway between two floats (d may be on either side of it).
//
// Why that suffices: rounding to double is monotonic and every float and
// every midpoint between adjacent floats is a double. So when x = double(d)
// is not a midpoint, x lies strictly on the same side of every midpoint as
// d, and x and d round to the same float.
inline bool DoubleToFloatLikeStrtof(double x, float* out) {
  const float f = static_cast<float>(x);
  if (!std::isfinite(f)) return false;
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const unsigned biased_exp = static_cast<unsigned>((bits >> 52) & 0x7ff);
  if (biased_exp >= 1023 - 126) {
    // |x| >= FLT_MIN: a float keeps 24 of the double's 53 significant bits;
    // a midpoint drops exactly the bit pattern 1000...0 (29 bits).
    if ((bits & 0x1fffffffULL) == 0x10000000ULL) return false;
  } else if (static_cast<double>(f) != x) {
    // Float subnormal range (rare): compare with the actual midpoint.
    const float g = std::nextafter(f, x > static_cast<double>(f) ? HUGE_VALF : -HUGE_VALF);
    if ((static_cast<double>(f) + static_cast<double>(g)) * 0.5 == x) return false;
  }
  *out = f;
  return true;
}

// Whether the text has an integer token "-0" (JSON: '-', '0', then no
// fraction or exponent). simdjson stores integers as int64, which loses the
// sign of such a zero; strtof keeps it.
bool HasNegativeIntegerZero(const char* text, std::size_t len) {
  for (std::size_t i = 0; i + 1 < len; i++) {
    if (text[i] == '-' && text[i + 1] == '0') {
      const char next = i + 2 < len ? text[i + 2] : '\0';
      if (next != '.' && next != 'e' && next != 'E') return true;
    }
  }
  return false;
}

}  // namespace

bool TryParseVectorTextSimdjson(const char* text, std::size_t len, float* out, int* dim) {
  if (len > kSimdjsonMaxLen) return false;
  SimdjsonState* state = State();
  char* buf = state->Buffer(len + simdjson::SIMDJSON_PADDING);
  if (buf == nullptr) return false;
  std::memcpy(buf, text, len);
  std::memset(buf + len, 0, simdjson::SIMDJSON_PADDING);

  simdjson::dom::element doc;
  if (state->parser.parse(buf, len, false).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::array array;
  if (doc.get_array().get(array) != simdjson::SUCCESS) return false;

  int n = 0;
  bool checked_zero_sign = false;
  for (simdjson::dom::element element : array) {
    if (n == kVectorMaxDim) return false;
    double value;
    if (element.get_double().get(value) != simdjson::SUCCESS) return false;
    if (value == 0.0 && element.type() != simdjson::dom::element_type::DOUBLE &&
        !checked_zero_sign) {
      if (HasNegativeIntegerZero(text, len)) return false;
      checked_zero_sign = true;
    }
    if (!DoubleToFloatLikeStrtof(value, &out[n])) return false;
    n++;
  }
  if (n == 0) return false;
  *dim = n;
  return true;
}

Status ParseVectorTextStrtof(const char* text, std::size_t len, float* out,
                             VectorTextResult* result) {
  (void)len;  // the text is NUL-terminated; strtof needs that anyway
  result->dim = 0;
  result->error = VectorTextError::kNone;

  const char* p = SkipSpace(text);
  if (*p != '[') return Fail(result, VectorTextError::kNoOpenBracket);
  p = SkipSpace(p + 1);
  if (*p == ']') return Fail(result, VectorTextError::kNoDimensions);

  int dim = 0;
  for (;;) {
    if (dim == kVectorMaxDim) return Fail(result, VectorTextError::kTooManyDims);
    p = SkipSpace(p);
    if (*p == '\0') return Fail(result, VectorTextError::kSyntax);

    char* end;
    errno = 0;
    const float value = std::strtof(p, &end);
    if (end == p) return Fail(result, VectorTextError::kSyntax);
    if (errno == ERANGE && std::isinf(value)) {
      result->token_offset = static_cast<std::size_t>(p - text);
      result->token_length = static_cast<std::size_t>(end - p);
      return Fail(result, VectorTextError::kOutOfRange);
    }
    if (std::isnan(value)) return Fail(result, VectorTextError::kNaN);
    if (std::isinf(value)) return Fail(result, VectorTextError::kInfinite);
    out[dim++] = value;

    p = SkipSpace(end);
    if (*p == ',') {
      p++;
    } else if (*p == ']') {
      p++;
      break;
    } else {
      return Fail(result, VectorTextError::kSyntax);
    }
  }

  p = SkipSpace(p);
  if (*p != '\0') return Fail(result, VectorTextError::kJunkAfterBracket);
  result->dim = dim;
  return Status::Ok();
}

Status ParseVectorText(const char* text, std::size_t len, VectorTextParser parser, float* out,
                       VectorTextResult* result) {
  result->fell_back = false;
  if (parser == VectorTextParser::kSimdjson) {
    int dim;
    if (TryParseVectorTextSimdjson(text, len, out, &dim)) {
      result->dim = dim;
      result->error = VectorTextError::kNone;
      return Status::Ok();
    }
    result->fell_back = true;
  }
  return ParseVectorTextStrtof(text, len, out, result);
}

// ---------------------------------------------------------------------------
// Formatting
//
// Postgres prints a float4 (float4out, extra_float_digits > 0) as the
// shortest decimal that lies strictly inside the float's rounding interval,
// correctly rounded; it never picks a decimal exactly on the interval's
// boundary (Ryu with acceptBounds = false). std::to_chars gives the shortest
// decimal of the closed interval when the significand is even. The two
// differ only when a decimal of at most 9 digits can sit exactly on a
// boundary, which needs |f| >= 2^22 (a boundary below that has more than 9
// significant digits); only that case takes the slower exact search below.

namespace {

// A decimal digits * 10^exp10 (digits < 10^9).
struct Decimal {
  std::uint32_t digits;
  int exp10;
};

using u128 = unsigned __int128;

// Sign of a * 2^sa - b * 2^sb. REQUIRES: 0 < a, b < 2^127.
int CompareScaled(u128 a, int sa, u128 b, int sb) {
  if (sa > sb) {
    const int d = sa - sb;
    if (d >= 127 || (a >> (127 - d)) != 0) return 1;
    a <<= d;
  } else if (sb > sa) {
    const int d = sb - sa;
    if (d >= 127 || (b >> (127 - d)) != 0) return -1;
    b <<= d;
  }
  return a < b ? -1 : (a > b ? 1 : 0);
}

u128 Pow5(int k) {
  u128 r = 1;
  for (int i = 0; i < k; i++) r *= 5;
  return r;
}

// Sign of dec - m * 2^e. REQUIRES: dec.digits > 0, m > 0, m < 2^32,
// 0 <= dec.exp10 + 2 <= 40 (true for |f| >= 2^22, at most 9 digits).
int CompareDecimal(Decimal dec, std::uint64_t m, int e) {
  // Multiply both sides by 10^2 so that the decimal is an integer:
  // digits * 5^(k+2) * 2^(k+2)  vs  m * 25 * 2^(e+2).
  const int k = dec.exp10 + 2;
  return CompareScaled(static_cast<u128>(dec.digits) * Pow5(k), k, static_cast<u128>(m) * 25, e + 2);
}

// Correctly rounded `ndigits`-digit decimal of the float af > 0.
Decimal RoundTo(float af, int ndigits) {
  char buf[32];
  const std::to_chars_result r =
      std::to_chars(buf, buf + sizeof buf, af, std::chars_format::scientific, ndigits - 1);
  Decimal d{0, 0};
  const char* p = buf;
  int n = 0;
  for (; p < r.ptr && *p != 'e'; p++) {
    if (*p != '.') {
      d.digits = d.digits * 10 + static_cast<std::uint32_t>(*p - '0');
      n++;
    }
  }
  int exp = 0;
  const bool negative = p + 1 < r.ptr && p[1] == '-';
  for (p += 2; p < r.ptr; p++) exp = exp * 10 + (*p - '0');
  d.exp10 = (negative ? -exp : exp) - (n - 1);
  return d;
}

// Postgres's shortest decimal for af >= 2^22 with an even significand:
// the shortest length with a decimal strictly inside (lo, hi); at that
// length the correctly rounded value, moved one unit inwards if it is on or
// beyond a boundary.
Decimal ShortestStrictlyInside(float af) {
  std::uint32_t bits;
  std::memcpy(&bits, &af, sizeof bits);
  const int biased = static_cast<int>(bits >> 23);
  const std::uint64_t m = (bits & 0x7fffffu) | 0x800000u;  // af = m * 2^e
  const int e = biased - 127 - 23;
  // hi = (2m + 1) * 2^(e-1); lo = (2m - 1) * 2^(e-1), or (4m - 1) * 2^(e-2)
  // at a power of two, where the float below is half as far away.
  const std::uint64_t hi_m = 2 * m + 1;
  const int hi_e = e - 1;
  const bool power_of_two = (bits & 0x7fffffu) == 0;
  const std::uint64_t lo_m = power_of_two ? 4 * m - 1 : 2 * m - 1;
  const int lo_e = power_of_two ? e - 2 : e - 1;

  auto inside = [&](Decimal d) {
    return d.digits > 0 && CompareDecimal(d, lo_m, lo_e) > 0 && CompareDecimal(d, hi_m, hi_e) < 0;
  };
  for (int ndigits = 1; ndigits <= 9; ndigits++) {
    const Decimal d = RoundTo(af, ndigits);
    if (inside(d)) return d;
    const Decimal up{d.digits + 1, d.exp10};
    if (CompareDecimal(d, lo_m, lo_e) <= 0 && inside(up)) return up;
    const Decimal down{d.digits - 1, d.exp10};
    if (CompareDecimal(d, hi_m, hi_e) >= 0 && inside(down)) return down;
  }
  return RoundTo(af, 9);  // not reached: 9 digits always suffice
}

// Writes digits * 10^exp10 in float4out's layout; returns the length.
int WriteDecimal(std::uint32_t digits, int exp10, char* out) {
  char d[10] = {};
  int n = 0;
  while (digits % 10 == 0 && digits != 0) {  // no trailing zeros
    digits /= 10;
    exp10++;
  }
  for (std::uint32_t v = digits; v != 0; v /= 10) d[n++] = static_cast<char>('0' + v % 10);
  std::reverse(d, d + n);
  const int exp = exp10 + n - 1;  // exponent of the first digit

  char* o = out;
  if (exp >= -4 && exp < 6) {
    if (exp < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > exp; i--) *o++ = '0';
      for (int i = 0; i < n; i++) *o++ = d[i];
    } else {
      const int int_digits = exp + 1;
      for (int i = 0; i < int_digits; i++) *o++ = i < n ? d[i] : '0';
      if (n > int_digits) {
        *o++ = '.';
        for (int i = int_digits; i < n; i++) *o++ = d[i];
      }
    }
  } else {
    *o++ = d[0];
    if (n > 1) {
      *o++ = '.';
      for (int i = 1; i < n; i++) *o++ = d[i];
    }
    *o++ = 'e';
    int e = exp;
    if (e < 0) {
      *o++ = '-';
      e = -e;
    } else {
      *o++ = '+';
    }
    *o++ = static_cast<char>('0' + e / 10);
    *o++ = static_cast<char>('0' + e % 10);
  }
  return static_cast<int>(o - out);
}

}  // namespace

int FormatFloat(float f, char* out) {
  char* o = out;
  if (std::signbit(f)) *o++ = '-';
  const float af = std::fabs(f);
  if (af == 0.0f) {
    *o++ = '0';
    return static_cast<int>(o - out);
  }
  std::uint32_t bits;
  std::memcpy(&bits, &af, sizeof bits);
  if (af >= 4194304.0f && (bits & 1u) == 0) {  // 2^22, even significand
    const Decimal d = ShortestStrictlyInside(af);
    return static_cast<int>(o - out) + WriteDecimal(d.digits, d.exp10, o);
  }
  // The shortest round-trip digits, in scientific form "d.ddde-XX".
  char sci[32];
  const std::to_chars_result r = std::to_chars(sci, sci + sizeof sci, af, std::chars_format::scientific);
  std::uint32_t digits = 0;
  int n = 0;
  const char* p = sci;
  for (; p < r.ptr && *p != 'e'; p++) {
    if (*p != '.') {
      digits = digits * 10 + static_cast<std::uint32_t>(*p - '0');
      n++;
    }
  }
  int exp = 0;
  const bool negative = p + 1 < r.ptr && p[1] == '-';
  for (p += 2; p < r.ptr; p++) exp = exp * 10 + (*p - '0');
  if (negative) exp = -exp;
  return static_cast<int>(o - out) + WriteDecimal(digits, exp - (n - 1), o);
}

std::size_t FormatVectorText(const float* x, int dim, char* out, FloatFormatter format) {
  char* o = out;
  *o++ = '[';
  for (int i = 0; i < dim; i++) {
    if (i > 0) *o++ = ',';
    o += format(x[i], o);
  }
  *o++ = ']';
  *o = '\0';
  return static_cast<std::size_t>(o - out);
}

}  // namespace vecext
