// Page layout of a built graph (src/core/hnsw_layout.h).
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/hnsw_build.h"
#include "core/hnsw_layout.h"

namespace vecext {
namespace hnsw {
namespace {

struct Graph {
  GraphBuilder* b = nullptr;
  ~Graph() { GraphBuilder::Destroy(b); }
};

// n seeded points around 40 random centres in 16 dimensions, inserted in
// random order (so row order says nothing about the geometry, as heap order
// says nothing about the vectors).
void Build(Graph* g, std::size_t n, bool keep_pruned) {
  const std::size_t dim = 16;
  BuildParams p;
  p.dim = dim;
  p.m = 8;
  p.ef_construction = 48;
  p.capacity = n;
  p.seed = 7;
  p.keep_pruned = keep_pruned;
  ASSERT_TRUE(GraphBuilder::Create(p, &g->b).ok());
  std::mt19937_64 rng(11);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> centres(40 * dim);
  for (float& c : centres) c = 4.0f * gauss(rng);
  std::vector<float> v(dim);
  for (std::size_t i = 0; i < n; i++) {
    const std::size_t c = rng() % 40;
    for (std::size_t j = 0; j < dim; j++) v[j] = centres[c * dim + j] + gauss(rng);
    ASSERT_TRUE(g->b->Append(v.data(), i).ok());
  }
  ASSERT_TRUE(g->b->AddRows(0, n, 1).ok());
}

TEST(HnswLayout, IsAPermutationWithinPageRoom) {
  Graph g;
  const std::size_t n = 3000;
  Build(&g, n, true);
  // Rows of varying size, as with upper levels and metadata signatures;
  // every 500th row is larger than a page.
  std::vector<std::uint32_t> bytes(n);
  for (std::size_t i = 0; i < n; i++) bytes[i] = i % 500 == 0 ? 9000 : 300 + static_cast<std::uint32_t>(i % 7) * 40;
  const std::size_t page = 8160;
  std::vector<std::uint32_t> order(n);
  std::vector<std::uint8_t> start(n);
  ASSERT_TRUE(PageLayout(*g.b, bytes.data(), page, order.data(), start.data()).ok());
  std::vector<int> seen(n, 0);
  for (std::size_t j = 0; j < n; j++) {
    ASSERT_LT(order[j], n);
    seen[order[j]]++;
  }
  for (std::size_t i = 0; i < n; i++) EXPECT_EQ(seen[i], 1) << "row " << i;
  ASSERT_EQ(start[0], 1);
  std::size_t used = 0, pages = 0;
  for (std::size_t j = 0; j < n; j++) {
    if (start[j]) {
      used = 0;
      pages++;
    }
    const std::uint32_t b = bytes[order[j]];
    if (b > page) {
      EXPECT_EQ(start[j], 1) << "an oversized row starts a page";
      EXPECT_TRUE(j + 1 == n || start[j + 1] == 1) << "and has it to itself";
    }
    used += b;
    if (b <= page) {
      EXPECT_LE(used, page) << "page " << pages;
    }
  }
  // Pages are filled: no more than a few percent above the minimum.
  std::size_t total = 0;
  for (std::uint32_t b : bytes) total += b;
  EXPECT_LE(pages, total / page * 105 / 100 + 8);
}

TEST(HnswLayout, PutsGraphNeighboursOnTheSamePage) {
  Graph g;
  const std::size_t n = 4000;
  Build(&g, n, true);
  const std::size_t per_page = 20;
  std::vector<std::uint32_t> bytes(n, 400);
  std::vector<std::uint32_t> order(n), identity(n);
  std::vector<std::uint8_t> start(n), identity_start(n);
  for (std::size_t i = 0; i < n; i++) {
    identity[i] = static_cast<std::uint32_t>(i);
    identity_start[i] = i % per_page == 0 ? 1 : 0;
  }
  ASSERT_TRUE(PageLayout(*g.b, bytes.data(), per_page * 400, order.data(), start.data()).ok());
  std::size_t pages = 0;
  for (std::size_t j = 0; j < n; j++) pages += start[j];
  EXPECT_EQ(pages, n / per_page);  // equal rows fill every page
  const double before = SamePageLinkFraction(*g.b, identity.data(), identity_start.data());
  const double after = SamePageLinkFraction(*g.b, order.data(), start.data());
  // Row order is random: about per_page / n of the links share a page.
  EXPECT_LT(before, 0.02);
  EXPECT_GT(after, 0.25) << "before " << before;
}

TEST(HnswLayout, EmptyGraph) {
  BuildParams p;
  p.dim = 4;
  p.capacity = 10;
  Graph g;
  ASSERT_TRUE(GraphBuilder::Create(p, &g.b).ok());
  std::uint32_t bytes[1] = {100}, order[1] = {99};
  std::uint8_t start[1] = {9};
  EXPECT_TRUE(PageLayout(*g.b, bytes, 8160, order, start).ok());
  EXPECT_EQ(order[0], 99u);  // nothing written
}

}  // namespace
}  // namespace hnsw
}  // namespace vecext
