// Unit tests of the command-line tool's binary COPY encoding and decoding,
// export lines (tools/cli/copy_binary.h) and file reading (tools/cli/reader.h).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "copy_binary.h"
#include "core/vector_binary.h"
#include "reader.h"

namespace vecext::cli {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

TEST(CliCopy, EncodesRowsInPostgresBinaryFormat) {
  Record r;
  r.id = "ab";
  r.vector = {1.0f, -0.0f};
  r.metadata = "{}";
  std::string out;
  AppendCopyHeader(&out);
  EXPECT_EQ(out, std::string("PGCOPY\n\xff\r\n\0", 11) + std::string(8, '\0'));
  out.clear();
  AppendCopyRow(&out, r, false);
  const std::string expected = Bytes({0, 3}) +                                 // 3 fields
                               Bytes({0, 0, 0, 2}) + "ab" +                    // text
                               Bytes({0, 0, 0, 12, 0, 2, 0, 0,                 // vector: length, dim, unused
                                      0x3f, 0x80, 0, 0, 0x80, 0, 0, 0}) +      // 1.0, -0.0
                               Bytes({0, 0, 0, 3, 1}) + "{}";                  // jsonb: version 1 + text
  EXPECT_EQ(out, expected);
  out.clear();
  AppendCopyRow(&out, r, true, 258);  // document NULL, ord 258
  EXPECT_EQ(out.substr(0, 2), Bytes({0, 5}));
  EXPECT_EQ(out.substr(expected.size(), 4 + 4 + 8),
            Bytes({-1, -1, -1, -1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2}));
  out.clear();
  r.has_document = true;
  r.document = "d";
  AppendCopyRow(&out, r, true);
  EXPECT_EQ(out.substr(expected.size()), Bytes({0, 0, 0, 1}) + "d");
  out.clear();
  AppendCopyTrailer(&out);
  EXPECT_EQ(out, Bytes({-1, -1}));
}

TEST(CliCopy, DecodesAStreamFedInAnyPieces) {
  std::string stream;
  AppendCopyHeader(&stream);
  std::vector<Record> rows(3);
  for (int i = 0; i < 3; i++) {
    rows[i].id = "id" + std::to_string(i);
    rows[i].vector = {static_cast<float>(i), 0.5f, -2.0f};
    rows[i].metadata = "{\"i\": " + std::to_string(i) + "}";
    rows[i].has_document = i != 1;
    rows[i].document = "doc";
    AppendCopyRow(&stream, rows[i], true);
  }
  AppendCopyTrailer(&stream);
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    CopyDecoder d;
    std::vector<std::string_view> fields;
    std::string why;
    std::size_t fed = 0;
    int got = 0;
    bool ended = false;
    while (!ended) {
      const CopyDecoder::Result r = d.Next(&fields, &why);
      if (r == CopyDecoder::Result::kNeedMore) {
        ASSERT_LT(fed, stream.size()) << "stream ended early";
        const std::size_t n = std::min(piece, stream.size() - fed);
        d.Feed(stream.data() + fed, n);
        fed += n;
        continue;
      }
      ASSERT_NE(r, CopyDecoder::Result::kError) << why;
      if (r == CopyDecoder::Result::kEnd) {
        ended = true;
        break;
      }
      ASSERT_EQ(fields.size(), 4u);
      EXPECT_EQ(fields[0], rows[got].id);
      EXPECT_EQ(fields[1].size(), 16u);
      EXPECT_EQ(fields[2], "\1" + rows[got].metadata);
      if (got == 1) {
        EXPECT_EQ(fields[3].data(), nullptr);
      } else {
        EXPECT_EQ(fields[3], "doc");
      }
      got++;
    }
    EXPECT_EQ(got, 3) << "piece " << piece;
    EXPECT_EQ(fed, stream.size());
  }
}

TEST(CliCopy, RejectsMalformedStreams) {
  CopyDecoder d;
  std::vector<std::string_view> fields;
  std::string why;
  d.Feed("PGCOPY\n\xfe\r\n\0\0\0\0\0\0\0\0\0", 19);
  EXPECT_EQ(d.Next(&fields, &why), CopyDecoder::Result::kError);
  CopyDecoder d2;
  std::string s;
  AppendCopyHeader(&s);
  s += Bytes({0, 1, -1, -1, -1, -2});  // one field of length -2
  d2.Feed(s.data(), s.size());
  EXPECT_EQ(d2.Next(&fields, &why), CopyDecoder::Result::kError);
}

