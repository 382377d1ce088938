// The hnsw index access method: page layout, tuple formats, lock protocol,
// and the declarations shared between src/pg/hnsw*.cpp.
//
// ---------------------------------------------------------------------------
// PAGE LAYOUT (format version 1)
//
// Block 0 is the metapage (HnswMetaPageData at PageGetContents). Every other
// block is an element page holding two kinds of items, added with PageAddItem:
//   - element tuples  (HnswElementTupleData): one per indexed heap row; the
//     heap TID, the element's level, flags, the TID of its neighbour tuple,
//     and the vector used for graph traversal (float4[dim]).
//   - neighbour tuples (HnswNeighborTupleData): the element's links, a fixed
//     number of slots sized at creation: 2*m on level 0, m on each level
//     1..level. Unused slots hold an invalid TID.
// An element and its neighbour tuple are put on the same page whenever both
// fit, so expanding a candidate usually touches a page already in cache.
// Tuples never change size after creation: link updates overwrite slots in
// place. A neighbour tuple with count = 0 is a tombstone: vacuum writes it
// just before it removes an element, it is the only kind of neighbour tuple
// vacuum deletes, and readers treat it as "no links".
// The metapage lies below pd_lower (GenericXLog zeroes pd_lower..pd_upper).
// Levels are capped by HnswMaxLevelForM(m) so the largest neighbour tuple
// still fits on a page (m = 100 allows levels 0..11); vacuum deletes items with PageIndexTupleDeleteNoCompact, which keeps
// the other line pointers (TIDs) stable and frees the space for reuse.
//
// Every page ends with HnswPageOpaqueData (special space) whose last two
// bytes are HNSW_PAGE_ID, so pg_filedump and our checks can recognise pages.
//
// An element is named by its element tuple's TID, packed as an
// vecext::hnsw::ElementId = (block << 16) | offset (HnswPackTid/HnswUnpackTid).
//
// Readers must validate everything they follow: a link may point to an item
// that vacuum removed and an insert reused, or to an item that is now a
// neighbour tuple. Check ItemIdIsNormal, the tuple type byte, the level
// (a link on level l must lead to an element with level >= l) and sizes
// before use; skip what does not validate. Structural corruption (bad page
// id, bad magic, impossible sizes) is an ERROR naming the index and telling
// the user to REINDEX (ERRCODE_INDEX_CORRUPTED), never a crash.
//
// ---------------------------------------------------------------------------
// WAL
//
// Every change to a shared buffer after the build goes through GenericXLog
// (at most MAX_GENERIC_XLOG_PAGES pages per record). The build writes pages
// without WAL and then logs them all with log_newpage_range when the relation
// needs WAL. An insert WAL-logs every change before it returns, so a row
// whose transaction committed is linked into the graph after a crash.
//
// ---------------------------------------------------------------------------
// LOCK PROTOCOL
//
// 1. Entry point. The metapage holds the entry point (element TID + level).
//    Inserts hold the heavyweight page lock HNSW_UPDATE_LOCK (LockPage on that
//    pseudo block) in ShareLock mode for their whole duration; an insert whose
//    new element's level is above the current entry level takes ExclusiveLock
//    instead, re-reads the metapage, and updates the entry point after its
//    element is linked. Vacuum takes ExclusiveLock while it replaces a deleted
//    entry point. Scans take no heavyweight lock: they read the metapage under
//    a shared buffer lock and copy the entry point; a scan that then finds
//    the entry point gone (vacuum removed it) re-reads the metapage.
// 2. Buffers. Readers take a shared content lock on one page at a time, copy
//    or use what they need, and release it before touching another page.
//    Writers take an exclusive content lock on one page at a time (never two
//    element pages at once, so no deadlock), re-read the tuple under that lock
//    (it may have changed since it was read), modify it through GenericXLog,
//    and release. The metapage is locked after no other page.
// 3. Free space. New tuples go to a page found with GetPageWithFreeSpace (the
//    index FSM, filled by vacuum), else to the last page (insert_page hint in
//    the metapage), else to a new page added under the relation extension lock.
// 4. Deletion (vacuum): (a) mark dead elements HNSW_ELEMENT_DELETED, so that
//    scans pass through them without returning them and inserts never pick
//    them as neighbours; (b) repair every element that links to a dead one;
//    (c) replace the entry point if it is dead; (d) remove the dead element
//    and neighbour tuples and record the freed space in the FSM.
// ---------------------------------------------------------------------------
#pragma once

