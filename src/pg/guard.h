// The C++/Postgres boundary (see ../shared/DESIGN.md, "The C++ / Postgres
// boundary"). Every function Postgres calls is extern "C" and runs its body
// inside VECEXT_GUARD, which catches every C++ exception, copies the message
// into a static buffer (no allocation inside the catch), leaves the catch
// block, and only then raises a Postgres ERROR with a proper SQLSTATE.
//
// Rules for code inside the guard:
//  - No object with a non-trivial destructor may be alive in a frame when a
//    Postgres function that can ereport/longjmp is called (palloc, ReadBuffer,
//    LockBuffer, GenericXLog*, detoasting, CHECK_FOR_INTERRUPTS, ...).
//    Glue code is "C in .cpp files": POD structs, memory contexts.
//  - Code that may throw (hnswlib, std containers) runs only in frames that
//    make no Postgres calls; the exception reaches the guard's catch.
#pragma once

#include <exception>
#include <new>

#include "pg_includes.h"

namespace vecext {

// Message of the last caught exception; static so the catch block allocates nothing.
inline char g_guard_message[512];

void GuardCopyMessage(const char* what);  // copies into g_guard_message, truncating

[[noreturn]] void GuardRaise(int sqlstate, const char* context);

}  // namespace vecext

// Runs `body` (a statement block) under the guard. `context` names the
// function for the error message. The body must `return` its result.
#define VECEXT_GUARD(context, body)                                          \
  do {                                                                       \
    int vecext_guard_code_ = 0;                                              \
    try {                                                                    \
      body                                                                   \
    } catch (const std::bad_alloc&) {                                        \
      vecext_guard_code_ = ERRCODE_OUT_OF_MEMORY;                            \
      ::vecext::GuardCopyMessage("out of memory");                           \
    } catch (const std::exception& e) {                                      \
      vecext_guard_code_ = ERRCODE_INTERNAL_ERROR;                           \
      ::vecext::GuardCopyMessage(e.what());                                  \
    } catch (...) {                                                          \
      vecext_guard_code_ = ERRCODE_INTERNAL_ERROR;                           \
      ::vecext::GuardCopyMessage("unknown C++ exception");                   \
    }                                                                        \
    ::vecext::GuardRaise(vecext_guard_code_, (context));                     \
  } while (0)

// Declares an fmgr-callable SQL function `name` whose body is
// `static Datum name##_impl(FunctionCallInfo fcinfo)`, run under the guard.
//   VECEXT_FUNCTION(vector_in) { ... return PointerGetDatum(v); }
#define VECEXT_FUNCTION(name)                                                \
  static Datum name##_impl(FunctionCallInfo fcinfo);                         \
  extern "C" {                                                               \
  PGDLLEXPORT Datum name(PG_FUNCTION_ARGS);                                  \
  PGDLLEXPORT const Pg_finfo_record* pg_finfo_##name(void);                  \
  const Pg_finfo_record* pg_finfo_##name(void) {                             \
    static const Pg_finfo_record my_finfo = {1};                             \
    return &my_finfo;                                                        \
  }                                                                          \
  Datum name(PG_FUNCTION_ARGS) { VECEXT_GUARD(#name, return name##_impl(fcinfo);); } \
  }                                                                          \
  static Datum name##_impl(FunctionCallInfo fcinfo)
