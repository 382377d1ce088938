# vecext: PGXS build of the extension (vecext.so, control file, install script).
# The Postgres-free core in src/core is compiled into the same shared library;
# CMakeLists.txt builds it separately with its unit tests and microbenchmarks.

EXTENSION = vecext
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" vecext.control)
MODULE_big = vecext

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# The install script is assembled from the pieces in src/sql (in name order).
SQL_PARTS = $(sort $(wildcard src/sql/[0-9]*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard src/sql/upgrade/$(EXTENSION)--*--*.sql)

REGRESS = $(sort $(notdir $(basename $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -MMD -MP -std=c++17 -fno-omit-frame-pointer -fvisibility=hidden -Wno-register
SHLIB_LINK = -lsimdjson -lstdc++ -lpthread
ifdef VECEXT_WERROR
PG_CXXFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-cast-function-type
endif

# No LLVM bitcode for JIT: our code is C++ and the JIT gains nothing here.
override with_llvm = no

EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) vecext.control
	cat $(SQL_PARTS) > $@

# Per-file ISA flags for the run-time dispatched kernels (never -march=native).
src/core/%_avx2.o: override CXXFLAGS += -mavx2 -mfma
src/core/%_avx512.o: override CXXFLAGS += -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma

# Header dependencies (-MMD): PGXS alone does not rebuild an object when a
# header it includes changes, and a stale struct layout crashes a backend.
-include $(OBJS:.o=.d)
