// Inspection of hnsw indexes from SQL:
//   hnsw_index_stats(regclass)  one row of graph statistics
//   hnsw_index_check(regclass, heapallindexed bool DEFAULT false)
//                               SETOF text, one row per problem (none: healthy)
// Both take AccessShareLock on the table and the index, read each page into
// local memory under a share lock and validate everything before use, so a
// corrupted page is reported (check) or skipped (stats), never followed.
// They are allowed to the owner of the table and to members of pg_monitor.
//
// The check reads the index page by page while inserts and vacuums may run,
// so before reporting a link, reachability or entry point problem it reads
// the pages involved again and reports only what is still wrong. Problems it
// reports:
//   - metapage: magic, version, ranges, entry point (an element, with the
//     entry level, which is the highest level of any element);
//   - pages: header, special space, page id and type; item bounds and sizes;
//   - elements: valid heap TID, finite vector, a neighbour tuple of the
//     element's level owned by this element only;
//   - links: every link on level l points to an element of level >= l
//     (elements marked deleted count: scans pass through them until vacuum
//     has repaired the links and removed them);
//   - value lists (indexes built WITH (value_lists = N)): the neighbour
//     tuple is long enough for them; a live element's list with key K has K
//     among its own metadata's value keys (and no other list of the element
//     has K); every link of such a list points to an element (deleted ones
//     count, as above) whose metadata has K;
//   - reachability: every live element is reachable from the entry point
//     through level-0 links (the only links a scan returns rows through)
//     (a breadth-first search over level-0 links, through deleted elements as
//     scans do). An unreachable element is a recall problem rather than
//     corruption (it can happen with a very small m or under inner product);
//     REINDEX fixes it;
//   - heap TIDs: each appears in one live element only;
//   - heapallindexed: every row visible to the check's snapshot whose indexed
//     value is indexable (not NULL, not a zero vector under cosine) has an
//     element (expression and partial indexes are evaluated as at build).
// Not reported: neighbour tuples no element points to (left by a crash
// between the two writes of an element too large to share a page with its
// neighbour tuple: wasted space, which REINDEX reclaims), and tombstones
// (neighbour tuples of removed elements that an interrupted vacuum left).
#include "pg/pg_includes.h"

#include <cmath>
#include <cstdarg>
#include <cstring>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
}

#include "pg/guard.h"
#include "core/hnsw_value_lists.h"
#include "core/meta_filter.h"
#include "pg/hnsw.h"
#include "pg/hnsw_internal.h"
#include "pg/vector.h"

#define HNSW_CHECK_MAX_PROBLEMS 1000
#define HNSW_CHECK_MAX_LISTED 10

// An item of the index, keyed by its packed TID.
struct InspectItem {
  uint64 id;
  uint8 kind;  // HNSW_ELEMENT_TUPLE or HNSW_NEIGHBOR_TUPLE
  uint8 level;
  uint8 flags;     // elements
  bool tombstone;  // neighbour tuples: count == 0 (left by vacuum)
  int owners;      // neighbour tuples: elements pointing at it
  ItemPointerData heaptid;
  ItemPointerData neighbortid;
  uint64 code;  // elements of an index with link codes: the element's link code
};

// A heap TID of a live element.
struct InspectHeapTid {
  uint64 id;
  int count;
};

// Value lists: an element (packed TID) whose metadata has a directory key.
struct InspectValueKey {
  uint64 id;
  uint64 key;
};

// Room for the value keys of one signature (vecext::meta::ValueKeys).
#define HNSW_INSPECT_MAX_KEYS \
  (vecext::meta::SignatureEncoder::kValueCap + vecext::meta::SignatureEncoder::kNumberCap)

struct InspectState {
  Relation index;
  HnswMetaPageData meta;
  bool meta_ok;
  BlockNumber nblocks;
  HTAB* items;
  HTAB* heaptids;
  int64 live;
  int64 deleted;
  int64 tombstones;
  int max_level;  // highest level of a live element
  // Value lists (HNSW_META_VALUE_LISTS; 0 without): lists per neighbour
  // tuple, links per list, the metapage's directory (keys sorted), the
  // (element, directory key) pairs of the elements' metadata, scratch.
  int vlists;
  int vslots;
  int ndirectory;
  uint64* directory;
  bool directory_unsorted;
  HTAB* vkeys;
  uint64* keybuf;   // HNSW_INSPECT_MAX_KEYS
  uint64* keybuf2;  // HNSW_INSPECT_MAX_KEYS
  char* vbuf;       // one neighbour tuple's value lists
  // ... and their figures over live elements (stats).
  int64 value_elements;    // with at least one list holding a link
  int64 value_used_lists;  // lists with a key
  int64 value_links;       // links in those lists
  // Problems (check only): a tuplestore, or NULL for stats.
  Tuplestorestate* out;
  TupleDesc outdesc;
  int64 nproblems;
  char* page;  // BLCKSZ scratch
};

static void Problem(InspectState* st, const char* fmt, ...) pg_attribute_printf(2, 3);

static void Problem(InspectState* st, const char* fmt, ...) {
  // The summary line of a truncated list is written past the limit.
  bool summary = st->nproblems < 0;
  if (!summary) st->nproblems++;
  if (st->out == NULL || (!summary && st->nproblems > HNSW_CHECK_MAX_PROBLEMS)) return;
  StringInfoData buf;
  initStringInfo(&buf);
  for (;;) {
    va_list args;
    va_start(args, fmt);
    int needed = appendStringInfoVA(&buf, fmt, args);
    va_end(args);
    if (needed == 0) break;
    enlargeStringInfo(&buf, needed);
  }
  Datum value = CStringGetTextDatum(buf.data);
  bool isnull = false;
  tuplestore_putvalues(st->out, st->outdesc, &value, &isnull);
  pfree(buf.data);
}

// Copies block `blkno` into st->page under a share lock.
static Page CopyPage(InspectState* st, BlockNumber blkno) {
  Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  memcpy(st->page, BufferGetPage(buf), BLCKSZ);
  UnlockReleaseBuffer(buf);
  return (Page)st->page;
}

static InspectItem* FindItem(InspectState* st, const ItemPointerData* tid) {
  uint64 key = HnswPackTid(tid);
  return (InspectItem*)hash_search(st->items, &key, HASH_FIND, NULL);
}

