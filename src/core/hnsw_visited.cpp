// VisitedSet growth (hnsw_visited.h).
#include "core/hnsw_visited.h"

#include <cstring>

namespace vecext::hnsw {

void VisitedSet::Clear() {
  if (slots != nullptr) std::memset(slots, 0, capacity * sizeof(std::uint64_t));
  count = 0;
}

void VisitedSet::Release(const Allocator& alloc) {
  if (slots != nullptr) alloc.release(alloc.ctx, slots);
  Init();
}

Status VisitedSet::Grow(const Allocator& alloc, std::size_t needed) {
  std::size_t cap = capacity < 64 ? 64 : capacity;
  int bits = 0;
  while ((std::size_t{1} << bits) < cap) bits++;
  while (cap < 2 * needed) {
    cap *= 2;
    bits++;
  }
  auto* grown = static_cast<std::uint64_t*>(alloc.allocate(alloc.ctx, cap * sizeof(std::uint64_t)));
  if (grown == nullptr) return Status::Error(StatusCode::kOutOfMemory, "out of memory in an HNSW visited set");
  std::memset(grown, 0, cap * sizeof(std::uint64_t));
  std::uint64_t* old = slots;
  const std::size_t old_capacity = capacity;
  slots = grown;
  capacity = cap;
  shift = 64 - bits;
  count = 0;
  for (std::size_t i = 0; i < old_capacity; i++) {
    if (old[i] != 0) Insert(old[i] - 1);
  }
  if (old != nullptr) alloc.release(alloc.ctx, old);
  return Status::Ok();
}

}  // namespace vecext::hnsw
