// TEMPORARY: replaced by the HNSW access method's real initialisation.
#include "pg/pg_includes.h"
#include "pg/module.h"
void VecextHnswInit(void) {}
