// Unit tests of the HNSW search (hnsw_search.h) over an in-memory Store:
// a graph built here with the core's own search and heuristic, recall
// against brute force, deleted elements, invalid links, the scored-element
// budget, and the resumable level-0 search of iterative scans.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/distance.h"
#include "core/hnsw_heuristic.h"
#include "core/hnsw_search.h"

namespace vecext::hnsw {
namespace {

constexpr std::uint64_t kAuxTag = 0xA5A5000000000000ull;

// Elements in arrays; links per element per level.
struct ArrayStore {
  std::size_t dim = 0;
  std::vector<float> data;                          // n * dim
  std::vector<int> levels;                          // per element
  std::vector<std::vector<std::vector<ElementId>>> links;  // [element][level]
  std::vector<bool> deleted;
  const float* query = nullptr;
  std::uint64_t score_calls = 0;
  std::uint64_t scored = 0;
  std::uint64_t neighbor_calls = 0;

  std::size_t size() const { return levels.size(); }
  const float* vec(ElementId id) const { return data.data() + id * dim; }

  void Score(const ElementId* ids, int n, int level, float /*bound*/, Candidate* out, std::uint8_t* flags) {
    score_calls++;
    for (int i = 0; i < n; i++) {
      const ElementId id = ids[i];
      if (id >= size() || levels[id] < level) {
        flags[i] = 0;
        continue;
      }
      scored++;
      out[i] = Candidate{L2SquaredScalar(query, vec(id), dim), id, kAuxTag | id};
      flags[i] = kScoreValid | (deleted[id] ? 0 : kScoreReturnable);
    }
  }

  int Neighbors(const Candidate& c, int level, ElementId* out, int cap) {
    neighbor_calls++;
    EXPECT_EQ(c.aux, kAuxTag | c.id);  // the payload Score wrote comes back
    const auto& l = links[c.id][level];
    int n = 0;
    for (ElementId id : l) {
      if (n == cap) break;
      out[n++] = id;
    }
    return n;
  }
};

struct Graph {
  ArrayStore store;
  ElementId entry = kInvalidElement;
  int entry_level = -1;
  int m = 0;
};

std::vector<float> RandomData(std::mt19937& rng, std::size_t n, std::size_t dim) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> d(n * dim);
  for (auto& x : d) x = u(rng);
  return d;
}

// Inserts every element the way the index does: greedy descent, SEARCH-LAYER
// with ef_construction on each level of the new element, heuristic selection
// of m (2m on level 0) neighbours, back-links pruned with the heuristic.
void BuildGraph(Graph& g, std::vector<float> data, std::size_t dim, int m, int ef_construction, unsigned seed) {
  ArrayStore& s = g.store;
  s.dim = dim;
  s.data = std::move(data);
  const std::size_t n = s.data.size() / dim;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double ml = 1.0 / std::log(static_cast<double>(m));
  g.m = m;
  Allocator alloc = MallocAllocator();
  auto* x = new SearchScratch;
  LayerSearch ls;
  ASSERT_TRUE(ls.Init(alloc, ef_construction, false).ok());
  std::vector<Candidate> found(ef_construction + 1);
  for (std::size_t i = 0; i < n; i++) {
    const int level = std::min(16, static_cast<int>(-std::log(1.0 - u(rng)) * ml));
    s.levels.push_back(level);
    s.links.emplace_back(level + 1);
    s.deleted.push_back(false);
    if (g.entry == kInvalidElement) {
      g.entry = i;
      g.entry_level = level;
      continue;
    }
    s.query = s.vec(i);
    Candidate ep;
    std::uint8_t flags = ScoreOne(s, g.entry, g.entry_level, &ep);
    ASSERT_TRUE(flags & kScoreValid);
    for (int l = g.entry_level; l > level; l--) ep = GreedySearch(s, ep, &flags, l, *x);
    std::vector<Candidate> seeds{ep};
    for (int l = std::min(level, g.entry_level); l >= 0; l--) {
      ls.Reset();
      for (const auto& c : seeds) ASSERT_TRUE(AddSeed(ls, c, true).ok());
      ASSERT_TRUE(SearchLayer(s, ls, l, kUnlimited, *x).ok());
      const std::size_t nf = TakeResults(ls, found.data());
      std::vector<const float*> vecs;
      for (std::size_t k = 0; k < nf; k++) vecs.push_back(s.vec(found[k].id));
      const int lm = l == 0 ? 2 * m : m;
      int chosen[kMaxLinks];
      const int nc = SelectNeighbors(found.data(), vecs.data(), static_cast<int>(nf), lm, dim, L2SquaredScalar,
                                     false, chosen);
      for (int k = 0; k < nc; k++) {
        const ElementId e = found[chosen[k]].id;
        s.links[i][l].push_back(e);
        auto& back = s.links[e][l];
        if (static_cast<int>(back.size()) < lm) {
          back.push_back(i);
          continue;
        }
        // Prune e's links (plus i) with the heuristic around e.
        std::vector<Candidate> cands;
        for (ElementId b : back) cands.push_back(Candidate{L2SquaredScalar(s.vec(e), s.vec(b), dim), b, 0});
        cands.push_back(Candidate{found[chosen[k]].distance, i, 0});
        std::sort(cands.begin(), cands.end(), Closer);
        std::vector<const float*> cv;
        for (const auto& c : cands) cv.push_back(s.vec(c.id));
        int keep[kMaxLinks];
        const int nk = SelectNeighbors(cands.data(), cv.data(), static_cast<int>(cands.size()), lm, dim,
                                       L2SquaredScalar, false, keep);
        back.clear();
        for (int t = 0; t < nk; t++) back.push_back(cands[keep[t]].id);
      }
      seeds.assign(found.begin(), found.begin() + nf);
    }
    if (level > g.entry_level) {
      g.entry = i;
      g.entry_level = level;
    }
  }
  ls.Release();
  delete x;
}

std::vector<ElementId> ExactTopK(const ArrayStore& s, const float* q, std::size_t k) {
  std::vector<Candidate> all;
  for (ElementId i = 0; i < s.size(); i++) {
    if (!s.deleted[i]) all.push_back(Candidate{L2SquaredScalar(q, s.vec(i), s.dim), i, 0});
  }
  k = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + k, all.end(), Closer);
  std::vector<ElementId> ids;
  for (std::size_t i = 0; i < k; i++) ids.push_back(all[i].id);
  return ids;
}

