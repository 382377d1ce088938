// hnsw index scans: ORDER BY col <op> query, heap TIDs in ascending distance.
//
// The first gettuple after a rescan descends from the entry point and runs
// SEARCH-LAYER on level 0 with ef = hnsw.ef_search (src/core/hnsw_search.h
// over the buffer-backed HnswStore); results are returned in order. When
// they run out, hnsw.iterative_scan decides: off ends the scan; strict_order
// and relaxed_order continue the same level-0 search in batches of ef
// (strict_order drops results closer than one already returned) until
// hnsw.max_scan_tuples elements have been visited or nothing is left.
// Filtered two-hop scans may widen the first batch's ef (HnswWidenTwoHop,
// hnsw.filter_ef_widen).
//
// Distance cut-off: for `WHERE col <op> q < d ORDER BY col <op> q`, an
// ExecutorStart hook (HnswScanInit) finds the qual on every hnsw index scan
// node and registers the bound's expression; the scan evaluates it at its
// first gettuple and ends once distances pass it, instead of walking up to
// max_scan_tuples elements that the executor's filter would drop anyway.
//
// Unused ORDER BY values: for `SELECT ... ORDER BY col <op> q LIMIT k`, the
// planner puts `col <op> q` in the scan's target list as a junk column, so
// the executor recomputes every returned row's distance, de-TOASTing its
// vector from the heap, only to throw the value away: the index already
// returns rows in order. When the plan is exactly Limit -> hnsw Index Scan
// (or the scan alone) at the top of a SELECT and the value is junk there,
// the same hook gives the executor a copy of the plan whose junk column is a
// NULL constant (hnsw.elide_orderby_values, on by default). A distance the
// query selects is never touched.
//
// Readers take no heavyweight lock and one buffer content lock at a time
// (hnsw.h, LOCK PROTOCOL). All search state lives in a per-scan memory
// context that each rescan resets.
#include "pg/pg_includes.h"

#include <algorithm>
#include <cmath>
#include <cstring>

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "catalog/pg_class.h"
#include "utils/syscache.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include "core/hnsw_search.h"
#include "core/index_distance.h"
#include "pg/guard.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_store.h"
#include "pg/vector.h"

using vecext::hnsw::Candidate;
using vecext::hnsw::LayerSearch;
using vecext::hnsw::SearchScratch;

// Bytes of link cache per scan (hnsw_store.h): enough for every element an
// ef_search = 1000 search queues, small next to work_mem.
#define HNSW_SCAN_LINK_CACHE_BYTES (4 * 1024 * 1024)

// ---- distance cut-off registry ----------------------------------------------

// A distance bound found by the ExecutorStart hook on one index scan node.
// It lives in the query's es_query_cxt and unlinks itself when that context
// goes away.
struct HnswScanBound {
  ScanKey orderbys;        // the node's iss_OrderByKeys: the rescan's orderbys argument
  ExprState* value;        // the bound d
  ExprContext* econtext;   // the node's expression context
  bool is_float4;          // d is float4 (float8 otherwise)
  HnswScanBound* next;
  MemoryContextCallback callback;
};

static HnswScanBound* hnsw_scan_bounds = NULL;
static ExecutorStart_hook_type hnsw_prev_executor_start = NULL;
static bool hnsw_scan_hook_installed = false;

static void HnswUnregisterBound(void* arg) {
  HnswScanBound* bound = (HnswScanBound*)arg;
  for (HnswScanBound** p = &hnsw_scan_bounds; *p != NULL; p = &(*p)->next) {
    if (*p == bound) {
      *p = bound->next;
      break;
    }
  }
}

static HnswScanBound* HnswFindBound(ScanKey orderbys) {
  for (HnswScanBound* b = hnsw_scan_bounds; b != NULL; b = b->next) {
    if (b->orderbys == orderbys) return b;
  }
  return NULL;
}

// If `clause` is `dist < d`, `dist <= d`, `d > dist` or `d >= dist` with d
// free of the scanned row, returns d.
static Node* HnswBoundOf(Node* clause, Node* dist) {
  if (!IsA(clause, OpExpr)) return NULL;
  OpExpr* op = (OpExpr*)clause;
  if (list_length(op->args) != 2) return NULL;
  Node* left = (Node*)linitial(op->args);
  Node* right = (Node*)lsecond(op->args);
  Oid func = OidIsValid(op->opfuncid) ? op->opfuncid : get_opcode(op->opno);
  Node* bound = NULL;
  switch (func) {
    case F_FLOAT8LT:
    case F_FLOAT8LE:
    case F_FLOAT84LT:
    case F_FLOAT84LE:
      if (equal(left, dist)) bound = right;
      break;
    case F_FLOAT8GT:
    case F_FLOAT8GE:
    case F_FLOAT48GT:
    case F_FLOAT48GE:
      if (equal(right, dist)) bound = left;
      break;
    default:
      break;
  }
  if (bound == NULL) return NULL;
  if (contain_var_clause(bound) || contain_volatile_functions(bound) || contain_subplans(bound)) return NULL;
  return bound;
}

