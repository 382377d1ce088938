// hnsw utilities: options, the opclass metric, page initialisation and
// validation, corruption reports, and preparing a value for the index.
#include "pg/pg_includes.h"

#include <cstddef>
#include <cstring>

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

#include "core/distance.h"
#include "core/index_distance.h"
#include "pg/hnsw.h"
#include "pg/hnsw_filter.h"
#include "pg/hnsw_internal.h"
#include "pg/vector.h"

// Reloption m (the value given at CREATE INDEX, or the default).
int HnswGetM(Relation index) {
  HnswOptions* opts = (HnswOptions*)index->rd_options;
  return opts != NULL ? opts->m : HNSW_DEFAULT_M;
}

// Reloption ef_construction (or the default).
int HnswGetEfConstruction(Relation index) {
  HnswOptions* opts = (HnswOptions*)index->rd_options;
  return opts != NULL ? opts->ef_construction : HNSW_DEFAULT_EF_CONSTRUCTION;
}

// Reloption quantization (or none).
int HnswGetQuantization(Relation index) {
  HnswOptions* opts = (HnswOptions*)index->rd_options;
  return opts != NULL ? opts->quantization : HNSW_QUANT_NONE;
}

// Reloption link_codes (or off); value lists need link codes.
bool HnswGetLinkCodes(Relation index) {
  HnswOptions* opts = (HnswOptions*)index->rd_options;
  return opts != NULL && (opts->link_codes || opts->value_lists > 0);
}

// Reloption value_lists (or 0).
int HnswGetValueLists(Relation index) {
  HnswOptions* opts = (HnswOptions*)index->rd_options;
  return opts != NULL ? opts->value_lists : 0;
}

bool HnswIndexHasFilter(Relation index) { return RelationGetDescr(index)->natts >= 2; }

bytea* HnswRowSignature(Relation index, Datum value, bool isnull) {
  return HnswMetaEncodeDatum(value, isnull, HNSW_FILTER_DEFAULT_MAX_BYTES, false);
}

// The C symbols of the distance functions the opclasses use as support proc 1.
static const struct {
  const char* symbol;
  vecext::Metric metric;
} kDistanceSymbols[] = {
    {"l2_distance", vecext::Metric::kL2},
    {"vector_l2_squared_distance", vecext::Metric::kL2},
    {"vector_negative_inner_product", vecext::Metric::kInnerProduct},
    {"cosine_distance", vecext::Metric::kCosine},
    {"l1_distance", vecext::Metric::kL1},
};

// The metric of the index's opclass: the C symbol (prosrc) of support proc 1.
int HnswGetMetric(Relation index) {
  Oid procid = index_getprocid(index, 1, HNSW_DISTANCE_PROC);
  if (!OidIsValid(procid))
    ereport(ERROR, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                    errmsg("operator class of index \"%s\" has no distance support function (1)",
                           RelationGetRelationName(index))));
  HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(procid));
  if (!HeapTupleIsValid(tup)) elog(ERROR, "cache lookup failed for function %u", procid);
  bool isnull;
  Datum src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
  char* symbol = isnull ? pstrdup("") : TextDatumGetCString(src);
  ReleaseSysCache(tup);
  for (const auto& entry : kDistanceSymbols) {
    if (strcmp(symbol, entry.symbol) == 0) return (int)entry.metric;
  }
  ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                  errmsg("index \"%s\" uses unsupported distance function %s", RelationGetRelationName(index),
                         format_procedure(procid)),
                  errhint("hnsw supports the distance functions of the vector_l2_ops, vector_ip_ops, "
                          "vector_cosine_ops and vector_l1_ops operator classes.")));
  pg_unreachable();
}

const char* HnswMetricName(int metric) {
  switch (metric) {
    case (int)vecext::Metric::kL2:
      return "l2";
    case (int)vecext::Metric::kInnerProduct:
      return "inner_product";
    case (int)vecext::Metric::kCosine:
      return "cosine";
    case (int)vecext::Metric::kL1:
      return "l1";
  }
  return "unknown";
}