// Re-reads element `tid` now: whether it is an element tuple with a level
// >= min_level (dead or alive); fills *out (level, flags, neighbortid).
// Used to confirm a problem seen in the page copies, which concurrent
// inserts and vacuums make slightly out of date.
// The link code of element etup at `off` of `page` (indexes with link codes).
static uint64 ElementCode(InspectState* st, Page page, OffsetNumber off, HnswElementTuple etup) {
  if (!(st->meta.flags & HNSW_META_LINK_CODES)) return vecext::meta::kAllLinks;
  Size sig_len = 0;
  const uint8* sig = HnswElementSignature(etup, ItemIdGetLength(PageGetItemId(page, off)), st->meta.quantization,
                                          (int)st->meta.dimensions, &sig_len);
  return sig == NULL ? vecext::meta::kAllLinks : vecext::meta::MakeLinkCode(sig, sig_len);
}

// The value keys of element etup at `off` of `page` (its metadata
// signature's: vecext::meta::ValueKeys), at most HNSW_INSPECT_MAX_KEYS
// written to out; 0 without a valid, complete signature.
static int ElementValueKeys(InspectState* st, Page page, OffsetNumber off, HnswElementTuple etup, uint64* out) {
  Size sig_len = 0;
  const uint8* sig = HnswElementSignature(etup, ItemIdGetLength(PageGetItemId(page, off)), st->meta.quantization,
                                          (int)st->meta.dimensions, &sig_len);
  vecext::meta::SignatureView view;
  if (sig == NULL || !vecext::meta::ParseSignature(sig, sig_len, &view).ok()) return 0;
  const size_t n = vecext::meta::ValueKeys(view, (vecext::meta::ValueKey*)out, HNSW_INSPECT_MAX_KEYS);
  return (int)Min(n, (size_t)HNSW_INSPECT_MAX_KEYS);
}

static bool HasKey(const uint64* keys, int n, uint64 key) {
  for (int i = 0; i < n; i++)
    if (keys[i] == key) return true;
  return false;
}

