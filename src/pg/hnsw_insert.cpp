// hnsw inserts: aminsert, and HnswInsertElement for one new element (also
// the build's on-disk fallback).
//
// LOCK PROTOCOL (the full text is in hnsw.h; this is how an insert follows it)
//  - Heavyweight: the whole insert holds HNSW_UPDATE_LOCK in ShareLock, so
//    vacuum's barrier waits for it. When the new element's level is above
//    the entry level, the insert takes ExclusiveLock instead, re-reads the
//    metapage, and moves the entry point only after the element is linked.
//    (A build, `building`, is alone on the index and takes no lock.)
//  - Buffers: every page is read under a shared content lock and written
//    under an exclusive one, one page at a time; the metapage is only locked
//    while no other page is. Tuples are built in local memory first.
//  - Order of writes, each WAL-logged through GenericXLog before the insert
//    returns: (1) the new neighbour tuple and element tuple (one page, one
//    record, when both fit); (2) a back-link in each chosen neighbour's
//    neighbour tuple, re-read under the exclusive lock (a free slot is used;
//    a full list is pruned with the heuristic, computed without locks and
//    written only if the list did not change meanwhile), then, in indexes
//    with value lists, one in the value list for the same key of each
//    neighbour chosen for the new element's value lists (the same way);
//    (3) the entry point. A reader therefore never reaches an element whose
//    own links are not written yet, and a crash leaves at worst an element
//    with fewer back-links.
//  - Deleted elements (HNSW_ELEMENT_DELETED) are traversed but never chosen
//    as neighbours, and are dropped from a neighbour list that gets pruned.
//
// VALUE LISTS (indexes built WITH (value_lists = N), hnsw.h): a new row gets
// a list for each of its metadata values in the index's directory (at most
// N, fewest rows first, as the build chooses), filled with its nearest rows
// with that value, which a level-0 two-hop search filtered to the value
// finds from the main search's level-0 results.
#include "pg/pg_includes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

extern "C" {
#include "access/generic_xlog.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
}

#include "core/distance.h"
#include "core/hnsw_heuristic.h"
#include "core/hnsw_search.h"
#include "core/hnsw_value_lists.h"
#include "core/index_distance.h"
#include "core/meta_filter.h"
#include "pg/guard.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_internal.h"
#include "pg/hnsw_store.h"
#include "pg/vector.h"

using vecext::hnsw::Candidate;
using vecext::hnsw::ElementId;
using vecext::hnsw::LayerSearch;
using vecext::hnsw::SearchScratch;

// Free bytes of an empty element page (tuples plus their line pointers), and
// the largest (MAXALIGNed) item that fits on one.
#define HNSW_EMPTY_PAGE_FREE (BLCKSZ - SizeOfPageHeaderData - MAXALIGN(sizeof(HnswPageOpaqueData)))
#define HNSW_PAGE_ITEM_ROOM ((HNSW_EMPTY_PAGE_FREE - sizeof(ItemIdData)) & ~(Size)(MAXIMUM_ALIGNOF - 1))

// Tries to fit a pruned neighbour list this many times when concurrent
// inserts keep changing it; then the back-link is skipped.
#define HNSW_BACKLINK_ATTEMPTS 3

// One page modification: through GenericXLog, or in place during a build
// (whose pages are WAL-logged in bulk afterwards).
struct HnswPageWrite {
  GenericXLogState* state;
  Buffer buf;
  Page page;
  bool building;
};

static Page HnswBeginWrite(HnswPageWrite* w, Relation index, Buffer buf, bool building, bool full_image) {
  w->buf = buf;
  w->building = building;
  w->state = NULL;
  if (building) {
    w->page = BufferGetPage(buf);
  } else {
    w->state = GenericXLogStart(index);
    w->page = GenericXLogRegisterBuffer(w->state, buf, full_image ? GENERIC_XLOG_FULL_IMAGE : 0);
  }
  return w->page;
}

static void HnswFinishWrite(HnswPageWrite* w) {
  if (w->building) {
    MarkBufferDirty(w->buf);
  } else {
    GenericXLogFinish(w->state);
  }
}

