// Microbenchmarks of SQ8 (src/core/sq8.h): ns per distance of the SQ8
// kernels against the float kernels they replace, per ISA this CPU runs.
//
//   build/sq8_bench                                  everything
//   build/sq8_bench --benchmark_filter='/avx512/'    one ISA
//   build/sq8_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//       adds a "min" aggregate, the least disturbed figure on a busy machine
//
// Names:
//   hot/<kernel>/<isa>/<dims>    one pair of vectors that stays in L1 (the
//                                kernel's peak); float kernels for comparison
//   pool/<kernel>/<isa>/<dims>   one query against a 64 MiB pool of float
//                                vectors or code vectors (8-byte aligned
//                                rows, as on index pages), visited in a
//                                random order: memory-bound, like a search
//   pool_prefetch/...            the same, with all lines of the row after
//                                next prefetched first
//   pool_head/...                the same, with only the first 16 lines
//                                (1 KiB) of the row after next prefetched:
//                                what the index's store (Score) does today
//   sym_decode/<isa>/<dims>      code-to-code inner product by decoding both
//                                sides and the float kernel (what
//                                Sq8CodeDistance's one-pass form replaces)
//   encode/<dims>, prepare/<metric>/<dims>   per-vector costs
//   quality/<data>/<metric>/<range>  (one iteration each) how good SQ8 is on
//       a data set: 5000 training vectors, 10000 encoded rows, 100 queries;
//       counters mse (mean |x - x^|^2), recall10 (the 10 nearest by SQ8
//       distance vs by exact distance), rerank (rows whose lower bound is
//       <= the exact 10th distance: what an exact re-rank must fetch).
//       <range> is minmax (what Sq8Train does) or p<percent>: each
//       dimension clipped to the [p, 100-p] percentiles of the sample.
//       SQ8_BENCH_DATA=file.f32:dim adds a data set of raw little-endian
//       float32 vectors (at least 15100 of them), e.g. Fashion-MNIST.
// Kernels: sq8_dot (IP, cosine), sq8_l2, sq8_l1 (asymmetric, float query
// against codes), sq8_code_l2, sq8_code_l1 (code to code); float_ip,
// float_l2, float_l1 (the float kernels of distance.h).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/distance.h"
#include "core/index_distance.h"
#include "core/sq8.h"

