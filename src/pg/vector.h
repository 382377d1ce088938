// The `vector` type's in-memory/on-disk layout (identical to pgvector's):
// a varlena of int16 dim, int16 unused (always 0), float4 x[dim].
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
Vector* InitVector(int dim);

// ERRORs (22000 data_exception) unless a and b have the same dimensions.
void CheckSameDims(const Vector* a, const Vector* b);

// ERRORs unless dim is within 1..VECTOR_MAX_DIM.
void CheckDim(int dim);

// ERRORs unless every element is finite.
void CheckElements(const Vector* v);
