// The hnsw index access method: the handler, reloptions, opclass validation,
// GUCs and module initialisation. The page layout and lock protocol are in
// hnsw.h; each AM phase lives in its own hnsw_*.cpp.
#include "pg/pg_includes.h"

#include <climits>

extern "C" {
#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
}

#include "pg/guard.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_store.h"
#include "pg/hnsw_internal.h"
#include "pg/module.h"

int hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;
int hnsw_iterative_scan = HNSW_ITERATIVE_SCAN_STRICT;
int hnsw_max_scan_tuples = 20000;
bool hnsw_elide_orderby_values = true;
bool hnsw_filter_two_hop = true;
bool hnsw_filter_value_lists = true;
double hnsw_filter_ef_widen = 3.0;
bool hnsw_quantized_search = true;
bool hnsw_build_keep_pruned = true;
bool hnsw_build_cluster_pages = true;

static relopt_kind hnsw_relopt_kind;

static relopt_enum_elt_def hnsw_quantization_values[] = {
    {"none", HNSW_QUANT_NONE},
    {"sq8", HNSW_QUANT_SQ8},
    {NULL, 0},
};

static const struct config_enum_entry hnsw_iterative_scan_options[] = {
    {"off", HNSW_ITERATIVE_SCAN_OFF, false},
    {"strict_order", HNSW_ITERATIVE_SCAN_STRICT, false},
    {"relaxed_order", HNSW_ITERATIVE_SCAN_RELAXED, false},
    {NULL, 0, false},
};

