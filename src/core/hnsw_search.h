// HNSW graph search over a Store: greedy descent on the upper levels,
// SEARCH-LAYER with a beam of ef on one level, and a resumable level-0 search
// for iterative scans. The search never touches element data itself; it asks
// a Store, which the Postgres glue implements over shared buffers and the
// unit tests over arrays.
//
// A Store is any type with these members:
//
//   // Scores ids[0..n) (distinct, n <= kMaxLinks) on `level` against the
//   // query: for each i sets flags[i] to kScoreValid | kScoreReturnable bits
//   // and, when valid, out[i] = {distance, ids[i], payload}. An id that does
//   // not name an element usable on `level` gets flags[i] = 0. `bound` is a
//   // hint: elements farther than bound will not be expanded.
//   void Score(const ElementId* ids, int n, int level, float bound, Candidate* out, std::uint8_t* flags);
//
//   // Writes the ids of c's links on `level` to out (at most cap) and
//   // returns how many. c came from Score on a level >= `level`.
//   int Neighbors(const Candidate& c, int level, ElementId* out, int cap);
//
// Store calls may not return (the glue's ERROR longjmps): every object here
// is trivially destructible and owns nothing but Allocator memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "core/hnsw_heap.h"
#include "core/hnsw_types.h"
#include "core/hnsw_visited.h"
#include "core/status.h"

namespace vecext::hnsw {

constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

// Per-expansion scratch arrays (about 9 KB): allocate once per search.
struct SearchScratch {
  ElementId links[kMaxLinks];
  ElementId fresh[kMaxLinks];
  Candidate scored[kMaxLinks];
  std::uint8_t flags[kMaxLinks];
};

// The state of a search on one level.
//   candidates  elements queued for expansion, closest first (C)
//   results     the best `ef` returnable elements of the current batch (W)
// With `resumable` (level-0 iterative scans) nothing scored is forgotten:
//   discarded   returnable elements that never made it into W, not queued
//   evicted     returnable elements pushed out of W (queued or expanded)
// and non-returnable elements beyond the bound stay queued in candidates, so
// NextBatch can continue the search where the previous batch stopped.
struct LayerSearch {
  Allocator alloc;
  std::size_t ef;
  bool resumable;
  MinHeap candidates;
  MaxHeap results;
  MinHeap discarded;
  MinHeap evicted;
  VisitedSet visited;
  std::uint64_t scored;  // elements scored so far (the visited count)

  // REQUIRES: ef >= 1.
  Status Init(const Allocator& a, std::size_t beam, bool resume) {
    alloc = a;
    ef = beam;
    resumable = resume;
    candidates.Init();
    results.Init();
    discarded.Init();
    evicted.Init();
    visited.Init();
    scored = 0;
    Status st = results.Reserve(alloc, ef + 1);
    if (!st.ok()) return st;
    st = candidates.Reserve(alloc, 4 * ef);
    if (!st.ok()) return st;
    return visited.Reserve(alloc, 16 * ef);
  }

  // Forgets all elements (a new level or a new query); keeps the memory.
  void Reset() {
    candidates.Clear();
    results.Clear();
    discarded.Clear();
    evicted.Clear();
    visited.Clear();
    scored = 0;
  }