static void HnswRegisterBounds(IndexScanState* iss, EState* estate) {
  IndexScan* plan = (IndexScan*)iss->ss.ps.plan;
  if (list_length(plan->indexorderbyorig) != 1 || iss->iss_NumOrderByKeys != 1) return;
  Node* dist = (Node*)linitial(plan->indexorderbyorig);
  ListCell* lc;
  foreach (lc, plan->scan.plan.qual) {
    Node* bound = HnswBoundOf((Node*)lfirst(lc), dist);
    if (bound == NULL) continue;
    MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
    HnswScanBound* entry = (HnswScanBound*)palloc0(sizeof(HnswScanBound));
    entry->orderbys = iss->iss_OrderByKeys;
    entry->value = ExecInitExpr((Expr*)bound, &iss->ss.ps);
    entry->econtext = iss->ss.ps.ps_ExprContext;
    entry->is_float4 = exprType(bound) == FLOAT4OID;
    entry->callback.func = HnswUnregisterBound;
    entry->callback.arg = entry;
    MemoryContextRegisterResetCallback(estate->es_query_cxt, &entry->callback);
    entry->next = hnsw_scan_bounds;
    hnsw_scan_bounds = entry;
    MemoryContextSwitchTo(old);
    return;  // the first bound is enough
  }
}

static bool HnswFindBoundsWalker(PlanState* ps, void* context) {
  if (ps == NULL) return false;
  if (IsA(ps, IndexScanState)) {
    IndexScanState* iss = (IndexScanState*)ps;
    Relation index = iss->iss_RelationDesc;
    if (index != NULL && index->rd_indam != NULL && index->rd_indam->amgettuple == hnswgettuple)
      HnswRegisterBounds(iss, (EState*)context);
  }
  return planstate_tree_walker(ps, reinterpret_cast<bool (*)()>(HnswFindBoundsWalker), context);
}

// The access method of relation `relid` (InvalidOid if it is gone).
static Oid HnswRelationAm(Oid relid) {
  HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tup)) return InvalidOid;
  Oid am = ((Form_pg_class)GETSTRUCT(tup))->relam;
  ReleaseSysCache(tup);
  return am;
}

// The top of `stmt` when it is a SELECT of the form Limit -> hnsw Index Scan
// (or the scan alone) whose ORDER BY value is only a junk column, copied with
// that column replaced by a NULL constant; NULL when the plan is not of that
// form. The copy shares everything else with `stmt` and lives in `cxt`.
static PlannedStmt* HnswElideOrderByValue(PlannedStmt* stmt, MemoryContext cxt) {
  if (stmt == NULL || stmt->commandType != CMD_SELECT || stmt->planTree == NULL) return NULL;
  Plan* top = stmt->planTree;
  Plan* scan = IsA(top, Limit) ? top->lefttree : top;
  if (scan == NULL || !IsA(scan, IndexScan)) return NULL;
  IndexScan* is = (IndexScan*)scan;
  if (list_length(is->indexorderbyorig) != 1) return NULL;
  Node* dist = (Node*)linitial(is->indexorderbyorig);
  int junk = -1, i = 0;
  ListCell* lc;
  foreach (lc, scan->targetlist) {
    TargetEntry* tle = (TargetEntry*)lfirst(lc);
    if (equal(tle->expr, dist)) {
      if (!tle->resjunk) return NULL;  // selected: the executor must compute it
      junk = i;
    }
    i++;
  }
  if (junk < 0) return NULL;
  Oid am = get_index_am_oid("hnsw", true);
  if (!OidIsValid(am) || HnswRelationAm(is->indexid) != am) return NULL;

  MemoryContext old = MemoryContextSwitchTo(cxt);
  IndexScan* newscan = (IndexScan*)palloc(sizeof(IndexScan));
  *newscan = *is;
  newscan->scan.plan.targetlist = NIL;
  i = 0;
  foreach (lc, scan->targetlist) {
    TargetEntry* tle = (TargetEntry*)lfirst(lc);
    if (i++ == junk) {
      TargetEntry* copy = flatCopyTargetEntry(tle);
      copy->expr = (Expr*)makeNullConst(exprType((Node*)tle->expr), exprTypmod((Node*)tle->expr),
                                        exprCollation((Node*)tle->expr));
      tle = copy;
    }
    newscan->scan.plan.targetlist = lappend(newscan->scan.plan.targetlist, tle);
  }
  Plan* newtop = (Plan*)newscan;
  if (IsA(top, Limit)) {
    Limit* limit = (Limit*)palloc(sizeof(Limit));
    *limit = *(Limit*)top;
    limit->plan.lefttree = (Plan*)newscan;
    newtop = (Plan*)limit;
  }
  PlannedStmt* copy = (PlannedStmt*)palloc(sizeof(PlannedStmt));
  *copy = *stmt;
  copy->planTree = newtop;
  MemoryContextSwitchTo(old);
  return copy;
}