namespace vecext {
namespace {

const int kDims[] = {128, 784, 1536, 3072};
constexpr std::size_t kPoolBytes = std::size_t{64} << 20;  // beyond L2 and most of L3

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

template <class T>
Buffer<T> Aligned(std::size_t count) {
  const std::size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
  return Buffer<T>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

Buffer<float> RandomFloats(std::size_t count, std::uint32_t seed, float lo, float hi) {
  Buffer<float> b = Aligned<float>(count);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (std::size_t i = 0; i < count; i++) b[i] = dist(rng);
  return b;
}

Buffer<std::uint8_t> RandomCodes(std::size_t count, std::uint32_t seed) {
  Buffer<std::uint8_t> b = Aligned<std::uint8_t>(count);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < count; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    b[i] = static_cast<std::uint8_t>(x >> 56);
  }
  return b;
}

enum class K { kSq8Dot, kSq8L2, kSq8L1, kSq8CodeL2, kSq8CodeL1, kFloatIp, kFloatL2, kFloatL1 };

struct KernelRef {
  const char* name;
  K kind;
  bool float_rows;  // the rows are float vectors (else codes)
};

const KernelRef kKernelRefs[] = {
    {"sq8_dot", K::kSq8Dot, false},        {"sq8_l2", K::kSq8L2, false},          {"sq8_l1", K::kSq8L1, false},
    {"sq8_code_l2", K::kSq8CodeL2, false}, {"sq8_code_l1", K::kSq8CodeL1, false}, {"float_ip", K::kFloatIp, true},
    {"float_l2", K::kFloatL2, true},       {"float_l1", K::kFloatL1, true},
};

// Query-side inputs shared by every row.
struct Side {
  const float* a;
  const float* s;
  const std::uint8_t* c;  // code_*: the query's codes
};

inline float Eval(const Sq8Kernels& q8, const DistanceKernels& f, K kind, const Side& side, const void* row,
                  std::size_t n) {
  const auto* codes = static_cast<const std::uint8_t*>(row);
  const auto* floats = static_cast<const float*>(row);
  switch (kind) {
    case K::kSq8Dot:
      return q8.dot(side.a, codes, n);
    case K::kSq8L2:
      return q8.l2(side.a, side.s, codes, n);
    case K::kSq8L1:
      return q8.l1(side.a, side.s, codes, n);
    case K::kSq8CodeL2:
      return q8.code_l2(side.s, side.c, codes, n);
    case K::kSq8CodeL1:
      return q8.code_l1(side.s, side.c, codes, n);
    case K::kFloatIp:
      return f.inner_product(side.a, floats, n);
    case K::kFloatL2:
      return f.l2_squared(side.a, floats, n);
    case K::kFloatL1:
      return f.l1(side.a, floats, n);
  }
  return 0.0f;
}

void SetCounters(benchmark::State& state, std::size_t n) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

void BenchHot(benchmark::State& state, const char* isa, KernelRef k) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Sq8Kernels& q8 = *Sq8KernelsFor(isa);
  const DistanceKernels& f = *KernelsFor(isa);
  Buffer<float> a = RandomFloats(n, 1, -1, 1), s = RandomFloats(n, 2, 0, 0.01f), x = RandomFloats(n, 3, -1, 1);
  Buffer<std::uint8_t> c = RandomCodes(n, 4), d = RandomCodes(n, 5);
  const Side side{a.get(), s.get(), c.get()};
  const void* row = k.float_rows ? static_cast<const void*>(x.get()) : static_cast<const void*>(d.get());
  for (auto _ : state) {
    benchmark::DoNotOptimize(row);
    float r = Eval(q8, f, k.kind, side, row, n);
    benchmark::DoNotOptimize(r);
  }
  SetCounters(state, n);
}

// prefetch_bytes: how much of the row after next to prefetch (0: none).
void BenchPool(benchmark::State& state, const char* isa, KernelRef k, std::size_t prefetch_bytes) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Sq8Kernels& q8 = *Sq8KernelsFor(isa);
  const DistanceKernels& f = *KernelsFor(isa);
  Buffer<float> a = RandomFloats(n, 1, -1, 1), s = RandomFloats(n, 2, 0, 0.01f);
  Buffer<std::uint8_t> c = RandomCodes(n, 4);
  const Side side{a.get(), s.get(), c.get()};
  // Rows padded to 8 bytes (+12 bytes of Sq8ElementInfo for codes), as tuples.
  const std::size_t row_bytes = k.float_rows ? (n * sizeof(float) + 7) / 8 * 8 : (n + 12 + 7) / 8 * 8;
  const std::size_t rows = kPoolBytes / row_bytes;
  Buffer<std::uint8_t> pool = RandomCodes(rows * row_bytes, 6);
  if (k.float_rows) {
    for (std::size_t r = 0; r < rows; r++) {
      auto* v = reinterpret_cast<float*>(pool.get() + r * row_bytes);
      for (std::size_t i = 0; i < n; i++) v[i] = static_cast<float>(i % 17) * 0.1f;
    }
  }
  std::vector<std::uint32_t> order(rows);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::size_t next = 0;
  for (auto _ : state) {
    if (prefetch_bytes > 0) {  // lines of the row after next, as the index's store does
      const std::uint8_t* ahead = pool.get() + order[(next + 2) % rows] * row_bytes;
      const std::size_t end = std::min(row_bytes, prefetch_bytes);
      for (std::size_t off = 0; off < end; off += 64) __builtin_prefetch(ahead + off);
    }
    float r = Eval(q8, f, k.kind, side, pool.get() + order[next] * row_bytes, n);
    benchmark::DoNotOptimize(r);
    if (++next == rows) next = 0;
  }
  SetCounters(state, n);
}