static bool InDirectory(InspectState* st, uint64 key) {
  if (st->directory_unsorted) return false;
  int lo = 0, hi = st->ndirectory;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (st->directory[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < st->ndirectory && st->directory[lo] == key;
}

// Whether element `id` had directory key `key` when the index was read
// (pass 1); false for keys outside the directory.
static bool ElementHadKey(InspectState* st, uint64 id, uint64 key) {
  InspectValueKey k;
  k.id = id;
  k.key = key;
  return st->vkeys != NULL && hash_search(st->vkeys, &k, HASH_FIND, NULL) != NULL;
}

// Re-reads `tid` now: 1 if it is an element tuple whose metadata has value
// key `key`, 0 if it is an element without it, -1 if it is no element.
static int ElementHasKeyNow(InspectState* st, const ItemPointerData* tid, uint64 key) {
  BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(tid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno == InvalidBlockNumber) return -1;
  if (blkno >= st->nblocks) st->nblocks = RelationGetNumberOfBlocks(st->index);
  if (blkno >= st->nblocks) return -1;
  Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  int result = -1;
  if (HnswPageProblem(page, blkno) == NULL) {
    const OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
    HnswElementTuple etup = HnswPageGetElementSized(
        page, off, HNSW_ELEMENT_TUPLE_SIZE_Q(st->meta.quantization, (int)st->meta.dimensions));
    if (etup != NULL) result = HasKey(st->keybuf2, ElementValueKeys(st, page, off, etup, st->keybuf2), key) ? 1 : 0;
  }
  UnlockReleaseBuffer(buf);
  return result;
}

// The key of value list j of the neighbour tuple at `ntid` now, and with
// `slot` >= 0 whether that slot of the list holds `target`; 0 when the
// tuple is gone or too short for value lists.
static uint64 ValueListNow(InspectState* st, const ItemPointerData* ntid, int j, int slot,
                           const ItemPointerData* target, bool* holds) {
  const BlockNumber blkno = ItemPointerGetBlockNumber(ntid);
  Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  uint64 key = 0;
  if (holds != NULL) *holds = false;
  if (HnswPageProblem(page, blkno) == NULL) {
    const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
    HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, st->meta.m);
    if (ntup != NULL && ItemIdGetLength(PageGetItemId(page, off)) >=
                            HnswNeighborTupleSizeV(ntup->count, true, st->vlists, st->vslots)) {
      char* list = HnswNeighborValueList(ntup, j, st->vslots);
      key = HnswValueListKey(list);
      if (holds != NULL && slot >= 0)
        *holds = ItemPointerEquals(&HnswValueListIds(list)[slot], (ItemPointer)target);
    }
  }
  UnlockReleaseBuffer(buf);
  return key;
}

static bool ReadElementNow(InspectState* st, const ItemPointerData* tid, int min_level, InspectItem* out) {
  BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(tid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno == InvalidBlockNumber) return false;
  if (blkno >= st->nblocks) st->nblocks = RelationGetNumberOfBlocks(st->index);
  if (blkno >= st->nblocks) return false;
  Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, blkno, RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  bool ok = false;
  if (HnswPageProblem(page, blkno) == NULL) {
    HnswElementTuple etup = HnswPageGetElementSized(page, ItemPointerGetOffsetNumberNoCheck(tid),
                                                     HNSW_ELEMENT_TUPLE_SIZE_Q(st->meta.quantization, (int)st->meta.dimensions));
    if (etup != NULL && etup->level >= min_level) {
      memset(out, 0, sizeof(*out));
      out->id = HnswPackTid(tid);
      out->kind = HNSW_ELEMENT_TUPLE;
      out->level = etup->level;
      out->flags = etup->flags;
      out->heaptid = etup->heaptid;
      out->neighbortid = etup->neighbortid;
      out->code = ElementCode(st, page, ItemPointerGetOffsetNumberNoCheck(tid), etup);
      ok = true;
    }
  }
  UnlockReleaseBuffer(buf);
  return ok;
}

// Whether slot `slot` of the neighbour tuple at `ntid` still holds `target`.
static bool SlotHoldsNow(InspectState* st, const ItemPointerData* ntid, int slot, const ItemPointerData* target) {
  Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, ItemPointerGetBlockNumber(ntid), RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  bool holds = false;
  if (HnswPageProblem(page, ItemPointerGetBlockNumber(ntid)) == NULL) {
    HnswNeighborTuple ntup = HnswPageGetNeighbors(page, ItemPointerGetOffsetNumber(ntid), st->meta.m);
    holds = ntup != NULL && slot < ntup->count && ItemPointerEquals(&ntup->ids[slot], (ItemPointer)target);
  }
  UnlockReleaseBuffer(buf);
  return holds;
}

static bool VectorIsFinite(const float* v, int n) {
  for (int i = 0; i < n; i++)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// Checks an item's line pointer and bounds; NULL when unusable.
static char* ValidItem(InspectState* st, Page page, BlockNumber blkno, OffsetNumber off) {
  ItemId iid = PageGetItemId(page, off);
  if (!ItemIdIsUsed(iid)) return NULL;
  if (!ItemIdIsNormal(iid)) {
    Problem(st, "block %u offset %u: unexpected line pointer state %u", blkno, off, (unsigned)iid->lp_flags);
    return NULL;
  }
  PageHeader ph = (PageHeader)page;
  Size item_off = ItemIdGetOffset(iid);
  Size len = ItemIdGetLength(iid);
  if (item_off < ph->pd_upper || item_off % MAXIMUM_ALIGNOF != 0 || item_off + len > ph->pd_special || len < 4) {
    Problem(st, "block %u offset %u: item out of bounds (offset %zu, length %zu)", blkno, off, item_off, len);
    return NULL;
  }
  return (char*)page + item_off;
}

// Pass 1: the metapage, every page and every item; fills st->items.
static void LoadIndex(InspectState* st) {
  st->nblocks = RelationGetNumberOfBlocks(st->index);
  if (st->nblocks == 0) {
    Problem(st, "index has no metapage");
    return;
  }
  Page page = CopyPage(st, HNSW_METAPAGE_BLKNO);
  const char* problem = HnswPageProblem(page, HNSW_METAPAGE_BLKNO);
  if (problem == NULL) problem = HnswMetaProblem(page);
  if (problem != NULL) {
    if (st->out == NULL) HnswReportCorruption(st->index, HNSW_METAPAGE_BLKNO, problem);
    Problem(st, "block 0: %s", problem);
    return;
  }
  memcpy(&st->meta, HnswPageGetMeta(page), sizeof(HnswMetaPageData));
  st->meta_ok = true;
  {
    // Value lists and their directory (HnswMetaProblem has checked both
    // when pd_lower covers the flags).
    HnswMetaPage meta = HnswPageGetMeta(page);
    const bool covered = ((PageHeader)page)->pd_lower >= (char*)meta + sizeof(HnswMetaPageData) - (char*)page;
    if (covered && (meta->flags & HNSW_META_VALUE_LISTS)) {
      st->vlists = meta->value_lists;
      st->vslots = meta->value_slots;
      const HnswValueDirectoryData* d = (const HnswValueDirectoryData*)((const char*)meta + HnswValueDirectoryOffset());
      st->ndirectory = (int)d->count;
      st->directory = (uint64*)palloc(sizeof(uint64) * (Size)Max(st->ndirectory, 1));
      const char* entries = (const char*)d + sizeof(HnswValueDirectoryData);
      for (int i = 0; i < st->ndirectory; i++) {
        vecext::hnsw::ValueDirectoryEntry e;
        memcpy(&e, entries + sizeof(e) * (Size)i, sizeof(e));
        st->directory[i] = e.key;
      }
      for (int i = 1; i < st->ndirectory; i++)
        if (st->directory[i] <= st->directory[i - 1]) {
          Problem(st, "block 0: value directory is not sorted by key (entry %d)", i);
          st->directory_unsorted = true;  // every link is then checked against its target's page
          break;
        }
      st->keybuf = (uint64*)palloc(sizeof(uint64) * HNSW_INSPECT_MAX_KEYS);
      st->keybuf2 = (uint64*)palloc(sizeof(uint64) * HNSW_INSPECT_MAX_KEYS);
      st->vbuf = (char*)palloc((Size)st->vlists * HnswValueListStride(st->vslots));
    }
    if (st->vlists > 0 && st->out != NULL) {  // the check's (element, key) pairs
      HASHCTL ctl;
      memset(&ctl, 0, sizeof(ctl));
      ctl.keysize = sizeof(InspectValueKey);
      ctl.entrysize = sizeof(InspectValueKey);
      ctl.hcxt = CurrentMemoryContext;
      st->vkeys = hash_create("hnsw inspect value keys", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    }
  }
  int dim = (int)st->meta.dimensions;
  int m = st->meta.m;
  int quant = st->meta.quantization;

  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < st->nblocks; blkno++) {
    CHECK_FOR_INTERRUPTS();
    page = CopyPage(st, blkno);
    problem = HnswPageProblem(page, blkno);
    if (problem != NULL) {
      Problem(st, "block %u: %s", blkno, problem);
      continue;
    }
    if (PageIsNew(page)) continue;
    OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
    for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
      char* item = ValidItem(st, page, blkno, off);
      if (item == NULL) continue;
      ItemPointerData tid;
      ItemPointerSet(&tid, blkno, off);
      uint8 type = *(uint8*)item;
      InspectItem entry;
      memset(&entry, 0, sizeof(entry));
      if (type == HNSW_ELEMENT_TUPLE) {
        HnswElementTuple etup = HnswPageGetElementSized(page, off, HNSW_ELEMENT_TUPLE_SIZE_Q(quant, dim));
        if (etup == NULL) {
          Problem(st, "block %u offset %u: invalid element tuple (level %u, length %u, expected %zu)", blkno, off,
                  (unsigned)((HnswElementTuple)item)->level, ItemIdGetLength(PageGetItemId(page, off)),
                  (size_t)HNSW_ELEMENT_TUPLE_SIZE_Q(quant, dim));
          continue;
        }
        entry.kind = HNSW_ELEMENT_TUPLE;
        entry.level = etup->level;
        entry.flags = etup->flags;
        entry.heaptid = etup->heaptid;
        entry.neighbortid = etup->neighbortid;
        entry.code = ElementCode(st, page, off, etup);
        if (st->vkeys != NULL && st->ndirectory > 0) {
          const int nkeys = ElementValueKeys(st, page, off, etup, st->keybuf);
          for (int i = 0; i < nkeys; i++) {
            if (!InDirectory(st, st->keybuf[i])) continue;
            InspectValueKey k;
            k.id = HnswPackTid(&tid);
            k.key = st->keybuf[i];
            hash_search(st->vkeys, &k, HASH_ENTER, NULL);
          }
        }
        bool deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
        if (!ItemPointerIsValid(&etup->heaptid))
          Problem(st, "block %u offset %u: element has an invalid heap TID", blkno, off);
        // Floats: the vector; SQ8: the side data (codes are always valid).
        if (!deleted && !VectorIsFinite(etup->vec, quant == HNSW_QUANT_SQ8 ? 3 : dim))
          Problem(st, "block %u offset %u: element vector has a non-finite value", blkno, off);
        if (etup->level > HnswMaxLevelForM(m))
          Problem(st, "block %u offset %u: element level %u exceeds the maximum %d for m = %d", blkno, off,
                  (unsigned)etup->level, HnswMaxLevelForM(m), m);
        if (deleted) {
          st->deleted++;
        } else {
          st->live++;
          if (etup->level > st->max_level) st->max_level = etup->level;
          uint64 hkey = HnswPackTid(&etup->heaptid);
          bool found;
          InspectHeapTid* h = (InspectHeapTid*)hash_search(st->heaptids, &hkey, HASH_ENTER, &found);
          if (!found) h->count = 0;
          h->count++;
        }
      } else if (type == HNSW_NEIGHBOR_TUPLE) {
        HnswNeighborTuple ntup = (HnswNeighborTuple)item;
        entry.kind = HNSW_NEIGHBOR_TUPLE;
        if (ItemIdGetLength(PageGetItemId(page, off)) >= offsetof(HnswNeighborTupleData, ids) && ntup->count == 0) {
          entry.tombstone = true;
          st->tombstones++;
        } else if (HnswPageGetNeighbors(page, off, m) == NULL) {
          Problem(st, "block %u offset %u: invalid neighbour tuple (level %u, %u slots, length %u)", blkno, off,
                  (unsigned)ntup->level, (unsigned)ntup->count, ItemIdGetLength(PageGetItemId(page, off)));
          continue;
        }
        entry.level = ntup->level;
      } else if (type == HNSW_PARAMS_TUPLE && quant == HNSW_QUANT_SQ8 && st->meta.params_pages > 0 &&
                 blkno >= st->meta.params_start && blkno < st->meta.params_start + st->meta.params_pages &&
                 off == FirstOffsetNumber) {
        continue;  // SQ8 parameters (read and checked by HnswGetSq8Params)
      } else {
        Problem(st, "block %u offset %u: unknown tuple type %u", blkno, off, (unsigned)type);
        continue;
      }
      uint64 key = HnswPackTid(&tid);
      InspectItem* e = (InspectItem*)hash_search(st->items, &key, HASH_ENTER, NULL);
      entry.id = key;
      *e = entry;
    }
  }
}

// After pass 1: neighbour tuple ownership.
static void CheckOwnership(InspectState* st) {
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, st->items);
  InspectItem* e;
  while ((e = (InspectItem*)hash_seq_search(&seq)) != NULL) {
    if (e->kind != HNSW_ELEMENT_TUPLE) continue;
    ItemPointerData tid;
    HnswUnpackTid(e->id, &tid);
    InspectItem* n = FindItem(st, &e->neighbortid);
    bool deleted = (e->flags & HNSW_ELEMENT_DELETED) != 0;
    if (n == NULL || n->kind != HNSW_NEIGHBOR_TUPLE) {
      // A deleted element may have lost its neighbour tuple to an interrupted vacuum.
      if (!deleted)
        Problem(st, "element (%u,%u): neighbour tuple (%u,%u) is missing", ItemPointerGetBlockNumber(&tid),
                ItemPointerGetOffsetNumber(&tid), ItemPointerGetBlockNumberNoCheck(&e->neighbortid),
                ItemPointerGetOffsetNumberNoCheck(&e->neighbortid));
      continue;
    }
    n->owners++;
    if (n->tombstone) {
      if (!deleted)
        Problem(st, "element (%u,%u): live element has a removed (tombstone) neighbour tuple",
                ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid));
    } else if (n->level != e->level) {
      Problem(st, "element (%u,%u): level %u but its neighbour tuple has level %u", ItemPointerGetBlockNumber(&tid),
              ItemPointerGetOffsetNumber(&tid), (unsigned)e->level, (unsigned)n->level);
    }
  }
  hash_seq_init(&seq, st->items);
  while ((e = (InspectItem*)hash_seq_search(&seq)) != NULL) {
    if (e->kind != HNSW_NEIGHBOR_TUPLE || e->tombstone) continue;
    ItemPointerData tid;
    HnswUnpackTid(e->id, &tid);
    // owners == 0: an orphan, left by a crash between the two writes of an
    // element too large to share a page with its neighbour tuple (or an
    // insert in progress): wasted space, not a problem.
    if (e->owners > 1)
      Problem(st, "neighbour tuple (%u,%u) is shared by %d elements", ItemPointerGetBlockNumber(&tid),
              ItemPointerGetOffsetNumber(&tid), e->owners);
  }
  InspectHeapTid* h;
  hash_seq_init(&seq, st->heaptids);
  while ((h = (InspectHeapTid*)hash_seq_search(&seq)) != NULL) {
    if (h->count <= 1) continue;
    ItemPointerData tid;
    HnswUnpackTid(h->id, &tid);
    Problem(st, "heap TID (%u,%u) is indexed by %d live elements", ItemPointerGetBlockNumberNoCheck(&tid),
            ItemPointerGetOffsetNumberNoCheck(&tid), h->count);
  }
}

