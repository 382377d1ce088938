// vecext import: JSON / JSON Lines records into a collection through
// COPY ... FROM STDIN (FORMAT binary), in one transaction.
//
// A new collection is created in the same transaction, loaded, and only then
// indexed (one bulk hnsw build instead of one insertion per row). With
// --on-error=abort the first bad record ends the COPY and rolls everything
// back; with --on-error=skip bad records are reported and left out. Errors the
// server raises during the COPY (a duplicate id, say) always roll back; their
// "COPY ..., line N" context is mapped back to the file and line.
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli.h"
#include "collection.h"
#include "copy_binary.h"
#include "reader.h"

namespace vecext::cli {

const char* const kImportUsage =
    "usage: vecext import NAME FILE... [OPTIONS]\n"
    "Loads records {\"id\", \"vector\" or \"embedding\", \"metadata\"} from JSON Lines files or\n"
    "files holding one JSON array (FILE '-': standard input) into collection NAME, creating\n"
    "it when it does not exist (then the hnsw index is built after the load).\n"
    "\n"
    "  --on-error=abort|skip  abort: the first bad record rolls the whole import back (default);\n"
    "                         skip: report bad records, load the others (exit code 1 if any)\n"
    "  --format=auto|jsonl|json  input format (auto: a file starting with '[' is a JSON array)\n"
    "  --dim=N                dimensions of a new collection (default: the first record's)\n"
    "  --metric=cosine|l2|ip|l1  metric of a new collection (default cosine); checked on an existing one\n"
    "  --m=N --ef-construction=N  hnsw options of a new collection (16, 200)\n"
    "  --upsert               replace rows whose id exists (default: a duplicate id is an error)\n"
    "  --progress / --no-progress  progress on stderr every second (default: when stderr is a terminal)\n"
    "  --dsn=CONNINFO --schema=NAME\n";

namespace {

constexpr std::size_t kCopyFlushBytes = std::size_t{1} << 20;

struct ImportOptions {
  CommonOptions common;
  std::string name;
  std::vector<std::string> files;
  InputFormat format = InputFormat::kAuto;
  bool skip = false;
  int dim = 0;
  const Metric* metric = nullptr;  // nullptr: not given
  int m = kDefaultM;
  int ef_construction = kDefaultEfConstruction;
  bool upsert = false;
  bool progress = false;
};

ImportOptions ParseImportOptions(Args* args) {
  ImportOptions o;
  o.common = TakeCommonOptions(args);
  std::string v;
  if (args->Value("on-error", 0, &v)) {
    if (v == "skip") {
      o.skip = true;
    } else if (v != "abort") {
      throw CliError(kExitUsage, "--on-error must be abort or skip, not \"" + v + "\"");
    }
  }
  if (args->Value("format", 0, &v)) {
    if (v == "jsonl" || v == "ndjson") {
      o.format = InputFormat::kJsonLines;
    } else if (v == "json") {
      o.format = InputFormat::kJsonArray;
    } else if (v != "auto") {
      throw CliError(kExitUsage, "--format must be auto, jsonl or json, not \"" + v + "\"");
    }
  }
  if (args->Value("dim", 0, &v)) o.dim = static_cast<int>(ParseInt(v, 1, kMaxCollectionDim, "dim"));
  if (args->Value("metric", 0, &v)) {
    o.metric = FindMetric(v);
    if (o.metric == nullptr) throw CliError(kExitUsage, "unknown --metric \"" + v + "\": expected " + MetricNames());
  }
  if (args->Value("m", 0, &v)) o.m = static_cast<int>(ParseInt(v, 2, 100, "m"));
  if (args->Value("ef-construction", 0, &v)) {
    o.ef_construction = static_cast<int>(ParseInt(v, 4, 1000, "ef-construction"));
  }
  if (o.ef_construction < 2 * o.m) {
    throw CliError(kExitUsage, "--ef-construction (" + std::to_string(o.ef_construction) +
                                   ") must be at least 2 * m (" + std::to_string(2 * o.m) + ")");
  }
  o.upsert = args->Flag("upsert");
  const bool progress = args->Flag("progress");
  const bool no_progress = args->Flag("no-progress");
  o.progress = no_progress ? false : (progress || isatty(STDERR_FILENO));
  std::vector<std::string> pos = args->Positionals();
  if (pos.size() < 2) throw CliError(kExitUsage, "expected a collection name and at least one file");
  o.name = pos[0];
  o.files.assign(pos.begin() + 1, pos.end());
  if (!ValidCollectionName(o.name)) {
    throw CliError(kExitUsage, "invalid collection name \"" + o.name +
                                   "\": use 1-48 characters, lower-case letters, digits and underscores, "
                                   "starting with a letter");
  }
  if (!ValidSchemaName(o.common.schema)) throw CliError(kExitUsage, "invalid schema name \"" + o.common.schema + "\"");
  int stdin_files = 0;
  for (const auto& f : o.files) stdin_files += f == "-";
  if (stdin_files > 1) throw CliError(kExitUsage, "standard input ('-') can be read only once");
  return o;
}

// Progress lines on stderr, at most one a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO)) {}

