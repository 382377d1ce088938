// Unit tests of the in-memory HNSW graph builder (src/core/hnsw_build.h):
// recall against exact search (through hnswlib's search and through our own
// search over the graph as read back for the pages), graph invariants,
// parallel builds, determinism, cancellation, errors and the memory model;
// and the same for a builder that holds SQ8 codes (BuildParams::sq8).
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/hnsw_build.h"
#include "core/hnsw_types.h"
#include "core/index_distance.h"
#include "core/sq8.h"

namespace vecext {
namespace hnsw {
namespace {

// Seeded data shaped like embeddings: `clusters` Gaussian blobs in an
// 8-dimensional latent space, projected to `dim` dimensions (the projection
// and centres depend only on dim and clusters, so queries drawn with another
// seed come from the same distribution), plus a little noise.
std::vector<float> ClusteredData(std::size_t n, std::size_t dim, int clusters, std::uint64_t seed) {
  const std::size_t latent = std::min<std::size_t>(8, dim);
  std::mt19937_64 shape(1000 * dim + clusters);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> proj(latent * dim), centers(static_cast<std::size_t>(clusters) * latent);
  for (float& x : proj) x = gauss(shape);
  for (float& c : centers) c = uni(shape);
  std::mt19937_64 rng(seed);
  std::vector<float> data(n * dim), z(latent);
  for (std::size_t i = 0; i < n; i++) {
    std::size_t c = rng() % clusters;
    for (std::size_t l = 0; l < latent; l++) z[l] = centers[c * latent + l] + 0.35f * gauss(rng);
    for (std::size_t j = 0; j < dim; j++) {
      float x = 0.05f * gauss(rng);
      for (std::size_t l = 0; l < latent; l++) x += z[l] * proj[l * dim + j];
      data[i * dim + j] = x;
    }
  }
  return data;
}

struct Owned {
  GraphBuilder* b = nullptr;
  ~Owned() { GraphBuilder::Destroy(b); }
};

BuildParams Params(std::size_t dim, Metric metric, std::size_t capacity, int m = 16, int efc = 100) {
  BuildParams p;
  p.dim = dim;
  p.metric = metric;
  p.m = m;
  p.ef_construction = efc;
  p.capacity = capacity;
  p.seed = 42;
  return p;
}

void Load(GraphBuilder* b, const std::vector<float>& data, std::size_t dim) {
  std::size_t n = data.size() / dim;
  for (std::size_t i = 0; i < n; i++) {
    std::size_t row = 0;
    ASSERT_TRUE(b->Append(&data[i * dim], 1000 + i, &row).ok());
    ASSERT_EQ(row, i);
  }
}

// Exact k nearest rows of q (stored, i.e. normalized, vectors) by the index distance.
std::vector<float> ExactDistances(const GraphBuilder& b, Metric metric, const float* q) {
  DistanceFn fn = IndexDistanceFn(metric);
  std::vector<float> d(b.rows());
  for (std::size_t i = 0; i < b.rows(); i++) d[i] = fn(q, b.Vector(i), b.dim());
  return d;
}

// Fraction of returned ids whose exact distance is within the k-th smallest
// (ties at the k-th distance make several answers correct).
double RecallOf(const std::vector<float>& exact, const std::vector<std::uint32_t>& ids, std::size_t k) {
  std::vector<float> sorted(exact);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end());
  float kth = sorted[k - 1];
  std::size_t hits = 0;
  std::set<std::uint32_t> seen;
  for (std::uint32_t id : ids) {
    if (seen.insert(id).second && exact[id] <= kth + 1e-5f * (1.0f + std::fabs(kth))) hits++;
  }
  return static_cast<double>(hits) / k;
}

std::vector<float> Query(const std::vector<float>& queries, std::size_t i, std::size_t dim, Metric metric) {
  std::vector<float> q(queries.begin() + i * dim, queries.begin() + (i + 1) * dim);
  if (IndexNormalizes(metric)) NormalizeInPlace(q.data(), dim);
  return q;
}

// HNSW search over the graph as read back through Neighbors/EntryPoint
// (what the page writer stores), independent of hnswlib: greedy descent,
// then a beam of ef on level 0, by `dist(row)` (the distance to the query).
// Returns the beam's (distance, row) pairs, farthest first.
using Item = std::pair<float, std::uint32_t>;
template <class Dist>
std::priority_queue<Item> BeamSearch(const GraphBuilder& b, const Dist& dist, std::size_t ef) {
  std::priority_queue<Item> result;
  std::uint32_t ep = 0;
  int top = 0;
  if (!b.EntryPoint(&ep, &top)) return result;
  std::vector<std::uint32_t> links(2 * static_cast<std::size_t>(b.m()));
  float best = dist(ep);
  for (int lc = top; lc > 0; lc--) {
    bool changed = true;
    while (changed) {
      changed = false;
      std::size_t n = b.Neighbors(ep, lc, links.data());
      for (std::size_t i = 0; i < n; i++) {
        float d = dist(links[i]);
        if (d < best) {
          best = d;
          ep = links[i];
          changed = true;
        }
      }
    }
  }
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> candidates;
  std::vector<bool> visited(b.rows());
  candidates.push({best, ep});
  result.push({best, ep});
  visited[ep] = true;
  while (!candidates.empty()) {
    Item c = candidates.top();
    if (c.first > result.top().first && result.size() >= ef) break;
    candidates.pop();
    std::size_t n = b.Neighbors(c.second, 0, links.data());
    for (std::size_t i = 0; i < n; i++) {
      std::uint32_t e = links[i];
      if (visited[e]) continue;
      visited[e] = true;
      float d = dist(e);
      if (result.size() < ef || d < result.top().first) {
        candidates.push({d, e});
        result.push({d, e});
        if (result.size() > ef) result.pop();
      }
    }
  }
  return result;
}

// The k nearest rows by BeamSearch with the index distance.
std::vector<std::uint32_t> GraphSearch(const GraphBuilder& b, Metric metric, const float* q, std::size_t k,
                                       std::size_t ef) {
  DistanceFn fn = IndexDistanceFn(metric);
  std::priority_queue<Item> result =
      BeamSearch(b, [&](std::uint32_t row) { return fn(q, b.Vector(row), b.dim()); }, ef);
  while (result.size() > k) result.pop();
  std::vector<std::uint32_t> ids;
  while (!result.empty()) {
    ids.push_back(result.top().second);
    result.pop();
  }
  return ids;
}

struct Recall {
  double hnswlib = 0;  // through GraphBuilder::Search
  double graph = 0;    // through GraphSearch over the read-back graph
};

Recall MeasureRecall(const GraphBuilder& b, Metric metric, const std::vector<float>& queries, std::size_t dim,
                     std::size_t k, std::size_t ef) {
  std::size_t nq = queries.size() / dim;
  Recall r;
  std::vector<std::uint32_t> ids(k);
  std::vector<float> dists(k);
  for (std::size_t i = 0; i < nq; i++) {
    std::vector<float> q = Query(queries, i, dim, metric);
    std::vector<float> exact = ExactDistances(b, metric, q.data());
    std::size_t found = 0;
    EXPECT_TRUE(b.Search(q.data(), k, ef, ids.data(), dists.data(), &found).ok());
    r.hnswlib += RecallOf(exact, std::vector<std::uint32_t>(ids.begin(), ids.begin() + found), k);
    r.graph += RecallOf(exact, GraphSearch(b, metric, q.data(), k, ef), k);
  }
  r.hnswlib /= nq;
  r.graph /= nq;
  return r;
}

// Structural invariants of the read-back graph.
void CheckGraph(const GraphBuilder& b) {
  std::size_t n = b.inserted();
  std::uint32_t ep = 0;
  int top = -1;
  ASSERT_TRUE(b.EntryPoint(&ep, &top));
  ASSERT_LT(ep, n);
  EXPECT_EQ(b.Level(ep), top);
  std::vector<std::uint32_t> links(2 * static_cast<std::size_t>(b.m()));
  std::size_t level0_total = 0;
  for (std::size_t r = 0; r < n; r++) {
    ASSERT_LE(b.Level(r), top);
    for (int lc = 0; lc <= b.Level(r); lc++) {
      std::size_t cnt = b.Neighbors(r, lc, links.data());
      ASSERT_LE(cnt, lc == 0 ? 2 * static_cast<std::size_t>(b.m()) : static_cast<std::size_t>(b.m()));
      std::set<std::uint32_t> uniq;
      for (std::size_t i = 0; i < cnt; i++) {
        ASSERT_LT(links[i], n) << "row " << r << " level " << lc;
        ASSERT_NE(links[i], r) << "self link";
        ASSERT_GE(b.Level(links[i]), lc) << "link to an element without that level";
        uniq.insert(links[i]);
      }
      ASSERT_EQ(uniq.size(), cnt) << "duplicate link";
      if (lc == 0) level0_total += cnt;
      if (n > 1 && lc == 0) {
        ASSERT_GT(cnt, 0u) << "row " << r << " has no level-0 link";
      }
    }
  }
  EXPECT_GE(level0_total, n);
}

class MetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(MetricTest, RecallOfOneThreadBuild) {
  const Metric metric = GetParam();
  const std::size_t n = 4000, dim = 24, k = 10;
  std::vector<float> data = ClusteredData(n, dim, 20, 7);
  std::vector<float> queries = ClusteredData(100, dim, 20, 7 + 1000);
  Owned o;
  ASSERT_TRUE(GraphBuilder::Create(Params(dim, metric, n), &o.b).ok());
  Load(o.b, data, dim);
  std::size_t done = 0;
  ASSERT_TRUE(o.b->AddRows(0, n, 1, nullptr, nullptr, &done).ok());
  EXPECT_EQ(done, n);
  EXPECT_EQ(o.b->inserted(), n);
  CheckGraph(*o.b);
  Recall r = MeasureRecall(*o.b, metric, queries, dim, k, 80);
  // Inner product is not a metric; HNSW's recall is lower on it.
  double floor = metric == Metric::kInnerProduct ? 0.9 : 0.97;
  EXPECT_GE(r.hnswlib, floor);
  EXPECT_GE(r.graph, floor);
  RecordProperty("recall", std::to_string(r.graph));
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, MetricTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine, Metric::kL1));

TEST(HnswBuild, ParallelBuildHasComparableRecall) {
  const std::size_t n = 6000, dim = 32, k = 10;
  std::vector<float> data = ClusteredData(n, dim, 30, 11);
  std::vector<float> queries = ClusteredData(100, dim, 30, 11 + 1000);
  Recall r1, r4;
  for (int threads : {1, 4}) {
    Owned o;
    ASSERT_TRUE(GraphBuilder::Create(Params(dim, Metric::kL2, n, 12, 64), &o.b).ok());
    Load(o.b, data, dim);
    // Several chunks, as the glue runs them.
    for (std::size_t begin = 0; begin < n; begin += 1000) {
      std::size_t done = 0;
      ASSERT_TRUE(o.b->AddRows(begin, std::min(n, begin + 1000), threads, nullptr, nullptr, &done).ok());
      ASSERT_EQ(done, std::min(n, begin + 1000));
    }
    CheckGraph(*o.b);
    (threads == 1 ? r1 : r4) = MeasureRecall(*o.b, Metric::kL2, queries, dim, k, 64);
  }
  EXPECT_GE(r1.graph, 0.97);
  EXPECT_GE(r4.graph, 0.97);
  EXPECT_GE(r4.graph, r1.graph - 0.02);
}

TEST(HnswBuild, OneThreadIsDeterministic) {
  const std::size_t n = 1500, dim = 16;
  std::vector<float> data = ClusteredData(n, dim, 10, 3);
  Owned a, b;
  for (Owned* o : {&a, &b}) {
    ASSERT_TRUE(GraphBuilder::Create(Params(dim, Metric::kCosine, n), &o->b).ok());
    Load(o->b, data, dim);
    ASSERT_TRUE(o->b->AddRows(0, 700, 1).ok());
    ASSERT_TRUE(o->b->AddRows(700, n, 1).ok());
  }
  std::uint32_t ea = 0, eb = 0;
  int la = 0, lb = 0;
  ASSERT_TRUE(a.b->EntryPoint(&ea, &la));
  ASSERT_TRUE(b.b->EntryPoint(&eb, &lb));
  EXPECT_EQ(ea, eb);
  EXPECT_EQ(la, lb);
  std::vector<std::uint32_t> x(32), y(32);
  for (std::size_t r = 0; r < n; r++) {
    ASSERT_EQ(a.b->Level(r), b.b->Level(r));
    ASSERT_EQ(a.b->Payload(r), 1000 + r);
    for (int lc = 0; lc <= a.b->Level(r); lc++) {
      std::size_t cx = a.b->Neighbors(r, lc, x.data());
      std::size_t cy = b.b->Neighbors(r, lc, y.data());
      ASSERT_EQ(cx, cy);
      ASSERT_TRUE(std::equal(x.begin(), x.begin() + cx, y.begin()));
    }
  }
}

TEST(HnswBuild, LevelsFollowTheSeedNotTheThreads) {
  const std::size_t n = 20000, dim = 4;
  std::vector<float> data = ClusteredData(n, dim, 5, 9);
  Owned o;
  BuildParams p = Params(dim, Metric::kL2, n, 4, 8);
  p.max_level = 3;
  ASSERT_TRUE(GraphBuilder::Create(p, &o.b).ok());
  Load(o.b, data, dim);
  std::size_t above0 = 0;
  int top = 0;
  for (std::size_t r = 0; r < n; r++) {
    above0 += o.b->Level(r) > 0;
    top = std::max(top, o.b->Level(r));
  }
  // P(level > 0) = 1/m = 0.25; the cap holds.
  EXPECT_NEAR(static_cast<double>(above0) / n, 0.25, 0.02);
  EXPECT_EQ(top, 3);
}

TEST(HnswBuild, StopsWhenAskedAndContinues) {
  const std::size_t n = 5000, dim = 16;
  std::vector<float> data = ClusteredData(n, dim, 10, 5);
  std::vector<float> queries = ClusteredData(50, dim, 10, 5 + 1000);
  Owned o;
  ASSERT_TRUE(GraphBuilder::Create(Params(dim, Metric::kL2, n, 8, 32), &o.b).ok());
  Load(o.b, data, dim);
  struct Counter {
    std::atomic<int> polls{0};
    int limit;
  } counter;
  counter.limit = 1000;
  StopFn stop = [](const void* arg) {
    auto* c = static_cast<Counter*>(const_cast<void*>(arg));
    return c->polls.fetch_add(1) >= c->limit;
  };
  std::size_t done = 0;
  Status st = o.b->AddRows(0, n, 2, stop, &counter, &done);
  EXPECT_EQ(st.code, StatusCode::kCancelled);
  EXPECT_GT(done, 0u);
  EXPECT_LT(done, n);
  EXPECT_LE(done, 1000u + 2);
  EXPECT_EQ(o.b->inserted(), done);
  // The rows done so far form a valid graph; then the build continues.
  CheckGraph(*o.b);
  ASSERT_TRUE(o.b->AddRows(done, n, 2, nullptr, nullptr, &done).ok());
  EXPECT_EQ(done, n);
  CheckGraph(*o.b);
  EXPECT_GE(MeasureRecall(*o.b, Metric::kL2, queries, dim, 10, 64).graph, 0.95);

  // A stop already pending: nothing is inserted.
  Owned p;
  ASSERT_TRUE(GraphBuilder::Create(Params(dim, Metric::kL2, n), &p.b).ok());
  Load(p.b, data, dim);
  counter.polls = 0;
  counter.limit = 0;
  st = p.b->AddRows(0, n, 3, stop, &counter, &done);
  EXPECT_EQ(st.code, StatusCode::kCancelled);
  EXPECT_EQ(done, 0u);
}

// Rows reachable from the entry point on level 0.
std::size_t Reachable(const GraphBuilder& b) {
  std::uint32_t ep = 0;
  int top = 0;
  if (!b.EntryPoint(&ep, &top)) return 0;
  std::vector<char> seen(b.inserted(), 0);
  std::vector<std::uint32_t> stack{ep}, links(2 * static_cast<std::size_t>(b.m()));
  seen[ep] = 1;
  std::size_t count = 1;
  while (!stack.empty()) {
    std::uint32_t e = stack.back();
    stack.pop_back();
    std::size_t n = b.Neighbors(e, 0, links.data());
    for (std::size_t i = 0; i < n; i++) {
      if (!seen[links[i]]) {
        seen[links[i]] = 1;
        count++;
        stack.push_back(links[i]);
      }
    }
  }
  return count;
}

TEST(HnswBuild, EnsureReachableLinksEveryRow) {
  const std::size_t n = 5000, dim = 32;
  std::vector<float> data = ClusteredData(n, dim, 20, 21);
  std::vector<float> queries = ClusteredData(100, dim, 20, 21 + 1000);
  for (Metric metric : {Metric::kInnerProduct, Metric::kL2}) {
    Owned o;
    ASSERT_TRUE(GraphBuilder::Create(Params(dim, metric, n, 16, 64), &o.b).ok());
    Load(o.b, data, dim);
    ASSERT_TRUE(o.b->AddRows(0, n, 2).ok());
    const std::size_t before = Reachable(*o.b);
    if (metric == Metric::kInnerProduct) {
      EXPECT_LT(before, n) << "the data no longer exercises the repair";
    }
    const double recall_before = MeasureRecall(*o.b, metric, queries, dim, 10, 40).graph;
    std::size_t added = 0, unreachable = 0;
    ASSERT_TRUE(o.b->EnsureReachable(&added, &unreachable).ok());
    EXPECT_EQ(unreachable, 0u);
    EXPECT_EQ(added > 0, before < n);
    EXPECT_EQ(Reachable(*o.b), n);
    CheckGraph(*o.b);
    const double recall_after = MeasureRecall(*o.b, metric, queries, dim, 10, 40).graph;
    EXPECT_GE(recall_after, recall_before - 0.02);
    RecordProperty(metric == Metric::kL2 ? "recall_l2" : "recall_ip",
                   std::to_string(recall_before) + " -> " + std::to_string(recall_after));
    // Idempotent.
    ASSERT_TRUE(o.b->EnsureReachable(&added, &unreachable).ok());
    EXPECT_EQ(added, 0u);
  }
}

// A two-hop filtered search (ACORN-1, as scans of an index with link codes
// run it) over the read-back graph: level-0 expansions follow the links to
// matching rows, look through each non-matching neighbour to its links to
// matching rows, and only when nothing within two hops matches go on
// through the non-matching neighbours. Only matching rows are results.
std::vector<std::uint32_t> TwoHopSearch(const GraphBuilder& b, const float* q, const std::vector<char>& match,
                                        std::size_t k, std::size_t ef) {
  DistanceFn fn = IndexDistanceFn(Metric::kL2);
  std::uint32_t ep = 0;
  int top = 0;
  if (!b.EntryPoint(&ep, &top)) return {};
  std::vector<std::uint32_t> links(2 * static_cast<std::size_t>(b.m())), through(links.size());
  float best = fn(q, b.Vector(ep), b.dim());
  for (int lc = top; lc > 0; lc--) {
    for (bool changed = true; changed;) {
      changed = false;
      std::size_t n = b.Neighbors(ep, lc, links.data());
      for (std::size_t i = 0; i < n; i++) {
        float d = fn(q, b.Vector(links[i]), b.dim());
        if (d < best) {
          best = d;
          ep = links[i];
          changed = true;
        }
      }
    }
  }
  using Item = std::pair<float, std::uint32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> candidates;
  std::priority_queue<Item> result;
  std::vector<char> visited(b.rows(), 0), looked(b.rows(), 0);
  candidates.push({best, ep});
  if (match[ep]) result.push({best, ep});
  visited[ep] = 1;
  std::vector<std::uint32_t> next;
  while (!candidates.empty()) {
    Item c = candidates.top();
    if (result.size() >= ef && c.first > result.top().first) break;
    candidates.pop();
    next.clear();
    std::vector<std::uint32_t> rejected;
    std::size_t n = b.Neighbors(c.second, 0, links.data());
    for (std::size_t i = 0; i < n; i++) (match[links[i]] ? next : rejected).push_back(links[i]);
    if (2 * next.size() >= n) {
      next.insert(next.end(), rejected.begin(), rejected.end());
    } else {
      for (std::uint32_t r : rejected) {
        if (looked[r]) continue;
        looked[r] = 1;
        std::size_t t = b.Neighbors(r, 0, through.data());
        for (std::size_t j = 0; j < t; j++) {
          if (match[through[j]]) next.push_back(through[j]);
        }
      }
      if (next.empty()) next = rejected;
    }
    for (std::uint32_t e : next) {
      if (visited[e]) continue;
      visited[e] = 1;
      float d = fn(q, b.Vector(e), b.dim());
      if (result.size() < ef || d < result.top().first) {
        candidates.push({d, e});
        if (match[e]) {
          result.push({d, e});
          if (result.size() > ef) result.pop();
        }
      }
    }
  }
  while (result.size() > k) result.pop();
  std::vector<std::uint32_t> ids;
  for (; !result.empty(); result.pop()) ids.push_back(result.top().second);
  return ids;
}

// BuildParams::dense_level0 (what the index build sets for indexes with link
// codes): each row's own level-0 list takes up to 2m links. The graph stays
// valid, level-0 lists are denser, and a two-hop search restricted to 1% of
// the rows finds more of the exact filtered top 10 than over the default
// graph (both graphs built by one thread: deterministic).
TEST(HnswBuild, DenseLevel0HelpsTwoHopFilteredSearch) {
  const std::size_t n = 20000, dim = 32, k = 10, nq = 100;
  std::vector<float> data = ClusteredData(n, dim, 30, 31);
  std::vector<float> queries = ClusteredData(nq, dim, 30, 31 + 1000);
  std::vector<char> match(n, 0);
  for (std::size_t i = 0; i < n; i++) match[i] = (i * 7) % 100 == 3;  // 1%, independent of the vectors
  double recall[2] = {0, 0}, plain_recall[2] = {0, 0};
  std::size_t level0_links[2] = {0, 0};
  for (bool dense : {false, true}) {
    Owned o;
    BuildParams p = Params(dim, Metric::kL2, n, 16, 64);
    p.keep_pruned = true;  // as the index build does by default
    p.dense_level0 = dense;
    ASSERT_TRUE(GraphBuilder::Create(p, &o.b).ok());
    Load(o.b, data, dim);
    ASSERT_TRUE(o.b->AddRows(0, n, 1).ok());
    std::size_t added = 0, unreachable = 0;
    ASSERT_TRUE(o.b->EnsureReachable(&added, &unreachable).ok());
    EXPECT_EQ(unreachable, 0u);
    CheckGraph(*o.b);
    std::vector<std::uint32_t> links(32);
    for (std::size_t r = 0; r < n; r++) level0_links[dense] += o.b->Neighbors(r, 0, links.data());
    for (std::size_t i = 0; i < nq; i++) {
      const float* q = &queries[i * dim];
      std::vector<float> exact = ExactDistances(*o.b, Metric::kL2, q);
      for (std::size_t r = 0; r < n; r++) {
        if (!match[r]) exact[r] = std::numeric_limits<float>::infinity();
      }
      recall[dense] += RecallOf(exact, TwoHopSearch(*o.b, q, match, k, 40), k) / nq;
    }
    plain_recall[dense] = MeasureRecall(*o.b, Metric::kL2, queries, dim, k, 40).graph;
  }
  RecordProperty("two_hop_recall", std::to_string(recall[0]) + " -> " + std::to_string(recall[1]));
  RecordProperty("level0_links", std::to_string(level0_links[0]) + " -> " + std::to_string(level0_links[1]));
  std::printf("two-hop recall at 1%%: %.3f -> %.3f; unfiltered %.3f -> %.3f; level-0 links %zu -> %zu\n", recall[0],
              recall[1], plain_recall[0], plain_recall[1], level0_links[0], level0_links[1]);
  EXPECT_GT(level0_links[1], level0_links[0] * 21 / 20);
  EXPECT_GE(recall[1], recall[0] + 0.03);  // measured 0.801 -> 0.874
  EXPECT_GE(plain_recall[1], plain_recall[0] - 0.01);
}

TEST(HnswBuild, ReportsErrorsAsStatus) {
  GraphBuilder* b = nullptr;
  BuildParams bad = Params(0, Metric::kL2, 10);
  EXPECT_EQ(GraphBuilder::Create(bad, &b).code, StatusCode::kInvalidInput);
  EXPECT_EQ(b, nullptr);
  bad = Params(4, Metric::kL2, 10, 1);
  EXPECT_EQ(GraphBuilder::Create(bad, &b).code, StatusCode::kInvalidInput);
  bad = Params(4, static_cast<Metric>(9), 10);
  EXPECT_EQ(GraphBuilder::Create(bad, &b).code, StatusCode::kInvalidInput);
  // Level 0 holds 2m links: m above kMaxLinks / 2 would overflow the
  // neighbour heuristic's arrays (dense level-0 lists, keep_pruned).
  bad = Params(4, Metric::kL2, 10, kMaxLinks / 2 + 1, 400);
  EXPECT_EQ(GraphBuilder::Create(bad, &b).code, StatusCode::kInvalidInput);
  {
    // The largest m builds, with every option that fills 2m places.
    const std::size_t n = 400, dim = 4;
    Owned big;
    BuildParams p = Params(dim, Metric::kL2, n, kMaxLinks / 2, 300);
    p.keep_pruned = true;
    p.dense_level0 = true;
    ASSERT_TRUE(GraphBuilder::Create(p, &big.b).ok());
    std::vector<float> data = ClusteredData(n, dim, 4, 5);
    Load(big.b, data, dim);
    ASSERT_TRUE(big.b->AddRows(0, n, 2).ok());
    CheckGraph(*big.b);
    std::vector<std::uint32_t> links(kMaxLinks);
    EXPECT_LE(big.b->Neighbors(0, 0, links.data()), static_cast<std::size_t>(kMaxLinks));
  }

  Owned o;
  ASSERT_TRUE(GraphBuilder::Create(Params(3, Metric::kCosine, 2), &o.b).ok());
  const float zero[3] = {0, 0, 0};
  const float v[3] = {3, 0, 4};
  EXPECT_EQ(o.b->Append(zero, 1).code, StatusCode::kInvalidInput);
  EXPECT_EQ(o.b->rows(), 0u);
  ASSERT_TRUE(o.b->Append(v, 7).ok());
  EXPECT_FLOAT_EQ(o.b->Vector(0)[0], 0.6f);  // stored normalized
  EXPECT_FLOAT_EQ(o.b->Vector(0)[2], 0.8f);
  ASSERT_TRUE(o.b->Append(v, 8).ok());
  EXPECT_EQ(o.b->Append(v, 9).code, StatusCode::kLimitExceeded);
  EXPECT_EQ(o.b->AddRows(1, 2, 1).code, StatusCode::kInvalidInput);  // must start at inserted()
  EXPECT_EQ(o.b->AddRows(0, 3, 1).code, StatusCode::kInvalidInput);  // past rows()
  std::uint32_t ep = 0;
  int level = 0;
  EXPECT_FALSE(o.b->EntryPoint(&ep, &level));
  ASSERT_TRUE(o.b->AddRows(0, 2, 4).ok());  // more threads than rows
  ASSERT_TRUE(o.b->EntryPoint(&ep, &level));
  std::uint32_t links[4];
  EXPECT_EQ(o.b->Neighbors(0, 0, links), 1u);
  EXPECT_EQ(links[0], 1u);
}

// Resident memory of this process, in bytes.
std::size_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

TEST(HnswBuild, MemoryEstimateCoversActualUse) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "resident memory is not the builder's under a sanitizer";
#endif
  for (std::size_t dim : {8, 128, 784}) {
    for (int m : {4, 16}) {
      const int threads = 2;
      const std::size_t n = dim == 784 ? 3000 : 20000;
      std::vector<float> data = ClusteredData(n, dim, 10, dim + m);
      malloc_trim(0);
      const std::size_t before = ResidentBytes();
      {
        Owned o;
        ASSERT_TRUE(GraphBuilder::Create(Params(dim, Metric::kL2, n, m, 32), &o.b).ok());
        Load(o.b, data, dim);
        ASSERT_TRUE(o.b->AddRows(0, n, threads).ok());
        const std::size_t usage = ResidentBytes() - before;
        const std::size_t estimate = BuildFixedBytes(dim, m) + n * BuildBytesPerElement(dim, m, threads);
        EXPECT_GE(estimate, usage) << "dim " << dim << " m " << m;
        EXPECT_GE(estimate, o.b->MemoryUsage()) << "dim " << dim << " m " << m;
        // ... and is not wildly above it.
        EXPECT_LE(estimate, usage * 1.3 + (8u << 20)) << "dim " << dim << " m " << m;
        EXPECT_EQ(BuildCapacity(estimate, dim, m, threads), n);
      }
      malloc_trim(0);
    }
  }
  EXPECT_EQ(BuildCapacity(1000, 128, 16, 1), 0u);
}