// Initialises a page with our special space. A metapage also gets pd_lower
// past HnswMetaPageData (zeroed), so that GenericXLog, which skips and zeroes
// the hole between pd_lower and pd_upper, keeps the metadata.
void HnswInitPage(Page page, uint16 flags) {
  PageInit(page, BLCKSZ, sizeof(HnswPageOpaqueData));
  HnswPageOpaque opaque = HnswPageGetOpaque(page);
  opaque->next = InvalidBlockNumber;
  opaque->flags = flags;
  opaque->page_id = HNSW_PAGE_ID;
  if (flags == HNSW_PAGE_META) {
    HnswMetaPage meta = HnswPageGetMeta(page);
    ((PageHeader)page)->pd_lower = (LocationIndex)(((char*)meta + sizeof(HnswMetaPageData)) - (char*)page);
  }
}

int HnswMaxLevelForM(int m, bool codes, int vlists, int vslots) {
  int level = HNSW_MAX_LEVEL;
  while (level > 0 && HnswNeighborTupleSizeV(HnswNeighborSlots(level, m), codes, vlists, vslots) > HNSW_MAX_ITEM_SIZE)
    level--;
  return level;
}

const char* HnswPageProblem(Page page, BlockNumber blkno) {
  if (PageIsNew(page)) return NULL;
  PageHeader ph = (PageHeader)page;
  if (ph->pd_lower < SizeOfPageHeaderData || ph->pd_lower > ph->pd_upper || ph->pd_upper > ph->pd_special ||
      ph->pd_special > BLCKSZ)
    return "invalid page header (pd_lower, pd_upper, pd_special)";
  if (ph->pd_special != BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData)))
    return "special space has the wrong size (not an hnsw page)";
  HnswPageOpaque opaque = HnswPageGetOpaque(page);
  if (opaque->page_id != HNSW_PAGE_ID) return "wrong page id (not an hnsw page)";
  if (blkno == HNSW_METAPAGE_BLKNO) {
    if (opaque->flags != HNSW_PAGE_META) return "block 0 is not a metapage";
  } else if (opaque->flags != HNSW_PAGE_ELEMENT) {
    return "page is not an element page";
  }
  return NULL;
}

const char* HnswMetaProblem(Page page) {
  if (PageIsNew(page)) return "metapage is not initialised";
  HnswMetaPage meta = HnswPageGetMeta(page);
  // Metapages written before the SQ8 fields existed end at params_start
  // (they read as 0: no parameters).
  if (((PageHeader)page)->pd_lower < (char*)meta + offsetof(HnswMetaPageData, params_start) - (char*)page)
    return "metapage pd_lower does not cover the metadata";
  if (meta->quantization > HNSW_QUANT_SQ8) return "metapage quantization unknown";
  if (meta->quantization == HNSW_QUANT_SQ8 &&
      ((PageHeader)page)->pd_lower < (char*)meta + offsetof(HnswMetaPageData, flags) - (char*)page)
    return "metapage pd_lower does not cover the SQ8 metadata";
  if (((PageHeader)page)->pd_lower >= (char*)meta + sizeof(HnswMetaPageData) - (char*)page &&
      (meta->flags & ~(uint32)(HNSW_META_FILTER | HNSW_META_LINK_CODES | HNSW_META_VALUE_LISTS)) != 0)
    return "metapage flags unknown";
  if (((PageHeader)page)->pd_lower >= (char*)meta + sizeof(HnswMetaPageData) - (char*)page &&
      (meta->flags & HNSW_META_VALUE_LISTS)) {
    if (!(meta->flags & HNSW_META_LINK_CODES) || meta->value_lists < 1 || meta->value_lists > HNSW_MAX_VALUE_LISTS ||
        meta->value_slots < 4 || meta->value_slots > 2 * HNSW_MAX_M || meta->value_slots % 2 != 0)
      return "metapage value lists out of range";
    const Size dir = HnswValueDirectoryOffset();
    if (((PageHeader)page)->pd_lower < (char*)meta + dir + sizeof(HnswValueDirectoryData) - (char*)page)
      return "metapage pd_lower does not cover the value directory";
    const HnswValueDirectoryData* d = (const HnswValueDirectoryData*)((const char*)meta + dir);
    if (d->count > HNSW_VALUE_DIRECTORY_MAX ||
        ((PageHeader)page)->pd_lower < (char*)meta + dir + sizeof(HnswValueDirectoryData) + 16 * d->count - (char*)page)
      return "metapage value directory out of range";
  }
  if (meta->magic != HNSW_MAGIC) return "bad magic number in metapage";
  if (meta->version != HNSW_FORMAT_VERSION) return "unsupported on-disk format version";
  if (meta->dimensions > VECTOR_MAX_DIM) return "metapage dimensions out of range";
  if (meta->m < HNSW_MIN_M || meta->m > HNSW_MAX_M) return "metapage m out of range";
  if (meta->ef_construction < HNSW_MIN_EF_CONSTRUCTION || meta->ef_construction > HNSW_MAX_EF_CONSTRUCTION)
    return "metapage ef_construction out of range";
  if (meta->metric > (uint8)vecext::Metric::kL1) return "metapage metric unknown";
  if (meta->entry_level < -1 || meta->entry_level > HNSW_MAX_LEVEL) return "metapage entry level out of range";
  if ((meta->entry_level >= 0) != ItemPointerIsValid(&meta->entry))
    return "metapage entry point and entry level disagree";
  if (ItemPointerIsValid(&meta->entry) && ItemPointerGetBlockNumberNoCheck(&meta->entry) == HNSW_METAPAGE_BLKNO)
    return "metapage entry point is on the metapage";
  return NULL;
}

