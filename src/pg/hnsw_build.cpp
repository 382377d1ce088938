// hnsw index build: ambuild and ambuildempty.
//
// 0. SQ8 only: a first table_index_build_scan trains the quantizer (the
//    per-dimension min and max of every indexable row, streamed: nothing is
//    kept), so that the builder can hold codes instead of floats.
// 1. Load: table_index_build_scan collects every indexable row (prepared by
//    HnswPrepareValue: NULLs and zero vectors under cosine are skipped) into
//    an in-memory GraphBuilder (src/core/hnsw_build.h), which holds the
//    vectors (SQ8: their codes and side data, encoded from the floats) and
//    the heap TIDs. Its size is bounded by maintenance_work_mem through the
//    core's memory model, so an SQ8 build holds 3-4 times more rows.
// 2. Graph: the builder inserts the rows with max_parallel_maintenance_workers
//    + 1 threads, in chunks; between chunks this (the leader) thread checks
//    for interrupts and reports progress. The build threads run core code
//    only, with every signal blocked; they poll InterruptPending, so a
//    cancel stops them within one point. Then every row the heuristic left
//    unreachable from the entry point gets an in-link.
// 3. Pages: every element's TID is assigned first (a dry run of the page
//    layout), then the metapage and the element pages are written in block
//    order, each element's neighbour tuple and element tuple on one page,
//    through shared buffers without WAL; at the end log_newpage_range logs
//    all of them when the index needs WAL.
// When the rows do not fit in maintenance_work_mem, steps 2 and 3 run for
// the rows loaded so far, and every later row is inserted into the written
// index with HnswInsertElement (building = true: no locks, no WAL; the final
// log_newpage_range covers those pages too), after a NOTICE.
//
// The builder is C++ state that lives across Postgres calls: a reset
// callback on the build's memory context owns it, so an ERROR (or a cancel)
// frees it. No C++ object lives in the frames of this file.
#include "pg/pg_includes.h"

#include <cstdint>
#include <cstring>

extern "C" {
#include "catalog/pg_type.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"
}

#include "core/hnsw_build.h"
#include "core/hnsw_value_lists.h"
#include "core/index_distance.h"
#include "core/meta_filter.h"
#include "pg/guard.h"
#include "core/hnsw_layout.h"
#include "core/sq8.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_store.h"
#include "pg/hnsw_internal.h"
#include "pg/vector.h"

using vecext::Status;
using vecext::StatusCode;
using vecext::hnsw::GraphBuilder;
using vecext::hnsw::ValueListBuilder;

// Build sub-phases (PROGRESS_CREATEIDX_SUBPHASE), named by hnswbuildphasename.
#define HNSW_PHASE_LOAD 2
#define HNSW_PHASE_GRAPH 3
#define HNSW_PHASE_WRITE 4
#define HNSW_PHASE_INSERT 5
#define HNSW_PHASE_TRAIN 6
#define HNSW_PHASE_VALUES 7

// Rows per builder call per thread: interrupts and progress are handled between calls.
#define HNSW_BUILD_CHUNK_ROWS 1024
#define HNSW_BUILD_MAX_THREADS 64
// The seed of the build's level generator: a build with one thread is repeatable.
#define HNSW_BUILD_SEED UINT64CONST(0x766563657874)

// Free bytes of an empty element page (tuples plus their line pointers).
#define HNSW_EMPTY_PAGE_FREE (BLCKSZ - SizeOfPageHeaderData - MAXALIGN(sizeof(HnswPageOpaqueData)))

// Owns the builder: freed by the reset callback of the build context.
struct HnswBuilderOwner {
  GraphBuilder* builder;
  MemoryContextCallback callback;
};

// Owns the value list builder (indexes with value lists) likewise.
struct HnswValueOwner {
  ValueListBuilder* builder;
  MemoryContextCallback callback;
};

struct HnswBuildState {
  Relation heap;
  Relation index;
  int dimensions;         // from the column typmod, else from the first row (0: unknown yet)
  int m;
  int ef_construction;
  int metric;             // vecext::Metric
  int quantization;       // HNSW_QUANT_*
  bool filter;            // a jsonb metadata column: element tuples carry signatures
  bool link_codes;        // neighbour tuples carry link codes (reloption link_codes, or value lists)
  int value_lists;        // value lists per neighbour tuple (reloption value_lists; 0: none)
  int value_slots;        // links per value list
  HnswValueOwner* vowner; // the value lists of the in-memory graph (NULL: none)
  // Signatures of the builder's rows (filter): row r's bytes are
  // sig_buf[sig_off[r] .. sig_off[r + 1]).
  char* sig_buf;
  Size sig_len;
  Size sig_cap;
  uint64* sig_off;
  Size sig_rows_cap;
  int threads;
  Size budget;            // bytes of maintenance_work_mem
  HnswBuilderOwner* owner;
  MemoryContext build_ctx;  // owns the builder and the page-writing arrays
  MemoryContext tuple_ctx;  // reset after every heap tuple
  // SQ8: the quantizer, trained by the first scan (sq8_trained once finished).
  bool training;          // the first scan is running
  bool sq8_trained;
  vecext::Sq8Trainer trainer;  // lo/scale below hold its ranges, then the params
  float* sq8_lo;
  float* sq8_scale;
  double loaded;          // rows given to the builder
  double inserted;        // rows inserted one by one after the graph was written
  bool written;           // the in-memory graph is on pages: later rows go through HnswInsertElement
  double train_seconds;   // timings for the DEBUG1 summary
  double graph_seconds;
  double pages_seconds;
};

static double HnswSecondsSince(instr_time start) {
  instr_time now;
  INSTR_TIME_SET_CURRENT(now);
  INSTR_TIME_SUBTRACT(now, start);
  return INSTR_TIME_GET_DOUBLE(now);
}

extern "C" {
static void HnswBuilderFree(void* arg);
static void HnswValueBuilderFree(void* arg);
static void HnswBuildCallback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive,
                              void* state);
static bool HnswStopRequested(const void* arg);
}

