// The malloc allocator (hnsw_types.h).
#include "core/hnsw_types.h"

#include <cstdlib>

namespace vecext::hnsw {
namespace {

void* MallocAllocate(void*, std::size_t bytes) { return std::malloc(bytes); }
void MallocRelease(void*, void* p) { std::free(p); }

}  // namespace

Allocator MallocAllocator() { return Allocator{MallocAllocate, MallocRelease, nullptr}; }

}  // namespace vecext::hnsw
