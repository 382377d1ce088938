// Parsing import records (record.h).
#include "record.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "core/vector_text.h"

namespace vecext::cli {

namespace od = simdjson::ondemand;

namespace {

// Nesting beyond this is rejected (simdjson's own default limit is 1024).
constexpr int kMaxDepth = 512;

inline bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsJsonSpace(s.back())) s.remove_suffix(1);
  return s;
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string JsonError(simdjson::error_code e) {
  const char* what;
  switch (e) {
    case simdjson::TAPE_ERROR:
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      what = "a missing or extra comma, colon, brace, bracket or key";
      break;
    case simdjson::UNCLOSED_STRING: what = "a string is not closed"; break;
    case simdjson::STRING_ERROR: what = "a malformed string (bad escape or control character)"; break;
    case simdjson::NUMBER_ERROR: what = "a malformed number"; break;
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR: what = "a malformed literal (true, false, null)"; break;
    case simdjson::UTF8_ERROR: what = "not valid UTF-8"; break;
    case simdjson::DEPTH_ERROR: what = "nested too deeply"; break;
    case simdjson::EMPTY: what = "no JSON value"; break;
    default: what = simdjson::error_message(e);
  }
  return std::string("invalid JSON: ") + what;
}

simdjson::error_code Validate(od::value v, int depth, bool* nul) {
  if (depth > kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case od::json_type::object: {
      od::object obj;
      if (auto e = v.get_object().get(obj)) return e;
      for (auto field : obj) {
        std::string_view key;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (key.find('\0') != std::string_view::npos) *nul = true;
        od::value fv;
        if (auto e = field.value().get(fv)) return e;
        if (auto e = Validate(fv, depth + 1, nul)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array arr;
      if (auto e = v.get_array().get(arr)) return e;
      for (auto element : arr) {
        od::value ev;
        if (auto e = element.get(ev)) return e;
        if (auto e = Validate(ev, depth + 1, nul)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return e;
      if (s.find('\0') != std::string_view::npos) *nul = true;
      return simdjson::SUCCESS;
    }
    case od::json_type::number:
      return IsJsonNumber(TrimRight(v.raw_json_token())) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b) ? simdjson::T_ATOM_ERROR : simdjson::SUCCESS;
    }
    case od::json_type::null: {
      bool is_null;
      if (v.is_null().get(is_null) || !is_null) return simdjson::N_ATOM_ERROR;
      return simdjson::SUCCESS;
    }
  }
  return simdjson::TAPE_ERROR;
}

// First-error bookkeeping: a record keeps being walked after a semantic
// error, so that a later syntax error still wins (it is the worse one).
struct Outcome {
  RecordStatus status = RecordStatus::kOk;
  std::string why;

  void Invalid(std::string message) {
    if (status == RecordStatus::kOk) {
      status = RecordStatus::kInvalid;
      why = std::move(message);
    }
  }
  RecordStatus Syntax(simdjson::error_code e) {
    status = RecordStatus::kSyntax;
    why = JsonError(e);
    return status;
  }
};

const char* TypeName(od::json_type t) {
  switch (t) {
    case od::json_type::object: return "an object";
    case od::json_type::array: return "an array";
    case od::json_type::string: return "a string";
    case od::json_type::number: return "a number";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "a value";
}

// Reads a vector (array of numbers) from v. Returns false on a syntax error
// (set in *o); semantic errors go to *o and the array is still walked.
bool ReadVector(od::value v, const char* key, std::vector<float>* out, Outcome* o) {
  out->clear();
  od::array arr;
  if (auto e = v.get_array().get(arr)) {
    o->Syntax(e);
    return false;
  }
  bool nul = false;
  std::size_t index = 0;
  std::string why;
  for (auto element : arr) {
    od::value ev;
    if (auto e = element.get(ev)) {
      o->Syntax(e);
      return false;
    }
    od::json_type type;
    if (auto e = ev.type().get(type)) {
      o->Syntax(e);
      return false;
    }
    if (type != od::json_type::number) {
      o->Invalid(std::string("\"") + key + "\" element " + std::to_string(index) + " is " + TypeName(type) +
                 ", not a number");
      if (auto e = Validate(ev, 1, &nul)) {
        o->Syntax(e);
        return false;
      }
    } else {
      std::string_view token = TrimRight(ev.raw_json_token());
      float f;
      if (!IsJsonNumber(token)) {
        o->Syntax(simdjson::NUMBER_ERROR);
        return false;
      }
      if (!ParseJsonFloat(token, &f, &why)) {
        o->Invalid(std::string("\"") + key + "\" element " + std::to_string(index) + ": " + why);
      } else if (out->size() < static_cast<std::size_t>(kVectorMaxDim)) {
        out->push_back(f);
      }
    }
    index++;
  }
  if (index == 0) o->Invalid(std::string("\"") + key + "\" is empty: a vector needs at least 1 dimension");
  if (index > static_cast<std::size_t>(kVectorMaxDim)) {
    o->Invalid(std::string("\"") + key + "\" has " + std::to_string(index) + " elements, more than " +
               std::to_string(kVectorMaxDim));
  }
  return true;
}

}  // namespace

bool IsJsonNumber(std::string_view t) {
  std::size_t i = 0, n = t.size();
  if (i < n && t[i] == '-') i++;
  if (i >= n) return false;
  if (t[i] == '0') {
    i++;
  } else if (t[i] >= '1' && t[i] <= '9') {
    while (i < n && IsDigit(t[i])) i++;
  } else {
    return false;
  }
  if (i < n && t[i] == '.') {
    i++;
    if (i >= n || !IsDigit(t[i])) return false;
    while (i < n && IsDigit(t[i])) i++;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < n && (t[i] == '+' || t[i] == '-')) i++;
    if (i >= n || !IsDigit(t[i])) return false;
    while (i < n && IsDigit(t[i])) i++;
  }
  return i == n;
}

bool ParseJsonFloat(std::string_view token, float* out, std::string* why) {
  if (!IsJsonNumber(token)) {
    *why = "not a JSON number";
    return false;
  }
  const char* first = token.data();
  const char* last = first + token.size();
  float f = 0;
  auto r = std::from_chars(first, last, f);
  if (r.ec == std::errc() && r.ptr == last) {
    *out = f;
    return true;
  }
  // Out of range: strtof decides between overflow (an error, as in the
  // server's vector input) and underflow (a zero or subnormal, accepted).
  char buf[128];
  std::string big;
  const char* z;
  if (token.size() < sizeof(buf)) {
    std::memcpy(buf, first, token.size());
    buf[token.size()] = '\0';
    z = buf;
  } else {
    big.assign(token);
    z = big.c_str();
  }
  errno = 0;
  char* end = nullptr;
  f = std::strtof(z, &end);
  if (end != z + token.size()) {
    *why = "not a JSON number";
    return false;
  }
  if (errno == ERANGE && std::isinf(f)) {
    *why = std::string(token.size() > 40 ? "the number" : token) + " is out of range for float4";
    return false;
  }
  *out = f;
  return true;
}

simdjson::error_code ValidateJsonValue(od::value value, bool* nul_in_string) {
  *nul_in_string = false;
  return Validate(value, 0, nul_in_string);
}

RecordStatus RecordParser::Parse(od::value value, int expected_dim, Record* out, std::string* why) {
  Outcome o;
  out->id.clear();
  out->vector.clear();
  out->metadata = "{}";
  out->has_document = false;
  out->document.clear();

  od::json_type type;
  if (auto e = value.type().get(type)) {
    o.Syntax(e);
    *why = o.why;
    return o.status;
  }
  bool nul = false;
  bool have_id = false, have_vector = false, have_metadata = false, have_document = false;
  const char* vector_key = "vector";

  if (type == od::json_type::array && options_.allow_bare_vector) {
    if (!ReadVector(value, "vector", &out->vector, &o)) {
      *why = o.why;
      return o.status;
    }
    have_vector = true;
  } else if (type != od::json_type::object) {
    o.Invalid(std::string("the record is ") + TypeName(type) + ", not a JSON object");
    if (auto e = Validate(value, 0, &nul)) o.Syntax(e);
    *why = o.why;
    return o.status;
  } else {
    od::object obj;
    if (auto e = value.get_object().get(obj)) {
      o.Syntax(e);
      *why = o.why;
      return o.status;
    }
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) {
        o.Syntax(e);
        break;
      }
      od::value fv;
      if (auto e = field.value().get(fv)) {
        o.Syntax(e);
        break;
      }
      od::json_type ft;
      if (auto e = fv.type().get(ft)) {
        o.Syntax(e);
        break;
      }
      bool walked = false;  // fv fully consumed
      if (key == "id") {
        if (have_id) o.Invalid("duplicate key \"id\"");
        have_id = true;
        if (ft == od::json_type::string) {
          std::string_view s;
          if (auto e = fv.get_string().get(s)) {
            o.Syntax(e);
            break;
          }
          if (s.find('\0') != std::string_view::npos) o.Invalid("\"id\" contains a NUL character (\\u0000)");
          out->id.assign(s);
          walked = true;
        } else if (ft == od::json_type::number) {
          std::string_view token = TrimRight(fv.raw_json_token());
          if (!IsJsonNumber(token)) {
            o.Syntax(simdjson::NUMBER_ERROR);
            break;
          }
          if (token.find_first_of(".eE") != std::string_view::npos) {
            o.Invalid("\"id\" is a number with a fraction or exponent: use a string or an integer");
          }
          out->id.assign(token);
          walked = true;
        } else {
          o.Invalid(std::string("\"id\" is ") + TypeName(ft) + ": use a string or an integer");
        }
      } else if (key == "vector" || key == "embedding") {
        const char* k = key == "vector" ? "vector" : "embedding";
        if (have_vector) {
          o.Invalid(std::string("duplicate key \"") + k + "\"" +
                    (std::strcmp(k, vector_key) != 0 ? " (give \"vector\" or \"embedding\", not both)" : ""));
        }
        vector_key = k;
        have_vector = true;
        if (ft == od::json_type::array) {
          if (!ReadVector(fv, k, &out->vector, &o)) break;
          walked = true;
        } else {
          o.Invalid(std::string("\"") + k + "\" is " + TypeName(ft) + ", not an array of numbers");
        }
      } else if (key == "metadata") {
        if (have_metadata) o.Invalid("duplicate key \"metadata\"");
        have_metadata = true;
        if (ft == od::json_type::object) {
          const char* start = fv.raw_json_token().data();
          bool meta_nul = false;
          if (auto e = Validate(fv, 1, &meta_nul)) {
            o.Syntax(e);
            break;
          }
          const char* end = nullptr;
          if (auto e = fv.current_location().get(end)) {
            o.Syntax(e);
            break;
          }
          out->metadata.assign(TrimRight(std::string_view(start, static_cast<std::size_t>(end - start))));
          if (meta_nul) o.Invalid("\"metadata\" contains a NUL character (\\u0000), which jsonb rejects");
          walked = true;
        } else if (ft != od::json_type::null) {
          o.Invalid(std::string("\"metadata\" is ") + TypeName(ft) + ", not an object");
        }
      } else if (key == "document") {
        if (have_document) o.Invalid("duplicate key \"document\"");
        have_document = true;
        if (ft == od::json_type::string) {
          std::string_view s;
          if (auto e = fv.get_string().get(s)) {
            o.Syntax(e);
            break;
          }
          if (s.find('\0') != std::string_view::npos) o.Invalid("\"document\" contains a NUL character");
          out->document.assign(s);
          out->has_document = true;
          walked = true;
        } else if (ft != od::json_type::null) {
          o.Invalid(std::string("\"document\" is ") + TypeName(ft) + ", not a string");
        }
      }
      if (!walked) {
        if (auto e = Validate(fv, 1, &nul)) {
          o.Syntax(e);
          break;
        }
      }
    }
  }
  if (o.status == RecordStatus::kSyntax) {
    *why = o.why;
    return o.status;
  }
  if (options_.require_id && !have_id) o.Invalid("missing \"id\"");
  if (!have_vector) o.Invalid("missing \"vector\" (or \"embedding\")");
  if (o.status == RecordStatus::kOk && expected_dim > 0 &&
      out->vector.size() != static_cast<std::size_t>(expected_dim)) {
    o.Invalid(std::string("\"") + vector_key + "\" has " + std::to_string(out->vector.size()) +
              " dimensions, expected " + std::to_string(expected_dim));
  }
  if (o.status != RecordStatus::kOk) *why = o.why;
  return o.status;
}