std::string VectorBytes(const std::vector<float>& x) {
  std::string b(VectorBinarySize(static_cast<int>(x.size())), '\0');
  EncodeVectorBinary(x.data(), static_cast<int>(x.size()), reinterpret_cast<unsigned char*>(&b[0]));
  return b;
}

TEST(CliExport, LinesMatchThePythonClient) {
  const std::string vec = VectorBytes({0.1f, -0.0f, 1e-38f, 3.4e38f, 1e-5f, 100000.0f, 1234567.0f});
  std::string out, why;
  ASSERT_TRUE(AppendExportLine(&out, "id \"1\"\n", vec, std::string("\1{\"a\": [1, 2]}"), std::string_view(), &why))
      << why;
  EXPECT_EQ(out,
            "{\"id\": \"id \\\"1\\\"\\n\", \"embedding\": [0.1,-0,1e-38,3.4e+38,1e-05,100000,1.234567e+06], "
            "\"metadata\": {\"a\": [1, 2]}}\n");
  out.clear();
  const std::string one = VectorBytes({0.1f});
  ASSERT_TRUE(AppendExportLine(&out, "y", one, "\1{}", "a\tb", &why)) << why;
  EXPECT_EQ(out, "{\"id\": \"y\", \"embedding\": [0.1], \"metadata\": {}, \"document\": \"a\\tb\"}\n");
  EXPECT_FALSE(AppendExportLine(&out, "y", one.substr(0, 7), "\1{}", std::string_view(), &why));
  EXPECT_FALSE(AppendExportLine(&out, "y", one, "\2{}", std::string_view(), &why));
  EXPECT_FALSE(AppendExportLine(&out, "y", one, "", std::string_view(), &why));
}

// A temporary file with the given contents, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    char name[] = "/tmp/vecext-cli-test-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    path_ = name;
    EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Item {
  ReadResult result;
  std::uint64_t line, record;
  std::string id;
};

std::vector<Item> ReadAll(const std::string& path, InputFormat format, int dim, InputFormat* detected = nullptr) {
  RecordReader reader;
  std::string why;
  EXPECT_TRUE(reader.Open(path, format, &why)) << why;
  if (detected != nullptr) *detected = reader.format();
  std::vector<Item> out;
  for (;;) {
    Record rec;
    RecordLocation loc;
    const ReadResult r = reader.Next(dim, &rec, &loc, &why);
    if (r == ReadResult::kEnd) break;
    out.push_back({r, loc.line, loc.record, r == ReadResult::kRecord ? rec.id : why});
    if (r == ReadResult::kFatal) break;
  }
  return out;
}

TEST(CliReader, JsonLinesWithLocations) {
  TempFile f(
      "\xEF\xBB\xBF{\"id\": \"a\", \"vector\": [1, 2]}\r\n"
      "\n"
      "   \n"
      "{\"id\": \"b\", \"vector\": [1]}\n"
      "{\"id\": \"c\", \"vector\": [1, 2]}");  // no final newline
  InputFormat detected;
  std::vector<Item> items = ReadAll(f.path(), InputFormat::kAuto, 2, &detected);
  EXPECT_EQ(detected, InputFormat::kJsonLines);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].result, ReadResult::kRecord);
  EXPECT_EQ(items[0].id, "a");
  EXPECT_EQ(items[0].line, 1u);
  EXPECT_EQ(items[1].result, ReadResult::kInvalid);
  EXPECT_EQ(items[1].line, 4u);
  EXPECT_EQ(items[1].record, 2u);
  EXPECT_NE(items[1].id.find("1 dimensions, expected 2"), std::string::npos) << items[1].id;
  EXPECT_EQ(items[2].result, ReadResult::kRecord);
  EXPECT_EQ(items[2].id, "c");
  EXPECT_EQ(items[2].line, 5u);
  EXPECT_EQ(FormatLocation("f.jsonl", InputFormat::kJsonLines, {5, 3}), "f.jsonl:5");
}