#include "pg/pg_includes.h"

extern "C" {
#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/reloptions.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
}

#include <cstdint>
#include <cstring>

#define HNSW_MAGIC 0x564E5357u  // "VNSW"
#define HNSW_FORMAT_VERSION 1
#define HNSW_PAGE_ID 0xFF5E
#define HNSW_METAPAGE_BLKNO 0
#define HNSW_UPDATE_LOCK 0  // pseudo block number for LockPage (never a data page lock)

#define HNSW_DEFAULT_M 16
#define HNSW_MIN_M 2
#define HNSW_MAX_M 100
#define HNSW_DEFAULT_EF_CONSTRUCTION 200
#define HNSW_MIN_EF_CONSTRUCTION 4
#define HNSW_MAX_EF_CONSTRUCTION 1000
#define HNSW_DEFAULT_EF_SEARCH 40
#define HNSW_MIN_EF_SEARCH 1
#define HNSW_MAX_EF_SEARCH 1000
#define HNSW_MAX_LEVEL 16
#define HNSW_MAX_DIM 2000      // float4 elements
#define HNSW_MAX_DIM_SQ8 8000  // SQ8 codes: one byte per dimension

// Quantization of the vectors stored in element tuples (metapage and the
// `quantization` reloption).
#define HNSW_QUANT_NONE 0  // float4[dim]
#define HNSW_QUANT_SQ8 1   // vecext::Sq8ElementInfo (12 bytes) + uint8[dim] codes

// Support function numbers of the hnsw opclasses.
#define HNSW_DISTANCE_PROC 1  // float8 distance(vector, vector): the ORDER BY operator's function
#define HNSW_NORM_PROC 2      // optional: float8 norm(vector); when present, zero-norm vectors are skipped (cosine)
#define HNSW_TYPE_INFO_PROC 3 // optional, reserved for other element types

// Page types (HnswPageOpaqueData.flags).
#define HNSW_PAGE_META 1
#define HNSW_PAGE_ELEMENT 2

struct HnswPageOpaqueData {
  BlockNumber next;  // next element page in build order (InvalidBlockNumber at the end); informational
  uint16 flags;      // HNSW_PAGE_*
  uint16 page_id;    // HNSW_PAGE_ID, last two bytes of the page
};
typedef HnswPageOpaqueData* HnswPageOpaque;
#define HnswPageGetOpaque(page) ((HnswPageOpaque)PageGetSpecialPointer(page))

struct HnswMetaPageData {
  uint32 magic;              // HNSW_MAGIC
  uint32 version;            // HNSW_FORMAT_VERSION
  uint32 dimensions;
  uint16 m;
  uint16 ef_construction;
  uint8 metric;              // vecext::Metric (for statistics; the opclass decides the distance)
  uint8 quantization;        // HNSW_QUANT_*
  int16 entry_level;         // -1 when the index is empty
  ItemPointerData entry;     // element tuple of the entry point; invalid when empty
  BlockNumber insert_page;   // hint: the last element page
  // SQ8: the quantization parameters (vecext::Sq8Serialize's blob) are split
  // over params_pages params tuples on consecutive blocks from params_start,
  // one per page; params_pages is 0 until they exist (an index built empty
  // trains them at its first insert).
  BlockNumber params_start;
  uint32 params_pages;
  uint32 params_bytes;       // the blob's size
  // Filtered search (a jsonb metadata column after the vector column): each
  // element tuple ends with the row's metadata signature (HnswElementSignature).
  uint32 flags;              // HNSW_META_*
  uint16 filter_max_bytes;   // signature size cap (src/pg/hnsw_filter.h)
  // Value lists (HNSW_META_VALUE_LISTS): lists per neighbour tuple and links
  // per list; 0 without.
  uint8 value_lists;
  uint8 value_slots;
};
#define HNSW_META_FILTER 0x0001       // element tuples carry a metadata signature
#define HNSW_META_LINK_CODES 0x0002   // neighbour tuples carry a link code per slot (with HNSW_META_FILTER)
#define HNSW_META_VALUE_LISTS 0x0004  // neighbour tuples carry value lists (with HNSW_META_LINK_CODES)

