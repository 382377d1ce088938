// The vocabulary of the HNSW search code: element ids, scored candidates and
// the allocator through which search state grows. Everything here is
// trivially destructible, so it may live in frames that the Postgres glue can
// longjmp over.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace vecext::hnsw {

// Names one graph element. The Postgres glue packs the element tuple's TID
// ((block << 16) | offset); tests use array indices. Any value but
// kInvalidElement is allowed.
using ElementId = std::uint64_t;
constexpr ElementId kInvalidElement = ~ElementId{0};

// An element scored against the query. `aux` is an opaque payload written by
// the Store that scored it and handed back to it (e.g. where the element's
// links live); the search never interprets it.
struct Candidate {
  float distance;
  ElementId id;
  std::uint64_t aux;
};

// Strict total order of candidates: by distance, ties broken by id, so that
// searches are deterministic when distances repeat.
inline bool Closer(const Candidate& a, const Candidate& b) {
  return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
}

// Flags a Store reports for each scored id.
constexpr std::uint8_t kScoreValid = 0x01;       // names an element usable on the searched level
constexpr std::uint8_t kScoreReturnable = 0x02;  // not deleted: may be returned or chosen as a neighbour

// Most links a Store may report for one element on one level (2 * the largest m).
constexpr int kMaxLinks = 256;

// Memory for growing search state. `allocate` returns nullptr on failure or
// does not return at all (palloc); `release` accepts what allocate returned.
struct Allocator {
  void* (*allocate)(void* ctx, std::size_t bytes);
  void (*release)(void* ctx, void* p);
  void* ctx;
};

// malloc/free (tests, tools).
Allocator MallocAllocator();

static_assert(std::is_trivially_destructible_v<Candidate>);
static_assert(std::is_trivially_destructible_v<Allocator>);

}  // namespace vecext::hnsw
