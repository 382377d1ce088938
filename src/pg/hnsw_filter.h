// Filtered hnsw search on jsonb metadata (issue #6): the glue between jsonb,
// jsonpath and scan keys on one side and the core's metadata signatures and
// filter programs (src/core/meta_filter.h) on the other.
//
// How the index uses it:
//   build/insert  HnswMetaEncodeDatum(values[filter_col], isnull[...]) gives
//                 the row's signature (a few dozen bytes, at most max_bytes),
//                 stored in the row's element tuple; it never changes.
//   rescan        HnswFilterCompile(keys, nkeys, filter_attno) turns the
//                 quals on the metadata column into a program. ALWAYS_NO:
//                 the scan returns nothing; ALWAYS_MAYBE: nothing to filter;
//                 DEPENDS: HnswFilterMayMatch on each scored element, and an
//                 element that cannot match is traversed but not returned
//                 (kScoreReturnable cleared).
//   every filtered scan sets xs_recheck: the executor rechecks each row.
//
// None of these functions is called by Postgres directly: they run inside
// the caller's guard, make Postgres calls (palloc, detoasting) and keep only
// plain data in their frames.
#pragma once

#include "pg/pg_includes.h"

extern "C" {
#include "access/skey.h"
#include "utils/jsonb.h"
}

// Strategy numbers of the operator class jsonb_hnsw_ops.
#define HNSW_FILTER_STRATEGY_CONTAINS 1     // jsonb @> jsonb
#define HNSW_FILTER_STRATEGY_EXISTS 2       // jsonb ? text
#define HNSW_FILTER_STRATEGY_EXISTS_ANY 3   // jsonb ?| text[]
#define HNSW_FILTER_STRATEGY_EXISTS_ALL 4   // jsonb ?& text[]
#define HNSW_FILTER_STRATEGY_PATH_EXISTS 5  // jsonb @? jsonpath
#define HNSW_FILTER_STRATEGY_PATH_MATCH 6   // jsonb @@ jsonpath
#define HNSW_FILTER_NSTRATEGIES 6

// Signature size bounds (bytes): a document that does not fit is stored as
// "truncated" (1 byte), which the filter never excludes.
#define HNSW_FILTER_DEFAULT_MAX_BYTES 256
#define HNSW_FILTER_MIN_MAX_BYTES 16
#define HNSW_FILTER_MAX_MAX_BYTES 2048

// What a compiled program decides regardless of the row.
#define HNSW_FILTER_ALWAYS_MAYBE 0  // nothing the index can check: do not filter
#define HNSW_FILTER_ALWAYS_NO 1     // no row can match (e.g. a NULL argument, ?| '{}')
#define HNSW_FILTER_DEPENDS 2       // evaluate HnswFilterMayMatch per element

typedef struct HnswFilterProgram HnswFilterProgram;

// GUC hnsw.filter_ef_widen (src/pg/hnsw.cpp): the most a two-hop scan
// multiplies ef_search by (src/pg/hnsw_scan.cpp, HnswWidenTwoHop).
extern double hnsw_filter_ef_widen;

// The signature of one row's metadata as a palloc'd bytea (VARDATA holds
// the bytes): of `doc`, or of SQL NULL when doc is NULL. max_bytes is
// clamped to [HNSW_FILTER_MIN_MAX_BYTES, HNSW_FILTER_MAX_MAX_BYTES];
// wide_numbers stores numbers as float8 (10 bytes each instead of 6).
bytea* HnswMetaEncode(Jsonb* doc, int max_bytes, bool wide_numbers);
// Same for a (possibly toasted) jsonb datum.
bytea* HnswMetaEncodeDatum(Datum value, bool isnull, int max_bytes, bool wide_numbers);

// Compiles the scan keys on column `attno` (strategies above; keys on other
// columns are ignored, unknown strategies count as "cannot check") into a
// palloc'd program. Never NULL. Keys with SK_SEARCHARRAY (`op ANY(array)`,
// when the AM sets amsearcharray) match when any element does.
HnswFilterProgram* HnswFilterCompile(ScanKey keys, int nkeys, AttrNumber attno);
// HNSW_FILTER_ALWAYS_MAYBE, HNSW_FILTER_ALWAYS_NO or HNSW_FILTER_DEPENDS.
int HnswFilterKind(const HnswFilterProgram* program);
// False when the row whose signature is sig[0..len) cannot satisfy the quals.
// A signature that does not parse counts as "may match".
bool HnswFilterMayMatch(const HnswFilterProgram* program, const uint8* sig, Size len);
// Whether an element whose link code is `code` may match (a link code
// excludes only what the element's signature would).
bool HnswFilterCodeMayMatch(const HnswFilterProgram* program, uint64 code);
// The program's link-code test as an OR of bit masks (an element may match
// when (code & terms[i]) == terms[i] for some i): true and *terms, *nterms
// set when it has that form (HnswFilterCodeMayMatch is then exactly that
// test), false otherwise.
bool HnswFilterCodeTerms(const HnswFilterProgram* program, const uint64** terms, int* nterms);
// Value keys (vecext::meta::ValueKey) every row the program may match has
// (meta::RequiredValueKeys): at most cap written to out; returns how many.
int HnswFilterValueKeys(const HnswFilterProgram* program, uint64* out, int cap);
// A palloc'd program that holds for the rows with value key `key` (NULL for
// a key that names no equality): inserts use it to find a new row's nearest
// rows with the same value.
HnswFilterProgram* HnswFilterForValueKey(uint64 key);
// A readable form of the program (palloc'd), for debugging.
char* HnswFilterDescribe(const HnswFilterProgram* program);
