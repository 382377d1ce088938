// HnswStore: the core search's Store (src/core/hnsw_search.h) over the
// index's shared buffers, used by scans and inserts.
//
// Score reads element tuples and computes distances with the SIMD kernel
// directly on page memory (no fmgr call, no copy), visiting the ids grouped
// by block so one pin and one shared lock serve every element of a page.
// Neighbors reads a neighbour tuple. Both follow hnsw.h's reader rules: one
// shared content lock at a time, everything validated before use, invalid
// links skipped, structural corruption reported as an ERROR.
//
// Pipelining: Score pins up to three pages ahead of the one it scores and
// prefetches their headers, buffer descriptors and element tuples, so the
// cache misses of one page overlap the distance computation of another.
// Buffer hints: the index's relcache entry (rd_amcache, which therefore
// belongs to this file) keeps block -> last buffer, so most pins go through
// ReadRecentBuffer instead of the shared buffer-mapping table.
//
// Link cache: when Score finds an element closer than the search's bound (it
// is about to be queued for expansion) whose neighbour tuple is on the same
// page, it copies that level's links into a per-query arena while the page is
// locked anyway, so expanding it later costs no buffer access.
//
// Candidate.aux (opaque to the core) says where an element's links are:
//   bit 63 set:  cached; bits 0..31 index the arena entry
//   bit 62 set:  neighbour tuple on another page; bits 0..47 its packed TID
//                (the heap TID is then re-read from the element when needed)
//   otherwise:   neighbour tuple on the element's page at offset bits 48..59;
//                bits 0..47 the packed heap TID
#pragma once

#include "pg/pg_includes.h"

#include <cstdint>
#include <limits>

#include "core/distance.h"
#include "core/hnsw_types.h"
#include "core/sq8.h"
#include "pg/hnsw.h"

// One element as LoadElements returns it.
struct HnswElementInfo {
  bool valid;               // the id named an element tuple (all else is unset when false)
  bool deleted;             // HNSW_ELEMENT_DELETED
  int level;
  ItemPointerData heaptid;
  ItemPointerData neighbortid;
  uint64 code;              // its link code (indexes with link codes; else unset)
};

// A chunked arena of cached link lists (see above).
#define HNSW_LINK_CHUNK 256  // entries per chunk

struct HnswStore {
  Relation index;
  int dim;
  int m;
  int metric;                     // vecext::Metric
  int quantization;               // HNSW_QUANT_* (from the metapage)
  Size data_size;                 // bytes of an element's data (HnswElementDataSize)
  Size element_size;              // bytes of an element tuple
  vecext::Sq8Params sq8;          // SQ8: the index's parameters (dim 0 until they exist)
  bool has_filter;                // element tuples end with a metadata signature
  bool link_codes;                // neighbour tuples carry link codes (HNSW_META_LINK_CODES): set by the caller
  // Filtered scans of an index with link codes (set by the caller, with
  // filter): level-0 expansions skip links whose code the filter excludes
  // and look through them to their own links (HnswStore::Neighbors).
  bool two_hop;
  uint64* through_keys;           // excluded elements already looked through (open addressing, id + 1)
  uint32 through_cap;             // a power of two, or 0
  uint32 through_count;
  const uint64* code_terms;       // two_hop: the filter's link-code test as masks (HnswFilterCodeTerms)
  int ncode_terms;                // ... their number, or -1: evaluate the program
  const struct HnswFilterProgram* filter;  // scans: elements it excludes are not returnable (NULL: none)
  // Value lists (HNSW_META_VALUE_LISTS; set by the caller): their shape, and
  // with two_hop the value keys every matching row has (the filter's). An
  // expansion of an element with a value list for one of those keys follows
  // that list instead of looking through excluded elements.
  int value_lists;
  int value_slots;
  int nvalue_keys;
  uint64 value_keys[4];
  vecext::Sq8Query sq8_query;     // SQ8: the prepared query (HnswStoreSetQuery)
  bool sq8_zero_query;            // SQ8 under cosine: the query has norm 0 (every distance 1, SQL NaN)
  // SQ8 scans: the side data of every returnable element scored on level 0,
  // by id (open addressing; key id + 1, 0 = empty), so that the scan's bounds
  // need no second visit to the element's page. Off (cap 0) unless enabled.
  uint64* sq8_keys;
  vecext::Sq8ElementInfo* sq8_infos;
  uint32 sq8_cap;                 // a power of two, or 0: not kept
  uint32 sq8_count;
  const float* query;             // dim floats, prepared (normalized for cosine)
  vecext::DistanceFn kernel;      // index distance = dist_offset + dist_scale * kernel(query, v)
  float dist_offset;
  float dist_scale;
  BlockNumber nblocks;            // relation size as last seen (refreshed on demand)
  MemoryContext cxt;              // where the link cache grows

