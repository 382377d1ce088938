// hnsw VACUUM: ambulkdelete and amvacuumcleanup.
//
// ambulkdelete follows the deletion protocol of hnsw.h:
//  (a) Mark. Every element whose heap TID the callback reports dead gets
//      HNSW_ELEMENT_DELETED (one GenericXLog record per page). Elements
//      already marked by an interrupted vacuum join the dead set. Then a
//      barrier (HNSW_UPDATE_LOCK taken in ExclusiveLock and released) waits
//      for inserts that started before the marks: they may have chosen a
//      dead element as a neighbour; inserts that start later never do.
//  (b) Repair. Every live element with a link to a dead element gets, on
//      each level where it has one, the dead links cleared and new
//      neighbours chosen with the HNSW heuristic (a candidate is kept only if
//      it is closer to the element than to every neighbour already kept, the
//      remaining links counting as kept) from a candidate pool: the live
//      neighbours of the dead elements it linked to and, when those are dead
//      too, of theirs (two hops). When that pool is smaller than the number
//      of dead links (heavy deletion), a search of the graph from the entry
//      point, passing through dead elements, supplies the candidates. If the
//      heuristic keeps fewer candidates than there were dead links, the
//      nearest pruned ones make up the number, so an element never ends with
//      fewer links than before. Each new link E -> N is mirrored N -> E when N
//      has a free or dead slot on that level, so that elements reached only
//      through dead elements stay reachable. Writes re-read the neighbour
//      tuple under the exclusive lock and only touch dead or empty slots, so
//      links added by concurrent inserts are never lost.
//      Value lists (indexes with HNSW_META_VALUE_LISTS) are repaired in the
//      same pass and the same WAL record as the element's other links: in a
//      list with key K, the dead links are cleared and replaced by the same
//      heuristic from the list's live links and the live links of the dead
//      elements' own K lists (two hops through dead ones; when those give
//      too few, the K lists of the candidates found so far), keeping only
//      elements whose signature has K. New links are mirrored into the
//      target's K list when it has a free or dead slot there. A list left
//      with no link gets key 0 (unused), so that scans look through the
//      element instead of following an empty list. No value-list link to a
//      dead element survives (b), since (d) frees its item for reuse.
//  (c) Entry point. Under HNSW_UPDATE_LOCK ExclusiveLock, a dead entry point
//      is replaced by the highest-level live element (none: empty index).
//  (d) Remove, in three steps so that a crash at any point leaves a valid
//      index and no neighbour tuple that a live element uses is ever
//      removed: (d1) the neighbour tuple of each dead element becomes a
//      tombstone (count = 0, every slot invalid; readers skip it because a
//      real neighbour tuple never has 0 slots); (d2) the dead element tuples
//      are removed; (d3) the tombstones are removed (vacuum only ever removes
//      a neighbour tuple that is a tombstone; tombstones left by a crash are
//      collected in (a)). Items are removed with PageIndexTupleDeleteNoCompact
//      (other TIDs stay stable), the page is flagged so that PageAddItem
//      reuses the free line pointers, and its free space goes to the FSM.
//
// Buffers: one content lock at a time, the metapage never while another page
// is locked. Memory: the dead set (about 32 bytes per dead element) lives in
// a context deleted on exit; per-element work uses a context reset after each
// element.
#include "pg/pg_includes.h"

#include <cstring>

extern "C" {
#include "access/genam.h"
#include "commands/vacuum.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
}

#include "core/distance.h"
#include "core/index_distance.h"
#include "core/meta_filter.h"
#include "pg/guard.h"
#include "pg/hnsw.h"
#include "pg/hnsw_internal.h"
#include "pg/hnsw_store.h"

// A dead element (key: its packed element TID).
struct HnswDeadElement {
  uint64 id;
  ItemPointerData neighbortid;
  uint8 level;
};

// A repair candidate: an element, its distance to the element being repaired
// and a copy of its vector.
struct HnswCandidate {
  uint64 id;
  ItemPointerData neighbortid;
  float distance;
  float* vec;
};

struct HnswVacuumState {
  Relation index;
  IndexBulkDeleteResult* stats;
  IndexBulkDeleteCallback callback;
  void* callback_state;
  BufferAccessStrategy bas;  // for the sequential passes
  int dim;
  int m;
  int ef_construction;
  int max_candidates;
  Size data_size;     // bytes of an element's data (float4[dim] or SQ8)
  Size element_size;  // bytes of an element tuple
  HnswStore store;    // HnswStoreDataDistance between elements' data
  BlockNumber nblocks;  // known relation size (refreshed when a link points past it)
  HTAB* dead;
  int64 ndead;
  // Items (d1)-(d3) remove; packed TIDs, grown by doubling.
  uint64* tombstones;
  int64 ntombstones;
  int64 tombstones_cap;
  // The highest-level live element seen (candidate entry point).
  ItemPointerData highest;
  int highest_level;
  MemoryContext elemcxt;  // reset after each repaired element
  // Scratch for the neighbour slots of the element being repaired.
  ItemPointerData* slots;
  int nslots;
  // The entry point when the repair pass started (for the search fallback).
  ItemPointerData entry;
  int entry_level;
  int64 repaired;  // elements whose links were repaired
  int64 searches;  // levels that needed the search fallback
  // Value lists (HNSW_META_VALUE_LISTS; 0 lists without): their shape, a
  // copy of the lists of the element being repaired (vregion_size bytes;
  // all zero, i.e. unused, when its tuple has none) and scratch for a
  // signature's value keys.
  int value_lists;
  int value_slots;
  Size vregion_size;
  char* vregion;
  uint64* keybuf;
  int keybuf_cap;
  int64 value_repaired;  // value lists whose links were repaired
  int64 value_emptied;   // ... that were left without links (key reset to 0)
};

static inline uint64 TidKey(const ItemPointerData* tid) { return HnswPackTid(tid); }

static bool IsDead(HnswVacuumState* vs, uint64 id) { return hash_search(vs->dead, &id, HASH_FIND, NULL) != NULL; }

static void AddTombstone(HnswVacuumState* vs, const ItemPointerData* tid) {
  if (vs->ntombstones == vs->tombstones_cap) {
    vs->tombstones_cap *= 2;
    vs->tombstones = (uint64*)repalloc_huge(vs->tombstones, sizeof(uint64) * vs->tombstones_cap);
  }
  vs->tombstones[vs->ntombstones++] = TidKey(tid);
}

static bool IsTombstone(Page page, OffsetNumber off) {
  if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page)) return false;
  ItemId iid = PageGetItemId(page, off);
  if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) < offsetof(HnswNeighborTupleData, ids)) return false;
  HnswNeighborTuple ntup = (HnswNeighborTuple)PageGetItem(page, iid);
  return ntup->type == HNSW_NEIGHBOR_TUPLE && ntup->count == 0;
}

// Reads block `blkno` (which must exist) and checks its special space.
static Buffer ReadPage(HnswVacuumState* vs, BlockNumber blkno, int mode, BufferAccessStrategy bas) {
  Buffer buf = ReadBufferExtended(vs->index, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
  LockBuffer(buf, mode);
  const char* problem = HnswPageProblem(BufferGetPage(buf), blkno);
  if (problem != NULL) {
    UnlockReleaseBuffer(buf);
    HnswReportCorruption(vs->index, blkno, problem);
  }
  return buf;
}

// Whether a link to `tid` can be followed (block exists, not the metapage).
static bool BlockExists(HnswVacuumState* vs, const ItemPointerData* tid) {
  BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(tid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno == InvalidBlockNumber) return false;
  if (blkno >= vs->nblocks) vs->nblocks = RelationGetNumberOfBlocks(vs->index);
  return blkno < vs->nblocks;
}

// ---- (a) mark ----------------------------------------------------------------

// Initialises a new (all-zero) page left by a crash after relation extension
// as an empty element page. Buffer exclusively locked.
static void InitNewPage(HnswVacuumState* vs, Buffer buf) {
  GenericXLogState* state = GenericXLogStart(vs->index);
  Page page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
  HnswInitPage(page, HNSW_PAGE_ELEMENT);
  GenericXLogFinish(state);
}

static void MarkDeleted(HnswVacuumState* vs) {
  BlockNumber nblocks = RelationGetNumberOfBlocks(vs->index);
  vs->nblocks = nblocks;
  double live = 0;
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++) {
    vacuum_delay_point();
    Buffer buf = ReadPage(vs, blkno, BUFFER_LOCK_EXCLUSIVE, vs->bas);
    Page page = BufferGetPage(buf);
    if (PageIsNew(page)) {
      InitNewPage(vs, buf);
      UnlockReleaseBuffer(buf);
      continue;
    }
    GenericXLogState* state = NULL;
    Page wpage = NULL;
    OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
    for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
      if (IsTombstone(page, off)) {
        ItemPointerData tid;
        ItemPointerSet(&tid, blkno, off);
        AddTombstone(vs, &tid);
        continue;
      }
      HnswElementTuple etup = HnswPageGetElementSized(page, off, vs->element_size);
      if (etup == NULL) continue;
      bool dead = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
      if (!dead && vs->callback(&etup->heaptid, vs->callback_state)) {
        if (state == NULL) {
          state = GenericXLogStart(vs->index);
          wpage = GenericXLogRegisterBuffer(state, buf, 0);
        }
        HnswElementTuple wtup = (HnswElementTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
        wtup->flags |= HNSW_ELEMENT_DELETED;
        vs->stats->tuples_removed += 1;
        dead = true;
      }
      ItemPointerData tid;
      ItemPointerSet(&tid, blkno, off);
      if (dead) {
        uint64 key = TidKey(&tid);
        bool found;
        HnswDeadElement* d = (HnswDeadElement*)hash_search(vs->dead, &key, HASH_ENTER, &found);
        d->neighbortid = etup->neighbortid;
        d->level = etup->level;
        if (!found) vs->ndead++;
      } else {
        live += 1;
        if (etup->level > vs->highest_level) {
          vs->highest_level = etup->level;
          vs->highest = tid;
        }
      }
    }
    if (state != NULL) GenericXLogFinish(state);
    UnlockReleaseBuffer(buf);
  }
  vs->stats->num_index_tuples = live;
}