// Code-to-code inner product the slow way: decode both, then the float kernel.
void BenchSymDecode(benchmark::State& state, const char* isa) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const DistanceKernels& f = *KernelsFor(isa);
  Buffer<float> lo = RandomFloats(n, 1, -1, 0), scale = RandomFloats(n, 2, 0, 0.01f);
  Buffer<float> da = Aligned<float>(n), db = Aligned<float>(n);
  Buffer<std::uint8_t> c = RandomCodes(n, 4), d = RandomCodes(n, 5);
  const Sq8Params p{static_cast<std::uint32_t>(n), lo.get(), scale.get()};
  for (auto _ : state) {
    Sq8Decode(p, c.get(), da.get());
    Sq8Decode(p, d.get(), db.get());
    float r = f.inner_product(da.get(), db.get(), n);
    benchmark::DoNotOptimize(r);
  }
  SetCounters(state, n);
}

void BenchEncode(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Buffer<float> lo = RandomFloats(n, 1, -1, -0.9f), scale = RandomFloats(n, 2, 0.007f, 0.008f);
  Buffer<float> x = RandomFloats(n, 3, -1, 1);
  Buffer<std::uint8_t> codes = Aligned<std::uint8_t>(n);
  const Sq8Params p{static_cast<std::uint32_t>(n), lo.get(), scale.get()};
  Sq8ElementInfo info;
  for (auto _ : state) {
    Status st = Sq8Encode(p, Metric::kL2, x.get(), codes.get(), &info);
    benchmark::DoNotOptimize(st);
  }
  SetCounters(state, n);
}

void BenchPrepare(benchmark::State& state, Metric metric) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Buffer<float> lo = RandomFloats(n, 1, -1, -0.9f), scale = RandomFloats(n, 2, 0.007f, 0.008f);
  Buffer<float> q = RandomFloats(n, 3, -1, 1), buf = Aligned<float>(n);
  const Sq8Params p{static_cast<std::uint32_t>(n), lo.get(), scale.get()};
  Sq8Query query;
  for (auto _ : state) {
    Status st = Sq8PrepareQuery(p, metric, q.get(), buf.get(), &query);
    benchmark::DoNotOptimize(st);
  }
  SetCounters(state, n);
}

// --- quality -------------------------------------------------------------------

constexpr std::size_t kTrain = 5000, kRows = 10000, kQueries = 100;

struct QualityData {
  std::string name;
  std::size_t dim;
  std::vector<float> v;  // kTrain + kRows + kQueries vectors
  const float* Row(std::size_t i) const { return v.data() + i * dim; }
};

template <class Gen>
QualityData Generate(const char* name, std::size_t dim, Gen gen) {
  QualityData d{name, dim, std::vector<float>((kTrain + kRows + kQueries) * dim)};
  for (float& x : d.v) x = gen();
  return d;
}

// Gaussian clusters in 24 dimensions projected to `dim`, plus noise (like
// bench/hnsw/datasets.py's synthetic embeddings).
QualityData Embeddings(std::size_t dim) {
  std::mt19937 rng(20240601);
  std::normal_distribution<float> normal;
  const std::size_t latent = 24, clusters = 256;
  std::vector<float> proj(latent * dim), centers(clusters * latent);
  for (float& x : proj) x = normal(rng) / std::sqrt(static_cast<float>(latent));
  for (float& x : centers) x = std::uniform_real_distribution<float>(-2, 2)(rng);
  QualityData d{"embeddings", dim, std::vector<float>((kTrain + kRows + kQueries) * dim)};
  std::vector<float> z(latent);
  for (std::size_t j = 0; j < kTrain + kRows + kQueries; j++) {
    const float* c = centers.data() + (rng() % clusters) * latent;
    for (std::size_t l = 0; l < latent; l++) z[l] = c[l] + normal(rng);
    for (std::size_t i = 0; i < dim; i++) {
      float x = 0.05f * normal(rng);
      for (std::size_t l = 0; l < latent; l++) x += z[l] * proj[l * dim + i];
      d.v[j * dim + i] = x;
    }
  }
  return d;
}

std::vector<QualityData>& QualitySets() {
  static std::vector<QualityData> sets;
  return sets;
}

