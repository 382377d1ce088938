// Unit tests of SQ8 quantization (src/core/sq8.h): training, the params blob,
// encoding, every kernel of every ISA this CPU runs against a double
// reference (with guard pages), approximate distances against decode + exact
// distance, and the bound property: lower <= the SQL operator's value <=
// upper, with the SQL value computed exactly as src/pg/vector_ops.cpp does
// (float kernels of each ISA, then double).
#include "core/sq8.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/distance.h"
#include "core/index_distance.h"

namespace vecext {
namespace {

constexpr double kU = 1.0 / (1 << 24);  // unit roundoff of float
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInfF = std::numeric_limits<float>::infinity();
const char* const kIsas[] = {"scalar", "avx2", "avx512"};
const Metric kMetrics[] = {Metric::kL2, Metric::kInnerProduct, Metric::kCosine, Metric::kL1};

const char* MetricName(Metric m) {
  switch (m) {
    case Metric::kL2:
      return "l2";
    case Metric::kInnerProduct:
      return "ip";
    case Metric::kCosine:
      return "cosine";
    case Metric::kL1:
      return "l1";
  }
  return "?";
}

// Dimensions 1..64, then around every loop boundary and the usual sizes.
std::vector<std::size_t> TestDims() {
  std::vector<std::size_t> dims;
  for (std::size_t n = 1; n <= 64; n++) dims.push_back(n);
  for (std::size_t n : {65,   67,   79,   80,   95,   96,   97,   100,  127,  128,  129,  191, 192, 255,
                        256,  257,  383,  384,  385,  511,  512,  513,  767,  768,  769,  783, 784, 785,
                        1023, 1024, 1025, 1535, 1536, 1537, 2047, 3071, 3072, 3073, 4095, 4096}) {
    dims.push_back(n);
  }
  return dims;
}

std::size_t SimdLanes(const char* isa) {
  if (std::strcmp(isa, "avx512") == 0) return 16;
  if (std::strcmp(isa, "avx2") == 0) return 8;
  return 1;
}

// Relative error of a float sum of n terms by one of our kernels: each term
// passes through at most `depth` roundings (see test_distance.cpp).
double RelativeTolerance(std::size_t lanes, std::size_t n) {
  const double depth = static_cast<double>((n + lanes - 1) / lanes) + (lanes > 1 ? 16.0 : 4.0);
  return 1.01 * depth * kU;
}

// Memory with PROT_NONE pages on both sides of a read-write region.
class GuardedRegion {
 public:
  explicit GuardedRegion(std::size_t bytes) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    data_bytes_ = (bytes + page_ - 1) / page_ * page_;
    if (data_bytes_ == 0) data_bytes_ = page_;
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
  template <class T>
  T* AtStart() const {
    return reinterpret_cast<T*>(base_ + page_);
  }
  // n elements ending right before the trailing guard page.
  template <class T>
  T* AtEnd(std::size_t n) const {
    return reinterpret_cast<T*>(base_ + page_ + data_bytes_) - n;
  }