  // Link cache: entries of (2 + 2m) uint64: [heaptid | count << 48 | level << 56], [neighbortid], links...
  uint64** chunks;
  uint32 nchunks;
  uint32 chunks_allocated;
  uint32 nentries;
  uint32 max_entries;             // 0 disables the cache
  int entry_words;

  // Statistics (reported at DEBUG2 by scans).
  uint64 buffer_reads;            // ReadBuffer calls
  uint64 scored;                  // elements scored
  uint64 expansions;              // Neighbors calls
  uint64 cached_expansions;       // ... answered from the link cache
  uint64 skipped_links;           // two_hop: links skipped by their code
  uint64 passed_links;            // two_hop: links whose code the filter accepts
  uint64 two_hop_expansions;      // two_hop: level-0 expansions
  uint64 through_reads;           // two_hop: excluded elements looked through
  uint64 value_expansions;        // two_hop: expansions that followed a value list
  uint64 value_links;             // ... links they took from it

  void Score(const vecext::hnsw::ElementId* ids, int n, int level, float bound, vecext::hnsw::Candidate* out,
             uint8_t* flags);
  int Neighbors(const vecext::hnsw::Candidate& c, int level, vecext::hnsw::ElementId* out, int cap);
};

// Prepares a store for `index` (dimensions and m from its metapage) with
// `metric` (vecext::Metric) and `quantization` (HNSW_QUANT_*, from the
// metapage; SQ8 loads the parameters, see HnswGetSq8Params). The query is
// set separately (HnswStoreSetQuery). Memory for the link cache comes from
// `cxt`; max_cache_bytes 0 disables it.
void HnswStoreInit(HnswStore* store, Relation index, int dim, int m, int metric, int quantization,
                   MemoryContext cxt, Size max_cache_bytes);

// Sets the query (kept by pointer; dim floats, normalized under cosine) and
// forgets cached links (their memory must have been reset with cxt, or is
// reused). Under SQ8 it also prepares the query for the code kernels (in
// cxt).
void HnswStoreSetQuery(HnswStore* store, const float* query);

// The index distance between the store's query and element `etup` (its
// codes under SQ8; a zero cosine query under SQ8 is 1 from everything; NaN
// counts as infinity). Inline: Score calls it for every element.
static inline float HnswStoreElementDistance(const HnswStore* store, const HnswElementTupleData* etup) {
  float d;
  if (store->quantization != HNSW_QUANT_SQ8) {
    d = store->dist_offset + store->dist_scale * store->kernel(store->query, etup->vec, (std::size_t)store->dim);
  } else if (store->sq8_zero_query) {
    d = 1.0f;
  } else {
    d = vecext::Sq8Distance(store->sq8_query, (const uint8_t*)etup->vec + sizeof(vecext::Sq8ElementInfo));
  }
  return d != d ? std::numeric_limits<float>::infinity() : d;
}

// SQ8: a lower bound of the SQL distance of an element whose index distance
// is `distance` (0 for a zero cosine query, whose SQL distances are NaN).
static inline double HnswStoreLowerBound(const HnswStore* store, float distance, const vecext::Sq8ElementInfo& info) {
  return store->sq8_zero_query ? 0.0 : vecext::Sq8Bounds(store->sq8_query, distance, info).lower;
}

// The link code of element `etup`, an item of `item_len` bytes of an index
// with a metadata column (kAllLinks when its signature cannot be read).
uint64 HnswStoreElementCode(const HnswStore* store, const HnswElementTupleData* etup, Size item_len);