void MakeQualitySets() {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  auto& sets = QualitySets();
  sets.push_back(Embeddings(128));
  sets.push_back(Generate("uniform", 128, [&] { return std::uniform_real_distribution<float>(-1, 1)(rng); }));
  sets.push_back(Generate("gaussian", 128, [&] { return normal(rng); }));
  sets.push_back(Generate("student_t3", 128, [&] { return std::student_t_distribution<float>(3)(rng); }));
  sets.push_back(Generate("outliers_0.1%x50", 128, [&] { return (rng() % 1000 == 0 ? 50.0f : 1.0f) * normal(rng); }));
  sets.push_back(Generate("outliers_1%x5", 128, [&] { return (rng() % 100 == 0 ? 5.0f : 1.0f) * normal(rng); }));
  if (const char* spec = std::getenv("SQ8_BENCH_DATA")) {
    const char* colon = std::strrchr(spec, ':');
    const std::size_t dim = colon != nullptr ? std::strtoul(colon + 1, nullptr, 10) : 0;
    const std::string path(spec, colon != nullptr ? static_cast<std::size_t>(colon - spec) : std::strlen(spec));
    QualityData d{path.substr(path.find_last_of('/') + 1), dim, std::vector<float>((kTrain + kRows + kQueries) * dim)};
    FILE* f = dim > 0 ? std::fopen(path.c_str(), "rb") : nullptr;
    if (f != nullptr && std::fread(d.v.data(), sizeof(float), d.v.size(), f) == d.v.size()) {
      sets.push_back(std::move(d));
    } else {
      std::fprintf(stderr, "SQ8_BENCH_DATA=%s: cannot read %zu vectors of %zu floats\n", spec,
                   kTrain + kRows + kQueries, dim);
    }
    if (f != nullptr) std::fclose(f);
  }
}

// Trains min/max params, then (clip > 0) replaces each dimension's range by
// the [clip, 1 - clip] quantiles of the training vectors.
void TrainForQuality(const QualityData& d, Metric metric, double clip, std::vector<float>* lo,
                     std::vector<float>* scale) {
  std::vector<const float*> rows;
  for (std::size_t j = 0; j < kTrain; j++) rows.push_back(d.Row(j));
  lo->resize(d.dim);
  scale->resize(d.dim);
  if (!Sq8Train(rows.data(), kTrain, static_cast<std::uint32_t>(d.dim), metric, lo->data(), scale->data()).ok()) {
    std::abort();
  }
  if (clip <= 0.0) return;
  std::vector<double> norms(kTrain, 1.0);
  if (IndexNormalizes(metric)) {
    for (std::size_t j = 0; j < kTrain; j++)
      norms[j] = std::sqrt(static_cast<double>(SquaredNormScalar(rows[j], d.dim)));
  }
  std::vector<float> col(kTrain);
  const auto k = static_cast<std::size_t>(clip * (kTrain - 1));
  for (std::size_t i = 0; i < d.dim; i++) {
    for (std::size_t j = 0; j < kTrain; j++) col[j] = static_cast<float>(rows[j][i] / norms[j]);
    std::sort(col.begin(), col.end());
    (*lo)[i] = col[k];
    (*scale)[i] = col[kTrain - 1 - k] > col[k] ? (col[kTrain - 1 - k] - col[k]) / 255.0f : 0.0f;
  }
}