// The level of a new element: P(level >= l) = m^-l (mL = 1 / ln m), capped.
// The uniform draw is a hash of the heap TID rather than a random number, so
// the same rows inserted in the same order build the same graph (repeatable
// tests and benchmarks); TIDs carry no information about the vectors.
static int HnswRandomLevel(int m, ItemPointer heaptid, bool codes, int vlists, int vslots) {
  uint64 x = HnswPackTid(heaptid) + UINT64CONST(0x9E3779B97F4A7C15);  // splitmix64
  x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
  x ^= x >> 31;
  const double u = (double)(x >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
  const double level = -std::log(1.0 - u) / std::log((double)m);
  const int cap = HnswMaxLevelForM(m, codes, vlists, vslots);
  return level >= (double)cap ? cap : (int)level;
}

// Whether `page` (an initialised element page) has room for `size` bytes of
// tuples in `items` new line pointers.
static bool HnswPageHasRoom(Page page, Size size, int items) {
  return PageGetExactFreeSpace(page) >= size + (Size)items * sizeof(ItemIdData);
}

// A buffer, exclusively locked, of an element page with room for `size`
// bytes in `items` items: from the FSM, else the metapage's insert_page hint,
// else a new page (*is_new: the caller must initialise it and log it in full).
static Buffer HnswFindSpace(Relation index, Size size, int items, BlockNumber hint, bool* is_new) {
  *is_new = false;
  const Size need = size + (Size)items * sizeof(ItemIdData);
  BlockNumber blkno = GetPageWithFreeSpace(index, need);
  while (blkno != InvalidBlockNumber) {
    Buffer buf = ReadBuffer(index, blkno);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page = BufferGetPage(buf);
    if (HnswStoreCheckElementPage(index, page, blkno) && HnswPageHasRoom(page, size, items)) return buf;
    const Size actual = PageIsNew(page) ? 0 : PageGetExactFreeSpace(page);
    UnlockReleaseBuffer(buf);
    blkno = RecordAndGetPageWithFreeSpace(index, blkno, actual, need);
  }
  if (hint != InvalidBlockNumber && hint != HNSW_METAPAGE_BLKNO && hint < RelationGetNumberOfBlocks(index)) {
    Buffer buf = ReadBuffer(index, hint);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page = BufferGetPage(buf);
    if (HnswStoreCheckElementPage(index, page, hint) && HnswPageHasRoom(page, size, items)) return buf;
    UnlockReleaseBuffer(buf);
  }
  LockRelationForExtension(index, ExclusiveLock);
  Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  UnlockRelationForExtension(index, ExclusiveLock);
  *is_new = true;
  return buf;
}

static OffsetNumber HnswAddItem(Relation index, Page page, BlockNumber blkno, const void* item, Size size) {
  OffsetNumber off = PageAddItem(page, (Item)item, size, InvalidOffsetNumber, false, false);
  if (off == InvalidOffsetNumber) HnswReportCorruption(index, blkno, "failed to add an item to a page with room");
  return off;
}

// Records the last extended page in the metapage (a hint for the next insert).
static void HnswSetInsertPage(Relation index, BlockNumber blkno, bool building) {
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  HnswMetaPage current = HnswPageGetMeta(BufferGetPage(buf));
  if (current->magic == HNSW_MAGIC &&
      (current->insert_page == InvalidBlockNumber || current->insert_page < blkno)) {
    HnswPageWrite w;
    Page page = HnswBeginWrite(&w, index, buf, building, false);
    HnswPageGetMeta(page)->insert_page = blkno;
    HnswFinishWrite(&w);
  }
  UnlockReleaseBuffer(buf);
}

// Writes a new element and its neighbour tuple (on one page when they fit);
// sets etup->neighbortid and returns the element's TID in *etid.
static void HnswWriteElement(Relation index, HnswElementTuple etup, Size esize, HnswNeighborTuple ntup, Size nsize,
                             BlockNumber hint, bool building, ItemPointer etid) {
  bool is_new;
  BlockNumber extended = InvalidBlockNumber;
  if (esize + nsize + 2 * sizeof(ItemIdData) <= HNSW_EMPTY_PAGE_FREE) {
    Buffer buf = HnswFindSpace(index, esize + nsize, 2, hint, &is_new);
    const BlockNumber blkno = BufferGetBlockNumber(buf);
    HnswPageWrite w;
    Page page = HnswBeginWrite(&w, index, buf, building, is_new);
    if (is_new) {
      HnswInitPage(page, HNSW_PAGE_ELEMENT);
      extended = blkno;
    }
    const OffsetNumber noff = HnswAddItem(index, page, blkno, ntup, nsize);
    ItemPointerSet(&etup->neighbortid, blkno, noff);
    const OffsetNumber eoff = HnswAddItem(index, page, blkno, etup, esize);
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
    ItemPointerSet(etid, blkno, eoff);
  } else {
    // Too large for one page: the neighbour tuple first, so the element never
    // points at a neighbour tuple that is not there.
    Buffer buf = HnswFindSpace(index, nsize, 1, hint, &is_new);
    BlockNumber blkno = BufferGetBlockNumber(buf);
    HnswPageWrite w;
    Page page = HnswBeginWrite(&w, index, buf, building, is_new);
    if (is_new) {
      HnswInitPage(page, HNSW_PAGE_ELEMENT);
      extended = blkno;
    }
    const OffsetNumber noff = HnswAddItem(index, page, blkno, ntup, nsize);
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
    ItemPointerSet(&etup->neighbortid, blkno, noff);

    buf = HnswFindSpace(index, esize, 1, hint, &is_new);
    blkno = BufferGetBlockNumber(buf);
    page = HnswBeginWrite(&w, index, buf, building, is_new);
    if (is_new) {
      HnswInitPage(page, HNSW_PAGE_ELEMENT);
      extended = Max(extended == InvalidBlockNumber ? 0 : extended, blkno);
    }
    const OffsetNumber eoff = HnswAddItem(index, page, blkno, etup, esize);
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
    ItemPointerSet(etid, blkno, eoff);
  }
  if (extended != InvalidBlockNumber) HnswSetInsertPage(index, extended, building);
}

// Everything one insert needs while it links the new element.
struct HnswInsertState {
  Relation index;
  bool building;
  int dim;
  int m;
  vecext::DistanceFn distance;  // the index distance (symmetric)
  HnswStore store;
  ElementId new_id;
  int value_lists;  // value lists per neighbour tuple (HNSW_META_VALUE_LISTS), or 0
  int value_slots;  // links per value list
};

// How HnswAddBackLink treats a full neighbour list.
enum HnswBackLinkMode {
  HNSW_LINK_FREE_SLOT,  // only a free slot (or an existing link) will do
  HNSW_LINK_HEURISTIC,  // the heuristic decides whether the target replaces a link
  HNSW_LINK_FORCE,      // the target replaces the heuristic's last pick
};

// Elements a pruned level-0 list dropped (HnswAddBackLink collects them, the
// insert then gives each a new in-link: HnswRelink), with the neighbour
// tuple of the list that dropped each.
#define HNSW_MAX_DROPPED 64
struct HnswDropped {
  ElementId ids[HNSW_MAX_DROPPED];
  ItemPointerData owners[HNSW_MAX_DROPPED];
  int n;
};

// Adds a link to `target` (whose vector is target_vec) in the list on level
// lc of element e, whose neighbour tuple is *ntid and vector e_vec;
// `distance` is the distance between e and target. Returns whether e now
// links to target. A full list is handled per `mode`; a level-0 link that a
// pruning drops is added to *dropped (it may have been that element's last
// in-link).
static bool HnswAddBackLink(HnswInsertState* st, const ItemPointerData* ntid, const void* e_vec, float distance,
                            ElementId target, const void* target_vec, uint64 target_code, int lc,
                            HnswBackLinkMode mode, HnswDropped* dropped) {
  const int m = st->m;
  const int start = HnswLevelStart(lc, m);
  const int slots = HnswLevelSlots(lc, m);
  const BlockNumber blkno = ItemPointerGetBlockNumber(ntid);
  const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno >= RelationGetNumberOfBlocks(st->index)) return false;

  ItemPointerData snapshot[vecext::hnsw::kMaxLinks];
  for (int attempt = 0; attempt < HNSW_BACKLINK_ATTEMPTS; attempt++) {
    Buffer buf = ReadBuffer(st->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page = BufferGetPage(buf);
    HnswNeighborTuple ntup = NULL;
    if (HnswStoreCheckElementPage(st->index, page, blkno)) ntup = HnswStoreGetNeighbors(page, off, m);
    if (ntup == NULL || ntup->level < lc) {
      UnlockReleaseBuffer(buf);  // e's links are gone (vacuum) or not what we expected
      return false;
    }
    ItemPointerData* links = &ntup->ids[start];
    int free_slot = -1;
    for (int i = 0; i < slots; i++) {
      if (!HnswLinkIsValid(&links[i])) {
        if (free_slot < 0) free_slot = i;
      } else if (HnswPackTid(&links[i]) == target) {
        UnlockReleaseBuffer(buf);  // already linked
        return true;
      }
    }
    if (free_slot >= 0) {
      HnswPageWrite w;
      Page wpage = HnswBeginWrite(&w, st->index, buf, st->building, false);
      HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
      HnswSetLink(wtup, ItemIdGetLength(PageGetItemId(wpage, off)), st->store.link_codes, start + free_slot, target,
                  target_code);
      HnswFinishWrite(&w);
      UnlockReleaseBuffer(buf);
      return true;
    }
    if (mode == HNSW_LINK_FREE_SLOT) {
      UnlockReleaseBuffer(buf);
      return false;
    }
    // Full: decide with the heuristic around e, without holding the lock.
    memcpy(snapshot, links, sizeof(ItemPointerData) * (Size)slots);
    UnlockReleaseBuffer(buf);

    ElementId ids[vecext::hnsw::kMaxLinks];
    int n = 0;
    for (int i = 0; i < slots; i++) ids[n++] = HnswPackTid(&snapshot[i]);
    const Size ds = st->store.data_size;
    char* vecs = (char*)palloc(ds * (Size)(n + 1));
    HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)n);
    HnswStoreLoadElements(&st->store, ids, n, vecs, info);
    Candidate cands[vecext::hnsw::kMaxLinks + 1];
    const char* cand_vecs[vecext::hnsw::kMaxLinks + 1];
    int nc = 0;
    for (int i = 0; i < n; i++) {
      if (!info[i].valid || info[i].deleted || info[i].level < lc) continue;  // dropped from the list
      const char* v = vecs + (Size)i * ds;
      cands[nc] = Candidate{HnswStoreDataDistance(&st->store, e_vec, v), ids[i], (uint64)i};
      nc++;
    }
    cands[nc++] = Candidate{distance, target, (uint64)n};
    memcpy(vecs + (Size)n * ds, target_vec, ds);
    std::sort(cands, cands + nc, vecext::hnsw::Closer);
    for (int i = 0; i < nc; i++) cand_vecs[i] = vecs + (Size)cands[i].aux * ds;
    int chosen[vecext::hnsw::kMaxLinks + 1];
    const HnswStore* store = &st->store;
    const int nselected = vecext::hnsw::SelectNeighborsBy(
        cands, nc, slots, [&](int i, int j) { return HnswStoreDataDistance(store, cand_vecs[i], cand_vecs[j]); },
        false, chosen);
    int nchosen = nselected;
    bool keeps_target = false;
    for (int i = 0; i < nchosen; i++) keeps_target = keeps_target || cands[chosen[i]].id == target;
    if (!keeps_target) {
      if (mode != HNSW_LINK_FORCE) return false;  // e is better off without the target
      int at = 0;
      while (cands[at].id != target) at++;
      if (nchosen < slots) nchosen++;
      chosen[nchosen - 1] = at;
    }
    // Keep pruned links while there is room: the list was full, and every old
    // link it drops may be another element's last level-0 in-link. Filling
    // the free slots with the candidates the heuristic passed over (closest
    // first) drops only the farthest one.
    bool picked[vecext::hnsw::kMaxLinks + 1] = {};
    for (int i = 0; i < nchosen; i++) picked[chosen[i]] = true;
    for (int i = 0; i < nc && nchosen < slots; i++) {
      if (!picked[i]) {
        chosen[nchosen++] = i;
        picked[i] = true;
      }
    }

    buf = ReadBuffer(st->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    page = BufferGetPage(buf);
    ntup = NULL;
    if (HnswStoreCheckElementPage(st->index, page, blkno)) ntup = HnswStoreGetNeighbors(page, off, m);
    if (ntup == NULL || ntup->level < lc) {
      UnlockReleaseBuffer(buf);
      return false;
    }
    if (memcmp(snapshot, &ntup->ids[start], sizeof(ItemPointerData) * (Size)slots) != 0) {
      UnlockReleaseBuffer(buf);  // changed meanwhile: look again
      continue;
    }
    HnswPageWrite w;
    Page wpage = HnswBeginWrite(&w, st->index, buf, st->building, false);
    HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
    const Size wlen = ItemIdGetLength(PageGetItemId(wpage, off));
    for (int i = 0; i < slots; i++) {
      if (i < nchosen) {
        const int k = (int)cands[chosen[i]].aux;  // info index, or n: the target
        HnswSetLink(wtup, wlen, st->store.link_codes, start + i, cands[chosen[i]].id,
                    k < n ? info[k].code : target_code);
      } else {
        ItemPointerSetInvalid(&wtup->ids[start + i]);
      }
    }
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
    for (int i = 0; lc == 0 && dropped != NULL && i < nc; i++) {
      if (!picked[i] && dropped->n < HNSW_MAX_DROPPED) {
        dropped->owners[dropped->n] = *ntid;
        dropped->ids[dropped->n++] = cands[i].id;
      }
    }
    return true;
  }
  return false;  // the list kept changing under us
}