// Memory context reset callback: frees the builder (its destructor frees
// memory only and cannot fail).
static void HnswBuilderFree(void* arg) {
  VECEXT_GUARD("hnsw build cleanup", {
    HnswBuilderOwner* owner = (HnswBuilderOwner*)arg;
    GraphBuilder::Destroy(owner->builder);
    owner->builder = NULL;
    return;
  });
}

static void HnswValueBuilderFree(void* arg) {
  VECEXT_GUARD("hnsw build cleanup", {
    HnswValueOwner* owner = (HnswValueOwner*)arg;
    ValueListBuilder::Destroy(owner->builder);
    owner->builder = NULL;
    return;
  });
}

// Polled by the build threads (any thread): whether CHECK_FOR_INTERRUPTS
// has something to do. Reads flags only.
static bool HnswStopRequested(const void* arg) {
  return InterruptPending && InterruptHoldoffCount == 0 && CritSectionCount == 0;
}

// ERROR for a failed core call.
static void HnswBuildCheck(HnswBuildState* bs, Status st, const char* what) {
  if (st.ok()) return;
  const char* detail = bs->owner != NULL && bs->owner->builder != NULL ? bs->owner->builder->ErrorDetail() : "";
  ereport(ERROR,
          (errcode(st.code == StatusCode::kOutOfMemory ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INTERNAL_ERROR),
           errmsg("could not build hnsw index \"%s\": %s (%s)", RelationGetRelationName(bs->index), st.message, what),
           detail[0] != '\0' ? errdetail("%s", detail) : 0));
}

// The most rows the builder may hold, from maintenance_work_mem (the element
// TIDs of the page writer count too).
static Size HnswBuildCapacity(HnswBuildState* bs, int dim) {
  const Size fixed = vecext::hnsw::BuildFixedBytes((size_t)dim, bs->m, bs->sq8_trained);
  // A metadata signature takes a few dozen bytes (counted as 64) and its offset.
  const Size per = vecext::hnsw::BuildBytesPerElement((size_t)dim, bs->m, bs->threads, bs->sq8_trained) +
                   sizeof(ItemPointerData) + (bs->filter ? 64 + sizeof(uint64) : 0) +
                   (bs->value_lists > 0 ? vecext::hnsw::ValueListBytesPerRow(bs->value_lists, bs->value_slots) : 0);
  if (bs->budget <= fixed) return 0;
  Size rows = (bs->budget - fixed) / per;
  return Min(rows, (Size)UINT32_MAX - 1);
}

// Creates the builder for vectors of `dim` dimensions, owned by build_ctx.
static void HnswBuildCreateBuilder(HnswBuildState* bs, int dim) {
  HnswBuilderOwner* owner = (HnswBuilderOwner*)MemoryContextAllocZero(bs->build_ctx, sizeof(HnswBuilderOwner));
  vecext::hnsw::BuildParams params;
  params.dim = (size_t)dim;
  params.metric = (vecext::Metric)bs->metric;
  params.m = bs->m;
  params.ef_construction = bs->ef_construction;
  params.max_level = HnswMaxLevelForM(bs->m, bs->link_codes, bs->value_lists, bs->value_slots);
  params.capacity = HnswBuildCapacity(bs, dim);
  params.seed = HNSW_BUILD_SEED;
  params.keep_pruned = hnsw_build_keep_pruned;
  // Indexes with link codes: each element's own level-0 list takes up to 2m
  // links, not m (the later row-by-row inserts choose 2m already), so that
  // two-hop filtered scans find the matching rows connected (docs/filtering.md).
  params.dense_level0 = bs->link_codes;
  if (bs->sq8_trained) {  // the builder holds codes (the builder copies the params)
    params.sq8.dim = (uint32_t)dim;
    params.sq8.lo = bs->sq8_lo;
    params.sq8.scale = bs->sq8_scale;
  }
  GraphBuilder* builder = NULL;
  Status st = GraphBuilder::Create(params, &builder);
  // No Postgres call between Create and the callback's registration.
  owner->builder = builder;
  owner->callback.func = HnswBuilderFree;
  owner->callback.arg = owner;
  MemoryContextRegisterResetCallback(bs->build_ctx, &owner->callback);
  bs->owner = owner;
  HnswBuildCheck(bs, st, "creating the graph builder");
}

// Inserts the loaded rows into the in-memory graph, in chunks.
static void HnswBuildGraph(HnswBuildState* bs) {
  GraphBuilder* b = bs->owner->builder;
  const size_t n = b->rows();
  const size_t chunk = (size_t)HNSW_BUILD_CHUNK_ROWS * (size_t)bs->threads;
  const int progress_index[] = {PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_CREATEIDX_TUPLES_TOTAL,
                                PROGRESS_CREATEIDX_TUPLES_DONE};
  const int64 progress_values[] = {HNSW_PHASE_GRAPH, (int64)n, 0};
  pgstat_progress_update_multi_param(3, progress_index, progress_values);
  size_t done = b->inserted();
  while (done < n) {
    const size_t end = Min(n, done + chunk);
    Status st = b->AddRows(done, end, bs->threads, HnswStopRequested, NULL, &done);
    CHECK_FOR_INTERRUPTS();
    if (st.code != StatusCode::kCancelled) HnswBuildCheck(bs, st, "inserting into the graph");
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)done);
  }
  // Rows the neighbour heuristic left without in-links get one (see
  // GraphBuilder::EnsureReachable): a row the scan cannot reach is never returned.
  size_t added = 0, unreachable = 0;
  HnswBuildCheck(bs, b->EnsureReachable(&added, &unreachable), "linking unreachable rows");
  elog(DEBUG1, "hnsw build of \"%s\": %zu links added to reach every row (%zu still unreachable)",
       RelationGetRelationName(bs->index), added, unreachable);
}

