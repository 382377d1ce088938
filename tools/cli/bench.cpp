// vecext bench: a kNN query load generator. N connections, all in libpq's
// non-blocking mode, driven by one poll() loop in one thread:
//   --mode=pipeline  each connection in pipeline mode keeps --depth queries in
//                    flight (each followed by its own Sync, so an error spoils
//                    only its query); results come back in order
//   --mode=serial    each connection has one query in flight at a time
// Each query runs the prepared statement
//   SELECT id FROM <collection> ORDER BY embedding <op> $1 LIMIT k
// with the vector sent in binary.
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "cli.h"
#include "collection.h"
#include "core/vector_binary.h"
#include "reader.h"

namespace vecext::cli {

const char* const kBenchUsage =
    "usage: vecext bench NAME [OPTIONS]\n"
    "Runs kNN queries against collection NAME and prints queries/s and latency percentiles.\n"
    "\n"
    "  --mode=pipeline|serial  pipeline: --depth queries in flight per connection (default); serial: one\n"
    "  --sync=each|batch       pipeline mode: a Sync after each query (default: an error spoils only\n"
    "                          its query), or one per --depth queries with flush requests between\n"
    "  --connections=N         connections, all served by one poll() loop (default 1)\n"
    "  --depth=N               queries in flight per connection in pipeline mode (default 16)\n"
    "  --seconds=S             run for S seconds (default 10, unless --queries is given)\n"
    "  --queries=N             stop after N queries\n"
    "  --warmup=S              run S seconds first without counting them (default 0)\n"
    "  --k=N                   LIMIT (default 10)\n"
    "  --ef-search=N           SET hnsw.ef_search on each connection\n"
    "  --queries-file=FILE     query vectors: JSON Lines or a JSON array of records with \"vector\" or\n"
    "                          \"embedding\", or of bare arrays (default: random normal vectors)\n"
    "  --seed=N                seed of the random vectors (default 1)\n"
    "  --dsn=CONNINFO --schema=NAME\n";

namespace {

const char* const kStatement = "vecext_bench_knn";

struct BenchOptions {
  CommonOptions common;
  std::string name;
  bool pipeline = true;
  bool sync_batch = false;
  int connections = 1;
  int depth = 16;
  double seconds = 0;
  std::int64_t queries = 0;
  double warmup = 0;
  int k = 10;
  int ef_search = 0;
  std::string queries_file;
  std::uint64_t seed = 1;
};

BenchOptions ParseBenchOptions(Args* args) {
  BenchOptions o;
  o.common = TakeCommonOptions(args);
  std::string v;
  if (args->Value("mode", 0, &v)) {
    if (v == "serial") {
      o.pipeline = false;
    } else if (v != "pipeline") {
      throw CliError(kExitUsage, "--mode must be pipeline or serial, not \"" + v + "\"");
    }
  }
  if (args->Value("sync", 0, &v)) {
    if (v == "batch") {
      o.sync_batch = true;
    } else if (v != "each") {
      throw CliError(kExitUsage, "--sync must be each or batch, not \"" + v + "\"");
    }
  }
  if (args->Value("connections", 'c', &v)) o.connections = static_cast<int>(ParseInt(v, 1, 1000, "connections"));
  if (args->Value("depth", 0, &v)) o.depth = static_cast<int>(ParseInt(v, 1, 10000, "depth"));
  if (args->Value("seconds", 0, &v)) o.seconds = ParseDouble(v, 0.001, 1e6, "seconds");
  if (args->Value("queries", 0, &v)) o.queries = ParseInt(v, 1, std::int64_t{1} << 50, "queries");
  if (args->Value("warmup", 0, &v)) o.warmup = ParseDouble(v, 0, 1e6, "warmup");
  if (args->Value("k", 0, &v)) o.k = static_cast<int>(ParseInt(v, 1, 100000, "k"));
  if (args->Value("ef-search", 0, &v)) o.ef_search = static_cast<int>(ParseInt(v, 1, 1000, "ef-search"));
  args->Value("queries-file", 0, &o.queries_file);
  if (args->Value("seed", 0, &v)) o.seed = static_cast<std::uint64_t>(ParseInt(v, 0, INT64_MAX, "seed"));
  if (o.seconds == 0 && o.queries == 0) o.seconds = 10;
  std::vector<std::string> pos = args->Positionals();
  if (pos.size() != 1) throw CliError(kExitUsage, "expected one collection name");
  o.name = pos[0];
  if (!ValidCollectionName(o.name)) throw CliError(kExitUsage, "invalid collection name \"" + o.name + "\"");
  if (!ValidSchemaName(o.common.schema)) throw CliError(kExitUsage, "invalid schema name \"" + o.common.schema + "\"");
  return o;
}

// Query vectors in their binary form.
std::vector<std::string> LoadQueries(const BenchOptions& o, int dim) {
  std::vector<std::string> out;
  std::vector<float> x(static_cast<std::size_t>(dim));
  auto add = [&](const float* v) {
    std::string b(VectorBinarySize(dim), '\0');
    EncodeVectorBinary(v, dim, reinterpret_cast<unsigned char*>(&b[0]));
    out.push_back(std::move(b));
  };
  if (o.queries_file.empty()) {
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int q = 0; q < 1000; q++) {
      for (float& f : x) f = normal(rng);
      add(x.data());
    }
    return out;
  }
  RecordParserOptions ro;
  ro.require_id = false;
  ro.allow_bare_vector = true;
  RecordReader reader(ro);
  std::string why;
  if (!reader.Open(o.queries_file, InputFormat::kAuto, &why)) throw CliError(kExitServer, "cannot read " + why);
  Record rec;
  for (;;) {
    RecordLocation loc;
    const ReadResult r = reader.Next(dim, &rec, &loc, &why);
    if (r == ReadResult::kEnd) break;
    if (r != ReadResult::kRecord) {
      throw CliError(kExitData, FormatLocation(o.queries_file, reader.format(), loc) + ": " + why);
    }
    add(rec.vector.data());
  }
  if (out.empty()) throw CliError(kExitData, o.queries_file + ": no query vectors");
  return out;
}

// What a connection waits for, in order: a query's result (then a NULL), or
// a pipeline Sync's result.
struct Pending {
  bool sync;
  Clock::time_point sent;
};

struct Slot {
  Conn conn;
  std::deque<Pending> pending;
  std::size_t queries = 0;     // queries in `pending`
  std::size_t since_sync = 0;  // queries sent since the last Sync (--sync=batch)
  bool got_result = false;     // the head query's result came; its NULL is next
  bool want_write = false;
};

struct Stats {
  std::vector<double> latency_ms;  // measured queries only
  std::uint64_t completed = 0;     // measured
  std::uint64_t rows = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  int first_error_code = kExitOk;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

class Bench {
 public:
  explicit Bench(BenchOptions o) : o_(std::move(o)) {}
  int Run();