// ---- (b) repair --------------------------------------------------------------

// Whether neighbour tuple `ntup`, an item of `len` bytes, has room for the
// index's value lists.
static bool HasValueLists(const HnswVacuumState* vs, HnswNeighborTuple ntup, Size len) {
  return vs->value_lists > 0 && len >= HnswNeighborTupleSizeV(ntup->count, true, vs->value_lists, vs->value_slots);
}

// Copies the slots of the neighbour tuple at `ntid` if it is a valid
// neighbour tuple of an element at `level` (any level if level < 0) into
// `out`, and with `vout` its value lists (vs->vregion_size bytes, zeroed
// when it has none). Returns the number of slots, 0 when invalid.
static int ReadNeighbors(HnswVacuumState* vs, const ItemPointerData* ntid, int level, ItemPointerData* out,
                         char* vout = NULL) {
  if (vout != NULL) memset(vout, 0, vs->vregion_size);
  if (!ItemPointerIsValid(ntid) || !BlockExists(vs, ntid)) return 0;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(ntid), BUFFER_LOCK_SHARE, NULL);
  Page page = BufferGetPage(buf);
  int count = 0;
  const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, vs->m);
  if (ntup != NULL && (level < 0 || ntup->level == level)) {
    count = ntup->count;
    memcpy(out, ntup->ids, sizeof(ItemPointerData) * count);
    if (vout != NULL && HasValueLists(vs, ntup, ItemIdGetLength(PageGetItemId(page, off))))
      memcpy(vout, HnswNeighborValueList(ntup, 0, vs->value_slots), vs->vregion_size);
  }
  UnlockReleaseBuffer(buf);
  return count;
}

// Reads live element `id` if it has a level >= min_level: copies its vector
// into `vec` and its neighbour TID. False when it is not such an element.
static bool ReadLiveElement(HnswVacuumState* vs, uint64 id, int min_level, float* vec, ItemPointerData* ntid) {
  ItemPointerData tid;
  HnswUnpackTid(id, &tid);
  if (!BlockExists(vs, &tid)) return false;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(&tid), BUFFER_LOCK_SHARE, NULL);
  Page page = BufferGetPage(buf);
  bool ok = false;
  HnswElementTuple etup = HnswPageGetElementSized(page, ItemPointerGetOffsetNumber(&tid), vs->element_size);
  if (etup != NULL && !(etup->flags & HNSW_ELEMENT_DELETED) && etup->level >= min_level) {
    memcpy(vec, etup->vec, vs->data_size);
    *ntid = etup->neighbortid;
    ok = true;
  }
  UnlockReleaseBuffer(buf);
  return ok;
}

static bool ContainsId(const uint64* ids, int n, uint64 id) {
  for (int i = 0; i < n; i++)
    if (ids[i] == id) return true;
  return false;
}

static int CompareCandidates(const void* a, const void* b) {
  float da = ((const HnswCandidate*)a)->distance;
  float db = ((const HnswCandidate*)b)->distance;
  if (da < db) return -1;
  if (da > db) return 1;
  uint64 ia = ((const HnswCandidate*)a)->id;
  uint64 ib = ((const HnswCandidate*)b)->id;
  return ia < ib ? -1 : (ia > ib ? 1 : 0);
}

// Adds the live links on level `lc` of dead element `dead_id` to `pool`
// (ids only), skipping `self` and ids already present; dead links go to
// `hop` when it is not NULL.
static void CollectFromDead(HnswVacuumState* vs, uint64 dead_id, int lc, uint64 self, uint64* pool, int* npool,
                            int pool_cap, uint64* hop, int* nhop, int hop_cap, ItemPointerData* scratch) {
  HnswDeadElement* d = (HnswDeadElement*)hash_search(vs->dead, &dead_id, HASH_FIND, NULL);
  if (d == NULL || d->level < lc) return;
  int count = ReadNeighbors(vs, &d->neighbortid, d->level, scratch);
  if (count == 0) return;
  int start = HnswLevelStart(lc, vs->m);
  int n = HnswLevelSlots(lc, vs->m);
  for (int i = start; i < start + n && i < count; i++) {
    if (!ItemPointerIsValid(&scratch[i])) continue;
    uint64 id = TidKey(&scratch[i]);
    if (id == self || id == dead_id) continue;
    if (IsDead(vs, id)) {
      if (hop != NULL && *nhop < hop_cap && !ContainsId(hop, *nhop, id)) hop[(*nhop)++] = id;
      continue;
    }
    if (*npool < pool_cap && !ContainsId(pool, *npool, id)) pool[(*npool)++] = id;
  }
}

// ---- (b') search fallback ----------------------------------------------------
//
// When the dead neighbours' neighbourhoods hold too few live elements (heavy
// deletion), the candidates come from a search of the graph instead: a
// greedy descent from the entry point to level lc + 1, then a beam search of
// ef_construction on level lc. Dead elements still have their links until
// (d), so the search passes through them (as scans do) and returns only
// live elements; it stops after HNSW_VACUUM_SEARCH_VISITS elements.

#define HNSW_VACUUM_SEARCH_VISITS(ef) (20 * (ef) + 1000)

struct HnswSearchItem {
  float distance;
  uint64 id;
};

// A binary heap of HnswSearchItem: a min-heap when `max` is false.
struct HnswSearchHeap {
  HnswSearchItem* items;
  int n;
  int cap;
  bool max;
};

static bool HeapBefore(const HnswSearchHeap* h, const HnswSearchItem* a, const HnswSearchItem* b) {
  return h->max ? a->distance > b->distance : a->distance < b->distance;
}

static void HeapPush(HnswSearchHeap* h, float distance, uint64 id) {
  if (h->n == h->cap) {
    h->cap *= 2;
    h->items = (HnswSearchItem*)repalloc(h->items, sizeof(HnswSearchItem) * h->cap);
  }
  int i = h->n++;
  h->items[i].distance = distance;
  h->items[i].id = id;
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!HeapBefore(h, &h->items[i], &h->items[parent])) break;
    HnswSearchItem tmp = h->items[i];
    h->items[i] = h->items[parent];
    h->items[parent] = tmp;
    i = parent;
  }
}

static HnswSearchItem HeapPop(HnswSearchHeap* h) {
  HnswSearchItem top = h->items[0];
  h->items[0] = h->items[--h->n];
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, best = i;
    if (l < h->n && HeapBefore(h, &h->items[l], &h->items[best])) best = l;
    if (r < h->n && HeapBefore(h, &h->items[r], &h->items[best])) best = r;
    if (best == i) break;
    HnswSearchItem tmp = h->items[i];
    h->items[i] = h->items[best];
    h->items[best] = tmp;
    i = best;
  }
  return top;
}

static void HeapInit(HnswSearchHeap* h, bool max) {
  h->cap = 64;
  h->n = 0;
  h->max = max;
  h->items = (HnswSearchItem*)palloc(sizeof(HnswSearchItem) * h->cap);
}

// A visited element of the search.
struct HnswVisited {
  uint64 id;
  ItemPointerData neighbortid;
  int level;
  bool dead;
  bool usable;  // an element tuple of level >= the searched level
};

// Reads element `id` (live or dead): its vector into `vec`, its neighbour
// TID, level and whether it is dead. False when it is not an element.
static bool ReadAnyElement(HnswVacuumState* vs, uint64 id, float* vec, HnswVisited* out) {
  ItemPointerData tid;
  HnswUnpackTid(id, &tid);
  if (!BlockExists(vs, &tid)) return false;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(&tid), BUFFER_LOCK_SHARE, NULL);
  HnswElementTuple etup = HnswPageGetElementSized(BufferGetPage(buf), ItemPointerGetOffsetNumber(&tid), vs->element_size);
  bool ok = etup != NULL;
  if (ok) {
    memcpy(vec, etup->vec, vs->data_size);
    out->neighbortid = etup->neighbortid;
    out->level = etup->level;
    out->dead = (etup->flags & HNSW_ELEMENT_DELETED) != 0 || IsDead(vs, id);
  }
  UnlockReleaseBuffer(buf);
  return ok;
}