// Indexes with value lists: counts the metadata values of the rows in the
// graph, chooses the directory (values of at least max(200, n / 500) rows
// and at most n / 10) and builds, for each directory value, a graph over
// the rows that have it (src/core/hnsw_value_lists.h). Its level-0 lists
// become the rows' value lists when the pages are written.
static void HnswBuildValueLists(HnswBuildState* bs) {
  GraphBuilder* b = bs->owner->builder;
  const size_t n = b->inserted();
  HnswValueOwner* owner = (HnswValueOwner*)MemoryContextAllocZero(bs->build_ctx, sizeof(HnswValueOwner));
  vecext::hnsw::ValueListParams params;
  params.lists = bs->value_lists;
  params.slots = bs->value_slots;
  params.min_rows = Max((size_t)HNSW_VALUE_MIN_ROWS, n / HNSW_VALUE_MIN_FRACTION);
  params.max_rows = Max(params.min_rows, n / HNSW_VALUE_MAX_FRACTION);
  params.max_directory = HNSW_VALUE_DIRECTORY_MAX;
  params.ef_construction = bs->ef_construction;
  params.seed = HNSW_BUILD_SEED;
  params.metric = (vecext::Metric)bs->metric;
  if (b->quantized()) {
    params.sq8.dim = (uint32_t)bs->dimensions;
    params.sq8.lo = bs->sq8_lo;
    params.sq8.scale = bs->sq8_scale;
  }
  ValueListBuilder* vb = NULL;
  Status st = ValueListBuilder::Create(params, b, &vb);
  // No Postgres call between Create and the callback's registration.
  owner->builder = vb;
  owner->callback.func = HnswValueBuilderFree;
  owner->callback.arg = owner;
  MemoryContextRegisterResetCallback(bs->build_ctx, &owner->callback);
  bs->vowner = owner;
  HnswBuildCheck(bs, st, "creating the value list builder");
  for (size_t i = 0; i < n; i++) {
    const size_t row = (size_t)i;
    HnswBuildCheck(bs,
                   vb->AddSignature(row, (const uint8_t*)bs->sig_buf + bs->sig_off[row],
                                    (size_t)(bs->sig_off[row + 1] - bs->sig_off[row])),
                   "counting metadata values");
    if ((i & 65535) == 65535) CHECK_FOR_INTERRUPTS();
  }
  HnswBuildCheck(bs, vb->Plan(), "choosing the value lists");
  const size_t groups = vb->DirectorySize();
  const int progress_index[] = {PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_CREATEIDX_TUPLES_TOTAL,
                                PROGRESS_CREATEIDX_TUPLES_DONE};
  const int64 progress_values[] = {HNSW_PHASE_VALUES, (int64)groups, 0};
  pgstat_progress_update_multi_param(3, progress_index, progress_values);
  for (size_t g = 0; g < groups; g++) {
    st = vb->BuildGroup(g, bs->threads, HnswStopRequested, NULL);
    CHECK_FOR_INTERRUPTS();
    HnswBuildCheck(bs, st, "building value lists");
    pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)(g + 1));
  }
  elog(DEBUG1, "hnsw build of \"%s\": %zu frequent metadata values, %zu rows with value lists, %zu links",
       RelationGetRelationName(bs->index), groups, vb->RowsWithKeys(), vb->LinksWritten());
}

// ---- Page layout -----------------------------------------------------------
// The same placement runs twice: a dry run assigns every element's TID (so
// that links can be written), then the real run writes the pages.

struct HnswPageWriter {
  Relation index;
  bool dry;               // assign TIDs only
  BlockNumber blkno;      // current page (0: none yet; block 0 is the metapage)
  BlockNumber last;       // the last element page (known after the dry run)
  BlockNumber base;       // blocks up to this one are not the writer's (metapage, SQ8 parameters)
  Size free;              // free bytes on the current page
  OffsetNumber next;      // next offset on the current page
  Page page;              // the page image (real run)
};