// One query through SearchFromEntry; returns the ids in ascending distance.
std::vector<Candidate> Search(Graph& g, const float* q, std::size_t ef, std::uint64_t max_scored = kUnlimited,
                              std::uint64_t* scored = nullptr) {
  g.store.query = q;
  LayerSearch ls;
  EXPECT_TRUE(ls.Init(MallocAllocator(), ef, false).ok());
  auto* x = new SearchScratch;
  bool found = false;
  EXPECT_TRUE(SearchFromEntry(g.store, g.entry, g.entry_level, ls, max_scored, *x, &found).ok());
  EXPECT_TRUE(found);
  std::vector<Candidate> out(ls.results.size);
  out.resize(TakeResults(ls, out.data()));
  if (scored != nullptr) *scored = ls.scored;
  ls.Release();
  delete x;
  return out;
}

double Recall(Graph& g, const std::vector<float>& queries, std::size_t k, std::size_t ef) {
  const std::size_t nq = queries.size() / g.store.dim;
  std::size_t hits = 0;
  for (std::size_t qi = 0; qi < nq; qi++) {
    const float* q = queries.data() + qi * g.store.dim;
    auto exact = ExactTopK(g.store, q, k);
    auto got = Search(g, q, ef);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), Closer));
    std::set<ElementId> ex(exact.begin(), exact.end());
    for (std::size_t i = 0; i < std::min(k, got.size()); i++) {
      EXPECT_FALSE(g.store.deleted[got[i].id]) << "a deleted element was returned";
      hits += ex.count(got[i].id);
    }
  }
  return static_cast<double>(hits) / static_cast<double>(nq * k);
}

class HnswSearchTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kDim = 16;
  static constexpr std::size_t kN = 3000;
  static void SetUpTestSuite() {
    std::mt19937 rng(11);
    graph_ = new Graph;
    BuildGraph(*graph_, RandomData(rng, kN, kDim), kDim, 8, 64, 12);
    queries_ = new std::vector<float>(RandomData(rng, 200, kDim));
  }
  static void TearDownTestSuite() {
    delete graph_;
    delete queries_;
  }
  void SetUp() override { std::fill(graph_->store.deleted.begin(), graph_->store.deleted.end(), false); }
  static Graph* graph_;
  static std::vector<float>* queries_;
};
Graph* HnswSearchTest::graph_ = nullptr;
std::vector<float>* HnswSearchTest::queries_ = nullptr;

TEST_F(HnswSearchTest, RecallAgainstBruteForce) {
  const double r40 = Recall(*graph_, *queries_, 10, 40);
  const double r100 = Recall(*graph_, *queries_, 10, 100);
  std::printf("recall@10: ef 40 %.4f, ef 100 %.4f\n", r40, r100);
  EXPECT_GE(r40, 0.90);
  EXPECT_GE(r100, 0.97);
  EXPECT_GE(r100, r40 - 0.01);
}

TEST_F(HnswSearchTest, ResultsHaveExactDistancesAndNoDuplicates) {
  auto got = Search(*graph_, queries_->data(), 50);
  ASSERT_EQ(got.size(), 50u);
  std::set<ElementId> ids;
  for (const auto& c : got) {
    EXPECT_TRUE(ids.insert(c.id).second);
    EXPECT_EQ(c.distance, L2SquaredScalar(queries_->data(), graph_->store.vec(c.id), kDim));
    EXPECT_EQ(c.aux, kAuxTag | c.id);
  }
}

TEST_F(HnswSearchTest, DeletedElementsAreTraversedButNeverReturned) {
  std::mt19937 rng(21);
  auto& del = graph_->store.deleted;
  for (std::size_t i = 0; i < del.size(); i++) del[i] = rng() % 10 < 3;
  del[graph_->entry] = true;  // even the entry point
  const double r = Recall(*graph_, *queries_, 10, 64);
  std::printf("recall@10 with 30%% deleted, ef 64: %.4f\n", r);
  EXPECT_GE(r, 0.90);
}

TEST_F(HnswSearchTest, InvalidLinksAreSkipped) {
  Graph g = *graph_;
  // Dangling links (no such element) and links to elements whose level is too low.
  for (std::size_t i = 0; i < g.store.size(); i += 7) g.store.links[i][0].push_back(kN + i);
  for (std::size_t i = 0; i < g.store.size(); i++) {
    if (g.store.levels[i] >= 1) g.store.links[i][1].push_back((i * 31) % kN);
  }
  std::size_t hits = 0;
  for (std::size_t qi = 0; qi < 50; qi++) {
    const float* q = queries_->data() + qi * kDim;
    auto exact = ExactTopK(g.store, q, 10);
    auto got = Search(g, q, 64);
    for (const auto& c : got) ASSERT_LT(c.id, kN);
    std::set<ElementId> ex(exact.begin(), exact.end());
    for (std::size_t i = 0; i < 10; i++) hits += ex.count(got[i].id);
  }
  EXPECT_GE(hits, 450u);
}

TEST_F(HnswSearchTest, ScoredBudgetStopsTheSearch) {
  std::uint64_t scored = 0;
  auto got = Search(*graph_, queries_->data(), 200, kUnlimited, &scored);
  EXPECT_GT(scored, 300u);
  got = Search(*graph_, queries_->data(), 200, 100, &scored);
  EXPECT_GE(scored, 100u);
  EXPECT_LE(scored, 100u + 16u);  // stops after the expansion that reaches the budget (2m = 16 links)
  EXPECT_GT(got.size(), 0u);
}

