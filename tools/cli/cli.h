// The vecext command-line tool: shared option parsing and the commands.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pg.h"

namespace vecext::cli {

// Command-line arguments of one command: "--name=value", "--name value",
// "-o value", flags "--name", and positional arguments ("-" is positional).
class Args {
 public:
  Args(int argc, char** argv, int first);

  // Takes option `name` (without dashes; short: a one-letter alias or 0) with
  // a value. Returns false when absent; the last occurrence wins.
  bool Value(const char* name, char short_name, std::string* out);
  // Takes a flag (no value).
  bool Flag(const char* name);
  // After all options were taken: the positional arguments. Throws a usage
  // error for anything left that looks like an option.
  std::vector<std::string> Positionals();

 private:
  std::vector<std::string> args_;
  std::vector<bool> used_;
};

// Parses an integer in [lo, hi]; throws CliError(kExitUsage) naming the option.
std::int64_t ParseInt(const std::string& s, std::int64_t lo, std::int64_t hi, const char* option);
double ParseDouble(const std::string& s, double lo, double hi, const char* option);

// Options every command takes.
struct CommonOptions {
  std::string dsn;               // --dsn (empty: PG* environment variables)
  std::string schema = "public"; // --schema
};
CommonOptions TakeCommonOptions(Args* args);

using Clock = std::chrono::steady_clock;
inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// "1,234,567"
std::string Thousands(std::uint64_t n);

// Prints "vecext <command>: message" on stderr.
void Warn(const char* command, const std::string& message);

int ImportCommand(Args* args);
int ExportCommand(Args* args);
int BenchCommand(Args* args);

extern const char* const kImportUsage;
extern const char* const kExportUsage;
extern const char* const kBenchUsage;

}  // namespace vecext::cli
