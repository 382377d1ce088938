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
//   VECEXT_BUILD_EFC=64 VECEXT_BUILD_M=16 VECEXT_BUILD_THREADS=1 (defaults)
//   --benchmark_repetitions=3 for a median on a busy machine.
//
// BM_Build/floats is the builder of an unquantized index; BM_Build/sq8 the
// builder of an SQ8 index (BuildParams::sq8: it holds codes, every distance
// code to code), its params trained on every row first (as the index build's
// first scan does; not timed).
//
// Counters: rows, recall (mean recall@10 at ef_search 40 over the queries:
// the first 200 query rows, or 200 base rows when no query file is given),
// graph (a hash of every row's links: a change that must leave the graph
// as it was shows the same figure), load_ms (the Append calls: copying, or
// encoding under sq8), mem_mb (the builder's MemoryUsage after the build).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

void BM_Build(benchmark::State& state, bool sq8) {
  const DataSet& d = Data();
  const int threads = static_cast<int>(EnvSize("VECEXT_BUILD_THREADS", 1));
  hnsw::BuildParams p;
  p.dim = d.dim;
  p.metric = Metric::kL2;
  p.m = static_cast<int>(EnvSize("VECEXT_BUILD_M", 16));
  p.ef_construction = static_cast<int>(EnvSize("VECEXT_BUILD_EFC", 64));
  p.capacity = d.rows();
  p.seed = 42;
  std::vector<float> lo(d.dim), scale(d.dim);
  if (sq8) {
    std::vector<const float*> rows(d.rows());
    for (std::size_t i = 0; i < d.rows(); i++) rows[i] = &d.base[i * d.dim];
    if (!Sq8Train(rows.data(), rows.size(), static_cast<std::uint32_t>(d.dim), p.metric, lo.data(), scale.data())
             .ok()) {
      state.SkipWithError("Sq8Train failed");
      return;
    }
    p.sq8.dim = static_cast<std::uint32_t>(d.dim);
    p.sq8.lo = lo.data();
    p.sq8.scale = scale.data();
  }
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
}

BENCHMARK_CAPTURE(BM_Build, floats, false)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK_CAPTURE(BM_Build, sq8, true)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace vecext

BENCHMARK_MAIN();
