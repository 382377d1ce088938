// Unit tests of the command-line tool's record parsing (tools/cli/record.h):
// JSON numbers read as float4 exactly as strtof / the server read them, the
// shortest-decimal round trip, records and every kind of bad record.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "core/vector_text.h"
#include "names.h"
#include "record.h"

namespace vecext::cli {
namespace {

std::uint32_t Bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float FromBits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Parses text as one JSON Lines record (with padding).
RecordStatus ParseLine(RecordParser* p, const std::string& text, Record* rec, std::string* why, int dim = 0) {
  std::string padded = text;
  padded.resize(text.size() + simdjson::SIMDJSON_PADDING, ' ');
  return p->ParseText(padded.data(), text.size(), padded.size(), dim, rec, why);
}

TEST(CliJsonFloat, ReadsLikeStrtof) {
  std::string why;
  float f = 1;
  const char* cases[] = {"0.1", "1e-38", "3.4e38", "-3.4028235e+38", "1.1754944e-38", "1e-45", "16777217",
                         "123456.79", "-1.5e-7", "0", "1E5", "2.5e+3", "0.30000001192092896"};
  for (const char* c : cases) {
    ASSERT_TRUE(ParseJsonFloat(c, &f, &why)) << c << ": " << why;
    EXPECT_EQ(Bits(f), Bits(std::strtof(c, nullptr))) << c;
  }
  ASSERT_TRUE(ParseJsonFloat("-0", &f, &why));
  EXPECT_TRUE(std::signbit(f));
  EXPECT_EQ(f, 0.0f);
  ASSERT_TRUE(ParseJsonFloat("-0.0", &f, &why));
  EXPECT_TRUE(std::signbit(f));
  // Underflow rounds (to a subnormal or zero), as strtof and the server do.
  ASSERT_TRUE(ParseJsonFloat("1e-50", &f, &why));
  EXPECT_EQ(f, 0.0f);
  ASSERT_TRUE(ParseJsonFloat("-1e-50", &f, &why));
  EXPECT_TRUE(std::signbit(f));
  ASSERT_TRUE(ParseJsonFloat("7e-46", &f, &why));
  EXPECT_EQ(f, 0.0f);
  ASSERT_TRUE(ParseJsonFloat("8e-46", &f, &why));
  EXPECT_EQ(f, std::numeric_limits<float>::denorm_min());
  // 3.4028235677973366e38 rounds down to FLT_MAX; 3.4028236e38 overflows.
  ASSERT_TRUE(ParseJsonFloat("3.40282356e38", &f, &why));
  EXPECT_EQ(f, std::numeric_limits<float>::max());
  EXPECT_FALSE(ParseJsonFloat("3.4028236e38", &f, &why));
  EXPECT_NE(why.find("out of range"), std::string::npos);
  EXPECT_FALSE(ParseJsonFloat("1e39", &f, &why));
  EXPECT_FALSE(ParseJsonFloat("-1e400", &f, &why));
}

TEST(CliJsonFloat, RejectsWhatJsonRejects) {
  std::string why;
  float f;
  for (const char* c : {"01", "1.", ".5", "+1", "-", "", "inf", "NaN", "Infinity", "0x10", "1e", "1e+", "1.e3",
                        "--1", "1 ", " 1", "1f", "1,2"}) {
    EXPECT_FALSE(IsJsonNumber(c)) << c;
    EXPECT_FALSE(ParseJsonFloat(c, &f, &why)) << c;
  }
  for (const char* c : {"0", "-0", "10", "1.5", "1e5", "1E-5", "-0.0e+00", "123456789012345678901234567890"}) {
    EXPECT_TRUE(IsJsonNumber(c)) << c;
  }
}

// The export writes FormatFloat's shortest decimal; reading it back must
// give the same bits for every finite float.
TEST(CliJsonFloat, ShortestDecimalRoundTripsBitExactly) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::uint32_t> bits;
  char buf[kFloatTextMaxLen + 1];
  std::string why;
  auto check = [&](float x) {
    const int n = FormatFloat(x, buf);
    float y = 12345;
    ASSERT_TRUE(ParseJsonFloat(std::string_view(buf, static_cast<std::size_t>(n)), &y, &why))
        << std::string(buf, static_cast<std::size_t>(n)) << ": " << why;
    ASSERT_EQ(Bits(x), Bits(y)) << std::string(buf, static_cast<std::size_t>(n));
  };
  for (float x : {0.0f, -0.0f, 0.1f, 1e-38f, 3.4e38f, -3.4028235e38f, 1e-45f, 1.17549435e-38f, 1e-5f, 16777216.0f,
                  0.3f, 123456.79f}) {
    check(x);
  }
  for (int i = 0; i < 200000; i++) {
    const float x = FromBits(bits(rng));
    if (std::isfinite(x)) check(x);
  }
  for (std::uint32_t u = 0; u < 5000; u++) check(FromBits(u));                // smallest subnormals
  for (std::uint32_t u = 0x7f7fffffu; u > 0x7f7fffffu - 5000; u--) check(FromBits(u));  // largest floats
}

TEST(CliRecord, ParsesRecords) {
  RecordParser p;
  Record r;
  std::string why;
  ASSERT_EQ(ParseLine(&p, R"({"id": "a", "vector": [1, -0, 0.1, 1e-38], "metadata": {"k": [1, "x"]}})", &r, &why),
            RecordStatus::kOk)
      << why;
  EXPECT_EQ(r.id, "a");
  ASSERT_EQ(r.vector.size(), 4u);
  EXPECT_EQ(r.vector[0], 1.0f);
  EXPECT_TRUE(std::signbit(r.vector[1]));
  EXPECT_EQ(Bits(r.vector[2]), Bits(0.1f));
  EXPECT_EQ(Bits(r.vector[3]), Bits(1e-38f));
  EXPECT_EQ(r.metadata, R"({"k": [1, "x"]})");
  EXPECT_FALSE(r.has_document);

  // "embedding", keys in any order, integer ids, escapes, metadata text kept exactly.
  ASSERT_EQ(ParseLine(&p,
                      "{ \"metadata\" :\t{\"big\": 123456789012345678901234567890, \"s\": \"a\\u00e9\\n\\\"\"} ,"
                      " \"embedding\": [2], \"id\": 42, \"document\": \"doc\\ttext\", \"other\": [1, {\"x\": null}]}\r",
                      &r, &why),
            RecordStatus::kOk)
      << why;
  EXPECT_EQ(r.id, "42");
  EXPECT_EQ(r.vector, std::vector<float>{2.0f});
  EXPECT_EQ(r.metadata, "{\"big\": 123456789012345678901234567890, \"s\": \"a\\u00e9\\n\\\"\"}");
  EXPECT_TRUE(r.has_document);
  EXPECT_EQ(r.document, "doc\ttext");

  ASSERT_EQ(ParseLine(&p, R"({"id": "\u00e9\ud83d\ude00", "vector": [1], "metadata": null, "document": null})", &r,
                      &why),
            RecordStatus::kOk)
      << why;
  EXPECT_EQ(r.id, "\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(r.metadata, "{}");
  EXPECT_FALSE(r.has_document);

  ASSERT_EQ(ParseLine(&p, R"({"id": "", "vector": [1, 2, 3]})", &r, &why, 3), RecordStatus::kOk) << why;
  EXPECT_EQ(r.id, "");
  EXPECT_EQ(r.metadata, "{}");
}

struct BadCase {
  const char* json;
  RecordStatus status;
  const char* message;  // a substring of the reason
};

TEST(CliRecord, RejectsBadRecords) {
  const BadCase cases[] = {
      {R"({"id": "a", "vector": [1, 2)", RecordStatus::kSyntax, "invalid JSON"},
      {R"({"id": "a", "vector": [1, 2,]})", RecordStatus::kSyntax, "invalid JSON"},
      {R"({"id": "a" "vector": [1]})", RecordStatus::kSyntax, "invalid JSON"},
      {R"({"id": "a", "vector": [1], "x": tru})", RecordStatus::kSyntax, "literal"},
      {R"({"id": "a", "vector": [01]})", RecordStatus::kSyntax, "number"},
      {R"({"id": "a", "vector": [1], "metadata": {"a": 1.}})", RecordStatus::kSyntax, "number"},
      {R"({"id": "a", "vector": [NaN]})", RecordStatus::kSyntax, "invalid JSON"},
      {R"({"id": "a", "vector": [1]} {"id": "b"})", RecordStatus::kSyntax, "more than one value"},
      {R"({"id": "a", "vector": [1]}])", RecordStatus::kSyntax, "invalid JSON"},
      {"{\"id\": \"a\xff\", \"vector\": [1]}", RecordStatus::kSyntax, "UTF-8"},
      {R"({"id": "a\q", "vector": [1]})", RecordStatus::kSyntax, "string"},
      {R"({"vector": [1]})", RecordStatus::kInvalid, "missing \"id\""},
      {R"({"id": "a"})", RecordStatus::kInvalid, "missing \"vector\""},
      {R"({"id": "a", "vector": "[1,2]"})", RecordStatus::kInvalid, "not an array"},
      {R"({"id": "a", "vector": [1, "2"]})", RecordStatus::kInvalid, "element 1 is a string"},
      {R"({"id": "a", "vector": [1, [2]]})", RecordStatus::kInvalid, "element 1 is an array"},
      {R"({"id": "a", "vector": [1, null]})", RecordStatus::kInvalid, "element 1 is null"},
      {R"({"id": "a", "vector": [1e39]})", RecordStatus::kInvalid, "out of range"},
      {R"({"id": "a", "vector": []})", RecordStatus::kInvalid, "at least 1 dimension"},
      {R"({"id": "a", "vector": [1, 2]})", RecordStatus::kInvalid, "2 dimensions, expected 3"},
      {R"({"id": "a", "vector": [1, 2, 3], "metadata": [1]})", RecordStatus::kInvalid, "not an object"},
      {R"({"id": "a", "vector": [1, 2, 3], "metadata": "x"})", RecordStatus::kInvalid, "not an object"},
      {R"({"id": "a", "vector": [1, 2, 3], "metadata": {"a": "\u0000"}})", RecordStatus::kInvalid, "NUL"},
      {R"({"id": "a", "vector": [1, 2, 3], "metadata": {"\u0000": 1}})", RecordStatus::kInvalid, "NUL"},
      {R"({"id": "a\u0000", "vector": [1, 2, 3]})", RecordStatus::kInvalid, "NUL"},
      {R"({"id": 1.5, "vector": [1, 2, 3]})", RecordStatus::kInvalid, "fraction"},
      {R"({"id": true, "vector": [1, 2, 3]})", RecordStatus::kInvalid, "a boolean"},
      {R"({"id": null, "vector": [1, 2, 3]})", RecordStatus::kInvalid, "\"id\" is null"},
      {R"({"id": "a", "id": "b", "vector": [1, 2, 3]})", RecordStatus::kInvalid, "duplicate key \"id\""},
      {R"({"id": "a", "vector": [1, 2, 3], "embedding": [1, 2, 3]})", RecordStatus::kInvalid, "not both"},
      {R"({"id": "a", "vector": [1, 2, 3], "document": 5})", RecordStatus::kInvalid, "not a string"},
      {R"([1, 2, 3])", RecordStatus::kInvalid, "not a JSON object"},
      {R"("text")", RecordStatus::kInvalid, "not a JSON object"},
      {R"(17)", RecordStatus::kInvalid, "not a JSON object"},
      // A semantic error first, then a syntax error: the syntax error wins.
      {R"({"vector": [1, 2, 3], "id": 5.5, "x": [1 2]})", RecordStatus::kSyntax, "invalid JSON"},
  };
  RecordParser p;
  for (const BadCase& c : cases) {
    Record r;
    std::string why;
    EXPECT_EQ(ParseLine(&p, c.json, &r, &why, 3), c.status) << c.json << " -> " << why;
    EXPECT_NE(why.find(c.message), std::string::npos) << c.json << " -> " << why;
  }
}

TEST(CliRecord, TooManyDimensions) {
  std::string line = R"({"id": "a", "vector": [)";
  for (int i = 0; i <= kVectorMaxDim; i++) line += i ? ",1" : "1";
  line += "]}";
  RecordParser p;
  Record r;
  std::string why;
  EXPECT_EQ(ParseLine(&p, line, &r, &why), RecordStatus::kInvalid);
  EXPECT_NE(why.find("more than"), std::string::npos) << why;
}

TEST(CliRecord, QueryVectorOptions) {
  RecordParserOptions o;
  o.require_id = false;
  o.allow_bare_vector = true;
  RecordParser p(o);
  Record r;
  std::string why;
  ASSERT_EQ(ParseLine(&p, "[1, 2.5, -3]", &r, &why, 3), RecordStatus::kOk) << why;
  EXPECT_EQ(r.vector, (std::vector<float>{1.0f, 2.5f, -3.0f}));
  ASSERT_EQ(ParseLine(&p, R"({"embedding": [4, 5, 6]})", &r, &why, 3), RecordStatus::kOk) << why;
  EXPECT_EQ(r.vector, (std::vector<float>{4.0f, 5.0f, 6.0f}));
  EXPECT_EQ(ParseLine(&p, "[1, 2]", &r, &why, 3), RecordStatus::kInvalid);
  EXPECT_EQ(ParseLine(&p, R"(["a", 2, 3])", &r, &why, 3), RecordStatus::kInvalid);
}

TEST(CliJsonString, EscapesLikePythonJsonDumps) {
  std::string s;
  AppendJsonString(&s, "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk\xc3\xa9");
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\x7fk\xc3\xa9\"");
  s.clear();
  AppendJsonString(&s, std::string("\0x", 2));
  EXPECT_EQ(s, "\"\\u0000x\"");
  s.clear();
  AppendJsonString(&s, "");
  EXPECT_EQ(s, "\"\"");
}

TEST(CliNames, CollectionNamesAndMetrics) {
  EXPECT_TRUE(ValidCollectionName("items"));
  EXPECT_TRUE(ValidCollectionName("a1_b"));
  EXPECT_TRUE(ValidCollectionName(std::string(48, 'a')));
  EXPECT_FALSE(ValidCollectionName(std::string(49, 'a')));
  EXPECT_FALSE(ValidCollectionName(""));
  EXPECT_FALSE(ValidCollectionName("Items"));
  EXPECT_FALSE(ValidCollectionName("1a"));
  EXPECT_FALSE(ValidCollectionName("_a"));
  EXPECT_FALSE(ValidCollectionName("a-b"));
  EXPECT_FALSE(ValidCollectionName("a\"b"));
  EXPECT_TRUE(ValidSchemaName("_s"));
  EXPECT_FALSE(ValidSchemaName("S"));
  ASSERT_NE(FindMetric("cosine"), nullptr);
  EXPECT_STREQ(FindMetric("cosine")->op, "<=>");
  EXPECT_STREQ(FindMetric("l2")->opclass, "vector_l2_ops");
  EXPECT_EQ(FindMetricByOpclass("vector_ip_ops"), FindMetric("ip"));
  EXPECT_EQ(FindMetric("hamming"), nullptr);
}

}  // namespace
}  // namespace vecext::cli