// The metapage's entry point against the elements.
static void CheckEntryPoint(InspectState* st) {
  if (!ItemPointerIsValid(&st->meta.entry)) {
    if (st->live > 0)
      Problem(st, "metapage has no entry point but the index has %lld live elements", (long long)st->live);
    return;
  }
  ItemPointerData* ep = &st->meta.entry;
  InspectItem* e = FindItem(st, ep);
  if (e == NULL || e->kind != HNSW_ELEMENT_TUPLE) {
    Problem(st, "metapage entry point (%u,%u) is not an element", ItemPointerGetBlockNumber(ep),
            ItemPointerGetOffsetNumber(ep));
    return;
  }
  // A deleted entry point is normal while a vacuum runs (it is replaced before
  // the element is removed) and after an interrupted vacuum: scans start from
  // it and pass through it.
  if (e->level != st->meta.entry_level)
    Problem(st, "metapage entry level %d differs from the level %u of the entry point", st->meta.entry_level,
            (unsigned)e->level);
  if (st->max_level > e->level) {
    // An insert of a new highest element moves the entry point after linking
    // the element: confirm with the current metapage.
    HnswMetaPageData now;
    HnswReadMeta(st->index, &now);
    if (now.entry_level < st->max_level)
      Problem(st, "entry point level %d is below the highest element level %d", now.entry_level, st->max_level);
  }
}

