// vecext: import, export and benchmark vecext collections over libpq.
//   vecext import NAME FILE...   vecext export NAME   vecext bench NAME
// See docs/cli.md.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "cli.h"

namespace vecext::cli {

namespace {

const char* const kMainUsage =
    "usage: vecext COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  import NAME FILE...   load JSON / JSON Lines records into a collection (binary COPY)\n"
    "  export NAME           write a collection as JSON Lines\n"
    "  bench NAME            kNN query load generator (pipelined or serial, non-blocking libpq)\n"
    "\n"
    "common options: --dsn=CONNINFO (default: PG* environment variables), --schema=NAME (public)\n"
    "'vecext COMMAND --help' shows a command's options. Exit codes: 0 ok, 1 data errors,\n"
    "2 usage errors, 3 connection, server or I/O errors.\n";

}  // namespace

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; i++) args_.emplace_back(argv[i]);
  used_.assign(args_.size(), false);
}

bool Args::Value(const char* name, char short_name, std::string* out) {
  const std::string long_opt = std::string("--") + name;
  const std::string short_opt = short_name ? std::string("-") + short_name : std::string();
  bool found = false;
  for (std::size_t i = 0; i < args_.size(); i++) {
    if (used_[i]) continue;
    const std::string& a = args_[i];
    if (a == "--") break;
    if (a.compare(0, long_opt.size() + 1, long_opt + "=") == 0) {
      *out = a.substr(long_opt.size() + 1);
      used_[i] = true;
      found = true;
    } else if (a == long_opt || (!short_opt.empty() && a == short_opt)) {
      if (i + 1 >= args_.size()) throw CliError(kExitUsage, "option " + a + " needs a value");
      *out = args_[i + 1];
      used_[i] = used_[i + 1] = true;
      i++;
      found = true;
    }
  }
  return found;
}

bool Args::Flag(const char* name) {
  const std::string long_opt = std::string("--") + name;
  bool found = false;
  for (std::size_t i = 0; i < args_.size(); i++) {
    if (used_[i]) continue;
    if (args_[i] == "--") break;
    if (args_[i] == long_opt) {
      used_[i] = true;
      found = true;
    } else if (args_[i].compare(0, long_opt.size() + 1, long_opt + "=") == 0) {
      throw CliError(kExitUsage, "option " + long_opt + " takes no value");
    }
  }
  return found;
}

std::vector<std::string> Args::Positionals() {
  std::vector<std::string> out;
  bool rest = false;
  for (std::size_t i = 0; i < args_.size(); i++) {
    if (used_[i]) continue;
    const std::string& a = args_[i];
    if (!rest && a == "--") {
      rest = true;
      continue;
    }
    if (!rest && a.size() > 1 && a[0] == '-') throw CliError(kExitUsage, "unknown option " + a);
    out.push_back(a);
  }
  return out;
}

std::int64_t ParseInt(const std::string& s, std::int64_t lo, std::int64_t hi, const char* option) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw CliError(kExitUsage, std::string("--") + option + " must be an integer in " + std::to_string(lo) + ".." +
                                   std::to_string(hi) + ", not \"" + s + "\"");
  }
  return v;
}

double ParseDouble(const std::string& s, double lo, double hi, const char* option) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < lo || v > hi) {
    throw CliError(kExitUsage, std::string("--") + option + " must be a number in " + std::to_string(lo) + ".." +
                                   std::to_string(hi) + ", not \"" + s + "\"");
  }
  return v;
}

CommonOptions TakeCommonOptions(Args* args) {
  CommonOptions o;
  args->Value("dsn", 0, &o.dsn);
  args->Value("schema", 0, &o.schema);
  return o;
}

std::string Thousands(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

void Warn(const char* command, const std::string& message) {
  std::fprintf(stderr, "vecext %s: %s\n", command, message.c_str());
}

}  // namespace vecext::cli

int main(int argc, char** argv) {
  using namespace vecext::cli;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kMainUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string cmd = argv[1];
  const char* usage = cmd == "import"   ? kImportUsage
                      : cmd == "export" ? kExportUsage
                      : cmd == "bench"  ? kBenchUsage
                                        : nullptr;
  if (usage == nullptr) {
    std::fprintf(stderr, "vecext: unknown command \"%s\"\n%s", cmd.c_str(), kMainUsage);
    return kExitUsage;
  }
  try {
    Args args(argc, argv, 2);
    if (args.Flag("help")) {
      std::fputs(usage, stdout);
      return kExitOk;
    }
    if (cmd == "import") return ImportCommand(&args);
    if (cmd == "export") return ExportCommand(&args);
    return BenchCommand(&args);
  } catch (const CliError& e) {
    std::fprintf(stderr, "vecext %s: %s\n", cmd.c_str(), e.what());
    if (e.exit_code() == kExitUsage) std::fprintf(stderr, "try 'vecext %s --help'\n", cmd.c_str());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "vecext %s: out of memory\n", cmd.c_str());
    return kExitServer;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vecext %s: %s\n", cmd.c_str(), e.what());
    return kExitServer;
  }
}