// ---- a builder of SQ8 codes ------------------------------------------------------

// SQ8 params trained on every row (as the index build's first scan does).
struct TrainedSq8 {
  std::vector<float> lo, scale;
  Sq8Params View() const {
    Sq8Params p;
    p.dim = static_cast<std::uint32_t>(lo.size());
    p.lo = lo.data();
    p.scale = scale.data();
    return p;
  }
};

TrainedSq8 TrainOn(const std::vector<float>& data, std::size_t dim, Metric metric) {
  TrainedSq8 t;
  t.lo.resize(dim);
  t.scale.resize(dim);
  std::vector<const float*> rows;
  for (std::size_t i = 0; i < data.size() / dim; i++) rows.push_back(&data[i * dim]);
  EXPECT_TRUE(Sq8Train(rows.data(), rows.size(), static_cast<std::uint32_t>(dim), metric, t.lo.data(),
                       t.scale.data())
                  .ok());
  return t;
}

BuildParams Sq8BuildParams(std::size_t dim, Metric metric, std::size_t capacity, const TrainedSq8& t, int m = 16,
                           int efc = 100) {
  BuildParams p = Params(dim, metric, capacity, m, efc);
  p.sq8 = t.View();
  return p;
}

// Exact index distances of q (raw) to every row of data (raw), in double.
std::vector<float> ExactFromData(const std::vector<float>& data, std::size_t dim, Metric metric, const float* q) {
  std::vector<float> qn(q, q + dim);
  if (IndexNormalizes(metric)) NormalizeInPlace(qn.data(), dim);
  DistanceFn fn = IndexDistanceFn(metric);
  std::vector<float> out(data.size() / dim), row(dim);
  for (std::size_t i = 0; i < out.size(); i++) {
    std::copy(data.begin() + i * dim, data.begin() + (i + 1) * dim, row.begin());
    if (IndexNormalizes(metric)) NormalizeInPlace(row.data(), dim);
    out[i] = fn(qn.data(), row.data(), dim);
  }
  return out;
}