// The value list with key `key` of the neighbour tuple at `off` of a locked
// page (*ntup set), or -1 when the element has none (or its neighbour tuple
// is gone or too short to hold value lists).
static int HnswFindValueList(const HnswInsertState* st, Page page, BlockNumber blkno, OffsetNumber off, uint64 key,
                             HnswNeighborTuple* ntup) {
  *ntup = NULL;
  if (!HnswStoreCheckElementPage(st->index, page, blkno)) return -1;
  HnswNeighborTuple t = HnswStoreGetNeighbors(page, off, st->m);
  if (t == NULL ||
      ItemIdGetLength(PageGetItemId(page, off)) < HnswNeighborTupleSizeV(t->count, true, st->value_lists, st->value_slots))
    return -1;
  *ntup = t;
  for (int j = 0; j < st->value_lists; j++) {
    if (HnswValueListKey(HnswNeighborValueList(t, j, st->value_slots)) == key) return j;
  }
  return -1;
}

// Adds a link to `target` (whose data is target_vec) in the value list with
// key `key` of element e, whose neighbour tuple is *ntid and data e_vec;
// `distance` is the distance between e and target. Returns whether e now
// links to target there (false when e has no list for the key). A full list
// is pruned like a level list in HnswAddBackLink (the heuristic computed
// without locks, written only if the list did not change meanwhile; per
// `mode`), and the candidates the heuristic passes over fill the remaining
// slots closest first, as in the build's value lists.
static bool HnswAddValueBackLink(HnswInsertState* st, const ItemPointerData* ntid, const void* e_vec, float distance,
                                 ElementId target, const void* target_vec, uint64 key, HnswBackLinkMode mode) {
  const int vslots = st->value_slots;
  const BlockNumber blkno = ItemPointerGetBlockNumber(ntid);
  const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  if (st->value_lists <= 0 || vslots < 1 || vslots > vecext::hnsw::kMaxLinks || blkno == HNSW_METAPAGE_BLKNO ||
      blkno >= RelationGetNumberOfBlocks(st->index))
    return false;

  ItemPointerData snapshot[vecext::hnsw::kMaxLinks];
  for (int attempt = 0; attempt < HNSW_BACKLINK_ATTEMPTS; attempt++) {
    Buffer buf = ReadBuffer(st->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    Page page = BufferGetPage(buf);
    HnswNeighborTuple ntup;
    const int j = HnswFindValueList(st, page, blkno, off, key, &ntup);
    if (j < 0) {
      UnlockReleaseBuffer(buf);  // no list for the key (or e's links are gone)
      return false;
    }
    ItemPointerData* links = HnswValueListIds(HnswNeighborValueList(ntup, j, vslots));
    int free_slot = -1;
    for (int i = 0; i < vslots; i++) {
      if (!HnswLinkIsValid(&links[i])) {
        if (free_slot < 0) free_slot = i;
      } else if (HnswPackTid(&links[i]) == target) {
        UnlockReleaseBuffer(buf);  // already linked
        return true;
      }
    }
    if (free_slot >= 0) {
      HnswPageWrite w;
      Page wpage = HnswBeginWrite(&w, st->index, buf, st->building, false);
      HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
      HnswUnpackTid(target, &HnswValueListIds(HnswNeighborValueList(wtup, j, vslots))[free_slot]);
      HnswFinishWrite(&w);
      UnlockReleaseBuffer(buf);
      return true;
    }
    if (mode == HNSW_LINK_FREE_SLOT) {
      UnlockReleaseBuffer(buf);
      return false;
    }
    // Full: decide with the heuristic around e, without holding the lock.
    memcpy(snapshot, links, sizeof(ItemPointerData) * (Size)vslots);
    UnlockReleaseBuffer(buf);

    ElementId ids[vecext::hnsw::kMaxLinks];
    const int n = vslots;
    for (int i = 0; i < n; i++) ids[i] = HnswPackTid(&snapshot[i]);
    const Size ds = st->store.data_size;
    char* vecs = (char*)palloc(ds * (Size)(n + 1));
    HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)n);
    HnswStoreLoadElements(&st->store, ids, n, vecs, info);
    Candidate cands[vecext::hnsw::kMaxLinks + 1];
    const char* cand_vecs[vecext::hnsw::kMaxLinks + 1];
    int nc = 0;
    for (int i = 0; i < n; i++) {
      if (!info[i].valid || info[i].deleted) continue;  // dropped from the list
      cands[nc++] = Candidate{HnswStoreDataDistance(&st->store, e_vec, vecs + (Size)i * ds), ids[i], (uint64)i};
    }
    cands[nc++] = Candidate{distance, target, (uint64)n};
    memcpy(vecs + (Size)n * ds, target_vec, ds);
    std::sort(cands, cands + nc, vecext::hnsw::Closer);
    for (int i = 0; i < nc; i++) cand_vecs[i] = vecs + (Size)cands[i].aux * ds;
    int chosen[vecext::hnsw::kMaxLinks + 1];
    const HnswStore* store = &st->store;
    int nchosen = vecext::hnsw::SelectNeighborsBy(
        cands, nc, vslots, [&](int a, int b) { return HnswStoreDataDistance(store, cand_vecs[a], cand_vecs[b]); },
        false, chosen);
    bool keeps_target = false;
    for (int i = 0; i < nchosen; i++) keeps_target = keeps_target || cands[chosen[i]].id == target;
    if (!keeps_target) {
      if (mode != HNSW_LINK_FORCE) return false;  // e is better off without the target
      int at = 0;
      while (cands[at].id != target) at++;
      if (nchosen < vslots) nchosen++;
      chosen[nchosen - 1] = at;
    }
    bool picked[vecext::hnsw::kMaxLinks + 1] = {};
    for (int i = 0; i < nchosen; i++) picked[chosen[i]] = true;
    for (int i = 0; i < nc && nchosen < vslots; i++) {
      if (!picked[i]) {
        chosen[nchosen++] = i;
        picked[i] = true;
      }
    }

    buf = ReadBuffer(st->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    page = BufferGetPage(buf);
    if (HnswFindValueList(st, page, blkno, off, key, &ntup) != j) {
      UnlockReleaseBuffer(buf);  // the list is gone
      return false;
    }
    if (memcmp(snapshot, HnswValueListIds(HnswNeighborValueList(ntup, j, vslots)),
               sizeof(ItemPointerData) * (Size)vslots) != 0) {
      UnlockReleaseBuffer(buf);  // changed meanwhile: look again
      continue;
    }
    HnswPageWrite w;
    Page wpage = HnswBeginWrite(&w, st->index, buf, st->building, false);
    HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
    ItemPointerData* wlinks = HnswValueListIds(HnswNeighborValueList(wtup, j, vslots));
    for (int i = 0; i < vslots; i++) {
      if (i < nchosen) {
        HnswUnpackTid(cands[chosen[i]].id, &wlinks[i]);
      } else {
        ItemPointerSetInvalid(&wlinks[i]);
      }
    }
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
    return true;
  }
  return false;  // the list kept changing under us
}

