// The `vector` type's in-memory/on-disk layout (identical to pgvector's):
// a varlena of int16 dim, int16 unused (always 0), float4 x[dim].
// Every stored vector has 1..VECTOR_MAX_DIM dimensions and finite elements.
// Binary (send/recv) form: int16 dim, int16 unused, dim float4, network order.
#pragma once

#include "pg/pg_includes.h"

#define VECTOR_MAX_DIM 16000

struct Vector {
  int32 vl_len_;  // varlena header (do not touch directly)
  int16 dim;      // number of dimensions
  int16 unused;   // reserved, always 0
  float4 x[FLEXIBLE_ARRAY_MEMBER];
};

#define VECTOR_SIZE(_dim) (offsetof(Vector, x) + sizeof(float4) * (_dim))
#define DatumGetVector(d) ((Vector*)PG_DETOAST_DATUM(d))
#define PG_GETARG_VECTOR_P(n) DatumGetVector(PG_GETARG_DATUM(n))
#define PG_RETURN_VECTOR_P(v) PG_RETURN_POINTER(v)

// Allocates a zeroed vector of `dim` dimensions in CurrentMemoryContext.
// REQUIRES: 0 <= dim <= VECTOR_MAX_DIM (callers check with CheckDim).
Vector* InitVector(int dim);

// ERRORs (22000 data_exception, "different vector dimensions %d and %d")
// unless a and b have the same dimensions.
void CheckSameDims(const Vector* a, const Vector* b);

// ERRORs unless dim is within 1..VECTOR_MAX_DIM (22000 below, 54000 above).
void CheckDim(int dim);

// ERRORs (22000, "expected %d dimensions, not %d") unless typmod is -1 or dim.
void CheckExpectedDim(int32 typmod, int dim);

// ERRORs (22000) if value is NaN or infinite.
void CheckElement(float value);

// ERRORs unless every element is finite.
void CheckElements(const Vector* v);

// Orders vectors like pgvector (and Postgres arrays): element by element,
// then the shorter first. Returns <0, 0 or >0.
int VectorCompare(const Vector* a, const Vector* b);
