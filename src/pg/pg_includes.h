// The Postgres headers, included with C linkage. Include this first in every
// src/pg/*.cpp (it pulls in postgres.h); never include it from src/core.
#pragma once

// We build with -fvisibility=hidden; PG15 leaves PGDLLEXPORT empty on Linux,
// so mark the symbols Postgres must find (fmgr functions, _PG_init, the magic
// block) visible ourselves. c.h only defines it when it is not yet defined.
#ifndef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

// Postgres' headers define these as macros; they break the C++ standard library.
#ifdef Max
#undef Max
#endif
#ifdef Min
#undef Min
#endif
#ifndef Max
#define Max(x, y) ((x) > (y) ? (x) : (y))
#define Min(x, y) ((x) < (y) ? (x) : (y))
#endif
