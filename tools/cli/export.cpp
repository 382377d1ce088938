// vecext export: a collection as JSON Lines, read through
// COPY (SELECT ...) TO STDOUT (FORMAT binary). The lines are those the
// Python client's export_json writes, byte for byte; each vector element is
// the shortest decimal that reads back as the same float4, so that export ->
// import gives back identical vectors.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli.h"
#include "collection.h"
#include "copy_binary.h"

namespace vecext::cli {

const char* const kExportUsage =
    "usage: vecext export NAME [OPTIONS]\n"
    "Writes collection NAME as JSON Lines: {\"id\": ..., \"embedding\": [...], \"metadata\": {...}}\n"
    "(and \"document\" when the collection has documents), ordered by id.\n"
    "\n"
    "  -o FILE, --output=FILE  write to FILE (replaced only when the export succeeds; default: stdout)\n"
    "  --unordered             do not sort by id (faster on large collections)\n"
    "  --dsn=CONNINFO --schema=NAME\n";

namespace {

constexpr std::size_t kWriteBytes = std::size_t{1} << 20;

class Output {
 public:
  explicit Output(const std::string& path) : path_(path) {
    if (path_.empty() || path_ == "-") {
      f_ = stdout;
      return;
    }
    tmp_ = path_ + ".vecext-tmp-" + std::to_string(getpid());
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (f_ == nullptr) throw CliError(kExitServer, "cannot write " + tmp_ + ": " + std::strerror(errno));
  }
  ~Output() {
    if (f_ != nullptr && f_ != stdout) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  void Write(const std::string& s) {
    if (!s.empty() && std::fwrite(s.data(), 1, s.size(), f_) != s.size()) Fail();
    bytes_ += s.size();
  }
  void Commit() {
    if (std::fflush(f_) != 0) Fail();
    if (f_ == stdout) return;
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) {
      std::remove(tmp_.c_str());
      throw CliError(kExitServer, "cannot write " + path_ + ": " + std::strerror(errno));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      std::remove(tmp_.c_str());
      throw CliError(kExitServer, "cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
    }
  }
  std::uint64_t bytes() const { return bytes_; }
  const char* name() const { return f_ == stdout ? "stdout" : path_.c_str(); }

 private:
  [[noreturn]] void Fail() {
    throw CliError(kExitServer, std::string("cannot write ") + (f_ == stdout ? "stdout" : tmp_.c_str()) + ": " +
                                    std::strerror(errno));
  }
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  std::uint64_t bytes_ = 0;
};

}  // namespace

int ExportCommand(Args* args) {
  CommonOptions common = TakeCommonOptions(args);
  std::string output;
  args->Value("output", 'o', &output);
  const bool unordered = args->Flag("unordered");
  std::vector<std::string> pos = args->Positionals();
  if (pos.size() != 1) throw CliError(kExitUsage, "expected one collection name");
  const std::string name = pos[0];
  if (!ValidCollectionName(name)) throw CliError(kExitUsage, "invalid collection name \"" + name + "\"");
  if (!ValidSchemaName(common.schema)) throw CliError(kExitUsage, "invalid schema name \"" + common.schema + "\"");

  const Clock::time_point t0 = Clock::now();
  Conn conn = Connect(common.dsn);
  PGconn* c = conn.get();
  Collection coll;
  if (!LookupCollection(c, common.schema, name, &coll)) {
    throw CliError(kExitData, "collection " + common.schema + "." + name + " does not exist");
  }
  Output out(output);
  const std::string cols = std::string("id, embedding, metadata") + (coll.has_document ? ", document" : "");
  Exec(c, "COPY (SELECT " + cols + " FROM " + coll.table + (unordered ? "" : " ORDER BY id") +
              ") TO STDOUT (FORMAT binary)",
       "starting COPY");
  CopyDecoder decoder;
  std::vector<std::string_view> fields;
  std::string buf, why;
  buf.reserve(kWriteBytes + (std::size_t{1} << 16));
  std::uint64_t rows = 0;
  bool ended = false;
  for (;;) {
    char* data = nullptr;
    const int n = PQgetCopyData(c, &data, 0);
    if (n == -1) break;
    if (n < 0) throw CliError(kExitServer, std::string("reading COPY data: ") + PQerrorMessage(c));
    decoder.Feed(data, static_cast<std::size_t>(n));
    PQfreemem(data);
    for (;;) {
      const CopyDecoder::Result r = decoder.Next(&fields, &why);
      if (r == CopyDecoder::Result::kNeedMore) break;
      if (r == CopyDecoder::Result::kEnd) {
        ended = true;
        break;
      }
      if (r == CopyDecoder::Result::kError) throw CliError(kExitServer, why);
      if (fields.size() != (coll.has_document ? 4u : 3u) || fields[0].data() == nullptr ||
          fields[1].data() == nullptr || fields[2].data() == nullptr) {
        throw CliError(kExitData, "row " + std::to_string(rows + 1) + ": NULL id, embedding or metadata");
      }
      const std::string_view doc = coll.has_document ? fields[3] : std::string_view();
      if (!AppendExportLine(&buf, fields[0], fields[1], fields[2], doc, &why)) throw CliError(kExitServer, why);
      rows++;
      if (buf.size() >= kWriteBytes) {
        out.Write(buf);
        buf.clear();
      }
    }
  }
  Result r(PQgetResult(c));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) ThrowResultError(r.get(), "COPY");
  if (!ended) throw CliError(kExitServer, "the COPY stream ended without its trailer");
  out.Write(buf);
  out.Commit();
  const double s = Seconds(t0, Clock::now());
  std::fprintf(stderr, "vecext export: %s rows of %s.%s to %s in %.2f s: %.0f rows/s, %.1f MB/s\n",
               Thousands(rows).c_str(), common.schema.c_str(), name.c_str(), output.empty() ? "stdout" : output.c_str(),
               s, s > 0 ? rows / s : 0.0, s > 0 ? out.bytes() / 1e6 / s : 0.0);
  return kExitOk;
}

}  // namespace vecext::cli