 private:
  std::size_t page_ = 0, data_bytes_ = 0, total_ = 0;
  char* base_ = nullptr;
};

// --- kernels -------------------------------------------------------------------

enum class Kernel { kDot, kL2, kL1, kCodeL2, kCodeL1 };
const Kernel kKernels[] = {Kernel::kDot, Kernel::kL2, Kernel::kL1, Kernel::kCodeL2, Kernel::kCodeL1};

const char* KernelName(Kernel k) {
  switch (k) {
    case Kernel::kDot:
      return "dot";
    case Kernel::kL2:
      return "l2";
    case Kernel::kL1:
      return "l1";
    case Kernel::kCodeL2:
      return "code_l2";
    case Kernel::kCodeL1:
      return "code_l1";
  }
  return "?";
}

void PrintTo(Kernel k, std::ostream* os) { *os << KernelName(k); }

// The inputs of one kernel call: float arrays a and s, code arrays c and d
// (which of them a kernel reads depends on the kernel).
struct KernelArgs {
  const float* a;
  const float* s;
  const std::uint8_t* c;
  const std::uint8_t* d;
  std::size_t n;
};

float Call(const Sq8Kernels& k, Kernel kernel, const KernelArgs& x) {
  switch (kernel) {
    case Kernel::kDot:
      return k.dot(x.a, x.c, x.n);
    case Kernel::kL2:
      return k.l2(x.a, x.s, x.c, x.n);
    case Kernel::kL1:
      return k.l1(x.a, x.s, x.c, x.n);
    case Kernel::kCodeL2:
      return k.code_l2(x.s, x.c, x.d, x.n);
    case Kernel::kCodeL1:
      return k.code_l1(x.s, x.c, x.d, x.n);
  }
  return kNaN;
}

// The exact value and the error the kernel may make (docs/quantization.md).
struct Reference {
  double value;
  double tolerance;
};

Reference ReferenceOf(Kernel kernel, const KernelArgs& x, std::size_t lanes) {
  const double rel = RelativeTolerance(lanes, x.n);
  double sum = 0.0, mag = 0.0;
  for (std::size_t i = 0; i < x.n; i++) {
    const double a = x.a != nullptr ? x.a[i] : 0.0;
    const double s = x.s != nullptr ? x.s[i] : 0.0;
    const double c = x.c[i];
    const double d = x.d != nullptr ? x.d[i] : 0.0;
    switch (kernel) {
      case Kernel::kDot:
        sum += a * c;
        mag += std::fabs(a * c);
        break;
      case Kernel::kL2: {
        const double r = a - s * c;
        sum += r * r;
        mag += (std::fabs(a) + s * c) * (std::fabs(a) + s * c);
        break;
      }
      case Kernel::kL1:
        sum += std::fabs(a - s * c);
        mag += std::fabs(a) + s * c;
        break;
      case Kernel::kCodeL2:
        sum += (s * (c - d)) * (s * (c - d));
        break;
      case Kernel::kCodeL1:
        sum += s * std::fabs(c - d);
        break;
    }
  }
  switch (kernel) {
    case Kernel::kDot:
      return {sum, rel * mag};
    case Kernel::kL2:  // the residual a - s c errs by <= 2u (|a| + s c)
      return {sum, rel * sum + 5.0 * kU * mag};
    case Kernel::kL1:
      return {sum, rel * sum + 3.0 * kU * mag};
    case Kernel::kCodeL2:
      return {sum, (rel + 3.0 * kU) * sum};
    case Kernel::kCodeL1:
      return {sum, (rel + kU) * sum};
  }
  return {0.0, 0.0};
}

::testing::AssertionResult Matches(Kernel kernel, const KernelArgs& x, std::size_t lanes, float got) {
  const Reference ref = ReferenceOf(kernel, x, lanes);
  const double err = std::fabs(static_cast<double>(got) - ref.value);
  if (err <= ref.tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << KernelName(kernel) << " n=" << x.n << ": got " << got << ", want "
                                       << ref.value << " (error " << err << " > " << ref.tolerance << ")";
}

class Sq8KernelTest : public ::testing::TestWithParam<std::tuple<std::string, Kernel>> {
 protected:
  void SetUp() override {
    kernels_ = Sq8KernelsFor(std::get<0>(GetParam()).c_str());
    if (kernels_ == nullptr) GTEST_SKIP() << std::get<0>(GetParam()) << " is not supported by this CPU";
    kernel_ = std::get<1>(GetParam());
    lanes_ = SimdLanes(kernels_->isa);
  }
  bool UsesA() const { return kernel_ == Kernel::kDot || kernel_ == Kernel::kL2 || kernel_ == Kernel::kL1; }
  bool UsesS() const { return kernel_ != Kernel::kDot; }
  bool UsesD() const { return kernel_ == Kernel::kCodeL2 || kernel_ == Kernel::kCodeL1; }

  const Sq8Kernels* kernels_ = nullptr;
  Kernel kernel_ = Kernel::kDot;
  std::size_t lanes_ = 1;
};

// Random inputs of every size, each array placed against a guard page at its
// end and then at its start: a kernel that reads outside crashes the test.
TEST_P(Sq8KernelTest, MatchesReferenceWithGuardPages) {
  for (std::size_t n : TestDims()) {
    GuardedRegion ra(n * sizeof(float)), rs(n * sizeof(float)), rc(n), rd(n);
    ASSERT_TRUE(ra.ok() && rs.ok() && rc.ok() && rd.ok());
    std::mt19937 rng(static_cast<std::uint32_t>(n) * 31u + static_cast<std::uint32_t>(kernel_));
    for (int layout = 0; layout < 2; layout++) {
      float* a = layout == 0 ? ra.AtEnd<float>(n) : ra.AtStart<float>();
      float* s = layout == 0 ? rs.AtEnd<float>(n) : rs.AtStart<float>();
      std::uint8_t* c = layout == 0 ? rc.AtEnd<std::uint8_t>(n) : rc.AtStart<std::uint8_t>();
      std::uint8_t* d = layout == 0 ? rd.AtEnd<std::uint8_t>(n) : rd.AtStart<std::uint8_t>();
      for (std::size_t i = 0; i < n; i++) {
        a[i] = std::uniform_real_distribution<float>(-2.0f, 3.0f)(rng);
        s[i] = std::uniform_real_distribution<float>(0.0f, 0.05f)(rng);
        c[i] = static_cast<std::uint8_t>(rng());
        d[i] = static_cast<std::uint8_t>(rng());
      }
      const KernelArgs x{UsesA() ? a : nullptr, UsesS() ? s : nullptr, c, UsesD() ? d : nullptr, n};
      ASSERT_TRUE(Matches(kernel_, x, lanes_, Call(*kernels_, kernel_, x))) << "layout " << layout;
    }
  }
}

TEST_P(Sq8KernelTest, ExtremeCodesAndScales) {
  for (std::size_t n : TestDims()) {
    std::mt19937 rng(static_cast<std::uint32_t>(n) + 7u);
    std::vector<float> a(n), s(n);
    std::vector<std::uint8_t> c(n), d(n);
    for (std::size_t i = 0; i < n; i++) {
      a[i] = std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng),
                        std::uniform_int_distribution<int>(-20, 20)(rng));
      s[i] = std::ldexp(std::uniform_real_distribution<float>(0.0f, 1.0f)(rng),
                        std::uniform_int_distribution<int>(-28, 12)(rng));
      c[i] = (rng() & 1) ? 255 : 0;
      d[i] = (rng() & 1) ? 255 : 0;
    }
    const KernelArgs x{a.data(), s.data(), c.data(), d.data(), n};
    ASSERT_TRUE(Matches(kernel_, x, lanes_, Call(*kernels_, kernel_, x)));
  }
}

// One position differs from a background whose terms are exactly 0, at every
// position in turn: the result is exact, and a kernel that skips, repeats or
// misaligns an element (codes against floats, tails) fails.
TEST_P(Sq8KernelTest, EveryElementCountsOnce) {
  for (std::size_t n : TestDims()) {
    GuardedRegion ra(n * sizeof(float)), rs(n * sizeof(float)), rc(n), rd(n);
    ASSERT_TRUE(ra.ok() && rs.ok() && rc.ok() && rd.ok());
    float* a = ra.AtEnd<float>(n);
    float* s = rs.AtEnd<float>(n);
    std::uint8_t* c = rc.AtEnd<std::uint8_t>(n);
    std::uint8_t* d = rd.AtEnd<std::uint8_t>(n);
    for (std::size_t i = 0; i < n; i++) {
      c[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
      d[i] = c[i];
      s[i] = 2.0f;
      a[i] = kernel_ == Kernel::kDot ? 0.0f : 2.0f * c[i];  // residual a - s c = 0
    }
    float want = 0.0f;
    for (std::size_t i = 0; i < n; i++) {
      const float saved_a = a[i];
      const std::uint8_t saved_d = d[i];
      switch (kernel_) {
        case Kernel::kDot:
          a[i] = 0.5f;  // 0.5 c[i], exact
          want = 0.5f * c[i];
          break;
        case Kernel::kL2:
          a[i] += 3.0f;
          want = 9.0f;
          break;
        case Kernel::kL1:
          a[i] -= 3.0f;
          want = 3.0f;
          break;
        case Kernel::kCodeL2:
          d[i] = static_cast<std::uint8_t>(c[i] >= 5 ? c[i] - 5 : c[i] + 5);
          want = 100.0f;  // (2 * 5)^2
          break;
        case Kernel::kCodeL1:
          d[i] = static_cast<std::uint8_t>(c[i] >= 5 ? c[i] - 5 : c[i] + 5);
          want = 10.0f;
          break;
      }
      const KernelArgs x{a, s, c, d, n};
      const float got = Call(*kernels_, kernel_, x);
      a[i] = saved_a;
      d[i] = saved_d;
      ASSERT_EQ(got, want) << "n=" << n << " i=" << i;
    }
  }
}

std::string KernelParamName(const ::testing::TestParamInfo<Sq8KernelTest::ParamType>& info) {
  return std::get<0>(info.param) + "_" + KernelName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sq8Isa, Sq8KernelTest,
                         ::testing::Combine(::testing::Values("scalar", "avx2", "avx512"),
                                            ::testing::ValuesIn(kKernels)),
                         KernelParamName);

TEST(Sq8Dispatch, FollowsTheFloatKernels) {
  for (const char* isa : kIsas) {
    const Sq8Kernels* k = Sq8KernelsFor(isa);
    EXPECT_EQ(k != nullptr, KernelsFor(isa) != nullptr) << isa;
    if (k == nullptr) continue;
    EXPECT_STREQ(k->isa, isa);
    EXPECT_NE(k->dot, nullptr);
    EXPECT_NE(k->l2, nullptr);
    EXPECT_NE(k->l1, nullptr);
    EXPECT_NE(k->code_l2, nullptr);
    EXPECT_NE(k->code_l1, nullptr);
  }
  for (const char* isa : {"", "AVX2", "sse", "neon"}) EXPECT_EQ(Sq8KernelsFor(isa), nullptr) << isa;
  EXPECT_EQ(Sq8KernelsFor(nullptr), nullptr);
  EXPECT_STREQ(Sq8KernelsDispatched().isa, Kernels().isa);
  if (KernelsFor("avx2") != nullptr) {
    EXPECT_NE(Sq8KernelsFor("avx2")->dot, Sq8KernelsFor("scalar")->dot);
  }
}

int ChildChecksSq8Isa(const char* cap, const char* want) {
  setenv("VECEXT_ISA", cap, 1);
  return std::strcmp(Sq8KernelsDispatched().isa, want) == 0 ? 0 : 1;
}

TEST(Sq8DispatchDeathTest, VecextIsaCapsTheChoice) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(ChildChecksSq8Isa("scalar", "scalar")), ::testing::ExitedWithCode(0), "");
  const char* avx2 = KernelsFor("avx2") != nullptr ? "avx2" : "scalar";
  EXPECT_EXIT(std::exit(ChildChecksSq8Isa("avx2", avx2)), ::testing::ExitedWithCode(0), "");
}