  void Update(Clock::time_point start, std::uint64_t rows, std::uint64_t bytes) {
    if (!enabled_ || (++calls_ & 1023) != 0) return;
    const Clock::time_point now = Clock::now();
    if (Seconds(last_, now) < 1.0) return;
    last_ = now;
    const double s = Seconds(start, now);
    std::fprintf(stderr, "%svecext import: %s rows, %.1f MB, %.0f rows/s, %.1f MB/s%s", tty_ ? "\r" : "",
                 Thousands(rows).c_str(), bytes / 1e6, rows / s, bytes / 1e6 / s, tty_ ? "" : "\n");
    shown_ = true;
  }
  void Done() {
    if (shown_ && tty_) std::fputc('\n', stderr);
    shown_ = false;
  }

 private:
  bool enabled_, tty_;
  bool shown_ = false;
  std::uint64_t calls_ = 0;
  Clock::time_point last_ = Clock::now();
};

class Importer {
 public:
  explicit Importer(ImportOptions o) : o_(std::move(o)) {}
  int Run();

 private:
  // Opens file number i into reader_; throws on failure.
  void OpenFile(std::size_t i);
  // The next valid record across all files, reporting (skip) or throwing
  // (abort) on bad ones. Returns false at the end of the input.
  bool NextRecord(Record* rec);
  void SendCopy(bool final);
  void AbortCopy(const std::string& why);
  [[noreturn]] void Fail(int code, const std::string& message);
  [[noreturn]] void FailCopy(PGresult* r);
  // The file and line of the COPY's row_number-th row (1-based).
  std::string LocateRow(std::uint64_t row_number);