RecordStatus RecordParser::ParseText(const char* text, std::size_t len, std::size_t capacity,
                                     int expected_dim, Record* out, std::string* why) {
  od::document doc;
  if (auto e = parser_.iterate(text, len, capacity).get(doc)) {
    *why = JsonError(e);
    return RecordStatus::kSyntax;
  }
  od::json_type type;
  if (auto e = doc.type().get(type)) {
    *why = JsonError(e);
    return RecordStatus::kSyntax;
  }
  if (type != od::json_type::object && type != od::json_type::array) {
    *why = std::string("the record is ") + TypeName(type) + ", not a JSON object";
    return RecordStatus::kInvalid;
  }
  od::value value;
  if (auto e = doc.get_value().get(value)) {
    *why = JsonError(e);
    return RecordStatus::kSyntax;
  }
  RecordStatus status = Parse(value, expected_dim, out, why);
  if (status == RecordStatus::kSyntax) return status;
  const char* rest = nullptr;
  if (!doc.current_location().get(rest)) {
    *why = "invalid JSON: more than one value on the line";
    return RecordStatus::kSyntax;
  }
  return status;
}

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  std::size_t run = 0;  // start of the pending run of plain bytes
  for (std::size_t i = 0; i < s.size(); i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

}  // namespace vecext::cli
