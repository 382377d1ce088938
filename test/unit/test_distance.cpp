// Unit tests of the float32 distance kernels (src/core/distance.h): every
// kernel of every ISA this CPU can run, against a double-precision reference.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/distance.h"

namespace vecext {
namespace {

constexpr double kFloatEps = 1.0 / (1 << 24);  // unit roundoff of float
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Dimensions under test: all of 1..64, then sizes around every loop boundary
// of the kernels and the usual embedding sizes.
std::vector<std::size_t> TestDims() {
  std::vector<std::size_t> dims;
  for (std::size_t n = 1; n <= 64; n++) dims.push_back(n);
  for (std::size_t n : {65, 67, 79, 80, 95, 96, 97, 100, 127, 128, 129, 191, 192, 255, 256, 257, 300,
                        383, 384, 385, 511, 512, 513, 767, 768, 769, 783, 784, 785, 1000, 1023, 1024,
                        1025, 1535, 1536, 1537, 2047, 2048, 3071, 3072, 3073, 4095, 4096}) {
    dims.push_back(n);
  }
  return dims;
}

// CPU features as this test sees them (independent of the dispatcher).
bool CpuHasAvx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool CpuHasAvx512() {
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

enum class Kernel { kL2, kInnerProduct, kCosine, kL1 };

const char* KernelName(Kernel k) {
  switch (k) {
    case Kernel::kL2:
      return "l2_squared";
    case Kernel::kInnerProduct:
      return "inner_product";
    case Kernel::kCosine:
      return "cosine";
    case Kernel::kL1:
      return "l1";
  }
  return "?";
}

// How gtest prints a Kernel parameter.
void PrintTo(Kernel kernel, std::ostream* os) { *os << KernelName(kernel); }

DistanceFn Fn(const DistanceKernels& k, Kernel kernel) {
  switch (kernel) {
    case Kernel::kL2:
      return k.l2_squared;
    case Kernel::kInnerProduct:
      return k.inner_product;
    case Kernel::kCosine:
      return k.cosine;
    case Kernel::kL1:
      return k.l1;
  }
  return nullptr;
}

// The exact value (in double) and the sum of |terms|, which bounds the
// rounding error of any summation order.
struct Reference {
  double value;
  double magnitude;
};

Reference ReferenceOf(Kernel kernel, const float* a, const float* b, std::size_t n) {
  double sum = 0.0, magnitude = 0.0;
  switch (kernel) {
    case Kernel::kL2:
      for (std::size_t i = 0; i < n; i++) {
        const double d = static_cast<double>(a[i]) - b[i];
        sum += d * d;
      }
      return {sum, sum};
    case Kernel::kInnerProduct:
      for (std::size_t i = 0; i < n; i++) {
        const double t = static_cast<double>(a[i]) * b[i];
        sum += t;
        magnitude += std::fabs(t);
      }
      return {sum, magnitude};
    case Kernel::kL1:
      for (std::size_t i = 0; i < n; i++) sum += std::fabs(static_cast<double>(a[i]) - b[i]);
      return {sum, sum};
    case Kernel::kCosine: {
      double dot = 0.0, norm_a = 0.0, norm_b = 0.0;
      for (std::size_t i = 0; i < n; i++) {
        dot += static_cast<double>(a[i]) * b[i];
        norm_a += static_cast<double>(a[i]) * a[i];
        norm_b += static_cast<double>(b[i]) * b[i];
      }
      // The kernels sum norms in float: a norm that is 0 in float means NaN.
      if (static_cast<float>(norm_a) == 0.0f || static_cast<float>(norm_b) == 0.0f) {
        return {std::nan(""), 0.0};
      }
      const double similarity = std::clamp(dot / std::sqrt(norm_a * norm_b), -1.0, 1.0);
      return {1.0 - similarity, 1.0};
    }
  }
  return {0.0, 0.0};
}

// Relative error allowed per unit of sum |terms|, from the classic bound for
// floating-point summation: each term passes through at most `depth`
// roundings (its product, then the adds along its path to the result). The
// scalar kernels add in index order (depth about n); SIMD kernels keep at
// least one accumulator per lane, so a lane adds at most n / lanes terms,
// plus the reduction across accumulators and lanes.
std::size_t SimdLanes(const char* isa) {
  if (std::strcmp(isa, "avx512") == 0) return 16;
  if (std::strcmp(isa, "avx2") == 0) return 8;
  return 1;
}

double RelativeTolerance(std::size_t lanes, std::size_t n) {
  const double depth = static_cast<double>((n + lanes - 1) / lanes) + (lanes > 1 ? 16.0 : 4.0);
  return 1.01 * depth * kFloatEps;
}

double Tolerance(Kernel kernel, std::size_t lanes, std::size_t n, const Reference& ref) {
  if (kernel == Kernel::kCosine) {
    // Errors of a.b, |a|^2, |b|^2 (each relative to |a||b|), plus the final rounding.
    return 3.0 * RelativeTolerance(lanes, n) + 3e-7;
  }
  // Underflowed products (denormal inputs) may each lose up to one denormal.
  return RelativeTolerance(lanes, n) * ref.magnitude +
         2.0 * static_cast<double>(n) * std::numeric_limits<float>::denorm_min();
}

::testing::AssertionResult MatchesReference(Kernel kernel, std::size_t lanes, std::size_t n, float got,
                                            const Reference& ref) {
  const float want_float = static_cast<float>(ref.value);
  if (std::isnan(ref.value)) {
    if (std::isnan(got)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "n=" << n << ": got " << got << ", want NaN";
  }
  if (std::isinf(want_float)) {  // the exact value overflows float
    if (got == want_float) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "n=" << n << ": got " << got << ", want " << want_float;
  }
  if (kernel == Kernel::kCosine && !(got >= 0.0f && got <= 2.0f)) {
    return ::testing::AssertionFailure() << "n=" << n << ": cosine " << got << " outside [0, 2]";
  }
  const double err = std::fabs(static_cast<double>(got) - ref.value);
  const double tol = Tolerance(kernel, lanes, n, ref);
  if (err <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "n=" << n << ": got " << got << ", want " << ref.value
                                       << " (error " << err << " > tolerance " << tol << ")";
}

// Two vectors at deliberately unaligned offsets inside one buffer.
struct VectorPair {
  std::vector<float> storage;
  float* a;
  float* b;
  std::size_t n;

  explicit VectorPair(std::size_t dims) : storage(2 * dims + 32, 0.0f), n(dims) {
    a = storage.data() + 1 + dims % 7;
    b = storage.data() + dims + 16 + dims % 5;
  }
};

class KernelTest : public ::testing::TestWithParam<std::tuple<std::string, Kernel>> {
 protected:
  void SetUp() override {
    kernels_ = KernelsFor(std::get<0>(GetParam()).c_str());
    if (kernels_ == nullptr) GTEST_SKIP() << std::get<0>(GetParam()) << " is not supported by this CPU";
    kernel_ = std::get<1>(GetParam());
    fn_ = Fn(*kernels_, kernel_);
    lanes_ = SimdLanes(kernels_->isa);
    ASSERT_NE(fn_, nullptr);
  }

  // Fills a and b with gen(rng, index) for every tested dimension and
  // compares the kernel with the reference.
  template <class Gen>
  void CheckAllDims(std::uint32_t seed, Gen gen) {
    for (std::size_t n : TestDims()) {
      std::mt19937 rng(seed * 7919u + static_cast<std::uint32_t>(n));
      VectorPair v(n);
      for (std::size_t i = 0; i < n; i++) v.a[i] = gen(rng);
      for (std::size_t i = 0; i < n; i++) v.b[i] = gen(rng);
      ASSERT_TRUE(MatchesReference(kernel_, lanes_, n, fn_(v.a, v.b, n), ReferenceOf(kernel_, v.a, v.b, n)));
    }
  }

  const DistanceKernels* kernels_ = nullptr;
  Kernel kernel_ = Kernel::kL2;
  DistanceFn fn_ = nullptr;
  std::size_t lanes_ = 1;
};

TEST_P(KernelTest, UniformRandom) {
  CheckAllDims(1, [](std::mt19937& rng) { return std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng); });
}

TEST_P(KernelTest, NonNegativeIntegers) {  // pixel-like data (Fashion-MNIST)
  CheckAllDims(2, [](std::mt19937& rng) {
    return static_cast<float>(std::uniform_int_distribution<int>(0, 255)(rng));
  });
}

TEST_P(KernelTest, NegativeValues) {
  CheckAllDims(3, [](std::mt19937& rng) { return std::uniform_real_distribution<float>(-100.0f, -0.5f)(rng); });
}

TEST_P(KernelTest, MixedSignsAndExponents) {
  CheckAllDims(4, [](std::mt19937& rng) {
    const float mantissa = std::uniform_real_distribution<float>(1.0f, 2.0f)(rng);
    const int exponent = std::uniform_int_distribution<int>(-30, 30)(rng);
    const float sign = (rng() & 1) ? -1.0f : 1.0f;
    return sign * std::ldexp(mantissa, exponent);
  });
}

TEST_P(KernelTest, LargeMagnitudes) {  // sums stay below FLT_MAX for n <= 4096
  CheckAllDims(5, [](std::mt19937& rng) {
    const float sign = (rng() & 1) ? -1.0f : 1.0f;
    return sign * std::uniform_real_distribution<float>(1e15f, 1e16f)(rng);
  });
}

TEST_P(KernelTest, SmallMagnitudes) {  // products near FLT_MIN, still normal
  CheckAllDims(6, [](std::mt19937& rng) { return std::uniform_real_distribution<float>(-1e-17f, 1e-17f)(rng); });
}

TEST_P(KernelTest, Denormals) {  // every product underflows; cosine norms are 0 -> NaN
  const float denorm_max = std::numeric_limits<float>::min() * (1.0f - kFloatEps * 2);
  ASSERT_EQ(std::fpclassify(denorm_max), FP_SUBNORMAL);
  CheckAllDims(7, [denorm_max](std::mt19937& rng) {
    return std::uniform_real_distribution<float>(-denorm_max, denorm_max)(rng);
  });
}

TEST_P(KernelTest, DenormalsMixedWithNormals) {
  CheckAllDims(8, [](std::mt19937& rng) {
    if (rng() & 1) return std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    return std::uniform_real_distribution<float>(-1e-39f, 1e-39f)(rng);
  });
}

TEST_P(KernelTest, Zeros) {
  for (std::size_t n : TestDims()) {
    VectorPair v(n);
    std::mt19937 rng(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; i++) v.b[i] = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    // a = 0, b random
    ASSERT_TRUE(MatchesReference(kernel_, lanes_, n, fn_(v.a, v.b, n), ReferenceOf(kernel_, v.a, v.b, n)));
    ASSERT_TRUE(MatchesReference(kernel_, lanes_, n, fn_(v.b, v.a, n), ReferenceOf(kernel_, v.b, v.a, n)));
    // both 0: exactly 0, or NaN for cosine
    const float both = fn_(v.a, v.a, n);
    if (kernel_ == Kernel::kCosine) {
      ASSERT_TRUE(std::isnan(both)) << "n=" << n << ": " << both;
    } else {
      ASSERT_EQ(both, 0.0f) << "n=" << n;
    }
  }
}

TEST_P(KernelTest, NegativeZerosAreZeros) {
  for (std::size_t n : {1, 7, 16, 33, 784}) {
    std::vector<float> a(n, -0.0f), b(n, 0.0f);
    const float got = fn_(a.data(), b.data(), n);
    if (kernel_ == Kernel::kCosine) {
      EXPECT_TRUE(std::isnan(got)) << "n=" << n;
    } else {
      EXPECT_EQ(got, 0.0f) << "n=" << n;
    }
  }
}

TEST_P(KernelTest, SymmetricAndIdentities) {
  for (std::size_t n : TestDims()) {
    VectorPair v(n);
    std::mt19937 rng(static_cast<std::uint32_t>(n) + 99u);
    for (std::size_t i = 0; i < n; i++) v.a[i] = std::uniform_real_distribution<float>(-2.0f, 3.0f)(rng);
    for (std::size_t i = 0; i < n; i++) v.b[i] = std::uniform_real_distribution<float>(-2.0f, 3.0f)(rng);
    // Every kernel is exactly symmetric (the terms are, and the order is fixed).
    ASSERT_EQ(fn_(v.a, v.b, n), fn_(v.b, v.a, n)) << "n=" << n;

    std::vector<float> neg(n), twice(n);
    for (std::size_t i = 0; i < n; i++) neg[i] = -v.a[i];
    for (std::size_t i = 0; i < n; i++) twice[i] = 2.0f * v.a[i];
    const double tol = 3.0 * RelativeTolerance(lanes_, n) + 3e-7;
    switch (kernel_) {
      case Kernel::kL2:
      case Kernel::kL1:
        ASSERT_EQ(fn_(v.a, v.a, n), 0.0f) << "n=" << n;
        break;
      case Kernel::kInnerProduct:
        ASSERT_EQ(fn_(v.a, neg.data(), n), -fn_(v.a, v.a, n)) << "n=" << n;
        ASSERT_GT(fn_(v.a, v.a, n), 0.0f) << "n=" << n;
        break;
      case Kernel::kCosine: {
        const float same = fn_(v.a, v.a, n);
        const float opposite = fn_(v.a, neg.data(), n);
        const float scaled = fn_(v.a, twice.data(), n);
        ASSERT_GE(same, 0.0f) << "n=" << n;
        ASSERT_LE(same, tol) << "n=" << n;
        ASSERT_GE(scaled, 0.0f) << "n=" << n;
        ASSERT_LE(scaled, tol) << "n=" << n;
        ASSERT_LE(opposite, 2.0f) << "n=" << n;
        ASSERT_GE(opposite, 2.0 - tol) << "n=" << n;
        break;
      }
    }
  }
}

// One coordinate differs from a background of ones, at every position in
// turn. Every partial sum is exact in float, so the results are exact in any
// summation order, and a kernel that skips, repeats or misplaces any element
// (tails!) fails. For cosine the expected value is computed from the exact
// sums with the same double-precision formula as the kernels.
TEST_P(KernelTest, EveryElementCountsOnce) {
  for (std::size_t n : TestDims()) {
    const double rest = static_cast<double>(n - 1);
    float want = 0.0f;
    switch (kernel_) {
      case Kernel::kL2:
        want = 4.0f;
        break;
      case Kernel::kInnerProduct:
        want = static_cast<float>(rest - 0.75);
        break;
      case Kernel::kCosine: {
        const double dot = rest - 0.75, norm_a = rest + 0.25, norm_b = rest + 2.25;
        want = static_cast<float>(1.0 - std::clamp(dot / std::sqrt(norm_a * norm_b), -1.0, 1.0));
        break;
      }
      case Kernel::kL1:
        want = 2.0f;
        break;
    }
    VectorPair v(n);
    std::fill(v.a, v.a + n, 1.0f);
    std::fill(v.b, v.b + n, 1.0f);
    for (std::size_t i = 0; i < n; i++) {
      v.a[i] = -0.5f;
      v.b[i] = 1.5f;
      const float got = fn_(v.a, v.b, n);
      v.a[i] = 1.0f;
      v.b[i] = 1.0f;
      ASSERT_EQ(got, want) << "n=" << n << " i=" << i;
    }
  }
}

// Every element the same: the sums are exact integers in any order.
TEST_P(KernelTest, ConstantVectorsExact) {
  for (std::size_t n : TestDims()) {
    std::vector<float> ones(n, 1.0f), threes(n, 3.0f);
    const float got = fn_(ones.data(), threes.data(), n);
    const float nf = static_cast<float>(n);
    switch (kernel_) {
      case Kernel::kL2:
        ASSERT_EQ(got, 4.0f * nf) << "n=" << n;
        break;
      case Kernel::kInnerProduct:
        ASSERT_EQ(got, 3.0f * nf) << "n=" << n;
        break;
      case Kernel::kCosine:
        ASSERT_EQ(got, 0.0f) << "n=" << n;
        break;
      case Kernel::kL1:
        ASSERT_EQ(got, 2.0f * nf) << "n=" << n;
        break;
    }
  }
}

TEST_P(KernelTest, NaNPropagates) {
  for (std::size_t n : {1, 5, 8, 15, 16, 17, 31, 64, 100, 784}) {
    for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
      std::vector<float> a(n, 0.25f), b(n, -0.5f);
      a[pos] = kNaN;
      EXPECT_TRUE(std::isnan(fn_(a.data(), b.data(), n))) << "n=" << n << " pos=" << pos;
      EXPECT_TRUE(std::isnan(fn_(b.data(), a.data(), n))) << "n=" << n << " pos=" << pos;
    }
  }
}

TEST_P(KernelTest, OverflowAndInfinity) {
  for (std::size_t n : {1, 9, 17, 64, 129, 784}) {
    std::vector<float> a(n, 1e20f), b(n, -1e20f);
    const float got = fn_(a.data(), b.data(), n);
    switch (kernel_) {
      case Kernel::kL2:  // (2e20)^2 overflows float
        EXPECT_EQ(got, kInf) << "n=" << n;
        break;
      case Kernel::kInnerProduct:
        EXPECT_EQ(got, -kInf) << "n=" << n;
        break;
      case Kernel::kCosine:  // the float norms overflow too: inf / inf
        EXPECT_TRUE(std::isnan(got)) << "n=" << n;
        break;
      case Kernel::kL1:  // 2e20 * n is finite
        EXPECT_TRUE(MatchesReference(kernel_, lanes_, n, got, ReferenceOf(kernel_, a.data(), b.data(), n)));
        break;
    }
    std::vector<float> c(n, 1.0f), d(n, 2.0f);
    c[n - 1] = kInf;
    if (kernel_ == Kernel::kL2 || kernel_ == Kernel::kL1 || kernel_ == Kernel::kInnerProduct) {
      EXPECT_EQ(fn_(c.data(), d.data(), n), kInf) << "n=" << n;
    }
  }
}

// Memory with PROT_NONE pages on both sides of a read-write region.
class GuardedRegion {
 public:
  explicit GuardedRegion(std::size_t floats) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    data_bytes_ = (floats * sizeof(float) + page_ - 1) / page_ * page_;
    total_ = data_bytes_ + 2 * page_;
    void* p = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<char*>(p);
    if (mprotect(base_, page_, PROT_NONE) != 0 || mprotect(base_ + page_ + data_bytes_, page_, PROT_NONE) != 0) {
      munmap(base_, total_);
      base_ = nullptr;
    }
  }
  ~GuardedRegion() {
    if (base_ != nullptr) munmap(base_, total_);
  }
  GuardedRegion(const GuardedRegion&) = delete;
  GuardedRegion& operator=(const GuardedRegion&) = delete;

  bool ok() const { return base_ != nullptr; }
  // n floats starting right after the leading guard page.
  float* AtStart() const { return reinterpret_cast<float*>(base_ + page_); }
  // n floats ending right before the trailing guard page.
  float* AtEnd(std::size_t n) const { return reinterpret_cast<float*>(base_ + page_ + data_bytes_) - n; }

 private:
  std::size_t page_ = 0, data_bytes_ = 0, total_ = 0;
  char* base_ = nullptr;
};

// A kernel that reads before a[0] or after a[n-1] touches a guard page and
// crashes the test.
TEST_P(KernelTest, NoReadsOutsideTheVectors) {
  for (std::size_t n : TestDims()) {
    GuardedRegion ra(n), rb(n);
    ASSERT_TRUE(ra.ok() && rb.ok());
    for (int layout = 0; layout < 2; layout++) {
      float* a = layout == 0 ? ra.AtEnd(n) : ra.AtStart();
      float* b = layout == 0 ? rb.AtEnd(n) : rb.AtStart();
      for (std::size_t i = 0; i < n; i++) a[i] = static_cast<float>(i % 13) - 6.0f;
      for (std::size_t i = 0; i < n; i++) b[i] = static_cast<float>(i % 7) - 2.5f;
      ASSERT_TRUE(MatchesReference(kernel_, lanes_, n, fn_(a, b, n), ReferenceOf(kernel_, a, b, n)));
    }
  }
}

std::string ParamName(const ::testing::TestParamInfo<KernelTest::ParamType>& info) {
  return std::get<0>(info.param) + "_" + KernelName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelTest,
                         ::testing::Combine(::testing::Values("scalar", "avx2", "avx512"),
                                            ::testing::Values(Kernel::kL2, Kernel::kInnerProduct,
                                                              Kernel::kCosine, Kernel::kL1)),
                         ParamName);

// --- squared norm, per ISA ---------------------------------------------------

class SquaredNormTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    kernels_ = KernelsFor(GetParam().c_str());
    if (kernels_ == nullptr) GTEST_SKIP() << GetParam() << " is not supported by this CPU";
    ASSERT_NE(kernels_->squared_norm, nullptr);
  }
  const DistanceKernels* kernels_ = nullptr;
};

