// Metadata signatures and filter programs (see meta_filter.h for the format
// and the contract).
#include "core/meta_filter.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace vecext::meta {
namespace {

// ---------------------------------------------------------------------------
// Hashing (part of the on-disk format: never change these constants)

constexpr std::uint64_t kRootPath = 0x6A09E667F3BCC908ull;
constexpr std::uint64_t kKeySeed = 0xBB67AE8584CAA73Bull;
constexpr std::uint64_t kKindSeed[6] = {
    0x3C6EF372FE94F82Bull,  // null
    0xA54FF53A5F1D36F1ull,  // false
    0x510E527FADE682D1ull,  // true
    0x9B05688C2B3E6C1Full,  // string
    0x1F83D9ABFB41BD6Bull,  // number (not stored as a value entry)
    0x5BE0CD19137E2179ull,  // container
};

inline std::uint64_t Fmix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDull;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ull;
  k ^= k >> 33;
  return k;
}

inline std::uint64_t Load64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

inline std::uint16_t PathBits(PathHash path) { return static_cast<std::uint16_t>(path >> 48); }

inline std::uint32_t ValueEntry(PathHash path, ValueKind kind, const char* data, std::size_t len) {
  const std::uint64_t h = HashBytes(path ^ kKindSeed[static_cast<int>(kind)], data, data == nullptr ? 0 : len);
  return (static_cast<std::uint32_t>(PathBits(path)) << 16) | static_cast<std::uint16_t>(h);
}

// ---------------------------------------------------------------------------
// Little-endian access to unaligned signature bytes

