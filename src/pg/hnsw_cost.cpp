// hnsw cost estimation for the planner.
//
// An hnsw scan is only useful for ORDER BY <distance operator> (the AM has no
// searchable operators): without ORDER BY the path gets an impossible cost.
// With one, the graph search does nearly all its work before the first tuple
// comes back, so the startup cost is the whole index cost:
//   upper levels:  a greedy descent visiting about m elements per level,
//                  over log(n) / log(m) levels (the expected entry level);
//   level 0:       a beam search over ef_search candidates, each expansion
//                  reading about m new neighbours (2m links, about half
//                  already seen);
// capped by the number of index tuples. genericcostestimate turns visited
// tuples into pages (random reads) and CPU (one distance per tuple). The
// heap side is the planner's usual cost: a LIMIT k plan pays for k rows, an
// exact plan through another index (WHERE id = 5 on a B-tree) stays cheaper
// when it returns few rows.
#include "pg/pg_includes.h"

#include <cfloat>
#include <cmath>

extern "C" {
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"
}

#include "pg/guard.h"
#include "pg/hnsw.h"

// Expected number of elements an hnsw scan visits in an index of `tuples`
// elements with `m` links per level and a candidate list of `ef`.
static double HnswVisitedTuples(double tuples, int m, int ef) {
  if (tuples < 1) tuples = 1;
  double ml = 1.0 / std::log((double)m);
  double entry_level = std::floor(std::log(tuples) * ml);
  double visited = entry_level * m + (double)ef * m;
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
  costs.numIndexTuples = HnswVisitedTuples(info->tuples, m, hnsw_ef_search);
  genericcostestimate(root, path, loop_count, &costs);

  // The search runs to completion before the first tuple is returned.
  *indexStartupCost = costs.indexTotalCost;
  *indexTotalCost = costs.indexTotalCost;
  *indexSelectivity = costs.indexSelectivity;
  *indexCorrelation = 0;
  *indexPages = costs.numIndexPages;
}

void hnswcostestimate(PlannerInfo* root, IndexPath* path, double loop_count, Cost* indexStartupCost,
                      Cost* indexTotalCost, Selectivity* indexSelectivity, double* indexCorrelation,
                      double* indexPages) {
  VECEXT_GUARD("hnswcostestimate", {
    HnswCostEstimateImpl(root, path, loop_count, indexStartupCost, indexTotalCost, indexSelectivity,
                         indexCorrelation, indexPages);
    return;
  });
}
