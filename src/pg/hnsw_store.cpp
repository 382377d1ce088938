// HnswStore: element and link access over shared buffers for the core search
// (see hnsw_store.h). This is the hot path of every scan: keep it free of
// allocation and function calls per element beyond the distance kernel.
#include "pg/pg_includes.h"

#include <cmath>
#include <cstring>
#include <limits>

extern "C" {
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
}

#include "core/meta_filter.h"
#include "core/distance.h"
#include "core/index_distance.h"
#include "core/sq8.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_internal.h"
#include "pg/hnsw_store.h"

using vecext::hnsw::Candidate;
using vecext::hnsw::ElementId;

#define AUX_CACHED (UINT64CONST(1) << 63)
#define AUX_REMOTE (UINT64CONST(1) << 62)
#define AUX_TID_MASK ((UINT64CONST(1) << 48) - 1)
#define AUX_OFFSET_SHIFT 48
#define AUX_OFFSET_MASK UINT64CONST(0xFFF)

static inline BlockNumber IdBlock(ElementId id) { return (BlockNumber)(id >> 16); }
static inline OffsetNumber IdOffset(ElementId id) { return (OffsetNumber)(id & 0xFFFF); }

// The buffer hint table: for each index block (direct-mapped), the buffer
// that last held it in this backend, so ReadRecentBuffer can pin it without
// the shared buffer-mapping lookup (a hash probe under a partition lock,
// about a quarter of a scan's time). It lives in the relcache entry
// (rd_amcache, freed with it); a stale hint only costs the normal ReadBuffer.
// A relcache flush frees rd_amcache, so the table is looked up again at every
// use instead of being remembered across calls.
struct HnswBufferHint {
  BlockNumber blkno;  // 0 (the metapage, never hinted) = empty
  Buffer buffer;
};
struct HnswBufferHints {
  // SQ8 parameters (sq8_dim 0 until loaded; only ever loaded once they exist).
  uint32 sq8_dim;
  float* sq8_lo;
  float* sq8_scale;
  uint32 mask;  // entries - 1 (a power of two)
  HnswBufferHint entries[FLEXIBLE_ARRAY_MEMBER];
};
#define HNSW_MAX_BUFFER_HINTS (1 << 20)

static HnswBufferHints* HnswGetBufferHints(Relation index, BlockNumber nblocks) {
  if (index->rd_amcache != NULL) return (HnswBufferHints*)index->rd_amcache;
  uint32 n = 1024;
  while (n < nblocks && n < HNSW_MAX_BUFFER_HINTS) n *= 2;
  HnswBufferHints* hints = (HnswBufferHints*)MemoryContextAllocZero(
      index->rd_indexcxt, offsetof(HnswBufferHints, entries) + sizeof(HnswBufferHint) * n);
  hints->mask = n - 1;
  index->rd_amcache = hints;
  return hints;
}

bool HnswGetSq8Params(Relation index, vecext::Sq8Params* out) {
  HnswBufferHints* cache = HnswGetBufferHints(index, RelationGetNumberOfBlocks(index));
  if (cache->sq8_dim == 0) {
    HnswMetaPageData meta;
    HnswReadMeta(index, &meta);
    if (meta.quantization != HNSW_QUANT_SQ8 || meta.params_pages == 0) return false;
    const BlockNumber nblocks = RelationGetNumberOfBlocks(index);
    if (meta.params_start == HNSW_METAPAGE_BLKNO || meta.params_start + meta.params_pages > nblocks ||
        meta.params_bytes < vecext::kSq8BlobHeaderBytes || meta.params_bytes > 64 * 1024 * 1024)
      HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "the metapage names impossible SQ8 parameter pages");
    unsigned char* blob = (unsigned char*)palloc(meta.params_bytes);
    Size got = 0;
    for (uint32 c = 0; c < meta.params_pages; c++) {
      const BlockNumber blkno = meta.params_start + c;
      Buffer buf = ReadBuffer(index, blkno);
      LockBuffer(buf, BUFFER_LOCK_SHARE);
      Page page = BufferGetPage(buf);
      const char* problem = HnswPageProblem(page, blkno);
      HnswParamsTuple pt = NULL;
      if (problem == NULL && !PageIsNew(page) && PageGetMaxOffsetNumber(page) >= FirstOffsetNumber) {
        ItemId iid = PageGetItemId(page, FirstOffsetNumber);
        if (ItemIdIsNormal(iid) && ItemIdGetLength(iid) >= offsetof(HnswParamsTupleData, data))
          pt = (HnswParamsTuple)PageGetItem(page, iid);
      }
      if (pt == NULL || pt->type != HNSW_PARAMS_TUPLE || pt->chunk != c || got + pt->bytes > meta.params_bytes ||
          offsetof(HnswParamsTupleData, data) + pt->bytes > ItemIdGetLength(PageGetItemId(page, FirstOffsetNumber))) {
        UnlockReleaseBuffer(buf);
        HnswReportCorruption(index, blkno, problem != NULL ? problem : "bad SQ8 parameter page");
      }
      memcpy(blob + got, pt->data, pt->bytes);
      got += pt->bytes;
      UnlockReleaseBuffer(buf);
    }
    uint32_t dim = 0;
    if (got != meta.params_bytes || !vecext::Sq8BlobDim(blob, got, &dim).ok() || dim != meta.dimensions)
      HnswReportCorruption(index, meta.params_start, "the SQ8 parameters do not match the index");
    float* lo = (float*)MemoryContextAlloc(index->rd_indexcxt, sizeof(float) * dim);
    float* scale = (float*)MemoryContextAlloc(index->rd_indexcxt, sizeof(float) * dim);
    if (!vecext::Sq8Deserialize(blob, got, lo, scale).ok()) {
      pfree(lo);
      pfree(scale);
      HnswReportCorruption(index, meta.params_start, "the SQ8 parameters are not valid");
    }
    pfree(blob);
    // A relcache flush during the reads may have replaced rd_amcache.
    cache = HnswGetBufferHints(index, nblocks);
    cache->sq8_lo = lo;
    cache->sq8_scale = scale;
    cache->sq8_dim = dim;
  }
  out->dim = cache->sq8_dim;
  out->lo = cache->sq8_lo;
  out->scale = cache->sq8_scale;
  return true;
}

