// Microbenchmarks of the vector text parsers and formatter (core/vector_text.h):
// simdjson (with its strtof fallback) against the strtof loop, on texts of
// embedding-like vectors. items/s is vectors parsed per second; bytes/s is text.
//   build/bench_vector_text --benchmark_filter=Parse
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/vector_text.h"

namespace {

// The text of one vector of `dim` N(0, 0.1) floats, as vector_out writes it.
std::string MakeText(int dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<float> x(static_cast<std::size_t>(dim));
  for (float& v : x) v = normal(rng);
  std::string text(vecext::VectorTextBufferSize(dim), '\0');
  text.resize(vecext::FormatVectorText(x.data(), dim, text.data()));
  return text;
}

// 64 different texts, so that the branch predictor cannot learn one.
std::vector<std::string> MakeTexts(int dim) {
  std::vector<std::string> texts;
  for (unsigned i = 0; i < 64; i++) texts.push_back(MakeText(dim, 1000 + i));
  return texts;
}

void RunParse(benchmark::State& state, vecext::VectorTextParser parser) {
  const int dim = static_cast<int>(state.range(0));
  const std::vector<std::string> texts = MakeTexts(dim);
  std::vector<float> out(vecext::kVectorMaxDim);
  std::size_t bytes = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& t = texts[i++ % texts.size()];
    vecext::VectorTextResult result;
    const vecext::Status status =
        vecext::ParseVectorText(t.c_str(), t.size(), parser, out.data(), &result);
    if (!status.ok() || result.dim != dim || result.fell_back) {
      state.SkipWithError("parse failed or fell back");
      break;
    }
    benchmark::DoNotOptimize(out.data());
    bytes += t.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_ParseSimdjson(benchmark::State& state) { RunParse(state, vecext::VectorTextParser::kSimdjson); }
void BM_ParseStrtof(benchmark::State& state) { RunParse(state, vecext::VectorTextParser::kStrtof); }

void BM_Format(benchmark::State& state) {
  const int dim = static_cast<int>(state.range(0));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<float> x(static_cast<std::size_t>(dim));
  for (float& v : x) v = normal(rng);
  std::vector<char> buf(vecext::VectorTextBufferSize(dim));
  for (auto _ : state) {
    benchmark::DoNotOptimize(vecext::FormatVectorText(x.data(), dim, buf.data()));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_ParseSimdjson)->Arg(128)->Arg(768)->Arg(1536);
BENCHMARK(BM_ParseStrtof)->Arg(128)->Arg(768)->Arg(1536);
BENCHMARK(BM_Format)->Arg(128)->Arg(1536);

BENCHMARK_MAIN();