extern "C" {
static void HnswExecutorStart(QueryDesc* queryDesc, int eflags) {
  VECEXT_GUARD("hnsw executor start", {
    if (hnsw_elide_orderby_values && !(eflags & EXEC_FLAG_EXPLAIN_ONLY)) {
      PlannedStmt* elided = HnswElideOrderByValue(queryDesc->plannedstmt, GetMemoryChunkContext(queryDesc));
      if (elided != NULL) queryDesc->plannedstmt = elided;
    }
    if (hnsw_prev_executor_start != NULL) {
      hnsw_prev_executor_start(queryDesc, eflags);
    } else {
      standard_ExecutorStart(queryDesc, eflags);
    }
    if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && queryDesc->planstate != NULL)
      HnswFindBoundsWalker(queryDesc->planstate, queryDesc->estate);
    return;
  });
}
}  // extern "C"

// Installs the ExecutorStart hook that finds distance bounds (idempotent).
// Call from _PG_init; scans also call it, so that without that the cut-off
// works from the second statement of a session on.
void HnswScanInit(void) {
  if (hnsw_scan_hook_installed) return;
  hnsw_scan_hook_installed = true;
  hnsw_prev_executor_start = ExecutorStart_hook;
  ExecutorStart_hook = HnswExecutorStart;
}

// ---- the scan -----------------------------------------------------------------

struct HnswScanOpaqueData {
  MemoryContext cxt;        // everything below that is allocated; reset by rescan
  int metric;               // vecext::Metric of the opclass
  int iterative;            // HNSW_ITERATIVE_SCAN_* at rescan
  int ef;
  uint64 max_scored;        // hnsw.max_scan_tuples (iterative scans)
  bool has_query;           // false: NULL query, no rows
  bool started;             // the first batch has been searched
  bool done;                // no more rows
  float* query;             // prepared query (normalized for cosine)
  int query_dim;
  HnswScanBound* bound;     // distance cut-off, or NULL
  bool bounded;
  float bound_index;        // cut-off in index distance (with a rounding margin)
  HnswStore store;
  LayerSearch search;
  SearchScratch* scratch;
  Candidate* batch;         // current batch, ascending (SQ8: by lower bound)
  size_t batch_len;
  size_t batch_pos;
  bool returned_any;
  float last_distance;      // of the last row returned (strict_order)
  // SQ8: rows are re-ranked by the executor (xs_recheckorderby) from lower
  // bounds of their SQL distances; batch_lb[i] is batch[i]'s bound.
  bool sq8;
  double* batch_lb;
  char* batch_data;         // scratch: the batch's element data
  HnswElementInfo* batch_info;
  double last_lb;           // of the last row returned (strict_order)
  double bound_sql;         // the distance cut-off in SQL units (bounded)
  uint64 returned;          // rows returned (DEBUG2 statistics)
  // Filtered search: the quals on the metadata column, compiled (NULL: none
  // the index can check); every row is rechecked by the executor when the
  // scan has keys.
  HnswFilterProgram* filter;
  bool has_keys;
  uint64* returned_ids;     // iterative scans: elements returned so far (for HnswExhaustiveBatch)
  size_t nreturned_ids;
  size_t returned_ids_cap;
  bool exhausted;           // the final pass over every element has run
};
typedef HnswScanOpaqueData* HnswScanOpaque;

static void* HnswPallocAllocate(void* ctx, std::size_t bytes) {
  return MemoryContextAllocHuge((MemoryContext)ctx, bytes);
}
static void HnswPallocRelease(void*, void* p) { pfree(p); }

static void HnswCheckStatus(vecext::Status st) {
  if (!st.ok()) ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("hnsw scan: %s", st.message)));
}

// Evaluates the distance cut-off for this rescan.
static void HnswEvaluateBound(HnswScanOpaque so) {
  so->bounded = false;
  if (so->bound == NULL) return;
  bool isnull;
  Datum d = ExecEvalExprSwitchContext(so->bound->value, so->bound->econtext, &isnull);
  if (isnull) {
    so->done = true;  // `dist < NULL` holds for no row
    return;
  }
  double sql = so->bound->is_float4 ? (double)DatumGetFloat4(d) : DatumGetFloat8(d);
  if (std::isnan(sql)) return;  // every non-NaN distance is below NaN in Postgres' float order
  double index_bound = vecext::SqlToIndexDistance((vecext::Metric)so->metric, sql);
  // The index's kernel and the SQL operator may round differently: keep a
  // small margin; the executor's filter still applies the exact bound.
  index_bound += 1e-4 * std::fabs(index_bound) + 1e-6;
  if (index_bound >= (double)std::numeric_limits<float>::max()) return;
  so->bounded = true;
  so->bound_sql = sql;
  so->bound_index = (float)index_bound;
}