// --- training, params, encoding -----------------------------------------------

struct OwnedParams {
  std::vector<float> lo, scale;
  Sq8Params View() const { return Sq8Params{static_cast<std::uint32_t>(lo.size()), lo.data(), scale.data()}; }
};

Status Train(const std::vector<const float*>& rows, std::uint32_t dim, Metric metric, OwnedParams* out) {
  out->lo.assign(dim, kNaN);
  out->scale.assign(dim, kNaN);
  return Sq8Train(rows.data(), rows.size(), dim, metric, out->lo.data(), out->scale.data());
}

// Row-major vectors.
struct Dataset {
  std::size_t dim = 0;
  std::vector<float> data;
  std::size_t Count() const { return data.size() / dim; }
  const float* Row(std::size_t i) const { return data.data() + i * dim; }
  float* Row(std::size_t i) { return data.data() + i * dim; }
  std::vector<const float*> Rows(std::size_t from, std::size_t count) const {
    std::vector<const float*> r;
    for (std::size_t i = from; i < from + count; i++) r.push_back(Row(i));
    return r;
  }
};

void FillUniform(std::mt19937& rng, Dataset& d, std::size_t count, float lo, float hi) {
  for (std::size_t k = 0; k < count * d.dim; k++) d.data.push_back(std::uniform_real_distribution<float>(lo, hi)(rng));
}

TEST(Sq8Train, ConstantAndDegenerateDimensions) {
  const std::uint32_t dim = 5;
  std::vector<std::vector<float>> v = {{1, 2, 0, -7, 3}, {1, 4, 0, -7, 3}, {1, 3, 0, -7, 3.0000002f}};
  std::vector<const float*> rows;
  for (auto& x : v) rows.push_back(x.data());
  {
    OwnedParams p;
    ASSERT_TRUE(Train(rows, dim, Metric::kL2, &p).ok());
    EXPECT_EQ(p.lo[0], 1.0f);
    EXPECT_EQ(p.scale[0], 0.0f);
    EXPECT_EQ(p.lo[1], 2.0f);
    EXPECT_FLOAT_EQ(p.scale[1], 2.0f / 255);
    EXPECT_EQ(p.lo[2], 0.0f);
    EXPECT_EQ(p.scale[2], 0.0f);
    EXPECT_EQ(p.lo[3], -7.0f);
    EXPECT_EQ(p.scale[3], 0.0f);
    EXPECT_EQ(p.lo[4], 3.0f);
    EXPECT_GT(p.scale[4], 0.0f);  // a range of one ulp
    std::vector<std::uint8_t> codes(dim);
    Sq8ElementInfo info;
    for (auto& x : v) {
      ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL2, x.data(), codes.data(), &info).ok());
      EXPECT_EQ(codes[0], 0);
      EXPECT_EQ(codes[2], 0);
      EXPECT_EQ(codes[3], 0);
      EXPECT_TRUE(std::isfinite(info.err_l2) && std::isfinite(info.err_l1) && std::isfinite(info.sq_norm));
      EXPECT_LE(info.err_l2, 1.0f / 255 + 1e-6f);  // dimension 1: at most half a step
    }
    // A value off a constant dimension: all of its distance is error.
    std::vector<float> off = {2, 3, 0, -7, 3};
    ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL2, off.data(), codes.data(), &info).ok());
    EXPECT_GE(info.err_l2, 1.0f);
    EXPECT_GE(info.err_l1, 1.0f);
  }
  // One vector: every dimension is constant.
  OwnedParams p;
  ASSERT_TRUE(Train({v[0].data()}, dim, Metric::kL2, &p).ok());
  for (std::uint32_t i = 0; i < dim; i++) {
    EXPECT_EQ(p.lo[i], v[0][i]);
    EXPECT_EQ(p.scale[i], 0.0f);
  }
}

TEST(Sq8Train, RejectsBadInput) {
  std::vector<float> good = {1, 2, 3}, nan = {1, kNaN, 3}, inf = {1, 2, -kInfF}, zero = {0, 0, 0};
  OwnedParams p;
  EXPECT_EQ(Train({good.data(), nan.data()}, 3, Metric::kL2, &p).code, StatusCode::kNotFinite);
  EXPECT_EQ(Train({inf.data()}, 3, Metric::kL1, &p).code, StatusCode::kNotFinite);
  EXPECT_EQ(Train({good.data(), zero.data()}, 3, Metric::kCosine, &p).code, StatusCode::kInvalidInput);
  EXPECT_TRUE(Train({good.data(), zero.data()}, 3, Metric::kL2, &p).ok());
  EXPECT_EQ(Train({}, 3, Metric::kL2, &p).code, StatusCode::kInvalidInput);
  EXPECT_EQ(Train({good.data()}, 0, Metric::kL2, &p).code, StatusCode::kInvalidInput);
  std::vector<float> big(kSq8MaxDim + 1, 1.0f);
  EXPECT_EQ(Train({big.data()}, kSq8MaxDim + 1, Metric::kL2, &p).code, StatusCode::kInvalidInput);
}

TEST(Sq8Train, ExtremeRangesStayFinite) {
  const float m = FLT_MAX;
  std::vector<float> a = {-m, 0, -1e-40f}, b = {m, 1e-44f, 1e-40f};
  OwnedParams p;
  ASSERT_TRUE(Train({a.data(), b.data()}, 3, Metric::kL2, &p).ok());
  for (int i = 0; i < 3; i++) {
    EXPECT_TRUE(std::isfinite(p.lo[i] + 255.0f * p.scale[i])) << i;
    EXPECT_GE(p.scale[i], 0.0f) << i;
  }
  std::vector<std::uint8_t> codes(3);
  Sq8ElementInfo info;
  for (auto* x : {&a, &b}) {
    ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL1, x->data(), codes.data(), &info).ok());
  }
  std::vector<unsigned char> blob(Sq8SerializedBytes(3));
  ASSERT_TRUE(Sq8Serialize(p.View(), blob.data(), blob.size()).ok());
  std::vector<float> lo(3), scale(3);
  EXPECT_TRUE(Sq8Deserialize(blob.data(), blob.size(), lo.data(), scale.data()).ok());
}