 private:
  void Setup();
  bool MaySend(Clock::time_point now) const {
    if (o_.queries > 0 && now >= measure_from_ && sent_measured_ >= static_cast<std::uint64_t>(o_.queries)) {
      return false;
    }
    return now < stop_at_;
  }
  void Fill(Slot* s, Clock::time_point now);
  void Flush(Slot* s);
  void Drain(Slot* s);
  void Complete(Slot* s, PGresult* r);

  BenchOptions o_;
  Collection coll_;
  std::vector<std::string> queries_;
  std::vector<Slot> slots_;
  std::uint64_t sent_measured_ = 0;  // queries sent after the warm-up
  std::size_t next_query_ = 0;
  Clock::time_point measure_from_, stop_at_;
  Stats stats_;
};

void Bench::Setup() {
  Conn first = Connect(o_.common.dsn);
  if (!LookupCollection(first.get(), o_.common.schema, o_.name, &coll_)) {
    throw CliError(kExitData, "collection " + o_.common.schema + "." + o_.name + " does not exist");
  }
  if (coll_.metric == nullptr) {
    throw CliError(kExitData, "table " + o_.common.schema + "." + o_.name + " has no hnsw index on \"embedding\"");
  }
  queries_ = LoadQueries(o_, coll_.dim);
  Result oid = Exec(first.get(), "SELECT 'vector'::regtype::oid", "looking up the vector type");
  const Oid vector_oid = static_cast<Oid>(std::strtoul(PQgetvalue(oid.get(), 0, 0), nullptr, 10));
  const std::string sql = "SELECT id FROM " + coll_.table + " ORDER BY embedding " + coll_.metric->op +
                          " $1 LIMIT " + std::to_string(o_.k);
  for (int i = 0; i < o_.connections; i++) {
    Slot s;
    s.conn = i == 0 ? std::move(first) : Connect(o_.common.dsn);
    PGconn* c = s.conn.get();
    if (o_.ef_search > 0) Exec(c, "SET hnsw.ef_search = " + std::to_string(o_.ef_search), "SET hnsw.ef_search");
    Result r(PQprepare(c, kStatement, sql.c_str(), 1, &vector_oid));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) ThrowResultError(r.get(), "preparing the query");
    if (PQsetnonblocking(c, 1) != 0) throw CliError(kExitServer, std::string("PQsetnonblocking: ") + PQerrorMessage(c));
    if (o_.pipeline && PQenterPipelineMode(c) != 1) {
      throw CliError(kExitServer, std::string("PQenterPipelineMode: ") + PQerrorMessage(c));
    }
    slots_.push_back(std::move(s));
  }
}

void Bench::Fill(Slot* s, Clock::time_point now) {
  PGconn* c = s->conn.get();
  const std::size_t limit = o_.pipeline ? static_cast<std::size_t>(o_.depth) : 1;
  bool sent_any = false;
  auto sync = [&] {
    if (PQpipelineSync(c) != 1) throw CliError(kExitServer, std::string("PQpipelineSync: ") + PQerrorMessage(c));
    s->pending.push_back({true, Clock::now()});
    s->since_sync = 0;
    sent_any = true;
  };
  while (s->queries < limit && MaySend(now)) {
    const std::string& q = queries_[next_query_];
    next_query_ = (next_query_ + 1) % queries_.size();
    const char* values[1] = {q.data()};
    const int lengths[1] = {static_cast<int>(q.size())};
    const int formats[1] = {1};
    if (PQsendQueryPrepared(c, kStatement, 1, values, lengths, formats, 0) != 1) {
      throw CliError(kExitServer, std::string("sending a query: ") + PQerrorMessage(c));
    }
    const Clock::time_point t = Clock::now();
    s->pending.push_back({false, t});
    s->queries++;
    if (t >= measure_from_) sent_measured_++;
    sent_any = true;
    if (o_.pipeline) {
      s->since_sync++;
      if (!o_.sync_batch) {
        sync();
      } else if (PQsendFlushRequest(c) != 1) {  // results flow before the batch's Sync
        throw CliError(kExitServer, std::string("PQsendFlushRequest: ") + PQerrorMessage(c));
      }
    }
  }
  // --sync=batch: a Sync every `depth` queries, and after the last one.
  if (o_.pipeline && o_.sync_batch && s->since_sync > 0 &&
      (s->since_sync >= static_cast<std::size_t>(o_.depth) || !MaySend(now))) {
    sync();
  }
  if (sent_any) Flush(s);
}

void Bench::Flush(Slot* s) {
  const int r = PQflush(s->conn.get());
  if (r < 0) throw CliError(kExitServer, std::string("sending: ") + PQerrorMessage(s->conn.get()));
  s->want_write = r == 1;
}

void Bench::Complete(Slot* s, PGresult* r) {
  const Clock::time_point now = Clock::now();
  const Clock::time_point t = s->pending.front().sent;
  const bool measured = t >= measure_from_;
  const ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK) {
    if (measured) {
      stats_.latency_ms.push_back(std::chrono::duration<double, std::milli>(now - t).count());
      stats_.completed++;
      stats_.rows += static_cast<std::uint64_t>(PQntuples(r));
    }
  } else {
    stats_.errors++;
    if (stats_.first_error.empty()) {
      stats_.first_error = ErrorText(r);
      stats_.first_error_code = ExitCodeFor(r);
    }
  }
}