TEST_F(HnswSearchTest, EmptyAndInvalidEntry) {
  ArrayStore s;
  s.dim = kDim;
  s.query = queries_->data();
  LayerSearch ls;
  ASSERT_TRUE(ls.Init(MallocAllocator(), 10, true).ok());
  SearchScratch* x = new SearchScratch;
  bool found = true;
  ASSERT_TRUE(SearchFromEntry(s, 0, 0, ls, kUnlimited, *x, &found).ok());
  EXPECT_FALSE(found);
  EXPECT_EQ(ls.results.size, 0u);
  ls.Release();
  delete x;
}

// Runs a resumable search to the end; returns every batch's results in order.
std::vector<std::vector<Candidate>> AllBatches(Graph& g, const float* q, std::size_t ef) {
  g.store.query = q;
  LayerSearch ls;
  EXPECT_TRUE(ls.Init(MallocAllocator(), ef, true).ok());
  auto* x = new SearchScratch;
  bool found = false;
  EXPECT_TRUE(SearchFromEntry(g.store, g.entry, g.entry_level, ls, kUnlimited, *x, &found).ok());
  std::vector<std::vector<Candidate>> batches;
  std::vector<Candidate> buf(ef + 1);
  for (int guard = 0; guard < 100000; guard++) {
    batches.emplace_back(buf.begin(), buf.begin() + TakeResults(ls, buf.data()));
    bool more = false;
    EXPECT_TRUE(NextBatch(ls, &more).ok());
    if (!more) break;
    EXPECT_TRUE(SearchLayer(g.store, ls, 0, kUnlimited, *x).ok());
  }
  ls.Release();
  delete x;
  return batches;
}

TEST_F(HnswSearchTest, ResumableSearchYieldsEveryElementOnce) {
  std::mt19937 rng(31);
  auto& del = graph_->store.deleted;
  for (std::size_t i = 0; i < del.size(); i++) del[i] = rng() % 10 < 2;
  std::size_t live = std::count(del.begin(), del.end(), false);
  for (int qi = 0; qi < 5; qi++) {
    const float* q = queries_->data() + qi * kDim;
    auto batches = AllBatches(*graph_, q, 20);
    std::set<ElementId> seen;
    std::vector<Candidate> all;
    for (const auto& b : batches) {
      EXPECT_TRUE(std::is_sorted(b.begin(), b.end(), Closer));
      for (const auto& c : b) {
        ASSERT_TRUE(seen.insert(c.id).second) << "element " << c.id << " returned twice";
        ASSERT_FALSE(del[c.id]);
        all.push_back(c);
      }
    }
    EXPECT_EQ(seen.size(), live);
    // Roughly ascending: the first 100 returned are mostly the exact first 100,
    // and the mean displacement from the sorted order is small.
    auto exact = ExactTopK(graph_->store, q, 100);
    std::set<ElementId> first(exact.begin(), exact.end());
    std::size_t hits = 0;
    for (std::size_t i = 0; i < 100; i++) hits += first.count(all[i].id);
    EXPECT_GE(hits, 90u);
    std::vector<Candidate> sorted = all;
    std::sort(sorted.begin(), sorted.end(), Closer);
    double displacement = 0;
    for (std::size_t i = 0; i < all.size(); i++) {
      auto pos = std::lower_bound(sorted.begin(), sorted.end(), all[i], Closer) - sorted.begin();
      displacement += std::abs(static_cast<double>(pos) - static_cast<double>(i));
    }
    displacement /= static_cast<double>(all.size());
    std::printf("resumable query %d: %zu batches, mean displacement %.1f of %zu\n", qi, batches.size(),
                displacement, all.size());
    EXPECT_LT(displacement, 0.05 * static_cast<double>(all.size()));
  }
}

TEST_F(HnswSearchTest, FirstBatchEqualsPlainSearch) {
  const float* q = queries_->data() + 7 * kDim;
  auto plain = Search(*graph_, q, 30);
  auto batches = AllBatches(*graph_, q, 30);
  ASSERT_FALSE(batches.empty());
  ASSERT_EQ(batches[0].size(), plain.size());
  for (std::size_t i = 0; i < plain.size(); i++) EXPECT_EQ(batches[0][i].id, plain[i].id);
}

}  // namespace
}  // namespace vecext::hnsw