// What an SQ8 index scan does over the read-back graph: an HNSW search by
// the asymmetric SQ8 distance (float query against codes), then the ef
// candidates re-ranked by their exact distance (the table's vectors); the
// k best. `elem(row)` gives a row's SQ8 element (side data, codes).
template <class ElementOf>
std::vector<std::uint32_t> Sq8ScanSearch(const GraphBuilder& b, const TrainedSq8& t, Metric metric, const float* q,
                                         const std::vector<float>& exact, std::size_t k, std::size_t ef,
                                         const ElementOf& elem) {
  std::vector<float> buffer(Sq8QueryFloats(static_cast<std::uint32_t>(b.dim())));
  Sq8Query query;
  EXPECT_TRUE(Sq8PrepareQuery(t.View(), metric, q, buffer.data(), &query).ok());
  auto dist = [&](std::uint32_t row) { return Sq8Distance(query, elem(row) + sizeof(Sq8ElementInfo)); };
  std::priority_queue<Item> result = BeamSearch(b, dist, ef);
  std::vector<Item> reranked;
  for (; !result.empty(); result.pop()) reranked.push_back({exact[result.top().second], result.top().second});
  std::sort(reranked.begin(), reranked.end());
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < reranked.size() && i < k; i++) ids.push_back(reranked[i].second);
  return ids;
}