void HnswForgetSq8Params(Relation index) {
  if (index->rd_amcache == NULL) return;
  HnswBufferHints* cache = (HnswBufferHints*)index->rd_amcache;
  cache->sq8_dim = 0;
}

void HnswStoreInit(HnswStore* store, Relation index, int dim, int m, int metric, int quantization,
                   MemoryContext cxt, Size max_cache_bytes) {
  *store = HnswStore();
  store->index = index;
  store->dim = dim;
  store->m = m;
  store->metric = metric;
  store->quantization = quantization;
  store->data_size = HnswElementDataSize(quantization, dim);
  store->has_filter = HnswIndexHasFilter(index);
  store->element_size = HnswElementMinSize(quantization, dim, store->has_filter);
  if (quantization == HNSW_QUANT_SQ8 && !HnswGetSq8Params(index, &store->sq8)) store->sq8.dim = 0;
  const vecext::DistanceKernels& k = vecext::Kernels();
  switch ((vecext::Metric)metric) {
    case vecext::Metric::kInnerProduct:
      store->kernel = k.inner_product;
      store->dist_offset = 0.0f;
      store->dist_scale = -1.0f;
      break;
    case vecext::Metric::kCosine:
      store->kernel = k.inner_product;
      store->dist_offset = 1.0f;
      store->dist_scale = -1.0f;
      break;
    case vecext::Metric::kL1:
      store->kernel = k.l1;
      store->dist_offset = 0.0f;
      store->dist_scale = 1.0f;
      break;
    case vecext::Metric::kL2:
    default:
      store->kernel = k.l2_squared;
      store->dist_offset = 0.0f;
      store->dist_scale = 1.0f;
      break;
  }
  store->nblocks = RelationGetNumberOfBlocks(index);
  store->cxt = cxt;
  store->entry_words = 2 + 2 * m;
  Size entry_bytes = (Size)store->entry_words * sizeof(uint64);
  Size max_entries = max_cache_bytes / entry_bytes;
  store->max_entries = (uint32)Min(max_entries, (Size)PG_INT32_MAX);
}

void HnswStoreKeepSq8Info(HnswStore* store) {
  if (store->quantization != HNSW_QUANT_SQ8 || store->sq8_cap > 0) return;
  store->sq8_cap = 1024;
  store->sq8_count = 0;
  store->sq8_keys = (uint64*)MemoryContextAllocZero(store->cxt, sizeof(uint64) * store->sq8_cap);
  store->sq8_infos = (vecext::Sq8ElementInfo*)MemoryContextAlloc(store->cxt, sizeof(vecext::Sq8ElementInfo) * store->sq8_cap);
}

static inline uint32 Sq8Slot(uint64 key, uint32 mask) {
  uint64 h = key * UINT64CONST(0x9E3779B97F4A7C15);
  return (uint32)(h >> 32) & mask;
}

static void Sq8InfoPut(HnswStore* store, ElementId id, const vecext::Sq8ElementInfo& info);

static void Sq8InfoGrow(HnswStore* store) {
  uint64* keys = store->sq8_keys;
  vecext::Sq8ElementInfo* infos = store->sq8_infos;
  const uint32 cap = store->sq8_cap;
  store->sq8_cap = cap * 2;
  store->sq8_count = 0;
  store->sq8_keys = (uint64*)MemoryContextAllocZero(store->cxt, sizeof(uint64) * store->sq8_cap);
  store->sq8_infos =
      (vecext::Sq8ElementInfo*)MemoryContextAlloc(store->cxt, sizeof(vecext::Sq8ElementInfo) * store->sq8_cap);
  for (uint32 i = 0; i < cap; i++) {
    if (keys[i] != 0) Sq8InfoPut(store, keys[i] - 1, infos[i]);
  }
  pfree(keys);
  pfree(infos);
}

static void Sq8InfoPut(HnswStore* store, ElementId id, const vecext::Sq8ElementInfo& info) {
  if (2 * (store->sq8_count + 1) > store->sq8_cap) Sq8InfoGrow(store);
  const uint32 mask = store->sq8_cap - 1;
  const uint64 key = id + 1;
  for (uint32 i = Sq8Slot(key, mask);; i = (i + 1) & mask) {
    if (store->sq8_keys[i] == key) {
      store->sq8_infos[i] = info;
      return;
    }
    if (store->sq8_keys[i] == 0) {
      store->sq8_keys[i] = key;
      store->sq8_infos[i] = info;
      store->sq8_count++;
      return;
    }
  }
}

bool HnswStoreFilterExcludes(const HnswStore* store, const struct HnswFilterProgram* filter,
                             const HnswElementTupleData* etup, Size item_len) {
  if (filter == NULL) return false;
  Size sig_len = 0;
  const uint8* sig = HnswElementSignature(etup, item_len, store->quantization, store->dim, &sig_len);
  return sig != NULL && !HnswFilterMayMatch(filter, sig, sig_len);
}

uint64 HnswStoreElementCode(const HnswStore* store, const HnswElementTupleData* etup, Size item_len) {
  Size sig_len = 0;
  const uint8* sig = HnswElementSignature(etup, item_len, store->quantization, store->dim, &sig_len);
  return sig == NULL ? vecext::meta::kAllLinks : vecext::meta::MakeLinkCode(sig, sig_len);
}

bool HnswStoreSq8Info(const HnswStore* store, ElementId id, vecext::Sq8ElementInfo* out) {
  if (store->sq8_cap == 0) return false;
  const uint32 mask = store->sq8_cap - 1;
  const uint64 key = id + 1;
  for (uint32 i = Sq8Slot(key, mask);; i = (i + 1) & mask) {
    if (store->sq8_keys[i] == key) {
      *out = store->sq8_infos[i];
      return true;
    }
    if (store->sq8_keys[i] == 0) return false;
  }
}

