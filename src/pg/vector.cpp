// The `vector` type: text and binary I/O, type modifier, casts, the shared
// checks, and the type's GUC. Error messages and SQLSTATEs are pgvector's.
#include "pg/pg_includes.h"

extern "C" {
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

#include <cmath>
#include <cstring>

#include "core/vector_text.h"
#include "pg/guard.h"
#include "pg/module.h"
#include "pg/vector.h"

static_assert(VECTOR_MAX_DIM == vecext::kVectorMaxDim, "one dimension limit");
static_assert(FLOAT_SHORTEST_DECIMAL_LEN - 1 == vecext::kFloatTextMaxLen, "one float text length");

// vecext.text_parser: which parser vector_in uses (a developer option for
// benchmarks; both accept and reject exactly the same texts).
static int vector_text_parser = static_cast<int>(vecext::VectorTextParser::kSimdjson);

static const struct config_enum_entry vector_text_parser_options[] = {
    {"simdjson", static_cast<int>(vecext::VectorTextParser::kSimdjson), false},
    {"strtof", static_cast<int>(vecext::VectorTextParser::kStrtof), false},
    {NULL, 0, false},
};

void VecextVectorInit(void) {
  DefineCustomEnumVariable(
      "vecext.text_parser", "Parser for the text input of vectors.",
      "simdjson (the default) falls back to strtof for texts that are not plain JSON; "
      "strtof is pgvector's loop. Both give identical results; this is for benchmarks.",
      &vector_text_parser, static_cast<int>(vecext::VectorTextParser::kSimdjson),
      vector_text_parser_options, PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
  MarkGUCPrefixReserved("vecext");
}

// ---------------------------------------------------------------------------
// Shared helpers (vector.h)

Vector* InitVector(int dim) {
  Size size = VECTOR_SIZE(dim);
  Vector* result = (Vector*)palloc0(size);
  SET_VARSIZE(result, size);
  result->dim = (int16)dim;
  return result;
}

void CheckSameDims(const Vector* a, const Vector* b) {
  if (a->dim != b->dim)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                    errmsg("different vector dimensions %d and %d", a->dim, b->dim)));
}

void CheckDim(int dim) {
  if (dim < 1)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
  if (dim > VECTOR_MAX_DIM)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
}

void CheckExpectedDim(int32 typmod, int dim) {
  if (typmod != -1 && typmod != dim)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                    errmsg("expected %d dimensions, not %d", typmod, dim)));
}

void CheckElement(float value) {
  if (std::isnan(value))
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("NaN not allowed in vector")));
  if (std::isinf(value))
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("infinite value not allowed in vector")));
}

void CheckElements(const Vector* v) {
  for (int i = 0; i < v->dim; i++) CheckElement(v->x[i]);
}

int VectorCompare(const Vector* a, const Vector* b) {
  int dim = Min(a->dim, b->dim);
  for (int i = 0; i < dim; i++) {
    if (a->x[i] < b->x[i]) return -1;
    if (a->x[i] > b->x[i]) return 1;
  }
  if (a->dim < b->dim) return -1;
  if (a->dim > b->dim) return 1;
  return 0;
}

// ---------------------------------------------------------------------------
// Text I/O

// A backend-lifetime buffer of VECTOR_MAX_DIM floats that vector_in parses
// into before it knows the dimensions.
static float* TextScratch(void) {
  static float* scratch = NULL;
  if (scratch == NULL)
    scratch = (float*)MemoryContextAlloc(TopMemoryContext, sizeof(float) * VECTOR_MAX_DIM);
  return scratch;
}