// Encodes data's rows with t (what the float builder's pages get).
std::vector<unsigned char> EncodeAll(const std::vector<float>& data, std::size_t dim, Metric metric,
                                     const TrainedSq8& t) {
  const std::size_t bytes = sizeof(Sq8ElementInfo) + dim;
  std::vector<unsigned char> out(data.size() / dim * bytes);
  for (std::size_t i = 0; i < data.size() / dim; i++) {
    Sq8ElementInfo info;
    EXPECT_TRUE(Sq8Encode(t.View(), metric, &data[i * dim], &out[i * bytes] + sizeof info, &info).ok());
    std::memcpy(&out[i * bytes], &info, sizeof info);
  }
  return out;
}

// Mean recall@k of Sq8ScanSearch over the queries.
double Sq8ScanRecall(const GraphBuilder& b, const TrainedSq8& t, Metric metric, const std::vector<float>& data,
                     const std::vector<unsigned char>& encoded, const std::vector<float>& queries, std::size_t k,
                     std::size_t ef) {
  const std::size_t dim = b.dim();
  const std::size_t bytes = sizeof(Sq8ElementInfo) + dim;
  const std::size_t nq = queries.size() / dim;
  double sum = 0;
  for (std::size_t i = 0; i < nq; i++) {
    const float* q = &queries[i * dim];
    std::vector<float> exact = ExactFromData(data, dim, metric, q);
    sum += RecallOf(exact,
                    Sq8ScanSearch(b, t, metric, q, exact, k, ef,
                                  [&](std::uint32_t row) { return &encoded[row * bytes]; }),
                    k);
  }
  return sum / nq;
}