float HnswStoreDataDistance(const HnswStore* store, const void* a, const void* b) {
  if (store->quantization == HNSW_QUANT_SQ8) {
    vecext::Sq8ElementInfo ia, ib;
    memcpy(&ia, a, sizeof(ia));
    memcpy(&ib, b, sizeof(ib));
    return vecext::Sq8CodeDistance(vecext::Sq8KernelsDispatched(), store->sq8, (vecext::Metric)store->metric,
                                   (const uint8_t*)a + sizeof(ia), ia, (const uint8_t*)b + sizeof(ib), ib);
  }
  float d = store->dist_offset + store->dist_scale * store->kernel((const float*)a, (const float*)b, (std::size_t)store->dim);
  return std::isnan(d) ? std::numeric_limits<float>::infinity() : d;
}

void HnswStoreDecode(const HnswStore* store, const void* data, float* out) {
  if (store->quantization != HNSW_QUANT_SQ8) {
    memcpy(out, data, sizeof(float) * (Size)store->dim);
    return;
  }
  vecext::Sq8Decode(store->sq8, (const uint8_t*)data + sizeof(vecext::Sq8ElementInfo), out);
}

void HnswStoreEncode(const HnswStore* store, const float* vec, void* out) {
  if (store->quantization != HNSW_QUANT_SQ8) {
    memcpy(out, vec, sizeof(float) * (Size)store->dim);
    return;
  }
  vecext::Sq8ElementInfo info;
  vecext::Status st = vecext::Sq8Encode(store->sq8, (vecext::Metric)store->metric, vec,
                                        (uint8_t*)out + sizeof(info), &info);
  if (!st.ok())
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("cannot quantize vector for hnsw index \"%s\": %s",
                                                            RelationGetRelationName(store->index), st.message)));
  memcpy(out, &info, sizeof(info));
}

void HnswStoreSetQuery(HnswStore* store, const float* query) {
  store->query = query;
  store->sq8_zero_query = false;
  if (store->quantization == HNSW_QUANT_SQ8 && store->sq8.dim > 0 &&
      (vecext::Metric)store->metric == vecext::Metric::kCosine &&
      !(vecext::SquaredNorm(query, (std::size_t)store->dim) > 0.0f)) {
    // Like the float path, where a zero query is 1 - 0 from every element.
    store->sq8_zero_query = true;
  } else if (store->quantization == HNSW_QUANT_SQ8 && store->sq8.dim > 0) {
    float* buffer = (float*)MemoryContextAlloc(store->cxt, sizeof(float) * vecext::Sq8QueryFloats(store->sq8.dim));
    vecext::Status st = vecext::Sq8PrepareQuery(store->sq8, (vecext::Metric)store->metric, query, buffer,
                                                &store->sq8_query);
    if (!st.ok())
      ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("cannot search hnsw index \"%s\" for this vector: %s",
                                                              RelationGetRelationName(store->index), st.message)));
  }
  store->chunks = NULL;
  store->nchunks = 0;
  store->chunks_allocated = 0;
  store->nentries = 0;
  store->through_keys = NULL;
  store->through_cap = 0;
  store->through_count = 0;
}

bool HnswStoreCheckElementPage(Relation index, Page page, BlockNumber blkno) {
  if (PageIsNew(page)) return false;
  PageHeader ph = (PageHeader)page;
  HnswPageOpaque opaque = HnswPageGetOpaque(page);
  if (ph->pd_special != BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData)) || ph->pd_lower > ph->pd_upper ||
      ph->pd_upper > ph->pd_special || opaque->page_id != HNSW_PAGE_ID || opaque->flags != HNSW_PAGE_ELEMENT)
    HnswReportCorruption(index, blkno, "not an hnsw element page");
  return true;
}

// The item at `off` of a checked page if it is normal, MAXALIGNed, inside
// [pd_upper, pd_special) and at least min_size bytes; else NULL.
static inline char* PageItem(Page page, OffsetNumber off, Size min_size) {
  if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page)) return NULL;
  ItemId iid = PageGetItemId(page, off);
  if (!ItemIdIsNormal(iid)) return NULL;
  const Size item_off = ItemIdGetOffset(iid);
  const Size len = ItemIdGetLength(iid);
  const PageHeader ph = (PageHeader)page;
  if (len < min_size || item_off < ph->pd_upper || item_off + len > ph->pd_special ||
      (item_off & (MAXIMUM_ALIGNOF - 1)) != 0)
    return NULL;
  return (char*)page + item_off;
}

HnswElementTuple HnswStoreGetElement(Page page, OffsetNumber off, Size element_size) {
  HnswElementTuple etup = (HnswElementTuple)PageItem(page, off, element_size);
  if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE || etup->level > HNSW_MAX_LEVEL) return NULL;
  return etup;
}

HnswNeighborTuple HnswStoreGetNeighbors(Page page, OffsetNumber off, int m) {
  HnswNeighborTuple ntup = (HnswNeighborTuple)PageItem(page, off, offsetof(HnswNeighborTupleData, ids));
  if (ntup == NULL || ntup->type != HNSW_NEIGHBOR_TUPLE || ntup->level > HNSW_MAX_LEVEL ||
      ntup->count != HnswNeighborSlots(ntup->level, m))
    return NULL;
  ItemId iid = PageGetItemId(page, off);
  if (ItemIdGetLength(iid) < HNSW_NEIGHBOR_TUPLE_SIZE(ntup->count)) return NULL;
  return ntup;
}

// Pins block blkno of the index unless it lies beyond the end (a stale or
// corrupt link): refreshes the cached size once before giving up.
static inline Buffer ReadElementBuffer(HnswStore* store, BlockNumber blkno) {
  if (blkno == HNSW_METAPAGE_BLKNO || blkno == InvalidBlockNumber) return InvalidBuffer;
  if (blkno >= store->nblocks) {
    store->nblocks = RelationGetNumberOfBlocks(store->index);
    if (blkno >= store->nblocks) return InvalidBuffer;
  }
  store->buffer_reads++;
  HnswBufferHints* hints = HnswGetBufferHints(store->index, store->nblocks);
  HnswBufferHint* hint = &hints->entries[blkno & hints->mask];
  if (hint->blkno == blkno && ReadRecentBuffer(store->index->rd_node, MAIN_FORKNUM, blkno, hint->buffer))
    return hint->buffer;
  Buffer buf = ReadBuffer(store->index, blkno);
  hint->blkno = blkno;
  hint->buffer = buf;
  return buf;
}

