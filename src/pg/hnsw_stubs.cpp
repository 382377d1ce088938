// TEMPORARY: weak definitions of the hnsw AM functions that
// src/pg/hnsw_build.cpp will define (insert and scan have landed). A strong
// definition in any object of vecext.so overrides these at link time, so the
// library never has an undefined symbol while that file is being written.
// Delete this file once hnsw_build.cpp has landed.
#include "pg/pg_includes.h"

#include "pg/guard.h"
#include "pg/hnsw.h"

static void HnswNotImplemented(const char* what) pg_attribute_noreturn();

static void HnswNotImplemented(const char* what) {
  ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("hnsw: %s is not implemented yet", what)));
  pg_unreachable();
}

__attribute__((weak)) IndexBuildResult* hnswbuild(Relation heap, Relation index, IndexInfo* indexInfo) {
  VECEXT_GUARD("hnswbuild", HnswNotImplemented("index build"););
}

__attribute__((weak)) void hnswbuildempty(Relation index) {
  VECEXT_GUARD("hnswbuildempty", HnswNotImplemented("empty index build"););
}