class Sq8MetricTest : public ::testing::TestWithParam<Metric> {};

// The graph built from codes against the graph built from floats, both
// searched as an SQ8 index scan does (SQ8 distance, exact re-rank): the
// recall floor against brute force, and no more than 0.02 below the float
// graph at any ef_search.
TEST_P(Sq8MetricTest, CodeBuildRecallMatchesFloatBuild) {
  const Metric metric = GetParam();
  const std::size_t n = 4000, dim = 24, k = 10;
  std::vector<float> data = ClusteredData(n, dim, 20, 7);
  std::vector<float> queries = ClusteredData(100, dim, 20, 7 + 1000);
  const TrainedSq8 t = TrainOn(data, dim, metric);
  const std::vector<unsigned char> encoded = EncodeAll(data, dim, metric, t);
  Owned floats, codes;
  ASSERT_TRUE(GraphBuilder::Create(Params(dim, metric, n), &floats.b).ok());
  ASSERT_TRUE(GraphBuilder::Create(Sq8BuildParams(dim, metric, n, t), &codes.b).ok());
  EXPECT_FALSE(floats.b->quantized());
  EXPECT_TRUE(codes.b->quantized());
  for (Owned* o : {&floats, &codes}) {
    Load(o->b, data, dim);
    ASSERT_TRUE(o->b->AddRows(0, n, 1).ok());
    std::size_t added = 0, unreachable = 0;
    ASSERT_TRUE(o->b->EnsureReachable(&added, &unreachable).ok());
    EXPECT_EQ(unreachable, 0u);
    CheckGraph(*o->b);
  }
  // The builder's elements are the encoding the pages get.
  for (std::size_t i = 0; i < n; i++) {
    ASSERT_EQ(std::memcmp(codes.b->Element(i), &encoded[i * (12 + dim)], 12 + dim), 0) << "row " << i;
  }
  std::string figures;
  for (std::size_t ef : {10, 20, 40, 80}) {
    const double rf = Sq8ScanRecall(*floats.b, t, metric, data, encoded, queries, k, ef);
    const double rc = Sq8ScanRecall(*codes.b, t, metric, data, encoded, queries, k, ef);
    EXPECT_GE(rc, rf - 0.02) << "ef_search " << ef;
    if (ef == 80) {
      EXPECT_GE(rc, metric == Metric::kInnerProduct ? 0.9 : 0.97);
    }
    figures += std::to_string(ef) + ": " + std::to_string(rf) + " / " + std::to_string(rc) + "; ";
  }
  RecordProperty("recall_float_vs_codes", figures);
  // hnswlib's own search over the codes (the query encoded): distances are
  // code to code, the same as the index's inserts compute.
  std::vector<std::uint32_t> ids(k);
  std::vector<float> dists(k);
  double recall = 0;
  for (std::size_t i = 0; i < 100; i++) {
    const float* q = &queries[i * dim];
    std::size_t found = 0;
    ASSERT_TRUE(codes.b->Search(q, k, 80, ids.data(), dists.data(), &found).ok());
    ASSERT_EQ(found, k);
    std::vector<unsigned char> qe(12 + dim);
    Sq8ElementInfo qi;
    ASSERT_TRUE(Sq8Encode(t.View(), metric, q, qe.data() + 12, &qi).ok());
    const unsigned char* e = codes.b->Element(ids[0]);
    Sq8ElementInfo ei;
    std::memcpy(&ei, e, sizeof ei);
    EXPECT_EQ(dists[0], Sq8CodeDistance(Sq8KernelsDispatched(), t.View(), metric, qe.data() + 12, qi, e + 12, ei));
    recall += RecallOf(ExactFromData(data, dim, metric, q), std::vector<std::uint32_t>(ids.begin(), ids.end()), k);
  }
  EXPECT_GE(recall / 100, metric == Metric::kInnerProduct ? 0.85 : 0.9);
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, Sq8MetricTest,
                         ::testing::Values(Metric::kL2, Metric::kInnerProduct, Metric::kCosine, Metric::kL1));

