// avg(vector): the transition state is a float8[] {n, sum_1, ..., sum_dim}
// (pgvector's layout; INITCOND '{0}' means no input yet), so partial states
// of parallel workers combine without serialization functions.
// sum(vector) needs no code here: its transition and combine are vector_add.
#include "pg/pg_includes.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/float.h"
}

#include <cmath>

#include "pg/guard.h"
#include "pg/vector.h"

#define STATE_DIMS(a) (ARR_DIMS(a)[0] - 1)

// The state's values, after checking that it is a 1-D float8[] without nulls.
static float8* StateValues(ArrayType* state, const char* caller) {
  if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] < 1 || ARR_HASNULL(state) ||
      ARR_ELEMTYPE(state) != FLOAT8OID)
    elog(ERROR, "%s: expected state array", caller);
  return (float8*)ARR_DATA_PTR(state);
}

// A new state array of dim + 1 values, filled by the caller.
static ArrayType* NewState(int dim) {
  Datum* datums = (Datum*)palloc(sizeof(Datum) * (dim + 1));
  for (int i = 0; i <= dim; i++) datums[i] = Float8GetDatum(0.0);
  ArrayType* state = construct_array(datums, dim + 1, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
                                     TYPALIGN_DOUBLE);
  pfree(datums);
  return state;
}

// vector_accum(float8[], vector): adds one vector to the state. Inside an
// aggregate the state array is ours, so it is updated in place.
VECEXT_FUNCTION(vector_accum) {
  ArrayType* state = PG_GETARG_ARRAYTYPE_P(0);
  Vector* v = PG_GETARG_VECTOR_P(1);
  float8* values = StateValues(state, "vector_accum");
  int dim = STATE_DIMS(state);

  if (dim == 0) {
    ArrayType* result = NewState(v->dim);
    float8* rv = (float8*)ARR_DATA_PTR(result);
    rv[0] = values[0] + 1.0;
    for (int i = 0; i < v->dim; i++) rv[i + 1] = (double)v->x[i];
    PG_RETURN_ARRAYTYPE_P(result);
  }

  CheckExpectedDim(dim, v->dim);
  bool in_place = AggCheckCallContext(fcinfo, NULL) &&
                  (Pointer)state == DatumGetPointer(PG_GETARG_DATUM(0));
  ArrayType* result = in_place ? state : NewState(dim);
  float8* rv = (float8*)ARR_DATA_PTR(result);
  // Check before writing: an error must not leave a half-updated state.
  for (int i = 0; i < dim; i++)
    if (std::isinf(values[i + 1] + v->x[i])) float_overflow_error();
  rv[0] = values[0] + 1.0;
  for (int i = 0; i < dim; i++) rv[i + 1] = values[i + 1] + v->x[i];
  PG_RETURN_ARRAYTYPE_P(result);
}

// vector_combine(float8[], float8[]): merges two partial states.
VECEXT_FUNCTION(vector_combine) {
  ArrayType* state1 = PG_GETARG_ARRAYTYPE_P(0);
  ArrayType* state2 = PG_GETARG_ARRAYTYPE_P(1);
  float8* values1 = StateValues(state1, "vector_combine");
  float8* values2 = StateValues(state2, "vector_combine");
  int dim1 = STATE_DIMS(state1);
  int dim2 = STATE_DIMS(state2);

  int dim = dim1 == 0 ? dim2 : dim1;
  if (dim1 != 0 && dim2 != 0) CheckExpectedDim(dim1, dim2);
  if (dim != 0) CheckDim(dim);

  ArrayType* result = NewState(dim);
  float8* rv = (float8*)ARR_DATA_PTR(result);
  rv[0] = values1[0] + values2[0];
  for (int i = 1; i <= dim; i++) {
    double v = (dim1 == 0 ? 0.0 : values1[i]) + (dim2 == 0 ? 0.0 : values2[i]);
    if (std::isinf(v)) float_overflow_error();
    rv[i] = v;
  }
  PG_RETURN_ARRAYTYPE_P(result);
}

// vector_avg(float8[]): the final function of avg(vector); NULL for no rows.
VECEXT_FUNCTION(vector_avg) {
  ArrayType* state = PG_GETARG_ARRAYTYPE_P(0);
  float8* values = StateValues(state, "vector_avg");
  float8 n = values[0];
  if (n == 0.0) PG_RETURN_NULL();
  int dim = STATE_DIMS(state);
  CheckDim(dim);
  Vector* result = InitVector(dim);
  for (int i = 0; i < dim; i++) {
    result->x[i] = (float)(values[i + 1] / n);
    CheckElement(result->x[i]);
  }
  PG_RETURN_VECTOR_P(result);
}
