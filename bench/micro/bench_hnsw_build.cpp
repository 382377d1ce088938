// The in-memory HNSW builder alone (src/core/hnsw_build.h, no Postgres):
// wall time of AddRows with N threads, and recall@10 of the built graph
// against exact search, so a change to the builder shows its time and its
// quality in one run.
//
//   build/bench_hnsw_build                          synthetic 20,000 x 128 (seeded)
//   VECEXT_BUILD_DATA=base.f32 VECEXT_BUILD_DIM=784 [VECEXT_BUILD_QUERIES=q.f32] build/bench_hnsw_build
//       raw little-endian float32 rows (numpy's tofile), e.g. Fashion-MNIST:
//       /usr/bin/python3 -c "import sys; sys.path.insert(0, 'bench'); from hnsw import datasets;
//         _, b, q, _ = datasets.fashion_mnist(); b.tofile('/tmp/fm.f32'); q.tofile('/tmp/fmq.f32')"
//   VECEXT_BUILD_EFC=64 VECEXT_BUILD_M=16 VECEXT_BUILD_THREADS=1 VECEXT_BUILD_KEEP_PRUNED=0 (defaults;
//   the index build keeps pruned candidates by default, hnsw.build_keep_pruned)
//   --benchmark_repetitions=3 for a median on a busy machine.
//
// BM_Build/floats is the builder of an unquantized index; BM_Build/sq8 the
// builder of an SQ8 index (BuildParams::sq8: it holds codes, every distance
// code to code), its params trained on every row first (as the index build's
// first scan does; not timed). BM_Build/sq8_from_floats builds from floats
// (what an SQ8 index build did before its builder held codes) and is then
// searched like BM_Build/sq8: the two graphs side by side.
//
// Counters: rows, recall (mean recall@10 at ef_search 40 over the queries:
// the first 200 query rows, or 200 base rows when no query file is given),
// graph (a hash of every row's links: a change that must leave the graph
// as it was shows the same figure), load_ms (the Append calls: copying, or
// encoding under sq8), mem_mb (the builder's MemoryUsage after the build);
// for sq8 and sq8_from_floats, scan_<ef>: recall@10 of what an SQ8 index
// scan does over the graph (SQ8 distance of the float query to the codes,
// the ef candidates re-ranked by exact distance) at ef_search 10..160.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/distance.h"
#include "core/hnsw_build.h"
#include "core/sq8.h"