TEST(Sq8Train, MinMaxCoversTheSample) {
  Dataset d{17, {}};
  std::mt19937 rng(3);
  for (int i = 0; i < 300 * 17; i++) d.data.push_back(std::normal_distribution<float>(1.0f, 3.0f)(rng));
  OwnedParams p;
  ASSERT_TRUE(Train(d.Rows(0, 300), 17, Metric::kL2, &p).ok());
  for (std::size_t i = 0; i < 17; i++) {
    float mn = HUGE_VALF, mx = -HUGE_VALF;
    for (std::size_t j = 0; j < 300; j++) {
      mn = std::min(mn, d.Row(j)[i]);
      mx = std::max(mx, d.Row(j)[i]);
    }
    EXPECT_EQ(p.lo[i], mn);
    EXPECT_NEAR(p.lo[i] + 255.0 * p.scale[i], mx, 1e-5 * (std::fabs(mx) + std::fabs(mn)));
  }
}

// Streaming training gives the same params as Sq8Train, and a failed Add
// leaves the trainer usable.
TEST(Sq8Train, StreamingMatchesBatch) {
  for (Metric metric : kMetrics) {
    Dataset d{33, {}};
    std::mt19937 rng(17);
    FillUniform(rng, d, 100, -4.0f, 9.0f);
    OwnedParams batch;
    ASSERT_TRUE(Train(d.Rows(0, 100), 33, metric, &batch).ok());
    std::vector<float> lo(33), scale(33);
    Sq8Trainer t;
    ASSERT_TRUE(Sq8TrainerInit(&t, 33, metric, lo.data(), scale.data()).ok());
    EXPECT_EQ(Sq8TrainerFinish(&t).code, StatusCode::kInvalidInput);  // nothing added yet
    std::vector<float> bad(33, 1.0f);
    bad[32] = kNaN;
    for (std::size_t j = 0; j < 100; j++) {
      ASSERT_TRUE(Sq8TrainerAdd(&t, d.Row(j)).ok());
      if (j == 50) {
        EXPECT_EQ(Sq8TrainerAdd(&t, bad.data()).code, StatusCode::kNotFinite);
      }
    }
    EXPECT_EQ(t.count, 100u);
    ASSERT_TRUE(Sq8TrainerFinish(&t).ok());
    EXPECT_EQ(lo, batch.lo) << MetricName(metric);
    EXPECT_EQ(scale, batch.scale) << MetricName(metric);
    // Every training vector encodes within half a step per dimension.
    std::vector<std::uint8_t> codes(33);
    Sq8ElementInfo info;
    for (std::size_t j = 0; j < 100; j++) {
      ASSERT_TRUE(Sq8Encode(batch.View(), metric, d.Row(j), codes.data(), &info).ok());
      double half = 0.0;
      for (std::size_t i = 0; i < 33; i++) half += 0.25 * static_cast<double>(scale[i]) * scale[i];
      EXPECT_LE(info.err_l2, std::sqrt(half) * (1 + 1e-5) + 1e-7) << MetricName(metric);
    }
  }
}

TEST(Sq8Encode, RoundTripWithinHalfAStepAndClamps) {
  for (std::size_t dim : {1, 7, 16, 100, 785}) {
    Dataset d{dim, {}};
    std::mt19937 rng(static_cast<std::uint32_t>(dim));
    for (std::size_t k = 0; k < 200 * dim; k++) d.data.push_back(std::uniform_real_distribution<float>(-3, 5)(rng));
    OwnedParams p;
    ASSERT_TRUE(Train(d.Rows(0, 200), static_cast<std::uint32_t>(dim), Metric::kL2, &p).ok());
    std::vector<std::uint8_t> codes(dim);
    std::vector<float> dec(dim);
    Sq8ElementInfo info;
    for (std::size_t j = 0; j < 200; j++) {
      const float* x = d.Row(j);
      ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL2, x, codes.data(), &info).ok());
      Sq8Decode(p.View(), codes.data(), dec.data());
      long double e2 = 0, e1 = 0, n2 = 0;
      for (std::size_t i = 0; i < dim; i++) {
        const long double xh = static_cast<long double>(p.lo[i]) + static_cast<long double>(p.scale[i]) * codes[i];
        const long double e = x[i] - xh;
        ASSERT_LE(std::fabs(static_cast<double>(e)), 0.5 * p.scale[i] * (1 + 1e-6)) << "dim " << dim << " i " << i;
        ASSERT_NEAR(dec[i], static_cast<double>(xh), 1e-6 * (std::fabs(static_cast<double>(xh)) + 1));
        e2 += e * e;
        e1 += std::fabs(e);
        n2 += xh * xh;
      }
      // The side data bounds the true errors, tightly.
      EXPECT_GE(info.err_l2, static_cast<double>(std::sqrt(e2)));
      const double slack = 1e-12 * static_cast<double>(std::sqrt(n2));  // Sq8Encode's rounding allowance
      EXPECT_LE(info.err_l2, static_cast<double>(std::sqrt(e2)) * (1 + 1e-6) + slack);
      EXPECT_GE(info.err_l1, static_cast<double>(e1));
      EXPECT_LE(info.err_l1, static_cast<double>(e1) * (1 + 1e-6) + slack * static_cast<double>(dim));
      EXPECT_NEAR(info.sq_norm, static_cast<double>(n2), 1e-6 * static_cast<double>(n2));
    }
    // Values outside the trained range clamp to the end codes.
    std::vector<float> out(dim);
    for (std::size_t i = 0; i < dim; i++) out[i] = (i % 2) ? 1e6f : -1e6f;
    ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL2, out.data(), codes.data(), &info).ok());
    for (std::size_t i = 0; i < dim; i++) EXPECT_EQ(codes[i], (i % 2) ? 255 : 0);
    EXPECT_GE(info.err_l2, 0.99e6 * std::sqrt(static_cast<double>(dim)));
  }
}

TEST(Sq8Encode, RejectsNonFiniteAndZeroCosine) {
  std::vector<float> lo = {0, 0}, scale = {1, 1};
  const Sq8Params p{2, lo.data(), scale.data()};
  std::uint8_t codes[2];
  Sq8ElementInfo info;
  const float nan[2] = {1, kNaN}, inf[2] = {kInfF, 1}, zero[2] = {0, -0.0f};
  for (Metric m : kMetrics) {
    EXPECT_EQ(Sq8Encode(p, m, nan, codes, &info).code, StatusCode::kNotFinite);
    EXPECT_EQ(Sq8Encode(p, m, inf, codes, &info).code, StatusCode::kNotFinite);
    EXPECT_EQ(Sq8Encode(p, m, zero, codes, &info).code,
              m == Metric::kCosine ? StatusCode::kInvalidInput : StatusCode::kOk);
  }
  std::vector<float> buf(2);
  Sq8Query q;
  for (Metric m : kMetrics) {
    EXPECT_EQ(Sq8PrepareQuery(p, m, nan, buf.data(), &q).code, StatusCode::kNotFinite);
    EXPECT_EQ(Sq8PrepareQuery(p, m, zero, buf.data(), &q).code,
              m == Metric::kCosine ? StatusCode::kInvalidInput : StatusCode::kOk);
  }
}