// Whether `filter` (may be NULL) excludes element `etup`, an item of
// `item_len` bytes (a signature that cannot be read never excludes).
bool HnswStoreFilterExcludes(const HnswStore* store, const struct HnswFilterProgram* filter,
                             const HnswElementTupleData* etup, Size item_len);

// SQ8 scans: keep the side data of the elements Score finds on level 0
// (HnswStoreSq8Info), in cxt.
void HnswStoreKeepSq8Info(HnswStore* store);

// The side data Score kept for element `id`; false when it has none.
bool HnswStoreSq8Info(const HnswStore* store, vecext::hnsw::ElementId id, vecext::Sq8ElementInfo* out);

// The index distance between two elements' data (as LoadElements copies
// them, or HnswStoreEncode makes them).
float HnswStoreDataDistance(const HnswStore* store, const void* a, const void* b);

// Writes the element data of vector `vec` (dim floats, normalized under
// cosine) to out (store->data_size bytes): a copy, or SQ8 codes and side
// data (values outside the trained range clamp).
void HnswStoreEncode(const HnswStore* store, const float* vec, void* out);

// The vector (dim floats) an element's data stands for: a copy, or the SQ8
// codes decoded.
void HnswStoreDecode(const HnswStore* store, const void* data, float* out);

// The SQ8 parameters of `index`, cached with the relation (rd_amcache):
// false when it has none yet (an SQ8 index built empty, before its first
// insert). ERROR (corruption) when they cannot be read.
bool HnswGetSq8Params(Relation index, vecext::Sq8Params* out);

// Forgets the cached SQ8 parameters of `index` (after writing new ones).
void HnswForgetSq8Params(Relation index);

// The heap TID of a scored candidate: from aux, or read from the element.
// Returns false when the element is gone or no longer matches.
bool HnswStoreHeapTid(HnswStore* store, const vecext::hnsw::Candidate& c, ItemPointer heaptid);

// The TID of a scored candidate's neighbour tuple.
void HnswStoreNeighborTid(const HnswStore* store, const vecext::hnsw::Candidate& c, ItemPointer tid);

// Copies the data (store->data_size bytes each, to data + i * data_size)
// and facts of elements ids[0..n), visiting pages in block order. Invalid ids
// get info[i].valid = false and unspecified data.
void HnswStoreLoadElements(HnswStore* store, const vecext::hnsw::ElementId* ids, int n, void* data,
                           HnswElementInfo* info);

// The element tuple at `off` of a locked element page, validated (type, size
// of `element_size`, bounds), or NULL.
HnswElementTuple HnswStoreGetElement(Page page, OffsetNumber off, Size element_size);

// The neighbour tuple at `off` of a locked element page, validated (type,
// count for `m`, bounds; tombstones fail), or NULL.
HnswNeighborTuple HnswStoreGetNeighbors(Page page, OffsetNumber off, int m);

// Whether a link slot holds a TID that may name an element (not invalid, not
// on the metapage).
static inline bool HnswLinkIsValid(const ItemPointerData* tid) {
  return ItemPointerGetOffsetNumberNoCheck(tid) != InvalidOffsetNumber &&
         ItemPointerGetBlockNumberNoCheck(tid) != InvalidBlockNumber &&
         ItemPointerGetBlockNumberNoCheck(tid) != HNSW_METAPAGE_BLKNO;
}

// Sets slot `slot` of neighbour tuple ntup (an item of `len` bytes) to
// element `id` and, when the index has link codes (`codes`) and the tuple
// room for them, to its link code `code`.
static inline void HnswSetLink(HnswNeighborTuple ntup, Size len, bool codes, int slot, uint64 id, uint64 code) {
  HnswUnpackTid(id, &ntup->ids[slot]);
  if (codes && len >= HnswNeighborTupleSize(ntup->count, true)) HnswNeighborCodes(ntup)[slot] = code;
}

// Reads and checks an element page's special space after locking it: an
// ERROR (corruption) unless it is an element page; returns false for a new
// (all-zero) page, which holds nothing.
bool HnswStoreCheckElementPage(Relation index, Page page, BlockNumber blkno);

// ---- src/pg/hnsw_scan.cpp ----------------------------------------------------
// Installs the ExecutorStart hook that hands `WHERE dist < d` bounds to hnsw
// scans (idempotent). Call once from _PG_init.
void HnswScanInit(void);