// Encoding at Append: the side data from the float vector, clamping
// outside the trained range, the builder's own copy of the params, errors.
TEST(HnswBuildSq8, AppendEncodesAndClamps) {
  const std::size_t dim = 37;  // not a multiple of any SIMD width
  std::vector<float> data = ClusteredData(200, dim, 5, 31);
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    TrainedSq8 t = TrainOn(data, dim, metric);
    Owned o;
    ASSERT_TRUE(GraphBuilder::Create(Sq8BuildParams(dim, metric, 300, t), &o.b).ok());
    const TrainedSq8 kept = t;
    std::fill(t.lo.begin(), t.lo.end(), 1e9f);  // the builder copied the params
    t = kept;
    EXPECT_EQ(o.b->ElementBytes(), 12 + dim);
    Load(o.b, data, dim);
    EXPECT_EQ(o.b->Vector(0), nullptr);
    for (std::size_t i = 0; i < 200; i++) {
      std::vector<std::uint8_t> codes(dim);
      Sq8ElementInfo info;
      ASSERT_TRUE(Sq8Encode(t.View(), metric, &data[i * dim], codes.data(), &info).ok());
      const unsigned char* e = o.b->Element(i);
      ASSERT_EQ(std::memcmp(e, &info, sizeof info), 0);
      ASSERT_EQ(std::memcmp(e + 12, codes.data(), dim), 0);
      // Round trip: the decoding is within half a step of the (normalized) row.
      std::vector<float> x(&data[i * dim], &data[i * dim] + dim), dec(dim);
      if (IndexNormalizes(metric)) NormalizeInPlace(x.data(), dim);
      Sq8Decode(t.View(), e + 12, dec.data());
      for (std::size_t j = 0; j < dim; j++) ASSERT_NEAR(dec[j], x[j], t.scale[j] * 0.5f + 1e-6f);
    }
    if (metric == Metric::kL2) {
      // Outside the trained range: the end codes.
      std::vector<float> far(dim), near(dim);
      for (std::size_t j = 0; j < dim; j++) {
        far[j] = t.lo[j] + 255 * t.scale[j] + 100.0f;
        near[j] = t.lo[j] - 100.0f;
      }
      std::size_t row = 0;
      ASSERT_TRUE(o.b->Append(far.data(), 1, &row).ok());
      for (std::size_t j = 0; j < dim; j++) ASSERT_EQ(o.b->Element(row)[12 + j], 255);
      ASSERT_TRUE(o.b->Append(near.data(), 2, &row).ok());
      for (std::size_t j = 0; j < dim; j++) ASSERT_EQ(o.b->Element(row)[12 + j], 0);
      Sq8ElementInfo info;
      std::memcpy(&info, o.b->Element(row), sizeof info);
      EXPECT_GE(info.err_l2, 100.0f * std::sqrt(static_cast<float>(dim)) * 0.999f);  // the clamped excess
      std::vector<float> nan(dim, 0.0f);
      nan[3] = std::nanf("");
      EXPECT_EQ(o.b->Append(nan.data(), 3).code, StatusCode::kNotFinite);
    } else {
      std::vector<float> zero(dim, 0.0f);
      const std::size_t rows = o.b->rows();
      EXPECT_EQ(o.b->Append(zero.data(), 3).code, StatusCode::kInvalidInput);
      EXPECT_EQ(o.b->rows(), rows);
    }
    ASSERT_TRUE(o.b->AddRows(0, o.b->rows(), 2).ok());
    CheckGraph(*o.b);
  }
  GraphBuilder* b = nullptr;
  TrainedSq8 t = TrainOn(data, dim, Metric::kL2);
  BuildParams bad = Sq8BuildParams(dim + 1, Metric::kL2, 10, t);  // params of another dimension
  EXPECT_EQ(GraphBuilder::Create(bad, &b).code, StatusCode::kInvalidInput);
  EXPECT_EQ(b, nullptr);
}