// Adds to `pool` up to pool_cap live elements of level >= lc near `vec`,
// found by searching the graph from the entry point (see above).
static void SearchLiveCandidates(HnswVacuumState* vs, uint64 self, const float* vec, int lc, uint64* pool, int* npool,
                                 int pool_cap, ItemPointerData* scratch) {
  if (!ItemPointerIsValid(&vs->entry) || vs->entry_level < lc) return;
  vs->searches++;
  HASHCTL ctl;
  memset(&ctl, 0, sizeof(ctl));
  ctl.keysize = sizeof(uint64);
  ctl.entrysize = sizeof(HnswVisited);
  ctl.hcxt = CurrentMemoryContext;
  HTAB* visited = hash_create("hnsw vacuum search", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  float* evec = (float*)palloc(vs->data_size);
  int max_visits = HNSW_VACUUM_SEARCH_VISITS(vs->ef_construction);
  int nvisits = 0;

  // Visits `id`: reads it once and returns its entry (NULL if not an element).
  uint64 cur = HnswPackTid(&vs->entry);
  HnswVisited* v = (HnswVisited*)hash_search(visited, &cur, HASH_ENTER, NULL);
  v->usable = ReadAnyElement(vs, cur, evec, v);
  nvisits++;
  if (!v->usable) return;
  float cur_dist = HnswStoreDataDistance(&vs->store, vec, evec);

  // Greedy descent through the levels above lc.
  for (int level = v->level; level > lc; level--) {
    bool changed = true;
    while (changed && nvisits < max_visits) {
      changed = false;
      HnswVisited* c = (HnswVisited*)hash_search(visited, &cur, HASH_FIND, NULL);
      int count = ReadNeighbors(vs, &c->neighbortid, c->level, scratch);
      int start = HnswLevelStart(level, vs->m);
      for (int i = start; i < start + HnswLevelSlots(level, vs->m) && i < count; i++) {
        if (!ItemPointerIsValid(&scratch[i])) continue;
        uint64 id = TidKey(&scratch[i]);
        bool found;
        HnswVisited* e = (HnswVisited*)hash_search(visited, &id, HASH_ENTER, &found);
        if (!found) {
          e->usable = ReadAnyElement(vs, id, evec, e) && e->level >= level;
          nvisits++;
          if (!e->usable) continue;
          float d = HnswStoreDataDistance(&vs->store, vec, evec);
          if (d < cur_dist) {
            cur_dist = d;
            cur = id;
            changed = true;
          }
        }
      }
    }
  }

  // Beam search on level lc: candidates (min-heap) and live results (max-heap).
  int ef = vs->ef_construction;
  HnswSearchHeap cands, results;
  HeapInit(&cands, false);
  HeapInit(&results, true);
  HeapPush(&cands, cur_dist, cur);
  HnswVisited* start_elem = (HnswVisited*)hash_search(visited, &cur, HASH_FIND, NULL);
  if (!start_elem->dead && cur != self) HeapPush(&results, cur_dist, cur);
  while (cands.n > 0 && nvisits < max_visits) {
    CHECK_FOR_INTERRUPTS();
    HnswSearchItem c = HeapPop(&cands);
    if (results.n >= ef && c.distance > results.items[0].distance) break;
    HnswVisited* ce = (HnswVisited*)hash_search(visited, &c.id, HASH_FIND, NULL);
    int count = ReadNeighbors(vs, &ce->neighbortid, ce->level, scratch);
    int start = HnswLevelStart(lc, vs->m);
    for (int i = start; i < start + HnswLevelSlots(lc, vs->m) && i < count; i++) {
      if (!ItemPointerIsValid(&scratch[i])) continue;
      uint64 id = TidKey(&scratch[i]);
      bool found;
      HnswVisited* e = (HnswVisited*)hash_search(visited, &id, HASH_ENTER, &found);
      if (found) continue;
      e->usable = ReadAnyElement(vs, id, evec, e) && e->level >= lc;
      nvisits++;
      if (!e->usable) continue;
      float d = HnswStoreDataDistance(&vs->store, vec, evec);
      if (results.n < ef || d < results.items[0].distance) {
        HeapPush(&cands, d, id);
        if (!e->dead && id != self) {
          HeapPush(&results, d, id);
          if (results.n > ef) HeapPop(&results);
        }
      }
    }
  }
  for (int i = 0; i < results.n && *npool < pool_cap; i++) {
    if (!ContainsId(pool, *npool, results.items[i].id)) pool[(*npool)++] = results.items[i].id;
  }
}

// The heuristic over `cands` (sorted by distance): picks, up to `nfree`,
// each candidate that is closer to the element than to every neighbour
// already selected (selected[0..*nselected): the kept links; each pick is
// appended, so the array needs room for nfree more), then makes up to
// `nmin` picks with the nearest pruned candidates (the element keeps at
// least as many links as it had). Writes the picks' indices into cands to
// `picks` (in pick order); returns how many.
static int ChooseNeighbors(HnswVacuumState* vs, HnswCandidate* selected, int* nselected, const HnswCandidate* cands,
                           int ncands, int nfree, int nmin, int* picks) {
  bool* pruned = (bool*)palloc0(sizeof(bool) * (ncands > 0 ? ncands : 1));
  int picked = 0;
  for (int i = 0; i < ncands && picked < nfree; i++) {
    bool good = true;
    for (int j = 0; j < *nselected; j++) {
      float d = HnswStoreDataDistance(&vs->store, cands[i].vec, selected[j].vec);
      if (d < cands[i].distance) {
        good = false;
        break;
      }
    }
    if (!good) {
      pruned[i] = true;
      continue;
    }
    selected[(*nselected)++] = cands[i];
    picks[picked++] = i;
  }
  for (int i = 0; i < ncands && picked < nmin; i++) {
    if (!pruned[i]) continue;
    picks[picked++] = i;
  }
  pfree(pruned);
  return picked;
}

// One new link chosen by the repair (for the write and the back-links).
struct HnswNewLink {
  uint64 id;
  ItemPointerData neighbortid;
  int level;
};

// Chooses, for level `lc` of element `self` (vector `vec`), up to `nfree`
// new neighbours among the candidates, given the kept links `kept`.
// Appends them to `out`.
static void SelectForLevel(HnswVacuumState* vs, uint64 self, const float* vec, int lc, const uint64* kept, int nkept,
                           const uint64* dead_links, int ndead_links, int nfree, HnswNewLink* out, int* nout,
                           ItemPointerData* scratch) {
  int pool_cap = vs->max_candidates;
  uint64* pool = (uint64*)palloc(sizeof(uint64) * pool_cap);
  int npool = 0;
  int hop_cap = 2 * vs->m;
  uint64* hop = (uint64*)palloc(sizeof(uint64) * hop_cap);
  int nhop = 0;
  for (int i = 0; i < nkept && npool < pool_cap; i++) pool[npool++] = kept[i];
  for (int i = 0; i < ndead_links; i++)
    CollectFromDead(vs, dead_links[i], lc, self, pool, &npool, pool_cap, hop, &nhop, hop_cap, scratch);
  for (int i = 0; i < nhop; i++) CollectFromDead(vs, hop[i], lc, self, pool, &npool, pool_cap, NULL, NULL, 0, scratch);
  // Too few candidates nearby (heavy deletion): search the graph.
  if (npool - nkept < ndead_links) SearchLiveCandidates(vs, self, vec, lc, pool, &npool, pool_cap, scratch);

  // Load vectors and distances. kept links come first in `pool`.
  HnswCandidate* selected = (HnswCandidate*)palloc(sizeof(HnswCandidate) * (nkept + nfree));
  int nselected = 0;
  HnswCandidate* cands = (HnswCandidate*)palloc(sizeof(HnswCandidate) * (npool > 0 ? npool : 1));
  int ncands = 0;
  for (int i = 0; i < npool; i++) {
    CHECK_FOR_INTERRUPTS();
    float* cvec = (float*)palloc(vs->data_size);
    ItemPointerData ntid;
    if (!ReadLiveElement(vs, pool[i], lc, cvec, &ntid)) {
      pfree(cvec);
      continue;
    }
    HnswCandidate c;
    c.id = pool[i];
    c.neighbortid = ntid;
    c.vec = cvec;
    c.distance = HnswStoreDataDistance(&vs->store, vec, cvec);
    if (i < nkept)
      selected[nselected++] = c;
    else
      cands[ncands++] = c;
  }
  qsort(cands, ncands, sizeof(HnswCandidate), CompareCandidates);

  int* picks = (int*)palloc(sizeof(int) * (ncands > 0 ? ncands : 1));
  const int npicks = ChooseNeighbors(vs, selected, &nselected, cands, ncands, nfree, ndead_links, picks);
  for (int k = 0; k < npicks; k++) {
    out[*nout].id = cands[picks[k]].id;
    out[*nout].neighbortid = cands[picks[k]].neighbortid;
    out[*nout].level = lc;
    (*nout)++;
  }
}

// Writes `self` into a free or dead slot on level `lc` of the neighbour tuple
// at `ntid` (unless it is already there).
static void AddBackLink(HnswVacuumState* vs, const ItemPointerData* ntid, int lc, uint64 self, uint64 self_code) {
  if (!ItemPointerIsValid(ntid) || !BlockExists(vs, ntid)) return;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(ntid), BUFFER_LOCK_EXCLUSIVE, NULL);
  Page page = BufferGetPage(buf);
  OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, vs->m);
  int slot = -1;
  if (ntup != NULL && ntup->level >= lc) {
    int start = HnswLevelStart(lc, vs->m);
    int n = HnswLevelSlots(lc, vs->m);
    for (int i = start; i < start + n; i++) {
      if (!ItemPointerIsValid(&ntup->ids[i])) {
        if (slot < 0) slot = i;
        continue;
      }
      uint64 id = TidKey(&ntup->ids[i]);
      if (id == self) {
        slot = -1;
        break;
      }
      if (slot < 0 && IsDead(vs, id)) slot = i;
    }
  }
  if (slot >= 0) {
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
    HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
    HnswSetLink(wtup, ItemIdGetLength(PageGetItemId(wpage, off)), vs->store.link_codes, slot, self, self_code);
    GenericXLogFinish(state);
  }
  UnlockReleaseBuffer(buf);
}