void HnswReportCorruption(Relation index, BlockNumber blkno, const char* what) {
  ereport(ERROR, (errcode(ERRCODE_INDEX_CORRUPTED),
                  errmsg("index \"%s\" is corrupted: %s (block %u)", RelationGetRelationName(index), what, blkno),
                  errhint("REINDEX the index.")));
  pg_unreachable();
}

void HnswCheckPage(Relation index, Page page, BlockNumber blkno) {
  const char* problem = HnswPageProblem(page, blkno);
  if (problem != NULL) HnswReportCorruption(index, blkno, problem);
}

void HnswReadMeta(Relation index, HnswMetaPageData* meta) {
  if (RelationGetNumberOfBlocks(index) == 0) HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "no metapage");
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  const char* problem = HnswPageProblem(page, HNSW_METAPAGE_BLKNO);
  if (problem == NULL) problem = HnswMetaProblem(page);
  if (problem == NULL) {
    const Size covered = ((PageHeader)page)->pd_lower - ((char*)HnswPageGetMeta(page) - (char*)page);
    memset(meta, 0, sizeof(HnswMetaPageData));
    memcpy(meta, HnswPageGetMeta(page), Min(covered, sizeof(HnswMetaPageData)));
  }
  UnlockReleaseBuffer(buf);
  if (problem != NULL) HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, problem);
}

int HnswReadValueDirectory(Relation index, void* out) {
  if (RelationGetNumberOfBlocks(index) == 0) HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, "no metapage");
  Buffer buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
  LockBuffer(buf, BUFFER_LOCK_SHARE);
  Page page = BufferGetPage(buf);
  const char* problem = HnswPageProblem(page, HNSW_METAPAGE_BLKNO);
  if (problem == NULL) problem = HnswMetaProblem(page);
  int count = 0;
  if (problem == NULL) {
    HnswMetaPage meta = HnswPageGetMeta(page);
    const bool covered = ((PageHeader)page)->pd_lower >= (char*)meta + sizeof(HnswMetaPageData) - (char*)page;
    if (covered && (meta->flags & HNSW_META_VALUE_LISTS)) {  // checked by HnswMetaProblem
      const HnswValueDirectoryData* d =
          (const HnswValueDirectoryData*)((const char*)meta + HnswValueDirectoryOffset());
      count = (int)d->count;
      memcpy(out, (const char*)d + sizeof(HnswValueDirectoryData), (Size)count * 16);
    }
  }
  UnlockReleaseBuffer(buf);
  if (problem != NULL) HnswReportCorruption(index, HNSW_METAPAGE_BLKNO, problem);
  return count;
}