inline std::uint16_t Get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t Get32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
inline std::uint64_t Get64(const std::uint8_t* p) { return Load64(p); }
inline void Put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void Put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void Put64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::size_t VarintSize(std::uint32_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}
std::size_t PutVarint(std::uint8_t* p, std::uint32_t v) {
  std::size_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<std::uint8_t>(v | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<std::uint8_t>(v);
  return n;
}
// Reads a varint of at most 3 bytes (values < 2^21) from [*p, end).
bool GetVarint(const std::uint8_t** p, const std::uint8_t* end, std::uint32_t* v) {
  std::uint32_t result = 0;
  for (int shift = 0; shift < 21; shift += 7) {
    if (*p >= end) return false;
    const std::uint8_t b = *(*p)++;
    result |= static_cast<std::uint32_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

inline std::size_t NumberEntrySize(bool wide) { return wide ? 10 : 6; }

// The stored value of number entry `e` (its tag, then a float64 or float32).
inline double EntryNumber(const std::uint8_t* e, bool wide) {
  if (wide) {
    const std::uint64_t bits = Get64(e + 2);
    double x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
  }
  const std::uint32_t bits = Get32(e + 2);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return static_cast<double>(f);
}

// A float stored for `d` (narrow signatures): the nearest float, or an
// infinity beyond the float range (never an out-of-range conversion).
inline float NarrowFloat(double d) {
  if (d > FLT_MAX) return std::numeric_limits<float>::infinity();
  if (d < -FLT_MAX) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

// The interval that holds the number a stored entry stands for.
inline void EntryInterval(double v, bool exact, bool wide, double* lo, double* hi) {
  if (exact) {
    *lo = *hi = v;
  } else if (wide) {
    *lo = std::nextafter(v, -std::numeric_limits<double>::infinity());
    *hi = std::nextafter(v, std::numeric_limits<double>::infinity());
  } else {
    const float f = static_cast<float>(v);  // v came from a float: exact
    *lo = static_cast<double>(std::nextafter(f, -std::numeric_limits<float>::infinity()));
    *hi = static_cast<double>(std::nextafter(f, std::numeric_limits<float>::infinity()));
  }
}

// Can some x in [a, b] and q in [c, e] satisfy x `op` q?
inline bool Possible(CmpOp op, double a, double b, double c, double e) {
  switch (op) {
    case CmpOp::kEq:
      return a <= e && c <= b;
    case CmpOp::kNe:
      return !(a == b && c == e && a == c);
    case CmpOp::kLt:
      return a < e;
    case CmpOp::kLe:
      return a <= e;
    case CmpOp::kGt:
      return b > c;
    case CmpOp::kGe:
      return b >= c;
  }
  return true;
}

// Sorts and removes duplicates from values[0..n); returns the new count.
std::uint32_t SortUnique(std::uint32_t* values, std::uint32_t n) {
  std::sort(values, values + n);
  return static_cast<std::uint32_t>(std::unique(values, values + n) - values);
}

// Sorts numbers by (tag, value) and removes duplicates.
std::uint32_t SortUniqueNumbers(std::uint16_t* tags, double* numbers, std::uint32_t n) {
  // Insertion sort on index pairs: n is at most a few hundred, and this
  // keeps the two arrays in step without temporary storage.
  for (std::uint32_t i = 1; i < n; i++) {
    const std::uint16_t t = tags[i];
    const double v = numbers[i];
    std::uint32_t j = i;
    while (j > 0 && (tags[j - 1] > t || (tags[j - 1] == t && numbers[j - 1] > v))) {
      tags[j] = tags[j - 1];
      numbers[j] = numbers[j - 1];
      j--;
    }
    tags[j] = t;
    numbers[j] = v;
  }
  std::uint32_t out = 0;
  for (std::uint32_t i = 0; i < n; i++) {
    if (out > 0 && tags[out - 1] == tags[i] && numbers[out - 1] == numbers[i]) continue;
    tags[out] = tags[i];
    numbers[out] = numbers[i];
    out++;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Hashes and paths

std::uint64_t HashBytes(std::uint64_t seed, const void* data, std::size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = Fmix(seed ^ 0x243F6A8885A308D3ull ^ (static_cast<std::uint64_t>(len) * 0x9E3779B97F4A7C15ull));
  std::size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    h ^= Fmix(Load64(p + i) + 0x452821E638D01377ull);
    h = (h << 27 | h >> 37) * 0x9E3779B97F4A7C15ull + 0x13198A2E03707344ull;
  }
  if (i < len) {
    std::uint64_t tail = 0;
    for (std::size_t k = len; k > i; k--) tail = (tail << 8) | p[k - 1];
    h ^= Fmix(tail + 0xA4093822299F31D0ull);
    h = (h << 27 | h >> 37) * 0x9E3779B97F4A7C15ull + 0x082EFA98EC4E6C89ull;
  }
  return Fmix(h);
}

PathHash RootPath() { return kRootPath; }

PathHash ChildPath(PathHash parent, const char* key, std::size_t len) {
  return HashBytes(parent ^ kKeySeed, key, key == nullptr ? 0 : len);
}

// ---------------------------------------------------------------------------
// Numbers

Status ParseNumber(const char* s, std::size_t len, Number* out) {
  constexpr int kMaxDigits = 40;
  const Status bad = Status::Error(StatusCode::kInvalidInput, "invalid number");
  if (s == nullptr) return bad;
  std::size_t i = 0;
  bool negative = false;
  if (i < len && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';

  char digits[kMaxDigits];
  int nd = 0;
  bool dropped = false;      // a non-zero digit beyond kMaxDigits was dropped
  long long exp_adjust = 0;  // value = digits * 10^(exp_adjust + exponent)
  bool any_digit = false;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    any_digit = true;
    const char d = static_cast<char>(s[i] - '0');
    if (nd == 0 && d == 0) continue;
    if (nd < kMaxDigits) {
      digits[nd++] = d;
    } else {
      exp_adjust++;
      dropped |= d != 0;
    }
  }
  if (i < len && s[i] == '.') {
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
      any_digit = true;
      const char d = static_cast<char>(s[i] - '0');
      if (nd == 0 && d == 0) {
        exp_adjust--;
      } else if (nd < kMaxDigits) {
        digits[nd++] = d;
        exp_adjust--;
      } else {
        dropped |= d != 0;
      }
    }
  }
  if (!any_digit) return bad;
  long long exponent = 0;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    bool exp_negative = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) exp_negative = s[i++] == '-';
    bool exp_digit = false;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
      exp_digit = true;
      if (exponent < 1000000000LL) exponent = exponent * 10 + (s[i] - '0');
    }
    if (!exp_digit) return bad;
    if (exp_negative) exponent = -exponent;
  }
  if (i != len) return bad;

  while (nd > 0 && digits[nd - 1] == 0) {
    nd--;
    exp_adjust++;
  }
  if (nd == 0) {
    *out = Number{0.0, true};
    return Status::Ok();
  }
  const long long e = exponent + exp_adjust;  // value = D * 10^e, D has nd digits
  const long long magnitude = nd + e;         // 10^(magnitude-1) <= |value| < 10^magnitude
  double value;
  if (magnitude > 311) {
    value = std::numeric_limits<double>::infinity();
  } else if (magnitude < -330) {
    value = 0.0;
  } else {
    char buf[kMaxDigits + 16];
    int n = 0;
    for (int k = 0; k < nd; k++) buf[n++] = static_cast<char>('0' + digits[k]);
    // No radix character: strtod reads this the same in every locale.
    std::snprintf(buf + n, sizeof buf - n, "e%lld", e);
    value = std::strtod(buf, nullptr);
  }
  // Exact: an integer below 10^15 (< 2^53), or D / 10^k = (D / 5^k) / 2^k
  // with 5^k dividing D and the quotient below 2^53 (0.5, 2.25, ...).
  bool exact = !dropped && e >= 0 && magnitude <= 15;
  if (!dropped && e < 0 && e >= -22 && nd <= 19) {
    std::uint64_t d = 0;
    for (int k = 0; k < nd; k++) d = d * 10 + static_cast<std::uint64_t>(digits[k]);
    std::uint64_t five = 1;
    for (long long k = 0; k < -e; k++) five *= 5;
    exact = d % five == 0 && d / five < (std::uint64_t{1} << 53);
  }
  if (negative && value != 0.0) value = -value;
  *out = Number{value, exact};
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Encoder

void SignatureEncoder::Init(const EncodeOptions& opt) {
  options = opt;
  options.max_bytes = std::clamp(options.max_bytes, kMinSignatureBytes, kMaxSignatureBytes);
  truncated = false;
  n_values = 0;
  n_containers = 0;
  n_numbers = 0;
}

Status SignatureEncoder::Add(const Item& item) {
  if (truncated) return Status::Ok();
  switch (item.kind) {
    case ValueKind::kNull:
    case ValueKind::kFalse:
    case ValueKind::kTrue:
    case ValueKind::kString: {
      if (n_values == kValueCap) {
        n_values = SortUnique(values, n_values);
        if (n_values == kValueCap) {
          truncated = true;
          return Status::Ok();
        }
      }
      values[n_values++] = ValueEntry(item.path, item.kind, item.data, item.len);
      return Status::Ok();
    }
    case ValueKind::kContainer: {
      if (item.path == kRootPath) return Status::Ok();  // the root always exists
      if (n_containers == kValueCap) {
        n_containers = SortUnique(containers, n_containers);
        if (n_containers == kValueCap) {
          truncated = true;
          return Status::Ok();
        }
      }
      containers[n_containers++] = ValueEntry(item.path, ValueKind::kContainer, nullptr, 0);
      return Status::Ok();
    }
    case ValueKind::kNumber: {
      Number num;
      Status st = ParseNumber(item.data, item.len, &num);
      if (!st.ok()) {
        truncated = true;
        return st;
      }
      double stored = num.value;
      bool exact = num.exact;
      if (!options.wide_numbers) {
        const float f = NarrowFloat(num.value);
        exact = exact && static_cast<double>(f) == num.value;
        stored = static_cast<double>(f);
      }
      if (n_numbers == kNumberCap) {
        n_numbers = SortUniqueNumbers(number_tags, numbers, n_numbers);
        if (n_numbers == kNumberCap) {
          truncated = true;
          return Status::Ok();
        }
      }
      number_tags[n_numbers] = static_cast<std::uint16_t>((PathBits(item.path) & 0xFFFE) | (exact ? 1 : 0));
      numbers[n_numbers] = stored;
      n_numbers++;
      return Status::Ok();
    }
  }
  truncated = true;
  return Status::Error(StatusCode::kInvalidInput, "invalid metadata item kind");
}

Status SignatureEncoder::Finish(std::uint8_t* out, std::size_t cap, std::size_t* len) {
  if (cap < options.max_bytes) return Status::Error(StatusCode::kInternal, "signature buffer too small");
  const std::uint8_t version = static_cast<std::uint8_t>(kFormatVersion << 4);
  if (truncated) {
    out[0] = version | kFlagTruncated;
    *len = 1;
    return Status::Ok();
  }
  n_values = SortUnique(values, n_values);
  n_numbers = SortUniqueNumbers(number_tags, numbers, n_numbers);
  n_containers = SortUnique(containers, n_containers);

  // A container entry only says that its path exists: keep it when nothing
  // else at that path says so.
  const std::uint32_t n_plain = n_values;
  for (std::uint32_t i = 0; i < n_containers; i++) {
    const std::uint32_t entry = containers[i];
    const std::uint16_t path16 = static_cast<std::uint16_t>(entry >> 16);
    const std::uint32_t* it = std::lower_bound(values, values + n_plain, static_cast<std::uint32_t>(path16) << 16);
    if (it != values + n_plain && (*it >> 16) == path16) continue;
    const std::uint16_t* nt = std::lower_bound(number_tags, number_tags + n_numbers,
                                               static_cast<std::uint16_t>(path16 & 0xFFFE));
    if (nt != number_tags + n_numbers && (*nt & 0xFFFE) == (path16 & 0xFFFE)) continue;
    if (n_values == kValueCap) {
      truncated = true;
      break;
    }
    values[n_values++] = entry;
  }
  if (!truncated) n_values = SortUnique(values, n_values);

  const bool wide = options.wide_numbers;
  const std::size_t size = 1 + VarintSize(n_values) + VarintSize(n_numbers) + 4 * std::size_t{n_values} +
                           NumberEntrySize(wide) * n_numbers;
  if (truncated || size > options.max_bytes) {
    truncated = true;
    out[0] = version | kFlagTruncated;
    *len = 1;
    return Status::Ok();
  }
  std::uint8_t* p = out;
  *p++ = version | (wide ? kFlagWide : 0);
  p += PutVarint(p, n_values);
  p += PutVarint(p, n_numbers);
  for (std::uint32_t i = 0; i < n_values; i++, p += 4) Put32(p, values[i]);
  for (std::uint32_t i = 0; i < n_numbers; i++) {
    Put16(p, number_tags[i]);
    p += 2;
    if (wide) {
      std::uint64_t bits;
      std::memcpy(&bits, &numbers[i], sizeof bits);
      Put64(p, bits);
      p += 8;
    } else {
      const float f = static_cast<float>(numbers[i]);  // exact: it came from a float
      std::uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      Put32(p, bits);
      p += 4;
    }
  }
  *len = static_cast<std::size_t>(p - out);
  return Status::Ok();
}

std::size_t EncodeNull(std::uint8_t* out, std::size_t cap) {
  if (cap < 1) return 0;
  out[0] = static_cast<std::uint8_t>(kFormatVersion << 4) | kFlagNull;
  return 1;
}

Status ParseSignature(const std::uint8_t* sig, std::size_t len, SignatureView* out) {
  const Status corrupted = Status::Error(StatusCode::kCorrupted, "invalid metadata signature");
  *out = SignatureView{kFlagTruncated, 0, 0, nullptr, nullptr};
  if (len == 0) return Status::Ok();  // no information
  const std::uint8_t head = sig[0];
  if ((head >> 4) != kFormatVersion) return corrupted;
  const std::uint8_t flags = head & 0x0F;
  if (flags & ~(kFlagTruncated | kFlagNull | kFlagWide)) return corrupted;
  if (flags & (kFlagTruncated | kFlagNull)) {
    if (len != 1 || (flags & kFlagWide) || flags == (kFlagTruncated | kFlagNull)) return corrupted;
    out->flags = flags;
    return Status::Ok();
  }
  const std::uint8_t* p = sig + 1;
  const std::uint8_t* end = sig + len;
  std::uint32_t nv, nn;
  if (!GetVarint(&p, end, &nv) || !GetVarint(&p, end, &nn)) return corrupted;
  const bool wide = (flags & kFlagWide) != 0;
  const std::size_t rest = static_cast<std::size_t>(end - p);
  if (nv > kMaxSignatureBytes || nn > kMaxSignatureBytes ||
      rest != 4 * std::size_t{nv} + NumberEntrySize(wide) * std::size_t{nn})
    return corrupted;
  out->flags = flags;
  out->n_values = nv;
  out->n_numbers = nn;
  out->values = p;
  out->numbers = p + 4 * std::size_t{nv};
  return Status::Ok();
}

namespace {

// ---------------------------------------------------------------------------
// Evaluation

std::uint32_t SubtreeSize(const Node& node) {
  return node.op == NodeOp::kAnd || node.op == NodeOp::kOr ? node.arg : 1;
}

bool SigHasValue(const SignatureView& v, std::uint32_t entry) {
  std::uint32_t lo = 0, hi = v.n_values;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi) / 2;
    const std::uint32_t e = Get32(v.values + 4 * std::size_t{mid});
    if (e == entry) return true;
    if (e < entry)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

// Index of the first number entry whose tag is >= tag.
std::uint32_t NumberLowerBound(const SignatureView& v, std::uint16_t tag, std::size_t esize) {
  std::uint32_t lo = 0, hi = v.n_numbers;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi) / 2;
    if (Get16(v.numbers + esize * mid) < tag)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bool SigHasPath(const SignatureView& v, std::uint16_t path16) {
  const std::uint32_t key = static_cast<std::uint32_t>(path16) << 16;
  std::uint32_t lo = 0, hi = v.n_values;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi) / 2;
    if (Get32(v.values + 4 * std::size_t{mid}) < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < v.n_values && (Get32(v.values + 4 * std::size_t{lo}) >> 16) == path16) return true;
  const std::size_t esize = NumberEntrySize((v.flags & kFlagWide) != 0);
  const std::uint16_t tag = static_cast<std::uint16_t>(path16 & 0xFFFE);
  const std::uint32_t i = NumberLowerBound(v, tag, esize);
  return i < v.n_numbers && (Get16(v.numbers + esize * i) & 0xFFFE) == tag;
}

bool SigNumCmp(const SignatureView& v, const Node& node) {
  const bool wide = (v.flags & kFlagWide) != 0;
  const std::size_t esize = NumberEntrySize(wide);
  const std::uint16_t tag = static_cast<std::uint16_t>(node.arg & 0xFFFE);
  for (std::uint32_t i = NumberLowerBound(v, tag, esize); i < v.n_numbers; i++) {
    const std::uint8_t* e = v.numbers + esize * i;
    const std::uint16_t t = Get16(e);
    if ((t & 0xFFFE) != tag) break;
    const double x = EntryNumber(e, wide);
    if (std::isnan(x)) return true;  // not written by us: cannot exclude
    double a, b;
    EntryInterval(x, (t & 1) != 0, wide, &a, &b);
    if (Possible(node.cmp, a, b, node.lo, node.hi)) return true;
  }
  return false;
}

// Evaluates the subtree at prog[i]: kAnd/kOr combine their children,
// constants are themselves, and `leaf(node)` says whether a kHasValue,
// kHasPath or kNumCmp leaf may hold. Shared by signatures and link codes.
template <class Leaf>
Match EvalTree(const Node* prog, std::uint32_t i, const Leaf& leaf) {
  const Node& node = prog[i];
  switch (node.op) {
    case NodeOp::kMaybe:
      return Match::kMaybe;
    case NodeOp::kNo:
      return Match::kNo;
    case NodeOp::kAnd: {
      const std::uint32_t end = i + node.arg;
      for (std::uint32_t c = i + 1; c < end; c += SubtreeSize(prog[c]))
        if (EvalTree(prog, c, leaf) == Match::kNo) return Match::kNo;
      return Match::kMaybe;
    }
    case NodeOp::kOr: {
      const std::uint32_t end = i + node.arg;
      for (std::uint32_t c = i + 1; c < end; c += SubtreeSize(prog[c]))
        if (EvalTree(prog, c, leaf) == Match::kMaybe) return Match::kMaybe;
      return Match::kNo;
    }
    case NodeOp::kHasValue:
    case NodeOp::kHasPath:
    case NodeOp::kNumCmp:
      return leaf(node) ? Match::kMaybe : Match::kNo;
  }
  return Match::kMaybe;
}

// Whether a leaf may hold for signature v. `informed` is false for
// signatures that carry no information (truncated, empty): every leaf may.
bool SigLeaf(const Node& node, const SignatureView& v, bool informed) {
  if (!informed) return true;
  switch (node.op) {
    case NodeOp::kHasValue:
      return SigHasValue(v, node.arg);
    case NodeOp::kHasPath:
      return SigHasPath(v, static_cast<std::uint16_t>(node.arg));
    case NodeOp::kNumCmp:
      return SigNumCmp(v, node);
    default:
      return true;
  }
}

// Folds the subtree at nodes[in] into nodes[out..] (out <= in) and returns
// the number of nodes written. Constants disappear into their parents, a
// kAnd inside a kAnd (kOr inside kOr) is flattened, one-child groups become
// their child.
std::uint32_t Fold(Node* nodes, std::uint32_t in, std::uint32_t out) {
  const Node head = nodes[in];
  if (head.op != NodeOp::kAnd && head.op != NodeOp::kOr) {
    nodes[out] = head;
    return 1;
  }
  const bool is_and = head.op == NodeOp::kAnd;
  const NodeOp absorbing = is_and ? NodeOp::kNo : NodeOp::kMaybe;  // decides the group
  const NodeOp neutral = is_and ? NodeOp::kMaybe : NodeOp::kNo;    // drops out
  const std::uint32_t end = in + head.arg;
  std::uint32_t written = 1;  // room for the head at nodes[out]
  std::uint32_t children = 0;
  for (std::uint32_t c = in + 1; c < end;) {
    const std::uint32_t next = c + SubtreeSize(nodes[c]);
    const std::uint32_t pos = out + written;
    const std::uint32_t n = Fold(nodes, c, pos);
    c = next;
    const Node& r = nodes[pos];
    if (r.op == absorbing) {
      nodes[out] = Node{absorbing, CmpOp::kEq, 0, 0, 0};
      return 1;
    }
    if (r.op == neutral) continue;
    if (r.op == head.op) {  // flatten: drop the child's head, keep its children
      std::memmove(&nodes[pos], &nodes[pos + 1], sizeof(Node) * (n - 1));
      written += n - 1;
      for (std::uint32_t k = pos; k < pos + n - 1; k += SubtreeSize(nodes[k])) children++;
      continue;
    }
    written += n;
    children++;
  }
  if (children == 0) {
    nodes[out] = Node{neutral, CmpOp::kEq, 0, 0, 0};
    return 1;
  }
  if (children == 1) {
    std::memmove(&nodes[out], &nodes[out + 1], sizeof(Node) * (written - 1));
    return written - 1;
  }
  nodes[out] = Node{head.op, CmpOp::kEq, written, 0, 0};
  return written;
}

const Node kMaybeProgram[1] = {Node{NodeOp::kMaybe, CmpOp::kEq, 0, 0, 0}};

}  // namespace

// ---------------------------------------------------------------------------
// Program builder

void ProgramBuilder::Init(const hnsw::Allocator& a) {
  alloc = a;
  nodes = nullptr;
  size = 0;
  cap = 0;
  depth = 0;
  overflow_depth = 0;
  failed = false;
}

void ProgramBuilder::Release() {
  if (nodes != nullptr) alloc.release(alloc.ctx, nodes);
  nodes = nullptr;
  size = cap = 0;
}

namespace {

Node* Append(ProgramBuilder* b) {
  if (b->failed) return nullptr;
  if (b->size == b->cap) {
    const std::uint32_t new_cap = b->cap == 0 ? 32 : b->cap * 2;
    if (new_cap > (1u << 24)) {
      b->failed = true;
      return nullptr;
    }
    Node* grown = static_cast<Node*>(b->alloc.allocate(b->alloc.ctx, sizeof(Node) * new_cap));
    if (grown == nullptr) {
      b->failed = true;
      return nullptr;
    }
    if (b->size > 0) std::memcpy(grown, b->nodes, sizeof(Node) * b->size);
    if (b->nodes != nullptr) b->alloc.release(b->alloc.ctx, b->nodes);
    b->nodes = grown;
    b->cap = new_cap;
  }
  Node* n = &b->nodes[b->size++];
  *n = Node{NodeOp::kMaybe, CmpOp::kEq, 0, 0, 0};
  return n;
}

void Open(ProgramBuilder* b, NodeOp op) {
  if (b->failed || b->depth == ProgramBuilder::kMaxDepth) {
    b->failed = true;
    b->overflow_depth++;
    return;
  }
  const std::uint32_t at = b->size;
  Node* n = Append(b);
  if (n == nullptr) {
    b->overflow_depth++;
    return;
  }
  n->op = op;
  b->open[b->depth++] = at;
}

}  // namespace

void ProgramBuilder::OpenAnd() { Open(this, NodeOp::kAnd); }
void ProgramBuilder::OpenOr() { Open(this, NodeOp::kOr); }

void ProgramBuilder::Close() {
  if (overflow_depth > 0) {
    overflow_depth--;
    return;
  }
  if (depth == 0) {
    failed = true;  // unbalanced: a bug in the caller; be safe
    return;
  }
  const std::uint32_t at = open[--depth];
  if (!failed) nodes[at].arg = size - at;
}

void ProgramBuilder::Maybe() { Append(this); }

void ProgramBuilder::No() {
  Node* n = Append(this);
  if (n != nullptr) n->op = NodeOp::kNo;
}

void ProgramBuilder::HasValue(PathHash path, ValueKind kind, const char* data, std::size_t len) {
  switch (kind) {
    case ValueKind::kNumber:
      NumCmp(path, CmpOp::kEq, data, len);
      return;
    case ValueKind::kContainer:
      HasPath(path);
      return;
    case ValueKind::kNull:
    case ValueKind::kFalse:
    case ValueKind::kTrue:
    case ValueKind::kString: {
      Node* n = Append(this);
      if (n == nullptr) return;
      n->op = NodeOp::kHasValue;
      n->arg = ValueEntry(path, kind, data, len);
      return;
    }
  }
  Maybe();
}

void ProgramBuilder::HasPath(PathHash path) {
  Node* n = Append(this);
  if (n == nullptr || path == kRootPath) return;  // the root always exists: kMaybe
  n->op = NodeOp::kHasPath;
  n->arg = PathBits(path);
}

void ProgramBuilder::NumCmp(PathHash path, CmpOp op, const char* text, std::size_t len) {
  Node* n = Append(this);
  if (n == nullptr) return;
  Number q;
  if (!ParseNumber(text, len, &q).ok()) return;  // kMaybe
  n->op = NodeOp::kNumCmp;
  n->cmp = op;
  n->arg = PathBits(path);
  if (q.exact) {
    n->lo = n->hi = q.value;
  } else {
    n->lo = std::nextafter(q.value, -std::numeric_limits<double>::infinity());
    n->hi = std::nextafter(q.value, std::numeric_limits<double>::infinity());
  }
}

void ProgramBuilder::ContainedItem(const Item& item) { HasValue(item.path, item.kind, item.data, item.len); }

void ProgramBuilder::KeyExists(const char* key, std::size_t len) {
  OpenOr();
  HasPath(ChildPath(kRootPath, key, len));
  HasValue(kRootPath, ValueKind::kString, key, len);
  Close();
}

void ProgramBuilder::PathCompare(PathHash path, CmpOp op, ValueKind kind, const char* data, std::size_t len) {
  switch (kind) {
    case ValueKind::kNumber:
      if (op == CmpOp::kNe) {  // a different number, or null
        OpenOr();
        HasValue(path, ValueKind::kNull, nullptr, 0);
        NumCmp(path, op, data, len);
        Close();
      } else {
        NumCmp(path, op, data, len);
      }
      return;
    case ValueKind::kString:
      // Other strings than the constant (for != and orderings) are not
      // known from hashes: only that the path has some value.
      if (op == CmpOp::kEq)
        HasValue(path, kind, data, len);
      else
        HasPath(path);
      return;
    case ValueKind::kNull:
      // null == null, null <= null, null >= null; null != anything else;
      // < and > are never true.
      if (op == CmpOp::kEq || op == CmpOp::kLe || op == CmpOp::kGe)
        HasValue(path, ValueKind::kNull, nullptr, 0);
      else if (op == CmpOp::kNe)
        HasPath(path);
      else
        No();
      return;
    case ValueKind::kFalse:
    case ValueKind::kTrue: {
      // false < true; the booleans that compare true, or null for !=.
      const int c = kind == ValueKind::kTrue ? 1 : 0;
      OpenOr();
      for (int x = 0; x <= 1; x++) {
        const int cmp = x - c;
        bool ok = false;
        switch (op) {
          case CmpOp::kEq:
            ok = cmp == 0;
            break;
          case CmpOp::kNe:
            ok = cmp != 0;
            break;
          case CmpOp::kLt:
            ok = cmp < 0;
            break;
          case CmpOp::kLe:
            ok = cmp <= 0;
            break;
          case CmpOp::kGt:
            ok = cmp > 0;
            break;
          case CmpOp::kGe:
            ok = cmp >= 0;
            break;
        }
        if (ok) HasValue(path, x ? ValueKind::kTrue : ValueKind::kFalse, nullptr, 0);
      }
      if (op == CmpOp::kNe) HasValue(path, ValueKind::kNull, nullptr, 0);
      Close();
      return;
    }
    case ValueKind::kContainer:
      HasPath(path);
      return;
  }
  Maybe();
}

const Node* ProgramBuilder::Finish(std::uint32_t* n) {
  while (!failed && (depth > 0 || overflow_depth > 0)) Close();
  if (failed || size == 0) {
    *n = 1;
    return kMaybeProgram;
  }
  // The top level is an implicit kAnd of everything added.
  std::uint32_t tops = 0;
  for (std::uint32_t i = 0; i < size; i += SubtreeSize(nodes[i])) tops++;
  if (tops > 1) {
    if (Append(this) == nullptr) {
      *n = 1;
      return kMaybeProgram;
    }
    std::memmove(&nodes[1], &nodes[0], sizeof(Node) * (size - 1));
    nodes[0] = Node{NodeOp::kAnd, CmpOp::kEq, size, 0, 0};
  }
  size = Fold(nodes, 0, 0);
  *n = size;
  return nodes;
}

ProgramKind Classify(const Node* prog, std::uint32_t n) {
  if (n == 1 && prog[0].op == NodeOp::kMaybe) return ProgramKind::kAlwaysMaybe;
  if (n == 1 && prog[0].op == NodeOp::kNo) return ProgramKind::kAlwaysNo;
  return ProgramKind::kDepends;
}

Match Eval(const Node* prog, std::uint32_t n, const SignatureView& sig) {
  if (n == 0) return Match::kMaybe;
  if (sig.flags & kFlagNull) return Match::kNo;
  const bool informed = (sig.flags & kFlagTruncated) == 0;
  return EvalTree(prog, 0, [&](const Node& node) { return SigLeaf(node, sig, informed); });
}

Match Eval(const Node* prog, std::uint32_t n, const std::uint8_t* sig, std::size_t len) {
  SignatureView v;
  if (!ParseSignature(sig, len, &v).ok()) return Match::kMaybe;
  return Eval(prog, n, v);
}

// ---------------------------------------------------------------------------
// Link codes

namespace {

constexpr std::uint64_t kPathCodeSeed = 0x428A2F98D728AE22ull;
constexpr std::uint64_t kValueCodeSeed = 0x7137449123EF65CDull;
constexpr std::uint64_t kNumberCodeSeed = 0xB5C0FBCFEC4D3B2Full;
constexpr std::uint64_t kInexactCodeSeed = 0xE9B5DBA58189DBBCull;

inline LinkCode PathCode(std::uint16_t path16) {
  return LinkCode{1} << (Fmix(kPathCodeSeed ^ (path16 & 0xFFFEu)) & 63);
}
inline LinkCode KeyCode(std::uint64_t h) {
  return (LinkCode{1} << (h & 63)) | (LinkCode{1} << ((h >> 6) & 63)) | (LinkCode{1} << ((h >> 12) & 63));
}
inline LinkCode ValueCode(std::uint32_t entry) { return KeyCode(Fmix(kValueCodeSeed ^ entry)); }
inline LinkCode NumberCode(std::uint16_t tag, double v) {
  if (v == 0) v = 0;  // -0 is 0
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return KeyCode(Fmix(Fmix(kNumberCodeSeed ^ (tag & 0xFFFEu)) ^ bits));
}
inline LinkCode InexactCode(std::uint16_t tag) { return KeyCode(Fmix(kInexactCodeSeed ^ (tag & 0xFFFEu))); }

inline bool Has(LinkCode code, LinkCode bits) { return (code & bits) == bits; }

// Whether a leaf may hold for an element whose link code is `code`.
bool CodeLeaf(const Node& node, LinkCode code) {
  switch (node.op) {
    case NodeOp::kHasValue:
      return Has(code, ValueCode(node.arg));
    case NodeOp::kHasPath:
      return Has(code, PathCode(static_cast<std::uint16_t>(node.arg)));
    case NodeOp::kNumCmp: {
      const std::uint16_t tag = static_cast<std::uint16_t>(node.arg);
      if (!Has(code, PathCode(tag))) return false;
      if (node.cmp != CmpOp::kEq || node.lo != node.hi) return true;
      return Has(code, NumberCode(tag, node.lo)) || Has(code, InexactCode(tag));
    }
    default:
      return true;
  }
}

}  // namespace

LinkCode MakeLinkCode(const SignatureView& v) {
  if (v.flags & kFlagNull) return 0;
  if (v.flags & kFlagTruncated) return kAllLinks;
  const bool wide = (v.flags & kFlagWide) != 0;
  const std::size_t esize = NumberEntrySize(wide);
  LinkCode code = 0;
  for (std::uint32_t i = 0; i < v.n_values; i++) {
    const std::uint32_t e = Get32(v.values + 4 * std::size_t{i});
    code |= PathCode(static_cast<std::uint16_t>(e >> 16)) | ValueCode(e);
  }
  for (std::uint32_t i = 0; i < v.n_numbers; i++) {
    const std::uint8_t* e = v.numbers + esize * i;
    const std::uint16_t tag = Get16(e);
    const double x = EntryNumber(e, wide);
    code |= PathCode(tag);
    code |= (tag & 1) && !std::isnan(x) ? NumberCode(tag, x) : InexactCode(tag);
  }
  return code;
}

LinkCode MakeLinkCode(const std::uint8_t* sig, std::size_t len) {
  SignatureView v;
  if (len == 0 || !ParseSignature(sig, len, &v).ok()) return kAllLinks;
  return MakeLinkCode(v);
}

Match EvalCode(const Node* prog, std::uint32_t n, LinkCode code) {
  if (n == 0) return Match::kMaybe;
  return EvalTree(prog, 0, [&](const Node& node) { return CodeLeaf(node, code); });
}

namespace {

// Adds term t to an OR of terms, dropping terms it subsumes (t's bits are a
// subset of theirs) and itself when one subsumes it. False on overflow.
bool AddTerm(CodeTest* out, LinkCode t) {
  for (int i = 0; i < out->n; i++) {
    if ((t & out->terms[i]) == out->terms[i]) return true;  // an existing term needs no more bits
  }
  int k = 0;
  for (int i = 0; i < out->n; i++) {
    if ((out->terms[i] & t) != t) out->terms[k++] = out->terms[i];
  }
  out->n = k;
  if (out->n >= kMaxCodeTerms) return false;
  out->terms[out->n++] = t;
  return true;
}

// The flat form of the subtree at prog[i] (see CodeTest); false on overflow.
bool FlattenCode(const Node* prog, std::uint32_t i, CodeTest* out) {
  const Node& node = prog[i];
  out->n = 0;
  switch (node.op) {
    case NodeOp::kMaybe:
      return AddTerm(out, 0);
    case NodeOp::kNo:
      return true;
    case NodeOp::kHasValue:
      return AddTerm(out, ValueCode(node.arg));
    case NodeOp::kHasPath:
      return AddTerm(out, PathCode(static_cast<std::uint16_t>(node.arg)));
    case NodeOp::kNumCmp: {
      const std::uint16_t tag = static_cast<std::uint16_t>(node.arg);
      const LinkCode path = PathCode(tag);
      if (node.cmp != CmpOp::kEq || node.lo != node.hi) return AddTerm(out, path);
      return AddTerm(out, path | NumberCode(tag, node.lo)) && AddTerm(out, path | InexactCode(tag));
    }
    case NodeOp::kOr: {
      const std::uint32_t end = i + node.arg;
      for (std::uint32_t c = i + 1; c < end; c += SubtreeSize(prog[c])) {
        CodeTest child;
        if (!FlattenCode(prog, c, &child)) return false;
        for (int k = 0; k < child.n; k++) {
          if (!AddTerm(out, child.terms[k])) return false;
        }
      }
      return true;
    }
    case NodeOp::kAnd: {
      const std::uint32_t end = i + node.arg;
      CodeTest acc;
      acc.n = 1;
      acc.terms[0] = 0;  // AND of nothing: always
      for (std::uint32_t c = i + 1; c < end; c += SubtreeSize(prog[c])) {
        CodeTest child;
        if (!FlattenCode(prog, c, &child)) return false;
        CodeTest next;
        next.n = 0;
        for (int a = 0; a < acc.n; a++) {
          for (int b = 0; b < child.n; b++) {
            if (!AddTerm(&next, acc.terms[a] | child.terms[b])) return false;
          }
        }
        acc = next;
      }
      *out = acc;
      return true;
    }
  }
  return false;
}

}  // namespace

bool CompileCodeTest(const Node* prog, std::uint32_t n, CodeTest* out) {
  if (n == 0) {
    out->n = 1;
    out->terms[0] = 0;
    return true;
  }
  return FlattenCode(prog, 0, out);
}

// ---------------------------------------------------------------------------
// Describe

namespace {

struct Out {
  char* buf;
  std::size_t cap;
  std::size_t len;
  void Add(const char* s) {
    for (; *s; s++) {
      if (len + 1 < cap) buf[len] = *s;
      len++;
    }
  }
};

const char* CmpName(CmpOp op) {
  switch (op) {
    case CmpOp::kEq:
      return "==";
    case CmpOp::kNe:
      return "!=";
    case CmpOp::kLt:
      return "<";
    case CmpOp::kLe:
      return "<=";
    case CmpOp::kGt:
      return ">";
    case CmpOp::kGe:
      return ">=";
  }
  return "?";
}

void DescribeAt(const Node* prog, std::uint32_t i, Out* out) {
  const Node& node = prog[i];
  char tmp[96];
  switch (node.op) {
    case NodeOp::kMaybe:
      out->Add("maybe");
      return;
    case NodeOp::kNo:
      out->Add("no");
      return;
    case NodeOp::kAnd:
    case NodeOp::kOr: {
      out->Add(node.op == NodeOp::kAnd ? "and(" : "or(");
      const std::uint32_t end = i + node.arg;
      for (std::uint32_t c = i + 1; c < end; c += SubtreeSize(prog[c])) {
        if (c != i + 1) out->Add(", ");
        DescribeAt(prog, c, out);
      }
      out->Add(")");
      return;
    }
    case NodeOp::kHasValue:
      std::snprintf(tmp, sizeof tmp, "value(%04x:%04x)", node.arg >> 16, node.arg & 0xFFFF);
      out->Add(tmp);
      return;
    case NodeOp::kHasPath:
      std::snprintf(tmp, sizeof tmp, "path(%04x)", node.arg);
      out->Add(tmp);
      return;
    case NodeOp::kNumCmp:
      if (node.lo == node.hi)
        std::snprintf(tmp, sizeof tmp, "num(%04x %s %.17g)", node.arg, CmpName(node.cmp), node.lo);
      else
        std::snprintf(tmp, sizeof tmp, "num(%04x %s [%.17g, %.17g])", node.arg, CmpName(node.cmp), node.lo,
                      node.hi);
      out->Add(tmp);
      return;
  }
}

}  // namespace

std::size_t Describe(const Node* prog, std::uint32_t n, char* buf, std::size_t cap) {
  Out out{buf, cap, 0};
  if (n == 0)
    out.Add("maybe");
  else
    DescribeAt(prog, 0, &out);
  if (cap > 0) buf[out.len < cap ? out.len : cap - 1] = '\0';
  return out.len;
}

// ---------------------------------------------------------------------------
// Value keys

namespace {

constexpr ValueKey kValueKeyEntry = ValueKey{1} << 62;
constexpr ValueKey kValueKeyNumber = ValueKey{2} << 62;
constexpr ValueKey kValueKeyKindMask = ValueKey{3} << 62;

// The key of an exact number x at tag (kNoValueKey when x is not a float32
// or is NaN).
ValueKey NumberKey(std::uint16_t tag, double x) {
  if (std::isnan(x)) return kNoValueKey;
  if (x == 0) x = 0;  // -0 is 0
  const float f = static_cast<float>(x);
  if (static_cast<double>(f) != x) return kNoValueKey;
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return kValueKeyNumber | (ValueKey{static_cast<std::uint16_t>(tag & 0xFFFE)} << 32) | bits;
}

ValueKey LeafKey(const Node& node) {
  if (node.op == NodeOp::kHasValue) return kValueKeyEntry | node.arg;
  if (node.op == NodeOp::kNumCmp && node.cmp == CmpOp::kEq && node.lo == node.hi)
    return NumberKey(static_cast<std::uint16_t>(node.arg), node.lo);
  return kNoValueKey;
}

}  // namespace

std::size_t ValueKeys(const SignatureView& v, ValueKey* out, std::size_t cap) {
  if (v.flags & (kFlagNull | kFlagTruncated)) return 0;
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < v.n_values; i++, n++) {
    if (n < cap) out[n] = kValueKeyEntry | Get32(v.values + 4 * std::size_t{i});
  }
  const bool wide = (v.flags & kFlagWide) != 0;
  const std::size_t esize = NumberEntrySize(wide);
  for (std::uint32_t i = 0; i < v.n_numbers; i++) {
    const std::uint8_t* e = v.numbers + esize * i;
    const std::uint16_t tag = Get16(e);
    if (!(tag & 1)) continue;
    const double x = EntryNumber(e, wide);
    const ValueKey key = NumberKey(tag, x);
    if (key == kNoValueKey) continue;
    if (n < cap) out[n] = key;
    n++;
  }
  return n;
}