// Under cosine, Sq8Encode normalizes the raw vector itself: the codes are
// those of the normalized vector, whatever the raw vector's length.
TEST(Sq8Encode, CosineNormalizes) {
  const std::size_t dim = 64;
  std::mt19937 rng(5);
  Dataset d{dim, {}};
  for (std::size_t k = 0; k < 100 * dim; k++) d.data.push_back(std::normal_distribution<float>()(rng));
  OwnedParams p;
  ASSERT_TRUE(Train(d.Rows(0, 100), dim, Metric::kCosine, &p).ok());
  for (std::size_t i = 0; i < dim; i++) {
    EXPECT_GE(p.lo[i], -1.0f);
    EXPECT_LE(p.lo[i] + 255 * p.scale[i], 1.0f + 1e-6f);
  }
  std::vector<std::uint8_t> c1(dim), c2(dim), c3(dim);
  Sq8ElementInfo i1, i2, i3;
  std::vector<float> x(d.Row(7), d.Row(7) + dim), x1000(dim), xn(x);
  for (std::size_t i = 0; i < dim; i++) x1000[i] = x[i] * 1024.0f;
  ASSERT_TRUE(NormalizeInPlace(xn.data(), dim));
  ASSERT_TRUE(Sq8Encode(p.View(), Metric::kCosine, x.data(), c1.data(), &i1).ok());
  ASSERT_TRUE(Sq8Encode(p.View(), Metric::kCosine, x1000.data(), c2.data(), &i2).ok());
  ASSERT_TRUE(Sq8Encode(p.View(), Metric::kL2, xn.data(), c3.data(), &i3).ok());
  EXPECT_EQ(c1, c2);
  EXPECT_EQ(c1, c3);
  EXPECT_NEAR(i1.sq_norm, 1.0, 0.01);
  EXPECT_NEAR(i1.err_l2, i3.err_l2, 1e-6);
}

// --- serialization --------------------------------------------------------------

TEST(Sq8Serialize, RoundTripAndByteLayout) {
  std::vector<float> lo = {1.0f, -2.5f, 0.0f}, scale = {0.5f, 0.0f, 1e-30f};
  const Sq8Params p{3, lo.data(), scale.data()};
  std::vector<unsigned char> blob(Sq8SerializedBytes(3));
  ASSERT_EQ(blob.size(), 16u + 24u);
  ASSERT_TRUE(Sq8Serialize(p, blob.data(), blob.size()).ok());
  const unsigned char header[16] = {'S', 'Q', '8', 'P', 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(blob.data(), header, 16), 0);
  // 1.0f = 0x3f800000 little-endian; -2.5f = 0xc0200000; 0.5f = 0x3f000000.
  const unsigned char lo0[4] = {0x00, 0x00, 0x80, 0x3f}, lo1[4] = {0x00, 0x00, 0x20, 0xc0},
                      s0[4] = {0x00, 0x00, 0x00, 0x3f};
  EXPECT_EQ(std::memcmp(blob.data() + 16, lo0, 4), 0);
  EXPECT_EQ(std::memcmp(blob.data() + 20, lo1, 4), 0);
  EXPECT_EQ(std::memcmp(blob.data() + 28, s0, 4), 0);
  std::uint32_t dim = 0;
  ASSERT_TRUE(Sq8BlobDim(blob.data(), blob.size(), &dim).ok());
  EXPECT_EQ(dim, 3u);
  std::vector<float> lo2(3), scale2(3);
  ASSERT_TRUE(Sq8Deserialize(blob.data(), blob.size(), lo2.data(), scale2.data()).ok());
  EXPECT_EQ(lo2, lo);
  EXPECT_EQ(scale2, scale);
  EXPECT_EQ(Sq8Serialize(p, blob.data(), blob.size() - 1).code, StatusCode::kInvalidInput);
}

TEST(Sq8Serialize, LargeDimensions) {
  for (std::uint32_t dim : {2000u, 8000u, kSq8MaxDim}) {
    std::vector<float> lo(dim), scale(dim);
    for (std::uint32_t i = 0; i < dim; i++) {
      lo[i] = -static_cast<float>(i) / 7.0f;
      scale[i] = static_cast<float>(i % 13) / 255.0f;
    }
    std::vector<unsigned char> blob(Sq8SerializedBytes(dim));
    ASSERT_TRUE(Sq8Serialize(Sq8Params{dim, lo.data(), scale.data()}, blob.data(), blob.size()).ok());
    std::vector<float> lo2(dim), scale2(dim);
    ASSERT_TRUE(Sq8Deserialize(blob.data(), blob.size(), lo2.data(), scale2.data()).ok());
    EXPECT_EQ(lo2, lo);
    EXPECT_EQ(scale2, scale);
  }
}

TEST(Sq8Serialize, RejectsCorruptBlobs) {
  std::vector<float> lo = {1.0f, 2.0f}, scale = {0.5f, 0.25f};
  std::vector<unsigned char> good(Sq8SerializedBytes(2));
  ASSERT_TRUE(Sq8Serialize(Sq8Params{2, lo.data(), scale.data()}, good.data(), good.size()).ok());
  std::vector<float> l(2), s(2);
  auto check = [&](const std::function<void(std::vector<unsigned char>&)>& damage, std::size_t size) {
    std::vector<unsigned char> b = good;
    damage(b);
    return Sq8Deserialize(b.data(), size, l.data(), s.data()).code;
  };
  auto put_float = [](std::vector<unsigned char>& b, std::size_t off, float f) { std::memcpy(&b[off], &f, 4); };
  EXPECT_EQ(check([](auto&) {}, good.size()), StatusCode::kOk);
  EXPECT_EQ(check([](auto&) {}, good.size() - 1), StatusCode::kCorrupted);
  EXPECT_EQ(check([](auto&) {}, 15), StatusCode::kCorrupted);
  EXPECT_EQ(check([](auto& b) { b[0] = 'X'; }, good.size()), StatusCode::kCorrupted);
  EXPECT_EQ(check([](auto& b) { b[4] = 2; }, good.size()), StatusCode::kCorrupted);
  EXPECT_EQ(check([](auto& b) { b[8] = 0; }, good.size()), StatusCode::kCorrupted);   // dim 0
  EXPECT_EQ(check([](auto& b) { b[10] = 1; }, good.size()), StatusCode::kCorrupted);  // dim 65538
  EXPECT_EQ(check([](auto& b) { b[12] = 1; }, good.size()), StatusCode::kCorrupted);  // reserved
  EXPECT_EQ(check([&](auto& b) { put_float(b, 16, kNaN); }, good.size()), StatusCode::kCorrupted);
  EXPECT_EQ(check([&](auto& b) { put_float(b, 24, -1.0f); }, good.size()), StatusCode::kCorrupted);
  EXPECT_EQ(check([&](auto& b) { put_float(b, 28, kInfF); }, good.size()), StatusCode::kCorrupted);
  EXPECT_EQ(check([&](auto& b) { put_float(b, 28, FLT_MAX); }, good.size()), StatusCode::kCorrupted);
}

