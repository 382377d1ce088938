// One import record, {"id", "vector" | "embedding", "metadata", "document"},
// parsed from JSON with simdjson On Demand. No libpq: unit-tested alone.
//
// A record is a JSON object:
//   id         a string (no NUL), or an integer (its text becomes the id)
//   vector     an array of 1..kVectorMaxDim JSON numbers, each read as the
//   embedding  float4 strtof would give (a number too large for float4 is an
//              error, one too small becomes 0); exactly one of the two keys
//   metadata   an object (kept as its exact JSON text, for jsonb), or null
//              or absent ("{}")
//   document   a string or null (optional)
// Other keys are ignored, but every value is fully validated as JSON: a
// record is either wholly valid or rejected.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace vecext::cli {

struct Record {
  std::string id;
  std::vector<float> vector;
  std::string metadata = "{}";  // the JSON text of an object
  bool has_document = false;    // a non-null "document" was given
  std::string document;
};

enum class RecordStatus : unsigned char {
  kOk = 0,
  kInvalid,  // well-formed JSON that is not a valid record (the reader may go on)
  kSyntax,   // not well-formed JSON (a JSON array file cannot go on after this)
};

struct RecordParserOptions {
  bool require_id = true;          // false: records without "id" (query vectors)
  bool allow_bare_vector = false;  // true: a JSON array of numbers is a record with only a vector
};

class RecordParser {
 public:
  RecordParser() = default;
  explicit RecordParser(RecordParserOptions options) : options_(options) {}

  // Parses the record `value` into *out. expected_dim > 0: the vector must
  // have that many elements. On failure returns kInvalid or kSyntax and sets
  // *why (one line, no location); *out is then unspecified. Walks the whole
  // value, so that the iterator is left after it.
  RecordStatus Parse(simdjson::ondemand::value value, int expected_dim, Record* out, std::string* why);

  // Parses one whole JSON text (a JSON Lines line) as a record; anything but
  // whitespace after the record is a syntax error.
  // REQUIRES: capacity >= len + simdjson::SIMDJSON_PADDING bytes are readable at text.
  RecordStatus ParseText(const char* text, std::size_t len, std::size_t capacity, int expected_dim,
                         Record* out, std::string* why);

 private:
  RecordParserOptions options_;
  simdjson::ondemand::parser parser_;
};

// Reads one JSON number token (RFC 8259 grammar, nothing else) as a float4,
// correctly rounded like strtof. Returns false with *why set for a token that
// is not a JSON number or that overflows float4; underflow gives (signed) 0
// or a subnormal, as strtof does.
bool ParseJsonFloat(std::string_view token, float* out, std::string* why);

// True if token is a JSON number (RFC 8259).
bool IsJsonNumber(std::string_view token);

// Validates every part of `value` (structure, strings, numbers, literals).
// Returns SUCCESS, or a simdjson error; *nul_in_string is set when a string
// or key decodes to text containing U+0000 (which jsonb and text reject).
simdjson::error_code ValidateJsonValue(simdjson::ondemand::value value, bool* nul_in_string);

// Appends s as a JSON string literal, escaped like Python's json.dumps with
// ensure_ascii=False: \" \\ \n \r \t \b \f, other controls as \u00xx.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace vecext::cli
