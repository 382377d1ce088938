// Collection names and metrics, as the Python client defines them
// (python/vecext/_core.py): a collection is a table
//   (id text PRIMARY KEY, embedding vector(dim) NOT NULL,
//    metadata jsonb NOT NULL DEFAULT '{}'[, document text])
// with an hnsw index "<name>_embedding_idx" (the metric's operator class) and
// a GIN index "<name>_metadata_idx" (jsonb_path_ops). No libpq.
#pragma once

#include <string>

namespace vecext::cli {

// 1-48 characters: a lower-case ASCII letter, then letters, digits, '_'.
bool ValidCollectionName(const std::string& name);
// 1-63 characters: [a-z_][a-z0-9_]*.
bool ValidSchemaName(const std::string& name);

struct Metric {
  const char* name;      // "cosine", "l2", "ip", "l1"
  const char* op;        // its distance operator
  const char* opclass;   // its hnsw operator class
};

// nullptr when unknown.
const Metric* FindMetric(const std::string& name);
const Metric* FindMetricByOpclass(const std::string& opclass);

// "cosine, l2, ip, l1"
std::string MetricNames();

// Defaults and limits of a new collection (the Python client's).
inline constexpr const char* kDefaultMetric = "cosine";
inline constexpr int kDefaultM = 16;
inline constexpr int kDefaultEfConstruction = 200;
inline constexpr int kMaxCollectionDim = 2000;

}  // namespace vecext::cli