// Raises pgvector's error for a rejected vector literal.
[[noreturn]] static void ReportTextError(const char* lit, const vecext::VectorTextResult* r) {
  switch (r->error) {
    case vecext::VectorTextError::kNoOpenBracket:
      ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
                      errmsg("invalid input syntax for type vector: \"%s\"", lit),
                      errdetail("Vector contents must start with \"[\".")));
      break;
    case vecext::VectorTextError::kNoDimensions:
      ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
      break;
    case vecext::VectorTextError::kTooManyDims:
      ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                      errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
      break;
    case vecext::VectorTextError::kOutOfRange:
      ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                      errmsg("\"%s\" is out of range for type vector",
                             pnstrdup(lit + r->token_offset, r->token_length))));
      break;
    case vecext::VectorTextError::kNaN:
      ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("NaN not allowed in vector")));
      break;
    case vecext::VectorTextError::kInfinite:
      ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("infinite value not allowed in vector")));
      break;
    case vecext::VectorTextError::kJunkAfterBracket:
      ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
                      errmsg("invalid input syntax for type vector: \"%s\"", lit),
                      errdetail("Junk after closing right brace.")));
      break;
    case vecext::VectorTextError::kSyntax:
    case vecext::VectorTextError::kNone:
      break;
  }
  ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
                  errmsg("invalid input syntax for type vector: \"%s\"", lit)));
  pg_unreachable();
}

// vector_in(cstring, oid, typmod): "[1,2,3]" -> vector.
VECEXT_FUNCTION(vector_in) {
  char* lit = PG_GETARG_CSTRING(0);
  int32 typmod = PG_GETARG_INT32(2);
  float* scratch = TextScratch();
  vecext::VectorTextResult parsed;
  vecext::Status status =
      vecext::ParseVectorText(lit, strlen(lit), (vecext::VectorTextParser)vector_text_parser,
                              scratch, &parsed);
  if (!status.ok()) ReportTextError(lit, &parsed);

  CheckDim(parsed.dim);
  CheckExpectedDim(typmod, parsed.dim);
  Vector* result = InitVector(parsed.dim);
  memcpy(result->x, scratch, sizeof(float) * parsed.dim);
  PG_RETURN_VECTOR_P(result);
}

// vector_out(vector): each element as float4out writes it (the shortest
// text that reads back as the same float), through Postgres's own Ryu.
VECEXT_FUNCTION(vector_out) {
  Vector* v = PG_GETARG_VECTOR_P(0);
  char* buf = (char*)palloc(vecext::VectorTextBufferSize(v->dim));
  vecext::FormatVectorText(v->x, v->dim, buf, float_to_shortest_decimal_bufn);
  PG_FREE_IF_COPY(v, 0);
  PG_RETURN_CSTRING(buf);
}

// vector_typmod_in(cstring[]): the n of vector(n).
VECEXT_FUNCTION(vector_typmod_in) {
  ArrayType* ta = PG_GETARG_ARRAYTYPE_P(0);
  int n;
  int32* tl = ArrayGetIntegerTypmods(ta, &n);
  if (n != 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid type modifier")));
  if (*tl < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("dimensions for type vector must be at least 1")));
  if (*tl > VECTOR_MAX_DIM)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("dimensions for type vector cannot exceed %d", VECTOR_MAX_DIM)));
  PG_RETURN_INT32(*tl);
}

// vector_typmod_out(integer): "(n)", or "" without a modifier.
VECEXT_FUNCTION(vector_typmod_out) {
  int32 typmod = PG_GETARG_INT32(0);
  if (typmod < 0) PG_RETURN_CSTRING(pstrdup(""));
  PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

// ---------------------------------------------------------------------------
// Binary I/O

// vector_recv(internal, oid, typmod): int16 dim, int16 unused, dim float4.
// The length is checked against the bytes left before anything is allocated.
VECEXT_FUNCTION(vector_recv) {
  StringInfo buf = (StringInfo)PG_GETARG_POINTER(0);
  int32 typmod = PG_GETARG_INT32(2);
  int dim = (int)pq_getmsgint(buf, sizeof(int16));
  int unused = (int)pq_getmsgint(buf, sizeof(int16));

  CheckDim(dim);
  CheckExpectedDim(typmod, dim);
  if (unused != 0)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("expected unused to be 0, not %d", unused)));

  int remaining = buf->len - buf->cursor;
  if (remaining != dim * (int)sizeof(float4))
    ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                    errmsg("invalid binary data for type vector"),
                    errdetail("Expected %d bytes of elements for dim = %d, found %d.",
                              dim * (int)sizeof(float4), dim, remaining)));

  // One pass over the bytes (a query vector arrives this way on every
  // binary-protocol search): byte-swap each element; an all-ones exponent
  // is NaN or infinity, which CheckElement reports.
  Vector* result = InitVector(dim);
  const char* src = pq_getmsgbytes(buf, dim * (int)sizeof(float4));
  bool special = false;
  for (int i = 0; i < dim; i++) {
    uint32 bits;
    memcpy(&bits, src + (size_t)i * sizeof(uint32), sizeof bits);
    bits = pg_ntoh32(bits);
    special |= (bits & 0x7f800000u) == 0x7f800000u;
    memcpy(&result->x[i], &bits, sizeof bits);
  }
  if (special) CheckElements(result);
  PG_RETURN_VECTOR_P(result);
}

