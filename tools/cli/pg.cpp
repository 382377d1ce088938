// libpq helpers (pg.h).
#include "pg.h"

#include <cstring>

namespace vecext::cli {

namespace {

std::string Chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Conn Connect(const std::string& dsn) {
  const char* keys[] = {"dbname", "fallback_application_name", "client_encoding", nullptr};
  const char* vals[] = {dsn.empty() ? nullptr : dsn.c_str(), "vecext", "UTF8", nullptr};
  Conn c(PQconnectdbParams(keys, vals, 1));
  if (!c) throw CliError(kExitServer, "could not connect: out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw CliError(kExitServer, "could not connect to the server: " + Chomp(PQerrorMessage(c.get())));
  }
  return c;
}

std::string ErrorText(const PGresult* r) {
  if (r == nullptr) return "no result from the server";
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY);
  const char* sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  std::string s;
  if (primary == nullptr) {
    s = Chomp(PQresultErrorMessage(r));
    if (s.empty()) s = std::string("unexpected result status ") + PQresStatus(PQresultStatus(r));
  } else {
    s = std::string(severity ? severity : "ERROR") + ":  " + primary;
  }
  if (sqlstate != nullptr) s += std::string(" (SQLSTATE ") + sqlstate + ")";
  if (const char* d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) s += std::string("\nDETAIL:  ") + d;
  if (const char* h = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT)) s += std::string("\nHINT:  ") + h;
  if (const char* x = PQresultErrorField(r, PG_DIAG_CONTEXT)) s += std::string("\nCONTEXT:  ") + x;
  return s;
}

int ExitCodeFor(const PGresult* r) {
  const char* sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (sqlstate != nullptr && (std::strncmp(sqlstate, "22", 2) == 0 || std::strncmp(sqlstate, "23", 2) == 0)) {
    return kExitData;
  }
  return kExitServer;
}

void ThrowResultError(const PGresult* r, const std::string& what) {
  throw CliError(ExitCodeFor(r), what + ": " + ErrorText(r));
}

static Result Check(PGconn* c, PGresult* raw, const std::string& what) {
  Result r(raw);
  if (!r) throw CliError(kExitServer, what + ": " + Chomp(PQerrorMessage(c)));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN && st != PGRES_COPY_OUT) {
    ThrowResultError(r.get(), what);
  }
  return r;
}

Result Exec(PGconn* c, const std::string& sql, const std::string& what) {
  return Check(c, PQexec(c, sql.c_str()), what);
}

Result ExecParams(PGconn* c, const std::string& sql, const std::vector<std::string>& params,
                  const std::string& what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return Check(c,
               PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                            nullptr, 0),
               what);
}

std::string QuoteIdent(const std::string& name) {
  std::string s = "\"";
  for (char ch : name) {
    if (ch == '"') s += '"';
    s += ch;
  }
  return s + "\"";
}

}  // namespace vecext::cli