// Threads, keep_pruned, a stop and a continuation, as the glue runs a build.
TEST(HnswBuildSq8, ParallelKeepPrunedStopAndContinue) {
  const std::size_t n = 6000, dim = 40, k = 10;
  std::vector<float> data = ClusteredData(n, dim, 30, 13);
  std::vector<float> queries = ClusteredData(100, dim, 30, 13 + 1000);
  const TrainedSq8 t = TrainOn(data, dim, Metric::kL2);
  const std::vector<unsigned char> encoded = EncodeAll(data, dim, Metric::kL2, t);
  double recall[2] = {0, 0};
  std::size_t level0_links[2] = {0, 0};
  for (bool keep : {false, true}) {
    Owned o;
    BuildParams p = Sq8BuildParams(dim, Metric::kL2, n, t, 12, 64);
    p.keep_pruned = keep;
    ASSERT_TRUE(GraphBuilder::Create(p, &o.b).ok());
    Load(o.b, data, dim);
    struct Counter {
      std::atomic<int> polls{0};
    } counter;
    StopFn stop = [](const void* arg) {
      return static_cast<Counter*>(const_cast<void*>(arg))->polls.fetch_add(1) >= 1500;
    };
    std::size_t done = 0;
    EXPECT_EQ(o.b->AddRows(0, n, 3, stop, &counter, &done).code, StatusCode::kCancelled);
    EXPECT_GT(done, 0u);
    EXPECT_LT(done, n);
    CheckGraph(*o.b);
    for (std::size_t begin = done; begin < n; begin = done) {
      ASSERT_TRUE(o.b->AddRows(begin, std::min(n, begin + 1000), 3, nullptr, nullptr, &done).ok());
    }
    EXPECT_EQ(o.b->inserted(), n);
    CheckGraph(*o.b);
    std::vector<std::uint32_t> links(24);
    for (std::size_t r = 0; r < n; r++) level0_links[keep] += o.b->Neighbors(r, 0, links.data());
    recall[keep] = Sq8ScanRecall(*o.b, t, Metric::kL2, data, encoded, queries, k, 40);
  }
  EXPECT_GE(recall[0], 0.95);
  EXPECT_GE(recall[1], recall[0] - 0.01);
  EXPECT_GT(level0_links[1], level0_links[0] * 11 / 10);  // keep_pruned: denser level-0 lists
}