// ---- (b) value lists -----------------------------------------------------------

// The list with key `key` among the value lists that start at `region` (a
// neighbour tuple's, or a copy); NULL when there is none.
static char* FindValueList(const HnswVacuumState* vs, char* region, uint64 key) {
  for (int j = 0; j < vs->value_lists; j++) {
    char* list = region + (Size)j * HnswValueListStride(vs->value_slots);
    if (HnswValueListKey(list) == key) return list;
  }
  return NULL;
}

// Copies the links of the value list with key `key` of the neighbour tuple
// at `ntid` (value_slots of them) into `out`. False when there is no such
// tuple or list.
static bool ReadValueList(HnswVacuumState* vs, const ItemPointerData* ntid, uint64 key, ItemPointerData* out) {
  if (key == 0 || !ItemPointerIsValid(ntid) || !BlockExists(vs, ntid)) return false;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(ntid), BUFFER_LOCK_SHARE, NULL);
  Page page = BufferGetPage(buf);
  const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, vs->m);
  bool found = false;
  if (ntup != NULL && HasValueLists(vs, ntup, ItemIdGetLength(PageGetItemId(page, off)))) {
    char* list = FindValueList(vs, HnswNeighborValueList(ntup, 0, vs->value_slots), key);
    if (list != NULL) {
      memcpy(out, HnswValueListIds(list), sizeof(ItemPointerData) * (Size)vs->value_slots);
      found = true;
    }
  }
  UnlockReleaseBuffer(buf);
  return found;
}

// Whether element `etup`, an item of `len` bytes, has value key `key` (its
// signature's; an unreadable signature has none, as in the build).
static bool ElementHasValueKey(HnswVacuumState* vs, const HnswElementTupleData* etup, Size len, uint64 key) {
  Size sig_len = 0;
  const uint8* sig = HnswElementSignature(etup, len, vs->store.quantization, vs->dim, &sig_len);
  if (sig == NULL || sig_len == 0) return false;
  vecext::meta::SignatureView view;
  if (!vecext::meta::ParseSignature(sig, sig_len, &view).ok()) return false;
  const size_t n = vecext::meta::ValueKeys(view, vs->keybuf, (size_t)vs->keybuf_cap);
  for (size_t i = 0; i < n && i < (size_t)vs->keybuf_cap; i++)
    if (vs->keybuf[i] == key) return true;
  return false;
}

// Reads live element `id` if it has value key `key`: copies its data into
// `vec` and its neighbour TID. False otherwise.
static bool ReadValueCandidate(HnswVacuumState* vs, uint64 id, uint64 key, float* vec, ItemPointerData* ntid) {
  ItemPointerData tid;
  HnswUnpackTid(id, &tid);
  if (!BlockExists(vs, &tid)) return false;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(&tid), BUFFER_LOCK_SHARE, NULL);
  Page page = BufferGetPage(buf);
  const OffsetNumber off = ItemPointerGetOffsetNumber(&tid);
  bool ok = false;
  HnswElementTuple etup = HnswPageGetElementSized(page, off, vs->element_size);
  if (etup != NULL && !(etup->flags & HNSW_ELEMENT_DELETED) &&
      ElementHasValueKey(vs, etup, ItemIdGetLength(PageGetItemId(page, off)), key)) {
    memcpy(vec, etup->vec, vs->data_size);
    *ntid = etup->neighbortid;
    ok = true;
  }
  UnlockReleaseBuffer(buf);
  return ok;
}

// Adds the live links of the value list with key `key` of the neighbour
// tuple at `ntid` to `pool` (skipping `self` and ids present); dead links
// go to `hop` when it is not NULL.
static void CollectValueLinks(HnswVacuumState* vs, const ItemPointerData* ntid, uint64 key, uint64 self, uint64* pool,
                              int* npool, int pool_cap, uint64* hop, int* nhop, int hop_cap,
                              ItemPointerData* scratch) {
  if (!ReadValueList(vs, ntid, key, scratch)) return;
  for (int k = 0; k < vs->value_slots; k++) {
    if (!ItemPointerIsValid(&scratch[k])) continue;
    const uint64 id = TidKey(&scratch[k]);
    if (id == self) continue;
    if (IsDead(vs, id)) {
      if (hop != NULL && *nhop < hop_cap && !ContainsId(hop, *nhop, id)) hop[(*nhop)++] = id;
      continue;
    }
    if (*npool < pool_cap && !ContainsId(pool, *npool, id)) pool[(*npool)++] = id;
  }
}

// One new value-list link chosen by the repair.
struct HnswNewValueLink {
  uint64 key;
  uint64 id;
  ItemPointerData neighbortid;
};

// Chooses, for the list with key `key` of element `self` (vector `vec`), up
// to `nfree` new links among the candidates, given its live links `kept`
// and its dead links, as SelectForLevel does for a level. Appends them to
// `out`.
static void SelectForValueList(HnswVacuumState* vs, uint64 self, const float* vec, uint64 key, const uint64* kept,
                               int nkept, const uint64* dead_links, int ndead_links, int nfree,
                               HnswNewValueLink* out, int* nout, ItemPointerData* scratch) {
  const int pool_cap = Max(vs->max_candidates, nkept + 1);
  uint64* pool = (uint64*)palloc(sizeof(uint64) * pool_cap);
  int npool = 0;
  const int hop_cap = 2 * vs->value_slots;
  uint64* hop = (uint64*)palloc(sizeof(uint64) * hop_cap);
  int nhop = 0;
  for (int i = 0; i < nkept && npool < pool_cap; i++) pool[npool++] = kept[i];
  for (int i = 0; i < ndead_links; i++) {
    HnswDeadElement* d = (HnswDeadElement*)hash_search(vs->dead, &dead_links[i], HASH_FIND, NULL);
    if (d != NULL)
      CollectValueLinks(vs, &d->neighbortid, key, self, pool, &npool, pool_cap, hop, &nhop, hop_cap, scratch);
  }
  for (int i = 0; i < nhop; i++) {
    HnswDeadElement* d = (HnswDeadElement*)hash_search(vs->dead, &hop[i], HASH_FIND, NULL);
    if (d != NULL)
      CollectValueLinks(vs, &d->neighbortid, key, self, pool, &npool, pool_cap, NULL, NULL, 0, scratch);
  }

  // Load vectors and distances (kept links first), keeping only elements
  // with the key; when the dead elements' lists gave too few candidates
  // (heavy deletion), once more from the lists of everything loaded.
  HnswCandidate* selected = (HnswCandidate*)palloc(sizeof(HnswCandidate) * (Size)(nkept + nfree));
  int nselected = 0;
  HnswCandidate* cands = (HnswCandidate*)palloc(sizeof(HnswCandidate) * (Size)pool_cap);
  int ncands = 0;
  ItemPointerData* ntids = (ItemPointerData*)palloc(sizeof(ItemPointerData) * (Size)pool_cap);
  int loaded = 0;
  for (int round = 0; round < 2; round++) {
    const int from = loaded;
    for (int i = from; i < npool; i++) {
      CHECK_FOR_INTERRUPTS();
      ItemPointerSetInvalid(&ntids[i]);
      float* cvec = (float*)palloc(vs->data_size);
      ItemPointerData ntid;
      if (!ReadValueCandidate(vs, pool[i], key, cvec, &ntid)) {
        pfree(cvec);
        continue;
      }
      ntids[i] = ntid;
      HnswCandidate c;
      c.id = pool[i];
      c.neighbortid = ntid;
      c.vec = cvec;
      c.distance = HnswStoreDataDistance(&vs->store, vec, cvec);
      if (i < nkept)
        selected[nselected++] = c;
      else
        cands[ncands++] = c;
    }
    loaded = npool;
    if (round == 1 || ncands >= ndead_links || npool >= pool_cap) break;
    for (int i = 0; i < loaded && npool < pool_cap; i++)
      if (ItemPointerIsValid(&ntids[i]))
        CollectValueLinks(vs, &ntids[i], key, self, pool, &npool, pool_cap, NULL, NULL, 0, scratch);
  }
  qsort(cands, ncands, sizeof(HnswCandidate), CompareCandidates);

  int* picks = (int*)palloc(sizeof(int) * (ncands > 0 ? ncands : 1));
  const int npicks = ChooseNeighbors(vs, selected, &nselected, cands, ncands, nfree, ndead_links, picks);
  for (int k = 0; k < npicks; k++) {
    out[*nout].key = key;
    out[*nout].id = cands[picks[k]].id;
    out[*nout].neighbortid = cands[picks[k]].neighbortid;
    (*nout)++;
  }
}