static void* HnswInsertAllocate(void* ctx, std::size_t bytes) {
  return MemoryContextAllocHuge((MemoryContext)ctx, bytes);
}
static void HnswInsertRelease(void*, void* p) { pfree(p); }

static void HnswCheckStatus(vecext::Status st) {
  if (!st.ok()) ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("hnsw insert: %s", st.message)));
}

// How deep HnswRelink follows the elements its own forced links drop.
#define HNSW_RELINK_DEPTH 3

// Appends the valid level-0 links of the neighbour tuple *ntid to ids[*n..]
// (at most kMaxLinks in all), skipping `except` and ids already present.
static void HnswCollectLinks(HnswInsertState* st, const ItemPointerData* ntid, ElementId except, ElementId* ids,
                             int* n) {
  const BlockNumber blkno = ItemPointerGetBlockNumber(ntid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno >= RelationGetNumberOfBlocks(st->index)) return;
  const int slots = HnswLevelSlots(0, st->m);
  Buffer buf = ReadBuffer(st->index, blkno);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  HnswNeighborTuple ntup = NULL;
  if (HnswStoreCheckElementPage(st->index, page, blkno))
    ntup = HnswStoreGetNeighbors(page, ItemPointerGetOffsetNumber(ntid), st->m);
  for (int i = 0; ntup != NULL && i < slots && *n < vecext::hnsw::kMaxLinks; i++) {
    if (!HnswLinkIsValid(&ntup->ids[i])) continue;
    const ElementId id = HnswPackTid(&ntup->ids[i]);
    bool seen = id == except;
    for (int j = 0; j < *n && !seen; j++) seen = ids[j] == id;
    if (!seen) ids[(*n)++] = id;
  }
  UnlockReleaseBuffer(buf);
}

static void HnswRelink(HnswInsertState* st, ElementId x, const ItemPointerData* owner, int depth);

// Searches the graph for x's nearest elements (ef_construction of them, as an
// insert does) and links x from the nearest that has a free level-0 slot;
// when none has, and depth allows, the nearest takes x in place of its
// heuristic's last pick (the element that drops is relinked in turn).
// Returns whether x got an in-link. The store's query is x's vector meanwhile.
static bool HnswRelinkBySearch(HnswInsertState* st, ElementId x, const float* xquery, const void* xvec, uint64 xcode,
                               int depth) {
  HnswMetaPageData meta;
  HnswReadMeta(st->index, &meta);
  if (meta.entry_level < 0 || !ItemPointerIsValid(&meta.entry)) return false;
  const float* saved_query = st->store.query;
  HnswStoreSetQuery(&st->store, xquery);
  const int ef = Max((int)meta.ef_construction, 1);
  vecext::hnsw::Allocator alloc{HnswInsertAllocate, HnswInsertRelease, CurrentMemoryContext};
  LayerSearch ls;
  HnswCheckStatus(ls.Init(alloc, (size_t)ef, false));
  SearchScratch* scratch = (SearchScratch*)palloc(sizeof(SearchScratch));
  bool found_entry = false;
  HnswCheckStatus(vecext::hnsw::SearchFromEntry(st->store, HnswPackTid(&meta.entry), meta.entry_level, ls,
                                                vecext::hnsw::kUnlimited, *scratch, &found_entry));
  Candidate* found = (Candidate*)palloc(sizeof(Candidate) * (Size)(ef + 1));
  const int nfound = found_entry ? (int)vecext::hnsw::TakeResults(ls, found) : 0;
  if (saved_query != NULL) HnswStoreSetQuery(&st->store, saved_query);
  for (int i = 0; i < nfound; i++) {
    if (found[i].id == x) continue;
    ItemPointerData ntid;
    HnswStoreNeighborTid(&st->store, found[i], &ntid);
    // A free slot only: the element's own vector is not needed.
    if (HnswAddBackLink(st, &ntid, xvec, found[i].distance, x, xvec, xcode, 0, HNSW_LINK_FREE_SLOT, NULL)) return true;
  }
  if (depth >= HNSW_RELINK_DEPTH) return false;
  for (int i = 0; i < nfound; i++) {
    if (found[i].id == x) continue;
    void* yvec = palloc(st->store.data_size);
    HnswElementInfo yinfo;
    HnswStoreLoadElements(&st->store, &found[i].id, 1, yvec, &yinfo);
    if (!yinfo.valid || yinfo.deleted) continue;
    HnswDropped dropped;
    dropped.n = 0;
    if (!HnswAddBackLink(st, &yinfo.neighbortid, yvec, found[i].distance, x, xvec, xcode, 0, HNSW_LINK_FORCE,
                         &dropped))
      continue;
    for (int j = 0; j < dropped.n; j++) HnswRelink(st, dropped.ids[j], &dropped.owners[j], depth + 1);
    return true;
  }
  return false;
}

// Gives element x, which the pruned level-0 list *owner just dropped, a
// level-0 in-link again, so that scans keep reaching it: the dropped link
// may have been its only one (under inner product most links point to a few
// elements of large norm, whose lists are full and pruned on every insert,
// while the other elements are rarely anyone's neighbour). The candidates
// are the elements the owner kept (the heuristic dropped x because one of
// them is closer to x than the owner is, so owner -> kept -> x is the path it
// meant; they are reachable when the owner is), nearest to x first: one of
// them already linking to x ends the work; else the nearest with a free slot
// takes x; else a search of the graph for x's neighbours goes on
// (HnswRelinkBySearch). x's own links are no candidates: they may lead back
// into a group of elements that nothing outside links to. Without an owner
// (vacuum) only the search is used.
static void HnswRelink(HnswInsertState* st, ElementId x, const ItemPointerData* owner, int depth) {
  const Size ds = st->store.data_size;
  char* xvec = (char*)palloc(ds);
  HnswElementInfo xinfo;
  HnswStoreLoadElements(&st->store, &x, 1, xvec, &xinfo);
  if (!xinfo.valid || xinfo.deleted) return;
  // x as a query: its vector, decoded under SQ8.
  float* xquery = (float*)palloc(sizeof(float) * (Size)st->dim);
  HnswStoreDecode(&st->store, xvec, xquery);

  ElementId ids[vecext::hnsw::kMaxLinks];
  int n = 0;
  if (owner != NULL) HnswCollectLinks(st, owner, x, ids, &n);

  char* vecs = (char*)palloc(ds * (Size)Max(n, 1));
  HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)Max(n, 1));
  HnswStoreLoadElements(&st->store, ids, n, vecs, info);
  Candidate cands[vecext::hnsw::kMaxLinks];
  int nc = 0;
  for (int i = 0; i < n; i++) {
    if (!info[i].valid || info[i].deleted) continue;
    cands[nc++] = Candidate{HnswStoreDataDistance(&st->store, xvec, vecs + (Size)i * ds), ids[i], (uint64)i};
  }
  std::sort(cands, cands + nc, vecext::hnsw::Closer);
  for (int i = 0; i < nc; i++) {
    const int k = (int)cands[i].aux;
    if (HnswAddBackLink(st, &info[k].neighbortid, vecs + (Size)k * ds, cands[i].distance, x, xvec, xinfo.code, 0,
                        HNSW_LINK_FREE_SLOT, NULL))
      return;
  }
  HnswRelinkBySearch(st, x, xquery, xvec, xinfo.code, depth);
}

