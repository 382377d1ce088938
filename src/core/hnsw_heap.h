// Binary heaps of Candidates in one flat array from an Allocator: a min-heap
// (closest on top) for candidates to expand and a max-heap (farthest on top)
// for the current best results. Trivially destructible: Release() frees.
#pragma once

#include <cstddef>
#include <cstring>

#include "core/hnsw_types.h"
#include "core/status.h"

namespace vecext::hnsw {

template <bool kFarthestOnTop>
struct CandidateHeap {
  Candidate* data;
  std::size_t size;
  std::size_t capacity;

  void Init() {
    data = nullptr;
    size = 0;
    capacity = 0;
  }

  // Whether a belongs above b.
  static bool Above(const Candidate& a, const Candidate& b) {
    return kFarthestOnTop ? Closer(b, a) : Closer(a, b);
  }

  // Makes room for at least n elements in all.
  Status Reserve(const Allocator& alloc, std::size_t n) {
    if (n <= capacity) return Status::Ok();
    std::size_t cap = capacity < 16 ? 16 : capacity;
    while (cap < n) cap *= 2;
    auto* grown = static_cast<Candidate*>(alloc.allocate(alloc.ctx, cap * sizeof(Candidate)));
    if (grown == nullptr) return Status::Error(StatusCode::kOutOfMemory, "out of memory in an HNSW search heap");
    if (size > 0) std::memcpy(grown, data, size * sizeof(Candidate));
    if (data != nullptr) alloc.release(alloc.ctx, data);
    data = grown;
    capacity = cap;
    return Status::Ok();
  }

  Status Push(const Allocator& alloc, const Candidate& c) {
    if (size == capacity) {
      Status st = Reserve(alloc, size + 1);
      if (!st.ok()) return st;
    }
    PushReserved(c);
    return Status::Ok();
  }

  // REQUIRES: size < capacity.
  void PushReserved(const Candidate& c) {
    std::size_t i = size++;
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!Above(c, data[parent])) break;
      data[i] = data[parent];
      i = parent;
    }
    data[i] = c;
  }

  // REQUIRES: size > 0.
  const Candidate& Top() const { return data[0]; }

  // REQUIRES: size > 0.
  Candidate Pop() {
    Candidate top = data[0];
    Candidate last = data[--size];
    std::size_t i = 0;
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && Above(data[child + 1], data[child])) child++;
      if (!Above(data[child], last)) break;
      data[i] = data[child];
      i = child;
    }
    if (size > 0) data[i] = last;
    return top;
  }

  // Replaces the top with c (one sift instead of Pop + Push). REQUIRES: size > 0.
  void ReplaceTop(const Candidate& c) {
    std::size_t i = 0;
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && Above(data[child + 1], data[child])) child++;
      if (!Above(data[child], c)) break;
      data[i] = data[child];
      i = child;
    }
    data[i] = c;
  }

  void Clear() { size = 0; }

  void Release(const Allocator& alloc) {
    if (data != nullptr) alloc.release(alloc.ctx, data);
    Init();
  }
};

using MinHeap = CandidateHeap<false>;  // closest on top
using MaxHeap = CandidateHeap<true>;   // farthest on top

static_assert(std::is_trivially_destructible_v<MinHeap>);
static_assert(std::is_trivially_destructible_v<MaxHeap>);

}  // namespace vecext::hnsw