TEST(CliReader, LongLinesAcrossChunks) {
  // Lines larger than the reader's 4 MiB chunk, and many small ones after.
  std::string big(5 << 20, 'x');
  std::string text = "{\"id\": \"big\", \"vector\": [1], \"metadata\": {\"s\": \"" + big + "\"}}\n";
  for (int i = 0; i < 20000; i++) text += "{\"id\": \"" + std::to_string(i) + "\", \"vector\": [1]}\n";
  text += "{\"id\": \"big2\", \"vector\": [1], \"metadata\": {\"s\": \"" + big + big + "\"}}\n";
  TempFile f(text);
  std::vector<Item> items = ReadAll(f.path(), InputFormat::kJsonLines, 1);
  ASSERT_EQ(items.size(), 20002u);
  for (const Item& it : items) ASSERT_EQ(it.result, ReadResult::kRecord) << it.line << ": " << it.id;
  EXPECT_EQ(items[0].id, "big");
  EXPECT_EQ(items[12345].id, "12344");
  EXPECT_EQ(items[12345].line, 12346u);
  EXPECT_EQ(items.back().id, "big2");
}

TEST(CliReader, JsonArrayWithLocations) {
  TempFile f(
      "  [\n"
      "  {\"id\": \"a\", \"vector\": [1, 2]},\n"
      "  {\"id\": \"b\",\n"
      "   \"vector\": [1]},\n"
      "  7,\n"
      "  {\"id\": \"c\", \"vector\": [3, 4]}\n"
      "]\n");
  InputFormat detected;
  std::vector<Item> items = ReadAll(f.path(), InputFormat::kAuto, 2, &detected);
  EXPECT_EQ(detected, InputFormat::kJsonArray);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].result, ReadResult::kRecord);
  EXPECT_EQ(items[0].line, 2u);
  EXPECT_EQ(items[0].record, 1u);
  EXPECT_EQ(items[1].result, ReadResult::kInvalid);
  EXPECT_EQ(items[1].line, 3u);
  EXPECT_EQ(items[1].record, 2u);
  EXPECT_EQ(items[2].result, ReadResult::kInvalid);
  EXPECT_EQ(items[2].line, 5u);
  EXPECT_NE(items[2].id.find("not a JSON object"), std::string::npos);
  EXPECT_EQ(items[3].result, ReadResult::kRecord);
  EXPECT_EQ(items[3].id, "c");
  EXPECT_EQ(items[3].line, 6u);
  EXPECT_EQ(items[3].record, 4u);
  EXPECT_EQ(FormatLocation("f.json", InputFormat::kJsonArray, {6, 4}), "f.json:6: record 4");
}

TEST(CliReader, JsonArraySyntaxErrorsAreFatal) {
  TempFile f("[{\"id\": \"a\", \"vector\": [1]},\n{\"id\": \"b\", \"vector\": [1],, },\n{\"id\": \"c\", \"vector\": [1]}]");
  std::vector<Item> items = ReadAll(f.path(), InputFormat::kAuto, 1);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].result, ReadResult::kRecord);
  EXPECT_EQ(items[1].result, ReadResult::kFatal);
  EXPECT_EQ(items[1].line, 2u);
  EXPECT_EQ(items[1].record, 2u);

  TempFile g("[{\"id\": \"a\", \"vector\": [1]}] trailing");
  items = ReadAll(g.path(), InputFormat::kAuto, 1);
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items.back().result, ReadResult::kFatal);

  TempFile empty_array(" [ ] ");
  EXPECT_TRUE(ReadAll(empty_array.path(), InputFormat::kAuto, 1).empty());
  TempFile empty_file("");
  EXPECT_TRUE(ReadAll(empty_file.path(), InputFormat::kAuto, 1).empty());
}

TEST(CliReader, MissingFile) {
  RecordReader reader;
  std::string why;
  EXPECT_FALSE(reader.Open("/nonexistent/vecext.jsonl", InputFormat::kAuto, &why));
  EXPECT_NE(why.find("No such file"), std::string::npos) << why;
}

}  // namespace
}  // namespace vecext::cli