// --- distances and bounds --------------------------------------------------------

// The SQL operator's value, computed as src/pg/vector_ops.cpp does.
double SqlDistance(const DistanceKernels& k, Metric metric, const float* a, const float* b, std::size_t n) {
  switch (metric) {
    case Metric::kL2:
      return std::sqrt(static_cast<double>(k.l2_squared(a, b, n)));
    case Metric::kInnerProduct:
      return static_cast<double>(-k.inner_product(a, b, n));
    case Metric::kCosine: {
      const float dot = k.inner_product(a, b, n);
      const float na = k.squared_norm(a, n);
      const float nb = k.squared_norm(b, n);
      double sim = static_cast<double>(dot) / std::sqrt(static_cast<double>(na) * static_cast<double>(nb));
      if (sim > 1.0) {
        sim = 1.0;
      } else if (sim < -1.0) {
        sim = -1.0;
      }
      return 1.0 - sim;
    }
    case Metric::kL1:
      return static_cast<double>(k.l1(a, b, n));
  }
  return 0.0;
}

// Postgres sorts NaN above every number (float8 btree semantics).
bool SqlLessOrEqual(double a, double b) { return std::isnan(b) || (!std::isnan(a) && a <= b); }

// The exact index distance between q and the decoded vector of codes c
// (long double; q normalized under cosine).
long double ExactIndexDistance(Metric metric, const Sq8Params& p, const float* q, const std::uint8_t* c) {
  const std::size_t n = p.dim;
  long double s = 0, qq = 0;
  for (std::size_t i = 0; i < n; i++) qq += static_cast<long double>(q[i]) * q[i];
  for (std::size_t i = 0; i < n; i++) {
    const long double a = q[i];
    const long double b = static_cast<long double>(p.lo[i]) + static_cast<long double>(p.scale[i]) * c[i];
    switch (metric) {
      case Metric::kL2:
        s += (a - b) * (a - b);
        break;
      case Metric::kInnerProduct:
      case Metric::kCosine:
        s += a * b;
        break;
      case Metric::kL1:
        s += std::fabs(a - b);
        break;
    }
  }
  if (metric == Metric::kInnerProduct) return -s;
  if (metric == Metric::kCosine) return 1 - s / std::sqrt(qq);
  return s;
}

// How far Sq8Distance may be from the exact value (the claims of
// docs/quantization.md that Sq8Bounds relies on).
double ApproxTolerance(const Sq8Query& q, double exact) {
  switch (q.metric) {
    case Metric::kL2: {
      const double d = std::sqrt(std::max(0.0, exact));
      return q.kernel_gamma * exact + 2.0 * d * q.kernel_err + q.kernel_err * q.kernel_err + q.tiny;
    }
    case Metric::kL1:
      return q.kernel_gamma * exact + q.kernel_err + q.tiny;
    case Metric::kInnerProduct:
    case Metric::kCosine:
      return q.kernel_err + q.tiny;
  }
  return 0.0;
}

// A distribution of test vectors: fills a dataset of `count` vectors.
struct Distribution {
  const char* name;
  std::function<void(std::mt19937&, Dataset&, std::size_t count)> fill;
  bool typical;  // bounds should be tight (not extreme magnitudes)
};

void FillClustered(std::mt19937& rng, Dataset& d, std::size_t count, float spread, float offset) {
  std::vector<float> centers(8 * d.dim);
  for (auto& c : centers) c = offset + std::normal_distribution<float>(0.0f, 1.0f)(rng);
  for (std::size_t j = 0; j < count; j++) {
    const float* c = centers.data() + (rng() % 8) * d.dim;
    for (std::size_t i = 0; i < d.dim; i++) d.data.push_back(c[i] + spread * std::normal_distribution<float>()(rng));
  }
}

std::vector<Distribution> Distributions() {
  auto uniform = [](float lo, float hi) {
    return [lo, hi](std::mt19937& rng, Dataset& d, std::size_t count) {
      for (std::size_t k = 0; k < count * d.dim; k++)
        d.data.push_back(std::uniform_real_distribution<float>(lo, hi)(rng));
    };
  };
  return {
      {"uniform", uniform(-1.0f, 1.0f), true},
      {"clustered", [](std::mt19937& rng, Dataset& d, std::size_t count) { FillClustered(rng, d, count, 0.1f, 0.0f); },
       true},
      {"offset", [](std::mt19937& rng, Dataset& d, std::size_t count) { FillClustered(rng, d, count, 0.05f, 1000.0f); },
       true},
      {"pixels",
       [](std::mt19937& rng, Dataset& d, std::size_t count) {
         for (std::size_t k = 0; k < count * d.dim; k++) {
           d.data.push_back(static_cast<float>(rng() % 3 == 0 ? 0 : std::uniform_int_distribution<int>(0, 255)(rng)));
         }
       },
       true},
      {"outliers",  // 0.5% of elements 100x larger: some clamp
       [](std::mt19937& rng, Dataset& d, std::size_t count) {
         FillClustered(rng, d, count, 0.2f, 0.0f);
         for (auto& v : d.data) {
           if (rng() % 200 == 0) v *= 100.0f;
         }
       },
       true},
      {"grid",  // every value decodes exactly: err is 0, only rounding allowances remain
       [](std::mt19937& rng, Dataset& d, std::size_t count) {
         std::vector<float> lo(d.dim), step(d.dim);
         for (std::size_t i = 0; i < d.dim; i++) {
           lo[i] = std::ldexp(static_cast<float>(std::uniform_int_distribution<int>(-64, 64)(rng)), -4);
           step[i] = std::ldexp(1.0f, -std::uniform_int_distribution<int>(3, 8)(rng));
         }
         for (std::size_t j = 0; j < count; j++) {
           for (std::size_t i = 0; i < d.dim; i++) {
             const int k = j == 0 ? 0 : j == 1 ? 255 : std::uniform_int_distribution<int>(0, 255)(rng);
             d.data.push_back(lo[i] + step[i] * static_cast<float>(k));
           }
         }
       },
       true},
      {"huge", uniform(-1e15f, 1e15f), false},
      {"tiny", uniform(-1e-20f, 1e-20f), false},
      {"mixed_exponents",
       [](std::mt19937& rng, Dataset& d, std::size_t count) {
         std::vector<float> mags(d.dim);
         for (auto& m : mags) m = std::ldexp(1.0f, std::uniform_int_distribution<int>(-30, 30)(rng));
         for (std::size_t j = 0; j < count; j++) {
           for (std::size_t i = 0; i < d.dim; i++) {
             d.data.push_back(mags[i] * std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng));
           }
         }
       },
       false},
  };
}

struct BoundStats {
  std::size_t checked = 0;
  double max_excess_width = 0.0;  // (upper - lower) / (2 err + scale) - 1
};

