// The text form of a vector, "[1,2,3]": parsing and formatting, with no
// Postgres. The glue (src/pg/vector.cpp) turns a VectorTextError into
// pgvector's error message and SQLSTATE.
//
// Acceptance rules are pgvector's (a strtof loop): optional whitespace
// (space, \t, \n, \r, \v, \f), '[', numbers as strtof reads them (so "1.",
// ".5", "+1", "1e3", "0x1p3" and "inf"/"nan" spellings are read, the last two
// then rejected), separated by ',', then ']' and optional whitespace.
//
// Two parsers produce identical results for every input:
//  - strtof: the reference loop above.
//  - simdjson: reads the text as a JSON array of numbers (a padded copy, one
//    parser per thread, error codes only). It declines any text it cannot
//    decide exactly (not JSON, not an array of numbers, an overflow, a number
//    whose double lies exactly halfway between two floats, too many
//    elements, ...), and the strtof parser then decides, errors included.
#pragma once

#include <cstddef>

#include "core/status.h"

namespace vecext {

// The most dimensions a vector may have (pgvector's VECTOR_MAX_DIM).
inline constexpr int kVectorMaxDim = 16000;

enum class VectorTextParser : unsigned char {
  kSimdjson = 0,  // simdjson, falling back to strtof when it declines
  kStrtof = 1,    // the strtof loop only
};

// Why a text was rejected.
enum class VectorTextError : unsigned char {
  kNone = 0,
  kNoOpenBracket,     // the first non-space character is not '['
  kNoDimensions,      // "[]" (only whitespace between the brackets)
  kTooManyDims,       // more than kVectorMaxDim elements
  kSyntax,            // anything else malformed
  kOutOfRange,        // a number overflows float4 (token_* locate it)
  kNaN,               // an element is NaN
  kInfinite,          // an element is infinite ("inf", "Infinity", ...)
  kJunkAfterBracket,  // something other than whitespace follows the ']'
};

// Details of a parse, filled in by ParseVectorText.
struct VectorTextResult {
  int dim = 0;                              // elements written to `out`
  VectorTextError error = VectorTextError::kNone;
  std::size_t token_offset = 0;             // kOutOfRange: where the number starts
  std::size_t token_length = 0;             // kOutOfRange: its length
  bool fell_back = false;                   // simdjson declined, strtof decided
};

// Parses the text form of a vector into out[0..result->dim).
// REQUIRES: text[len] == '\0'; out has room for kVectorMaxDim floats.
// Returns Ok, or (with result->error set):
//   kInvalidInput  kNoOpenBracket, kNoDimensions, kSyntax, kJunkAfterBracket
//   kOutOfRange    kOutOfRange
//   kNotFinite     kNaN, kInfinite
//   kLimitExceeded kTooManyDims
// out[] may be partly written on failure. Never throws.
Status ParseVectorText(const char* text, std::size_t len, VectorTextParser parser, float* out,
                       VectorTextResult* result);

// The strtof loop alone (for tests and benchmarks); same contract.
Status ParseVectorTextStrtof(const char* text, std::size_t len, float* out,
                             VectorTextResult* result);

// The simdjson parser alone (for tests and benchmarks). Returns true and sets
// *dim when it accepted the text, which then is a valid vector whose values
// are exactly those strtof reads; false when it declined (nothing decided).
// REQUIRES as for ParseVectorText. Never throws.
bool TryParseVectorTextSimdjson(const char* text, std::size_t len, float* out, int* dim);

// The longest text FormatFloat writes ("-1.24794135e-33"), without a NUL.
inline constexpr int kFloatTextMaxLen = 15;

// Room for the longest text FormatVectorText writes for `dim` elements and its NUL.
inline constexpr std::size_t VectorTextBufferSize(int dim) {
  return 3 + static_cast<std::size_t>(dim) * (kFloatTextMaxLen + 1);
}

// Writes the text of one float (at most kFloatTextMaxLen bytes, no NUL) and
// returns its length. Postgres's float_to_shortest_decimal_bufn is one.
using FloatFormatter = int (*)(float f, char* out);

// Writes the shortest decimal text that reads back (strtof) as exactly f, in
// Postgres's float4out layout (extra_float_digits > 0): the shortest decimal
// strictly inside f's rounding interval, correctly rounded; plain notation
// when the decimal exponent is in [-4, 6), else "d.ddde+XX"; "-0" for
// negative zero. Identical to Postgres's float_to_shortest_decimal_bufn for
// every finite float (checked exhaustively), without Postgres.
// REQUIRES: f is finite; out has room for kFloatTextMaxLen bytes.
int FormatFloat(float f, char* out);

// Writes "[x0,x1,...]" and a NUL, each element by `format`. Returns the
// length without the NUL.
// REQUIRES: every x[i] is finite; dim >= 0; out has room for
// VectorTextBufferSize(dim) bytes.
std::size_t FormatVectorText(const float* x, int dim, char* out, FloatFormatter format = FormatFloat);

}  // namespace vecext
