// TEMPORARY: weak definitions of the hnsw AM functions that other files
// (hnsw_build.cpp, hnsw_insert.cpp, hnsw_scan.cpp) will define. A strong
// definition in any object of vecext.so overrides these at link time, so the
// library never has an undefined symbol while those files are being written.
// Delete this file once all of them have landed.
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

__attribute__((weak)) bool hnswinsert(Relation index, Datum* values, bool* isnull, ItemPointer heap_tid,
                                      Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
                                      IndexInfo* indexInfo) {
  VECEXT_GUARD("hnswinsert", HnswNotImplemented("insert"););
}

__attribute__((weak)) IndexScanDesc hnswbeginscan(Relation index, int nkeys, int norderbys) {
  VECEXT_GUARD("hnswbeginscan", HnswNotImplemented("index scan"););
}

__attribute__((weak)) void hnswrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
                                      int norderbys) {
  VECEXT_GUARD("hnswrescan", HnswNotImplemented("index scan"););
}

__attribute__((weak)) bool hnswgettuple(IndexScanDesc scan, ScanDirection dir) {
  VECEXT_GUARD("hnswgettuple", HnswNotImplemented("index scan"););
}

__attribute__((weak)) void hnswendscan(IndexScanDesc scan) {
  VECEXT_GUARD("hnswendscan", HnswNotImplemented("index scan"););
}

__attribute__((weak)) void HnswInsertElement(Relation index, Relation heap, const float* vec, int dim,
                                             ItemPointer heaptid, bool building) {
  HnswNotImplemented("element insertion");
}
