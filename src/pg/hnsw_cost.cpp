// hnsw cost estimation for the planner.
//
// An hnsw scan is only useful for ORDER BY <distance operator>: without ORDER
// BY the path gets an impossible cost (quals on a metadata column alone never
// make an hnsw scan).
//
// Total cost: returning every row in order means visiting the whole graph,
// so genericcostestimate prices all n index tuples (one distance each) and
// all index pages as random reads. The index stores each vector inline while
// the heap usually keeps large vectors in TOAST, which the cost of a
// sequential scan leaves out; so the pages charged are capped at the heap's
// page count, which keeps the two plans comparable.
//
// Startup cost: the search for the first rows does nearly all its work before
// the first tuple comes back. It visits about
//   V = (L + ef_search) * m  elements (at most n), where
//   L = log(n) / log(m) is the expected entry level: a greedy descent
//   visiting about m elements per upper level, then a beam search of
//   ef_search candidates on level 0, each expansion reading about m new
//   elements (2m links, about half already seen);
// so startup = V / n of the total. A LIMIT k plan costs about the startup
// plus k rows of heap fetches; an exact plan through another index
// (WHERE id = 5 on a B-tree) stays cheaper when it returns few rows, and
// ORDER BY without LIMIT prefers an exact sort.
#include "pg/pg_includes.h"

#include <cfloat>
#include <cmath>

extern "C" {
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "optimizer/optimizer.h"
}

#include "pg/guard.h"
#include "pg/hnsw.h"

// Expected number of elements an hnsw scan visits in an index of `tuples`
// elements with `m` links per level and a candidate list of `ef`.
// With a filter on the metadata column that keeps a fraction `selectivity`
// of the rows, the level-0 search passes about 1/selectivity elements for
// every one it may return.
static double HnswVisitedTuples(double tuples, int m, int ef, double selectivity) {
  if (tuples < 1) tuples = 1;
  double ml = 1.0 / std::log((double)m);
  double entry_level = std::floor(std::log(tuples) * ml);
  double visited = entry_level * m + (double)ef * m / selectivity;
  return visited < tuples ? visited : tuples;
}

static void HnswCostEstimateImpl(PlannerInfo* root, IndexPath* path, double loop_count, Cost* indexStartupCost,
                                 Cost* indexTotalCost, Selectivity* indexSelectivity, double* indexCorrelation,
                                 double* indexPages) {
  // No ORDER BY distance: never use the index.
  if (path->indexorderbys == NIL) {
    *indexStartupCost = DBL_MAX;
    *indexTotalCost = DBL_MAX;
    *indexSelectivity = 0;
    *indexCorrelation = 0;
    *indexPages = 0;
    return;
  }

  IndexOptInfo* info = path->indexinfo;
  Relation index = index_open(info->indexoid, NoLock);
  int m = HnswGetM(index);
  index_close(index, NoLock);

  GenericCosts costs;
  memset(&costs, 0, sizeof(costs));
  double tuples = Max(info->tuples, 1.0);
  costs.numIndexTuples = tuples;
  genericcostestimate(root, path, loop_count, &costs);

  // Split genericcostestimate's total into its parts (its per-tuple charge:
  // hnsw has no index quals, one operator per ORDER BY) and cap the pages.
  double cpu = costs.numIndexTuples * costs.num_sa_scans *
               (cpu_index_tuple_cost + cpu_operator_cost * list_length(path->indexorderbys));
  double pages_cost = costs.indexTotalCost - costs.indexStartupCost - cpu;
  double heap_pages = info->rel->pages;
  if (heap_pages > 0 && costs.numIndexPages > heap_pages && pages_cost > 0)
    pages_cost *= heap_pages / costs.numIndexPages;
  double work = pages_cost + cpu;
  // Quals on the metadata column (filtered search): genericcostestimate's
  // selectivity is theirs.
  double selectivity = path->indexclauses != NIL ? costs.indexSelectivity : 1.0;
  if (selectivity < 1.0 / tuples) selectivity = 1.0 / tuples;
  double ratio = HnswVisitedTuples(tuples, m, hnsw_ef_search, selectivity) / tuples;
  // An iterative scan stops after hnsw.max_scan_tuples elements.
  if (path->indexclauses != NIL && (double)hnsw_max_scan_tuples < ratio * tuples)
    ratio = (double)hnsw_max_scan_tuples / tuples;

  *indexStartupCost = costs.indexStartupCost + ratio * work;
  *indexTotalCost = costs.indexStartupCost + work;
  *indexSelectivity = costs.indexSelectivity;
  *indexCorrelation = 0;
  *indexPages = costs.numIndexPages;
}

void hnswcostestimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* indexStartupCost,
                      Cost* indexTotalCost, Selectivity* indexSelectivity, double* indexCorrelation,
                      double* indexPages) {
  VECEXT_GUARD("hnswcostestimate", {
    HnswCostEstimateImpl(root, path, loop_count, indexStartupCost, indexTotalCost, indexSelectivity, indexCorrelation,
                         indexPages);
    return;
  });
}