// Writes `self` into a free or dead slot of the value list with key `key`
// of the neighbour tuple at `ntid` (unless it is already there, or the
// tuple has no such list).
static void AddValueBackLink(HnswVacuumState* vs, const ItemPointerData* ntid, uint64 key, uint64 self) {
  if (!ItemPointerIsValid(ntid) || !BlockExists(vs, ntid)) return;
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(ntid), BUFFER_LOCK_EXCLUSIVE, NULL);
  Page page = BufferGetPage(buf);
  const OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, vs->m);
  int slot = -1;
  if (ntup != NULL && HasValueLists(vs, ntup, ItemIdGetLength(PageGetItemId(page, off)))) {
    char* list = FindValueList(vs, HnswNeighborValueList(ntup, 0, vs->value_slots), key);
    const ItemPointerData* ids = list != NULL ? HnswValueListIds(list) : NULL;
    for (int k = 0; ids != NULL && k < vs->value_slots; k++) {
      if (!ItemPointerIsValid(&ids[k])) {
        if (slot < 0) slot = k;
        continue;
      }
      const uint64 id = TidKey(&ids[k]);
      if (id == self) {
        slot = -1;
        break;
      }
      if (slot < 0 && IsDead(vs, id)) slot = k;
    }
  }
  if (slot >= 0) {
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
    HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
    char* list = FindValueList(vs, HnswNeighborValueList(wtup, 0, vs->value_slots), key);
    HnswUnpackTid(self, &HnswValueListIds(list)[slot]);
    GenericXLogFinish(state);
  }
  UnlockReleaseBuffer(buf);
}

// Plans the repair of the value lists of the element being repaired (a
// copy in vs->vregion): new links for each list with a key and dead links,
// appended to `out` (room for value_lists * value_slots). Returns whether
// any list has dead links.
static bool PlanValueLists(HnswVacuumState* vs, uint64 self, const float* vec, HnswNewValueLink* out, int* nout,
                           ItemPointerData* scratch) {
  const int vslots = vs->value_slots;
  uint64* kept = (uint64*)palloc(sizeof(uint64) * (Size)vslots);
  uint64* dead_links = (uint64*)palloc(sizeof(uint64) * (Size)vslots);
  bool any = false;
  for (int j = 0; j < vs->value_lists; j++) {
    char* list = vs->vregion + (Size)j * HnswValueListStride(vslots);
    const uint64 key = HnswValueListKey(list);
    const ItemPointerData* ids = HnswValueListIds(list);
    int nkept = 0, ndead_links = 0, nfree = 0;
    for (int k = 0; k < vslots; k++) {
      if (!ItemPointerIsValid(&ids[k])) {
        nfree++;
        continue;
      }
      const uint64 id = TidKey(&ids[k]);
      if (IsDead(vs, id)) {
        dead_links[ndead_links++] = id;
        nfree++;
      } else if (id != self && !ContainsId(kept, nkept, id)) {
        kept[nkept++] = id;
      }
    }
    if (ndead_links == 0) continue;
    any = true;
    vs->value_repaired++;
    if (key != 0)
      SelectForValueList(vs, self, vec, key, kept, nkept, dead_links, ndead_links, nfree, out, nout, scratch);
  }
  return any;
}

// Under the exclusive lock, in the WAL record that writes the element's
// other links: clears the dead links of every value list of `wtup` (an item
// of `len` bytes), puts the new links into empty places of the list with
// their key (written[k] says which went in), and gives the key 0 to a list
// this left without links.
static void WriteValueLists(HnswVacuumState* vs, HnswNeighborTuple wtup, Size len, const HnswNewValueLink* vlinks,
                            int nvlinks, bool* written) {
  if (!HasValueLists(vs, wtup, len)) return;
  const int vslots = vs->value_slots;
  char* region = HnswNeighborValueList(wtup, 0, vslots);
  uint32 cleared = 0;  // lists that had dead links (bit j)
  for (int j = 0; j < vs->value_lists; j++) {
    ItemPointerData* ids = HnswValueListIds(region + (Size)j * HnswValueListStride(vslots));
    for (int k = 0; k < vslots; k++) {
      if (ItemPointerIsValid(&ids[k]) && IsDead(vs, TidKey(&ids[k]))) {
        ItemPointerSetInvalid(&ids[k]);
        cleared |= (uint32)1 << j;
      }
    }
  }
  for (int v = 0; v < nvlinks; v++) {
    char* list = FindValueList(vs, region, vlinks[v].key);
    if (list == NULL) continue;
    ItemPointerData* ids = HnswValueListIds(list);
    int slot = -1;
    bool present = false;
    for (int k = 0; k < vslots; k++) {
      if (!ItemPointerIsValid(&ids[k])) {
        if (slot < 0) slot = k;
      } else if (TidKey(&ids[k]) == vlinks[v].id) {
        present = true;
        break;
      }
    }
    if (present || slot < 0) continue;
    HnswUnpackTid(vlinks[v].id, &ids[slot]);
    written[v] = true;
  }
  for (int j = 0; j < vs->value_lists; j++) {
    if (!(cleared & ((uint32)1 << j))) continue;
    char* list = region + (Size)j * HnswValueListStride(vslots);
    const ItemPointerData* ids = HnswValueListIds(list);
    bool empty = true;
    for (int k = 0; k < vslots && empty; k++) empty = !ItemPointerIsValid(&ids[k]);
    if (!empty || HnswValueListKey(list) == 0) continue;
    memset(list, 0, sizeof(uint64));
    vs->value_emptied++;
  }
}

