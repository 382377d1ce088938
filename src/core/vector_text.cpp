// Parsing and formatting the text form of a vector (vector_text.h).
#include "core/vector_text.h"

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

std::size_t FormatFloat(float f, char* out) {
  // The shortest round-trip digits, in scientific form "-d.ddde-XX".
  char sci[32];
  const std::to_chars_result r =
      std::to_chars(sci, sci + sizeof sci, f, std::chars_format::scientific);
  const char* p = sci;
  const char* end = r.ptr;

  char* o = out;
  if (*p == '-') *o++ = *p++;

  char digits[16];
  int ndigits = 0;
  while (p < end && *p != 'e') {
    if (*p != '.') digits[ndigits++] = *p;
    p++;
  }
  int exp = 0;
  if (p < end) {
    p++;  // 'e'
    const bool negative = *p == '-';
    p++;  // sign
    while (p < end) exp = exp * 10 + (*p++ - '0');
    if (negative) exp = -exp;
  }

  if (ndigits == 1 && digits[0] == '0') {
    *o++ = '0';
    return static_cast<std::size_t>(o - out);
  }

  if (exp >= -4 && exp < 6) {
    if (exp < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > exp; i--) *o++ = '0';
      for (int i = 0; i < ndigits; i++) *o++ = digits[i];
    } else {
      const int int_digits = exp + 1;
      for (int i = 0; i < int_digits; i++) *o++ = i < ndigits ? digits[i] : '0';
      if (ndigits > int_digits) {
        *o++ = '.';
        for (int i = int_digits; i < ndigits; i++) *o++ = digits[i];
      }
    }
  } else {
    *o++ = digits[0];
    if (ndigits > 1) {
      *o++ = '.';
      for (int i = 1; i < ndigits; i++) *o++ = digits[i];
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
  return static_cast<std::size_t>(o - out);
}

std::size_t FormatVectorText(const float* x, int dim, char* out) {
  char* o = out;
  *o++ = '[';
  for (int i = 0; i < dim; i++) {
    if (i > 0) *o++ = ',';
    o += FormatFloat(x[i], o);
  }
  *o++ = ']';
  *o = '\0';
  return static_cast<std::size_t>(o - out);
}

}  // namespace vecext
