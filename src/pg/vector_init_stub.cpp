// TEMPORARY: replaced by the vector type's real initialisation in vector.cpp.
#include "pg/pg_includes.h"
#include "pg/module.h"
void VecextVectorInit(void) {}