namespace vecext {
namespace {

struct DataSet {
  std::size_t dim = 0;
  std::vector<float> base;     // n x dim
  std::vector<float> queries;  // nq x dim
  std::size_t rows() const { return base.size() / dim; }
  std::size_t nq() const { return queries.size() / dim; }
};

std::size_t EnvSize(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? static_cast<std::size_t>(std::strtoull(v, nullptr, 10)) : fallback;
}

bool ReadFloats(const char* path, std::vector<float>* out) {
  std::FILE* f = std::fopen(path, "rb");
  if (f == nullptr) return false;
  std::fseek(f, 0, SEEK_END);
  const long bytes = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  out->resize(static_cast<std::size_t>(bytes) / sizeof(float));
  const std::size_t got = std::fread(out->data(), sizeof(float), out->size(), f);
  std::fclose(f);
  return got == out->size();
}

const DataSet& Data() {
  static DataSet d = [] {
    DataSet s;
    const char* path = std::getenv("VECEXT_BUILD_DATA");
    const std::size_t nq = 200;
    if (path != nullptr && *path != '\0') {
      s.dim = EnvSize("VECEXT_BUILD_DIM", 0);
      if (s.dim == 0 || !ReadFloats(path, &s.base) || s.base.size() % s.dim != 0) {
        std::fprintf(stderr, "cannot read %s as rows of VECEXT_BUILD_DIM floats\n", path);
        std::exit(1);
      }
      const std::size_t limit = EnvSize("VECEXT_BUILD_ROWS", 0);
      if (limit > 0 && limit < s.rows()) s.base.resize(limit * s.dim);
      const char* qpath = std::getenv("VECEXT_BUILD_QUERIES");
      if (qpath != nullptr && *qpath != '\0' && ReadFloats(qpath, &s.queries) && s.queries.size() % s.dim == 0) {
        s.queries.resize(std::min(s.queries.size(), nq * s.dim));
      } else {
        s.queries.assign(s.base.begin(), s.base.begin() + static_cast<long>(std::min(nq, s.rows()) * s.dim));
      }
      return s;
    }
    // Seeded clusters: 64 centres in 128 dimensions plus Gaussian noise.
    s.dim = 128;
    const std::size_t n = EnvSize("VECEXT_BUILD_ROWS", 20000);
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float> centres(64 * s.dim);
    for (float& c : centres) c = 3.0f * g(rng);
    auto draw = [&](std::size_t count, std::vector<float>* out) {
      out->resize(count * s.dim);
      for (std::size_t i = 0; i < count; i++) {
        const float* c = &centres[(rng() % 64) * s.dim];
        for (std::size_t j = 0; j < s.dim; j++) (*out)[i * s.dim + j] = c[j] + g(rng);
      }
    };
    draw(n, &s.base);
    draw(nq, &s.queries);
    return s;
  }();
  return d;
}

// Exact top-10 ids per query (L2).
const std::vector<std::vector<std::uint32_t>>& Truth() {
  static std::vector<std::vector<std::uint32_t>> truth = [] {
    const DataSet& d = Data();
    const DistanceFn l2 = Kernels().l2_squared;
    std::vector<std::vector<std::uint32_t>> t(d.nq());
    std::vector<std::pair<float, std::uint32_t>> all(d.rows());
    for (std::size_t q = 0; q < d.nq(); q++) {
      for (std::size_t i = 0; i < d.rows(); i++) {
        all[i] = {l2(&d.queries[q * d.dim], &d.base[i * d.dim], d.dim), static_cast<std::uint32_t>(i)};
      }
      std::partial_sort(all.begin(), all.begin() + 10, all.end());
      for (int k = 0; k < 10; k++) t[q].push_back(all[k].second);
    }
    return t;
  }();
  return truth;
}

// FNV-1a over every row's level and links on every level (one thread
// builds a deterministic graph).
std::uint64_t GraphHash(const hnsw::GraphBuilder& b) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  std::vector<std::uint32_t> links(2 * static_cast<std::size_t>(b.m()));
  for (std::size_t row = 0; row < b.inserted(); row++) {
    const int level = b.Level(row);
    mix(static_cast<std::uint64_t>(level));
    for (int l = 0; l <= level; l++) {
      const std::size_t n = b.Neighbors(row, l, links.data());
      mix(n);
      for (std::size_t i = 0; i < n; i++) mix(links[i]);
    }
  }
  return h;
}

// Recall@10 of an SQ8 index scan over b's graph (see the top): the search
// by Sq8Distance over `codes` (each row's 12 + dim bytes), then the ef
// candidates re-ranked by exact L2.
double ScanRecall(const hnsw::GraphBuilder& b, const Sq8Params& p, const std::vector<std::uint8_t>& codes,
                  std::size_t ef) {
  const DataSet& d = Data();
  const auto& truth = Truth();
  const std::size_t bytes = 12 + d.dim;
  const DistanceFn l2 = Kernels().l2_squared;
  std::vector<float> buffer(Sq8QueryFloats(p.dim));
  std::vector<std::uint32_t> links(2 * static_cast<std::size_t>(b.m()));
  std::vector<std::uint32_t> visited(b.inserted(), 0);
  std::size_t hits = 0;
  using Item = std::pair<float, std::uint32_t>;
  for (std::size_t q = 0; q < d.nq(); q++) {
    const float* query = &d.queries[q * d.dim];
    Sq8Query sq;
    if (!Sq8PrepareQuery(p, Metric::kL2, query, buffer.data(), &sq).ok()) return 0;
    auto dist = [&](std::uint32_t row) { return Sq8Distance(sq, &codes[row * bytes + 12]); };
    std::uint32_t ep = 0;
    int top = 0;
    if (!b.EntryPoint(&ep, &top)) return 0;
    float best = dist(ep);
    for (int lc = top; lc > 0; lc--) {
      for (bool changed = true; changed;) {
        changed = false;
        const std::size_t n = b.Neighbors(ep, lc, links.data());
        for (std::size_t i = 0; i < n; i++) {
          const float dd = dist(links[i]);
          if (dd < best) {
            best = dd;
            ep = links[i];
            changed = true;
          }
        }
      }
    }
    const std::uint32_t tag = static_cast<std::uint32_t>(q + 1);
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> candidates;
    std::priority_queue<Item> result;
    candidates.push({best, ep});
    result.push({best, ep});
    visited[ep] = tag;
    while (!candidates.empty()) {
      const Item c = candidates.top();
      if (c.first > result.top().first && result.size() >= ef) break;
      candidates.pop();
      const std::size_t n = b.Neighbors(c.second, 0, links.data());
      for (std::size_t i = 0; i < n; i++) {
        const std::uint32_t e = links[i];
        if (visited[e] == tag) continue;
        visited[e] = tag;
        const float dd = dist(e);
        if (result.size() < ef || dd < result.top().first) {
          candidates.push({dd, e});
          result.push({dd, e});
          if (result.size() > ef) result.pop();
        }
      }
    }
    std::vector<Item> exact;
    for (; !result.empty(); result.pop()) {
      const std::uint32_t e = result.top().second;
      exact.push_back({l2(query, &d.base[e * d.dim], d.dim), e});
    }
    std::sort(exact.begin(), exact.end());
    for (std::size_t k = 0; k < exact.size() && k < 10; k++) {
      hits += static_cast<std::size_t>(std::count(truth[q].begin(), truth[q].end(), exact[k].second));
    }
  }
  return static_cast<double>(hits) / static_cast<double>(10 * d.nq());
}

enum class Mode { kFloats, kSq8, kSq8FromFloats };

void BM_Build(benchmark::State& state, Mode mode) {
  const bool sq8 = mode == Mode::kSq8;
  const bool scan = mode != Mode::kFloats;
  const DataSet& d = Data();
  const int threads = static_cast<int>(EnvSize("VECEXT_BUILD_THREADS", 1));
  hnsw::BuildParams p;
  p.dim = d.dim;
  p.metric = Metric::kL2;
  p.m = static_cast<int>(EnvSize("VECEXT_BUILD_M", 16));
  p.ef_construction = static_cast<int>(EnvSize("VECEXT_BUILD_EFC", 64));
  p.capacity = d.rows();
  p.seed = 42;
  p.keep_pruned = EnvSize("VECEXT_BUILD_KEEP_PRUNED", 0) != 0;
  std::vector<float> lo(d.dim), scale(d.dim);
  Sq8Params params;
  std::vector<std::uint8_t> codes;  // every row's SQ8 element (scan recall)
  if (scan) {
    std::vector<const float*> rows(d.rows());
    for (std::size_t i = 0; i < d.rows(); i++) rows[i] = &d.base[i * d.dim];
    if (!Sq8Train(rows.data(), rows.size(), static_cast<std::uint32_t>(d.dim), p.metric, lo.data(), scale.data())
             .ok()) {
      state.SkipWithError("Sq8Train failed");
      return;
    }
    params.dim = static_cast<std::uint32_t>(d.dim);
    params.lo = lo.data();
    params.scale = scale.data();
    if (sq8) p.sq8 = params;
    const std::size_t bytes = 12 + d.dim;
    codes.resize(d.rows() * bytes);
    for (std::size_t i = 0; i < d.rows(); i++) {
      Sq8ElementInfo info;
      if (!Sq8Encode(params, p.metric, &d.base[i * d.dim], &codes[i * bytes + 12], &info).ok()) {
        state.SkipWithError("Sq8Encode failed");
        return;
      }
      std::memcpy(&codes[i * bytes], &info, sizeof info);
    }
  }
  std::vector<std::pair<std::size_t, double>> scan_recall;
  double recall = 0, load_ms = 0, mem_mb = 0;
  std::uint64_t graph = 0;
  for (auto _ : state) {
    state.PauseTiming();
    hnsw::GraphBuilder* b = nullptr;
    if (!hnsw::GraphBuilder::Create(p, &b).ok()) {
      state.SkipWithError("Create failed");
      return;
    }
    const auto load_start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < d.rows(); i++) {
      if (!b->Append(&d.base[i * d.dim], i).ok()) {
        state.SkipWithError("Append failed");
        hnsw::GraphBuilder::Destroy(b);
        return;
      }
    }
    load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
    state.ResumeTiming();
    const Status st = b->AddRows(0, d.rows(), threads);
    state.PauseTiming();
    if (!st.ok()) {
      state.SkipWithError("AddRows failed");
      hnsw::GraphBuilder::Destroy(b);
      return;
    }
    const auto& truth = Truth();
    std::size_t hits = 0;
    std::uint32_t ids[10];
    float dists[10];
    for (std::size_t q = 0; q < d.nq(); q++) {
      std::size_t found = 0;
      if (!b->Search(&d.queries[q * d.dim], 10, 40, ids, dists, &found).ok()) found = 0;
      for (std::size_t k = 0; k < found; k++) {
        hits += static_cast<std::size_t>(std::count(truth[q].begin(), truth[q].end(), ids[k]));
      }
    }
    recall = static_cast<double>(hits) / static_cast<double>(10 * d.nq());
    graph = GraphHash(*b);
    mem_mb = static_cast<double>(b->MemoryUsage()) / (1 << 20);
    scan_recall.clear();
    if (scan) {
      for (std::size_t ef : {10, 20, 40, 80, 160}) scan_recall.push_back({ef, ScanRecall(*b, params, codes, ef)});
    }
    hnsw::GraphBuilder::Destroy(b);
    state.ResumeTiming();
  }
  state.counters["rows"] = static_cast<double>(d.rows());
  state.counters["recall"] = recall;
  // Low 24 bits of the graph's hash: equal figures mean (almost surely) the
  // same graph, e.g. before and after a change that must not alter it.
  state.counters["graph"] = static_cast<double>(graph & 0xffffff);
  state.counters["load_ms"] = load_ms;
  state.counters["mem_mb"] = mem_mb;
  for (const auto& r : scan_recall) state.counters["scan_" + std::to_string(r.first)] = r.second;
}

BENCHMARK_CAPTURE(BM_Build, floats, Mode::kFloats)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_Build, sq8_from_floats, Mode::kSq8FromFloats)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Build, sq8, Mode::kSq8)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace vecext

BENCHMARK_MAIN();