// Writes the current page image as the next block of the index.
static void HnswWriterFlush(HnswPageWriter* w) {
  if (w->dry || w->blkno <= w->base) return;
  HnswPageGetOpaque(w->page)->next = w->blkno < w->last ? w->blkno + 1 : InvalidBlockNumber;
  Buffer buf = ReadBufferExtended(w->index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
  if (BufferGetBlockNumber(buf) != w->blkno)
    elog(ERROR, "hnsw build of \"%s\": expected to extend to block %u, got %u", RelationGetRelationName(w->index),
         w->blkno, BufferGetBlockNumber(buf));
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  memcpy(BufferGetPage(buf), w->page, BLCKSZ);
  MarkBufferDirty(buf);
  UnlockReleaseBuffer(buf);
}

static void HnswWriterNewPage(HnswPageWriter* w) {
  HnswWriterFlush(w);
  w->blkno++;
  w->free = HNSW_EMPTY_PAGE_FREE;
  w->next = FirstOffsetNumber;
  if (!w->dry) HnswInitPage(w->page, HNSW_PAGE_ELEMENT);
}

// Places an item of `size` bytes on the current page (which has room);
// returns its TID. In the real run `item` is added to the page image.
static void HnswWriterAdd(HnswPageWriter* w, const void* item, Size size, ItemPointer tid) {
  ItemPointerSet(tid, w->blkno, w->next);
  if (!w->dry) {
    OffsetNumber off = PageAddItem(w->page, (Item)item, size, InvalidOffsetNumber, false, false);
    if (off != w->next)
      elog(ERROR, "hnsw build of \"%s\": item placed at offset %u of block %u, planned %u",
           RelationGetRelationName(w->index), off, w->blkno, w->next);
  }
  w->next++;
  w->free -= MAXALIGN(size) + sizeof(ItemIdData);
}

static bool HnswWriterHasRoom(HnswPageWriter* w, Size size, int items) {
  return w->blkno > w->base && w->free >= size + (Size)items * sizeof(ItemIdData);
}

// The dry run's part for one element: its neighbour tuple, then its element
// tuple, on one page when both fit on an empty page (else each on the first
// page with room). *etid is the element tuple's TID, *ntid the neighbour tuple's.
static void HnswWriterPlace(HnswPageWriter* w, Size esize, Size nsize, ItemPointer etid, ItemPointer ntid) {
  const Size pair = MAXALIGN(esize) + MAXALIGN(nsize);
  if (pair + 2 * sizeof(ItemIdData) <= HNSW_EMPTY_PAGE_FREE) {
    if (!HnswWriterHasRoom(w, pair, 2)) HnswWriterNewPage(w);
    HnswWriterAdd(w, NULL, nsize, ntid);
    HnswWriterAdd(w, NULL, esize, etid);
  } else {
    if (!HnswWriterHasRoom(w, MAXALIGN(nsize), 1)) HnswWriterNewPage(w);
    HnswWriterAdd(w, NULL, nsize, ntid);
    if (!HnswWriterHasRoom(w, MAXALIGN(esize), 1)) HnswWriterNewPage(w);
    HnswWriterAdd(w, NULL, esize, etid);
  }
}

// The same placement, writing the tuples. The element tuple's neighbortid
// is set here, once the neighbour tuple's TID is known.
static void HnswWriterWrite(HnswPageWriter* w, HnswElementTuple etup, Size esize, HnswNeighborTuple ntup,
                            Size nsize, ItemPointer etid_planned) {
  const Size pair = MAXALIGN(esize) + MAXALIGN(nsize);
  ItemPointerData etid;
  if (pair + 2 * sizeof(ItemIdData) <= HNSW_EMPTY_PAGE_FREE) {
    if (!HnswWriterHasRoom(w, pair, 2)) HnswWriterNewPage(w);
    HnswWriterAdd(w, ntup, nsize, &etup->neighbortid);
    HnswWriterAdd(w, etup, esize, &etid);
  } else {
    if (!HnswWriterHasRoom(w, MAXALIGN(nsize), 1)) HnswWriterNewPage(w);
    HnswWriterAdd(w, ntup, nsize, &etup->neighbortid);
    if (!HnswWriterHasRoom(w, MAXALIGN(esize), 1)) HnswWriterNewPage(w);
    HnswWriterAdd(w, etup, esize, &etid);
  }
  if (!ItemPointerEquals(&etid, etid_planned))
    elog(ERROR, "hnsw build of \"%s\": element written at (%u,%u), planned (%u,%u)",
         RelationGetRelationName(w->index), ItemPointerGetBlockNumber(&etid), ItemPointerGetOffsetNumber(&etid),
         ItemPointerGetBlockNumber(etid_planned), ItemPointerGetOffsetNumber(etid_planned));
}

// Fills a metapage image.
static void HnswFillMetaPage(HnswBuildState* bs, Page page, ItemPointer entry, int entry_level,
                             BlockNumber insert_page) {
  HnswInitPage(page, HNSW_PAGE_META);
  HnswMetaPage meta = HnswPageGetMeta(page);
  meta->magic = HNSW_MAGIC;
  meta->version = HNSW_FORMAT_VERSION;
  meta->dimensions = (uint32)Max(bs->dimensions, 0);
  meta->m = (uint16)bs->m;
  meta->ef_construction = (uint16)bs->ef_construction;
  meta->metric = (uint8)bs->metric;
  meta->quantization = (uint8)bs->quantization;
  meta->flags = (bs->filter ? HNSW_META_FILTER : 0) | (bs->link_codes ? HNSW_META_LINK_CODES : 0) |
                (bs->value_lists > 0 ? HNSW_META_VALUE_LISTS : 0);
  meta->filter_max_bytes = bs->filter ? HNSW_FILTER_DEFAULT_MAX_BYTES : 0;
  if (bs->value_lists > 0) {
    meta->value_lists = (uint8)bs->value_lists;
    meta->value_slots = (uint8)bs->value_slots;
    // The directory follows; pd_lower covers it.
    HnswValueDirectoryData* dir = (HnswValueDirectoryData*)((char*)meta + HnswValueDirectoryOffset());
    const ValueListBuilder* vb = bs->vowner != NULL ? bs->vowner->builder : NULL;
    dir->count = vb != NULL ? (uint32)Min(vb->DirectorySize(), (size_t)HNSW_VALUE_DIRECTORY_MAX) : 0;
    dir->unused = 0;
    if (dir->count > 0) memcpy((char*)dir + sizeof(HnswValueDirectoryData), vb->Directory(), 16 * (Size)dir->count);
    ((PageHeader)page)->pd_lower =
        (LocationIndex)((char*)dir + sizeof(HnswValueDirectoryData) + 16 * (Size)dir->count - (char*)page);
  }
  meta->entry_level = (int16)entry_level;
  if (entry != NULL) {
    meta->entry = *entry;
  } else {
    ItemPointerSetInvalid(&meta->entry);
  }
  meta->insert_page = insert_page;
}

// The element tuple size of builder row i (esize without a metadata column).
static Size HnswBuildElementSize(HnswBuildState* bs, Size esize, size_t i) {
  if (!bs->filter) return esize;
  return HnswElementSizeWithSignature(bs->quantization, bs->dimensions, (Size)(bs->sig_off[i + 1] - bs->sig_off[i]));
}

// Writes the metapage and the element pages of the in-memory graph (which
// may be empty or absent) into the empty index.
static void HnswWritePages(HnswBuildState* bs) {
  GraphBuilder* b = bs->owner != NULL ? bs->owner->builder : NULL;
  const size_t n = b != NULL ? b->inserted() : 0;
  const int m = bs->m;
  const int dim = bs->dimensions;
  const int progress_index[] = {PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_CREATEIDX_TUPLES_TOTAL,
                                PROGRESS_CREATEIDX_TUPLES_DONE};
  const int64 progress_values[] = {HNSW_PHASE_WRITE, (int64)n, 0};
  pgstat_progress_update_multi_param(3, progress_index, progress_values);

  // SQ8: the parameters, trained by the first scan on every row of the
  // table (so none clamps), go on the pages right after the metapage. A
  // builder of floats (the first scan found no row, but the second did:
  // only under CREATE INDEX CONCURRENTLY) trains on the rows of the graph.
  unsigned char* blob = NULL;
  Size blob_bytes = 0;
  BlockNumber params_pages = 0;
  if (n > 0 && bs->quantization == HNSW_QUANT_SQ8) {
    float* lo = bs->sq8_lo;
    float* scale = bs->sq8_scale;
    if (!b->quantized()) {
      lo = (float*)palloc(sizeof(float) * (Size)dim);
      scale = (float*)palloc(sizeof(float) * (Size)dim);
      vecext::Sq8Trainer t;
      HnswBuildCheck(bs, vecext::Sq8TrainerInit(&t, (uint32_t)dim, (vecext::Metric)bs->metric, lo, scale),
                     "training SQ8");
      for (size_t i = 0; i < n; i++) (void)vecext::Sq8TrainerAdd(&t, b->Vector(i));  // rows were validated
      HnswBuildCheck(bs, vecext::Sq8TrainerFinish(&t), "training SQ8");
    }
    vecext::Sq8Params p;
    p.dim = (uint32_t)dim;
    p.lo = lo;
    p.scale = scale;
    blob_bytes = vecext::Sq8SerializedBytes((uint32_t)dim);
    blob = (unsigned char*)palloc(blob_bytes);
    HnswBuildCheck(bs, vecext::Sq8Serialize(p, blob, blob_bytes), "storing SQ8");
    params_pages = HnswSq8ParamsPages(blob_bytes);
  }

  HnswPageWriter w;
  memset(&w, 0, sizeof(w));
  w.index = bs->index;
  w.dry = true;
  w.blkno = params_pages;  // element pages start after the parameter pages
  w.base = params_pages;
  ItemPointerData* etids = NULL;
  const Size esize = HNSW_ELEMENT_TUPLE_SIZE_Q(bs->quantization, dim);
  // The order rows go to pages in: graph neighbourhoods share pages
  // (src/core/hnsw_layout.h), or row (heap) order. page_start[j]: order[j]
  // begins a new page.
  uint32_t* order = NULL;
  uint8_t* page_start = NULL;
  if (n > 0) {
    order = (uint32_t*)MemoryContextAllocHuge(bs->build_ctx, sizeof(uint32_t) * n);
    page_start = (uint8_t*)MemoryContextAllocHuge(bs->build_ctx, n);
    if (hnsw_build_cluster_pages) {
      uint32_t* row_bytes = (uint32_t*)MemoryContextAllocHuge(bs->build_ctx, sizeof(uint32_t) * n);
      for (size_t i = 0; i < n; i++) {
        const Size pair = MAXALIGN(HnswBuildElementSize(bs, esize, i)) +
                          MAXALIGN(HnswNeighborTupleSizeV(HnswNeighborSlots(b->Level(i), m), bs->link_codes, bs->value_lists, bs->value_slots)) +
                          2 * sizeof(ItemIdData);
        row_bytes[i] = (uint32_t)Min(pair, (Size)HNSW_EMPTY_PAGE_FREE + 1);  // a larger pair splits (HnswWriterPlace)
      }
      HnswBuildCheck(bs, vecext::hnsw::PageLayout(*b, row_bytes, HNSW_EMPTY_PAGE_FREE, order, page_start),
                     "laying out the index pages");
      pfree(row_bytes);
      if (message_level_is_interesting(DEBUG1))
        elog(DEBUG1, "hnsw build of \"%s\": %.1f%% of level-0 links within a page",
             RelationGetRelationName(bs->index), 100.0 * vecext::hnsw::SamePageLinkFraction(*b, order, page_start));
    } else {
      for (size_t i = 0; i < n; i++) {
        order[i] = (uint32_t)i;
        page_start[i] = 0;
      }
    }
    etids = (ItemPointerData*)MemoryContextAllocHuge(bs->build_ctx, sizeof(ItemPointerData) * n);
    for (size_t j = 0; j < n; j++) {
      const size_t i = order[j];
      if (page_start[j] && w.next > FirstOffsetNumber) HnswWriterNewPage(&w);
      ItemPointerData ntid;
      HnswWriterPlace(&w, HnswBuildElementSize(bs, esize, i),
                      HnswNeighborTupleSizeV(HnswNeighborSlots(b->Level(i), m), bs->link_codes, bs->value_lists,
                                             bs->value_slots),
                      &etids[i], &ntid);
    }
  }
  const BlockNumber last = w.blkno;  // 0 when there are no element pages

  // The metapage, block 0.
  Page page = (Page)palloc(BLCKSZ);
  uint32_t entry_row = 0;
  int entry_level = -1;
  const bool has_entry = n > 0 && b->EntryPoint(&entry_row, &entry_level);
  HnswFillMetaPage(bs, page, has_entry ? &etids[entry_row] : NULL, has_entry ? entry_level : -1,
                   last > 0 ? last : InvalidBlockNumber);
  Buffer buf = ReadBufferExtended(bs->index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
  if (BufferGetBlockNumber(buf) != HNSW_METAPAGE_BLKNO)
    elog(ERROR, "hnsw build of \"%s\": the index is not empty", RelationGetRelationName(bs->index));
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  memcpy(BufferGetPage(buf), page, BLCKSZ);
  MarkBufferDirty(buf);
  UnlockReleaseBuffer(buf);
  if (n == 0) {
    pfree(page);
    return;
  }
  HnswStore store;
  if (blob != NULL) HnswWriteSq8Params(bs->index, blob, blob_bytes, true);
  HnswStoreInit(&store, bs->index, dim, m, bs->metric, bs->quantization, CurrentMemoryContext, 0);
  if (bs->quantization == HNSW_QUANT_SQ8 && store.sq8.dim != (uint32)dim)
    elog(ERROR, "hnsw build of \"%s\": the SQ8 parameters were not written", RelationGetRelationName(bs->index));
  // A builder of codes holds each element's data as the store lays it out.
  if (b->quantized() && (Size)store.data_size != b->ElementBytes())
    elog(ERROR, "hnsw build of \"%s\": element of %zu bytes, the store expects %zu", RelationGetRelationName(bs->index),
         b->ElementBytes(), (size_t)store.data_size);

  // The element pages.
  const int max_level = HnswMaxLevelForM(m, bs->link_codes, bs->value_lists, bs->value_slots);
  const Size esize_max = bs->filter ? HnswElementSizeWithSignature(bs->quantization, dim, HNSW_FILTER_MAX_MAX_BYTES)
                                    : esize;
  HnswElementTuple etup = (HnswElementTuple)palloc0(esize_max);
  HnswNeighborTuple ntup = (HnswNeighborTuple)palloc0(
      HnswNeighborTupleSizeV(HnswNeighborSlots(max_level, m), bs->link_codes, bs->value_lists, bs->value_slots));
  const ValueListBuilder* vb = bs->vowner != NULL ? bs->vowner->builder : NULL;
  uint32_t* vlinks = (uint32_t*)palloc(sizeof(uint32_t) * (Size)Max(bs->value_slots, 1));
  // Link codes: every row's, computed once from its signature.
  uint64* row_codes = NULL;
  if (bs->link_codes) {
    row_codes = (uint64*)MemoryContextAllocHuge(bs->build_ctx, sizeof(uint64) * n);
    for (size_t i = 0; i < n; i++)
      row_codes[i] = vecext::meta::MakeLinkCode((const uint8_t*)bs->sig_buf + bs->sig_off[i],
                                                (size_t)(bs->sig_off[i + 1] - bs->sig_off[i]));
  }
  uint32_t* links = (uint32_t*)palloc(sizeof(uint32_t) * 2 * (Size)m);
  memset(&w, 0, sizeof(w));
  w.index = bs->index;
  w.dry = false;
  w.last = last;
  w.page = page;
  w.blkno = params_pages;
  w.base = params_pages;
  for (size_t j = 0; j < n; j++) {
    const size_t i = order[j];
    if (page_start[j] && w.next > FirstOffsetNumber) HnswWriterNewPage(&w);
    const int level = b->Level(i);
    const int slots = HnswNeighborSlots(level, m);
    const Size nsize = HnswNeighborTupleSizeV(slots, bs->link_codes, bs->value_lists, bs->value_slots);
    memset(ntup, 0, nsize);
    ntup->type = HNSW_NEIGHBOR_TUPLE;
    ntup->level = (uint8)level;
    ntup->count = (uint16)slots;
    for (int s = 0; s < slots; s++) ItemPointerSetInvalid(&ntup->ids[s]);
    for (int lc = 0; lc <= level; lc++) {
      const size_t count = b->Neighbors(i, lc, links);
      const int start = HnswLevelStart(lc, m);
      for (size_t k = 0; k < count && (int)k < HnswLevelSlots(lc, m); k++) {
        ntup->ids[start + k] = etids[links[k]];
        if (row_codes != NULL) HnswNeighborCodes(ntup)[start + k] = row_codes[links[k]];
      }
    }
    for (int j = 0; j < bs->value_lists; j++) {
      char* list = HnswNeighborValueList(ntup, j, bs->value_slots);
      ItemPointerData* ids = HnswValueListIds(list);
      const uint64 key = vb != NULL ? vb->Key(i, j) : 0;
      memcpy(list, &key, sizeof(key));
      for (int k = 0; k < bs->value_slots; k++) ItemPointerSetInvalid(&ids[k]);
      if (key == 0) continue;
      vb->Links(i, j, vlinks);
      for (int k = 0; k < bs->value_slots; k++)
        if (vlinks[k] != vecext::hnsw::kNoValueLink && vlinks[k] < n) ids[k] = etids[vlinks[k]];
    }
    const Size esize_i = HnswBuildElementSize(bs, esize, i);
    memset(etup, 0, esize_i);
    etup->type = HNSW_ELEMENT_TUPLE;
    etup->level = (uint8)level;
    etup->flags = 0;
    HnswUnpackTid(b->Payload(i), &etup->heaptid);
    if (b->quantized()) {
      memcpy(etup->vec, b->Element(i), b->ElementBytes());
    } else {
      HnswStoreEncode(&store, b->Vector(i), etup->vec);
    }
    if (bs->filter) {
      const uint16 len = (uint16)(bs->sig_off[i + 1] - bs->sig_off[i]);
      char* at = (char*)etup->vec + store.data_size;
      memcpy(at, &len, sizeof(len));
      memcpy(at + sizeof(len), bs->sig_buf + bs->sig_off[i], len);
    }
    HnswWriterWrite(&w, etup, esize_i, ntup, nsize, &etids[i]);
    if ((j & 1023) == 1023) {
      CHECK_FOR_INTERRUPTS();
      pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)(j + 1));
    }
  }
  HnswWriterFlush(&w);
  pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64)n);
  pfree(links);
  pfree(vlinks);
  pfree(ntup);
  pfree(etup);
  pfree(page);
  pfree(etids);
}