// The value lists of live element etup at `off` of `page` (block blkno),
// copied into st->vbuf from its neighbour tuple at `ntid`: their figures
// (stats) and, for the check, their keys and links. Problems are confirmed
// against the pages as they are now (concurrent inserts and vacuums change
// lists).
static void CheckValueLists(InspectState* st, BlockNumber blkno, OffsetNumber off, Page page, HnswElementTuple etup,
                            const ItemPointerData* ntid) {
  const Size stride = HnswValueListStride(st->vslots);
  int nown = -1;  // the element's own keys, in st->keybuf once computed
  bool filled_any = false;
  for (int j = 0; j < st->vlists; j++) {
    char* list = st->vbuf + (Size)j * stride;
    const uint64 key = HnswValueListKey(list);
    if (key == vecext::meta::kNoValueKey) continue;  // unused: its links mean nothing
    const ItemPointerData* ids = HnswValueListIds(list);
    int filled = 0;
    for (int k = 0; k < st->vslots; k++) filled += ItemPointerIsValid(&ids[k]) ? 1 : 0;
    st->value_used_lists++;
    st->value_links += filled;
    if (filled > 0) filled_any = true;
    if (st->out == NULL) continue;

    for (int jj = 0; jj < j; jj++) {
      if (HnswValueListKey(st->vbuf + (Size)jj * stride) == key) {
        Problem(st, "element (%u,%u): value lists %d and %d have the same key %016llx", blkno, off, jj, j,
                (unsigned long long)key);
        break;
      }
    }
    // The element's own metadata must have the key (its signature never
    // changes; the list may have, since it was read).
    if (nown < 0) nown = ElementValueKeys(st, page, off, etup, st->keybuf);
    if (!HasKey(st->keybuf, nown, key) && ValueListNow(st, ntid, j, -1, NULL, NULL) == key)
      Problem(st, "element (%u,%u): value list %d has key %016llx, which the element's metadata does not have", blkno,
              off, j, (unsigned long long)key);
    for (int k = 0; k < st->vslots; k++) {
      const ItemPointerData* target = &ids[k];
      if (!ItemPointerIsValid(target)) continue;
      InspectItem* t = FindItem(st, target);
      if (t != NULL && t->kind == HNSW_ELEMENT_TUPLE && ElementHadKey(st, t->id, key)) continue;
      // Confirm against the pages as they are now: the link may be newer
      // than the copy of its target's page, or already replaced.
      bool holds = false;
      if (ValueListNow(st, ntid, j, k, target, &holds) != key || !holds) continue;
      const int has = ElementHasKeyNow(st, target, key);
      if (has == 1) continue;
      if (has < 0)
        Problem(st, "element (%u,%u): value list %d (key %016llx) links to (%u,%u), which is not an element", blkno,
                off, j, (unsigned long long)key, ItemPointerGetBlockNumberNoCheck(target),
                ItemPointerGetOffsetNumberNoCheck(target));
      else
        Problem(st,
                "element (%u,%u): value list %d (key %016llx) links to (%u,%u), whose metadata does not have that "
                "value",
                blkno, off, j, (unsigned long long)key, ItemPointerGetBlockNumber(target),
                ItemPointerGetOffsetNumber(target));
    }
  }
  if (filled_any) st->value_elements++;
}

// Pass 2: every link of every neighbour tuple owned by an element.
// Also accumulates the degrees of live elements per level (stats).
static void CheckLinks(InspectState* st, int64* degree_sum, int* degree_min, int64* level_count) {
  int m = st->meta.m;
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < st->nblocks; blkno++) {
    CHECK_FOR_INTERRUPTS();
    Page page = CopyPage(st, blkno);
    if (PageIsNew(page) || HnswPageProblem(page, blkno) != NULL) continue;
    OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
    for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
      HnswElementTuple etup = HnswPageGetElementSized(page, off, HNSW_ELEMENT_TUPLE_SIZE_Q(st->meta.quantization, (int)st->meta.dimensions));
      if (etup == NULL) continue;
      bool deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
      // The element's neighbour tuple (possibly on another page): find it via the item map.
      InspectItem* n = FindItem(st, &etup->neighbortid);
      if (n == NULL || n->kind != HNSW_NEIGHBOR_TUPLE || n->tombstone || n->level != etup->level) continue;
      int level = etup->level;
      ItemPointerData ntid = etup->neighbortid;
      // Read the neighbour tuple's slots (st->page is in use: read into a second copy).
      Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, ItemPointerGetBlockNumber(&ntid), RBM_NORMAL, NULL);
      LockBuffer(buf, BUFFER_LOCK_SHARE);
      HnswNeighborTuple ntup = HnswPageGetNeighbors(BufferGetPage(buf), ItemPointerGetOffsetNumber(&ntid), m);
      int count = 0;
      ItemPointerData slots[2 * HNSW_MAX_M + HNSW_MAX_LEVEL * HNSW_MAX_M];
      uint64 codes[2 * HNSW_MAX_M + HNSW_MAX_LEVEL * HNSW_MAX_M];
      bool has_codes = false;
      bool has_values = false;
      if (ntup != NULL && ntup->level == level) {
        count = ntup->count;
        memcpy(slots, ntup->ids, sizeof(ItemPointerData) * count);
        const Size len = ItemIdGetLength(PageGetItemId(BufferGetPage(buf), ItemPointerGetOffsetNumber(&ntid)));
        if ((st->meta.flags & HNSW_META_LINK_CODES) && st->out != NULL) {
          if (len >= HnswNeighborTupleSize(count, true)) {
            has_codes = true;
            memcpy(codes, HnswNeighborCodes(ntup), sizeof(uint64) * count);
          } else {
            Problem(st, "element (%u,%u): neighbour tuple too short for link codes (%u bytes)", blkno, off,
                    (unsigned)len);
          }
        }
        if (st->vlists > 0 && !deleted) {
          const Size want = HnswNeighborTupleSizeV(count, true, st->vlists, st->vslots);
          if (len >= want) {
            has_values = true;
            memcpy(st->vbuf, HnswNeighborValueList(ntup, 0, st->vslots),
                   (Size)st->vlists * HnswValueListStride(st->vslots));
          } else {
            Problem(st, "element (%u,%u): neighbour tuple too short for value lists (%u bytes, expected %zu)", blkno,
                    off, (unsigned)len, (size_t)want);
          }
        }
      }
      UnlockReleaseBuffer(buf);
      if (has_values) CheckValueLists(st, blkno, off, page, etup, &ntid);
      if (count == 0) continue;
      for (int lc = 0; lc <= level; lc++) {
        int start = HnswLevelStart(lc, m);
        int nslots = HnswLevelSlots(lc, m);
        int degree = 0;
        for (int i = start; i < start + nslots && i < count; i++) {
          if (!ItemPointerIsValid(&slots[i])) continue;
          degree++;
          if (deleted) continue;  // links of deleted elements are never followed for results
          InspectItem* t = FindItem(st, &slots[i]);
          InspectItem now;
          // Links to deleted elements are normal until vacuum removes them.
          if (t != NULL && t->kind == HNSW_ELEMENT_TUPLE && t->level >= lc) {
            // A link code must summarise its target's metadata (a filtered
            // scan would skip a matching row otherwise). Confirmed against
            // the pages as they are now.
            if (has_codes && codes[i] != t->code && SlotHoldsNow(st, &ntid, i, &slots[i]) &&
                ReadElementNow(st, &slots[i], 0, &now) && now.code != codes[i])
              Problem(st, "element (%u,%u): link on level %d to (%u,%u) has a link code that does not match its "
                      "metadata", blkno, off, lc, ItemPointerGetBlockNumber(&slots[i]),
                      ItemPointerGetOffsetNumber(&slots[i]));
            continue;
          }
          if (st->out == NULL) continue;
          // Confirm against the pages as they are now: the link may be newer
          // than the copy of its target's page, or already replaced.
          if (!SlotHoldsNow(st, &ntid, i, &slots[i])) continue;
          if (ReadElementNow(st, &slots[i], lc, &now)) continue;
          if (t == NULL || t->kind != HNSW_ELEMENT_TUPLE)
            Problem(st, "element (%u,%u): link on level %d to (%u,%u), which is not an element", blkno, off, lc,
                    ItemPointerGetBlockNumberNoCheck(&slots[i]), ItemPointerGetOffsetNumberNoCheck(&slots[i]));
          else
            Problem(st, "element (%u,%u): link on level %d to (%u,%u), which has level %u", blkno, off, lc,
                    ItemPointerGetBlockNumber(&slots[i]), ItemPointerGetOffsetNumber(&slots[i]), (unsigned)t->level);
        }
        if (!deleted && degree_sum != NULL) {
          degree_sum[lc] += degree;
          level_count[lc]++;
          if (degree_min[lc] < 0 || degree < degree_min[lc]) degree_min[lc] = degree;
        }
      }
    }
  }
}