// Sorts idx[0..n) so that ids[idx[]] ascend (insertion sort: n is small and
// the ids of one neighbour list are often nearly sorted already).
static inline void SortByBlock(const ElementId* ids, int n, uint16* idx) {
  for (int i = 0; i < n; i++) idx[i] = (uint16)i;
  for (int i = 1; i < n; i++) {
    const uint16 v = idx[i];
    const ElementId key = ids[v];
    int j = i - 1;
    while (j >= 0 && ids[idx[j]] > key) {
      idx[j + 1] = idx[j];
      j--;
    }
    idx[j + 1] = v;
  }
}

// A new cache entry's words, or NULL when the cache is full or disabled.
static uint64* CacheEntry(HnswStore* store, uint32* index) {
  if (store->nentries >= store->max_entries) return NULL;
  const uint32 e = store->nentries;
  const uint32 chunk = e / HNSW_LINK_CHUNK;
  if (chunk >= store->nchunks) {
    if (store->nchunks == store->chunks_allocated) {
      uint32 n = store->chunks_allocated == 0 ? 16 : store->chunks_allocated * 2;
      uint64** grown = (uint64**)MemoryContextAlloc(store->cxt, n * sizeof(uint64*));
      if (store->nchunks > 0) memcpy(grown, store->chunks, store->nchunks * sizeof(uint64*));
      if (store->chunks != NULL) pfree(store->chunks);
      store->chunks = grown;
      store->chunks_allocated = n;
    }
    store->chunks[store->nchunks++] = (uint64*)MemoryContextAlloc(
        store->cxt, (Size)HNSW_LINK_CHUNK * (Size)store->entry_words * sizeof(uint64));
  }
  store->nentries++;
  *index = e;
  return store->chunks[chunk] + (Size)(e % HNSW_LINK_CHUNK) * (Size)store->entry_words;
}

static inline uint64* CachedEntry(const HnswStore* store, uint64 aux) {
  const uint32 e = (uint32)(aux & 0xFFFFFFFF);
  return store->chunks[e / HNSW_LINK_CHUNK] + (Size)(e % HNSW_LINK_CHUNK) * (Size)store->entry_words;
}

// Copies the valid links of ntup on `level` to out (at most cap); returns how many.
static inline int CopyLinks(HnswNeighborTuple ntup, int level, int m, uint64* out, int cap) {
  const int start = HnswLevelStart(level, m);
  int slots = HnswLevelSlots(level, m);
  if (slots > cap) slots = cap;
  int n = 0;
  for (int i = 0; i < slots; i++) {
    const ItemPointerData* tid = &ntup->ids[start + i];
    if (HnswLinkIsValid(tid)) out[n++] = HnswPackTid(tid);
  }
  return n;
}

// How many groups (pages) ahead of the one being scored Score pins and
// prefetches. Pins held at once stay within Postgres' 8 fast private
// refcount slots.
#define HNSW_PIPELINE_DEPTH 3
// How many groups ahead of the one being scored Score prefetches element
// tuples (at most HNSW_PIPELINE_DEPTH: those groups are pinned).
#ifndef HNSW_ITEM_PREFETCH_DISTANCE
#define HNSW_ITEM_PREFETCH_DISTANCE 2
#endif

// Prefetch hints (never dereferenced as data): the start of a page (header
// and line pointers) and its special space.
static inline void PrefetchPageHead(Page page) {
  __builtin_prefetch(page);
  __builtin_prefetch((char*)page + BLCKSZ - 1);
}

// Prefetches the start of the item at `off` of a pinned but unlocked page.
// The line pointer is read without the content lock: it only steers a
// prefetch hint, is clamped to the page, and is read again under the lock
// before any use.
static inline void PrefetchItem(Page page, OffsetNumber off, Size lines) {
  // A corrupt link's offset must not send the line pointer read off the page.
  if (off < FirstOffsetNumber || (Size)off > (BLCKSZ - SizeOfPageHeaderData) / sizeof(ItemIdData)) return;
  const volatile ItemIdData* iid = (const volatile ItemIdData*)PageGetItemId(page, off);
  const Size item_off = iid->lp_off;
  if (item_off == 0 || item_off >= BLCKSZ) return;
  const char* p = (const char*)page + item_off;
  const char* limit = (const char*)page + BLCKSZ;
  for (Size i = 0; i < lines && p + i * 64 < limit; i++) __builtin_prefetch(p + i * 64);
}