// Value lists (docs/filtering.md, src/core/hnsw_value_lists.h). The metapage
// of an index with value lists continues, at a MAXALIGNed offset after
// HnswMetaPageData (pd_lower covers it), with the directory of frequent
// metadata values the build chose: HnswValueDirectoryData and `count`
// vecext::hnsw::ValueDirectoryEntry sorted by key. An insert gives its row
// a list for each of the row's directory keys (the value_lists with fewest
// rows).
#define HNSW_VALUE_DIRECTORY_MAX 256
#define HNSW_MAX_VALUE_LISTS 4
// The build's directory: values of at least max(HNSW_VALUE_MIN_ROWS, n /
// HNSW_VALUE_MIN_FRACTION) rows and at most n / HNSW_VALUE_MAX_FRACTION (rarer
// values are cheaper as exact plans; more frequent ones are cheap to find).
#define HNSW_VALUE_MIN_ROWS 200
#define HNSW_VALUE_MIN_FRACTION 500
#define HNSW_VALUE_MAX_FRACTION 10
// Links per value list: m, even, at least 4.
static inline int HnswValueSlotsForM(int m) { return m < 4 ? 4 : (m + 1) & ~1; }
struct HnswValueDirectoryData {
  uint32 count;
  uint32 unused;
  // vecext::hnsw::ValueDirectoryEntry entries[count] (16 bytes each) follow
};
static inline Size HnswValueDirectoryOffset() { return MAXALIGN(sizeof(HnswMetaPageData)); }
typedef HnswMetaPageData* HnswMetaPage;
#define HnswPageGetMeta(page) ((HnswMetaPage)PageGetContents(page))

#define HNSW_ELEMENT_TUPLE 1
#define HNSW_NEIGHBOR_TUPLE 2
#define HNSW_PARAMS_TUPLE 3

#define HNSW_ELEMENT_DELETED 0x01  // removed by vacuum: traverse, never return, never link to

struct HnswElementTupleData {
  uint8 type;                 // HNSW_ELEMENT_TUPLE
  uint8 level;                // 0..HNSW_MAX_LEVEL
  uint8 flags;                // HNSW_ELEMENT_*
  uint8 unused;
  ItemPointerData heaptid;    // the indexed heap row
  ItemPointerData neighbortid;// this element's HnswNeighborTupleData
  float4 vec[FLEXIBLE_ARRAY_MEMBER];  // the element's data: HnswElementDataSize bytes
};
typedef HnswElementTupleData* HnswElementTuple;
// Bytes of an element's data: dim floats, or SQ8's side data and codes.
static inline Size HnswElementDataSize(int quantization, int dim) {
  return quantization == HNSW_QUANT_SQ8 ? (Size)12 + (Size)dim : sizeof(float4) * (Size)dim;
}
#define HNSW_ELEMENT_TUPLE_SIZE_Q(quant, dim) MAXALIGN(offsetof(HnswElementTupleData, vec) + HnswElementDataSize(quant, dim))
#define HNSW_ELEMENT_TUPLE_SIZE(dim) HNSW_ELEMENT_TUPLE_SIZE_Q(HNSW_QUANT_NONE, dim)

