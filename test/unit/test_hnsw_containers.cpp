// Unit tests of the HNSW search containers: candidate heaps (hnsw_heap.h)
// and the visited set (hnsw_visited.h), against std:: reference structures.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "core/hnsw_heap.h"
#include "core/hnsw_visited.h"

namespace vecext::hnsw {
namespace {

// Counts allocations so tests can check that memory is returned.
struct CountingAllocator {
  int live = 0;
  static void* Allocate(void* ctx, std::size_t bytes) {
    static_cast<CountingAllocator*>(ctx)->live++;
    return std::malloc(bytes);
  }
  static void Release(void* ctx, void* p) {
    static_cast<CountingAllocator*>(ctx)->live--;
    std::free(p);
  }
  Allocator Get() { return Allocator{Allocate, Release, this}; }
};

std::vector<Candidate> RandomCandidates(std::mt19937_64& rng, int n, int distinct_distances) {
  std::uniform_int_distribution<int> d(0, distinct_distances - 1);
  std::vector<Candidate> v;
  for (int i = 0; i < n; i++) v.push_back(Candidate{static_cast<float>(d(rng)) * 0.5f, rng() % 100000, 7});
  return v;
}

TEST(HnswHeap, MinHeapPopsInAscendingOrder) {
  std::mt19937_64 rng(1);
  CountingAllocator counter;
  Allocator alloc = counter.Get();
  for (int round = 0; round < 20; round++) {
    // Few distinct distances: ties must be broken by id.
    auto cands = RandomCandidates(rng, 1 + round * 37, 10);
    MinHeap heap;
    heap.Init();
    for (const auto& c : cands) ASSERT_TRUE(heap.Push(alloc, c).ok());
    ASSERT_EQ(heap.size, cands.size());
    std::sort(cands.begin(), cands.end(), Closer);
    for (const auto& c : cands) {
      ASSERT_GT(heap.size, 0u);
      Candidate top = heap.Pop();
      EXPECT_EQ(top.distance, c.distance);
      EXPECT_EQ(top.id, c.id);
    }
    EXPECT_EQ(heap.size, 0u);
    heap.Release(alloc);
  }
  EXPECT_EQ(counter.live, 0);
}

TEST(HnswHeap, MaxHeapKeepsTheBestK) {
  std::mt19937_64 rng(2);
  Allocator alloc = MallocAllocator();
  const std::size_t k = 25;
  auto cands = RandomCandidates(rng, 1000, 200);
  MaxHeap heap;
  heap.Init();
  ASSERT_TRUE(heap.Reserve(alloc, k + 1).ok());
  for (const auto& c : cands) {
    if (heap.size < k) {
      heap.PushReserved(c);
    } else if (Closer(c, heap.Top())) {
      heap.ReplaceTop(c);
    }
  }
  std::sort(cands.begin(), cands.end(), Closer);
  std::vector<Candidate> got;
  while (heap.size > 0) got.push_back(heap.Pop());
  std::reverse(got.begin(), got.end());
  ASSERT_EQ(got.size(), k);
  for (std::size_t i = 0; i < k; i++) {
    EXPECT_EQ(got[i].id, cands[i].id);
    EXPECT_EQ(got[i].distance, cands[i].distance);
  }
  heap.Release(alloc);
}

TEST(HnswHeap, InterleavedPushPop) {
  std::mt19937_64 rng(3);
  Allocator alloc = MallocAllocator();
  MinHeap heap;
  heap.Init();
  std::multiset<std::pair<float, ElementId>> ref;
  for (int step = 0; step < 20000; step++) {
    if (ref.empty() || rng() % 3 != 0) {
      Candidate c{static_cast<float>(rng() % 1000), rng() % 5000, 0};
      ASSERT_TRUE(heap.Push(alloc, c).ok());
      ref.insert({c.distance, c.id});
    } else {
      Candidate c = heap.Pop();
      auto it = ref.begin();
      ASSERT_EQ(c.distance, it->first);
      ASSERT_EQ(c.id, it->second);
      ref.erase(it);
    }
    ASSERT_EQ(heap.size, ref.size());
  }
  heap.Release(alloc);
}

TEST(HnswHeap, ReportsAllocationFailure) {
  Allocator failing{[](void*, std::size_t) -> void* { return nullptr; }, [](void*, void*) {}, nullptr};
  MinHeap heap;
  heap.Init();
  Status st = heap.Push(failing, Candidate{1.0f, 1, 0});
  EXPECT_EQ(st.code, StatusCode::kOutOfMemory);
  EXPECT_EQ(heap.size, 0u);
}

TEST(HnswVisited, MatchesStdSetAndGrows) {
  std::mt19937_64 rng(4);
  CountingAllocator counter;
  Allocator alloc = counter.Get();
  VisitedSet set;
  set.Init();
  EXPECT_FALSE(set.Contains(0));
  std::set<ElementId> ref;
  for (int i = 0; i < 50000; i++) {
    // Mix small ids (array indices), packed TIDs and extreme values.
    ElementId id;
    switch (rng() % 4) {
      case 0: id = rng() % 3000; break;
      case 1: id = ((rng() % 100000) << 16) | (1 + rng() % 300); break;
      case 2: id = rng(); break;
      default: id = kInvalidElement - 1 - rng() % 4; break;
    }
    ASSERT_TRUE(set.Reserve(alloc, 1).ok());
    const bool inserted = set.Insert(id);
    ASSERT_EQ(inserted, ref.insert(id).second) << id;
  }
  EXPECT_EQ(set.count, ref.size());
  EXPECT_LE(2 * set.count, set.capacity);
  for (ElementId id : ref) ASSERT_TRUE(set.Contains(id));
  for (int i = 0; i < 10000; i++) {
    ElementId id = rng();
    ASSERT_EQ(set.Contains(id), ref.count(id) > 0);
  }
  const std::size_t capacity = set.capacity;
  set.Clear();
  EXPECT_EQ(set.count, 0u);
  EXPECT_EQ(set.capacity, capacity);
  for (ElementId id : ref) ASSERT_FALSE(set.Contains(id));
  ASSERT_TRUE(set.Reserve(alloc, 1).ok());
  EXPECT_TRUE(set.Insert(0));
  EXPECT_FALSE(set.Insert(0));
  set.Release(alloc);
  EXPECT_EQ(counter.live, 0);
}

TEST(HnswVisited, ReserveMakesRoomForABatch) {
  Allocator alloc = MallocAllocator();
  VisitedSet set;
  set.Init();
  ASSERT_TRUE(set.Reserve(alloc, 1000).ok());
  const std::size_t capacity = set.capacity;
  for (ElementId id = 0; id < 1000; id++) ASSERT_TRUE(set.Insert(id * 65536 + 1));
  EXPECT_EQ(set.capacity, capacity);  // no growth inside a reserved batch
  set.Release(alloc);
}

}  // namespace
}  // namespace vecext::hnsw