void BenchQuality(benchmark::State& state, const QualityData* d, Metric metric, double clip) {
  const std::size_t n = d->dim;
  double mse = 0.0, recall = 0.0, rerank = 0.0;
  for (auto _ : state) {
    std::vector<float> lo, scale;
    TrainForQuality(*d, metric, clip, &lo, &scale);
    const Sq8Params p{static_cast<std::uint32_t>(n), lo.data(), scale.data()};
    std::vector<std::uint8_t> codes(kRows * n);
    std::vector<Sq8ElementInfo> info(kRows);
    mse = 0.0;
    for (std::size_t j = 0; j < kRows; j++) {
      if (!Sq8Encode(p, metric, d->Row(kTrain + j), codes.data() + j * n, &info[j]).ok()) std::abort();
      mse += static_cast<double>(info[j].err_l2) * info[j].err_l2 / kRows;
    }
    std::vector<float> buf(n), qn(n), xn(n);
    std::vector<std::pair<float, std::size_t>> exact(kRows), approx(kRows);
    std::vector<double> lower(kRows);
    const DistanceFn index_distance = IndexDistanceFn(metric);
    recall = rerank = 0.0;
    for (std::size_t qi = 0; qi < kQueries; qi++) {
      const float* q = d->Row(kTrain + kRows + qi);
      Sq8Query query;
      if (!Sq8PrepareQuery(p, metric, q, buf.data(), &query).ok()) std::abort();
      std::copy(q, q + n, qn.begin());
      if (IndexNormalizes(metric)) NormalizeInPlace(qn.data(), n);
      for (std::size_t j = 0; j < kRows; j++) {
        std::copy(d->Row(kTrain + j), d->Row(kTrain + j) + n, xn.begin());
        if (IndexNormalizes(metric)) NormalizeInPlace(xn.data(), n);
        exact[j] = {index_distance(qn.data(), xn.data(), n), j};
        const float a = Sq8Distance(query, codes.data() + j * n);
        approx[j] = {a, j};
        lower[j] = Sq8Bounds(query, a, info[j]).lower;
      }
      std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
      std::partial_sort(approx.begin(), approx.begin() + 10, approx.end());
      for (int a = 0; a < 10; a++) {
        for (int b = 0; b < 10; b++) recall += exact[a].second == approx[b].second ? 0.1 / kQueries : 0.0;
      }
      const double kth = IndexToSqlDistance(metric, exact[9].first);
      for (double lb : lower) rerank += lb <= kth ? 1.0 / kQueries : 0.0;
    }
  }
  state.counters["mse"] = mse;
  state.counters["recall10"] = recall;
  state.counters["rerank"] = rerank;
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

void RegisterAll() {
  for (const char* isa : {"avx512", "avx2", "scalar"}) {
    if (Sq8KernelsFor(isa) == nullptr) continue;
    for (const KernelRef& k : kKernelRefs) {
      auto* hot = benchmark::RegisterBenchmark((std::string("hot/") + k.name + "/" + isa).c_str(), BenchHot, isa, k);
      auto* pool = benchmark::RegisterBenchmark((std::string("pool/") + k.name + "/" + isa).c_str(), BenchPool, isa,
                                                k, std::size_t{0});
      auto* pool_pf = benchmark::RegisterBenchmark((std::string("pool_prefetch/") + k.name + "/" + isa).c_str(),
                                                   BenchPool, isa, k, ~std::size_t{0});
      auto* pool_head = benchmark::RegisterBenchmark((std::string("pool_head/") + k.name + "/" + isa).c_str(),
                                                     BenchPool, isa, k, std::size_t{1024});
      for (auto* b : {hot, pool, pool_pf, pool_head}) {
        b->ComputeStatistics("min", Min);
        for (int n : kDims) b->Arg(n);
      }
    }
    auto* sym = benchmark::RegisterBenchmark((std::string("sym_decode/") + isa).c_str(), BenchSymDecode, isa);
    sym->ComputeStatistics("min", Min);
    for (int n : kDims) sym->Arg(n);
  }
  MakeQualitySets();
  for (const QualityData& d : QualitySets()) {
    for (Metric m : {Metric::kL2, Metric::kCosine}) {
      for (double clip : {0.0, 1e-3, 1e-2}) {
        const std::string range = clip == 0.0 ? "minmax" : clip == 1e-3 ? "p0.1" : "p1";
        const std::string name = "quality/" + d.name + "/" + (m == Metric::kL2 ? "l2" : "cosine") + "/" + range;
        benchmark::RegisterBenchmark(name.c_str(), BenchQuality, &d, m, clip)
            ->Iterations(1)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  auto* enc = benchmark::RegisterBenchmark("encode", BenchEncode);
  enc->ComputeStatistics("min", Min);
  for (int n : kDims) enc->Arg(n);
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    auto* prep = benchmark::RegisterBenchmark((std::string("prepare/") + (m == Metric::kL2 ? "l2" : "cosine")).c_str(),
                                              BenchPrepare, m);
    prep->ComputeStatistics("min", Min);
    for (int n : kDims) prep->Arg(n);
  }
}

}  // namespace
}  // namespace vecext

int main(int argc, char** argv) {
  vecext::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