  ImportOptions o_;
  Conn conn_;
  Collection coll_;
  bool created_ = false;
  bool in_copy_ = false;
  std::unique_ptr<RecordReader> reader_;
  std::size_t file_ = 0;
  int dim_ = 0;
  std::string buf_;
  std::uint64_t rows_ = 0, skipped_ = 0, bytes_before_ = 0;
  bool warned_document_ = false;
};

void Importer::OpenFile(std::size_t i) {
  reader_ = std::make_unique<RecordReader>();
  std::string why;
  if (!reader_->Open(o_.files[i], o_.format, &why)) Fail(kExitServer, "cannot read " + why);
}

bool Importer::NextRecord(Record* rec) {
  for (;;) {
    if (!reader_) {
      if (file_ >= o_.files.size()) return false;
      OpenFile(file_);
    }
    RecordLocation loc;
    std::string why;
    const ReadResult r = reader_->Next(dim_, rec, &loc, &why);
    const std::string& file = o_.files[file_];
    if (r == ReadResult::kRecord) return true;
    if (r == ReadResult::kEnd) {
      bytes_before_ += reader_->bytes_read();
      reader_.reset();
      file_++;
      continue;
    }
    const std::string where = file == "-" ? std::string("<stdin>") : file;
    if (r == ReadResult::kFatal) {
      if (reader_->format() == InputFormat::kJsonArray) {
        Fail(kExitData, FormatLocation(where, reader_->format(), loc) + ": " + why);
      }
      Fail(kExitServer, "cannot read " + where + ": " + why);
    }
    // kInvalid
    if (!o_.skip) {
      Fail(kExitData, FormatLocation(where, reader_->format(), loc) + ": " + why +
                          "\nnothing was imported (--on-error=abort); use --on-error=skip to load the valid records");
    }
    skipped_++;
    Warn("import", FormatLocation(where, reader_->format(), loc) + ": skipped: " + why);
  }
}

void Importer::Fail(int code, const std::string& message) {
  if (conn_) {
    if (in_copy_) AbortCopy(message);
    Result r(PQexec(conn_.get(), "ROLLBACK"));
  }
  throw CliError(code, message);
}

void Importer::AbortCopy(const std::string& why) {
  in_copy_ = false;
  std::string msg = "vecext import: " + why.substr(0, 200);
  PQputCopyEnd(conn_.get(), msg.c_str());
  while (PGresult* r = PQgetResult(conn_.get())) PQclear(r);
}

void Importer::SendCopy(bool final) {
  if (!buf_.empty() && (final || buf_.size() >= kCopyFlushBytes)) {
    if (PQputCopyData(conn_.get(), buf_.data(), static_cast<int>(buf_.size())) != 1) {
      in_copy_ = false;
      Fail(kExitServer, std::string("sending COPY data: ") + PQerrorMessage(conn_.get()));
    }
    buf_.clear();
  }
}

std::string Importer::LocateRow(std::uint64_t row_number) {
  std::uint64_t n = 0;
  Record rec;
  for (std::size_t i = 0; i < o_.files.size(); i++) {
    if (o_.files[i] == "-") return "";  // standard input cannot be read again
    RecordReader reader;
    std::string why;
    if (!reader.Open(o_.files[i], o_.format, &why)) return "";
    for (;;) {
      RecordLocation loc;
      const ReadResult r = reader.Next(dim_, &rec, &loc, &why);
      if (r == ReadResult::kEnd || r == ReadResult::kFatal) break;
      if (r == ReadResult::kRecord && ++n == row_number) {
        std::string id;
        AppendJsonString(&id, rec.id);
        return FormatLocation(o_.files[i], reader.format(), loc) + " (id " + id + ")";
      }
    }
  }
  return "";
}

void Importer::FailCopy(PGresult* raw) {
  Result r(raw);
  in_copy_ = false;
  while (PGresult* more = PQgetResult(conn_.get())) PQclear(more);
  std::string where;
  if (const char* ctx = PQresultErrorField(r.get(), PG_DIAG_CONTEXT)) {
    // "COPY <table>, line N[, column c: ...]": N counts the rows we sent.
    const char* p = std::strstr(ctx, ", line ");
    unsigned long long line = 0;
    if (p != nullptr && std::sscanf(p, ", line %llu", &line) == 1 && line > 0) where = LocateRow(line);
  }
  const std::string msg = (where.empty() ? std::string() : where + ": ") + "the server rejected a record: " +
                          ErrorText(r.get()) + "\nnothing was imported";
  Fail(ExitCodeFor(r.get()), msg);
}

int Importer::Run() {
  const Clock::time_point t0 = Clock::now();
  // Fail early on unreadable files, before connecting.
  for (const auto& f : o_.files) {
    if (f != "-" && access(f.c_str(), R_OK) != 0) {
      throw CliError(kExitServer, "cannot read " + f + ": " + std::strerror(errno));
    }
  }
  conn_ = Connect(o_.common.dsn);
  PGconn* c = conn_.get();
  Exec(c, "BEGIN", "BEGIN");
  LockCollection(c, o_.common.schema, o_.name);
  const std::string qualified = o_.common.schema + "." + o_.name;
  Record rec;
  bool have_first = false;
  if (LookupCollection(c, o_.common.schema, o_.name, &coll_)) {
    if (coll_.metric == nullptr) {
      Fail(kExitData, "table " + qualified + " is not a vecext collection: it has no hnsw index on \"embedding\"");
    }
    if (o_.dim != 0 && o_.dim != coll_.dim) {
      Fail(kExitData, "collection " + qualified + " has " + std::to_string(coll_.dim) + " dimensions, not " +
                          std::to_string(o_.dim));
    }
    if (o_.metric != nullptr && o_.metric != coll_.metric) {
      Fail(kExitData, "collection " + qualified + " uses the " + coll_.metric->name + " metric, not " +
                          o_.metric->name);
    }
    dim_ = coll_.dim;
  } else {
    coll_.schema = o_.common.schema;
    coll_.name = o_.name;
    coll_.table = QuoteIdent(coll_.schema) + "." + QuoteIdent(coll_.name);
    coll_.metric = o_.metric != nullptr ? o_.metric : FindMetric(kDefaultMetric);
    dim_ = o_.dim;
    if (dim_ == 0) {
      // The first valid record decides.
      have_first = NextRecord(&rec);
      if (!have_first) {
        Fail(kExitData, "collection " + qualified + " does not exist and the input has no valid record to "
                        "infer its dimensions from (give --dim)");
      }
      if (rec.vector.size() > static_cast<std::size_t>(kMaxCollectionDim)) {
        Fail(kExitData, "the first record's vector has " + std::to_string(rec.vector.size()) +
                            " dimensions; a collection has at most " + std::to_string(kMaxCollectionDim));
      }
      dim_ = static_cast<int>(rec.vector.size());
    }
    coll_.dim = dim_;
    Exec(c, CreateTableSql(coll_), "creating the collection");
    created_ = true;
  }

  const bool with_document = coll_.has_document;
  std::string copy_target = coll_.table;
  if (o_.upsert) {
    Exec(c,
         "CREATE TEMP TABLE vecext_stage (id text, embedding vector(" + std::to_string(dim_) +
             "), metadata jsonb" + (with_document ? ", document text" : "") + ", ord bigint) ON COMMIT DROP",
         "creating the staging table");
    copy_target = "vecext_stage";
  }
  const std::string cols = std::string("id, embedding, metadata") + (with_document ? ", document" : "") +
                           (o_.upsert ? ", ord" : "");
  Exec(c, "COPY " + copy_target + " (" + cols + ") FROM STDIN (FORMAT binary)", "starting COPY");
  in_copy_ = true;

  const Clock::time_point load_start = Clock::now();
  Progress progress(o_.progress);
  buf_.reserve(kCopyFlushBytes + (std::size_t{1} << 16));
  AppendCopyHeader(&buf_);
  if (!have_first) have_first = NextRecord(&rec);
  while (have_first) {
    if (rec.has_document && !with_document && !warned_document_) {
      Warn("import", "the records' \"document\" values are ignored: " + qualified + " has no document column");
      warned_document_ = true;
    }
    AppendCopyRow(&buf_, rec, with_document, o_.upsert ? static_cast<std::int64_t>(rows_) : -1);
    rows_++;
    SendCopy(false);
    progress.Update(load_start, rows_, bytes_before_ + (reader_ ? reader_->bytes_read() : 0));
    have_first = NextRecord(&rec);
  }
  AppendCopyTrailer(&buf_);
  SendCopy(true);
  in_copy_ = false;
  if (PQputCopyEnd(c, nullptr) != 1) Fail(kExitServer, std::string("ending COPY: ") + PQerrorMessage(c));
  progress.Done();
  {
    PGresult* r = PQgetResult(c);
    if (r == nullptr || PQresultStatus(r) != PGRES_COMMAND_OK) {
      FailCopy(r);
    }
    PQclear(r);
    while (PGresult* more = PQgetResult(c)) PQclear(more);
  }
  std::uint64_t upserted = 0;
  if (o_.upsert) {
    const std::string c2 = std::string("id, embedding, metadata") + (with_document ? ", document" : "");
    std::string sets = "embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata";
    if (with_document) sets += ", document = EXCLUDED.document";
    Result r = Exec(c,
                    "INSERT INTO " + coll_.table + " (" + c2 + ") SELECT " + c2 +
                        " FROM (SELECT DISTINCT ON (id) * FROM vecext_stage ORDER BY id, ord DESC) s "
                        "ON CONFLICT (id) DO UPDATE SET " + sets,
                    "merging the staged rows");
    upserted = std::strtoull(PQcmdTuples(r.get()), nullptr, 10);
  }
  const Clock::time_point loaded = Clock::now();
  const std::uint64_t bytes = bytes_before_;
  double index_s = 0;
  if (created_) {
    const Clock::time_point i0 = Clock::now();
    Exec(c, CreateHnswIndexSql(coll_, o_.m, o_.ef_construction), "building the hnsw index");
    Exec(c, CreateMetadataIndexSql(coll_), "building the metadata index");
    index_s = Seconds(i0, Clock::now());
  }
  Exec(c, "COMMIT", "COMMIT");
  const double load_s = Seconds(load_start, loaded);
  std::printf("imported %s rows into %s%s in %.2f s: %.0f rows/s, %.1f MB/s (%.1f MB of input)\n",
              Thousands(rows_).c_str(), qualified.c_str(), created_ ? " (created)" : "", load_s,
              load_s > 0 ? rows_ / load_s : 0.0, load_s > 0 ? bytes / 1e6 / load_s : 0.0, bytes / 1e6);
  if (o_.upsert) {
    std::printf("upserted %s distinct ids\n", Thousands(upserted).c_str());
  }
  if (created_) {
    std::printf("built the hnsw index (%s, m=%d, ef_construction=%d) and the metadata index in %.2f s\n",
                coll_.metric->name, o_.m, o_.ef_construction, index_s);
  }
  std::printf("total %.2f s\n", Seconds(t0, Clock::now()));
  if (skipped_ > 0) {
    std::printf("skipped %s bad records\n", Thousands(skipped_).c_str());
    std::fflush(stdout);
    Warn("import", "skipped " + Thousands(skipped_) + " bad records (see above)");
    return kExitData;
  }
  return kExitOk;
}

}  // namespace

int ImportCommand(Args* args) {
  Importer importer(ParseImportOptions(args));
  return importer.Run();
}

}  // namespace vecext::cli