void HnswStore::Score(const ElementId* ids, int n, int level, float bound, Candidate* out, uint8_t* flags) {
  uint16 order[vecext::hnsw::kMaxLinks];
  SortByBlock(ids, n, order);
  scored += (uint64)n;
  // Lines of an element tuple worth prefetching: all of it, up to 2 KB (the
  // hardware prefetcher only starts streaming after a few misses; 32 lines
  // measured 5-10% faster than 16 on 784-dimension floats, all 49 no
  // better). The build writes each element's neighbour tuple right after
  // (above) its element tuple, and an expanded element's links are read
  // from there: the prefetch covers both when they are small.
  const Size element_lines =
      Min((element_size + HNSW_NEIGHBOR_TUPLE_SIZE(HnswNeighborSlots(0, m)) + 63) / 64, (Size)32);

  // Groups of ids on one page: [group_start[g], group_start[g + 1]).
  int group_start[vecext::hnsw::kMaxLinks + 1];
  int ngroups = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || IdBlock(ids[order[i]]) != IdBlock(ids[order[i - 1]])) group_start[ngroups++] = i;
  }
  group_start[ngroups] = n;
  // The buffer descriptors ReadRecentBuffer will lock, for every group now:
  // these misses then overlap instead of serialising.
  const HnswBufferHints* hints = HnswGetBufferHints(index, nblocks);
  for (int g = 0; g < ngroups; g++) {
    const BlockNumber blkno = IdBlock(ids[order[group_start[g]]]);
    const HnswBufferHint* hint = &hints->entries[blkno & hints->mask];
    if (hint->blkno == blkno && hint->buffer > 0) {
      __builtin_prefetch(GetBufferDescriptor(hint->buffer - 1), 1);
      // The page the hint points to (a hint only: the buffer may hold
      // another block by now; it is pinned and checked before use).
      __builtin_prefetch(BufferGetBlock(hint->buffer));
    }
  }

  // Pipeline: group g + DEPTH is pinned and its page head prefetched, group
  // g + 1 gets its element tuples prefetched, group g is scored under the
  // shared lock.
  Buffer bufs[HNSW_PIPELINE_DEPTH + 1];
  int pinned = 0;  // groups [0, pinned) have been pinned (or found invalid)
  int items_prefetched = 0;  // groups [0, items_prefetched) have had their element tuples prefetched
  // Large elements (their prefetch alone fills the line fill buffers) one group ahead.
  const int item_distance = element_size > 768 ? 1 : HNSW_ITEM_PREFETCH_DISTANCE;
  for (int g = 0; g < ngroups; g++) {
    while (pinned < ngroups && pinned <= g + HNSW_PIPELINE_DEPTH) {
      Buffer b = ReadElementBuffer(this, IdBlock(ids[order[group_start[pinned]]]));
      if (BufferIsValid(b)) {
        Page bpage = BufferGetPage(b);
        PrefetchPageHead(bpage);
        // The line pointers the item prefetch below will read.
        for (int k = group_start[pinned]; k < group_start[pinned + 1]; k++) {
          const OffsetNumber off = IdOffset(ids[order[k]]);
          if (off >= FirstOffsetNumber && off <= MaxOffsetNumber) __builtin_prefetch(PageGetItemId(bpage, off));
        }
      }
      bufs[pinned % (HNSW_PIPELINE_DEPTH + 1)] = b;
      pinned++;
    }
    // Element tuples two groups ahead (one at the start), so that they
    // arrive before they are scored even when scoring a group is quick.
    if (items_prefetched < g + 1) items_prefetched = g + 1;
    while (items_prefetched < ngroups && items_prefetched <= g + item_distance) {
      Buffer next = bufs[items_prefetched % (HNSW_PIPELINE_DEPTH + 1)];
      if (BufferIsValid(next)) {
        Page npage = BufferGetPage(next);
        for (int k = group_start[items_prefetched]; k < group_start[items_prefetched + 1]; k++)
          PrefetchItem(npage, IdOffset(ids[order[k]]), element_lines);
      }
      items_prefetched++;
    }

    const int i = group_start[g];
    const int end = group_start[g + 1];
    const BlockNumber blkno = IdBlock(ids[order[i]]);
    Buffer buf = bufs[g % (HNSW_PIPELINE_DEPTH + 1)];
    if (!BufferIsValid(buf)) {
      for (int k = i; k < end; k++) flags[order[k]] = 0;
      continue;
    }
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    const bool usable = HnswStoreCheckElementPage(index, page, blkno);
    for (int k = i; k < end; k++) {
      const int at = order[k];
      flags[at] = 0;
      if (!usable) continue;
      HnswElementTuple etup = (HnswElementTuple)PageItem(page, IdOffset(ids[at]), element_size);
      if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE || etup->level < level || etup->level > HNSW_MAX_LEVEL)
        continue;
      const float d = HnswStoreElementDistance(this, etup);
      out[at].distance = d;
      out[at].id = ids[at];
      // Elements the filter excludes are traversed, never returned.
      const bool returnable =
          !(etup->flags & HNSW_ELEMENT_DELETED) &&
          !HnswStoreFilterExcludes(this, filter, etup, ItemIdGetLength(PageGetItemId(page, IdOffset(ids[at]))));
      // Side data for the scan's bounds, of elements that enter the results
      // now (d < bound); one scored beyond the bound can only come back in
      // a later batch, which loads what is missing (HnswStoreLoadElements).
      if (sq8_cap > 0 && level == 0 && returnable && d < bound) {
        vecext::Sq8ElementInfo info;
        memcpy(&info, etup->vec, sizeof(info));
        Sq8InfoPut(this, ids[at], info);
      }
      flags[at] = (uint8_t)(vecext::hnsw::kScoreValid | (returnable ? vecext::hnsw::kScoreReturnable : 0));

      const BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&etup->neighbortid);
      const OffsetNumber noff = ItemPointerGetOffsetNumberNoCheck(&etup->neighbortid);
      if (nblk != blkno) {
        out[at].aux = AUX_REMOTE | HnswPackTid(&etup->neighbortid);
        continue;
      }
      const uint64 heap = HnswPackTid(&etup->heaptid);
      out[at].aux = heap | ((uint64)(noff & AUX_OFFSET_MASK) << AUX_OFFSET_SHIFT);
      if (!(d < bound) || nentries >= max_entries) continue;
      // About to be queued: copy its links now, the page is locked anyway.
      HnswNeighborTuple ntup = HnswStoreGetNeighbors(page, noff, m);
      if (ntup == NULL || ntup->level < level) continue;
      uint32 e;
      uint64* entry = CacheEntry(this, &e);
      if (entry == NULL) continue;
      const int count = CopyLinks(ntup, level, m, entry + 2, 2 * m);
      entry[0] = heap | ((uint64)count << 48) | ((uint64)level << 56);
      entry[1] = HnswPackTid(&etup->neighbortid);
      out[at].aux = AUX_CACHED | e;
    }
    UnlockReleaseBuffer(buf);
  }
}

// Two-hop expansion (filtered scans of an index with link codes, level 0).
//
// The links of the expanded element whose code the filter accepts are
// returned as usual. A link whose code the filter rejects leads to an
// element that cannot match: instead of scoring it (a page visit for a row
// that is never returned), the expansion looks through it to its own level-0
// links and returns those the filter accepts (ACORN-1, Patel et al. 2024;
// every rejected link, in list order, pages read once each and pipelined,
// see LookThrough). The scan counts looked-through elements against
// hnsw.max_scan_tuples (store->through_reads). Where at least half
// of the links pass, the filter is not selective (or the matching rows
// cluster, as when metadata correlates with the vectors): then every link is
// returned, as without codes, so the search still crosses the non-matching
// elements between clusters of matching ones. Each rejected
// element is looked through once per query (store->through_keys): what it
// leads to is then in the search's visited set. When nothing passes, the
// rejected links themselves are returned, so that the search keeps moving
// through regions where no row matches (they are scored, and excluded by
// their signature, as without link codes).