// Builds the graph of the rows loaded so far, writes it, and frees the builder.
static void HnswBuildFlush(HnswBuildState* bs) {
  instr_time start;
  INSTR_TIME_SET_CURRENT(start);
  if (bs->owner != NULL && bs->owner->builder != NULL) {
    HnswBuildGraph(bs);
    if (bs->value_lists > 0 && bs->owner->builder->inserted() > 0) HnswBuildValueLists(bs);
  }
  bs->graph_seconds = HnswSecondsSince(start);
  INSTR_TIME_SET_CURRENT(start);
  HnswWritePages(bs);
  bs->pages_seconds = HnswSecondsSince(start);
  if (bs->owner != NULL) {
    GraphBuilder::Destroy(bs->owner->builder);
    bs->owner->builder = NULL;
  }
  if (bs->vowner != NULL) {
    ValueListBuilder::Destroy(bs->vowner->builder);
    bs->vowner->builder = NULL;
  }
  bs->written = true;
}

// The first row that does not fit: write what fits, then go on row by row.
static void HnswBuildOverflow(HnswBuildState* bs) {
  const Size per_row =
      vecext::hnsw::BuildBytesPerElement((size_t)bs->dimensions, bs->m, bs->threads, bs->sq8_trained) +
      sizeof(ItemPointerData);
  ereport(NOTICE,
          (errmsg("hnsw graph no longer fits into maintenance_work_mem after %.0f tuples", bs->loaded),
           errdetail("The remaining tuples of index \"%s\" are inserted one at a time, which is much slower.",
                     RelationGetRelationName(bs->index)),
           errhint("Increase maintenance_work_mem to build in memory: the graph takes about %zu bytes per row.",
                   (size_t)per_row)));
  HnswBuildFlush(bs);
  pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_INSERT);
}