// Trains on the first vectors of a dataset, encodes the rest, and checks
// every query against every encoded vector: the approximate distance against
// the exact one of the decoded vector, and the bounds against the SQL value
// under every ISA's float kernels.
// With pre_normalize (cosine), rows and queries are passed to Sq8Encode and
// Sq8PrepareQuery normalized by NormalizeInPlace, as the index glue may do;
// the SQL value is still computed from the original vectors.
void CheckBounds(const Distribution& dist, std::size_t dim, Metric metric, std::size_t n_train, std::size_t n_data,
                 std::size_t n_query, std::uint32_t seed, BoundStats* stats, bool pre_normalize = false) {
  SCOPED_TRACE(::testing::Message() << dist.name << " dim=" << dim << " metric=" << MetricName(metric));
  std::mt19937 rng(seed);
  Dataset d{dim, {}};
  dist.fill(rng, d, n_train + n_data + n_query);
  if (metric == Metric::kCosine) {  // zero vectors are not indexed under cosine
    for (std::size_t j = 0; j < d.Count(); j++) {
      if (std::all_of(d.Row(j), d.Row(j) + dim, [](float v) { return v == 0.0f; })) d.Row(j)[0] = 1.0f;
    }
  }
  // Some queries are data vectors and near-duplicates of them: distance ~0.
  const std::size_t q0 = n_train + n_data;
  std::copy(d.Row(n_train), d.Row(n_train) + dim, d.Row(q0));
  if (n_query > 1) {
    for (std::size_t i = 0; i < dim; i++) d.Row(q0 + 1)[i] = std::nextafter(d.Row(n_train + 1)[i], HUGE_VALF);
  }
  OwnedParams p;
  ASSERT_TRUE(Train(d.Rows(0, n_train), static_cast<std::uint32_t>(dim), metric, &p).ok());
  std::vector<std::uint8_t> codes(n_data * dim);
  std::vector<Sq8ElementInfo> infos(n_data);
  std::vector<float> normalized(dim);
  // The vector as passed to Sq8Encode / Sq8PrepareQuery.
  auto as_passed = [&](const float* v) {
    if (!pre_normalize) return v;
    std::copy(v, v + dim, normalized.begin());
    EXPECT_TRUE(NormalizeInPlace(normalized.data(), dim));
    return static_cast<const float*>(normalized.data());
  };
  for (std::size_t j = 0; j < n_data; j++) {
    ASSERT_TRUE(Sq8Encode(p.View(), metric, as_passed(d.Row(n_train + j)), codes.data() + j * dim, &infos[j]).ok());
  }
  std::vector<const DistanceKernels*> sql_kernels;
  for (const char* isa : kIsas) {
    if (KernelsFor(isa) != nullptr) sql_kernels.push_back(KernelsFor(isa));
  }
  std::vector<float> buffer(Sq8QueryFloats(static_cast<std::uint32_t>(dim)));
  for (const char* isa : kIsas) {
    const Sq8Kernels* k = Sq8KernelsFor(isa);
    if (k == nullptr) continue;
    for (std::size_t qi = 0; qi < n_query; qi++) {
      const float* q = d.Row(q0 + qi);
      Sq8Query query;
      ASSERT_TRUE(Sq8PrepareQueryWith(*k, p.View(), metric, as_passed(q), buffer.data(), &query).ok());
      for (std::size_t j = 0; j < n_data; j++) {
        const std::uint8_t* c = codes.data() + j * dim;
        const float* x = d.Row(n_train + j);
        const float approx = Sq8Distance(query, c);
        const Sq8DistanceBounds b = Sq8Bounds(query, approx, infos[j]);
        ASSERT_LE(b.lower, b.upper) << "isa " << isa << " q " << qi << " x " << j;
        for (const DistanceKernels* sk : sql_kernels) {
          const double sql = SqlDistance(*sk, metric, q, x, dim);
          ASSERT_TRUE(SqlLessOrEqual(b.lower, sql))
              << "lower bound " << b.lower << " > SQL " << sql << " (approx " << approx << ", err_l2 "
              << infos[j].err_l2 << ") isa " << isa << " sql isa " << sk->isa << " q " << qi << " x " << j;
          ASSERT_TRUE(SqlLessOrEqual(sql, b.upper) || std::isnan(sql))
              << "upper bound " << b.upper << " < SQL " << sql << " (approx " << approx << ") isa " << isa
              << " sql isa " << sk->isa << " q " << qi << " x " << j;
          stats->checked++;
        }
        // The approximate distance is the index distance of the decoded
        // vector, within the error the bounds allow for.
        const double exact = static_cast<double>(ExactIndexDistance(metric, p.View(), q, c));
        if (std::isfinite(approx) && !query.unbounded) {
          ASSERT_LE(std::fabs(approx - exact), ApproxTolerance(query, exact))
              << "approx " << approx << " exact " << exact << " isa " << isa << " q " << qi << " x " << j;
        }
        if (!dist.typical) continue;
        // And the bounds are tight: 2 err wide, plus the rounding allowances.
        const double err = metric == Metric::kL1             ? infos[j].err_l1
                           : metric == Metric::kInnerProduct ? query.q_norm * infos[j].err_l2
                                                             : infos[j].err_l2;
        const double sql = SqlDistance(Kernels(), metric, q, x, dim);
        const double scale = std::fabs(sql) + err + query.magnitude + 1e-30;
        const double excess = (b.upper - b.lower - 2.0 * err) / scale;
        const bool clamped =
            (metric == Metric::kCosine && b.upper == 2.0) || (metric != Metric::kInnerProduct && b.lower == 0.0);
        if (!clamped) {
          stats->max_excess_width = std::max(stats->max_excess_width, excess);
          ASSERT_LE(excess, 0.01 + 8.0 * (static_cast<double>(dim) + 8.0) * kU)
              << "bounds [" << b.lower << ", " << b.upper << "] err " << err << " sql " << sql;
        }
      }
    }
  }
}

class Sq8BoundsTest : public ::testing::TestWithParam<Metric> {};

TEST_P(Sq8BoundsTest, AlwaysContainTheSqlValue) {
  const Metric metric = GetParam();
  BoundStats stats;
  std::uint32_t seed = 1;
  for (const Distribution& dist : Distributions()) {
    for (std::size_t dim : {1, 3, 17, 100, 768}) {
      CheckBounds(dist, dim, metric, 200, 60, 6, seed++, &stats);
      if (HasFatalFailure()) return;
      // Queries and rows from outside the training sample's range: clamped.
      CheckBounds(dist, dim, metric, 20, 60, 6, seed++, &stats);
      if (HasFatalFailure()) return;
      if (metric == Metric::kCosine && dist.typical) {
        CheckBounds(dist, dim, metric, 200, 60, 6, seed++, &stats, true);
        if (HasFatalFailure()) return;
      }
    }
  }
  std::printf("[ sq8 ] %s: %zu bound checks, max excess width %.3g\n", MetricName(metric), stats.checked,
              stats.max_excess_width);
}