// With a metadata column, the element data is followed by a uint16 length
// and that many signature bytes, so element tuples differ in size (each keeps
// its size for life). The smallest element tuple of an index:
static inline Size HnswElementMinSize(int quantization, int dim, bool filter) {
  return MAXALIGN(offsetof(HnswElementTupleData, vec) + HnswElementDataSize(quantization, dim) +
                  (filter ? sizeof(uint16) : 0));
}
// The size of an element tuple with a signature of sig_len bytes.
static inline Size HnswElementSizeWithSignature(int quantization, int dim, Size sig_len) {
  return MAXALIGN(offsetof(HnswElementTupleData, vec) + HnswElementDataSize(quantization, dim) + sizeof(uint16) +
                  sig_len);
}
// The signature of an element tuple of `item_len` bytes (NULL when it does
// not fit the item: the caller treats that as "may match").
static inline const uint8* HnswElementSignature(const HnswElementTupleData* etup, Size item_len, int quantization,
                                                int dim, Size* sig_len) {
  const Size at = offsetof(HnswElementTupleData, vec) + HnswElementDataSize(quantization, dim);
  if (item_len < at + sizeof(uint16)) return NULL;
  uint16 len;
  memcpy(&len, (const char*)etup + at, sizeof(len));
  if (item_len < at + sizeof(uint16) + len) return NULL;
  *sig_len = len;
  return (const uint8*)etup + at + sizeof(uint16);
}

// One page's share of the SQ8 parameter blob (the only item on its page,
// sized to fill it, so that no element ever goes there).
struct HnswParamsTupleData {
  uint8 type;                 // HNSW_PARAMS_TUPLE
  uint8 unused[3];
  uint32 chunk;               // 0..params_pages-1
  uint32 bytes;               // blob bytes in this chunk
  uint32 unused2;
  char data[FLEXIBLE_ARRAY_MEMBER];
};
typedef HnswParamsTupleData* HnswParamsTuple;

struct HnswNeighborTupleData {
  uint8 type;                 // HNSW_NEIGHBOR_TUPLE
  uint8 level;                // the element's level
  uint16 count;               // slots: HnswNeighborSlots(level, m)
  ItemPointerData ids[FLEXIBLE_ARRAY_MEMBER];
};
typedef HnswNeighborTupleData* HnswNeighborTuple;
#define HNSW_NEIGHBOR_TUPLE_SIZE(slots) MAXALIGN(offsetof(HnswNeighborTupleData, ids) + sizeof(ItemPointerData) * (slots))

// Link codes (indexes with HNSW_META_LINK_CODES): after the ids, 8-aligned,
// one uint64 per slot, the vecext::meta::LinkCode of the element the slot
// links to (a summary of its metadata signature), so that a filtered scan
// can skip links to elements that cannot match without reading them. A slot
// whose link is invalid holds anything; a writer that does not know a
// target's code writes kAllLinks (~0: "may match anything").
static inline Size HnswNeighborCodesOffset(int slots) {
  return TYPEALIGN(8, offsetof(HnswNeighborTupleData, ids) + sizeof(ItemPointerData) * (Size)slots);
}
static inline Size HnswNeighborTupleSize(int slots, bool codes) {
  return codes ? MAXALIGN(HnswNeighborCodesOffset(slots) + sizeof(uint64) * (Size)slots)
               : HNSW_NEIGHBOR_TUPLE_SIZE(slots);
}
// The codes of a neighbour tuple of an index with link codes (the tuple
// starts MAXALIGNed; the caller has checked its length with
// HnswNeighborTupleSize(count, true)).
static inline uint64* HnswNeighborCodes(HnswNeighborTuple ntup) {
  return (uint64*)((char*)ntup + HnswNeighborCodesOffset(ntup->count));
}