// Repairs live element `self` (level `level`, vector `vec`, neighbour tuple
// at `ntid` whose slots are in vs->slots and value lists in vs->vregion)
// where it links to dead elements: on its levels when `links_dead`, in its
// value lists when `values_dead`.
static void RepairElement(HnswVacuumState* vs, uint64 self, int level, const float* vec, const ItemPointerData* ntid,
                          bool links_dead, bool values_dead) {
  int m = vs->m;
  int total = HnswNeighborSlots(level, m);
  HnswNewLink* links = (HnswNewLink*)palloc(sizeof(HnswNewLink) * total);
  int nlinks = 0;
  uint64* kept = (uint64*)palloc(sizeof(uint64) * 2 * m);
  uint64* dead_links = (uint64*)palloc(sizeof(uint64) * 2 * m);
  ItemPointerData* scratch = (ItemPointerData*)palloc(
      sizeof(ItemPointerData) * Max(HnswNeighborSlots(HNSW_MAX_LEVEL, m), vs->value_slots));
  bool any = false;

  for (int lc = 0; links_dead && lc <= level; lc++) {
    int start = HnswLevelStart(lc, m);
    int n = HnswLevelSlots(lc, m);
    int nkept = 0, ndead_links = 0, nfree = 0;
    for (int i = start; i < start + n; i++) {
      if (!ItemPointerIsValid(&vs->slots[i])) {
        nfree++;
        continue;
      }
      uint64 id = TidKey(&vs->slots[i]);
      if (IsDead(vs, id)) {
        dead_links[ndead_links++] = id;
        nfree++;
      } else if (!ContainsId(kept, nkept, id)) {
        kept[nkept++] = id;
      }
    }
    if (ndead_links == 0) continue;
    any = true;
    SelectForLevel(vs, self, vec, lc, kept, nkept, dead_links, ndead_links, nfree, links, &nlinks, scratch);
  }
  HnswNewValueLink* vlinks = NULL;
  int nvlinks = 0;
  if (values_dead && vs->value_lists > 0) {
    vlinks = (HnswNewValueLink*)palloc(sizeof(HnswNewValueLink) * (Size)(vs->value_lists * vs->value_slots));
    if (PlanValueLists(vs, self, vec, vlinks, &nvlinks, scratch)) any = true;
  }
  if (!any) return;

  // Link codes of the new links' targets and of self (for their back-links).
  uint64* codes = (uint64*)palloc(sizeof(uint64) * (Size)(nlinks + 1));
  for (int k = 0; k <= nlinks; k++) codes[k] = vecext::meta::kAllLinks;
  if (vs->store.link_codes && nlinks > 0) {
    vecext::hnsw::ElementId* ids =
        (vecext::hnsw::ElementId*)palloc(sizeof(vecext::hnsw::ElementId) * (Size)(nlinks + 1));
    for (int k = 0; k < nlinks; k++) ids[k] = links[k].id;
    ids[nlinks] = self;
    void* data = palloc(vs->store.data_size * (Size)(nlinks + 1));
    HnswElementInfo* info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (Size)(nlinks + 1));
    HnswStoreLoadElements(&vs->store, ids, nlinks + 1, data, info);
    for (int k = 0; k <= nlinks; k++)
      if (info[k].valid) codes[k] = info[k].code;
  }

  // Write: clear dead slots, then put the new links into empty slots (and
  // likewise in the value lists).
  Buffer buf = ReadPage(vs, ItemPointerGetBlockNumber(ntid), BUFFER_LOCK_EXCLUSIVE, NULL);
  Page page = BufferGetPage(buf);
  OffsetNumber off = ItemPointerGetOffsetNumber(ntid);
  HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, m);
  bool* written = (bool*)palloc0(sizeof(bool) * (nlinks > 0 ? nlinks : 1));
  bool* vwritten = (bool*)palloc0(sizeof(bool) * (nvlinks > 0 ? nvlinks : 1));
  if (ntup != NULL && ntup->level == level) {
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page wpage = GenericXLogRegisterBuffer(state, buf, 0);
    HnswNeighborTuple wtup = (HnswNeighborTuple)PageGetItem(wpage, PageGetItemId(wpage, off));
    for (int i = 0; i < wtup->count; i++) {
      if (ItemPointerIsValid(&wtup->ids[i]) && IsDead(vs, TidKey(&wtup->ids[i]))) ItemPointerSetInvalid(&wtup->ids[i]);
    }
    for (int k = 0; k < nlinks; k++) {
      int start = HnswLevelStart(links[k].level, m);
      int n = HnswLevelSlots(links[k].level, m);
      int slot = -1;
      bool present = false;
      for (int i = start; i < start + n; i++) {
        if (!ItemPointerIsValid(&wtup->ids[i])) {
          if (slot < 0) slot = i;
        } else if (TidKey(&wtup->ids[i]) == links[k].id) {
          present = true;
          break;
        }
      }
      if (present || slot < 0) continue;
      HnswSetLink(wtup, ItemIdGetLength(PageGetItemId(wpage, off)), vs->store.link_codes, slot, links[k].id,
                  codes[k]);
      written[k] = true;
    }
    if (vs->value_lists > 0)
      WriteValueLists(vs, wtup, ItemIdGetLength(PageGetItemId(wpage, off)), vlinks, nvlinks, vwritten);
    GenericXLogFinish(state);
  }
  UnlockReleaseBuffer(buf);

  for (int k = 0; k < nlinks; k++) {
    if (written[k]) AddBackLink(vs, &links[k].neighbortid, links[k].level, self, codes[nlinks]);
  }
  for (int v = 0; v < nvlinks; v++) {
    if (vwritten[v]) AddValueBackLink(vs, &vlinks[v].neighbortid, vlinks[v].key, self);
  }
}

static void RepairGraph(HnswVacuumState* vs) {
  HnswMetaPageData meta;
  HnswReadMeta(vs->index, &meta);
  vs->entry = meta.entry;
  vs->entry_level = meta.entry_level;
  BlockNumber nblocks = RelationGetNumberOfBlocks(vs->index);
  vs->nblocks = nblocks;
  char* copy = (char*)palloc(BLCKSZ);
  float* vec = (float*)palloc(Max(vs->data_size, (Size)4));
  vs->slots = (ItemPointerData*)palloc(sizeof(ItemPointerData) * HnswNeighborSlots(HNSW_MAX_LEVEL, vs->m));

  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++) {
    vacuum_delay_point();
    Buffer buf = ReadPage(vs, blkno, BUFFER_LOCK_SHARE, vs->bas);
    memcpy(copy, BufferGetPage(buf), BLCKSZ);
    UnlockReleaseBuffer(buf);
    Page page = (Page)copy;
    if (PageIsNew(page)) continue;
    OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
    for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
      HnswElementTuple etup = HnswPageGetElementSized(page, off, vs->element_size);
      if (etup == NULL || (etup->flags & HNSW_ELEMENT_DELETED)) continue;
      CHECK_FOR_INTERRUPTS();
      ItemPointerData tid;
      ItemPointerSet(&tid, blkno, off);
      uint64 self = TidKey(&tid);
      if (IsDead(vs, self)) continue;
      // An element inserted after (a) can be higher than the ones seen there.
      if (etup->level > vs->highest_level) {
        vs->highest_level = etup->level;
        vs->highest = tid;
      }
      ItemPointerData ntid = etup->neighbortid;
      int level = etup->level;
      vs->nslots = ReadNeighbors(vs, &ntid, level, vs->slots, vs->value_lists > 0 ? vs->vregion : NULL);
      if (vs->nslots == 0) continue;
      bool needs = false;
      for (int i = 0; i < vs->nslots && !needs; i++)
        needs = ItemPointerIsValid(&vs->slots[i]) && IsDead(vs, TidKey(&vs->slots[i]));
      bool values_need = false;
      for (int j = 0; j < vs->value_lists && !values_need; j++) {
        const ItemPointerData* ids = HnswValueListIds(vs->vregion + (Size)j * HnswValueListStride(vs->value_slots));
        for (int k = 0; k < vs->value_slots && !values_need; k++)
          values_need = ItemPointerIsValid(&ids[k]) && IsDead(vs, TidKey(&ids[k]));
      }
      if (!needs && !values_need) continue;
      memcpy(vec, etup->vec, vs->data_size);
      MemoryContext old = MemoryContextSwitchTo(vs->elemcxt);
      RepairElement(vs, self, level, vec, &ntid, needs, values_need);
      vs->repaired++;
      MemoryContextSwitchTo(old);
      MemoryContextReset(vs->elemcxt);
    }
  }
}

// ---- (c) entry point ---------------------------------------------------------

static void ReplaceEntryPoint(HnswVacuumState* vs) {
  LockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
  HnswMetaPageData meta;
  HnswReadMeta(vs->index, &meta);
  if (ItemPointerIsValid(&meta.entry) && IsDead(vs, TidKey(&meta.entry))) {
    // The highest live element seen; check it is still there (no insert runs now).
    ItemPointerData entry;
    int level = -1;
    ItemPointerSetInvalid(&entry);
    if (vs->highest_level >= 0) {
      float* vec = (float*)palloc(Max(vs->data_size, (Size)4));
      ItemPointerData ntid;
      if (ReadLiveElement(vs, TidKey(&vs->highest), vs->highest_level, vec, &ntid)) {
        entry = vs->highest;
        level = vs->highest_level;
      }
      pfree(vec);
    }
    Buffer buf = ReadBuffer(vs->index, HNSW_METAPAGE_BLKNO);
    LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page page = GenericXLogRegisterBuffer(state, buf, 0);
    const char* problem = HnswPageProblem(page, HNSW_METAPAGE_BLKNO);
    if (problem == NULL) problem = HnswMetaProblem(page);
    if (problem != NULL) {
      GenericXLogAbort(state);
      UnlockReleaseBuffer(buf);
      HnswReportCorruption(vs->index, HNSW_METAPAGE_BLKNO, problem);
    }
    HnswMetaPage m = HnswPageGetMeta(page);
    m->entry = entry;
    m->entry_level = (int16)level;
    GenericXLogFinish(state);
    UnlockReleaseBuffer(buf);
  }
  UnlockPage(vs->index, HNSW_UPDATE_LOCK, ExclusiveLock);
}

// ---- (d) remove --------------------------------------------------------------

static int CompareIds(const void* a, const void* b) {
  uint64 x = *(const uint64*)a;
  uint64 y = *(const uint64*)b;
  return x < y ? -1 : (x > y ? 1 : 0);
}