  void Release() {
    candidates.Release(alloc);
    results.Release(alloc);
    discarded.Release(alloc);
    evicted.Release(alloc);
    visited.Release(alloc);
  }
};

static_assert(std::is_trivially_destructible_v<LayerSearch>);
static_assert(std::is_trivially_destructible_v<SearchScratch>);

// Scores one element. Returns its flags (0 when it is not valid on `level`).
template <class Store>
std::uint8_t ScoreOne(Store& store, ElementId id, int level, Candidate* out) {
  std::uint8_t flags = 0;
  store.Score(&id, 1, level, std::numeric_limits<float>::infinity(), out, &flags);
  return flags;
}

// Greedy descent on one upper level: moves to the closest neighbour while it
// is closer than the current element. Returns the element it stops at;
// *flags is updated to that element's flags.
template <class Store>
Candidate GreedySearch(Store& store, Candidate current, std::uint8_t* flags, int level, SearchScratch& x) {
  for (;;) {
    const int n = store.Neighbors(current, level, x.links, kMaxLinks);
    if (n <= 0) return current;
    store.Score(x.links, n, level, current.distance, x.scored, x.flags);
    int best = -1;
    for (int i = 0; i < n; i++) {
      if ((x.flags[i] & kScoreValid) && Closer(x.scored[i], best < 0 ? current : x.scored[best])) best = i;
    }
    if (best < 0) return current;
    current = x.scored[best];
    *flags = x.flags[best];
  }
}

// Adds an already-scored element as a starting point: marks it visited,
// queues it, and makes it a result when returnable. Skips it when already
// visited.
inline Status AddSeed(LayerSearch& s, const Candidate& c, bool returnable) {
  Status st = s.visited.Reserve(s.alloc, 1);
  if (!st.ok()) return st;
  if (!s.visited.Insert(c.id)) return Status::Ok();
  s.scored++;
  st = s.candidates.Push(s.alloc, c);
  if (!st.ok()) return st;
  if (returnable) {
    if (s.results.size < s.ef) {
      s.results.PushReserved(c);
    } else if (Closer(c, s.results.Top())) {
      const Candidate out = s.results.Top();
      s.results.ReplaceTop(c);
      if (s.resumable) return s.evicted.Push(s.alloc, out);
    } else if (s.resumable) {
      return s.discarded.Push(s.alloc, c);
    }
  }
  return Status::Ok();
}

// SEARCH-LAYER (Malkov & Yashunin, Algorithm 2) on `level` from the seeds
// already in s: expands the closest queued element until the closest queued
// one is farther than the farthest of ef results. Stops early once
// s.scored >= max_scored. Results stay in s.results (see TakeResults).
template <class Store>
Status SearchLayer(Store& store, LayerSearch& s, int level, std::uint64_t max_scored, SearchScratch& x) {
  const Allocator& a = s.alloc;
  const std::size_t ef = s.ef;
  while (s.candidates.size > 0) {
    const Candidate c = s.candidates.Top();
    if (s.results.size >= ef && Closer(s.results.Top(), c)) break;
    s.candidates.Pop();

    const int n = store.Neighbors(c, level, x.links, kMaxLinks);
    if (n <= 0) continue;
    Status st = s.visited.Reserve(a, static_cast<std::size_t>(n));
    if (!st.ok()) return st;
    int fresh = 0;
    for (int i = 0; i < n; i++) {
      if (s.visited.Insert(x.links[i])) x.fresh[fresh++] = x.links[i];
    }
    if (fresh == 0) continue;

    const float bound =
        s.results.size >= ef ? s.results.Top().distance : std::numeric_limits<float>::infinity();
    store.Score(x.fresh, fresh, level, bound, x.scored, x.flags);
    s.scored += static_cast<std::uint64_t>(fresh);

    st = s.candidates.Reserve(a, s.candidates.size + static_cast<std::size_t>(fresh));
    if (!st.ok()) return st;
    if (s.resumable) {
      st = s.discarded.Reserve(a, s.discarded.size + static_cast<std::size_t>(fresh));
      if (!st.ok()) return st;
      st = s.evicted.Reserve(a, s.evicted.size + static_cast<std::size_t>(fresh));
      if (!st.ok()) return st;
    }
    for (int j = 0; j < fresh; j++) {
      const std::uint8_t f = x.flags[j];
      if (!(f & kScoreValid)) continue;
      const Candidate& e = x.scored[j];
      if (s.results.size < ef || Closer(e, s.results.Top())) {
        s.candidates.PushReserved(e);
        if (f & kScoreReturnable) {
          if (s.results.size < ef) {
            s.results.PushReserved(e);
          } else {
            const Candidate out = s.results.Top();
            s.results.ReplaceTop(e);
            if (s.resumable) s.evicted.PushReserved(out);
          }
        }
      } else if (s.resumable) {
        // Not worth expanding now; keep it for a later batch.
        if (f & kScoreReturnable) {
          s.discarded.PushReserved(e);
        } else {
          s.candidates.PushReserved(e);
        }
      }
    }
    if (s.scored >= max_scored) break;
  }
  return Status::Ok();
}

// Moves the results to out[0..n) in ascending order (Closer) and returns n.
// REQUIRES: out has room for s.results.size candidates.
inline std::size_t TakeResults(LayerSearch& s, Candidate* out) {
  const std::size_t n = s.results.size;
  for (std::size_t i = n; i > 0; i--) out[i - 1] = s.results.Pop();
  return n;
}

// Resumable searches: prepares the next batch after TakeResults. Refills the
// results with up to ef of the closest discarded and evicted elements (queuing
// the discarded ones for expansion). Sets *more to false when nothing is left
// to search: every reachable element has been scored and returned.
inline Status NextBatch(LayerSearch& s, bool* more) {
  s.results.Clear();
  while (s.results.size < s.ef && (s.discarded.size > 0 || s.evicted.size > 0)) {
    const bool from_discarded =
        s.evicted.size == 0 || (s.discarded.size > 0 && Closer(s.discarded.Top(), s.evicted.Top()));
    if (from_discarded) {
      const Candidate c = s.discarded.Pop();
      Status st = s.candidates.Push(s.alloc, c);
      if (!st.ok()) return st;
      s.results.PushReserved(c);
    } else {
      s.results.PushReserved(s.evicted.Pop());
    }
  }
  *more = s.results.size > 0 || s.candidates.size > 0;
  return Status::Ok();
}

// Resumable searches, between two SearchLayer calls of one batch: widens the
// beam to `beam` (> s.ef) as if the batch had been searched with it so far.
// The closest discarded and evicted elements refill the results (the
// discarded ones are queued for expansion, as a wider beam would have
// queued them); SearchLayer then continues with the wider beam.
inline Status WidenSearch(LayerSearch& s, std::size_t beam) {
  if (beam <= s.ef) return Status::Ok();
  Status st = s.results.Reserve(s.alloc, beam + 1);
  if (!st.ok()) return st;
  s.ef = beam;
  while (s.results.size < s.ef && (s.discarded.size > 0 || s.evicted.size > 0)) {
    const bool from_discarded =
        s.evicted.size == 0 || (s.discarded.size > 0 && Closer(s.discarded.Top(), s.evicted.Top()));
    if (from_discarded) {
      const Candidate c = s.discarded.Pop();
      st = s.candidates.Push(s.alloc, c);
      if (!st.ok()) return st;
      s.results.PushReserved(c);
    } else {
      s.results.PushReserved(s.evicted.Pop());
    }
  }
  return Status::Ok();
}

// The first level-0 batch of a query: scores the entry point, descends
// greedily from entry_level to level 1, then runs SEARCH-LAYER on level 0.
// Sets *found to false (and searches nothing) when the entry point is not a
// valid element. Results stay in s.results.
template <class Store>
Status SearchFromEntry(Store& store, ElementId entry, int entry_level, LayerSearch& s, std::uint64_t max_scored,
                       SearchScratch& x, bool* found) {
  Candidate ep;
  std::uint8_t flags = ScoreOne(store, entry, entry_level, &ep);
  *found = (flags & kScoreValid) != 0;
  if (!*found) return Status::Ok();
  for (int level = entry_level; level > 0; level--) ep = GreedySearch(store, ep, &flags, level, x);
  Status st = AddSeed(s, ep, (flags & kScoreReturnable) != 0);
  if (!st.ok()) return st;
  return SearchLayer(store, s, 0, max_scored, x);
}

}  // namespace vecext::hnsw