TEST_P(SquaredNormTest, MatchesReference) {
  for (std::size_t n : TestDims()) {
    VectorPair v(n);
    std::mt19937 rng(static_cast<std::uint32_t>(n) + 5u);
    for (std::size_t i = 0; i < n; i++) v.a[i] = std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
    double want = 0.0;
    for (std::size_t i = 0; i < n; i++) want += static_cast<double>(v.a[i]) * v.a[i];
    const float got = kernels_->squared_norm(v.a, n);
    ASSERT_LE(std::fabs(got - want), RelativeTolerance(SimdLanes(kernels_->isa), n) * want) << "n=" << n;
  }
}

TEST_P(SquaredNormTest, EveryElementCountsOnce) {
  for (std::size_t n : TestDims()) {
    GuardedRegion region(n);
    ASSERT_TRUE(region.ok());
    for (float* a : {region.AtStart(), region.AtEnd(n)}) {
      std::fill(a, a + n, 0.0f);
      for (std::size_t i = 0; i < n; i++) {
        a[i] = -3.0f;
        const float got = kernels_->squared_norm(a, n);
        a[i] = 0.0f;
        ASSERT_EQ(got, 9.0f) << "n=" << n << " i=" << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, SquaredNormTest, ::testing::Values("scalar", "avx2", "avx512"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// --- the tolerance itself -----------------------------------------------------

// The SIMD tolerance must be tight enough that losing one average term
// fails. (Indexing bugs are caught exactly by EveryElementCountsOnce and
// ConstantVectorsExact for every ISA.)
TEST(DistanceTolerance, DetectsAMissingTerm) {
  for (std::size_t n : TestDims()) {
    if (n < 16) continue;
    EXPECT_LT(RelativeTolerance(8, n), 0.6 / static_cast<double>(n)) << "n=" << n;
    EXPECT_LT(RelativeTolerance(16, n), 0.3 / static_cast<double>(n)) << "n=" << n;
  }
  // And it does reject a wrong value: uniform data, one larger term dropped.
  const std::size_t n = 784;
  std::vector<float> a(n), b(n);
  std::mt19937 rng(42);
  for (auto& x : a) x = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  for (auto& x : b) x = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  a[n - 1] = 1.0f;
  b[n - 1] = -1.0f;
  const Reference ref = ReferenceOf(Kernel::kL2, a.data(), b.data(), n);
  const float missing_last = L2SquaredScalar(a.data(), b.data(), n - 1);
  EXPECT_FALSE(MatchesReference(Kernel::kL2, 1, n, missing_last, ref));
  EXPECT_TRUE(MatchesReference(Kernel::kL2, 1, n, L2SquaredScalar(a.data(), b.data(), n), ref));
}

// --- scalar semantics ---------------------------------------------------------

// The scalar kernels sum in index order in float: this input gives a
// different result in any other order (1 + 2^-24 rounds to 1 each time).
TEST(ScalarKernels, SumInIndexOrderInFloat) {
  const float big = 1.0f;
  const float tiny = std::ldexp(1.0f, -24);
  std::vector<float> a = {big, tiny, tiny, tiny, tiny}, ones(5, 1.0f);
  EXPECT_EQ(InnerProductScalar(a.data(), ones.data(), 5), 1.0f);
  std::vector<float> zeros(5, 0.0f);
  EXPECT_EQ(L1Scalar(a.data(), zeros.data(), 5), 1.0f);
  // Reversed: the tiny terms add up first.
  std::vector<float> r(a.rbegin(), a.rend());
  EXPECT_EQ(InnerProductScalar(r.data(), ones.data(), 5), 1.0f + 4 * tiny);
}

// Products are rounded before they are added (no FMA contraction):
// (1+e)(1-e) = 1 - e^2 rounds to 1 in float, so 1 - 1 = 0 exactly, while a
// fused multiply-add would give -e^2.
TEST(ScalarKernels, ProductsAreRoundedBeforeAdding) {
  const float e = std::ldexp(1.0f, -13);
  std::vector<float> a = {-1.0f, 1.0f + e}, b = {1.0f, 1.0f - e};
  EXPECT_EQ(InnerProductScalar(a.data(), b.data(), 2), 0.0f);
}

TEST(ScalarKernels, CosineClampsSimilarity) {
  // Parallel vectors whose float sums give a similarity just above 1.
  for (std::size_t n : TestDims()) {
    std::vector<float> a(n), b(n);
    std::mt19937 rng(static_cast<std::uint32_t>(n));
    for (std::size_t i = 0; i < n; i++) {
      a[i] = std::uniform_real_distribution<float>(0.1f, 10.0f)(rng);
      b[i] = a[i] * 3.0f;
    }
    const float same = CosineScalar(a.data(), b.data(), n);
    ASSERT_GE(same, 0.0f) << "n=" << n;
    for (auto& x : b) x = -x;
    const float opposite = CosineScalar(a.data(), b.data(), n);
    ASSERT_LE(opposite, 2.0f) << "n=" << n;
  }
}

// --- dispatch -------------------------------------------------------------------

TEST(DistanceDispatch, ScalarKernelsAreTheScalarFunctions) {
  const DistanceKernels* k = KernelsFor("scalar");
  ASSERT_NE(k, nullptr);
  EXPECT_STREQ(k->isa, "scalar");
  EXPECT_EQ(k->l2_squared, &L2SquaredScalar);
  EXPECT_EQ(k->inner_product, &InnerProductScalar);
  EXPECT_EQ(k->cosine, &CosineScalar);
  EXPECT_EQ(k->l1, &L1Scalar);
  EXPECT_EQ(k->squared_norm, &SquaredNormScalar);
}

TEST(DistanceDispatch, AvailabilityMatchesCpu) {
  const DistanceKernels* avx2 = KernelsFor("avx2");
  const DistanceKernels* avx512 = KernelsFor("avx512");
  EXPECT_EQ(avx2 != nullptr, CpuHasAvx2());
  EXPECT_EQ(avx512 != nullptr, CpuHasAvx512());
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    const DistanceKernels* k = KernelsFor(isa);
    if (k == nullptr) continue;
    EXPECT_STREQ(k->isa, isa);
    EXPECT_NE(k->l2_squared, nullptr);
    EXPECT_NE(k->inner_product, nullptr);
    EXPECT_NE(k->cosine, nullptr);
    EXPECT_NE(k->l1, nullptr);
    EXPECT_NE(k->squared_norm, nullptr);
    EXPECT_EQ(KernelsFor(isa), k);  // one table per ISA
  }
  if (avx2 != nullptr) {
    EXPECT_NE(avx2->l2_squared, &L2SquaredScalar);
  }
  if (avx2 != nullptr && avx512 != nullptr) {
    EXPECT_NE(avx512->l2_squared, avx2->l2_squared);
  }
}

TEST(DistanceDispatch, UnknownIsaNames) {
  for (const char* isa : {"", "AVX2", "Scalar", "sse4", "avx512 ", "neon", "avx"}) {
    EXPECT_EQ(KernelsFor(isa), nullptr) << "'" << isa << "'";
  }
  EXPECT_EQ(KernelsFor(nullptr), nullptr);
}

const char* BestIsa() { return CpuHasAvx512() ? "avx512" : CpuHasAvx2() ? "avx2" : "scalar"; }

TEST(DistanceDispatch, SelectKernelsCaps) {
  EXPECT_STREQ(SelectKernels("scalar").isa, "scalar");
  EXPECT_STREQ(SelectKernels("avx2").isa, CpuHasAvx2() ? "avx2" : "scalar");
  EXPECT_STREQ(SelectKernels("avx512").isa, BestIsa());
  for (const char* cap : {static_cast<const char*>(nullptr), "", "bogus", "AVX2", "sse"}) {
    EXPECT_STREQ(SelectKernels(cap).isa, BestIsa()) << (cap ? cap : "(null)");
  }
  EXPECT_EQ(&SelectKernels("scalar"), KernelsFor("scalar"));
}

TEST(DistanceDispatch, KernelsFollowsEnvironmentOfThisProcess) {
  EXPECT_EQ(&Kernels(), &SelectKernels(std::getenv("VECEXT_ISA")));
  float a[3] = {1, 2, 3}, b[3] = {0, 0, 1};
  EXPECT_EQ(SquaredNorm(a, 3), 14.0f);
  EXPECT_EQ(Kernels().l2_squared(a, b, 3), 9.0f);
}

TEST(DistanceDispatch, KernelForMetric) {
  const DistanceKernels& k = Kernels();
  EXPECT_EQ(KernelForMetric(k, Metric::kL2), k.l2_squared);
  EXPECT_EQ(KernelForMetric(k, Metric::kInnerProduct), k.inner_product);
  EXPECT_EQ(KernelForMetric(k, Metric::kCosine), k.cosine);
  EXPECT_EQ(KernelForMetric(k, Metric::kL1), k.l1);
}

// The VECEXT_ISA tests run Kernels() in a fresh process (gtest's
// "threadsafe" death-test style re-executes the binary), so the choice made
// once per process is made under the environment set here.
int ChildChecksKernelsUnder(const char* value, const char* want_isa) {
  if (value == nullptr) {
    unsetenv("VECEXT_ISA");
  } else {
    setenv("VECEXT_ISA", value, 1);
  }
  const DistanceKernels& first = Kernels();
  if (std::strcmp(first.isa, want_isa) != 0) return 1;
  setenv("VECEXT_ISA", "scalar", 1);  // too late: the choice is made once
  if (&Kernels() != &first) return 2;
  float a[2] = {1, 2};
  if (SquaredNorm(a, 2) != 5.0f) return 3;
  return 0;
}

TEST(DistanceDispatchDeathTest, VecextIsaCapsTheChoice) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* avx2_or_scalar = CpuHasAvx2() ? "avx2" : "scalar";
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder("scalar", "scalar")), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder("avx2", avx2_or_scalar)), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder("avx512", BestIsa())), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder("bogus", BestIsa())), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder("", BestIsa())), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(ChildChecksKernelsUnder(nullptr, BestIsa())), ::testing::ExitedWithCode(0), "");
}

// The first calls race from many threads; all must see the same table.
int ChildRacesFirstCall() {
  unsetenv("VECEXT_ISA");
  constexpr int kThreads = 8;
  const DistanceKernels* seen[kThreads] = {};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) threads.emplace_back([&seen, t] { seen[t] = &Kernels(); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; t++) {
    if (seen[t] != seen[0]) return 1;
  }
  return std::strcmp(seen[0]->isa, BestIsa()) == 0 ? 0 : 2;
}

TEST(DistanceDispatchDeathTest, ChosenOnceAcrossThreads) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(ChildRacesFirstCall()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace vecext
