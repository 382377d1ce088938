// Collection names and metrics (names.h).
#include "names.h"

#include <cstring>

namespace vecext::cli {

namespace {

constexpr Metric kMetrics[] = {
    {"cosine", "<=>", "vector_cosine_ops"},
    {"l2", "<->", "vector_l2_ops"},
    {"ip", "<#>", "vector_ip_ops"},
    {"l1", "<+>", "vector_l1_ops"},
};

inline bool Lower(char c) { return c >= 'a' && c <= 'z'; }
inline bool Digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool ValidCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 48 || !Lower(name[0])) return false;
  for (char c : name) {
    if (!Lower(c) && !Digit(c) && c != '_') return false;
  }
  return true;
}

bool ValidSchemaName(const std::string& name) {
  if (name.empty() || name.size() > 63 || !(Lower(name[0]) || name[0] == '_')) return false;
  for (char c : name) {
    if (!Lower(c) && !Digit(c) && c != '_') return false;
  }
  return true;
}

const Metric* FindMetric(const std::string& name) {
  for (const Metric& m : kMetrics) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

const Metric* FindMetricByOpclass(const std::string& opclass) {
  for (const Metric& m : kMetrics) {
    if (opclass == m.opclass) return &m;
  }
  return nullptr;
}

std::string MetricNames() {
  std::string s;
  for (const Metric& m : kMetrics) {
    if (!s.empty()) s += ", ";
    s += m.name;
  }
  return s;
}

}  // namespace vecext::cli
