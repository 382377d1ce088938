// Index distance functions per metric (see index_distance.h).
#include "core/index_distance.h"

#include <cmath>

namespace vecext {
namespace {

// The dispatched inner product, looked up on first use (not at load time:
// VECEXT_ISA must be read when Kernels() is first called, not before main).
DistanceFn InnerProductKernel() {
  static const DistanceFn fn = Kernels().inner_product;
  return fn;
}

float NegativeInnerProduct(const float* a, const float* b, std::size_t n) {
  return -InnerProductKernel()(a, b, n);
}

float OneMinusInnerProduct(const float* a, const float* b, std::size_t n) {
  return 1.0f - InnerProductKernel()(a, b, n);
}

}  // namespace

DistanceFn IndexDistanceFn(Metric metric) {
  switch (metric) {
    case Metric::kL2:
      return Kernels().l2_squared;
    case Metric::kInnerProduct:
      return NegativeInnerProduct;
    case Metric::kCosine:
      return OneMinusInnerProduct;
    case Metric::kL1:
      return Kernels().l1;
  }
  return Kernels().l2_squared;
}

bool NormalizeInPlace(float* v, std::size_t n) {
  double norm = 0.0;
  for (std::size_t i = 0; i < n; i++) norm += static_cast<double>(v[i]) * v[i];
  norm = std::sqrt(norm);
  if (!(norm > 0.0) || !std::isfinite(norm)) return false;
  for (std::size_t i = 0; i < n; i++) v[i] = static_cast<float>(v[i] / norm);
  return true;
}

double SqlToIndexDistance(Metric metric, double sql_distance) {
  if (metric == Metric::kL2) return sql_distance < 0 ? -1.0 : sql_distance * sql_distance;
  return sql_distance;
}

double IndexToSqlDistance(Metric metric, double index_distance) {
  if (metric == Metric::kL2) return std::sqrt(index_distance < 0 ? 0.0 : index_distance);
  return index_distance;
}

}  // namespace vecext