// Removes the items `ids[0..n)` (sorted) page by page; `tombstones` selects
// what may be removed: tombstones only, or dead element tuples only. Records
// the free space of every page it changes.
static void RemoveItems(HnswVacuumState* vs, uint64* ids, int64 n, bool tombstones) {
  int64 i = 0;
  while (i < n) {
    ItemPointerData tid;
    HnswUnpackTid(ids[i], &tid);
    BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(&tid);
    int64 end = i;
    while (end < n && (BlockNumber)(ids[end] >> 16) == blkno) end++;
    if (blkno == HNSW_METAPAGE_BLKNO || !BlockExists(vs, &tid)) {
      i = end;
      continue;
    }
    vacuum_delay_point();
    Buffer buf = ReadPage(vs, blkno, BUFFER_LOCK_EXCLUSIVE, vs->bas);
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page page = GenericXLogRegisterBuffer(state, buf, 0);
    bool changed = false;
    for (int64 k = i; k < end; k++) {
      OffsetNumber off = (OffsetNumber)(ids[k] & 0xFFFF);
      if (tombstones) {
        if (!IsTombstone(page, off)) continue;
      } else {
        HnswElementTuple etup = HnswPageGetElementSized(page, off, vs->element_size);
        if (etup == NULL || !(etup->flags & HNSW_ELEMENT_DELETED)) continue;
      }
      PageIndexTupleDeleteNoCompact(page, off);
      changed = true;
    }
    Size freespace = 0;
    if (changed) {
      // Let PageAddItem reuse the unused line pointers.
      OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
      for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
        if (!ItemIdIsUsed(PageGetItemId(page, off))) {
          PageSetHasFreeLinePointers(page);
          break;
        }
      }
      freespace = PageGetFreeSpace(page);
      GenericXLogFinish(state);
    } else {
      GenericXLogAbort(state);
    }
    UnlockReleaseBuffer(buf);
    if (changed) RecordPageWithFreeSpace(vs->index, blkno, freespace);
    i = end;
  }
}

// The neighbour tuple of a dead element (for (d1)).
struct HnswDeadNeighbors {
  uint64 ntid;
  int level;
};

static int CompareDeadNeighbors(const void* a, const void* b) {
  return CompareIds(&((const HnswDeadNeighbors*)a)->ntid, &((const HnswDeadNeighbors*)b)->ntid);
}

// (d1): the neighbour tuple of each dead element becomes a tombstone.
// `dn` is sorted by TID.
static void TombstoneNeighbors(HnswVacuumState* vs, const HnswDeadNeighbors* dn, int64 n) {
  int64 i = 0;
  while (i < n) {
    ItemPointerData tid;
    HnswUnpackTid(dn[i].ntid, &tid);
    BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(&tid);
    int64 end = i;
    while (end < n && (BlockNumber)(dn[end].ntid >> 16) == blkno) end++;
    if (blkno == HNSW_METAPAGE_BLKNO || !BlockExists(vs, &tid)) {
      i = end;
      continue;
    }
    vacuum_delay_point();
    Buffer buf = ReadPage(vs, blkno, BUFFER_LOCK_EXCLUSIVE, vs->bas);
    GenericXLogState* state = GenericXLogStart(vs->index);
    Page page = GenericXLogRegisterBuffer(state, buf, 0);
    bool changed = false;
    for (int64 k = i; k < end; k++) {
      OffsetNumber off = (OffsetNumber)(dn[k].ntid & 0xFFFF);
      HnswNeighborTuple ntup = HnswPageGetNeighbors(page, off, vs->m);
      if (ntup == NULL || ntup->level != dn[k].level) continue;
      for (int s = 0; s < ntup->count; s++) ItemPointerSetInvalid(&ntup->ids[s]);
      ntup->count = 0;
      changed = true;
      ItemPointerData t;
      ItemPointerSet(&t, blkno, off);
      AddTombstone(vs, &t);
    }
    if (changed)
      GenericXLogFinish(state);
    else
      GenericXLogAbort(state);
    UnlockReleaseBuffer(buf);
    i = end;
  }
}

static void RemoveDead(HnswVacuumState* vs) {
  uint64* elements = (uint64*)palloc_extended(sizeof(uint64) * (vs->ndead + 1), MCXT_ALLOC_HUGE);
  HnswDeadNeighbors* ntids =
      (HnswDeadNeighbors*)palloc_extended(sizeof(HnswDeadNeighbors) * (vs->ndead + 1), MCXT_ALLOC_HUGE);
  int64 nelements = 0, nntids = 0;
  HASH_SEQ_STATUS seq;
  hash_seq_init(&seq, vs->dead);
  HnswDeadElement* d;
  while ((d = (HnswDeadElement*)hash_seq_search(&seq)) != NULL) {
    elements[nelements++] = d->id;
    if (ItemPointerIsValid(&d->neighbortid)) {
      ntids[nntids].ntid = TidKey(&d->neighbortid);
      ntids[nntids].level = d->level;
      nntids++;
    }
  }
  qsort(ntids, nntids, sizeof(HnswDeadNeighbors), CompareDeadNeighbors);
  qsort(elements, nelements, sizeof(uint64), CompareIds);
  TombstoneNeighbors(vs, ntids, nntids);        // (d1)
  RemoveItems(vs, elements, nelements, false);  // (d2)
  qsort(vs->tombstones, vs->ntombstones, sizeof(uint64), CompareIds);
  RemoveItems(vs, vs->tombstones, vs->ntombstones, true);  // (d3)
  IndexFreeSpaceMapVacuum(vs->index);
}

// ---- entry points ------------------------------------------------------------

static void InitVacuumState(HnswVacuumState* vs, IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
  *vs = HnswVacuumState();
  vs->index = info->index;
  vs->stats = stats;
  vs->bas = info->strategy;
  HnswMetaPageData meta;
  HnswReadMeta(info->index, &meta);
  vs->dim = (int)meta.dimensions;
  vs->m = meta.m;
  vs->ef_construction = meta.ef_construction;
  vs->max_candidates = Max(vs->ef_construction, 4 * vs->m);
  HnswStoreInit(&vs->store, info->index, vs->dim, vs->m, meta.metric, meta.quantization, CurrentMemoryContext, 0);
  vs->store.link_codes = (meta.flags & HNSW_META_LINK_CODES) != 0;
  if (meta.flags & HNSW_META_VALUE_LISTS) {  // checked by HnswReadMeta
    vs->value_lists = meta.value_lists;
    vs->value_slots = meta.value_slots;
    vs->vregion_size = (Size)vs->value_lists * HnswValueListStride(vs->value_slots);
    vs->vregion = (char*)palloc0(vs->vregion_size);
    vs->keybuf_cap = (int)(vecext::meta::SignatureEncoder::kValueCap + vecext::meta::SignatureEncoder::kNumberCap);
    vs->keybuf = (uint64*)palloc(sizeof(uint64) * (Size)vs->keybuf_cap);
  }
  vs->data_size = vs->store.data_size;
  vs->element_size = vs->store.element_size;
  vs->highest_level = -1;
  ItemPointerSetInvalid(&vs->highest);
  vs->tombstones_cap = 64;
  vs->tombstones = (uint64*)palloc(sizeof(uint64) * vs->tombstones_cap);
  HASHCTL ctl;
  memset(&ctl, 0, sizeof(ctl));
  ctl.keysize = sizeof(uint64);
  ctl.entrysize = sizeof(HnswDeadElement);
  ctl.hcxt = CurrentMemoryContext;
  vs->dead = hash_create("hnsw vacuum dead elements", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  vs->elemcxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum element", ALLOCSET_DEFAULT_SIZES);
}

// ---- (e) reachability ----------------------------------------------------------

// Whether element `id` was reached: one bit per line pointer of the blocks
// that existed when the pass started (base[blk] is the first bit of blk).
struct HnswReachMap {
  BlockNumber nblocks;
  uint64* base;   // nblocks + 1 entries
  uint8* bits;
};

static bool ReachIndex(const HnswReachMap* rm, const ItemPointerData* tid, uint64* bit) {
  BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(tid);
  OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);
  if (blkno == HNSW_METAPAGE_BLKNO || blkno >= rm->nblocks || off < FirstOffsetNumber) return false;
  if ((uint64)off > rm->base[blkno + 1] - rm->base[blkno]) return false;  // added since the pass started
  *bit = rm->base[blkno] + (uint64)(off - 1);
  return true;
}