void HnswRelinkElements(Relation index, const uint64* ids, int n) {
  if (n <= 0) return;
  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw relink", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt);
  LockPage(index, HNSW_UPDATE_LOCK, ShareLock);
  HnswMetaPageData meta;
  HnswReadMeta(index, &meta);
  HnswInsertState st;
  st.index = index;
  st.building = false;
  st.dim = (int)meta.dimensions;
  st.m = meta.m;
  const int metric = HnswGetMetric(index);
  st.distance = vecext::IndexDistanceFn((vecext::Metric)metric);
  HnswStoreInit(&st.store, index, st.dim, st.m, metric, meta.quantization, CurrentMemoryContext, 0);
  st.store.link_codes = (meta.flags & HNSW_META_LINK_CODES) != 0;
  st.value_lists = 0;  // relinking repairs level-0 lists only
  st.value_slots = 0;
  void* xvec = palloc(st.store.data_size);
  st.new_id = vecext::hnsw::kInvalidElement;
  MemoryContext per = AllocSetContextCreate(cxt, "hnsw relink element", ALLOCSET_DEFAULT_SIZES);
  for (int i = 0; i < n; i++) {
    CHECK_FOR_INTERRUPTS();
    MemoryContextSwitchTo(per);
    HnswElementInfo xinfo;
    HnswStoreLoadElements(&st.store, &ids[i], 1, xvec, &xinfo);
    if (xinfo.valid && !xinfo.deleted) HnswRelink(&st, ids[i], NULL, 1);
    MemoryContextSwitchTo(cxt);
    MemoryContextReset(per);
  }
  UnlockPage(index, HNSW_UPDATE_LOCK, ShareLock);
  MemoryContextSwitchTo(old);
  MemoryContextDelete(cxt);
}

// Points the metapage's entry at the new element (caller holds
// HNSW_UPDATE_LOCK in ExclusiveLock, or is the build).
static void HnswSetEntryPoint(Relation index, ItemPointer etid, int level, bool building) {
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  HnswPageWrite w;
  Page page = HnswBeginWrite(&w, index, buf, building, false);
  HnswMetaPage meta = HnswPageGetMeta(page);
  if (meta->entry_level < level || !ItemPointerIsValid(&meta->entry)) {
    meta->entry = *etid;
    meta->entry_level = (int16)level;
  }
  HnswFinishWrite(&w);
  UnlockReleaseBuffer(buf);
}

// Records the dimensions of an index built empty on a column without a
// typmod: the first inserted row decides (caller holds HNSW_UPDATE_LOCK in
// ExclusiveLock, or is the build).
static void HnswSetDimensions(Relation index, int dim, bool building) {
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  HnswPageWrite w;
  Page page = HnswBeginWrite(&w, index, buf, building, false);
  HnswMetaPage meta = HnswPageGetMeta(page);
  if (meta->dimensions == 0) meta->dimensions = (uint32)dim;
  HnswFinishWrite(&w);
  UnlockReleaseBuffer(buf);
}

// Writes the SQ8 parameter blob into new pages at the end of the index and
// records them in the metapage (each page WAL-logged unless `building`).
// Caller holds HNSW_UPDATE_LOCK in ExclusiveLock, or is the build.
uint32 HnswSq8ParamsPages(Size bytes) {
  const Size room = HNSW_PAGE_ITEM_ROOM - offsetof(HnswParamsTupleData, data);
  return (uint32)((bytes + room - 1) / room);
}

void HnswWriteSq8Params(Relation index, const unsigned char* blob, Size bytes, bool building) {
  const Size room = HNSW_PAGE_ITEM_ROOM - offsetof(HnswParamsTupleData, data);
  const uint32 pages = HnswSq8ParamsPages(bytes);
  HnswParamsTuple pt = (HnswParamsTuple)palloc0(HNSW_PAGE_ITEM_ROOM);
  BlockNumber first = InvalidBlockNumber;
  for (uint32 c = 0; c < pages; c++) {
    const Size chunk = Min(room, bytes - (Size)c * room);
    memset(pt, 0, HNSW_PAGE_ITEM_ROOM);
    pt->type = HNSW_PARAMS_TUPLE;
    pt->chunk = c;
    pt->bytes = (uint32)chunk;
    memcpy(pt->data, blob + (Size)c * room, chunk);
    LockRelationForExtension(index, ExclusiveLock);
    Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
    UnlockRelationForExtension(index, ExclusiveLock);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    const BlockNumber blkno = BufferGetBlockNumber(buf);
    if (c == 0) {
      first = blkno;
    } else if (blkno != first + c) {
      elog(ERROR, "hnsw index \"%s\": SQ8 parameter pages are not consecutive", RelationGetRelationName(index));
    }
    HnswPageWrite w;
    Page page = HnswBeginWrite(&w, index, buf, building, true);
    HnswInitPage(page, HNSW_PAGE_ELEMENT);
    if (PageAddItem(page, (Item)pt, HNSW_PAGE_ITEM_ROOM, InvalidOffsetNumber, false, false) != FirstOffsetNumber)
      elog(ERROR, "hnsw index \"%s\": could not add an SQ8 parameter tuple", RelationGetRelationName(index));
    HnswFinishWrite(&w);
    UnlockReleaseBuffer(buf);
  }
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
  HnswPageWrite w;
  Page page = HnswBeginWrite(&w, index, buf, building, false);
  HnswMetaPage meta = HnswPageGetMeta(page);
  meta->params_start = first;
  meta->params_pages = pages;
  meta->params_bytes = (uint32)bytes;
  HnswFinishWrite(&w);
  UnlockReleaseBuffer(buf);
  HnswForgetSq8Params(index);
  pfree(pt);
}

// SQ8 parameters from a single vector (the first row of an SQ8 index built
// empty): every dimension gets the range [-1, 1] under cosine (normalized
// coordinates never leave it), else [-2r, 2r] with r the vector's largest
// magnitude; values outside clamp. REINDEX after loading trains on the data.
static void HnswTrainFromOneVector(Relation index, const float* vec, int dim, bool building) {
  const vecext::Metric metric = (vecext::Metric)HnswGetMetric(index);
  float r = 0.0f;
  for (int i = 0; i < dim; i++) r = Max(r, std::fabs(vec[i]));
  r = vecext::IndexNormalizes(metric) ? 1.0f : Max(2.0f * r, 1e-6f);
  float* lo = (float*)palloc(sizeof(float) * (Size)dim);
  float* scale = (float*)palloc(sizeof(float) * (Size)dim);
  for (int i = 0; i < dim; i++) {
    lo[i] = -r;
    scale[i] = 2.0f * r / 255.0f;
  }
  vecext::Sq8Params p;
  p.dim = (uint32_t)dim;
  p.lo = lo;
  p.scale = scale;
  const Size bytes = vecext::Sq8SerializedBytes((uint32_t)dim);
  unsigned char* blob = (unsigned char*)palloc(bytes);
  HnswCheckStatus(vecext::Sq8Serialize(p, blob, bytes));
  HnswWriteSq8Params(index, blob, bytes, building);
}

// Most elements the level-0 search for a new row's value-list neighbours
// scores (SearchLayer's max_scored): a bound for values whose rows were
// mostly deleted since the build, which the search would otherwise look for
// through the whole graph.
#define HNSW_VALUE_SEARCH_MAX_SCORED 20000
// Seeds of that search without the key when none has it (see
// HnswFindValueNeighbors).
#define HNSW_VALUE_SEARCH_OTHER_SEEDS 4

// The value keys a new row gets lists for (ValueListBuilder::Plan's rule):
// the keys of its signature that are in the index's directory, at most
// `lists` of them, fewest rows first, ties by key. Returns how many were
// written to out (room for `lists`).
static int HnswChooseValueKeys(Relation index, const bytea* signature, int lists, uint64* out) {
  if (signature == NULL || lists <= 0) return 0;
  const Size len = VARSIZE_ANY_EXHDR(signature);
  if (len == 0) return 0;
  vecext::meta::SignatureView view;
  if (!vecext::meta::ParseSignature((const uint8*)VARDATA_ANY(signature), len, &view).ok()) return 0;
  const size_t cap = vecext::meta::SignatureEncoder::kValueCap + vecext::meta::SignatureEncoder::kNumberCap;
  vecext::meta::ValueKey* keys = (vecext::meta::ValueKey*)palloc(sizeof(vecext::meta::ValueKey) * cap);
  const size_t nkeys = Min(vecext::meta::ValueKeys(view, keys, cap), cap);
  if (nkeys == 0) return 0;
  vecext::hnsw::ValueDirectoryEntry* dir = (vecext::hnsw::ValueDirectoryEntry*)palloc(
      sizeof(vecext::hnsw::ValueDirectoryEntry) * HNSW_VALUE_DIRECTORY_MAX);
  const int ndir = HnswReadValueDirectory(index, dir);
  // The directory entries of the row's keys, each once.
  int nc = 0;
  for (int d = 0; d < ndir; d++) {
    if (dir[d].key == vecext::meta::kNoValueKey) continue;
    bool has = false;
    for (size_t k = 0; k < nkeys && !has; k++) has = keys[k] == dir[d].key;
    bool seen = false;
    for (int c = 0; c < nc && !seen; c++) seen = dir[c].key == dir[d].key;
    if (has && !seen) dir[nc++] = dir[d];
  }
  std::sort(dir, dir + nc, [](const vecext::hnsw::ValueDirectoryEntry& a, const vecext::hnsw::ValueDirectoryEntry& b) {
    return a.count != b.count ? a.count < b.count : a.key < b.key;
  });
  const int n = Min(nc, lists);
  for (int i = 0; i < n; i++) out[i] = dir[i].key;
  return n;
}