TEST(HnswBuildSq8, MemoryEstimateCoversActualUse) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "resident memory is not the builder's under a sanitizer";
#endif
  for (std::size_t dim : {8, 128, 784}) {
    const int m = 16, threads = 2;
    const std::size_t n = dim == 784 ? 8000 : 20000;
    std::vector<float> data = ClusteredData(n, dim, 10, dim + 5);
    const TrainedSq8 t = TrainOn(data, dim, Metric::kL2);
    malloc_trim(0);
    const std::size_t before = ResidentBytes();
    {
      Owned o;
      ASSERT_TRUE(GraphBuilder::Create(Sq8BuildParams(dim, Metric::kL2, n, t, m, 32), &o.b).ok());
      Load(o.b, data, dim);
      ASSERT_TRUE(o.b->AddRows(0, n, threads).ok());
      const std::size_t usage = ResidentBytes() - before;
      const std::size_t estimate = BuildFixedBytes(dim, m, true) + n * BuildBytesPerElement(dim, m, threads, true);
      EXPECT_GE(estimate, usage) << "dim " << dim;
      EXPECT_GE(estimate, o.b->MemoryUsage()) << "dim " << dim;
      EXPECT_LE(estimate, usage * 1.3 + (8u << 20)) << "dim " << dim;
      EXPECT_EQ(BuildCapacity(estimate, dim, m, threads, true), n);
    }
    malloc_trim(0);
  }
  // With the same budget, a builder of codes holds 3-4 times more rows at
  // 784 dimensions and more (the links and hnswlib's per-element state stay).
  const std::size_t budget = std::size_t{1} << 30;
  for (std::size_t dim : {128, 784, 1536, 3072}) {
    const double ratio = static_cast<double>(BuildCapacity(budget, dim, 16, 2, true)) /
                         static_cast<double>(BuildCapacity(budget, dim, 16, 2, false));
    RecordProperty("capacity_ratio_" + std::to_string(dim), std::to_string(ratio));
    EXPECT_GE(ratio, dim == 128 ? 1.9 : dim == 784 ? 3.0 : 3.5) << "dim " << dim;
  }
}

}  // namespace
}  // namespace hnsw
}  // namespace vecext