// Whether `id` was looked through.
static bool ThroughContains(const HnswStore* store, ElementId id) {
  if (store->through_cap == 0) return false;
  const uint32 mask = store->through_cap - 1;
  const uint64 key = id + 1;
  for (uint32 i = Sq8Slot(key, mask);; i = (i + 1) & mask) {
    if (store->through_keys[i] == key) return true;
    if (store->through_keys[i] == 0) return false;
  }
}

// Marks `id` looked through; false when it already was.
static bool ThroughInsert(HnswStore* store, ElementId id) {
  if (2 * (store->through_count + 1) > store->through_cap) {
    const uint32 old_cap = store->through_cap;
    uint64* old_keys = store->through_keys;
    store->through_cap = old_cap == 0 ? 256 : old_cap * 2;
    store->through_keys = (uint64*)MemoryContextAllocZero(store->cxt, sizeof(uint64) * store->through_cap);
    store->through_count = 0;
    for (uint32 i = 0; i < old_cap; i++) {
      if (old_keys[i] == 0) continue;
      const uint32 mask = store->through_cap - 1;
      uint32 j = Sq8Slot(old_keys[i], mask);
      while (store->through_keys[j] != 0) j = (j + 1) & mask;
      store->through_keys[j] = old_keys[i];
      store->through_count++;
    }
    if (old_keys != NULL) pfree(old_keys);
  }
  const uint32 mask = store->through_cap - 1;
  const uint64 key = id + 1;
  for (uint32 i = Sq8Slot(key, mask);; i = (i + 1) & mask) {
    if (store->through_keys[i] == key) return false;
    if (store->through_keys[i] == 0) {
      store->through_keys[i] = key;
      store->through_count++;
      return true;
    }
  }
}

// Whether the filter accepts an element whose link code is `code`.
static inline bool StoreCodeMayMatch(const HnswStore* store, uint64 code) {
  if (store->ncode_terms >= 0) {
    for (int t = 0; t < store->ncode_terms; t++) {
      if ((code & store->code_terms[t]) == store->code_terms[t]) return true;
    }
    return false;
  }
  return HnswFilterCodeMayMatch(store->filter, code);
}

// Appends the level-0 links of neighbour tuple `ntup` (of a checked, locked
// page) that the filter accepts to out[*n..cap), skipping `self` and ids
// already there. Links to rejected elements go to rejected[*nrejected..cap)
// when rejected is not NULL.
static void FilterLinks(HnswStore* store, HnswNeighborTuple ntup, Size ntup_len, ElementId self, ElementId* out,
                        int* n, int cap, ElementId* rejected, int* nrejected, int rejected_cap) {
  const int slots = HnswLevelSlots(0, store->m);
  const bool has_codes = ntup_len >= HnswNeighborTupleSize(ntup->count, true);
  const uint64* codes = has_codes ? HnswNeighborCodes(ntup) : NULL;
  for (int i = 0; i < slots && *n < cap; i++) {
    const ItemPointerData* tid = &ntup->ids[i];
    if (!HnswLinkIsValid(tid)) continue;
    const ElementId id = HnswPackTid(tid);
    if (id == self) continue;
    if (codes != NULL && !StoreCodeMayMatch(store, codes[i])) {
      store->skipped_links++;
      if (rejected != NULL && *nrejected < rejected_cap) rejected[(*nrejected)++] = id;
      continue;
    }
    store->passed_links++;
    bool seen = false;
    for (int j = 0; j < *n && !seen; j++) seen = out[j] == id;
    if (!seen) out[(*n)++] = id;
  }
}

// Appends the links of the value list of `ntup` (of a checked, locked page)
// whose key is one of the store's value keys to out[*n..cap), skipping
// `self` and ids already there. Returns whether the tuple has such a list.
static bool ValueListLinks(HnswStore* store, HnswNeighborTuple ntup, Size ntup_len, ElementId self, ElementId* out,
                           int* n, int cap) {
  if (ntup_len < HnswNeighborTupleSizeV(ntup->count, true, store->value_lists, store->value_slots)) return false;
  for (int j = 0; j < store->value_lists; j++) {
    char* list = HnswNeighborValueList(ntup, j, store->value_slots);
    const uint64 key = HnswValueListKey(list);
    bool wanted = false;
    for (int q = 0; q < store->nvalue_keys && !wanted; q++) wanted = key != 0 && store->value_keys[q] == key;
    if (!wanted) continue;
    const ItemPointerData* ids = HnswValueListIds(list);
    for (int k = 0; k < store->value_slots && *n < cap; k++) {
      if (!HnswLinkIsValid(&ids[k])) continue;
      const ElementId id = HnswPackTid(&ids[k]);
      if (id == self) continue;
      bool seen = false;
      for (int i = 0; i < *n && !seen; i++) seen = out[i] == id;
      if (seen) continue;
      out[(*n)++] = id;
      store->value_links++;
    }
    return true;
  }
  return false;
}

// The neighbour tuple at `tid` read under a share lock and filtered into
// out (see FilterLinks); for links that are not on the element's page.
// With `values` (not NULL), also the value list for one of the store's
// value keys (ValueListLinks; *values says whether there was one).
static void FilterRemoteLinks(HnswStore* store, const ItemPointerData* tid, ElementId self, ElementId* out, int* n,
                              int cap, ElementId* rejected, int* nrejected, int rejected_cap, bool* values = NULL) {
  const BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(tid);
  Buffer buf = ReadElementBuffer(store, blkno);
  if (!BufferIsValid(buf)) return;
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  if (HnswStoreCheckElementPage(store->index, page, blkno)) {
    const OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
    HnswNeighborTuple ntup = HnswStoreGetNeighbors(page, off, store->m);
    if (ntup != NULL) {
      const Size len = ItemIdGetLength(PageGetItemId(page, off));
      FilterLinks(store, ntup, len, self, out, n, cap, rejected, nrejected, rejected_cap);
      if (values != NULL) *values = ValueListLinks(store, ntup, len, self, out, n, cap);
    }
  }
  UnlockReleaseBuffer(buf);
}