// SQ8: the lower bound of each batch row's SQL distance (its element's
// error norms bound how far the code distance may be off), and the batch
// sorted by it, so that the bounds a scan returns ascend within a batch.
static void HnswPrepareBatch(HnswScanOpaque so) {
  if (!so->sq8 || so->batch_len == 0) return;
  const size_t n = so->batch_len;
  // The side data Score kept; the pages of elements it lacks are read again.
  vecext::hnsw::ElementId missing[HNSW_MAX_EF_SEARCH + 1];
  int nmissing = 0;
  bool* have = (bool*)palloc(sizeof(bool) * n);
  vecext::Sq8ElementInfo* infos = (vecext::Sq8ElementInfo*)palloc(sizeof(vecext::Sq8ElementInfo) * n);
  for (size_t i = 0; i < n; i++) {
    have[i] = HnswStoreSq8Info(&so->store, so->batch[i].id, &infos[i]);
    if (!have[i]) missing[nmissing++] = so->batch[i].id;
  }
  if (nmissing > 0) {
    HnswStoreLoadElements(&so->store, missing, nmissing, so->batch_data, so->batch_info);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
      if (have[i]) continue;
      if (so->batch_info[k].valid) {
        memcpy(&infos[i], so->batch_data + (size_t)k * so->store.data_size, sizeof(vecext::Sq8ElementInfo));
        have[i] = true;
      }
      k++;
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    if (!have[i]) continue;  // vanished since it was scored
    so->batch_lb[kept] = HnswStoreLowerBound(&so->store, so->batch[i].distance, infos[i]);
    so->batch[kept] = so->batch[i];
    kept++;
  }
  pfree(have);
  pfree(infos);
  so->batch_len = kept;
  // Insertion sort by bound (n <= so->ef + 1; the order is nearly right).
  for (size_t i = 1; i < kept; i++) {
    const double lb = so->batch_lb[i];
    const Candidate c = so->batch[i];
    size_t j = i;
    while (j > 0 && so->batch_lb[j - 1] > lb) {
      so->batch_lb[j] = so->batch_lb[j - 1];
      so->batch[j] = so->batch[j - 1];
      j--;
    }
    so->batch_lb[j] = lb;
    so->batch[j] = c;
  }
}

static bool HnswExhaustiveBatch(HnswScanOpaque so);

// Two-hop scans: an adaptive candidate list. Where few of the links an
// expansion reads lead to elements that may match (a selective filter over a
// sparse graph), the elements that may match are connected only through
// chains of looked-through ones, and a search with ef_search candidates
// stops short of some of the nearest matches (measured: the misses are
// spread over most queries, one or two rows each, not whole regions cut
// off). After the first SEARCH-LAYER, when the level-0 expansions met fewer
// than HNSW_TWO_HOP_LINKS_WANTED links that may match each, the beam widens
// in proportion, at most hnsw.filter_ef_widen times, and the search goes on
// from where it stopped (WidenSearch). A filter that is not selective
// (10%: most expansions follow every link, see TwoHopNeighbors) keeps
// ef_search.
//
// The widened continuation has a long tail: a few queries whose matching
// rows lie far away expand thousands of elements more (at 1%, 200,000 rows:
// median 3,300 buffer accesses, 95th percentile 22,000). It stops once it
// has visited (scored or looked through) HNSW_WIDEN_TAIL times the elements
// the first search visited; its results then are the best found so far, at
// least as good as the first search's, and later batches resume from there.
// Measured (docs/filtering.md, 1%, 200,000 rows): the same recall for 17%
// fewer accesses with 20 links wanted; with the cap, 40 links wanted reach
// 0.979 for 11% more accesses than 20 without it (0.954).
#define HNSW_TWO_HOP_LINKS_WANTED 40.0
#define HNSW_WIDEN_TAIL 3
#define HNSW_WIDEN_STEP 64  // scored elements between two checks of the tail
static void HnswWidenTwoHop(HnswScanOpaque so) {
  HnswStore* st = &so->store;
  if (!st->two_hop || !so->search.resumable || st->two_hop_expansions == 0 || so->search.scored >= so->max_scored ||
      !(hnsw_filter_ef_widen > 1.0))
    return;
  // Expansions followed value lists: the matching rows are connected in
  // their own graph, which is what widening makes up for without them.
  if (st->value_expansions > 0) return;
  const double wanted = HNSW_TWO_HOP_LINKS_WANTED, max_widen = hnsw_filter_ef_widen;
  const double per_expansion = (double)st->passed_links / (double)st->two_hop_expansions;
  double scale = per_expansion > 0 ? wanted / per_expansion : max_widen;
  scale = Min(scale, max_widen);
  const int ef = (int)Min((double)HNSW_MAX_EF_SEARCH, std::ceil(scale * so->ef));
  if (ef <= so->ef) return;
  MemoryContext old = MemoryContextSwitchTo(so->cxt);
  so->batch = (Candidate*)repalloc(so->batch, sizeof(Candidate) * (size_t)(ef + 1));
  if (so->sq8) {
    so->batch_lb = (double*)repalloc(so->batch_lb, sizeof(double) * (size_t)(ef + 1));
    so->batch_data = (char*)repalloc(so->batch_data, so->store.data_size * (size_t)(ef + 1));
    so->batch_info = (HnswElementInfo*)repalloc(so->batch_info, sizeof(HnswElementInfo) * (size_t)(ef + 1));
  }
  MemoryContextSwitchTo(old);
  so->ef = ef;
  HnswCheckStatus(vecext::hnsw::WidenSearch(so->search, (size_t)ef));
  // SearchLayer stops at a number of scored elements: run it in steps and
  // check the visits (scored + looked through) between them.
  const uint64 first = so->search.scored + st->through_reads;
  const uint64 tail = (uint64)HNSW_WIDEN_TAIL * first;
  for (;;) {
    const uint64 limit = Min(so->max_scored, so->search.scored + HNSW_WIDEN_STEP);
    HnswCheckStatus(vecext::hnsw::SearchLayer(so->store, so->search, 0, limit, *so->scratch));
    if (so->search.scored < limit || so->search.scored >= so->max_scored) break;  // converged, or the budget
    if (so->search.scored + st->through_reads - first >= tail) break;
  }
}