// Breadth-first search from the entry point over all levels, through
// deleted elements as scans do. Elements inserted since the page pass are
// read from their pages, so that what they link to counts as reached; an
// element found unreachable is read again before it is reported (vacuum may
// have removed it meanwhile).
static void CheckReachability(InspectState* st) {
  HnswMetaPageData meta;
  HnswReadMeta(st->index, &meta);  // the current entry point
  if (!ItemPointerIsValid(&meta.entry)) return;
  int m = st->meta.m;
  HASHCTL ctl;
  memset(&ctl, 0, sizeof(ctl));
  ctl.keysize = sizeof(uint64);
  ctl.entrysize = sizeof(InspectItem);
  ctl.hcxt = CurrentMemoryContext;
  HTAB* reached = hash_create("hnsw inspect reached", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  int64 cap = 1024, head = 0, tail = 0;
  uint64* queue = (uint64*)palloc(sizeof(uint64) * cap);
  ItemPointerData* slots = (ItemPointerData*)palloc(sizeof(ItemPointerData) * HnswNeighborSlots(HNSW_MAX_LEVEL, m));

  InspectItem first;
  if (!ReadElementNow(st, &meta.entry, 0, &first)) return;  // reported by CheckEntryPoint
  *(InspectItem*)hash_search(reached, &first.id, HASH_ENTER, NULL) = first;
  queue[tail++] = first.id;
  while (head < tail) {
    CHECK_FOR_INTERRUPTS();
    uint64 id = queue[head++];
    InspectItem* e = (InspectItem*)hash_search(reached, &id, HASH_FIND, NULL);
    BlockNumber nblk = ItemPointerGetBlockNumberNoCheck(&e->neighbortid);
    if (nblk == HNSW_METAPAGE_BLKNO || nblk >= st->nblocks) continue;
    Buffer buf = ReadBufferExtended(st->index, MAIN_FORKNUM, nblk, RBM_NORMAL, NULL);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    int count = 0;
    if (HnswPageProblem(BufferGetPage(buf), nblk) == NULL) {
      HnswNeighborTuple ntup =
          HnswPageGetNeighbors(BufferGetPage(buf), ItemPointerGetOffsetNumberNoCheck(&e->neighbortid), m);
      if (ntup != NULL && ntup->level == e->level) {
        // Level 0 only: a scan returns the rows it reaches through level-0
        // links, so an element linked only on upper levels is lost to it.
        count = Min((int)ntup->count, HnswLevelSlots(0, m));
        memcpy(slots, ntup->ids, sizeof(ItemPointerData) * count);
      }
    }
    UnlockReleaseBuffer(buf);
    for (int i = 0; i < count; i++) {
      if (!ItemPointerIsValid(&slots[i])) continue;
      uint64 tid = HnswPackTid(&slots[i]);
      if (hash_search(reached, &tid, HASH_FIND, NULL) != NULL) continue;
      InspectItem target;
      InspectItem* known = FindItem(st, &slots[i]);
      if (known != NULL && known->kind == HNSW_ELEMENT_TUPLE)
        target = *known;
      else if (!ReadElementNow(st, &slots[i], 0, &target))
        continue;
      *(InspectItem*)hash_search(reached, &tid, HASH_ENTER, NULL) = target;
      if (tail == cap) {
        cap *= 2;
        queue = (uint64*)repalloc_huge(queue, sizeof(uint64) * cap);
      }
      queue[tail++] = tid;
    }
  }

  int64 unreachable = 0;
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, st->items);
  InspectItem* e;
  while ((e = (InspectItem*)hash_seq_search(&seq)) != NULL) {
    if (e->kind != HNSW_ELEMENT_TUPLE || (e->flags & HNSW_ELEMENT_DELETED)) continue;
    if (hash_search(reached, &e->id, HASH_FIND, NULL) != NULL) continue;
    ItemPointerData tid;
    HnswUnpackTid(e->id, &tid);
    InspectItem now;
    if (!ReadElementNow(st, &tid, 0, &now) || (now.flags & HNSW_ELEMENT_DELETED)) continue;
    unreachable++;
    if (unreachable <= HNSW_CHECK_MAX_LISTED)
      Problem(st, "element (%u,%u) is not reachable from the entry point", ItemPointerGetBlockNumber(&tid),
              ItemPointerGetOffsetNumber(&tid));
  }
  if (unreachable > HNSW_CHECK_MAX_LISTED)
    Problem(st, "%lld live elements in all are not reachable from the entry point", (long long)unreachable);
}