// Registers the reloptions and GUCs (called once from _PG_init).
void VecextHnswInit(void) {
  hnsw_relopt_kind = add_reloption_kind();
  add_int_reloption(hnsw_relopt_kind, "m", "Maximum number of links per element on levels above 0 (2*m on level 0)",
                    HNSW_DEFAULT_M, HNSW_MIN_M, HNSW_MAX_M, AccessExclusiveLock);
  add_int_reloption(hnsw_relopt_kind, "ef_construction", "Size of the candidate list while building the graph",
                    HNSW_DEFAULT_EF_CONSTRUCTION, HNSW_MIN_EF_CONSTRUCTION, HNSW_MAX_EF_CONSTRUCTION,
                    AccessExclusiveLock);
  add_enum_reloption(hnsw_relopt_kind, "quantization",
                     "How element vectors are stored: none (float4) or sq8 (one byte per dimension)",
                     hnsw_quantization_values, HNSW_QUANT_NONE, "Valid values are \"none\" and \"sq8\".",
                     AccessExclusiveLock);
  add_bool_reloption(hnsw_relopt_kind, "link_codes",
                     "Store a code of each linked row's metadata beside every link, for two-hop filtered scans "
                     "(indexes with a jsonb metadata column)",
                     false, AccessExclusiveLock);
  add_int_reloption(hnsw_relopt_kind, "value_lists",
                    "Lists of links per element among the rows that share a frequent metadata value, for filtered "
                    "scans (indexes with a jsonb metadata column; implies link_codes)",
                    0, 0, HNSW_MAX_VALUE_LISTS, AccessExclusiveLock);

  DefineCustomIntVariable("hnsw.ef_search", "Sets the size of the candidate list of hnsw index scans.",
                          "Larger values give better recall and slower scans.", &hnsw_ef_search, HNSW_DEFAULT_EF_SEARCH,
                          HNSW_MIN_EF_SEARCH, HNSW_MAX_EF_SEARCH, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomEnumVariable(
      "hnsw.iterative_scan", "Whether an hnsw scan continues past ef_search candidates when rows are filtered out.",
      "off stops after ef_search candidates; strict_order keeps results in exact distance "
      "order; relaxed_order may return them slightly out of order.",
      &hnsw_iterative_scan, HNSW_ITERATIVE_SCAN_STRICT, hnsw_iterative_scan_options, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("hnsw.max_scan_tuples", "Sets the maximum number of elements an iterative hnsw scan visits.",
                          NULL, &hnsw_max_scan_tuples, 20000, 1, INT_MAX, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.filter_two_hop",
                           "Whether filtered hnsw scans skip links to elements that cannot match and look through them.",
                           "Needs an index with a metadata column built by this version (link codes). off scores "
                           "every element the traversal reaches, for comparisons.",
                           &hnsw_filter_two_hop, true, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.filter_value_lists",
                           "Whether two-hop filtered hnsw scans follow the value lists of an index built with "
                           "value_lists.",
                           "off ignores them (for comparisons).", &hnsw_filter_value_lists, true, PGC_USERSET, 0,
                           NULL, NULL, NULL);
  DefineCustomRealVariable("hnsw.filter_ef_widen",
                           "Sets the most a two-hop filtered hnsw scan widens its candidate list by.",
                           "Where few links lead to rows that may match, a two-hop scan multiplies ef_search by "
                           "up to this factor (see docs/filtering.md). 1 keeps ef_search.",
                           &hnsw_filter_ef_widen, 3.0, 1.0, 10.0, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.elide_orderby_values",
                           "Skips computing the ORDER BY distance of rows an hnsw scan returns when nothing uses it.",
                           "For benchmarks: off computes it for every row, as plain Postgres does.",
                           &hnsw_elide_orderby_values, true, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.quantized_search",
                           "Whether scans of SQ8 indexes may traverse the graph by SQ8 codes.",
                           "off requires full-precision vectors in the index: scans of an SQ8 index (which keeps "
                           "codes only and re-ranks from the table) then fail.",
                           &hnsw_quantized_search, true, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.build_keep_pruned",
                           "Whether hnsw index builds fill level-0 neighbour lists with the candidates the "
                           "neighbour heuristic pruned.",
                           "on: denser level-0 lists, higher recall at the same ef_search, a slower build. off: "
                           "the heuristic's choice only (hnswlib's graph). Inserts into a built index fill a list "
                           "they re-prune either way.",
                           &hnsw_build_keep_pruned, true, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("hnsw.build_cluster_pages",
                           "Whether hnsw index builds put neighbours in the graph on the same pages.",
                           "on: each page is filled with a neighbourhood of the graph, so that a scan reads fewer "
                           "pages. off: rows go to pages in table order.",
                           &hnsw_build_cluster_pages, true, PGC_USERSET, 0, NULL, NULL, NULL);
  MarkGUCPrefixReserved("hnsw");
  // The ExecutorStart hook that finds distance cut-offs (hnsw_scan.cpp), from
  // the first query of the session on.
  HnswScanInit();
}

// amoptions: parses m and ef_construction; with `validate` (CREATE INDEX,
// ALTER INDEX SET) also checks that ef_construction >= 2 * m.
static bytea* HnswOptionsImpl(Datum reloptions, bool validate) {
  static const relopt_parse_elt tab[] = {
      {"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
      {"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, ef_construction)},
      {"quantization", RELOPT_TYPE_ENUM, offsetof(HnswOptions, quantization)},
      {"link_codes", RELOPT_TYPE_BOOL, offsetof(HnswOptions, link_codes)},
      {"value_lists", RELOPT_TYPE_INT, offsetof(HnswOptions, value_lists)},
  };
  HnswOptions* opts =
      (HnswOptions*)build_reloptions(reloptions, validate, hnsw_relopt_kind, sizeof(HnswOptions), tab, 5);
  if (validate && opts != NULL && opts->ef_construction < 2 * opts->m)
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("ef_construction must be greater than or equal to 2 * m"),
             errdetail("ef_construction is %d and m is %d.", opts->ef_construction, opts->m)));
  return (bytea*)opts;
}

// amvalidate: the opclass has support proc 1 (float8 distance(type, type)),
// optional procs 2 (float8 norm(type)) and 3, and only ORDER BY operators of
// strategy 1 returning float8.
static bool HnswValidateImpl(Oid opclassoid) {
  bool result = true;
  HeapTuple classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
  if (!HeapTupleIsValid(classtup)) elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
  Form_pg_opclass classform = (Form_pg_opclass)GETSTRUCT(classtup);
  Oid opfamilyoid = classform->opcfamily;
  Oid opcintype = classform->opcintype;
  char* opclassname = pstrdup(NameStr(classform->opcname));
  ReleaseSysCache(classtup);

  HeapTuple familytup = SearchSysCache1(OPFAMILYOID, ObjectIdGetDatum(opfamilyoid));
  if (!HeapTupleIsValid(familytup)) elog(ERROR, "cache lookup failed for operator family %u", opfamilyoid);
  char* opfamilyname = pstrdup(NameStr(((Form_pg_opfamily)GETSTRUCT(familytup))->opfname));
  ReleaseSysCache(familytup);

  CatCList* oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
  CatCList* proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
  bool has_distance = false;

  if (opcintype == JSONBOID) {
    // A metadata column's opclass (jsonb_hnsw_ops): search operators of the
    // filter strategies returning bool, no support function.
    for (int i = 0; i < proclist->n_members; i++) {
      Form_pg_amproc procform = (Form_pg_amproc)GETSTRUCT(&proclist->members[i]->tuple);
      ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                     errmsg("hnsw operator family \"%s\" contains function %s, but a jsonb filter family has none",
                            opfamilyname, format_procedure(procform->amproc))));
      result = false;
    }
    for (int i = 0; i < oprlist->n_members; i++) {
      Form_pg_amop oprform = (Form_pg_amop)GETSTRUCT(&oprlist->members[i]->tuple);
      if (oprform->amopstrategy < 1 || oprform->amopstrategy > HNSW_FILTER_NSTRATEGIES ||
          oprform->amoppurpose != AMOP_SEARCH ||
          !check_amop_signature(oprform->amopopr, BOOLOID, oprform->amoplefttype, oprform->amoprighttype)) {
        ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                       errmsg("hnsw operator family \"%s\" contains invalid filter operator %s", opfamilyname,
                              format_operator(oprform->amopopr))));
        result = false;
      }
    }
    ReleaseCatCacheList(proclist);
    ReleaseCatCacheList(oprlist);
    return result;
  }

  for (int i = 0; i < proclist->n_members; i++) {
    HeapTuple proctup = &proclist->members[i]->tuple;
    Form_pg_amproc procform = (Form_pg_amproc)GETSTRUCT(proctup);
    bool ok = true;
    switch (procform->amprocnum) {
      case HNSW_DISTANCE_PROC:
        ok = check_amproc_signature(procform->amproc, FLOAT8OID, false, 2, 2, procform->amproclefttype,
                                    procform->amprocrighttype);
        if (ok && procform->amproclefttype == opcintype) has_distance = true;
        break;
      case HNSW_NORM_PROC:
        ok = check_amproc_signature(procform->amproc, FLOAT8OID, false, 1, 1, procform->amproclefttype);
        break;
      case HNSW_TYPE_INFO_PROC:
        break;
      default:
        ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                       errmsg("hnsw operator family \"%s\" contains function %s with invalid support number %d",
                              opfamilyname, format_procedure(procform->amproc), procform->amprocnum)));
        result = false;
        continue;
    }
    if (!ok) {
      ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                     errmsg("hnsw operator family \"%s\" contains function %s with wrong signature for support "
                            "number %d",
                            opfamilyname, format_procedure(procform->amproc), procform->amprocnum)));
      result = false;
    }
  }

  for (int i = 0; i < oprlist->n_members; i++) {
    HeapTuple oprtup = &oprlist->members[i]->tuple;
    Form_pg_amop oprform = (Form_pg_amop)GETSTRUCT(oprtup);
    if (oprform->amopstrategy != 1 || oprform->amoppurpose != AMOP_ORDER) {
      ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                     errmsg("hnsw operator family \"%s\" contains operator %s that is not an ORDER BY operator "
                            "of strategy 1",
                            opfamilyname, format_operator(oprform->amopopr))));
      result = false;
      continue;
    }
    if (!check_amop_signature(oprform->amopopr, FLOAT8OID, oprform->amoplefttype, oprform->amoprighttype)) {
      ereport(INFO, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                     errmsg("hnsw operator family \"%s\" contains operator %s with wrong signature", opfamilyname,
                            format_operator(oprform->amopopr))));
      result = false;
    }
  }

  if (!has_distance) {
    ereport(INFO,
            (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
             errmsg("hnsw operator class \"%s\" is missing support function %d", opclassname, HNSW_DISTANCE_PROC)));
    result = false;
  }

  ReleaseCatCacheList(proclist);
  ReleaseCatCacheList(oprlist);
  return result;
}

