// The error half of the C++/Postgres boundary guard (see guard.h).
#include "pg/guard.h"

#include <cstring>

namespace vecext {

void GuardCopyMessage(const char* what) {
  if (what == nullptr) what = "";
  std::strncpy(g_guard_message, what, sizeof(g_guard_message) - 1);
  g_guard_message[sizeof(g_guard_message) - 1] = '\0';
}

void GuardRaise(int sqlstate, const char* context) {
  // Outside any catch block: safe to longjmp from here.
  ereport(ERROR, (errcode(sqlstate), errmsg("%s", g_guard_message),
                  errcontext("vecext function %s", context)));
  pg_unreachable();
}

}  // namespace vecext