// heapallindexed: every indexable visible row has an element.
struct HeapCheckState {
  InspectState* st;
  int64 missing;
};

static void HeapCheckCallback(Relation index, ItemPointer tid, Datum* values, bool* isnull, bool tupleIsAlive,
                              void* state) {
  HeapCheckState* hs = (HeapCheckState*)state;
  InspectState* st = hs->st;
  if (isnull[0]) return;
  Vector* v = HnswPrepareValue(index, values[0], (int)st->meta.dimensions);
  if (v == NULL) return;  // zero vector under cosine: not indexed by design
  uint64 key = HnswPackTid(tid);
  if (hash_search(st->heaptids, &key, HASH_FIND, NULL) != NULL) return;
  hs->missing++;
  if (hs->missing <= HNSW_CHECK_MAX_LISTED)
    Problem(st, "heap row (%u,%u) is not indexed", ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
}

static void CheckHeapAllIndexed(InspectState* st, Relation heap, Snapshot snapshot) {
  if (!st->index->rd_index->indisvalid) {
    Problem(st, "index is not valid (an interrupted CREATE INDEX CONCURRENTLY?): heap rows not checked");
    return;
  }
  IndexInfo* info = BuildIndexInfo(st->index);
  info->ii_Concurrent = true;  // visible rows of `snapshot` only
  TableScanDesc scan = table_beginscan_strat(heap, snapshot, 0, NULL, true, true);
  HeapCheckState hs;
  hs.st = st;
  hs.missing = 0;
  table_index_build_scan(heap, st->index, info, true, false, HeapCheckCallback, &hs, scan);
  if (hs.missing > HNSW_CHECK_MAX_LISTED)
    Problem(st, "%lld visible heap rows in all are not indexed", (long long)hs.missing);
}

// Permission, locks, and the hnsw check of the relation.
static void OpenForInspection(Oid indexoid, Relation* heap, Relation* index) {
  Oid heapoid = IndexGetRelation(indexoid, true);
  if (!OidIsValid(heapoid)) {
    char* name = get_rel_name(indexoid);
    if (name == NULL)
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", indexoid)));
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not an index", name)));
  }
  if (!pg_class_ownercheck(heapoid, GetUserId()) && !has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied to inspect index \"%s\"", get_rel_name(indexoid)),
                    errdetail("Only the owner of the table and members of pg_monitor may inspect its indexes.")));
  *heap = table_open(heapoid, AccessShareLock);
  *index = index_open(indexoid, AccessShareLock);
  if (IndexGetRelation(indexoid, true) != heapoid)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("index \"%s\" changed while it was being opened", RelationGetRelationName(*index))));
  if (!HnswIsHnswIndex(*index))
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                    errmsg("\"%s\" is not an hnsw index", RelationGetRelationName(*index))));
  if (RELATION_IS_OTHER_TEMP(*index))
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("cannot inspect temporary indexes of other sessions")));
}