// Runs the first batch: meta, descent, level-0 search.
static void HnswStartSearch(IndexScanDesc scan) {
  HnswScanOpaque so = (HnswScanOpaque)scan->opaque;
  Relation index = scan->indexRelation;
  so->started = true;
  HnswEvaluateBound(so);
  if (so->done) return;

  HnswMetaPageData meta;
  HnswReadMeta(index, &meta);
  if (meta.dimensions > 0 && (int)meta.dimensions != so->query_dim)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                    errmsg("different vector dimensions %u and %d", meta.dimensions, so->query_dim)));
  if (meta.entry_level < 0 || !ItemPointerIsValid(&meta.entry)) {
    so->done = true;  // empty index
    return;
  }

  so->sq8 = meta.quantization == HNSW_QUANT_SQ8;
  if (so->sq8 && !hnsw_quantized_search)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("hnsw index \"%s\" stores SQ8 codes only", RelationGetRelationName(index)),
                    errdetail("hnsw.quantized_search = off needs full-precision vectors in the index; an SQ8 index "
                              "re-ranks its candidates from the table instead."),
                    errhint("SET hnsw.quantized_search = on, or compare with an index built with quantization = "
                            "'none'.")));
  MemoryContext old = MemoryContextSwitchTo(so->cxt);
  HnswStoreInit(&so->store, index, so->query_dim, meta.m, so->metric, meta.quantization, so->cxt,
                HNSW_SCAN_LINK_CACHE_BYTES);
  if (so->sq8 && so->store.sq8.dim != (uint32)so->query_dim)
    HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "the SQ8 parameters are missing");
  HnswStoreSetQuery(&so->store, so->query);
  so->store.filter = so->filter;
  so->store.link_codes = (meta.flags & HNSW_META_LINK_CODES) != 0;
  if (so->filter != NULL && so->store.link_codes && hnsw_filter_two_hop) {
    // Level-0 expansions look through excluded elements (HnswStore::Neighbors);
    // the link cache holds no codes, so it stays off.
    so->store.two_hop = true;
    so->store.max_entries = 0;
    if (!HnswFilterCodeTerms(so->filter, &so->store.code_terms, &so->store.ncode_terms)) so->store.ncode_terms = -1;
    if ((meta.flags & HNSW_META_VALUE_LISTS) && hnsw_filter_value_lists) {
      so->store.value_lists = meta.value_lists;
      so->store.value_slots = meta.value_slots;
      so->store.nvalue_keys = HnswFilterValueKeys(so->filter, so->store.value_keys, 4);
    }
  }
  if (so->sq8) {
    // The executor re-ranks SQ8 rows (xs_recheckorderby): it returns its
    // k-th row only after it has seen the (k+1)-th bound, so a LIMIT k scan
    // at ef_search = k would run out of its first batch at row k + 1 and
    // pay for a second search (the cost of ef_search 2k). Searching one
    // candidate more than ef_search answers it from the first batch
    // (docs/quantization.md, "The executor needs one row past LIMIT").
    so->ef += 1;
    HnswStoreKeepSq8Info(&so->store);
    so->batch_lb = (double*)palloc(sizeof(double) * (size_t)(so->ef + 1));
    so->batch_data = (char*)palloc(so->store.data_size * (size_t)(so->ef + 1));
    so->batch_info = (HnswElementInfo*)palloc(sizeof(HnswElementInfo) * (size_t)(so->ef + 1));
  }
  vecext::hnsw::Allocator alloc{HnswPallocAllocate, HnswPallocRelease, so->cxt};
  HnswCheckStatus(so->search.Init(alloc, (size_t)so->ef, so->iterative != HNSW_ITERATIVE_SCAN_OFF));
  so->scratch = (SearchScratch*)palloc(sizeof(SearchScratch));
  so->batch = (Candidate*)palloc(sizeof(Candidate) * (size_t)(so->ef + 1));
  MemoryContextSwitchTo(old);

  // Scans take no heavyweight lock (hnsw.h), so vacuum may replace and remove
  // the entry point between our metapage read and the first element read:
  // then read the metapage again.
  bool found = false;
  for (int attempt = 0;; attempt++) {
    // With a filter, the first batch may have to pass many elements the
    // filter excludes: it is bounded like later ones (hnsw.max_scan_tuples).
    HnswCheckStatus(vecext::hnsw::SearchFromEntry(so->store, HnswPackTid(&meta.entry), meta.entry_level,
                                                  so->search, so->filter != NULL ? so->max_scored : vecext::hnsw::kUnlimited,
                                                  *so->scratch, &found));
    if (found) break;
    HnswMetaPageData again;
    HnswReadMeta(index, &again);
    if (attempt >= 2 || again.entry_level < 0 || !ItemPointerIsValid(&again.entry) ||
        (ItemPointerEquals(&again.entry, &meta.entry) && again.entry_level == meta.entry_level)) {
      so->done = true;  // empty, or an entry point that is not a valid element
      return;
    }
    meta = again;
    so->search.Reset();
  }
  HnswWidenTwoHop(so);
  so->batch_len = vecext::hnsw::TakeResults(so->search, so->batch);
  so->batch_pos = 0;
  // A filtered search that spent its whole budget without finding ef_search
  // rows that may match: the matching rows lie far from the query in the
  // graph. Before returning anything, one pass over the index gives them
  // all, in exact distance order.
  if (so->filter != NULL && so->iterative != HNSW_ITERATIVE_SCAN_OFF && so->search.scored >= so->max_scored &&
      so->batch_len < (size_t)so->ef) {
    HnswExhaustiveBatch(so);
    return;
  }
  HnswPrepareBatch(so);
}