// The store of the search for a new row's value-list neighbours: the
// filtered two-hop HnswStore (base), except that a level-0 element with a
// non-empty list for the key is expanded through that list alone, the key's
// own graph. (A scan also takes its links whose code passes the filter; link
// codes are approximate, and the rows without the key among those, close to
// the new row as they are, would each be expanded by looking through their
// links: measured on 15k inserts into 15k rows of 16 dimensions, about 2000
// elements looked through per insert, and 20% more insert CPU time at
// ef_construction 64, 50% more at 200, for the same recall.)
struct HnswValueSearchStore {
  HnswStore* base;  // two_hop, filter and value key set
  uint64 key;

  void Score(const ElementId* ids, int n, int level, float bound, Candidate* out, uint8_t* flags) {
    base->Score(ids, n, level, bound, out, flags);
  }

  int Neighbors(const Candidate& c, int level, ElementId* out, int cap) {
    if (level != 0) return base->Neighbors(c, level, out, cap);
    CHECK_FOR_INTERRUPTS();
    ItemPointerData tid;
    HnswStoreNeighborTid(base, c, &tid);
    const BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(&tid);
    if (blkno == HNSW_METAPAGE_BLKNO || blkno == InvalidBlockNumber) return 0;
    if (blkno >= base->nblocks) {
      base->nblocks = RelationGetNumberOfBlocks(base->index);
      if (blkno >= base->nblocks) return 0;
    }
    Buffer buf = ReadBuffer(base->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    int n = -1;  // no list for the key
    if (HnswStoreCheckElementPage(base->index, page, blkno)) {
      const OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(&tid);
      HnswNeighborTuple ntup = HnswStoreGetNeighbors(page, off, base->m);
      if (ntup != NULL && ItemIdGetLength(PageGetItemId(page, off)) >=
                              HnswNeighborTupleSizeV(ntup->count, true, base->value_lists, base->value_slots)) {
        for (int j = 0; j < base->value_lists && n < 0; j++) {
          char* list = HnswNeighborValueList(ntup, j, base->value_slots);
          if (HnswValueListKey(list) != key) continue;
          const ItemPointerData* ids = HnswValueListIds(list);
          n = 0;
          for (int k = 0; k < base->value_slots && n < cap; k++) {
            if (HnswLinkIsValid(&ids[k]) && HnswPackTid(&ids[k]) != c.id) out[n++] = HnswPackTid(&ids[k]);
          }
        }
      }
    }
    UnlockReleaseBuffer(buf);
    if (n > 0) {
      base->value_expansions++;
      return n;
    }
    return base->Neighbors(c, level, out, cap);  // no (or an empty) list: two-hop
  }
};
static_assert(std::is_trivially_destructible_v<HnswValueSearchStore>);

// The new element's value list for `key`: its nearest elements with that
// key, found by a level-0 two-hop search filtered to the key (through the
// key's value lists where it can: HnswValueSearchStore) with beam ls->ef
// from `seeds` (the main search's level-0 results; the entry point when
// none is valid), and chosen with the heuristic, the candidates it passes
// over filling the list (keep_pruned, as the build's value lists).
// Writes at most value_slots of them to out, their data to out_vecs and
// their neighbour tuples to out_ntids; returns how many.
static int HnswFindValueNeighbors(HnswInsertState* st, const float* vec, uint64 key, const HnswMetaPageData* meta,
                                  const Candidate* seeds, int nseeds, LayerSearch* ls, SearchScratch* scratch,
                                  Candidate* out, char* out_vecs, ItemPointerData* out_ntids) {
  HnswFilterProgram* program = HnswFilterForValueKey(key);
  if (program == NULL) return 0;
  HnswStore* vs = (HnswStore*)palloc(sizeof(HnswStore));
  HnswStoreInit(vs, st->index, st->dim, st->m, st->store.metric, st->store.quantization, CurrentMemoryContext, 0);
  vs->link_codes = true;
  HnswStoreSetQuery(vs, vec);
  vs->filter = program;
  vs->two_hop = true;
  vs->max_entries = 0;
  if (!HnswFilterCodeTerms(program, &vs->code_terms, &vs->ncode_terms)) vs->ncode_terms = -1;
  vs->value_lists = st->value_lists;
  vs->value_slots = st->value_slots;
  vs->nvalue_keys = 1;
  vs->value_keys[0] = key;

  // The seeds again, scored with the filter: those with the key start the
  // search (the key's value lists lead on from them). Without the key they
  // are the rows nearest the new one, so a search would expand them all
  // (each by looking through its links) before the key's rows, which lie
  // farther: only the nearest few start it when none has the key.
  ls->Reset();
  Candidate* others = (Candidate*)palloc(sizeof(Candidate) * HNSW_VALUE_SEARCH_OTHER_SEEDS);
  int nothers = 0;
  for (int i = 0; i < nseeds; i += vecext::hnsw::kMaxLinks) {
    const int n = Min(nseeds - i, vecext::hnsw::kMaxLinks);
    for (int k = 0; k < n; k++) scratch->fresh[k] = seeds[i + k].id;
    vs->Score(scratch->fresh, n, 0, std::numeric_limits<float>::infinity(), scratch->scored, scratch->flags);
    for (int k = 0; k < n; k++) {
      if (!(scratch->flags[k] & vecext::hnsw::kScoreValid)) continue;
      if (scratch->flags[k] & vecext::hnsw::kScoreReturnable) {
        HnswCheckStatus(vecext::hnsw::AddSeed(*ls, scratch->scored[k], true));
      } else if (nothers < HNSW_VALUE_SEARCH_OTHER_SEEDS) {
        others[nothers++] = scratch->scored[k];  // seeds come nearest first
      }
    }
  }
  if (ls->candidates.size == 0) {
    for (int i = 0; i < nothers; i++) HnswCheckStatus(vecext::hnsw::AddSeed(*ls, others[i], false));
  }
  HnswValueSearchStore search_store{vs, key};
  if (ls->candidates.size > 0) {
    HnswCheckStatus(vecext::hnsw::SearchLayer(search_store, *ls, 0, HNSW_VALUE_SEARCH_MAX_SCORED, *scratch));
  } else {
    bool found_entry = false;
    HnswCheckStatus(vecext::hnsw::SearchFromEntry(search_store, HnswPackTid(&meta->entry), meta->entry_level, *ls,
                                                  HNSW_VALUE_SEARCH_MAX_SCORED, *scratch, &found_entry));
  }
  const int ef = (int)ls->ef;
  Candidate* found = (Candidate*)palloc(sizeof(Candidate) * (Size)(ef + 1));
  const int nfound = (int)vecext::hnsw::TakeResults(*ls, found);
  if (nfound == 0) return 0;

  const Size ds = vs->data_size;
  ElementId* ids = (ElementId*)palloc(sizeof(ElementId) * (Size)nfound);
  char* vecs = (char*)palloc(ds * (Size)nfound);
  HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)nfound);
  const char** vec_ptrs = (const char**)palloc(sizeof(char*) * (Size)nfound);
  ItemPointerData* ntids = (ItemPointerData*)palloc(sizeof(ItemPointerData) * (Size)nfound);
  for (int i = 0; i < nfound; i++) ids[i] = found[i].id;
  HnswStoreLoadElements(vs, ids, nfound, vecs, info);
  int nvalid = 0;
  for (int i = 0; i < nfound; i++) {
    if (!info[i].valid || info[i].deleted) continue;  // vanished or deleted meanwhile
    found[nvalid] = found[i];
    vec_ptrs[nvalid] = vecs + (Size)i * ds;
    ntids[nvalid] = info[i].neighbortid;
    nvalid++;
  }
  int picks[vecext::hnsw::kMaxLinks];
  const HnswStore* store = vs;
  const int n = vecext::hnsw::SelectNeighborsBy(
      found, nvalid, st->value_slots,
      [&](int i, int j) { return HnswStoreDataDistance(store, vec_ptrs[i], vec_ptrs[j]); }, true, picks);
  for (int i = 0; i < n; i++) {
    out[i] = found[picks[i]];
    memcpy(out_vecs + (Size)i * ds, vec_ptrs[picks[i]], ds);
    out_ntids[i] = ntids[picks[i]];
  }
  return n;
}