// The item at `off` if it is a normal, MAXALIGNed item of at least
// `min_size` bytes lying between pd_upper and pd_special; else NULL.
static char* HnswPageGetItem(Page page, OffsetNumber off, Size min_size, Size* size) {
  if (PageIsNew(page) || off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page)) return NULL;
  PageHeader ph = (PageHeader)page;
  ItemId iid = PageGetItemId(page, off);
  if (!ItemIdIsNormal(iid)) return NULL;
  Size item_off = ItemIdGetOffset(iid);
  Size len = ItemIdGetLength(iid);
  if (item_off < ph->pd_upper || item_off % MAXIMUM_ALIGNOF != 0 || len < min_size || item_off + len > ph->pd_special)
    return NULL;
  *size = len;
  return (char*)page + item_off;
}

HnswElementTuple HnswPageGetElementSized(Page page, OffsetNumber off, Size element_size) {
  Size len;
  char* item = HnswPageGetItem(page, off, offsetof(HnswElementTupleData, vec), &len);
  if (item == NULL) return NULL;
  HnswElementTuple etup = (HnswElementTuple)item;
  if (etup->type != HNSW_ELEMENT_TUPLE || etup->level > HNSW_MAX_LEVEL) return NULL;
  if (len < element_size) return NULL;
  return etup;
}

HnswNeighborTuple HnswPageGetNeighbors(Page page, OffsetNumber off, int m) {
  Size len;
  char* item = HnswPageGetItem(page, off, offsetof(HnswNeighborTupleData, ids), &len);
  if (item == NULL) return NULL;
  HnswNeighborTuple ntup = (HnswNeighborTuple)item;
  if (ntup->type != HNSW_NEIGHBOR_TUPLE || ntup->level > HNSW_MAX_LEVEL) return NULL;
  if (ntup->count != HnswNeighborSlots(ntup->level, m) || len < HNSW_NEIGHBOR_TUPLE_SIZE(ntup->count)) return NULL;
  return ntup;
}

bool HnswIsHnswIndex(Relation index) {
  return index->rd_rel->relkind == RELKIND_INDEX && index->rd_indam != NULL &&
         index->rd_indam->amcostestimate == hnswcostestimate;
}

// Detoasts the indexed value and checks it against the index. Under cosine
// it returns a normalized copy, or NULL for a vector whose norm is 0 (such a
// row is not indexed and never returned by an index scan).
Vector* HnswPrepareValue(Relation index, Datum value, int dimensions) {
  Vector* v = DatumGetVector(value);
  if (v->dim < 1) ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
  if (dimensions > 0 && v->dim != dimensions)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected %d dimensions, not %d", dimensions, v->dim)));
  const int quantization = HnswGetQuantization(index);
  const int max_dim = quantization == HNSW_QUANT_SQ8 ? HNSW_MAX_DIM_SQ8 : HNSW_MAX_DIM;
  if (v->dim > max_dim)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("vector has %d dimensions, hnsw indexes support at most %d", v->dim, max_dim),
                    quantization == HNSW_QUANT_NONE
                        ? errhint("With quantization = 'sq8', hnsw indexes support up to %d dimensions.", HNSW_MAX_DIM_SQ8)
                        : 0));
  if (HNSW_ELEMENT_TUPLE_SIZE_Q(quantization, v->dim) > HNSW_MAX_ITEM_SIZE)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("vector with %d dimensions is too large for an hnsw index page", v->dim)));
  vecext::Metric metric = (vecext::Metric)HnswGetMetric(index);
  if (!vecext::IndexNormalizes(metric)) return v;
  Vector* copy = (Vector*)palloc(VARSIZE(v));
  memcpy(copy, v, VARSIZE(v));
  if (!vecext::NormalizeInPlace(copy->x, (std::size_t)copy->dim)) {
    pfree(copy);
    return NULL;
  }
  return copy;
}
