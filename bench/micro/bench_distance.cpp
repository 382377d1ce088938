// Microbenchmarks of the float32 distance kernels: ns per call for every
// kernel x ISA (that this CPU runs) x dimension.
//
//   build/bench_distance                                   everything
//   build/bench_distance --benchmark_filter='^l2_squared/'  one kernel
//   build/bench_distance --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//       adds a "min" aggregate, the least disturbed figure on a busy machine
//
// Names are <kernel>/<isa>/<dims> for two 64-byte aligned vectors that stay
// in L1 (the kernel's peak), and pool/<kernel>/<isa>/<dims> for one query
// against a 2 MiB pool of vectors packed at 8-byte alignment, as HNSW search
// reads candidates from pages. items_per_second counts dimensions (float
// pairs); bytes_per_second counts the bytes of both inputs.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/distance.h"

namespace vecext {
namespace {

const int kDims[] = {32, 128, 384, 784, 1536, 3072};
const int kPoolDims[] = {128, 784};
constexpr std::size_t kPoolBytes = std::size_t{2} << 20;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float[], FreeDeleter>;

FloatBuffer RandomFloats(std::size_t count, std::uint32_t seed) {
  const std::size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  FloatBuffer buf(static_cast<float*>(std::aligned_alloc(64, bytes)));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (std::size_t i = 0; i < count; i++) buf[i] = dist(rng);
  return buf;
}

// A two-vector kernel, or the squared norm (which reads only a).
struct KernelRef {
  const char* name;
  DistanceFn fn;
  NormFn norm;
};

float Call(const KernelRef& k, const float* a, const float* b, std::size_t n) {
  return k.fn != nullptr ? k.fn(a, b, n) : k.norm(a, n);
}

void SetCounters(benchmark::State& state, const KernelRef& k, std::size_t n) {
  const auto iters = static_cast<std::int64_t>(state.iterations());
  state.SetItemsProcessed(iters * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(iters * static_cast<std::int64_t>(n * sizeof(float) * (k.fn != nullptr ? 2 : 1)));
}

void BenchHot(benchmark::State& state, KernelRef k) {
  const auto n = static_cast<std::size_t>(state.range(0));
  FloatBuffer a = RandomFloats(n, 1), b = RandomFloats(n, 2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(a.get());
    benchmark::DoNotOptimize(b.get());
    float d = Call(k, a.get(), b.get(), n);
    benchmark::DoNotOptimize(d);
  }
  SetCounters(state, k, n);
}

void BenchPool(benchmark::State& state, KernelRef k) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::size_t stride = n + 2;  // 8-byte aligned, like MAXALIGN'ed tuples
  const std::size_t count = kPoolBytes / (stride * sizeof(float));
  FloatBuffer query = RandomFloats(n, 3), pool = RandomFloats(count * stride, 4);
  std::size_t next = 0;
  for (auto _ : state) {
    const float* v = pool.get() + 2 + next * stride;
    float d = k.fn != nullptr ? k.fn(query.get(), v, n) : k.norm(v, n);
    benchmark::DoNotOptimize(d);
    if (++next == count) next = 0;
  }
  SetCounters(state, k, n);
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

void RegisterAll() {
  for (const char* isa : {"avx512", "avx2", "scalar"}) {
    const DistanceKernels* ks = KernelsFor(isa);
    if (ks == nullptr) continue;
    const KernelRef kernels[] = {
        {"l2_squared", ks->l2_squared, nullptr}, {"inner_product", ks->inner_product, nullptr},
        {"cosine", ks->cosine, nullptr},         {"l1", ks->l1, nullptr},
        {"squared_norm", nullptr, ks->squared_norm},
    };
    for (const KernelRef& k : kernels) {
      auto* hot = benchmark::RegisterBenchmark((std::string(k.name) + "/" + isa).c_str(), BenchHot, k);
      hot->ComputeStatistics("min", Min);
      for (int n : kDims) hot->Arg(n);
      auto* pool = benchmark::RegisterBenchmark((std::string("pool/") + k.name + "/" + isa).c_str(), BenchPool, k);
      pool->ComputeStatistics("min", Min);
      for (int n : kPoolDims) pool->Arg(n);
    }
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