// Searches the next batch of an iterative scan. Returns false at the end.
// Filtered scans remember the elements they return (for HnswExhaustiveBatch).
static void HnswRememberReturned(HnswScanOpaque so, uint64 id) {
  if (so->iterative == HNSW_ITERATIVE_SCAN_OFF || so->exhausted) return;
  if (so->nreturned_ids == so->returned_ids_cap) {
    so->returned_ids_cap = so->returned_ids_cap == 0 ? 64 : 2 * so->returned_ids_cap;
    so->returned_ids = so->returned_ids == NULL
                           ? (uint64*)MemoryContextAlloc(so->cxt, sizeof(uint64) * so->returned_ids_cap)
                           : (uint64*)repalloc_huge(so->returned_ids, sizeof(uint64) * so->returned_ids_cap);
  }
  so->returned_ids[so->nreturned_ids++] = id;
}

// Filtered scans whose graph search ran out (hnsw.max_scan_tuples, or
// nothing left to visit) before the executor had its rows: the rows that
// match may lie far from the query in the graph (a filter on a value rare
// near the query). Unfiltered iterative scans whose search has nothing
// left to visit: level-0 links are directed, and a tightly clustered group
// of elements may have links into it but none out of it (seen in indexes
// with link codes, whose dense level-0 lists favour near neighbours), so
// a scan that lands there runs out with rows unseen while the executor
// still filters rows out. So that LIMIT k still gets k rows whenever k rows match,
// one pass over every element page collects the elements the filter does
// not exclude and that were not returned yet, as a last batch in distance
// order. Costs one read of the whole index, for such queries only.
static bool HnswExhaustiveBatch(HnswScanOpaque so) {
  so->exhausted = true;
  HnswStore* st = &so->store;
  const BlockNumber nblocks = RelationGetNumberOfBlocks(st->index);
  if (so->nreturned_ids > 1) std::sort(so->returned_ids, so->returned_ids + so->nreturned_ids);
  size_t cap = 1024, n = 0;
  MemoryContext old = MemoryContextSwitchTo(so->cxt);
  Candidate* out = (Candidate*)palloc(sizeof(Candidate) * cap);
  double* lbs = so->sq8 ? (double*)palloc(sizeof(double) * cap) : NULL;
  for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++) {
    CHECK_FOR_INTERRUPTS();
    Buffer buf = ReadBuffer(st->index, blkno);
    LockBuffer(buf, BUFFER_LOCK_SHARE);
    Page page = BufferGetPage(buf);
    if (HnswStoreCheckElementPage(st->index, page, blkno)) {
      const OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
      for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++) {
        HnswElementTuple etup = HnswStoreGetElement(page, off, st->element_size);
        if (etup == NULL || (etup->flags & HNSW_ELEMENT_DELETED)) continue;
        if (HnswStoreFilterExcludes(st, so->filter, etup, ItemIdGetLength(PageGetItemId(page, off)))) continue;
        ItemPointerData tid;
        ItemPointerSet(&tid, blkno, off);
        const uint64 id = HnswPackTid(&tid);
        if (so->nreturned_ids > 0 && std::binary_search(so->returned_ids, so->returned_ids + so->nreturned_ids, id))
          continue;
        const float d = HnswStoreElementDistance(st, etup);
        double lb = 0.0;
        if (so->sq8) {
          vecext::Sq8ElementInfo info;
          memcpy(&info, etup->vec, sizeof(info));
          lb = HnswStoreLowerBound(st, d, info);
        }
        if (n == cap) {
          cap *= 2;
          out = (Candidate*)repalloc_huge(out, sizeof(Candidate) * cap);
          if (lbs != NULL) lbs = (double*)repalloc_huge(lbs, sizeof(double) * cap);
        }
        // aux: the heap TID (HnswStoreHeapTid reads it back from there).
        out[n] = Candidate{d, id, HnswPackTid(&etup->heaptid)};
        if (lbs != NULL) lbs[n] = lb;
        n++;
      }
    }
    UnlockReleaseBuffer(buf);
  }
  // Ascending (SQ8: by lower bound, the order the executor needs).
  size_t* order = (size_t*)palloc(sizeof(size_t) * Max(n, (size_t)1));
  for (size_t i = 0; i < n; i++) order[i] = i;
  if (lbs != NULL) {
    std::sort(order, order + n, [&](size_t a, size_t b) { return lbs[a] < lbs[b] || (lbs[a] == lbs[b] && a < b); });
  } else {
    std::sort(order, order + n, [&](size_t a, size_t b) { return vecext::hnsw::Closer(out[a], out[b]); });
  }
  so->batch = (Candidate*)palloc(sizeof(Candidate) * Max(n, (size_t)1));
  if (lbs != NULL) so->batch_lb = (double*)palloc(sizeof(double) * Max(n, (size_t)1));
  for (size_t i = 0; i < n; i++) {
    so->batch[i] = out[order[i]];
    if (lbs != NULL) so->batch_lb[i] = lbs[order[i]];
  }
  so->batch_len = n;
  so->batch_pos = 0;
  MemoryContextSwitchTo(old);
  return n > 0;
}