// The body of HnswInsertElement, in the caller's temporary memory context.
static void HnswInsertElementImpl(Relation index, const float* vec, int dim, ItemPointer heaptid, bool building,
                                  const bytea* signature) {
  LOCKMODE lockmode = ShareLock;
  if (!building) LockPage(index, HNSW_UPDATE_LOCK, lockmode);

  HnswMetaPageData meta;
  HnswReadMeta(index, &meta);
  const int m = meta.m;
  const int vlists = (meta.flags & HNSW_META_VALUE_LISTS) ? meta.value_lists : 0;
  const int vslots = vlists > 0 ? meta.value_slots : 0;
  const int level = HnswRandomLevel(m, heaptid, (meta.flags & HNSW_META_LINK_CODES) != 0, vlists, vslots);
  const bool untrained = meta.quantization == HNSW_QUANT_SQ8 && meta.params_pages == 0;
  if (!building && (level > meta.entry_level || meta.dimensions == 0 || untrained)) {
    UnlockPage(index, HNSW_UPDATE_LOCK, lockmode);
    lockmode = ExclusiveLock;
    LockPage(index, HNSW_UPDATE_LOCK, lockmode);
    HnswReadMeta(index, &meta);
  }
  if (meta.dimensions == 0) {
    // An index built empty on a column without a typmod: this row fixes them.
    HnswSetDimensions(index, dim, building);
    meta.dimensions = (uint32)dim;
  }
  if ((int)meta.dimensions != dim)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected %u dimensions, not %d", meta.dimensions, dim)));
  if (meta.quantization == HNSW_QUANT_SQ8 && meta.params_pages == 0) {
    // An SQ8 index built empty: this row sets the parameters.
    HnswTrainFromOneVector(index, vec, dim, building);
    HnswReadMeta(index, &meta);
  }

  HnswInsertState st;
  st.index = index;
  st.building = building;
  st.dim = dim;
  st.m = m;
  const int metric = HnswGetMetric(index);
  st.distance = vecext::IndexDistanceFn((vecext::Metric)metric);
  HnswStoreInit(&st.store, index, dim, m, metric, meta.quantization, CurrentMemoryContext, 0);
  st.store.link_codes = (meta.flags & HNSW_META_LINK_CODES) != 0;
  if (meta.quantization == HNSW_QUANT_SQ8 && st.store.sq8.dim != (uint32)dim)
    HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "the SQ8 parameters are missing");
  HnswStoreSetQuery(&st.store, vec);
  st.new_id = 0;
  st.value_lists = vlists;
  st.value_slots = vslots;
  if (vlists > 0 && (!st.store.link_codes || vslots < 1 || vslots > vecext::hnsw::kMaxLinks))
    HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "metapage value lists out of range");
  // The row's value keys (HnswChooseValueKeys): list j gets key vkeys[j].
  uint64 vkeys[HNSW_MAX_VALUE_LISTS];
  const int nvkeys = vlists > 0 ? HnswChooseValueKeys(index, signature, Min(vlists, HNSW_MAX_VALUE_LISTS), vkeys) : 0;

  // The new tuples, built before any buffer is locked.
  const bool filter = (meta.flags & HNSW_META_FILTER) != 0;
  const Size sig_len = filter && signature != NULL ? VARSIZE_ANY_EXHDR(signature) : 0;
  const Size esize = filter ? HnswElementSizeWithSignature(meta.quantization, dim, sig_len)
                            : HNSW_ELEMENT_TUPLE_SIZE_Q(meta.quantization, dim);
  const int nslots = HnswNeighborSlots(level, m);
  const Size nsize = HnswNeighborTupleSizeV(nslots, st.store.link_codes, vlists, vslots);
  if (esize > HNSW_PAGE_ITEM_ROOM || nsize > HNSW_PAGE_ITEM_ROOM)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("vector with %d dimensions is too large for an hnsw index page", dim)));
  HnswElementTuple etup = (HnswElementTuple)palloc0(esize);
  etup->type = HNSW_ELEMENT_TUPLE;
  etup->level = (uint8)level;
  etup->heaptid = *heaptid;
  ItemPointerSetInvalid(&etup->neighbortid);
  HnswStoreEncode(&st.store, vec, etup->vec);
  const void* newdata = etup->vec;
  if (filter) {
    // The metadata signature after the data (a missing one: length 0, which
    // no filter can exclude).
    const uint16 len = (uint16)sig_len;
    char* at = (char*)etup->vec + st.store.data_size;
    memcpy(at, &len, sizeof(len));
    if (len > 0) memcpy(at + sizeof(len), VARDATA_ANY(signature), len);
  }
  const uint64 new_code =
      st.store.link_codes ? HnswStoreElementCode(&st.store, etup, esize) : vecext::meta::kAllLinks;
  HnswNeighborTuple ntup = (HnswNeighborTuple)palloc0(nsize);
  ntup->type = HNSW_NEIGHBOR_TUPLE;
  ntup->level = (uint8)level;
  ntup->count = (uint16)nslots;
  for (int i = 0; i < nslots; i++) ItemPointerSetInvalid(&ntup->ids[i]);
  // Value lists: the row's keys (the others unused, key 0), links below.
  for (int j = 0; j < vlists; j++) {
    char* list = HnswNeighborValueList(ntup, j, vslots);
    const uint64 key = j < nvkeys ? vkeys[j] : vecext::meta::kNoValueKey;
    memcpy(list, &key, sizeof(key));
    ItemPointerData* vids = HnswValueListIds(list);
    for (int k = 0; k < vslots; k++) ItemPointerSetInvalid(&vids[k]);
  }

  ItemPointerData etid;
  if (meta.entry_level < 0 || !ItemPointerIsValid(&meta.entry)) {
    // The first element: it becomes the entry point.
    HnswWriteElement(index, etup, esize, ntup, nsize, meta.insert_page, building, &etid);
    HnswSetEntryPoint(index, &etid, level, building);
    if (!building) UnlockPage(index, HNSW_UPDATE_LOCK, lockmode);
    return;
  }

  const int ef = Max((int)meta.ef_construction, 1);
  vecext::hnsw::Allocator alloc{HnswInsertAllocate, HnswInsertRelease, CurrentMemoryContext};
  LayerSearch ls;
  HnswCheckStatus(ls.Init(alloc, (size_t)ef, false));
  SearchScratch* scratch = (SearchScratch*)palloc(sizeof(SearchScratch));

  Candidate ep;
  uint8_t ep_flags = vecext::hnsw::ScoreOne(st.store, HnswPackTid(&meta.entry), meta.entry_level, &ep);
  if (!(ep_flags & vecext::hnsw::kScoreValid))
    HnswReportCorruption(index, ItemPointerGetBlockNumber(&meta.entry), "the entry point is not a valid element");
  for (int lc = meta.entry_level; lc > level; lc--) ep = vecext::hnsw::GreedySearch(st.store, ep, &ep_flags, lc, *scratch);

  // Per level from the top: the ef_construction closest, then the chosen neighbours.
  const int top = Min(level, (int)meta.entry_level);
  Candidate* found = (Candidate*)palloc(sizeof(Candidate) * (Size)(ef + 1));
  Candidate* seeds = (Candidate*)palloc(sizeof(Candidate) * (Size)(ef + 1));
  int nseeds = 1;
  seeds[0] = ep;
  bool seeds_returnable = (ep_flags & vecext::hnsw::kScoreReturnable) != 0;
  Candidate** chosen = (Candidate**)palloc0(sizeof(Candidate*) * (Size)(top + 1));
  const Size ds = st.store.data_size;
  char** chosen_vecs = (char**)palloc0(sizeof(char*) * (Size)(top + 1));
  int* nchosen = (int*)palloc0(sizeof(int) * (Size)(top + 1));
  char* vecs = (char*)palloc(ds * (Size)(ef + 1));
  HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)(ef + 1));
  ElementId* ids = (ElementId*)palloc(sizeof(ElementId) * (Size)(ef + 1));
  const char** vec_ptrs = (const char**)palloc(sizeof(char*) * (Size)(ef + 1));
  uint64* codes = (uint64*)palloc(sizeof(uint64) * (Size)(ef + 1));
  int picks[vecext::hnsw::kMaxLinks];
  for (int lc = top; lc >= 0; lc--) {
    ls.Reset();
    for (int i = 0; i < nseeds; i++) HnswCheckStatus(vecext::hnsw::AddSeed(ls, seeds[i], seeds_returnable));
    HnswCheckStatus(vecext::hnsw::SearchLayer(st.store, ls, lc, vecext::hnsw::kUnlimited, *scratch));
    const int nfound = (int)vecext::hnsw::TakeResults(ls, found);
    if (nfound == 0) continue;  // only deleted elements nearby: keep the seeds

    for (int i = 0; i < nfound; i++) ids[i] = found[i].id;
    HnswStoreLoadElements(&st.store, ids, nfound, vecs, info);
    int nvalid = 0;
    for (int i = 0; i < nfound; i++) {
      if (!info[i].valid) continue;  // vanished between scoring and loading
      found[nvalid] = found[i];
      vec_ptrs[nvalid] = vecs + (Size)i * ds;
      codes[nvalid] = info[i].code;
      nvalid++;
    }
    const int lm = HnswLevelSlots(lc, m);
    const HnswStore* store = &st.store;
    const int n = vecext::hnsw::SelectNeighborsBy(
        found, nvalid, lm, [&](int i, int j) { return HnswStoreDataDistance(store, vec_ptrs[i], vec_ptrs[j]); },
        false, picks);
    chosen[lc] = (Candidate*)palloc(sizeof(Candidate) * (Size)Max(n, 1));
    chosen_vecs[lc] = (char*)palloc(ds * (Size)Max(n, 1));
    nchosen[lc] = n;
    const int start = HnswLevelStart(lc, m);
    for (int i = 0; i < n; i++) {
      chosen[lc][i] = found[picks[i]];
      memcpy(chosen_vecs[lc] + (Size)i * ds, vec_ptrs[picks[i]], ds);
      HnswSetLink(ntup, nsize, st.store.link_codes, start + i, found[picks[i]].id, codes[picks[i]]);
    }
    memcpy(seeds, found, sizeof(Candidate) * (Size)nvalid);
    nseeds = nvalid;
    seeds_returnable = true;
  }

  // Value lists: for each of the row's keys, its nearest elements with the
  // key, searched from the level-0 results just found.
  Candidate* vchosen[HNSW_MAX_VALUE_LISTS];
  char* vchosen_vecs[HNSW_MAX_VALUE_LISTS];
  ItemPointerData* vchosen_ntids[HNSW_MAX_VALUE_LISTS];
  int nvchosen[HNSW_MAX_VALUE_LISTS];
  for (int j = 0; j < nvkeys; j++) {
    vchosen[j] = (Candidate*)palloc(sizeof(Candidate) * (Size)vslots);
    vchosen_vecs[j] = (char*)palloc(ds * (Size)vslots);
    vchosen_ntids[j] = (ItemPointerData*)palloc(sizeof(ItemPointerData) * (Size)vslots);
    nvchosen[j] = HnswFindValueNeighbors(&st, vec, vkeys[j], &meta, seeds, nseeds, &ls, scratch, vchosen[j],
                                         vchosen_vecs[j], vchosen_ntids[j]);
    ItemPointerData* vids = HnswValueListIds(HnswNeighborValueList(ntup, j, vslots));
    for (int i = 0; i < nvchosen[j]; i++) HnswUnpackTid(vchosen[j][i].id, &vids[i]);
  }

  HnswWriteElement(index, etup, esize, ntup, nsize, meta.insert_page, building, &etid);
  st.new_id = HnswPackTid(&etid);
  HnswDropped* dropped = (HnswDropped*)palloc(sizeof(HnswDropped));
  dropped->n = 0;
  for (int lc = top; lc >= 0; lc--) {
    bool linked = false;
    for (int i = 0; i < nchosen[lc]; i++) {
      ItemPointerData ntid;
      HnswStoreNeighborTid(&st.store, chosen[lc][i], &ntid);
      linked |= HnswAddBackLink(&st, &ntid, chosen_vecs[lc] + (Size)i * ds, chosen[lc][i].distance, st.new_id,
                                newdata, new_code, lc, HNSW_LINK_HEURISTIC, dropped);
    }
    // Every element needs an in-link on level 0, or no scan returns its row:
    // when every neighbour's heuristic dropped it, the nearest one that still
    // exists takes it anyway.
    for (int i = 0; lc == 0 && !linked && i < nchosen[lc]; i++) {
      ItemPointerData ntid;
      HnswStoreNeighborTid(&st.store, chosen[lc][i], &ntid);
      linked = HnswAddBackLink(&st, &ntid, chosen_vecs[lc] + (Size)i * ds, chosen[lc][i].distance, st.new_id,
                               newdata, new_code, lc, HNSW_LINK_FORCE, dropped);
    }
  }
  // Links the back-links pushed out of full level-0 lists may have been the
  // last in-links of their elements.
  for (int i = 0; i < dropped->n; i++) {
    if (dropped->ids[i] != st.new_id) HnswRelink(&st, dropped->ids[i], &dropped->owners[i], 1);
  }
  // Back-links in the value lists of the same key; as on level 0, when every
  // neighbour's heuristic drops the new element, the nearest takes it anyway,
  // so that the key's graph reaches it.
  for (int j = 0; j < nvkeys; j++) {
    bool linked = false;
    for (int i = 0; i < nvchosen[j]; i++)
      linked |= HnswAddValueBackLink(&st, &vchosen_ntids[j][i], vchosen_vecs[j] + (Size)i * ds,
                                     vchosen[j][i].distance, st.new_id, newdata, vkeys[j], HNSW_LINK_HEURISTIC);
    for (int i = 0; !linked && i < nvchosen[j]; i++)
      linked = HnswAddValueBackLink(&st, &vchosen_ntids[j][i], vchosen_vecs[j] + (Size)i * ds,
                                    vchosen[j][i].distance, st.new_id, newdata, vkeys[j], HNSW_LINK_FORCE);
  }
  if (level > meta.entry_level) HnswSetEntryPoint(index, &etid, level, building);
  if (!building) UnlockPage(index, HNSW_UPDATE_LOCK, lockmode);
}

void HnswInsertElement(Relation index, Relation heap, const float* vec, int dim, ItemPointer heaptid, bool building,
                       const bytea* signature) {
  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw insert", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt);
  HnswInsertElementImpl(index, vec, dim, heaptid, building, signature);
  MemoryContextSwitchTo(old);
  MemoryContextDelete(cxt);
}

static bool HnswInsertImpl(Relation index, Datum* values, bool* isnull, ItemPointer heap_tid, Relation heap) {
  if (isnull[0]) return false;
  MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw aminsert", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cxt);
  Vector* v = HnswPrepareValue(index, values[0], 0);
  if (v != NULL)
    HnswInsertElement(index, heap, v->x, v->dim, heap_tid, false,
                      HnswIndexHasFilter(index) ? HnswRowSignature(index, values[1], isnull[1]) : NULL);
  MemoryContextSwitchTo(old);
  MemoryContextDelete(cxt);
  return false;
}

bool hnswinsert(Relation index, Datum* values, bool* isnull, ItemPointer heap_tid, Relation heap,
                IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo* indexInfo) {
  VECEXT_GUARD("hnswinsert", return HnswInsertImpl(index, values, isnull, heap_tid, heap););
}
