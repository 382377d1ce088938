// How the HNSW index compares vectors for each metric. Build, insert, scan
// and vacuum all go through this, so they agree on what is stored and how it
// is compared:
//   L2      stored as is,          index distance = squared L2  (SQL <-> = sqrt)
//   IP      stored as is,          index distance = -a.b        (SQL <#> same)
//   Cosine  stored L2-normalized,  index distance = 1 - a.b     (SQL <=> same, up to rounding)
//   L1      stored as is,          index distance = sum |a-b|   (SQL <+> same)
// Normalizing once at insert turns every cosine comparison into one dot product.
#pragma once

#include <cstddef>

#include "core/distance.h"

namespace vecext {

// The index distance function for `metric`. REQUIRES: metric is a valid Metric.
DistanceFn IndexDistanceFn(Metric metric);

// Whether vectors are L2-normalized before they are stored or searched.
inline bool IndexNormalizes(Metric metric) { return metric == Metric::kCosine; }

// Normalizes v in place. Returns false (and leaves v unchanged) when its norm
// is 0 or not finite: such vectors cannot be indexed under cosine.
bool NormalizeInPlace(float* v, std::size_t n);

// Converts between the SQL operator's value and the index distance
// (monotonic in both directions), e.g. for a max-distance cut-off.
double SqlToIndexDistance(Metric metric, double sql_distance);
double IndexToSqlDistance(Metric metric, double index_distance);

}  // namespace vecext
