// A thin libpq layer for the command-line tool: owning handles for PGconn
// and PGresult, statements that throw CliError (with the SQLSTATE in the
// message) on failure, and the tool's exit codes.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vecext::cli {

// Exit codes (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitData = 1;    // bad input data, or the server rejected the data (SQLSTATE 22xxx/23xxx)
inline constexpr int kExitUsage = 2;   // bad command line
inline constexpr int kExitServer = 3;  // connection, server, I/O or other failures

// A failure that ends the command: its message (already formatted) and exit code.
class CliError : public std::runtime_error {
 public:
  CliError(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Connects (dsn: a conninfo string or URI; empty: PG* environment variables)
// with client_encoding UTF8. Throws CliError(kExitServer) on failure.
Conn Connect(const std::string& dsn);

// "ERROR:  message (SQLSTATE xxxxx)" with DETAIL/HINT/CONTEXT lines when present.
std::string ErrorText(const PGresult* r);
// The exit code for a failed result: kExitData for SQLSTATE classes 22 and 23.
int ExitCodeFor(const PGresult* r);

// Runs sql (no parameters, text results); throws CliError unless it succeeded.
Result Exec(PGconn* c, const std::string& sql, const std::string& what);
// With text parameters.
Result ExecParams(PGconn* c, const std::string& sql, const std::vector<std::string>& params,
                  const std::string& what);

// Quotes an identifier ("schema"."name" callers join two).
std::string QuoteIdent(const std::string& name);

// Throws CliError for a failed result (what: which step failed).
[[noreturn]] void ThrowResultError(const PGresult* r, const std::string& what);

}  // namespace vecext::cli