// Value lists (indexes with HNSW_META_VALUE_LISTS, which always have link
// codes): after the codes, value_lists lists of value_slots links each, every
// list 8-aligned: a uint64 vecext::meta::ValueKey (0: the list is unused),
// then value_slots ItemPointerData (invalid in unused places). A list with
// key K links the element to nearby elements that also have K: the rows
// sharing a frequent metadata value form their own small graph.
static inline Size HnswValueListStride(int vslots) {
  return TYPEALIGN(8, sizeof(uint64) + sizeof(ItemPointerData) * (Size)vslots);
}
static inline Size HnswNeighborValuesOffset(int slots) {
  return HnswNeighborCodesOffset(slots) + sizeof(uint64) * (Size)slots;
}
// The size of a neighbour tuple of `slots` slots in an index with (or
// without) link codes and vlists value lists of vslots links.
static inline Size HnswNeighborTupleSizeV(int slots, bool codes, int vlists, int vslots) {
  if (vlists <= 0) return HnswNeighborTupleSize(slots, codes);
  return MAXALIGN(HnswNeighborValuesOffset(slots) + (Size)vlists * HnswValueListStride(vslots));
}
// Value list j of a neighbour tuple (the caller has checked its length with
// HnswNeighborTupleSizeV): its key and its links.
static inline char* HnswNeighborValueList(HnswNeighborTuple ntup, int j, int vslots) {
  return (char*)ntup + HnswNeighborValuesOffset(ntup->count) + (Size)j * HnswValueListStride(vslots);
}
static inline uint64 HnswValueListKey(const char* list) {
  uint64 key;
  memcpy(&key, list, sizeof(key));
  return key;
}
static inline ItemPointerData* HnswValueListIds(char* list) { return (ItemPointerData*)(list + sizeof(uint64)); }

// Slots of an element at `level`: 2m on level 0, m on each level above.
static inline int HnswNeighborSlots(int level, int m) { return 2 * m + level * m; }
// First slot of links on level `lc` and how many there are.
static inline int HnswLevelStart(int lc, int m) { return lc == 0 ? 0 : 2 * m + (lc - 1) * m; }
static inline int HnswLevelSlots(int lc, int m) { return lc == 0 ? 2 * m : m; }

static inline uint64_t HnswPackTid(const ItemPointerData* tid) {
  return ((uint64_t)ItemPointerGetBlockNumberNoCheck(tid) << 16) | ItemPointerGetOffsetNumberNoCheck(tid);
}
static inline void HnswUnpackTid(uint64_t id, ItemPointerData* tid) {
  ItemPointerSet(tid, (BlockNumber)(id >> 16), (OffsetNumber)(id & 0xFFFF));
}

// rd_amcache of an hnsw index belongs to hnsw_store.cpp (its block-to-buffer
// hint table); nothing else may use it.

// Reloptions (rd_options of an hnsw index).
struct HnswOptions {
  int32 vl_len_;
  int m;
  int ef_construction;
  int quantization;  // HNSW_QUANT_*
  bool link_codes;   // store link codes (indexes with a metadata column)
  int value_lists;   // value lists per element (0: none; implies link codes)
};

// GUCs (src/pg/hnsw.cpp).
extern int hnsw_ef_search;
extern int hnsw_iterative_scan;  // HNSW_ITERATIVE_SCAN_*
extern int hnsw_max_scan_tuples;
extern bool hnsw_elide_orderby_values;
extern bool hnsw_filter_two_hop;
extern bool hnsw_filter_value_lists;
extern bool hnsw_quantized_search;
extern bool hnsw_build_keep_pruned;
extern bool hnsw_build_cluster_pages;
#define HNSW_ITERATIVE_SCAN_OFF 0
#define HNSW_ITERATIVE_SCAN_STRICT 1
#define HNSW_ITERATIVE_SCAN_RELAXED 2