// Keeps the signature of builder row `row` (rows arrive in order).
static void HnswBuildKeepSignature(HnswBuildState* bs, size_t row, const bytea* sig) {
  const Size len = VARSIZE_ANY_EXHDR(sig);
  if (bs->sig_off == NULL) {
    bs->sig_rows_cap = 1024;
    bs->sig_off = (uint64*)MemoryContextAllocHuge(bs->build_ctx, sizeof(uint64) * (bs->sig_rows_cap + 1));
    bs->sig_off[0] = 0;
    bs->sig_cap = 64 * 1024;
    bs->sig_buf = (char*)MemoryContextAllocHuge(bs->build_ctx, bs->sig_cap);
  }
  if (row + 1 > bs->sig_rows_cap) {
    bs->sig_rows_cap *= 2;
    bs->sig_off = (uint64*)repalloc_huge(bs->sig_off, sizeof(uint64) * (bs->sig_rows_cap + 1));
  }
  if (bs->sig_len + len > bs->sig_cap) {
    while (bs->sig_len + len > bs->sig_cap) bs->sig_cap *= 2;
    bs->sig_buf = (char*)repalloc_huge(bs->sig_buf, bs->sig_cap);
  }
  memcpy(bs->sig_buf + bs->sig_len, VARDATA_ANY(sig), len);
  bs->sig_len += len;
  bs->sig_off[row + 1] = bs->sig_len;
}