static void InitInspectState(InspectState* st, Relation index) {
  memset(st, 0, sizeof(*st));
  st->index = index;
  st->page = (char*)palloc(BLCKSZ);
  HASHCTL ctl;
  memset(&ctl, 0, sizeof(ctl));
  ctl.keysize = sizeof(uint64);
  ctl.entrysize = sizeof(InspectItem);
  ctl.hcxt = CurrentMemoryContext;
  st->items = hash_create("hnsw inspect items", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  ctl.entrysize = sizeof(InspectHeapTid);
  st->heaptids = hash_create("hnsw inspect heap tids", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

VECEXT_FUNCTION(hnsw_index_check) {
  Oid indexoid = PG_GETARG_OID(0);
  bool heapallindexed = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
  InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
  ReturnSetInfo* rsinfo = (ReturnSetInfo*)fcinfo->resultinfo;

  Relation heap, index;
  OpenForInspection(indexoid, &heap, &index);
  // The snapshot is taken before the index is read: a row it sees was
  // inserted, index entry included, before the index pages are read.
  Snapshot snapshot = heapallindexed ? RegisterSnapshot(GetTransactionSnapshot()) : NULL;

  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw_index_check", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt);
  InspectState st;
  InitInspectState(&st, index);
  st.max_level = -1;
  MemoryContextSwitchTo(old);
  st.out = rsinfo->setResult;
  st.outdesc = rsinfo->setDesc;

  // The problems go to the tuplestore, allocated in its own context; the
  // work happens in `cxt`.
  old = MemoryContextSwitchTo(cxt);
  LoadIndex(&st);
  if (st.meta_ok) {
    CheckOwnership(&st);
    CheckEntryPoint(&st);
    CheckLinks(&st, NULL, NULL, NULL);
    CheckReachability(&st);
    if (heapallindexed) CheckHeapAllIndexed(&st, heap, snapshot);
  }
  if (st.nproblems > HNSW_CHECK_MAX_PROBLEMS) {
    long long total = (long long)st.nproblems;
    st.nproblems = -1;  // lets the summary line through
    Problem(&st, "... %lld problems in all (only the first %d are listed)", total, HNSW_CHECK_MAX_PROBLEMS);
  }
  MemoryContextSwitchTo(old);
  MemoryContextDelete(cxt);

  if (snapshot != NULL) UnregisterSnapshot(snapshot);
  index_close(index, AccessShareLock);
  table_close(heap, AccessShareLock);
  return (Datum)0;
}

// The OUT parameters of hnsw_index_stats (src/sql/20_hnsw.sql): the first
// HNSW_STATS_BASE_COLS, optionally followed by the value list columns:
//   value_lists int4          lists per element (0: the index has none)
//   value_slots int4          links per list
//   value_directory int4      frequent values in the directory
//   value_list_elements int8  live elements with a list holding a link
//   value_list_avg_links float8  links per used list (one with a key)
#define HNSW_STATS_BASE_COLS 17
#define HNSW_STATS_VALUE_COLS 5
static const struct {
  const char* name;
  Oid type;
} hnsw_stats_value_cols[HNSW_STATS_VALUE_COLS] = {{"value_lists", INT4OID},
                                                  {"value_slots", INT4OID},
                                                  {"value_directory", INT4OID},
                                                  {"value_list_elements", INT8OID},
                                                  {"value_list_avg_links", FLOAT8OID}};

// Whether the result row has the value list columns (an install script
// without them has HNSW_STATS_BASE_COLS columns); ERROR for another shape.
static bool HnswStatsHasValueColumns(TupleDesc tupdesc) {
  if (tupdesc->natts == HNSW_STATS_BASE_COLS) return false;
  bool ok = tupdesc->natts == HNSW_STATS_BASE_COLS + HNSW_STATS_VALUE_COLS;
  for (int i = 0; ok && i < HNSW_STATS_VALUE_COLS; i++) {
    Form_pg_attribute att = TupleDescAttr(tupdesc, HNSW_STATS_BASE_COLS + i);
    ok = att->atttypid == hnsw_stats_value_cols[i].type && strcmp(NameStr(att->attname), hnsw_stats_value_cols[i].name) == 0;
  }
  if (!ok)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("hnsw_index_stats: unexpected result columns (%d)", tupdesc->natts),
                    errhint("The installed SQL definition of the function does not match the library; update the "
                            "extension.")));
  return true;
}

// One row: see the OUT parameters of hnsw_index_stats in src/sql/20_hnsw.sql.
VECEXT_FUNCTION(hnsw_index_stats) {
  Oid indexoid = PG_GETARG_OID(0);
  TupleDesc tupdesc;
  if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("function returning record called in context "
                                                                   "that cannot accept type record")));
  tupdesc = BlessTupleDesc(tupdesc);
  const bool value_cols = HnswStatsHasValueColumns(tupdesc);

  Relation heap, index;
  OpenForInspection(indexoid, &heap, &index);
  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw_index_stats", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt);
  InspectState st;
  InitInspectState(&st, index);
  st.max_level = -1;
  LoadIndex(&st);  // ERRORs on a corrupted metapage; skips invalid items
  int nlevels = st.max_level + 1;
  int64 degree_sum[HNSW_MAX_LEVEL + 1];
  int degree_min[HNSW_MAX_LEVEL + 1];
  int64 level_count[HNSW_MAX_LEVEL + 1];
  for (int i = 0; i <= HNSW_MAX_LEVEL; i++) {
    degree_sum[i] = 0;
    degree_min[i] = -1;
    level_count[i] = 0;
  }
  CheckLinks(&st, degree_sum, degree_min, level_count);
  MemoryContextSwitchTo(old);

  Datum* counts = (Datum*)palloc(sizeof(Datum) * (nlevels > 0 ? nlevels : 1));
  Datum* avgs = (Datum*)palloc(sizeof(Datum) * (nlevels > 0 ? nlevels : 1));
  Datum* mins = (Datum*)palloc(sizeof(Datum) * (nlevels > 0 ? nlevels : 1));
  for (int i = 0; i < nlevels; i++) {
    counts[i] = Int64GetDatum(level_count[i]);
    avgs[i] = Float8GetDatum(level_count[i] > 0 ? (double)degree_sum[i] / (double)level_count[i] : 0.0);
    mins[i] = Int32GetDatum(degree_min[i] < 0 ? 0 : degree_min[i]);
  }

  Datum values[HNSW_STATS_BASE_COLS + HNSW_STATS_VALUE_COLS];
  bool nulls[HNSW_STATS_BASE_COLS + HNSW_STATS_VALUE_COLS];
  memset(nulls, 0, sizeof(nulls));
  values[0] = Int64GetDatum(st.live);
  values[1] = Int64GetDatum(st.deleted);
  values[2] = Int32GetDatum(nlevels);
  values[3] = Int32GetDatum(st.meta.entry_level);
  values[4] = PointerGetDatum(construct_array(counts, nlevels, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[5] = PointerGetDatum(construct_array(avgs, nlevels, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  values[6] = PointerGetDatum(construct_array(mins, nlevels, INT4OID, 4, true, TYPALIGN_INT));
  values[7] = Int64GetDatum((int64)st.nblocks);
  values[8] = Int64GetDatum((int64)st.nblocks * BLCKSZ);
  values[9] = Int32GetDatum(st.meta.m);
  values[10] = Int32GetDatum(st.meta.ef_construction);
  values[11] = CStringGetTextDatum(HnswMetricName(st.meta.metric));
  values[12] = Int32GetDatum((int32)st.meta.dimensions);
  values[13] =
      CStringGetTextDatum(st.meta.quantization == 0 ? "none" : (st.meta.quantization == 1 ? "sq8" : "unknown"));
  // Bytes of one element tuple and of its neighbour tuple on level 0 (with
  // their line pointers), and of the SQ8 parameters (0 without).
  values[14] = Int32GetDatum((int32)(HNSW_ELEMENT_TUPLE_SIZE_Q(st.meta.quantization, (int)st.meta.dimensions) +
                                     sizeof(ItemIdData)));
  values[15] = Int32GetDatum((int32)(HnswNeighborTupleSizeV(HnswNeighborSlots(0, st.meta.m),
                                                            (st.meta.flags & HNSW_META_LINK_CODES) != 0, st.vlists,
                                                            st.vslots) +
                                      sizeof(ItemIdData)));
  values[16] = Int64GetDatum(st.meta.quantization == HNSW_QUANT_SQ8 ? (int64)st.meta.params_bytes : 0);
  if (value_cols) {
    values[17] = Int32GetDatum(st.vlists);
    values[18] = Int32GetDatum(st.vslots);
    values[19] = Int32GetDatum(st.ndirectory);
    values[20] = Int64GetDatum(st.value_elements);
    values[21] =
        Float8GetDatum(st.value_used_lists > 0 ? (double)st.value_links / (double)st.value_used_lists : 0.0);
  }
  HeapTuple tuple = heap_form_tuple(tupdesc, values, nulls);

  MemoryContextDelete(cxt);
  index_close(index, AccessShareLock);
  table_close(heap, AccessShareLock);
  PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}
