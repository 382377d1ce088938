// Declarations shared by hnsw.cpp, hnsw_utils.cpp, hnsw_cost.cpp,
// hnsw_vacuum.cpp and hnsw_inspect.cpp beyond the contract in hnsw.h:
// non-raising validators (the structure check reports problems instead of
// raising them), item accessors that validate before use, and size limits.
#pragma once

#include "pg/hnsw.h"

// The largest item PageAddItem accepts on an hnsw page (one line pointer,
// the page header and our special space).
#define HNSW_MAX_ITEM_SIZE \
  (BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData)) - MAXALIGN(sizeof(HnswPageOpaqueData)))

// The highest level an element may get with `m`: HNSW_MAX_LEVEL, or lower
// when the neighbour tuple of a higher level would not fit on a page
// (m = 100 allows levels 0..11; 0..3 with link codes).
int HnswMaxLevelForM(int m, bool codes = false, int vlists = 0, int vslots = 0);

// NULL when the page's header and special space are valid for block
// `blkno` of an hnsw index (block 0 a metapage, other blocks element
// pages), else a static description of the problem. A new (all-zero) page
// is valid: a crash after relation extension can leave one, and it has no
// items.
const char* HnswPageProblem(Page page, BlockNumber blkno);

// NULL when the metapage contents are valid, else a static description.
// `page` must be block 0 and pass HnswPageProblem.
const char* HnswMetaProblem(Page page);

// The element tuple at `off`, or NULL unless it is a normal item that lies
// inside the page, is MAXALIGNed, has the element type byte, a level
// <= HNSW_MAX_LEVEL and at least `element_size` bytes
// (HNSW_ELEMENT_TUPLE_SIZE_Q of the index's quantization and dimensions).
HnswElementTuple HnswPageGetElementSized(Page page, OffsetNumber off, Size element_size);

// The neighbour tuple at `off`, or NULL unless it is a normal item inside
// the page, MAXALIGNed, with the neighbour type byte, a level
// <= HNSW_MAX_LEVEL, count == HnswNeighborSlots(level, m) and room for count
// slots.
HnswNeighborTuple HnswPageGetNeighbors(Page page, OffsetNumber off, int m);

// Whether `index` is an hnsw index (its AM is ours).
bool HnswIsHnswIndex(Relation index);

// The name of a vecext::Metric value ("l2", "inner_product", "cosine", "l1").
const char* HnswMetricName(int metric);

// The names of the build's sub-phases in pg_stat_progress_create_index
// (src/pg/hnsw_build.cpp); the handler's ambuildphasename.
char* hnswbuildphasename(int64 phasenum);