// The first scan of an SQ8 build: the row's vector widens the trained ranges.
static void HnswBuildTrainRow(HnswBuildState* bs, const Vector* v) {
  if (bs->sq8_lo == NULL) {
    bs->sq8_lo = (float*)MemoryContextAlloc(bs->build_ctx, sizeof(float) * (Size)v->dim);
    bs->sq8_scale = (float*)MemoryContextAlloc(bs->build_ctx, sizeof(float) * (Size)v->dim);
    HnswBuildCheck(bs, vecext::Sq8TrainerInit(&bs->trainer, (uint32_t)v->dim, (vecext::Metric)bs->metric,
                                              bs->sq8_lo, bs->sq8_scale),
                   "training SQ8");
  }
  // Errors: a zero vector under cosine (not indexed; HnswPrepareValue skips
  // those already) or a non-finite element (the vector type has none).
  (void)vecext::Sq8TrainerAdd(&bs->trainer, v->x);
}

static void HnswBuildCallbackImpl(Relation index, ItemPointer tid, Datum* values, bool* isnull,
                                  HnswBuildState* bs) {
  if (isnull[0]) return;
  MemoryContext old = MemoryContextSwitchTo(bs->tuple_ctx);
  Vector* v = HnswPrepareValue(index, values[0], bs->dimensions);
  if (v != NULL) {
    if (bs->dimensions <= 0) bs->dimensions = v->dim;  // a column without typmod: the first row decides
    if (bs->training) {
      HnswBuildTrainRow(bs, v);
    } else if (!bs->written) {
      if (bs->owner == NULL) HnswBuildCreateBuilder(bs, v->dim);
      size_t row = 0;
      Status st = bs->owner->builder->Append(v->x, HnswPackTid(tid), &row);
      if (st.ok()) {
        bs->loaded++;
        if (bs->filter) HnswBuildKeepSignature(bs, row, HnswRowSignature(index, values[1], isnull[1]));
      } else if (st.code == StatusCode::kLimitExceeded) {
        HnswBuildOverflow(bs);
      } else if (st.code != StatusCode::kInvalidInput) {  // kInvalidInput: zero norm, not indexed
        HnswBuildCheck(bs, st, "loading a row");
      }
    }
    if (!bs->training && bs->written) {
      HnswInsertElement(index, bs->heap, v->x, v->dim, tid, true,
                        bs->filter ? HnswRowSignature(index, values[1], isnull[1]) : NULL);
      bs->inserted++;
    }
  }
  MemoryContextSwitchTo(old);
  MemoryContextReset(bs->tuple_ctx);
}

static void HnswBuildCallback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool alive,
                              void* state) {
  VECEXT_GUARD("hnswbuild", HnswBuildCallbackImpl(index, tid, values, isnull, (HnswBuildState*)state); return;);
}

// An hnsw index has a vector column, optionally followed by one jsonb
// metadata column (jsonb_hnsw_ops) for filtered search.
static void HnswCheckColumns(Relation index) {
  const int natts = RelationGetDescr(index)->natts;
  if (index->rd_opcintype[0] == JSONBOID)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("the first column of hnsw index \"%s\" must be a vector column",
                           RelationGetRelationName(index)),
                    errhint("Put the jsonb metadata column second: USING hnsw (embedding vector_l2_ops, metadata)")));
  if (natts > 2 || (natts == 2 && index->rd_opcintype[1] != JSONBOID))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("hnsw index \"%s\" may have one jsonb metadata column after its vector column",
                           RelationGetRelationName(index))));
}

