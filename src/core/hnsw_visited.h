// The set of elements a search has already scored: open addressing with
// linear probing over one flat array of 64-bit keys, grown through an
// Allocator. Trivially destructible: Release() frees.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/hnsw_types.h"
#include "core/status.h"

namespace vecext::hnsw {

struct VisitedSet {
  std::uint64_t* slots;  // key + 1 per slot, 0 = empty
  std::size_t capacity;  // a power of two (0 before the first Reserve)
  std::size_t count;
  int shift;             // 64 - log2(capacity)

  void Init() {
    slots = nullptr;
    capacity = 0;
    count = 0;
    shift = 64;
  }

  // Makes room for `additional` more inserts without growing (load <= 1/2).
  Status Reserve(const Allocator& alloc, std::size_t additional) {
    if (2 * (count + additional) <= capacity) return Status::Ok();
    return Grow(alloc, count + additional);
  }

  // Adds id; returns true when it was not in the set. REQUIRES: Reserve made room.
  bool Insert(ElementId id) {
    const std::uint64_t key = id + 1;
    std::size_t i = Slot(key);
    for (;;) {
      const std::uint64_t k = slots[i];
      if (k == key) return false;
      if (k == 0) {
        slots[i] = key;
        count++;
        return true;
      }
      i = (i + 1) & (capacity - 1);
    }
  }

  bool Contains(ElementId id) const {
    if (capacity == 0) return false;
    const std::uint64_t key = id + 1;
    std::size_t i = Slot(key);
    for (;;) {
      const std::uint64_t k = slots[i];
      if (k == key) return true;
      if (k == 0) return false;
      i = (i + 1) & (capacity - 1);
    }
  }

  // Empties the set, keeping its memory.
  void Clear();

  void Release(const Allocator& alloc);

 private:
  std::size_t Slot(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
  }
  Status Grow(const Allocator& alloc, std::size_t needed);
};

static_assert(std::is_trivially_destructible_v<VisitedSet>);

}  // namespace vecext::hnsw