// Prefetches the header of the element tuple at `off` of a pinned but
// unlocked page and the `lines` cache lines that follow the tuple: the build
// writes an element's neighbour tuple right after it in the page (a hint
// only; the line pointer is read without the content lock, clamped to the
// page, and read again under the lock before any use).
static inline void PrefetchElementAndNeighbors(Page page, OffsetNumber off, Size lines) {
  if (off < FirstOffsetNumber || (Size)off > (BLCKSZ - SizeOfPageHeaderData) / sizeof(ItemIdData)) return;
  const volatile ItemIdData* iid = (const volatile ItemIdData*)PageGetItemId(page, off);
  const Size item_off = iid->lp_off;
  const Size item_len = iid->lp_len;
  if (item_off == 0 || item_off >= BLCKSZ) return;
  const char* limit = (const char*)page + BLCKSZ;
  __builtin_prefetch((const char*)page + item_off);
  const char* p = (const char*)page + item_off + MAXALIGN(item_len);
  for (Size i = 0; i < lines && p + i * 64 < limit; i++) __builtin_prefetch(p + i * 64);
}

// Looks through the rejected elements ids[0..nids) that were not looked
// through yet, in that order (each page read once for all of its ids in the
// list), appending the links the filter accepts to out[*n..cap).
//
// Pipelined like Score: the buffer descriptors and pages of every page to
// read are prefetched first, pages are pinned HNSW_PIPELINE_DEPTH ahead of
// the one being read, and the element and neighbour tuples of the next page
// are prefetched while the current one is read.
static void LookThrough(HnswStore* store, ElementId self, const ElementId* ids, int nids, ElementId* out, int* n,
                        int cap) {
  // The pages to read, in order of first appearance, and which page each id is on.
  BlockNumber gblock[vecext::hnsw::kMaxLinks];
  uint16 gof[vecext::hnsw::kMaxLinks];
  int ngroups = 0;
  int todo = 0;
  for (int i = 0; i < nids; i++) {
    if (ThroughContains(store, ids[i])) {
      gof[i] = UINT16_MAX;
      continue;
    }
    const BlockNumber blkno = IdBlock(ids[i]);
    int g = ngroups - 1;
    while (g >= 0 && gblock[g] != blkno) g--;
    if (g < 0) {
      g = ngroups++;
      gblock[g] = blkno;
    }
    gof[i] = (uint16)g;
    todo++;
  }
  if (todo == 0) return;
  const int max_groups = ngroups;
  const HnswBufferHints* hints = HnswGetBufferHints(store->index, store->nblocks);
  for (int g = 0; g < max_groups; g++) {
    const HnswBufferHint* hint = &hints->entries[gblock[g] & hints->mask];
    if (hint->blkno == gblock[g] && hint->buffer > 0) {
      __builtin_prefetch(GetBufferDescriptor(hint->buffer - 1), 1);
      __builtin_prefetch(BufferGetBlock(hint->buffer));
    }
  }
  const Size ntup_lines = Min((HnswNeighborTupleSize(HnswNeighborSlots(0, store->m), true) + 63) / 64, (Size)16);

  ItemPointerData remote[vecext::hnsw::kMaxLinks];
  int nremote = 0;
  Buffer bufs[HNSW_PIPELINE_DEPTH + 1];
  int pinned = 0;
  int g = 0;
  for (; g < max_groups && *n < cap; g++) {
    while (pinned < max_groups && pinned <= g + HNSW_PIPELINE_DEPTH) {
      Buffer b = ReadElementBuffer(store, gblock[pinned]);
      if (BufferIsValid(b)) {
        PrefetchPageHead(BufferGetPage(b));
        __builtin_prefetch((char*)BufferGetPage(b) + 64);  // more line pointers
      }
      bufs[pinned % (HNSW_PIPELINE_DEPTH + 1)] = b;
      pinned++;
    }
    if (g + 1 < max_groups) {
      Buffer next = bufs[(g + 1) % (HNSW_PIPELINE_DEPTH + 1)];
      if (BufferIsValid(next)) {
        Page npage = BufferGetPage(next);
        for (int i = 0; i < nids; i++) {
          if (gof[i] != g + 1) continue;
          PrefetchElementAndNeighbors(npage, IdOffset(ids[i]), ntup_lines);
        }
      }
    }
    Buffer buf = bufs[g % (HNSW_PIPELINE_DEPTH + 1)];
    if (!BufferIsValid(buf)) continue;
    const BlockNumber blkno = gblock[g];
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    const bool usable = HnswStoreCheckElementPage(store->index, page, blkno);
    for (int i = 0; i < nids && usable && *n < cap; i++) {
      if (gof[i] != g) continue;
      const ElementId id = ids[i];
      HnswElementTuple etup = (HnswElementTuple)PageItem(page, IdOffset(id), store->element_size);
      if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE || etup->level > HNSW_MAX_LEVEL) continue;
      if (!ThroughInsert(store, id)) continue;
      store->through_reads++;
      const BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&etup->neighbortid);
      if (nblk != blkno) {
        remote[nremote++] = etup->neighbortid;
        continue;
      }
      const OffsetNumber noff = ItemPointerGetOffsetNumberNoCheck(&etup->neighbortid);
      HnswNeighborTuple ntup = HnswStoreGetNeighbors(page, noff, store->m);
      if (ntup != NULL)
        FilterLinks(store, ntup, ItemIdGetLength(PageGetItemId(page, noff)), self, out, n, cap, NULL, NULL, 0);
    }
    UnlockReleaseBuffer(buf);
  }
  // Pages pinned ahead that were not read.
  for (; g < pinned; g++) {
    Buffer buf = bufs[g % (HNSW_PIPELINE_DEPTH + 1)];
    if (BufferIsValid(buf)) ReleaseBuffer(buf);
  }
  for (int r = 0; r < nremote && *n < cap; r++)
    FilterRemoteLinks(store, &remote[r], self, out, n, cap, NULL, NULL, 0);
}