std::size_t RequiredValueKeys(const Node* prog, std::uint32_t n, ValueKey* out, std::size_t cap) {
  if (n == 0 || cap == 0) return 0;
  std::size_t k = 0;
  if (prog[0].op != NodeOp::kAnd) {
    const ValueKey key = LeafKey(prog[0]);
    if (key != kNoValueKey) out[k++] = key;
    return k;
  }
  const std::uint32_t end = prog[0].arg < n ? prog[0].arg : n;
  for (std::uint32_t c = 1; c < end && k < cap; c += SubtreeSize(prog[c])) {
    const ValueKey key = LeafKey(prog[c]);
    if (key != kNoValueKey) out[k++] = key;
  }
  return k;
}

bool ValueKeyNode(ValueKey key, Node* out) {
  if ((key & kValueKeyKindMask) == kValueKeyEntry && (key >> 32) == (kValueKeyEntry >> 32)) {
    *out = Node{NodeOp::kHasValue, CmpOp::kEq, static_cast<std::uint32_t>(key), 0, 0};
    return true;
  }
  if ((key & kValueKeyKindMask) == kValueKeyNumber && ((key >> 48) & 0x3FFF) == 0 && !(key & (ValueKey{1} << 32))) {
    const std::uint32_t bits = static_cast<std::uint32_t>(key);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    if (std::isnan(f)) return false;
    const double x = static_cast<double>(f);
    *out = Node{NodeOp::kNumCmp, CmpOp::kEq, static_cast<std::uint32_t>((key >> 32) & 0xFFFE), x, x};
    return true;
  }
  return false;
}

}  // namespace vecext::meta
