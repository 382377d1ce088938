// Unit tests of the bounded squared-L2 kernels (src/core/distance_bounded.h)
// and of the neighbour heuristic over them: every ISA this CPU runs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/distance.h"
#include "core/distance_bounded.h"
#include "core/hnsw_heuristic.h"

namespace vecext {
namespace {

std::vector<const DistanceKernels*> AllKernels() {
  std::vector<const DistanceKernels*> out;
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (const DistanceKernels* k = KernelsFor(isa)) out.push_back(k);
  }
  return out;
}

std::uint32_t Bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

TEST(DistanceBounded, MatchesItsKernel) {
  for (const DistanceKernels* k : AllKernels()) {
    ASSERT_NE(BoundedL2For(k->l2_squared), nullptr) << k->isa;
    EXPECT_EQ(BoundedL2For(k->inner_product), nullptr) << k->isa;
    EXPECT_EQ(BoundedL2For(k->l1), nullptr) << k->isa;
  }
  EXPECT_EQ(BoundedL2For(nullptr), nullptr);
}

// Below the bound: the very bits of the kernel. At or above it: a value in
// [bound, full], so `result < bound` decides as the full distance does.
TEST(DistanceBounded, ExactBelowBoundAndNeverAboveFull) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::uniform_real_distribution<float> frac(0.0f, 1.3f);
  for (const DistanceKernels* k : AllKernels()) {
    const BoundedDistanceFn bounded = BoundedL2For(k->l2_squared);
    for (std::size_t n : {1, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 191, 192, 255, 256, 257, 300, 383, 384,
                          385, 511, 512, 513, 767, 768, 784, 1000, 1536, 2048, 3072}) {
      std::vector<float> a(n), b(n);
      for (int trial = 0; trial < 40; trial++) {
        for (std::size_t i = 0; i < n; i++) {
          a[i] = u(rng);
          // Later elements differ more, so partial sums pass the bound late.
          b[i] = a[i] + u(rng) * static_cast<float>(i + 1) / static_cast<float>(n);
        }
        const float full = k->l2_squared(a.data(), b.data(), n);
        const float bound = trial == 0 ? std::numeric_limits<float>::infinity() : full * frac(rng);
        const float r = bounded(a.data(), b.data(), n, bound);
        if (full < bound) {
          EXPECT_EQ(Bits(r), Bits(full)) << k->isa << " n=" << n;
        } else {
          EXPECT_GE(r, bound) << k->isa << " n=" << n;
          EXPECT_LE(r, full) << k->isa << " n=" << n;
        }
        EXPECT_EQ(r < bound, full < bound) << k->isa << " n=" << n;
        // At exactly the full distance: not below.
        EXPECT_FALSE(bounded(a.data(), b.data(), n, full) < full) << k->isa << " n=" << n;
      }
    }
  }
}

TEST(DistanceBounded, NaNStaysNaN) {
  for (const DistanceKernels* k : AllKernels()) {
    const BoundedDistanceFn bounded = BoundedL2For(k->l2_squared);
    std::vector<float> a(784, 1.0f), b(784, 0.0f);
    a[3] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(std::isnan(bounded(a.data(), b.data(), a.size(), 10.0f))) << k->isa;
    EXPECT_FALSE(bounded(a.data(), b.data(), a.size(), 10.0f) < 10.0f) << k->isa;
  }
}

// The heuristic picks the same neighbours with the bounded kernel as with
// the full one.
TEST(DistanceBounded, HeuristicChoosesTheSame) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (const DistanceKernels* k : AllKernels()) {
    const BoundedDistanceFn bounded = BoundedL2For(k->l2_squared);
    for (std::size_t dim : {8, 100, 300, 784}) {
      for (int trial = 0; trial < 20; trial++) {
        const int n = 64;
        std::vector<float> base(dim), data(n * dim);
        for (float& x : base) x = g(rng);
        for (float& x : data) x = g(rng);
        std::vector<hnsw::Candidate> cands(n);
        std::vector<const float*> vecs(n);
        for (int i = 0; i < n; i++) {
          cands[i].distance = k->l2_squared(base.data(), &data[i * dim], dim);
          cands[i].id = static_cast<hnsw::ElementId>(i);
        }
        std::sort(cands.begin(), cands.end(), hnsw::Closer);
        for (int i = 0; i < n; i++) vecs[i] = &data[cands[i].id * dim];
        for (int m : {4, 16, 32}) {
          std::vector<int> want(n), got(n);
          const int nw = hnsw::SelectNeighbors(cands.data(), vecs.data(), n, m, dim, k->l2_squared, false,
                                               want.data());
          const int ng =
              hnsw::SelectNeighborsBounded(cands.data(), vecs.data(), n, m, dim, bounded, false, got.data());
          ASSERT_EQ(nw, ng) << k->isa << " dim=" << dim << " m=" << m;
          for (int i = 0; i < nw; i++) EXPECT_EQ(want[i], got[i]) << k->isa << " dim=" << dim << " m=" << m;
        }
      }
    }
  }
}

}  // namespace
}  // namespace vecext