// Finds the live elements that no chain of level-0 links from the entry
// point reaches (scans would never return their rows) and relinks each to
// an element near it (HnswRelinkElements). Inserts prevent this on their own
// (HnswRelink) up to a bounded depth, and heavy deletes under inner product,
// where most links point to a few elements of large norm, can strand whole
// groups of elements; this pass catches both. Costs one read of every
// element's neighbour tuple and one bit per line pointer.
static int64 RelinkUnreachableOnce(Relation index, BufferAccessStrategy bas, int dim, int m) {
  HnswMetaPageData meta;
  HnswReadMeta(index, &meta);
  const Size element_size = HNSW_ELEMENT_TUPLE_SIZE_Q(meta.quantization, dim);
  if (meta.entry_level < 0 || !ItemPointerIsValid(&meta.entry) || dim <= 0) return 0;
  HnswReachMap rm;
  rm.nblocks = RelationGetNumberOfBlocks(index);
  rm.base = (uint64*)palloc_extended(sizeof(uint64) * ((Size)rm.nblocks + 1), MCXT_ALLOC_HUGE);
  rm.base[0] = 0;
  rm.base[1] = 0;
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < rm.nblocks; blkno++) {
    vacuum_delay_point();
    Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    OffsetNumber maxoff = (PageIsNew(page) || HnswPageProblem(page, blkno) != NULL) ? 0 : PageGetMaxOffsetNumber(page);
    UnlockReleaseBuffer(buf);
    rm.base[blkno + 1] = rm.base[blkno] + maxoff;
  }
  rm.bits = (uint8*)palloc_extended((Size)(rm.base[rm.nblocks] / 8 + 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

  // Breadth-first over level-0 links, through deleted elements as scans go.
  int64 cap = 1024, head = 0, tail = 0;
  uint64* queue = (uint64*)palloc(sizeof(uint64) * cap);
  ItemPointerData* slots = (ItemPointerData*)palloc(sizeof(ItemPointerData) * HnswLevelSlots(0, m));
  uint64 bit;
  if (!ReachIndex(&rm, &meta.entry, &bit)) return 0;
  rm.bits[bit / 8] |= (uint8)(1 << (bit % 8));
  queue[tail++] = HnswPackTid(&meta.entry);
  while (head < tail) {
    vacuum_delay_point();
    ItemPointerData etid;
    HnswUnpackTid(queue[head++], &etid);
    BlockNumber blkno = ItemPointerGetBlockNumber(&etid);
    Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    ItemPointerData ntid;
    ItemPointerSetInvalid(&ntid);
    if (HnswPageProblem(BufferGetPage(buf), blkno) == NULL) {
      HnswElementTuple etup = HnswPageGetElementSized(BufferGetPage(buf), ItemPointerGetOffsetNumber(&etid), element_size);
      if (etup != NULL) ntid = etup->neighbortid;
    }
    int count = 0;
    if (ItemPointerIsValid(&ntid) && ItemPointerGetBlockNumberNoCheck(&ntid) != HNSW_METAPAGE_BLKNO &&
        ItemPointerGetBlockNumberNoCheck(&ntid) < rm.nblocks) {
      if (ItemPointerGetBlockNumber(&ntid) != blkno) {
        UnlockReleaseBuffer(buf);
        blkno = ItemPointerGetBlockNumber(&ntid);
        buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
        LockBuffer(buf, BUFFER_LOCK_SHARE);
      }
      if (HnswPageProblem(BufferGetPage(buf), blkno) == NULL) {
        HnswNeighborTuple ntup = HnswPageGetNeighbors(BufferGetPage(buf), ItemPointerGetOffsetNumber(&ntid), m);
        if (ntup != NULL) {
          count = Min((int)ntup->count, HnswLevelSlots(0, m));
          memcpy(slots, ntup->ids, sizeof(ItemPointerData) * (Size)count);
        }
      }
    }
    UnlockReleaseBuffer(buf);
    for (int i = 0; i < count; i++) {
      if (!ReachIndex(&rm, &slots[i], &bit) || (rm.bits[bit / 8] & (1 << (bit % 8)))) continue;
      rm.bits[bit / 8] |= (uint8)(1 << (bit % 8));
      if (tail == cap) {
        cap *= 2;
        queue = (uint64*)repalloc_huge(queue, sizeof(uint64) * cap);
      }
      queue[tail++] = HnswPackTid(&slots[i]);
    }
  }

  // The live elements not reached.
  int64 n = 0;
  uint64* lost = queue;  // reused: no longer needed
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < rm.nblocks; blkno++) {
    vacuum_delay_point();
    Buffer buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, bas);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    if (!PageIsNew(page) && HnswPageProblem(page, blkno) == NULL) {
      OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
      for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
        HnswElementTuple etup = HnswPageGetElementSized(page, off, element_size);
        if (etup == NULL || (etup->flags & HNSW_ELEMENT_DELETED)) continue;
        ItemPointerData tid;
        ItemPointerSet(&tid, blkno, off);
        if (ReachIndex(&rm, &tid, &bit) && (rm.bits[bit / 8] & (1 << (bit % 8)))) continue;
        if (!ReachIndex(&rm, &tid, &bit)) continue;  // added since the pass started
        if (n == cap) {
          cap *= 2;
          lost = (uint64*)repalloc_huge(lost, sizeof(uint64) * cap);
        }
        lost[n++] = HnswPackTid(&tid);
      }
    }
    UnlockReleaseBuffer(buf);
  }
  if (n > 0) {
    ereport(DEBUG1, (errmsg("hnsw vacuum of \"%s\": relinking %lld unreachable elements", RelationGetRelationName(index),
                            (long long)n)));
    HnswRelinkElements(index, lost, (int)Min(n, (int64)INT_MAX));
  }
  return n;
}

// Relinks unreachable elements until none is left, or three times: a
// relinked element brings back the elements only it links to, and its new
// in-link may come from an element that was itself cut off.
static void RelinkUnreachable(Relation index, BufferAccessStrategy bas, int dim, int m) {
  for (int round = 0; round < 3; round++) {
    if (RelinkUnreachableOnce(index, bas, dim, m) == 0) break;
  }
}

static IndexBulkDeleteResult* HnswBulkDeleteImpl(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                                 IndexBulkDeleteCallback callback, void* callback_state) {
  if (stats == NULL) stats = (IndexBulkDeleteResult*)palloc0(sizeof(IndexBulkDeleteResult));
  MemoryContext vaccxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(vaccxt);

  HnswVacuumState vs;
  InitVacuumState(&vs, info, stats);
  vs.callback = callback;
  vs.callback_state = callback_state;

  MarkDeleted(&vs);  // (a)
  // Barrier: wait for inserts that may have picked a dead element as a neighbour.
  LockPage(info->index, HNSW_UPDATE_LOCK, ExclusiveLock);
  UnlockPage(info->index, HNSW_UPDATE_LOCK, ExclusiveLock);
  if (vs.ndead > 0) {
    RepairGraph(&vs);        // (b)
    ReplaceEntryPoint(&vs);  // (c)
  }
  if (vs.ndead > 0 || vs.ntombstones > 0) RemoveDead(&vs);  // (d)

  stats->num_pages = RelationGetNumberOfBlocks(info->index);
  stats->estimated_count = false;
  ereport(DEBUG1, (errmsg("hnsw vacuum of \"%s\": %lld dead elements, %lld elements repaired (%lld by search), "
                          "%lld value lists repaired (%lld left empty)",
                          RelationGetRelationName(info->index), (long long)vs.ndead, (long long)vs.repaired,
                          (long long)vs.searches, (long long)vs.value_repaired, (long long)vs.value_emptied)));
  MemoryContextSwitchTo(old);
  MemoryContextDelete(vaccxt);
  return stats;
}

// Without a preceding bulkdelete: counts live elements, initialises pages a
// crash left new, and records every page's free space in the FSM.
static IndexBulkDeleteResult* HnswVacuumCleanupImpl(IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
  if (info->analyze_only) return stats;
  HnswMetaPageData meta;
  HnswReadMeta(info->index, &meta);
  {
    MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw vacuum reachability", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(cxt);
    RelinkUnreachable(info->index, info->strategy, (int)meta.dimensions, (int)meta.m);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(cxt);
  }
  if (stats != NULL) {
    stats->num_pages = RelationGetNumberOfBlocks(info->index);
    return stats;
  }
  stats = (IndexBulkDeleteResult*)palloc0(sizeof(IndexBulkDeleteResult));
  HnswVacuumState vs = HnswVacuumState();
  vs.index = info->index;
  vs.dim = (int)meta.dimensions;
  vs.element_size = HNSW_ELEMENT_TUPLE_SIZE_Q(meta.quantization, vs.dim);
  BlockNumber nblocks = RelationGetNumberOfBlocks(info->index);
  double live = 0;
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++) {
    vacuum_delay_point();
    Buffer buf = ReadPage(&vs, blkno, BUFFER_LOCK_SHARE, info->strategy);
    Page page = BufferGetPage(buf);
    if (PageIsNew(page)) {
      LockBuffer(buf, BUFFER_LOCK_UNLOCK);
      LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
      if (PageIsNew(BufferGetPage(buf))) InitNewPage(&vs, buf);
      page = BufferGetPage(buf);
    }
    OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
    for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
      HnswElementTuple etup = HnswPageGetElementSized(page, off, vs.element_size);
      if (etup != NULL && !(etup->flags & HNSW_ELEMENT_DELETED)) live += 1;
    }
    Size freespace = PageGetFreeSpace(page);
    UnlockReleaseBuffer(buf);
    RecordPageWithFreeSpace(info->index, blkno, freespace);
  }
  IndexFreeSpaceMapVacuum(info->index);
  stats->num_pages = nblocks;
  stats->num_index_tuples = live;
  stats->estimated_count = false;
  return stats;
}

IndexBulkDeleteResult* hnswbulkdelete(IndexVacuumInfo* info, IndexBulkDeleteResult* stats,
                                      IndexBulkDeleteCallback callback, void* callback_state) {
  VECEXT_GUARD("hnswbulkdelete", return HnswBulkDeleteImpl(info, stats, callback, callback_state););
}

IndexBulkDeleteResult* hnswvacuumcleanup(IndexVacuumInfo* info, IndexBulkDeleteResult* stats) {
  VECEXT_GUARD("hnswvacuumcleanup", return HnswVacuumCleanupImpl(info, stats););
}