static bool HnswNextBatch(HnswScanOpaque so) {
  LayerSearch& s = so->search;
  const bool nothing_left =
      s.results.size == 0 && s.candidates.size == 0 && s.discarded.size == 0 && s.evicted.size == 0;
  if (so->iterative != HNSW_ITERATIVE_SCAN_OFF && !so->exhausted &&
      ((so->filter != NULL && (s.scored >= so->max_scored || nothing_left)) ||
       (so->filter == NULL && nothing_left && !so->bounded && s.scored < so->max_scored)))
    return HnswExhaustiveBatch(so);
  if (so->exhausted) return false;
  if (so->iterative == HNSW_ITERATIVE_SCAN_OFF || s.scored >= so->max_scored) return false;
  if (so->bounded && !so->sq8) {
    // Nothing pending below the bound: no later batch can return a row.
    // (Under SQ8 the pending distances are approximate: no early end.)
    float lowest = std::numeric_limits<float>::infinity();
    if (s.discarded.size > 0) lowest = Min(lowest, s.discarded.Top().distance);
    if (s.evicted.size > 0) lowest = Min(lowest, s.evicted.Top().distance);
    if (s.candidates.size > 0) lowest = Min(lowest, s.candidates.Top().distance);
    if (lowest > so->bound_index) return false;
  }
  bool more = false;
  HnswCheckStatus(vecext::hnsw::NextBatch(s, &more));
  if (!more) return !so->exhausted && (so->filter != NULL || !so->bounded) ? HnswExhaustiveBatch(so) : false;
  HnswCheckStatus(vecext::hnsw::SearchLayer(so->store, s, 0, so->max_scored, *so->scratch));
  so->batch_len = vecext::hnsw::TakeResults(s, so->batch);
  so->batch_pos = 0;
  HnswPrepareBatch(so);
  return true;
}

static IndexScanDesc HnswBeginScanImpl(Relation index, int nkeys, int norderbys) {
  HnswScanInit();
  IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
  HnswScanOpaque so = (HnswScanOpaque)palloc0(sizeof(HnswScanOpaqueData));
  so->cxt = AllocSetContextCreate(CurrentMemoryContext, "hnsw scan", ALLOCSET_DEFAULT_SIZES);
  so->metric = HnswGetMetric(index);
  so->done = true;
  scan->opaque = so;
  // ORDER BY values (SQ8 scans hand the executor lower bounds to re-check).
  scan->xs_orderbyvals = (Datum*)palloc0(sizeof(Datum) * (Size)Max(norderbys, 1));
  scan->xs_orderbynulls = (bool*)palloc(sizeof(bool) * (Size)Max(norderbys, 1));
  memset(scan->xs_orderbynulls, true, sizeof(bool) * (Size)Max(norderbys, 1));
  return scan;
}

static void HnswRescanImpl(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
  HnswScanOpaque so = (HnswScanOpaque)scan->opaque;
  MemoryContextReset(so->cxt);
  so->started = false;
  so->done = false;
  so->has_query = false;
  so->query = NULL;
  so->batch_len = 0;
  so->batch_pos = 0;
  so->returned_any = false;
  so->returned = 0;
  so->returned_ids = NULL;
  so->nreturned_ids = 0;
  so->returned_ids_cap = 0;
  so->exhausted = false;
  so->bounded = false;
  so->sq8 = false;
  so->iterative = hnsw_iterative_scan;
  so->ef = hnsw_ef_search;
  so->max_scored = (uint64)Max(hnsw_max_scan_tuples, 1);

  if (keys != NULL && nkeys > 0 && scan->numberOfKeys > 0) memmove(scan->keyData, keys, nkeys * sizeof(ScanKeyData));
  so->filter = NULL;
  so->has_keys = scan->numberOfKeys > 0;
  if (so->has_keys) {
    MemoryContext fold = MemoryContextSwitchTo(so->cxt);
    HnswFilterProgram* program = HnswFilterCompile(scan->keyData, scan->numberOfKeys, 2);
    MemoryContextSwitchTo(fold);
    const int kind = HnswFilterKind(program);
    if (kind == HNSW_FILTER_ALWAYS_NO) {
      so->done = true;  // no row can satisfy the quals
      return;
    }
    if (kind == HNSW_FILTER_DEPENDS) so->filter = program;
  }
  if (orderbys != NULL && norderbys > 0 && scan->numberOfOrderBys > 0)
    memmove(scan->orderByData, orderbys, norderbys * sizeof(ScanKeyData));
  if (scan->numberOfOrderBys != 1)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("an hnsw index scan needs exactly one ORDER BY distance operator")));
  ScanKey key = &scan->orderByData[0];
  if (key->sk_flags & SK_ISNULL) {
    so->done = true;  // ORDER BY col <op> NULL: no row has a distance
    return;
  }
  so->bound = HnswFindBound(orderbys);

  MemoryContext old = MemoryContextSwitchTo(so->cxt);
  Vector* v = DatumGetVector(key->sk_argument);
  so->query_dim = v->dim;
  so->query = (float*)palloc(sizeof(float) * (Size)Max(v->dim, 1));
  memcpy(so->query, v->x, sizeof(float) * (Size)v->dim);
  MemoryContextSwitchTo(old);
  // Cosine compares normalized vectors by 1 - dot; a zero query stays zero
  // (every distance 1, like an unordered scan).
  if (vecext::IndexNormalizes((vecext::Metric)so->metric) && v->dim > 0)
    vecext::NormalizeInPlace(so->query, (std::size_t)v->dim);
  so->has_query = true;
}