void Bench::Drain(Slot* s) {
  PGconn* c = s->conn.get();
  while (!s->pending.empty() && !PQisBusy(c)) {
    Result r(PQgetResult(c));
    if (s->pending.front().sync) {
      if (!r || PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) {
        throw CliError(kExitServer, "pipeline out of step: expected a sync result");
      }
      s->pending.pop_front();
    } else if (!s->got_result) {
      // PGRES_TUPLES_OK, an error, or PGRES_PIPELINE_ABORTED after an error in the same batch.
      if (!r) throw CliError(kExitServer, "the server sent no result for a query");
      Complete(s, r.get());
      s->got_result = true;
    } else if (r) {
      stats_.errors++;  // a second result for one query
    } else {
      s->pending.pop_front();
      s->queries--;
      s->got_result = false;
    }
  }
}

int Bench::Run() {
  Setup();
  std::vector<pollfd> fds(slots_.size());
  const Clock::time_point start = Clock::now();
  measure_from_ = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.warmup));
  stop_at_ = o_.seconds > 0
                 ? measure_from_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.seconds))
                 : Clock::time_point::max();
  for (Slot& s : slots_) Fill(&s, start);
  Clock::time_point last_done = start;
  for (;;) {
    std::size_t in_flight = 0;
    for (std::size_t i = 0; i < slots_.size(); i++) {
      fds[i].fd = PQsocket(slots_[i].conn.get());
      fds[i].events = static_cast<short>(POLLIN | (slots_[i].want_write ? POLLOUT : 0));
      fds[i].revents = 0;
      in_flight += slots_[i].pending.size();
    }
    if (in_flight == 0) break;
    const int n = poll(fds.data(), fds.size(), 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw CliError(kExitServer, std::string("poll: ") + std::strerror(errno));
    }
    const Clock::time_point now = Clock::now();
    for (std::size_t i = 0; i < slots_.size(); i++) {
      Slot& s = slots_[i];
      PGconn* c = s.conn.get();
      if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) Flush(&s);
      if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) {
        if (PQconsumeInput(c) != 1) throw CliError(kExitServer, std::string("connection lost: ") + PQerrorMessage(c));
        const std::size_t before = s.queries;
        Drain(&s);
        if (s.queries != before) last_done = now;
      }
      Fill(&s, now);
    }
  }
  for (Slot& s : slots_) {
    if (o_.pipeline) PQexitPipelineMode(s.conn.get());
  }
  const double elapsed = Seconds(std::max(measure_from_, start), last_done);
  std::vector<double>& lat = stats_.latency_ms;
  std::sort(lat.begin(), lat.end());
  double mean = 0;
  for (double x : lat) mean += x;
  if (!lat.empty()) mean /= static_cast<double>(lat.size());
  std::printf("bench %s.%s: dim %d, %s (%s), k=%d%s, %zu query vectors%s\n", coll_.schema.c_str(),
              coll_.name.c_str(), coll_.dim, coll_.metric->name, coll_.metric->op, o_.k,
              o_.ef_search > 0 ? (", ef_search=" + std::to_string(o_.ef_search)).c_str() : "", queries_.size(),
              o_.queries_file.empty() ? " (random)" : "");
  std::printf("mode %s, %d connection%s%s\n", o_.pipeline ? "pipeline" : "serial", o_.connections,
              o_.connections == 1 ? "" : "s", o_.pipeline ? (", depth " + std::to_string(o_.depth)).c_str() : "");
  std::printf("completed %s queries in %.2f s, %s errors, %s rows\n", Thousands(stats_.completed).c_str(), elapsed,
              Thousands(stats_.errors).c_str(), Thousands(stats_.rows).c_str());
  std::printf("queries/s: %.1f\n", elapsed > 0 ? static_cast<double>(stats_.completed) / elapsed : 0.0);
  std::printf("latency ms: p50 %.3f  p95 %.3f  p99 %.3f  max %.3f  mean %.3f\n", Percentile(lat, 50),
              Percentile(lat, 95), Percentile(lat, 99), lat.empty() ? 0.0 : lat.back(), mean);
  if (stats_.errors > 0) {
    Warn("bench", Thousands(stats_.errors) + " queries failed; the first: " + stats_.first_error);
    return stats_.first_error_code == kExitOk ? kExitServer : stats_.first_error_code;
  }
  if (stats_.completed == 0) {
    Warn("bench", "no query completed");
    return kExitServer;
  }
  return kExitOk;
}

}  // namespace

int BenchCommand(Args* args) {
  Bench bench(ParseBenchOptions(args));
  return bench.Run();
}

}  // namespace vecext::cli