extern "C" {

static bytea* hnswoptions(Datum reloptions, bool validate) {
  VECEXT_GUARD("hnswoptions", return HnswOptionsImpl(reloptions, validate););
}

static bool hnswvalidate(Oid opclassoid) { VECEXT_GUARD("hnswvalidate", return HnswValidateImpl(opclassoid);); }

}  // extern "C"

// The handler: the IndexAmRoutine of hnsw. The callbacks of the other AM
// phases run their own guards; this only fills in pointers.
VECEXT_FUNCTION(hnsw_handler) {
  IndexAmRoutine* am = makeNode(IndexAmRoutine);

  am->amstrategies = 0;
  am->amsupport = 3;
  am->amoptsprocnum = 0;
  am->amcanorder = false;
  am->amcanorderbyop = true;
  am->amcanbackward = false;
  am->amcanunique = false;
  am->amcanmulticol = true;  // a jsonb metadata column may follow the vector column
  am->amoptionalkey = true;
  am->amsearcharray = true;  // metadata @> ANY(array)
  am->amsearchnulls = false;
  am->amstorage = false;
  am->amclusterable = false;
  am->ampredlocks = false;
  am->amcanparallel = false;
  am->amcaninclude = false;
  am->amusemaintenanceworkmem = true;
  am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL | VACUUM_OPTION_PARALLEL_COND_CLEANUP;
  am->amkeytype = InvalidOid;

  am->ambuild = hnswbuild;
  am->ambuildempty = hnswbuildempty;
  am->aminsert = hnswinsert;
  am->ambulkdelete = hnswbulkdelete;
  am->amvacuumcleanup = hnswvacuumcleanup;
  am->amcanreturn = NULL;
  am->amcostestimate = hnswcostestimate;
  am->amoptions = hnswoptions;
  am->amproperty = NULL;
  am->ambuildphasename = hnswbuildphasename;
  am->amvalidate = hnswvalidate;
  am->amadjustmembers = NULL;
  am->ambeginscan = hnswbeginscan;
  am->amrescan = hnswrescan;
  am->amgettuple = hnswgettuple;
  am->amgetbitmap = NULL;
  am->amendscan = hnswendscan;
  am->ammarkpos = NULL;
  am->amrestrpos = NULL;
  am->amestimateparallelscan = NULL;
  am->aminitparallelscan = NULL;
  am->amparallelrescan = NULL;

  PG_RETURN_POINTER(am);
}
