// Functions and operators on `vector`: distances (through the core kernels),
// norms, element-wise arithmetic, concatenation, subvector, binary quantize,
// and the btree comparison functions. Semantics follow pgvector.
#include "pg/pg_includes.h"

extern "C" {
#include "utils/float.h"
#include "utils/varbit.h"
}

#include <cmath>
#include <cstring>

#include "core/distance.h"
#include "pg/guard.h"
#include "pg/vector.h"

// ---------------------------------------------------------------------------
// Distances. The kernels accumulate in float (like pgvector); the result is
// widened to float8.

// l2_distance(vector, vector), operator <->: sqrt of the float sum of squares.
VECEXT_FUNCTION(l2_distance) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  double result = std::sqrt((double)vecext::Kernels().l2_squared(a->x, b->x, a->dim));
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(result);
}

// vector_l2_squared_distance(vector, vector): the square of l2_distance.
VECEXT_FUNCTION(vector_l2_squared_distance) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  double result = (double)vecext::Kernels().l2_squared(a->x, b->x, a->dim);
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(result);
}

// inner_product(vector, vector).
VECEXT_FUNCTION(inner_product) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  double result = (double)vecext::Kernels().inner_product(a->x, b->x, a->dim);
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(result);
}

// vector_negative_inner_product(vector, vector), operator <#>.
VECEXT_FUNCTION(vector_negative_inner_product) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  double result = (double)-vecext::Kernels().inner_product(a->x, b->x, a->dim);
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(result);
}

// cosine_distance(vector, vector), operator <=>: 1 - a.b / sqrt(|a|^2 |b|^2)
// with float sums and the division in double, the similarity clamped to
// [-1, 1] (pgvector). NaN when either vector is all zeros.
VECEXT_FUNCTION(cosine_distance) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  const vecext::DistanceKernels& k = vecext::Kernels();
  float dot = k.inner_product(a->x, b->x, a->dim);
  float norm_a = k.squared_norm(a->x, a->dim);
  float norm_b = k.squared_norm(b->x, b->dim);
  double similarity = (double)dot / std::sqrt((double)norm_a * (double)norm_b);
  if (similarity > 1.0)
    similarity = 1.0;
  else if (similarity < -1.0)
    similarity = -1.0;
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(1.0 - similarity);
}

// l1_distance(vector, vector), operator <+>: sum |a - b| in float.
VECEXT_FUNCTION(l1_distance) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  double result = (double)vecext::Kernels().l1(a->x, b->x, a->dim);
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  PG_RETURN_FLOAT8(result);
}

// ---------------------------------------------------------------------------
// Single-vector functions

// vector_dims(vector).
VECEXT_FUNCTION(vector_dims) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  int32 dim = a->dim;
  PG_FREE_IF_COPY(a, 0);
  PG_RETURN_INT32(dim);
}

// The L2 norm, summed in double (pgvector's vector_norm).
static double NormDouble(const Vector* a) {
  double norm = 0.0;
  for (int i = 0; i < a->dim; i++) norm += (double)a->x[i] * (double)a->x[i];
  return std::sqrt(norm);
}

// vector_norm(vector).
VECEXT_FUNCTION(vector_norm) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  double norm = NormDouble(a);
  PG_FREE_IF_COPY(a, 0);
  PG_RETURN_FLOAT8(norm);
}

// l2_normalize(vector): a / |a|, or the zero vector for a zero vector.
VECEXT_FUNCTION(l2_normalize) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* result = InitVector(a->dim);
  double norm = NormDouble(a);
  if (norm > 0) {
    for (int i = 0; i < a->dim; i++) result->x[i] = (float)(a->x[i] / norm);
    for (int i = 0; i < a->dim; i++)
      if (std::isinf(result->x[i])) float_overflow_error();
  }
  PG_RETURN_VECTOR_P(result);
}

// The element-wise operators. An infinite result is an overflow error; for
// `*`, a zero from two non-zero factors is an underflow error (pgvector).
enum class ElementOp { kAdd, kSub, kMul };