TEST_P(Sq8BoundsTest, LargeDimensions) {
  BoundStats stats;
  for (std::size_t dim : {2000, 8000}) {
    CheckBounds(Distributions()[1], dim, GetParam(), 100, 20, 3, 77, &stats);
    if (HasFatalFailure()) return;
    CheckBounds(Distributions()[2], dim, GetParam(), 100, 20, 3, 78, &stats);
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Sq8Metric, Sq8BoundsTest, ::testing::ValuesIn(kMetrics),
                         [](const ::testing::TestParamInfo<Metric>& info) {
                           return std::string(MetricName(info.param));
                         });

// The bounds hold where they are tightest: the query is the row itself.
TEST(Sq8Bounds, ExactMatchAndSingleDimension) {
  for (Metric metric : kMetrics) {
    for (std::size_t dim : {1, 2, 33}) {
      std::mt19937 rng(static_cast<std::uint32_t>(dim));
      Dataset d{dim, {}};
      for (std::size_t k = 0; k < 50 * dim; k++) d.data.push_back(std::uniform_real_distribution<float>(0.1f, 1)(rng));
      OwnedParams p;
      ASSERT_TRUE(Train(d.Rows(0, 50), static_cast<std::uint32_t>(dim), metric, &p).ok());
      std::vector<std::uint8_t> c(dim);
      std::vector<float> buf(dim);
      for (std::size_t j = 0; j < 50; j++) {
        Sq8ElementInfo info;
        ASSERT_TRUE(Sq8Encode(p.View(), metric, d.Row(j), c.data(), &info).ok());
        Sq8Query q;
        ASSERT_TRUE(Sq8PrepareQuery(p.View(), metric, d.Row(j), buf.data(), &q).ok());
        const Sq8DistanceBounds b = Sq8Bounds(q, Sq8Distance(q, c.data()), info);
        const double sql = SqlDistance(Kernels(), metric, d.Row(j), d.Row(j), dim);
        EXPECT_LE(b.lower, sql) << MetricName(metric) << " dim " << dim;
        EXPECT_GE(b.upper, sql) << MetricName(metric) << " dim " << dim;
        if (metric != Metric::kInnerProduct) {
          EXPECT_GE(b.lower, 0.0);
        }
      }
    }
  }
}

// Vectors whose float sums overflow or underflow in the SQL operator get
// bounds that still hold (possibly trivial ones).
TEST(Sq8Bounds, OverflowAndUnderflowAreSafe) {
  const std::size_t dim = 64;
  for (Metric metric : kMetrics) {
    for (float mag : {1e19f, 3e18f, 1e-19f, 1e-22f, 1e-40f}) {
      std::mt19937 rng(9);
      Dataset d{dim, {}};
      for (std::size_t k = 0; k < 40 * dim; k++) {
        d.data.push_back(mag * std::uniform_real_distribution<float>(-1, 1)(rng));
      }
      OwnedParams p;
      ASSERT_TRUE(Train(d.Rows(0, 20), dim, metric, &p).ok());
      std::vector<float> buf(dim);
      for (std::size_t qi = 20; qi < 25; qi++) {
        Sq8Query q;
        ASSERT_TRUE(Sq8PrepareQuery(p.View(), metric, d.Row(qi), buf.data(), &q).ok());
        for (std::size_t j = 25; j < 40; j++) {
          std::vector<std::uint8_t> c(dim);
          Sq8ElementInfo info;
          ASSERT_TRUE(Sq8Encode(p.View(), metric, d.Row(j), c.data(), &info).ok());
          const Sq8DistanceBounds b = Sq8Bounds(q, Sq8Distance(q, c.data()), info);
          for (const char* isa : kIsas) {
            if (KernelsFor(isa) == nullptr) continue;
            const double sql = SqlDistance(*KernelsFor(isa), metric, d.Row(qi), d.Row(j), dim);
            EXPECT_TRUE(SqlLessOrEqual(b.lower, sql))
                << MetricName(metric) << " " << mag << " " << b.lower << " > " << sql;
            EXPECT_TRUE(std::isnan(sql) || sql <= b.upper)
                << MetricName(metric) << " " << mag << " " << b.upper << " < " << sql;
          }
        }
      }
    }
  }
}

// --- code-to-code distance --------------------------------------------------------

TEST(Sq8CodeDistance, MatchesDecodedDistance) {
  for (Metric metric : kMetrics) {
    for (std::size_t dim : {1, 5, 16, 31, 100, 768, 1537}) {
      std::mt19937 rng(static_cast<std::uint32_t>(dim) + 100u);
      Dataset d{dim, {}};
      FillClustered(rng, d, 80, 0.3f, 0.5f);
      OwnedParams p;
      ASSERT_TRUE(Train(d.Rows(0, 60), static_cast<std::uint32_t>(dim), metric, &p).ok());
      std::vector<std::uint8_t> ca(dim), cb(dim);
      for (std::size_t j = 60; j + 1 < 80; j++) {
        Sq8ElementInfo ia, ib;
        ASSERT_TRUE(Sq8Encode(p.View(), metric, d.Row(j), ca.data(), &ia).ok());
        ASSERT_TRUE(Sq8Encode(p.View(), metric, d.Row(j + 1), cb.data(), &ib).ok());
        long double want = 0, norm_a = 0, norm_b = 0;
        const Sq8Params pv = p.View();
        for (std::size_t i = 0; i < dim; i++) {
          const long double xa = static_cast<long double>(pv.lo[i]) + static_cast<long double>(pv.scale[i]) * ca[i];
          const long double xb = static_cast<long double>(pv.lo[i]) + static_cast<long double>(pv.scale[i]) * cb[i];
          norm_a += xa * xa;
          norm_b += xb * xb;
          switch (metric) {
            case Metric::kL2:
              want += (xa - xb) * (xa - xb);
              break;
            case Metric::kL1:
              want += std::fabs(xa - xb);
              break;
            case Metric::kInnerProduct:
              want -= xa * xb;
              break;
            case Metric::kCosine:
              want -= xa * xb;
              break;
          }
        }
        if (metric == Metric::kCosine) want += 1;
        const double tol = 1e-5 * static_cast<double>(norm_a + norm_b + std::fabs(want)) + 1e-6;
        for (const char* isa : kIsas) {
          const Sq8Kernels* k = Sq8KernelsFor(isa);
          if (k == nullptr) continue;
          const float got = Sq8CodeDistance(*k, p.View(), metric, ca.data(), ia, cb.data(), ib);
          ASSERT_NEAR(got, static_cast<double>(want), tol) << MetricName(metric) << " dim " << dim << " " << isa;
          // Symmetric, and 0 (or the self-similarity) against itself.
          EXPECT_EQ(got, Sq8CodeDistance(*k, p.View(), metric, cb.data(), ib, ca.data(), ia));
          const float self = Sq8CodeDistance(*k, p.View(), metric, ca.data(), ia, ca.data(), ia);
          if (metric == Metric::kL2 || metric == Metric::kL1) {
            EXPECT_EQ(self, 0.0f);
          }
          if (metric == Metric::kInnerProduct) {
            EXPECT_EQ(self, -ia.sq_norm);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace vecext