static IndexBuildResult* HnswBuildImpl(Relation heap, Relation index, IndexInfo* indexInfo) {
  if (RelationGetNumberOfBlocks(index) != 0)
    elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
  HnswCheckColumns(index);

  HnswBuildState* bs = (HnswBuildState*)palloc0(sizeof(HnswBuildState));
  bs->heap = heap;
  bs->index = index;
  bs->dimensions = Max(TupleDescAttr(index->rd_att, 0)->atttypmod, 0);
  bs->m = HnswGetM(index);
  bs->ef_construction = HnswGetEfConstruction(index);
  bs->metric = HnswGetMetric(index);
  bs->quantization = HnswGetQuantization(index);
  bs->filter = HnswIndexHasFilter(index);
  bs->link_codes = HnswGetLinkCodes(index);
  bs->value_lists = HnswGetValueLists(index);
  bs->value_slots = HnswValueSlotsForM(bs->m);
  if (bs->value_lists > 0 && !bs->filter)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("hnsw index \"%s\": value_lists needs a jsonb metadata column", RelationGetRelationName(index)),
                    errhint("Index (vector_column, jsonb_column), or drop the value_lists option.")));
  if (bs->link_codes && !bs->filter)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("hnsw index \"%s\": link_codes needs a jsonb metadata column", RelationGetRelationName(index)),
                    errhint("Index (vector_column, jsonb_column), or drop the link_codes option.")));
  bs->threads = Min(max_parallel_maintenance_workers + 1, HNSW_BUILD_MAX_THREADS);
  bs->budget = (Size)maintenance_work_mem * 1024;
  bs->build_ctx = AllocSetContextCreate(CurrentMemoryContext, "hnsw build", ALLOCSET_DEFAULT_SIZES);
  bs->tuple_ctx = AllocSetContextCreate(bs->build_ctx, "hnsw build tuple", ALLOCSET_DEFAULT_SIZES);

  instr_time start;
  if (bs->quantization == HNSW_QUANT_SQ8) {
    // SQ8: train on a first scan, so that the builder can hold codes. A
    // second scan costs less than the memory it saves (docs/quantization.md).
    // Under CREATE INDEX CONCURRENTLY the second scan may see rows the first
    // did not: those clamp to the trained range, like later inserts.
    INSTR_TIME_SET_CURRENT(start);
    pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_TRAIN);
    bs->training = true;
    (void)table_index_build_scan(heap, index, indexInfo, true, true, HnswBuildCallback, bs, NULL);
    bs->training = false;
    if (bs->sq8_lo != NULL && bs->trainer.count > 0) {
      HnswBuildCheck(bs, vecext::Sq8TrainerFinish(&bs->trainer), "training SQ8");
      bs->sq8_trained = true;
    }
    bs->train_seconds = HnswSecondsSince(start);
  }
  INSTR_TIME_SET_CURRENT(start);
  pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
  double reltuples = table_index_build_scan(heap, index, indexInfo, true, true, HnswBuildCallback, bs, NULL);
  const double scan_seconds = HnswSecondsSince(start);  // includes the flush and inserts of an overflow
  if (!bs->written) HnswBuildFlush(bs);

  INSTR_TIME_SET_CURRENT(start);
  if (RelationNeedsWAL(index))
    log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
  elog(DEBUG1,
       "hnsw build of \"%s\": %.0f rows in memory (%s), %.0f inserted one by one; SQ8 training scan %.2f s, "
       "scan %.2f s, graph %.2f s (%d threads), pages %.2f s, WAL %.2f s",
       RelationGetRelationName(index), bs->loaded, bs->sq8_trained ? "SQ8 codes" : "floats", bs->inserted,
       bs->train_seconds, scan_seconds, bs->graph_seconds, bs->threads, bs->pages_seconds, HnswSecondsSince(start));

  IndexBuildResult* result = (IndexBuildResult*)palloc0(sizeof(IndexBuildResult));
  result->heap_tuples = reltuples;
  result->index_tuples = bs->loaded + bs->inserted;
  MemoryContextDelete(bs->build_ctx);  // frees the builder through its callback
  pfree(bs);
  return result;
}

IndexBuildResult* hnswbuild(Relation heap, Relation index, IndexInfo* indexInfo) {
  VECEXT_GUARD("hnswbuild", return HnswBuildImpl(heap, index, indexInfo););
}

// The init fork of an unlogged index: an empty index (a metapage), written
// and WAL-logged directly (init forks are always logged) and synced.
static void HnswBuildEmptyImpl(Relation index) {
  HnswCheckColumns(index);
  HnswBuildState bs;
  memset(&bs, 0, sizeof(bs));
  bs.index = index;
  bs.dimensions = Max(TupleDescAttr(index->rd_att, 0)->atttypmod, 0);
  bs.m = HnswGetM(index);
  bs.ef_construction = HnswGetEfConstruction(index);
  bs.metric = HnswGetMetric(index);
  bs.quantization = HnswGetQuantization(index);
  bs.filter = HnswIndexHasFilter(index);
  bs.link_codes = bs.filter && HnswGetLinkCodes(index);
  bs.value_lists = bs.filter ? HnswGetValueLists(index) : 0;
  bs.value_slots = HnswValueSlotsForM(bs.m);
  Page page = (Page)palloc(BLCKSZ);
  HnswFillMetaPage(&bs, page, NULL, -1, InvalidBlockNumber);
  PageSetChecksumInplace(page, HNSW_METAPAGE_BLKNO);
  smgrwrite(RelationGetSmgr(index), INIT_FORKNUM, HNSW_METAPAGE_BLKNO, (char*)page, true);
  log_newpage(&(RelationGetSmgr(index))->smgr_rnode.node, INIT_FORKNUM, HNSW_METAPAGE_BLKNO, page, true);
  // The write bypassed shared buffers: a checkpoint may have passed our record.
  smgrimmedsync(RelationGetSmgr(index), INIT_FORKNUM);
  pfree(page);
}

void hnswbuildempty(Relation index) {
  VECEXT_GUARD("hnswbuildempty", HnswBuildEmptyImpl(index); return;);
}

// amphasename: the names of the build's sub-phases in pg_stat_progress_create_index.
char* hnswbuildphasename(int64 phasenum) {
  VECEXT_GUARD("hnswbuildphasename", {
    switch (phasenum) {
      case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
        return (char*)"initializing";
      case HNSW_PHASE_TRAIN:
        return (char*)"training SQ8 quantizer";
      case HNSW_PHASE_LOAD:
        return (char*)"loading tuples";
      case HNSW_PHASE_GRAPH:
        return (char*)"building graph";
      case HNSW_PHASE_WRITE:
        return (char*)"writing pages";
      case HNSW_PHASE_INSERT:
        return (char*)"inserting remaining tuples";
      case HNSW_PHASE_VALUES:
        return (char*)"building value lists";
      default:
        return NULL;
    }
  });
}