// vector_send(vector) -> bytea in the binary form above.
VECEXT_FUNCTION(vector_send) {
  Vector* v = PG_GETARG_VECTOR_P(0);
  StringInfoData buf;
  pq_begintypsend(&buf);
  pq_sendint16(&buf, (uint16)v->dim);
  pq_sendint16(&buf, (uint16)v->unused);
  for (int i = 0; i < v->dim; i++) pq_sendfloat4(&buf, v->x[i]);
  PG_FREE_IF_COPY(v, 0);
  PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

// ---------------------------------------------------------------------------
// Casts

// vector(vector, typmod, explicit): the length coercion to vector(n).
VECEXT_FUNCTION(vector) {
  Vector* v = PG_GETARG_VECTOR_P(0);
  int32 typmod = PG_GETARG_INT32(1);
  CheckExpectedDim(typmod, v->dim);
  PG_RETURN_VECTOR_P(v);
}

// array_to_vector(integer[] | real[] | double precision[] | numeric[], typmod, explicit).
VECEXT_FUNCTION(array_to_vector) {
  ArrayType* array = PG_GETARG_ARRAYTYPE_P(0);
  int32 typmod = PG_GETARG_INT32(1);
  Oid elemtype = ARR_ELEMTYPE(array);

  if (ARR_NDIM(array) > 1)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("array must be 1-D")));
  if (ARR_HASNULL(array) && array_contains_nulls(array))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("array must not contain nulls")));
  if (elemtype != INT4OID && elemtype != FLOAT4OID && elemtype != FLOAT8OID && elemtype != NUMERICOID)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("unsupported array type")));

  int16 typlen;
  bool typbyval;
  char typalign;
  Datum* elems;
  int n;
  get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
  deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, NULL, &n);

  CheckDim(n);
  CheckExpectedDim(typmod, n);

  // Convert everything first, then check (pgvector's order of errors).
  Vector* result = InitVector(n);
  for (int i = 0; i < n; i++) {
    switch (elemtype) {
      case INT4OID:
        result->x[i] = (float)DatumGetInt32(elems[i]);
        break;
      case FLOAT4OID:
        result->x[i] = DatumGetFloat4(elems[i]);
        break;
      case FLOAT8OID:
        result->x[i] = (float)DatumGetFloat8(elems[i]);
        break;
      default:  // NUMERICOID: numeric_float4 errors out of range like real does
        result->x[i] = DatumGetFloat4(DirectFunctionCall1(numeric_float4, elems[i]));
        break;
    }
  }
  pfree(elems);
  CheckElements(result);
  PG_RETURN_VECTOR_P(result);
}

// vector_to_float4(vector, typmod, explicit) -> real[].
VECEXT_FUNCTION(vector_to_float4) {
  Vector* v = PG_GETARG_VECTOR_P(0);
  Datum* datums = (Datum*)palloc(sizeof(Datum) * v->dim);
  for (int i = 0; i < v->dim; i++) datums[i] = Float4GetDatum(v->x[i]);
  ArrayType* result = construct_array(datums, v->dim, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT);
  pfree(datums);
  PG_RETURN_ARRAYTYPE_P(result);
}
