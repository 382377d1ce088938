// Unit tests of the neighbour-selection heuristic (hnsw_heuristic.h).
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/distance.h"
#include "core/hnsw_heuristic.h"

namespace vecext::hnsw {
namespace {

struct Points {
  std::vector<std::vector<float>> v;
  std::vector<Candidate> cands;
  std::vector<const float*> ptrs;

  // Candidates = points sorted by distance to base.
  Points(const std::vector<float>& base, std::vector<std::vector<float>> pts) : v(std::move(pts)) {
    for (std::size_t i = 0; i < v.size(); i++) {
      cands.push_back(Candidate{L2SquaredScalar(base.data(), v[i].data(), base.size()), i, 0});
    }
    std::sort(cands.begin(), cands.end(), Closer);
    for (const auto& c : cands) ptrs.push_back(v[c.id].data());
  }
  // The original point numbers of the chosen indices.
  std::vector<ElementId> Chosen(const int* out, int n) const {
    std::vector<ElementId> ids;
    for (int i = 0; i < n; i++) ids.push_back(cands[out[i]].id);
    return ids;
  }
};

TEST(HnswHeuristic, KeepsDiverseDirections) {
  // Base at the origin. Point 1 lies just behind point 0 (closer to 0 than to
  // the base), so it is pruned; points 2 and 3 point elsewhere and are kept.
  Points p({0, 0}, {{1, 0}, {1.5f, 0.1f}, {0, 1.2f}, {-1.3f, 0}, {0.1f, 1.9f}});
  int out[8];
  int n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 5, 4, 2, L2SquaredScalar, false, out);
  EXPECT_EQ(p.Chosen(out, n), (std::vector<ElementId>{0, 2, 3}));
  // keep_pruned fills the remaining place with the closest pruned point.
  n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 5, 4, 2, L2SquaredScalar, true, out);
  EXPECT_EQ(p.Chosen(out, n), (std::vector<ElementId>{0, 2, 3, 1}));
  // At most m.
  n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 5, 2, 2, L2SquaredScalar, false, out);
  EXPECT_EQ(p.Chosen(out, n), (std::vector<ElementId>{0, 2}));
}

TEST(HnswHeuristic, KeepsEverythingWhenFewCandidates) {
  Points p({0, 0}, {{1, 0}, {1.1f, 0}, {1.2f, 0}});
  int out[8];
  int n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 3, 3, 2, L2SquaredScalar, false, out);
  EXPECT_EQ(n, 3);
  n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 3, 2, 2, L2SquaredScalar, false, out);
  EXPECT_EQ(p.Chosen(out, n), (std::vector<ElementId>{0}));
}

// Against a straightforward reference on random data.
TEST(HnswHeuristic, MatchesReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  const std::size_t dim = 8;
  for (int round = 0; round < 50; round++) {
    std::vector<float> base(dim);
    for (auto& x : base) x = g(rng);
    std::vector<std::vector<float>> pts(60, std::vector<float>(dim));
    for (auto& pt : pts)
      for (auto& x : pt) x = g(rng);
    Points p(base, pts);
    const int m = 1 + round % 16;
    std::vector<int> ref;
    for (int i = 0; i < 60 && static_cast<int>(ref.size()) < m; i++) {
      bool good = true;
      for (int j : ref) good = good && !(L2SquaredScalar(p.ptrs[i], p.ptrs[j], dim) < p.cands[i].distance);
      if (good) ref.push_back(i);
    }
    int out[64];
    int n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 60, m, dim, L2SquaredScalar, false, out);
    ASSERT_EQ(std::vector<int>(out, out + n), ref);
    n = SelectNeighbors(p.cands.data(), p.ptrs.data(), 60, m, dim, L2SquaredScalar, true, out);
    ASSERT_EQ(n, m);
    ASSERT_TRUE(std::is_sorted(out, out + n));
    for (int r : ref) ASSERT_TRUE(std::find(out, out + n, r) != out + n);
  }
}

}  // namespace
}  // namespace vecext::hnsw