static bool HnswGetTupleImpl(IndexScanDesc scan, ScanDirection dir) {
  HnswScanOpaque so = (HnswScanOpaque)scan->opaque;
  if (!ScanDirectionIsForward(dir))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("hnsw index scans only go forward")));
  if (so->done) return false;
  if (!so->started) {
    HnswStartSearch(scan);
    if (so->done) return false;
  }
  const bool strict = so->iterative == HNSW_ITERATIVE_SCAN_STRICT;
  for (;;) {
    while (so->batch_pos < so->batch_len) {
      const size_t at = so->batch_pos++;
      const Candidate& c = so->batch[at];
      if (so->sq8) {
        // Re-ranked by the executor from lower bounds of the SQL distance.
        const double lb = so->batch_lb[at];
        if (so->bounded && lb > so->bound_sql) {
          so->batch_pos = so->batch_len;  // the rest of this batch is farther still
          break;
        }
        if (strict && so->returned_any && lb < so->last_lb) continue;
        ItemPointerData heaptid;
        if (!HnswStoreHeapTid(&so->store, c, &heaptid)) continue;
        scan->xs_heaptid = heaptid;
        scan->xs_recheck = so->has_keys;
        scan->xs_recheckorderby = true;
        scan->xs_orderbyvals[0] = Float8GetDatum(lb);
        scan->xs_orderbynulls[0] = false;
        so->returned_any = true;
        so->returned++;
        so->last_lb = lb;
        HnswRememberReturned(so, c.id);
        return true;
      }
      if (so->bounded && c.distance > so->bound_index) {
        so->batch_pos = so->batch_len;  // the rest of this batch is farther still
        break;
      }
      if (strict && so->returned_any && c.distance < so->last_distance) continue;
      ItemPointerData heaptid;
      if (!HnswStoreHeapTid(&so->store, c, &heaptid)) continue;
      scan->xs_heaptid = heaptid;
      scan->xs_recheck = so->has_keys;
      scan->xs_recheckorderby = false;
      so->returned_any = true;
      so->returned++;
      so->last_distance = c.distance;
      HnswRememberReturned(so, c.id);
      return true;
    }
    if (!HnswNextBatch(so)) {
      so->done = true;
      return false;
    }
  }
}

static void HnswEndScanImpl(IndexScanDesc scan) {
  HnswScanOpaque so = (HnswScanOpaque)scan->opaque;
  if (so->started && so->store.index != NULL)
    elog(DEBUG2,
         "hnsw scan: %llu rows returned, %llu buffer reads, %llu elements scored, %llu expansions, %llu from the "
         "link cache, %llu looked through, %llu links skipped, %llu links passed, %llu expansions by value "
         "lists (%llu links), ef %d",
         (unsigned long long)so->returned, (unsigned long long)so->store.buffer_reads,
         (unsigned long long)so->store.scored, (unsigned long long)so->store.expansions,
         (unsigned long long)so->store.cached_expansions, (unsigned long long)so->store.through_reads,
         (unsigned long long)so->store.skipped_links, (unsigned long long)so->store.passed_links,
         (unsigned long long)so->store.value_expansions, (unsigned long long)so->store.value_links, so->ef);
  MemoryContextDelete(so->cxt);
  pfree(so);
  scan->opaque = NULL;
}

IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys) {
  VECEXT_GUARD("hnswbeginscan", return HnswBeginScanImpl(index, nkeys, norderbys););
}

void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys) {
  VECEXT_GUARD("hnswrescan", {
    HnswRescanImpl(scan, keys, nkeys, orderbys, norderbys);
    return;
  });
}

bool hnswgettuple(IndexScanDesc scan, ScanDirection dir) {
  VECEXT_GUARD("hnswgettuple", return HnswGetTupleImpl(scan, dir););
}

void hnswendscan(IndexScanDesc scan) {
  VECEXT_GUARD("hnswendscan", {
    HnswEndScanImpl(scan);
    return;
  });
}