static int TwoHopNeighbors(HnswStore* store, const Candidate& c, ElementId* out, int cap) {
  ItemPointerData tid;
  store->two_hop_expansions++;
  HnswStoreNeighborTid(store, c, &tid);
  ElementId rejected[vecext::hnsw::kMaxLinks];
  int nrejected = 0;
  int n = 0;
  bool values = false;
  FilterRemoteLinks(store, &tid, c.id, out, &n, cap, rejected, &nrejected, vecext::hnsw::kMaxLinks,
                    store->nvalue_keys > 0 ? &values : NULL);
  if (values) {
    // A matching element with a value list for the filter's value: its
    // links lead to the nearest rows with that value. Follow them (and the
    // links whose code passes), and look through nothing.
    store->value_expansions++;
    return n;
  }
  // The search has reached the rows with the filter's value and follows
  // their own graph: an element without such a list (a non-matching one
  // still queued from the way in) adds the links whose code passes and is
  // not looked through. 200k x 128, 1%: buffer accesses 1,105 -> 575 per
  // query, recall 0.983 either way.
  if (store->value_expansions > 0) return n;
  if (nrejected == 0) return n;
  if (2 * n >= n + nrejected) {
    // Most links pass: the filter is not selective here (or matching rows
    // cluster). Expand as without codes, so that the search also crosses
    // the non-matching elements between clusters of matching ones.
    const int more = Min(nrejected, cap - n);
    memcpy(out + n, rejected, sizeof(ElementId) * (Size)more);
    return n + more;
  }
  LookThrough(store, c.id, rejected, nrejected, out, &n, cap);
  if (n > 0) return n;
  // Nothing passes within two hops: go on through the rejected elements.
  memcpy(out, rejected, sizeof(ElementId) * (Size)Min(nrejected, cap));
  return Min(nrejected, cap);
}

int HnswStore::Neighbors(const Candidate& c, int level, ElementId* out, int cap) {
  ItemPointerData tid;
  expansions++;
  if (level == 0 && two_hop) {
    CHECK_FOR_INTERRUPTS();
    return TwoHopNeighbors(this, c, out, cap);
  }
  if (c.aux & AUX_CACHED) {
    const uint64* entry = CachedEntry(this, c.aux);
    if ((int)(entry[0] >> 56) == level) {
      cached_expansions++;
      int count = (int)((entry[0] >> 48) & 0xFF);
      if (count > cap) count = cap;
      memcpy(out, entry + 2, (Size)count * sizeof(uint64));
      return count;
    }
    HnswUnpackTid(entry[1], &tid);
  } else {
    HnswStoreNeighborTid(this, c, &tid);
  }
  CHECK_FOR_INTERRUPTS();
  const BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(&tid);
  Buffer buf = ReadElementBuffer(this, blkno);
  if (!BufferIsValid(buf)) return 0;
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  int count = 0;
  if (HnswStoreCheckElementPage(index, page, blkno)) {
    HnswNeighborTuple ntup = HnswStoreGetNeighbors(page, ItemPointerGetOffsetNumberNoCheck(&tid), m);
    if (ntup != NULL && ntup->level >= level) count = CopyLinks(ntup, level, m, out, cap);
  }
  UnlockReleaseBuffer(buf);
  return count;
}

void HnswStoreNeighborTid(const HnswStore* store, const Candidate& c, ItemPointer tid) {
  if (c.aux & AUX_CACHED) {
    HnswUnpackTid(CachedEntry(store, c.aux)[1], tid);
  } else if (c.aux & AUX_REMOTE) {
    HnswUnpackTid(c.aux & AUX_TID_MASK, tid);
  } else {
    ItemPointerSet(tid, IdBlock(c.id), (OffsetNumber)((c.aux >> AUX_OFFSET_SHIFT) & AUX_OFFSET_MASK));
  }
}

bool HnswStoreHeapTid(HnswStore* store, const Candidate& c, ItemPointer heaptid) {
  if (c.aux & AUX_CACHED) {
    HnswUnpackTid(CachedEntry(store, c.aux)[0] & AUX_TID_MASK, heaptid);
    return true;
  }
  if (!(c.aux & AUX_REMOTE)) {
    HnswUnpackTid(c.aux & AUX_TID_MASK, heaptid);
    return true;
  }
  HnswElementInfo info;
  void* data = palloc(store->data_size);
  HnswStoreLoadElements(store, &c.id, 1, data, &info);
  pfree(data);
  if (!info.valid) return false;
  *heaptid = info.heaptid;
  return true;
}

void HnswStoreLoadElements(HnswStore* store, const ElementId* ids, int n, void* data, HnswElementInfo* info) {
  const Size element_size = store->element_size;
  int i = 0;
  // ids may be more than kMaxLinks here: sort an index array from the caller's context.
  uint16 small_order[vecext::hnsw::kMaxLinks];
  uint16* order = n <= vecext::hnsw::kMaxLinks ? small_order : (uint16*)palloc(sizeof(uint16) * (Size)n);
  SortByBlock(ids, n, order);
  while (i < n) {
    const BlockNumber blkno = IdBlock(ids[order[i]]);
    int end = i + 1;
    while (end < n && IdBlock(ids[order[end]]) == blkno) end++;
    for (int k = i; k < end; k++) info[order[k]].valid = false;
    Buffer buf = ReadElementBuffer(store, blkno);
    if (BufferIsValid(buf)) {
      LockBuffer(buf, BUFFER_LOCK_SHARE);
      Page page = BufferGetPage(buf);
      if (HnswStoreCheckElementPage(store->index, page, blkno)) {
        for (int k = i; k < end; k++) {
          const int at = order[k];
          HnswElementTuple etup = (HnswElementTuple)PageItem(page, IdOffset(ids[at]), element_size);
          if (etup == NULL || etup->type != HNSW_ELEMENT_TUPLE || etup->level > HNSW_MAX_LEVEL) continue;
          memcpy((char*)data + (Size)at * store->data_size, etup->vec, store->data_size);
          info[at].valid = true;
          info[at].deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
          info[at].level = etup->level;
          info[at].heaptid = etup->heaptid;
          info[at].neighbortid = etup->neighbortid;
          info[at].code = store->link_codes ? HnswStoreElementCode(store, etup, ItemIdGetLength(PageGetItemId(
                                                                               page, IdOffset(ids[at]))))
                                            : vecext::meta::kAllLinks;
        }
      }
      UnlockReleaseBuffer(buf);
    }
    i = end;
  }
  if (order != small_order) pfree(order);
}