static Datum ElementWise(FunctionCallInfo fcinfo, ElementOp op) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  CheckSameDims(a, b);
  Vector* result = InitVector(a->dim);
  const float* ax = a->x;
  const float* bx = b->x;
  float* rx = result->x;
  int dim = a->dim;
  switch (op) {
    case ElementOp::kAdd:
      for (int i = 0; i < dim; i++) rx[i] = ax[i] + bx[i];
      break;
    case ElementOp::kSub:
      for (int i = 0; i < dim; i++) rx[i] = ax[i] - bx[i];
      break;
    case ElementOp::kMul:
      for (int i = 0; i < dim; i++) rx[i] = ax[i] * bx[i];
      break;
  }
  for (int i = 0; i < dim; i++) {
    if (std::isinf(rx[i])) float_overflow_error();
    if (op == ElementOp::kMul && rx[i] == 0 && !(ax[i] == 0 || bx[i] == 0)) float_underflow_error();
  }
  PG_RETURN_VECTOR_P(result);
}

// vector_add(vector, vector), operator +; also sum(vector)'s transition.
VECEXT_FUNCTION(vector_add) { return ElementWise(fcinfo, ElementOp::kAdd); }

// vector_sub(vector, vector), operator -.
VECEXT_FUNCTION(vector_sub) { return ElementWise(fcinfo, ElementOp::kSub); }

// vector_mul(vector, vector), operator *.
VECEXT_FUNCTION(vector_mul) { return ElementWise(fcinfo, ElementOp::kMul); }

// vector_concat(vector, vector), operator ||.
VECEXT_FUNCTION(vector_concat) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  int dim = a->dim + b->dim;
  CheckDim(dim);
  Vector* result = InitVector(dim);
  memcpy(result->x, a->x, sizeof(float) * a->dim);
  memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
  PG_RETURN_VECTOR_P(result);
}

// subvector(vector, start, count): elements start..start+count-1 (1-based),
// clipped to the vector like substring(); the result must not be empty.
VECEXT_FUNCTION(subvector) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  int32 start = PG_GETARG_INT32(1);
  int32 count = PG_GETARG_INT32(2);
  if (count < 1)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
  // end = start + count, computed without overflow (a->dim and count are > 0).
  int32 end = start > a->dim - count ? a->dim + 1 : start + count;
  if (start < 1)
    start = 1;
  else if (start > a->dim)
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("vector must have at least 1 dimension")));
  int dim = end - start;
  CheckDim(dim);
  Vector* result = InitVector(dim);
  memcpy(result->x, a->x + (start - 1), sizeof(float) * dim);
  PG_RETURN_VECTOR_P(result);
}

// binary_quantize(vector) -> bit(dim): 1 where the element is > 0.
VECEXT_FUNCTION(binary_quantize) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  int size = VARBITTOTALLEN(a->dim);
  VarBit* result = (VarBit*)palloc0(size);
  SET_VARSIZE(result, size);
  VARBITLEN(result) = a->dim;
  bits8* rx = VARBITS(result);
  for (int i = 0; i < a->dim; i++) rx[i / 8] |= (bits8)((a->x[i] > 0) << (7 - (i % 8)));
  PG_RETURN_VARBIT_P(result);
}

// ---------------------------------------------------------------------------
// Comparison (btree vector_ops). Copies made by detoasting are freed, as
// sorts call these many times per value.

static int CompareArgs(FunctionCallInfo fcinfo) {
  Vector* a = PG_GETARG_VECTOR_P(0);
  Vector* b = PG_GETARG_VECTOR_P(1);
  int cmp = VectorCompare(a, b);
  PG_FREE_IF_COPY(a, 0);
  PG_FREE_IF_COPY(b, 1);
  return cmp;
}

VECEXT_FUNCTION(vector_lt) { PG_RETURN_BOOL(CompareArgs(fcinfo) < 0); }
VECEXT_FUNCTION(vector_le) { PG_RETURN_BOOL(CompareArgs(fcinfo) <= 0); }
VECEXT_FUNCTION(vector_eq) { PG_RETURN_BOOL(CompareArgs(fcinfo) == 0); }
VECEXT_FUNCTION(vector_ne) { PG_RETURN_BOOL(CompareArgs(fcinfo) != 0); }
VECEXT_FUNCTION(vector_ge) { PG_RETURN_BOOL(CompareArgs(fcinfo) >= 0); }
VECEXT_FUNCTION(vector_gt) { PG_RETURN_BOOL(CompareArgs(fcinfo) > 0); }
VECEXT_FUNCTION(vector_cmp) { PG_RETURN_INT32(CompareArgs(fcinfo)); }
