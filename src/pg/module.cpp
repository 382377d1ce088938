// Module entry: the magic block and _PG_init (GUCs, reloption kinds).
#include "pg/pg_includes.h"

#include "pg/guard.h"
#include "pg/module.h"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
  // Each subsystem registers its GUCs and reloptions here. Nothing in them
  // throws: they are plain Postgres calls.
  VecextVectorInit();
  VecextHnswInit();
}