// ---- src/pg/hnsw_utils.cpp -------------------------------------------------
int HnswGetM(Relation index);
int HnswGetEfConstruction(Relation index);
int HnswGetQuantization(Relation index);  // from the reloptions (the metapage is authoritative once built)
bool HnswGetLinkCodes(Relation index);    // reloption link_codes, or value_lists > 0 (likewise)
int HnswGetValueLists(Relation index);    // reloption value_lists (likewise)
// The value directory of an index with value lists (HNSW_META_VALUE_LISTS)
// copied to out (room for HNSW_VALUE_DIRECTORY_MAX entries of 16 bytes);
// returns the number of entries (0 without).
int HnswReadValueDirectory(Relation index, void* out);
// Whether the index has a jsonb metadata column (its second key column).
bool HnswIndexHasFilter(Relation index);
// The metadata signature of a row for an index with a metadata column.
bytea* HnswRowSignature(Relation index, Datum value, bool isnull);
// The metric of the index's opclass, derived from its distance support proc.
int HnswGetMetric(Relation index);
void HnswInitPage(Page page, uint16 flags);
// Reads and validates the metapage into *meta (ERROR naming the index on corruption).
void HnswReadMeta(Relation index, HnswMetaPageData* meta);
// Validates a page's special space; ERROR naming the index on corruption.
void HnswCheckPage(Relation index, Page page, BlockNumber blkno);
// ERROR (ERRCODE_INDEX_CORRUPTED) naming the index and telling the user to REINDEX.
void HnswReportCorruption(Relation index, BlockNumber blkno, const char* what) pg_attribute_noreturn();
// Detoasts the indexed value; returns NULL when the row must be skipped
// (zero norm under cosine). ERRORs on a dimension mismatch with the index.
struct Vector;
Vector* HnswPrepareValue(Relation index, Datum value, int dimensions);

// ---- src/pg/hnsw_insert.cpp ------------------------------------------------
// Inserts one element for heap row `heaptid` with vector `vec` into a built
// index (used by aminsert and by the build's on-disk fallback).
// `signature` (may be NULL) is the row's metadata signature (a bytea from
// HnswMetaEncodeDatum) when the index has a metadata column.
void HnswInsertElement(Relation index, Relation heap, const float* vec, int dim, ItemPointer heaptid,
                       bool building, const bytea* signature);

// Writes an SQ8 parameter blob (vecext::Sq8Serialize) into new pages at the
// end of the index and points the metapage at them.
void HnswWriteSq8Params(Relation index, const unsigned char* blob, Size bytes, bool building);
// How many pages HnswWriteSq8Params uses for a blob of `bytes`.
uint32 HnswSq8ParamsPages(Size bytes);

// Gives each live element ids[0..n) (packed element TIDs) a level-0 in-link
// from an element near it (vacuum: elements it found unreachable). Takes
// HNSW_UPDATE_LOCK in ShareLock, like an insert.
void HnswRelinkElements(Relation index, const uint64* ids, int n);

// ---- src/pg/hnsw_build.cpp, hnsw_scan.cpp, hnsw_vacuum.cpp, hnsw_cost.cpp ---
// Called by Postgres through the IndexAmRoutine: C linkage, bodies under VECEXT_GUARD.
extern "C" {
IndexBuildResult* hnswbuild(Relation heap, Relation index, IndexInfo* indexInfo);
void hnswbuildempty(Relation index);
bool hnswinsert(Relation index, Datum* values, bool* isnull, ItemPointer heap_tid, Relation heap,
                IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo* indexInfo);
IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys);
void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool hnswgettuple(IndexScanDesc scan, ScanDirection dir);
void hnswendscan(IndexScanDesc scan);
IndexBulkDeleteResult* hnswbulkdelete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                      IndexBulkDeleteCallback callback, void* callback_state);
IndexBulkDeleteResult* hnswvacuumcleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats);
void hnswcostestimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* indexStartupCost,
                      Cost* indexTotalCost, Selectivity* indexSelectivity, double* indexCorrelation,
                      double* indexPages);
}  // extern "C"
