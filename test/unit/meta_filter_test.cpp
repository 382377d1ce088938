// Unit tests of metadata signatures and filter programs (core/meta_filter.h):
// number parsing, encoding bounds and stability, every predicate, AND/OR
// folding, and randomized properties against an exact reference evaluator of
// jsonb containment, key existence and lax jsonpath comparisons.
#include "core/meta_filter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace vecext::meta {
namespace {

// ---------------------------------------------------------------------------
// A JSON value model (what a jsonb holds), and the glue's walk over it.

struct J {
  enum Type { kNull, kBool, kNum, kStr, kArr, kObj } type = kNull;
  bool b = false;
  std::string s;  // kStr: the string; kNum: the decimal text
  std::vector<J> arr;
  std::vector<std::pair<std::string, J>> obj;  // distinct keys

  static J Null() { return J{}; }
  static J Bool(bool v) {
    J j;
    j.type = kBool;
    j.b = v;
    return j;
  }
  static J Num(const std::string& text) {
    J j;
    j.type = kNum;
    j.s = text;
    return j;
  }
  static J Str(const std::string& v) {
    J j;
    j.type = kStr;
    j.s = v;
    return j;
  }
  static J Arr(std::vector<J> v) {
    J j;
    j.type = kArr;
    j.arr = std::move(v);
    return j;
  }
  static J Obj(std::vector<std::pair<std::string, J>> v) {
    J j;
    j.type = kObj;
    j.obj = std::move(v);
    return j;
  }
  bool IsScalar() const { return type != kArr && type != kObj; }
  const J* Get(const std::string& k) const {
    for (const auto& kv : obj)
      if (kv.first == k) return &kv.second;
    return nullptr;
  }
};

std::string Show(const J& j) {
  switch (j.type) {
    case J::kNull:
      return "null";
    case J::kBool:
      return j.b ? "true" : "false";
    case J::kNum:
      return j.s;
    case J::kStr:
      return "\"" + j.s + "\"";
    case J::kArr: {
      std::string out = "[";
      for (std::size_t i = 0; i < j.arr.size(); i++) out += (i ? "," : "") + Show(j.arr[i]);
      return out + "]";
    }
    case J::kObj: {
      std::string out = "{";
      for (std::size_t i = 0; i < j.obj.size(); i++)
        out += (i ? "," : "") + std::string("\"") + j.obj[i].first + "\":" + Show(j.obj[i].second);
      return out + "}";
    }
  }
  return "?";
}

// The items of a value, as the glue reports them: scalars at their key
// path, containers at theirs (arrays add no step).
void Walk(const J& j, PathHash path, bool root, std::vector<Item>* out) {
  switch (j.type) {
    case J::kNull:
      out->push_back(Item{path, ValueKind::kNull, nullptr, 0});
      return;
    case J::kBool:
      out->push_back(Item{path, j.b ? ValueKind::kTrue : ValueKind::kFalse, nullptr, 0});
      return;
    case J::kNum:
      out->push_back(Item{path, ValueKind::kNumber, j.s.data(), j.s.size()});
      return;
    case J::kStr:
      out->push_back(Item{path, ValueKind::kString, j.s.data(), j.s.size()});
      return;
    case J::kArr:
      if (!root) out->push_back(Item{path, ValueKind::kContainer, nullptr, 0});
      for (const J& e : j.arr) Walk(e, path, false, out);
      return;
    case J::kObj:
      if (!root) out->push_back(Item{path, ValueKind::kContainer, nullptr, 0});
      for (const auto& kv : j.obj) Walk(kv.second, ChildPath(path, kv.first.data(), kv.first.size()), false, out);
      return;
  }
}

std::vector<std::uint8_t> Encode(const J& doc, EncodeOptions opt = {}) {
  std::vector<Item> items;
  Walk(doc, RootPath(), true, &items);
  auto* enc = new SignatureEncoder;
  enc->Init(opt);
  for (const Item& it : items) EXPECT_TRUE(enc->Add(it).ok());
  std::vector<std::uint8_t> out(kMaxSignatureBytes);
  std::size_t len = 0;
  EXPECT_TRUE(enc->Finish(out.data(), out.size(), &len).ok());
  delete enc;
  out.resize(len);
  return out;
}

std::string Hex(const std::vector<std::uint8_t>& v) {
  std::string s;
  char b[3];
  for (std::uint8_t c : v) {
    std::snprintf(b, sizeof b, "%02x", c);
    s += b;
  }
  return s;
}

PathHash P(std::initializer_list<const char*> keys) {
  PathHash p = RootPath();
  for (const char* k : keys) p = ChildPath(p, k, std::strlen(k));
  return p;
}

// A program built by `fill` (which adds conditions to a builder).
struct Program {
  std::vector<Node> nodes;
  ProgramKind kind;
  std::string text;
};

template <class F>
Program Build(F fill) {
  ProgramBuilder b;
  b.Init(hnsw::MallocAllocator());
  fill(b);
  std::uint32_t n = 0;
  const Node* nodes = b.Finish(&n);
  Program p;
  p.nodes.assign(nodes, nodes + n);
  p.kind = Classify(nodes, n);
  char buf[4096];
  Describe(nodes, n, buf, sizeof buf);
  p.text = buf;
  b.Release();
  return p;
}

Match Check(const Program& p, const std::vector<std::uint8_t>& sig) {
  return Eval(p.nodes.data(), static_cast<std::uint32_t>(p.nodes.size()), sig.data(), sig.size());
}

// ---------------------------------------------------------------------------
// Exact reference semantics

// Exact comparison of two decimal texts: sign(a - b).
struct Dec {
  bool neg = false;
  std::string digits;  // no leading or trailing zeros; empty = 0
  long long exp = 0;   // value = 0.digits * 10^exp
};
Dec ParseDec(const std::string& t) {
  Dec d;
  std::size_t i = 0;
  if (i < t.size() && (t[i] == '-' || t[i] == '+')) d.neg = t[i++] == '-';
  std::string all;
  long long point = -1;
  for (; i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.'); i++) {
    if (t[i] == '.')
      point = static_cast<long long>(all.size());
    else
      all += t[i];
  }
  if (point < 0) point = static_cast<long long>(all.size());
  long long e = 0;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) e = std::atoll(t.c_str() + i + 1);
  std::size_t lead = 0;
  while (lead < all.size() && all[lead] == '0') lead++;
  d.digits = all.substr(lead);
  d.exp = point - static_cast<long long>(lead) + e;
  while (!d.digits.empty() && d.digits.back() == '0') d.digits.pop_back();
  if (d.digits.empty()) {
    d.neg = false;
    d.exp = 0;
  }
  return d;
}
int CmpMag(const Dec& a, const Dec& b) {
  if (a.digits.empty() || b.digits.empty()) return a.digits.empty() == b.digits.empty() ? 0 : (a.digits.empty() ? -1 : 1);
  if (a.exp != b.exp) return a.exp < b.exp ? -1 : 1;
  const int c = a.digits.compare(b.digits);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}
int CmpDec(const std::string& x, const std::string& y) {
  const Dec a = ParseDec(x), b = ParseDec(y);
  if (a.neg != b.neg) return a.neg ? -1 : 1;
  const int m = CmpMag(a, b);
  return a.neg ? -m : m;
}

bool ScalarEq(const J& a, const J& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case J::kNull:
      return true;
    case J::kBool:
      return a.b == b.b;
    case J::kNum:
      return CmpDec(a.s, b.s) == 0;
    case J::kStr:
      return a.s == b.s;
    default:
      return false;
  }
}

bool DeepContains(const J& a, const J& b);
bool ArrContains(const std::vector<J>& a, const std::vector<J>& b) {
  for (const J& x : b) {
    bool found = false;
    for (const J& y : a) {
      if (x.IsScalar() ? (y.IsScalar() && ScalarEq(y, x)) : (y.type == x.type && DeepContains(y, x))) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}
bool ObjContains(const J& a, const J& b) {
  for (const auto& kv : b.obj) {
    const J* lv = a.Get(kv.first);
    if (lv == nullptr) return false;
    const J& rv = kv.second;
    if (rv.IsScalar()) {
      if (!lv->IsScalar() || !ScalarEq(*lv, rv)) return false;
    } else {
      if (lv->type != rv.type || !DeepContains(*lv, rv)) return false;
    }
  }
  return true;
}
bool DeepContains(const J& a, const J& b) {
  return a.type == J::kObj ? ObjContains(a, b) : ArrContains(a.arr, b.arr);
}
// jsonb a @> b (top level: a scalar is a one-element "raw scalar" array).
bool RefContains(const J& a, const J& b) {
  if (a.type == J::kObj || b.type == J::kObj) return a.type == J::kObj && b.type == J::kObj && ObjContains(a, b);
  if (a.IsScalar() && b.type == J::kArr) return false;
  const std::vector<J> ae = a.IsScalar() ? std::vector<J>{a} : a.arr;
  const std::vector<J> be = b.IsScalar() ? std::vector<J>{b} : b.arr;
  return ArrContains(ae, be);
}

// jsonb a ? key
bool RefKeyExists(const J& a, const std::string& key) {
  if (a.type == J::kObj) return a.Get(key) != nullptr;
  if (a.type == J::kStr) return a.s == key;
  if (a.type == J::kArr)
    for (const J& e : a.arr)
      if (e.type == J::kStr && e.s == key) return true;
  return false;
}

// The items of lax `$.k1.k2...`: member access unwraps one array level.
std::vector<const J*> RefLaxPath(const J& root, const std::vector<std::string>& keys) {
  std::vector<const J*> items{&root};
  for (const std::string& k : keys) {
    std::vector<const J*> next;
    for (const J* it : items) {
      if (it->type == J::kObj) {
        if (const J* v = it->Get(k)) next.push_back(v);
      } else if (it->type == J::kArr) {
        for (const J& e : it->arr)
          if (e.type == J::kObj)
            if (const J* v = e.Get(k)) next.push_back(v);
      }
    }
    items = std::move(next);
  }
  return items;
}

// jsonpath compareItems: 1 true, 0 false, -1 unknown.
int RefCompareItem(CmpOp op, const J& x, const J& c) {
  if (x.type != c.type) {
    if (x.type == J::kNull || c.type == J::kNull) return op == CmpOp::kNe ? 1 : 0;
    return -1;
  }
  int cmp = 0;
  switch (x.type) {
    case J::kNull:
      cmp = 0;
      break;
    case J::kBool:
      cmp = x.b == c.b ? 0 : (x.b ? 1 : -1);
      break;
    case J::kNum:
      cmp = CmpDec(x.s, c.s);
      break;
    case J::kStr:
      cmp = x.s.compare(c.s);
      break;
    default:
      return -1;
  }
  switch (op) {
    case CmpOp::kEq:
      return cmp == 0;
    case CmpOp::kNe:
      return cmp != 0;
    case CmpOp::kLt:
      return cmp < 0;
    case CmpOp::kLe:
      return cmp <= 0;
    case CmpOp::kGt:
      return cmp > 0;
    case CmpOp::kGe:
      return cmp >= 0;
  }
  return -1;
}

// Lax `$.keys op c` is true: some item (unwrapped once) compares true.
bool RefPathCompare(const J& root, const std::vector<std::string>& keys, CmpOp op, const J& c) {
  for (const J* it : RefLaxPath(root, keys)) {
    if (it->type == J::kArr) {
      for (const J& e : it->arr)
        if (RefCompareItem(op, e, c) == 1) return true;
    } else if (RefCompareItem(op, *it, c) == 1) {
      return true;
    }
  }
  return false;
}

ValueKind KindOf(const J& c) {
  switch (c.type) {
    case J::kNull:
      return ValueKind::kNull;
    case J::kBool:
      return c.b ? ValueKind::kTrue : ValueKind::kFalse;
    case J::kNum:
      return ValueKind::kNumber;
    case J::kStr:
      return ValueKind::kString;
    default:
      return ValueKind::kContainer;
  }
}

PathHash PathOf(const std::vector<std::string>& keys) {
  PathHash p = RootPath();
  for (const std::string& k : keys) p = ChildPath(p, k.data(), k.size());
  return p;
}

// Containment program of a query value, as the glue builds it.
void AddContainment(ProgramBuilder& b, const J& query) {
  std::vector<Item> items;
  Walk(query, RootPath(), true, &items);
  b.OpenAnd();
  for (const Item& it : items) b.ContainedItem(it);
  b.Close();
}

// ---------------------------------------------------------------------------
// Numbers

TEST(MetaFilterNumber, ParsesAndCanonicalizes) {
  Number n;
  const char* ones[] = {"1", "1.0", "1e0", "10e-1", "0.1e1", "+1", "1.", "001.000", "1E+0", "100e-2"};
  for (const char* t : ones) {
    ASSERT_TRUE(ParseNumber(t, std::strlen(t), &n).ok()) << t;
    EXPECT_EQ(n.value, 1.0) << t;
    EXPECT_TRUE(n.exact) << t;
  }
  ASSERT_TRUE(ParseNumber("-0", 2, &n).ok());
  EXPECT_EQ(n.value, 0.0);
  EXPECT_FALSE(std::signbit(n.value));
  EXPECT_TRUE(n.exact);
  ASSERT_TRUE(ParseNumber("0.1", 3, &n).ok());
  EXPECT_EQ(n.value, 0.1);
  EXPECT_FALSE(n.exact);
  for (const char* t : {"0.5", "2.5", "-0.125", "0.75e1", "1.25000", "4503599627370495.5"}) {
    ASSERT_TRUE(ParseNumber(t, std::strlen(t), &n).ok()) << t;
    EXPECT_TRUE(n.exact) << t;
    EXPECT_EQ(n.value, std::strtod(t, nullptr)) << t;
  }
  for (const char* t : {"0.2", "2.55", "9007199254740992.5", "1e-30", "0.0000000000000000000001"}) {
    ASSERT_TRUE(ParseNumber(t, std::strlen(t), &n).ok()) << t;
    EXPECT_FALSE(n.exact) << t;
  }
  ASSERT_TRUE(ParseNumber("123456789012345", 15, &n).ok());
  EXPECT_TRUE(n.exact);
  EXPECT_EQ(n.value, 123456789012345.0);
  ASSERT_TRUE(ParseNumber("1234567890123456", 16, &n).ok());
  EXPECT_FALSE(n.exact);
  ASSERT_TRUE(ParseNumber("-2.5e3", 6, &n).ok());
  EXPECT_EQ(n.value, -2500.0);
  EXPECT_TRUE(n.exact);
  ASSERT_TRUE(ParseNumber("1e400", 5, &n).ok());
  EXPECT_TRUE(std::isinf(n.value));
  EXPECT_FALSE(n.exact);
  ASSERT_TRUE(ParseNumber("-1e99999999999999", 17, &n).ok());
  EXPECT_TRUE(std::isinf(n.value) && n.value < 0);
  ASSERT_TRUE(ParseNumber("1e-400", 6, &n).ok());
  EXPECT_EQ(n.value, 0.0);
  EXPECT_FALSE(n.exact);
  const std::string long_text = "0." + std::string(100, '3');
  ASSERT_TRUE(ParseNumber(long_text.data(), long_text.size(), &n).ok());
  EXPECT_DOUBLE_EQ(n.value, 1.0 / 3.0);
  const char* bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "abc", "1.2.3", "1x", "NaN", "Infinity", "--1", " 1"};
  for (const char* t : bad) EXPECT_FALSE(ParseNumber(t, std::strlen(t), &n).ok()) << t;
}

// ---------------------------------------------------------------------------
// Encoding

TEST(MetaFilterEncode, SizesOfTypicalDocuments) {
  // 4 bytes per string/bool/null, 6 per number, 3 of header.
  const J flat = J::Obj({{"tenant", J::Num("7")},
                         {"lang", J::Str("en")},
                         {"year", J::Num("2021")},
                         {"tags", J::Arr({J::Str("a"), J::Str("b")})},
                         {"score", J::Num("0.73")},
                         {"draft", J::Bool(false)}});
  const auto sig = Encode(flat);
  EXPECT_EQ(sig.size(), 3u + 4 * 4 + 3 * 6) << Hex(sig);
  // A nested object adds one entry for its key (the path exists).
  const J nested = J::Obj({{"author", J::Obj({{"name", J::Str("x")}, {"id", J::Num("3")}})}});
  EXPECT_EQ(Encode(nested).size(), 3u + 2 * 4 + 6);
  // Wide numbers: 10 bytes each.
  EncodeOptions wide;
  wide.wide_numbers = true;
  EXPECT_EQ(Encode(flat, wide).size(), 3u + 4 * 4 + 3 * 10);
  // Empty containers keep their path.
  EXPECT_EQ(Encode(J::Obj({{"a", J::Obj({})}, {"b", J::Arr({})}})).size(), 3u + 2 * 4);
  EXPECT_EQ(Encode(J::Obj({})).size(), 3u);
  // Duplicates collapse.
  EXPECT_EQ(Encode(J::Obj({{"t", J::Arr({J::Str("a"), J::Str("a"), J::Num("1"), J::Num("1.0")})}})).size(),
            3u + 4 + 6);
}

TEST(MetaFilterEncode, NumbersCanonical) {
  const char* ones[] = {"1", "1.0", "1e0", "10e-1", "1.000"};
  const auto ref = Encode(J::Obj({{"a", J::Num("1")}}));
  for (const char* t : ones) EXPECT_EQ(Encode(J::Obj({{"a", J::Num(t)}})), ref) << t;
  EXPECT_EQ(Encode(J::Obj({{"a", J::Num("-0")}})), Encode(J::Obj({{"a", J::Num("0.000")}})));
  EXPECT_NE(Encode(J::Obj({{"a", J::Num("1")}})), Encode(J::Obj({{"a", J::Num("2")}})));
  EXPECT_NE(Encode(J::Obj({{"a", J::Num("1")}})), Encode(J::Obj({{"a", J::Str("1")}})));
}

TEST(MetaFilterEncode, StableFormat) {
  // The signature is stored in indexes: these bytes must never change
  // within format version 1.
  const J doc = J::Obj({{"a", J::Str("x")}, {"n", J::Num("2")}, {"o", J::Obj({{"b", J::Bool(true)}})}});
  // 10: version 1, no flags; 03 values; 01 number; 3 x u32 (a="x", o.b=true,
  // o exists); tag ea6d (path bits of n, exact) + float 2.0.
  EXPECT_EQ(Hex(Encode(doc)), "1003012203d901ac603f47fb1b97536dea00000040");
}

TEST(MetaFilterEncode, BoundedAndTruncated) {
  for (std::size_t max : {std::size_t{16}, std::size_t{64}, std::size_t{256}, std::size_t{2048}}) {
    EncodeOptions opt;
    opt.max_bytes = max;
    for (int n = 0; n < 600; n += 7) {
      std::vector<J> tags;
      for (int i = 0; i < n; i++) tags.push_back(i % 2 ? J::Str("t" + std::to_string(i)) : J::Num(std::to_string(i)));
      const J doc = J::Obj({{"tags", J::Arr(tags)}});
      const auto sig = Encode(doc, opt);
      ASSERT_LE(sig.size(), max);
      EncodeOptions roomy;
      roomy.max_bytes = kMaxSignatureBytes;
      const auto full = Encode(doc, roomy);
      const bool fits = full.size() > 1 && full.size() <= max;
      SignatureView v;
      ASSERT_TRUE(ParseSignature(sig.data(), sig.size(), &v).ok());
      EXPECT_EQ((v.flags & kFlagTruncated) != 0, !fits) << "n=" << n << " max=" << max;
      if (fits) {
        EXPECT_EQ(sig, full);
      }
      // A truncated signature never excludes; a complete one does.
      const Program p = Build([](ProgramBuilder& b) { b.HasPath(P({"other"})); });
      EXPECT_EQ(Check(p, sig), fits ? Match::kNo : Match::kMaybe);
    }
  }
  // Options out of range are clamped.
  EncodeOptions tiny;
  tiny.max_bytes = 1;
  EXPECT_LE(Encode(J::Obj({{"a", J::Str("x")}, {"b", J::Str("y")}, {"c", J::Str("z")}}), tiny).size(),
            kMinSignatureBytes);
}

TEST(MetaFilterEncode, InvalidNumberTruncates) {
  SignatureEncoder enc;
  enc.Init(EncodeOptions{});
  const Item bad{RootPath(), ValueKind::kNumber, "1x", 2};
  EXPECT_EQ(enc.Add(bad).code, StatusCode::kInvalidInput);
  std::uint8_t out[kMaxSignatureBytes];
  std::size_t len = 0;
  ASSERT_TRUE(enc.Finish(out, sizeof out, &len).ok());
  ASSERT_EQ(len, 1u);
  EXPECT_EQ(out[0] & 0x0F, kFlagTruncated);
}

TEST(MetaFilterEncode, ParseSignatureRejectsCorruption) {
  const auto good = Encode(J::Obj({{"a", J::Str("x")}, {"n", J::Num("2")}}));
  SignatureView v;
  ASSERT_TRUE(ParseSignature(good.data(), good.size(), &v).ok());
  EXPECT_EQ(v.n_values, 1u);
  EXPECT_EQ(v.n_numbers, 1u);
  for (std::size_t cut = 1; cut < good.size(); cut++)
    EXPECT_FALSE(ParseSignature(good.data(), cut, &v).ok()) << cut;
  auto longer = good;
  longer.push_back(0);
  EXPECT_FALSE(ParseSignature(longer.data(), longer.size(), &v).ok());
  auto bad_version = good;
  bad_version[0] = 0x20;
  EXPECT_FALSE(ParseSignature(bad_version.data(), bad_version.size(), &v).ok());
  auto bad_flag = good;
  bad_flag[0] |= 0x8;
  EXPECT_FALSE(ParseSignature(bad_flag.data(), bad_flag.size(), &v).ok());
  const std::uint8_t truncated_with_data[] = {0x11, 0x00};
  EXPECT_FALSE(ParseSignature(truncated_with_data, 2, &v).ok());
  const std::uint8_t huge_count[] = {0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0x00};
  EXPECT_FALSE(ParseSignature(huge_count, sizeof huge_count, &v).ok());
  // Eval treats anything invalid as "no information".
  const Program p = Build([](ProgramBuilder& b) { b.HasValue(P({"a"}), ValueKind::kString, "y", 1); });
  EXPECT_EQ(Check(p, good), Match::kNo);
  EXPECT_EQ(Check(p, bad_version), Match::kMaybe);
  EXPECT_EQ(Check(p, std::vector<std::uint8_t>{}), Match::kMaybe);
  // Random bytes never crash and never parse into out-of-bounds views.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; i++) {
    std::vector<std::uint8_t> junk(rng() % 40);
    for (auto& c : junk) c = static_cast<std::uint8_t>(rng());
    if (!junk.empty() && rng() % 2) junk[0] = 0x10 | (junk[0] & 0x5);
    (void)Check(p, junk);
  }
}

TEST(MetaFilterEncode, NullDocumentIsAlwaysNo) {
  std::uint8_t out[1];
  ASSERT_EQ(EncodeNull(out, 1), 1u);
  const std::vector<std::uint8_t> sig(out, out + 1);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.Maybe(); }), sig), Match::kNo);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.HasPath(P({"a"})); }), sig), Match::kNo);
}

// ---------------------------------------------------------------------------
// Predicates

TEST(MetaFilterEval, HasValueAndHasPath) {
  const auto sig = Encode(J::Obj({{"lang", J::Str("en")},
                                  {"ok", J::Bool(true)},
                                  {"gone", J::Null()},
                                  {"tags", J::Arr({J::Str("a"), J::Obj({{"k", J::Str("v")}})})},
                                  {"meta", J::Obj({{"deep", J::Obj({})}})}}));
  auto has = [&](PathHash p, ValueKind k, const char* s) {
    return Check(Build([&](ProgramBuilder& b) { b.HasValue(p, k, s, s ? std::strlen(s) : 0); }), sig);
  };
  auto path = [&](PathHash p) { return Check(Build([&](ProgramBuilder& b) { b.HasPath(p); }), sig); };
  EXPECT_EQ(has(P({"lang"}), ValueKind::kString, "en"), Match::kMaybe);
  EXPECT_EQ(has(P({"lang"}), ValueKind::kString, "fr"), Match::kNo);
  EXPECT_EQ(has(P({"lang"}), ValueKind::kString, "e"), Match::kNo);
  EXPECT_EQ(has(P({"tags"}), ValueKind::kString, "en"), Match::kNo);
  EXPECT_EQ(has(P({"ok"}), ValueKind::kTrue, nullptr), Match::kMaybe);
  EXPECT_EQ(has(P({"ok"}), ValueKind::kFalse, nullptr), Match::kNo);
  EXPECT_EQ(has(P({"ok"}), ValueKind::kString, "true"), Match::kNo);
  EXPECT_EQ(has(P({"gone"}), ValueKind::kNull, nullptr), Match::kMaybe);
  EXPECT_EQ(has(P({"lang"}), ValueKind::kNull, nullptr), Match::kNo);
  EXPECT_EQ(has(P({"tags"}), ValueKind::kString, "a"), Match::kMaybe);
  EXPECT_EQ(has(P({"tags", "k"}), ValueKind::kString, "v"), Match::kMaybe);
  EXPECT_EQ(has(P({"k"}), ValueKind::kString, "v"), Match::kNo);
  for (const char* k : {"lang", "ok", "gone", "tags", "meta"}) EXPECT_EQ(path(P({k})), Match::kMaybe) << k;
  EXPECT_EQ(path(P({"meta", "deep"})), Match::kMaybe);
  EXPECT_EQ(path(P({"tags", "k"})), Match::kMaybe);
  EXPECT_EQ(path(P({"missing"})), Match::kNo);
  EXPECT_EQ(path(P({"meta", "missing"})), Match::kNo);
  EXPECT_EQ(path(P({"deep"})), Match::kNo);
  EXPECT_EQ(path(RootPath()), Match::kMaybe);
  // A path is a sequence of keys, not a dotted string.
  EXPECT_EQ(path(P({"meta.deep"})), Match::kNo);
}

TEST(MetaFilterEval, KeyExists) {
  auto exists = [](const J& doc, const char* key) {
    return Check(Build([&](ProgramBuilder& b) { b.KeyExists(key, std::strlen(key)); }), Encode(doc));
  };
  EXPECT_EQ(exists(J::Obj({{"a", J::Num("1")}}), "a"), Match::kMaybe);
  EXPECT_EQ(exists(J::Obj({{"a", J::Num("1")}}), "b"), Match::kNo);
  EXPECT_EQ(exists(J::Obj({{"a", J::Str("b")}}), "b"), Match::kNo);
  EXPECT_EQ(exists(J::Arr({J::Str("a"), J::Num("1")}), "a"), Match::kMaybe);
  EXPECT_EQ(exists(J::Arr({J::Str("a"), J::Num("1")}), "1"), Match::kNo);
  EXPECT_EQ(exists(J::Str("a"), "a"), Match::kMaybe);
  EXPECT_EQ(exists(J::Num("1"), "1"), Match::kNo);
}

TEST(MetaFilterEval, NumbersConservative) {
  // Every case compares exactly with the reference: never kNo when true.
  const char* values[] = {"0",        "1",          "-1",       "0.1",       "0.30000000000000004", "16777216",
                          "16777217", "16777218",   "1e20",     "1e38",      "3.5e38",              "1e39",
                          "1e308",    "1e309",      "-1e400",   "1e-46",     "1e-400",              "2.5",
                          "7",        "7.000001",   "6.999999", "123456789", "123456789.5",         "-0.0000001"};
  const CmpOp ops[] = {CmpOp::kEq, CmpOp::kNe, CmpOp::kLt, CmpOp::kLe, CmpOp::kGt, CmpOp::kGe};
  int no_count = 0, false_count = 0;
  for (bool wide : {false, true}) {
    EncodeOptions opt;
    opt.wide_numbers = wide;
    for (const char* x : values) {
      const auto sig = Encode(J::Obj({{"n", J::Num(x)}}), opt);
      for (const char* q : values) {
        for (CmpOp op : ops) {
          const bool truth = RefPathCompare(J::Obj({{"n", J::Num(x)}}), {"n"}, op, J::Num(q));
          const Match m = Check(Build([&](ProgramBuilder& b) { b.NumCmp(P({"n"}), op, q, std::strlen(q)); }), sig);
          if (truth) {
            EXPECT_EQ(m, Match::kMaybe) << x << " op " << static_cast<int>(op) << " " << q << " wide=" << wide;
          }
          if (!truth) {
            false_count++;
            no_count += m == Match::kNo;
          }
        }
      }
    }
  }
  // Nearly every false comparison is excluded (only values within a float
  // ulp of the constant are not).
  EXPECT_GT(no_count, false_count * 9 / 10) << no_count << " of " << false_count;
  // Integers beyond float precision: 16777217 is stored as a range.
  const auto sig = Encode(J::Obj({{"n", J::Num("16777217")}}));
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kGt, "16777216", 8); }), sig), Match::kMaybe);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kGt, "16777300", 8); }), sig), Match::kNo);
  EncodeOptions wide;
  wide.wide_numbers = true;
  const auto wsig = Encode(J::Obj({{"n", J::Num("16777217")}}), wide);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kEq, "16777216", 8); }), wsig), Match::kNo);
  // Exact small integers: equality and order are exact.
  const auto seven = Encode(J::Obj({{"n", J::Num("7")}}));
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kGt, "7", 1); }), seven), Match::kNo);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kGe, "7", 1); }), seven), Match::kMaybe);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kNe, "7", 1); }), seven), Match::kNo);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kEq, "7.0", 3); }), seven), Match::kMaybe);
  // No number at the path: never true.
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"m"}), CmpOp::kGe, "0", 1); }), seven), Match::kNo);
  EXPECT_EQ(Check(Build([](ProgramBuilder& b) { b.NumCmp(P({"n"}), CmpOp::kEq, "zz", 2); }), seven), Match::kMaybe);
}

TEST(MetaFilterEval, PathCompareTypes) {
  // '{"a":"1"}' vs $.a == 1: a string never equals a number.
  const J doc = J::Obj({{"a", J::Str("1")}, {"z", J::Null()}, {"b", J::Bool(false)}, {"o", J::Obj({})}});
  const auto sig = Encode(doc);
  struct Case {
    std::vector<std::string> path;
    CmpOp op;
    J c;
  };
  const std::vector<Case> cases = {
      {{"a"}, CmpOp::kEq, J::Num("1")},    {{"a"}, CmpOp::kEq, J::Str("1")},    {{"a"}, CmpOp::kNe, J::Num("1")},
      {{"a"}, CmpOp::kLt, J::Str("2")},    {{"z"}, CmpOp::kEq, J::Null()},      {{"z"}, CmpOp::kLt, J::Null()},
      {{"z"}, CmpOp::kLe, J::Null()},      {{"z"}, CmpOp::kNe, J::Num("1")},    {{"a"}, CmpOp::kNe, J::Null()},
      {{"b"}, CmpOp::kLt, J::Bool(true)},  {{"b"}, CmpOp::kGt, J::Bool(false)}, {{"b"}, CmpOp::kNe, J::Bool(false)},
      {{"b"}, CmpOp::kGe, J::Bool(false)}, {{"o"}, CmpOp::kNe, J::Null()},      {{"o"}, CmpOp::kEq, J::Null()},
      {{"x"}, CmpOp::kNe, J::Null()},      {{"b"}, CmpOp::kEq, J::Num("0")},    {{"z"}, CmpOp::kNe, J::Bool(true)},
  };
  for (const Case& c : cases) {
    const bool truth = RefPathCompare(doc, c.path, c.op, c.c);
    const Match m = Check(Build([&](ProgramBuilder& b) {
                          b.PathCompare(PathOf(c.path), c.op, KindOf(c.c), c.c.s.data(), c.c.s.size());
                        }),
                        sig);
    if (truth) {
      EXPECT_EQ(m, Match::kMaybe) << c.path[0] << " " << static_cast<int>(c.op) << " " << Show(c.c);
    }
  }
  auto cmp = [&](const char* key, CmpOp op, const J& c) {
    return Check(Build([&](ProgramBuilder& b) { b.PathCompare(P({key}), op, KindOf(c), c.s.data(), c.s.size()); }),
               sig);
  };
  EXPECT_EQ(cmp("a", CmpOp::kEq, J::Num("1")), Match::kNo);
  EXPECT_EQ(cmp("a", CmpOp::kEq, J::Str("1")), Match::kMaybe);
  EXPECT_EQ(cmp("z", CmpOp::kLt, J::Null()), Match::kNo);
  EXPECT_EQ(cmp("z", CmpOp::kNe, J::Num("1")), Match::kMaybe);
  EXPECT_EQ(cmp("b", CmpOp::kGt, J::Bool(false)), Match::kNo);
  EXPECT_EQ(cmp("b", CmpOp::kLt, J::Bool(true)), Match::kMaybe);
  EXPECT_EQ(cmp("b", CmpOp::kEq, J::Num("0")), Match::kNo);
  EXPECT_EQ(cmp("o", CmpOp::kEq, J::Null()), Match::kNo);
  EXPECT_EQ(cmp("x", CmpOp::kNe, J::Null()), Match::kNo);
}

TEST(MetaFilterEval, Containment) {
  const J doc = J::Obj({{"tenant", J::Num("7")},
                        {"tags", J::Arr({J::Str("a"), J::Str("b")})},
                        {"author", J::Obj({{"name", J::Str("x")}, {"ids", J::Arr({J::Num("1"), J::Num("2")})}})}});
  const auto sig = Encode(doc);
  auto contains = [&](const J& q) {
    const Match m = Check(Build([&](ProgramBuilder& b) { AddContainment(b, q); }), sig);
    if (RefContains(doc, q)) {
      EXPECT_EQ(m, Match::kMaybe) << Show(q);
    }
    return m;
  };
  EXPECT_EQ(contains(J::Obj({{"tenant", J::Num("7")}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"tenant", J::Num("7.0")}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"tenant", J::Num("8")}})), Match::kNo);
  EXPECT_EQ(contains(J::Obj({{"tenant", J::Str("7")}})), Match::kNo);
  EXPECT_EQ(contains(J::Obj({{"tags", J::Arr({J::Str("b")})}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"tags", J::Arr({J::Str("b"), J::Str("c")})}})), Match::kNo);
  EXPECT_EQ(contains(J::Obj({{"tags", J::Arr({})}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"author", J::Obj({})}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"author", J::Obj({{"ids", J::Arr({J::Num("2")})}})}})), Match::kMaybe);
  EXPECT_EQ(contains(J::Obj({{"author", J::Obj({{"ids", J::Arr({J::Num("3")})}})}})), Match::kNo);
  EXPECT_EQ(contains(J::Obj({{"nothing", J::Obj({})}})), Match::kNo);
  EXPECT_EQ(contains(J::Obj({})), Match::kMaybe);
  // Lossy: arrays are flattened, so {"tags":"a"} (false in jsonb) is kMaybe.
  EXPECT_EQ(contains(J::Obj({{"tags", J::Str("a")}})), Match::kMaybe);
}

TEST(MetaFilterProgram, FoldingAndDescribe) {
  EXPECT_EQ(Build([](ProgramBuilder&) {}).kind, ProgramKind::kAlwaysMaybe);
  EXPECT_EQ(Build([](ProgramBuilder& b) { b.No(); }).kind, ProgramKind::kAlwaysNo);
  EXPECT_EQ(Build([](ProgramBuilder& b) {
              b.OpenOr();
              b.Close();
            }).kind,
            ProgramKind::kAlwaysNo);  // ?| '{}'
  EXPECT_EQ(Build([](ProgramBuilder& b) {
              b.OpenAnd();
              b.Close();
            }).kind,
            ProgramKind::kAlwaysMaybe);  // ?& '{}'
  EXPECT_EQ(Build([](ProgramBuilder& b) {
              b.OpenOr();
              b.HasPath(P({"a"}));
              b.Maybe();
              b.Close();
            }).kind,
            ProgramKind::kAlwaysMaybe);
  EXPECT_EQ(Build([](ProgramBuilder& b) {
              b.HasPath(P({"a"}));
              b.OpenOr();
              b.No();
              b.No();
              b.Close();
            }).kind,
            ProgramKind::kAlwaysNo);
  const Program p = Build([](ProgramBuilder& b) {
    b.OpenAnd();
    b.Maybe();
    b.OpenAnd();
    b.HasPath(P({"a"}));
    b.OpenOr();
    b.HasPath(P({"b"}));
    b.No();
    b.Close();
    b.Close();
    b.OpenOr();
    b.HasPath(P({"c"}));
    b.OpenOr();
    b.HasPath(P({"d"}));
    b.HasPath(P({"e"}));
    b.Close();
    b.Close();
    b.Close();
    b.NumCmp(P({"n"}), CmpOp::kGe, "2", 1);
  });
  EXPECT_EQ(p.kind, ProgramKind::kDepends);
  // and(a, b, or(c, d, e), n >= 2): constants gone, groups flattened.
  EXPECT_EQ(p.nodes.size(), 8u) << p.text;
  EXPECT_EQ(p.nodes[0].op, NodeOp::kAnd);
  EXPECT_EQ(p.text.substr(0, 4), "and(");
  EXPECT_NE(p.text.find("or(path("), std::string::npos) << p.text;
  EXPECT_NE(p.text.find("num("), std::string::npos) << p.text;
}

TEST(MetaFilterProgram, OverflowIsMaybe) {
  // Too deep: the program gives up and says kMaybe.
  const Program deep = Build([](ProgramBuilder& b) {
    for (int i = 0; i < 100; i++) b.OpenOr();
    b.No();
    for (int i = 0; i < 100; i++) b.Close();
  });
  EXPECT_EQ(deep.kind, ProgramKind::kAlwaysMaybe);
  // Memory exhausted: likewise.
  struct Failing {
    static void* Alloc(void*, std::size_t) { return nullptr; }
    static void Free(void*, void*) {}
  };
  ProgramBuilder b;
  b.Init(hnsw::Allocator{&Failing::Alloc, &Failing::Free, nullptr});
  b.No();
  std::uint32_t n = 0;
  const Node* prog = b.Finish(&n);
  EXPECT_EQ(Classify(prog, n), ProgramKind::kAlwaysMaybe);
  // Unbalanced closes are a caller bug, still safe.
  const Program unbalanced = Build([](ProgramBuilder& b2) {
    b2.No();
    b2.Close();
  });
  EXPECT_EQ(unbalanced.kind, ProgramKind::kAlwaysMaybe);
  // Many nodes grow the buffer.
  const Program big = Build([](ProgramBuilder& b2) {
    b2.OpenOr();
    for (int i = 0; i < 5000; i++) b2.HasPath(P({"k"}));
    b2.Close();
  });
  EXPECT_EQ(big.nodes.size(), 5001u);
}

// ---------------------------------------------------------------------------
// Randomized: random documents and queries against the exact reference.

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(std::uint64_t seed) : rng(seed) {}
  int Int(int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); }
  std::string Key() {
    static const char* keys[] = {"a", "b", "c", "tags", "n"};
    return keys[Int(5)];
  }
  J Scalar() {
    static const char* strs[] = {"x", "y", "z", "1", "a", "tags", ""};
    static const char* nums[] = {"0", "1", "1.0", "2", "-1", "2.5", "0.1", "1e2", "100", "16777217", "3"};
    switch (Int(6)) {
      case 0:
        return J::Null();
      case 1:
        return J::Bool(Int(2) == 1);
      case 2:
      case 3:
        return J::Num(nums[Int(11)]);
      default:
        return J::Str(strs[Int(7)]);
    }
  }
  J Value(int depth) {
    const int r = Int(10);
    if (depth <= 0 || r < 5) return Scalar();
    if (r < 7) {
      std::vector<J> v;
      for (int i = Int(4); i > 0; i--) v.push_back(Value(depth - 1));
      return J::Arr(v);
    }
    return Object(depth - 1);
  }
  J Object(int depth) {
    std::vector<std::pair<std::string, J>> v;
    for (int i = Int(4); i > 0; i--) {
      const std::string k = Key();
      bool dup = false;
      for (auto& kv : v) dup |= kv.first == k;
      if (!dup) v.emplace_back(k, Value(depth));
    }
    return J::Obj(v);
  }
  J Doc() {
    const int r = Int(20);
    if (r == 0) return Scalar();
    if (r == 1) return Value(2);
    return Object(3);
  }
  // A containment query: often a piece of the document (so that some are true).
  J Piece(const J& d, int depth) {
    if (d.IsScalar()) return Int(4) == 0 ? Scalar() : d;
    if (d.type == J::kArr) {
      std::vector<J> v;
      for (const J& e : d.arr)
        if (Int(2)) v.push_back(Piece(e, depth + 1));
      if (Int(6) == 0) v.push_back(Scalar());
      return J::Arr(v);
    }
    std::vector<std::pair<std::string, J>> v;
    for (const auto& kv : d.obj)
      if (Int(2)) v.emplace_back(kv.first, Piece(kv.second, depth + 1));
    if (Int(6) == 0) {
      const std::string k = Key();
      bool dup = false;
      for (auto& kv : v) dup |= kv.first == k;
      if (!dup) v.emplace_back(k, Value(1));
    }
    return J::Obj(v);
  }
  std::vector<std::string> Path() {
    std::vector<std::string> p{Key()};
    if (Int(3) == 0) p.push_back(Key());
    return p;
  }
};

struct Tally {
  long true_count = 0;
  long false_count = 0;
  long excluded = 0;  // kNo among false
  void Add(bool truth, Match m) {
    if (truth) {
      true_count++;
    } else {
      false_count++;
      excluded += m == Match::kNo;
    }
  }
  double FalsePositiveRate() const { return false_count ? 1.0 - double(excluded) / double(false_count) : 0.0; }
};

// A random query: a reference truth value and the program that filters it.
struct Query {
  enum Kind { kContains, kKey, kAnyKeys, kAllKeys, kCompare, kExists, kAnd, kOr, kNumKinds } kind;
  J value;
  std::vector<std::string> keys;
  CmpOp op = CmpOp::kEq;
  std::vector<Query> children;

  bool Truth(const J& doc) const {
    switch (kind) {
      case kContains:
        return RefContains(doc, value);
      case kKey:
        return RefKeyExists(doc, keys[0]);
      case kAnyKeys:
        for (const auto& k : keys)
          if (RefKeyExists(doc, k)) return true;
        return false;
      case kAllKeys:
        for (const auto& k : keys)
          if (!RefKeyExists(doc, k)) return false;
        return true;
      case kCompare:
        return RefPathCompare(doc, keys, op, value);
      case kExists:
        return !RefLaxPath(doc, keys).empty();
      case kAnd:
        for (const auto& c : children)
          if (!c.Truth(doc)) return false;
        return true;
      case kOr:
        for (const auto& c : children)
          if (c.Truth(doc)) return true;
        return false;
      default:
        return false;
    }
  }
  void Emit(ProgramBuilder& b) const {
    switch (kind) {
      case kContains:
        AddContainment(b, value);
        return;
      case kKey:
        b.KeyExists(keys[0].data(), keys[0].size());
        return;
      case kAnyKeys:
      case kAllKeys:
        if (kind == kAnyKeys)
          b.OpenOr();
        else
          b.OpenAnd();
        for (const auto& k : keys) b.KeyExists(k.data(), k.size());
        b.Close();
        return;
      case kCompare:
        b.PathCompare(PathOf(keys), op, KindOf(value), value.s.data(), value.s.size());
        return;
      case kExists:
        b.HasPath(PathOf(keys));
        return;
      case kAnd:
      case kOr:
        if (kind == kAnd)
          b.OpenAnd();
        else
          b.OpenOr();
        for (const auto& c : children) c.Emit(b);
        b.Close();
        return;
      default:
        b.Maybe();
    }
  }
  std::string Text() const {
    switch (kind) {
      case kContains:
        return "@> " + Show(value);
      case kKey:
      case kAnyKeys:
      case kAllKeys: {
        std::string s = kind == kKey ? "? " : (kind == kAnyKeys ? "?| " : "?& ");
        for (const auto& k : keys) s += k + " ";
        return s;
      }
      case kCompare:
      case kExists: {
        std::string s = kind == kExists ? "exists $" : "$";
        for (const auto& k : keys) s += "." + k;
        if (kind == kCompare) s += " op" + std::to_string(static_cast<int>(op)) + " " + Show(value);
        return s;
      }
      default: {
        std::string s = kind == kAnd ? "and(" : "or(";
        for (const auto& c : children) s += c.Text() + ", ";
        return s + ")";
      }
    }
  }
};

Query RandomQuery(Gen& g, const J& doc, int depth) {
  Query q;
  const int r = g.Int(depth > 0 ? 8 : 6);
  if (r == 6 || r == 7) {
    q.kind = r == 6 ? Query::kAnd : Query::kOr;
    for (int i = g.Int(3) + 1; i > 0; i--) q.children.push_back(RandomQuery(g, doc, depth - 1));
    return q;
  }
  q.kind = static_cast<Query::Kind>(r);
  switch (q.kind) {
    case Query::kContains:
      q.value = g.Int(3) ? g.Piece(doc, 0) : g.Doc();
      break;
    case Query::kKey:
      q.keys = {g.Int(4) ? g.Key() : g.Scalar().s};
      break;
    case Query::kAnyKeys:
    case Query::kAllKeys:
      for (int i = g.Int(4); i > 0; i--) q.keys.push_back(g.Key());
      break;
    case Query::kCompare:
      q.keys = g.Path();
      q.op = static_cast<CmpOp>(g.Int(6));
      q.value = g.Scalar();
      break;
    default:
      q.keys = g.Path();
      break;
  }
  return q;
}

TEST(MetaFilterRandom, NeverExcludesAMatch) {
  Gen g(20240607);
  Tally all, by_kind[Query::kNumKinds];
  long truncated = 0, bytes = 0, docs = 0;
  for (int d = 0; d < 3000; d++) {
    const J doc = g.Doc();
    EncodeOptions opt;
    opt.wide_numbers = g.Int(4) == 0;
    opt.max_bytes = g.Int(10) == 0 ? 32 : kDefaultMaxSignatureBytes;
    const auto sig = Encode(doc, opt);
    docs++;
    bytes += static_cast<long>(sig.size());
    truncated += sig.size() == 1;
    for (int k = 0; k < 40; k++) {
      const Query q = RandomQuery(g, doc, 2);
      const Program p = Build([&](ProgramBuilder& b) { q.Emit(b); });
      const bool truth = q.Truth(doc);
      const Match m = Check(p, sig);
      if (truth) {
        ASSERT_EQ(m, Match::kMaybe) << "doc " << Show(doc) << "\nquery " << q.Text() << "\nprogram " << p.text;
      }
      if (sig.size() > 1) {  // complete signatures: the false-positive rate
        all.Add(truth, m);
        by_kind[q.kind].Add(truth, m);
      }
    }
  }
  const char* names[] = {"@>", "?", "?|", "?&", "compare", "exists", "and", "or"};
  std::printf("[ MetaFilter ] %ld docs, %.1f signature bytes on average, %ld truncated\n", docs,
              double(bytes) / double(docs), truncated);
  for (int k = 0; k < Query::kNumKinds; k++)
    std::printf("[ MetaFilter ] %-8s true %6ld  false %6ld  false positives %.1f%%\n", names[k],
                by_kind[k].true_count, by_kind[k].false_count, 100.0 * by_kind[k].FalsePositiveRate());
  std::printf("[ MetaFilter ] all      true %6ld  false %6ld  false positives %.1f%%\n", all.true_count,
              all.false_count, 100.0 * all.FalsePositiveRate());
  RecordProperty("false_positive_rate_percent", static_cast<int>(100.0 * all.FalsePositiveRate()));
  // Most non-matching rows are excluded.
  EXPECT_LT(all.FalsePositiveRate(), 0.25);
  EXPECT_GT(all.true_count, 1000);
}

// Link codes: never exclude what the signature keeps (random documents and
// queries), and exclude most of what it excludes.
TEST(MetaFilterLinkCode, NeverExcludesWhatTheSignatureKeeps) {
  Gen g(777);
  long sig_no = 0, code_no = 0;
  for (int d = 0; d < 3000; d++) {
    const J doc = g.Doc();
    EncodeOptions opt;
    opt.wide_numbers = g.Int(4) == 0;
    opt.max_bytes = g.Int(10) == 0 ? 32 : kDefaultMaxSignatureBytes;
    const auto sig = Encode(doc, opt);
    const LinkCode code = MakeLinkCode(sig.data(), sig.size());
    for (int k = 0; k < 40; k++) {
      const Query q = RandomQuery(g, doc, 2);
      const Program p = Build([&](ProgramBuilder& b) { q.Emit(b); });
      const Match by_sig = Check(p, sig);
      const Match by_code = EvalCode(p.nodes.data(), static_cast<std::uint32_t>(p.nodes.size()), code);
      if (by_sig == Match::kMaybe) {
        ASSERT_EQ(by_code, Match::kMaybe) << "doc " << Show(doc) << "\nquery " << q.Text() << "\nprogram " << p.text;
      } else {
        sig_no++;
        code_no += by_code == Match::kNo;
      }
    }
  }
  std::printf("[ LinkCode ] the signature excludes %ld, the code %ld of them (%.1f%%)\n", sig_no, code_no,
              100.0 * double(code_no) / double(sig_no));
  EXPECT_GT(sig_no, 10000);
  EXPECT_GT(code_no, sig_no / 2);
}

// The flat code test equals EvalCode on every code: the documents' own
// codes, random codes and codes with a few bits cleared.
TEST(MetaFilterLinkCode, CodeTestEqualsEvalCode) {
  Gen g(4242);
  std::mt19937_64 rng(17);
  long compiled = 0, programs = 0, checks = 0;
  for (int d = 0; d < 1500; d++) {
    const J doc = g.Doc();
    const auto sig = Encode(doc, EncodeOptions());
    const LinkCode code = MakeLinkCode(sig.data(), sig.size());
    for (int k = 0; k < 20; k++) {
      const Query q = RandomQuery(g, doc, 2);
      const Program p = Build([&](ProgramBuilder& b) { q.Emit(b); });
      const auto n = static_cast<std::uint32_t>(p.nodes.size());
      programs++;
      CodeTest t;
      if (!CompileCodeTest(p.nodes.data(), n, &t)) continue;
      compiled++;
      LinkCode probes[8] = {code, kAllLinks, 0, rng(), rng() | rng(), code & rng(), code & ~(LinkCode{1} << (rng() & 63)),
                            code | rng()};
      for (LinkCode c : probes) {
        checks++;
        ASSERT_EQ(CodeTestMatches(t, c), EvalCode(p.nodes.data(), n, c) == Match::kMaybe)
            << "query " << q.Text() << "\nprogram " << p.text << "\ncode " << c;
      }
    }
  }
  std::printf("[ LinkCode ] %ld of %ld programs flattened, %ld codes checked\n", compiled, programs, checks);
  EXPECT_GT(compiled, programs * 9 / 10);
  // An empty program and constants.
  CodeTest t;
  ASSERT_TRUE(CompileCodeTest(nullptr, 0, &t));
  EXPECT_TRUE(CodeTestMatches(t, 0));
  const Program no = Build([&](ProgramBuilder& b) { b.No(); });
  ASSERT_TRUE(CompileCodeTest(no.nodes.data(), static_cast<std::uint32_t>(no.nodes.size()), &t));
  EXPECT_FALSE(CodeTestMatches(t, kAllLinks));
}

TEST(MetaFilterLinkCode, NumbersAndSpecialSignatures) {
  auto program = [](const char* key, CmpOp op, const char* num) {
    return Build([&](ProgramBuilder& b) { b.NumCmp(P({key}), op, num, std::strlen(num)); });
  };
  auto eval = [](const Program& p, LinkCode c) {
    return EvalCode(p.nodes.data(), static_cast<std::uint32_t>(p.nodes.size()), c);
  };
  auto code_of = [](const std::vector<std::uint8_t>& sig) { return MakeLinkCode(sig.data(), sig.size()); };
  for (bool wide : {false, true}) {
    EncodeOptions opt;
    opt.wide_numbers = wide;
    // Exact numbers: equality is decided by value; -0 equals 0.
    const LinkCode c = code_of(Encode(J::Obj({{"label", J::Num("3")}, {"z", J::Num("-0")}}), opt));
    EXPECT_EQ(eval(program("label", CmpOp::kEq, "3"), c), Match::kMaybe);
    EXPECT_EQ(eval(program("label", CmpOp::kEq, "3.0"), c), Match::kMaybe);
    EXPECT_EQ(eval(program("z", CmpOp::kEq, "0"), c), Match::kMaybe);
    int excluded = 0;
    for (int v = 0; v < 100; v++) {
      const std::string t = std::to_string(v);
      if (v != 3) excluded += eval(program("label", CmpOp::kEq, t.c_str()), c) == Match::kNo;
    }
    EXPECT_GE(excluded, 95);
    // Ranges only test the path; a missing path excludes.
    EXPECT_EQ(eval(program("label", CmpOp::kLt, "1"), c), Match::kMaybe);
    EXPECT_EQ(eval(program("absent", CmpOp::kLt, "1"), c), Match::kNo);
    // An inexactly stored number matches any equality at its path.
    const LinkCode ci = code_of(Encode(J::Obj({{"x", J::Num("0.1")}}), opt));
    EXPECT_EQ(eval(program("x", CmpOp::kEq, "0.1"), ci), Match::kMaybe);
  }
  // No information: every bit. SQL NULL: none (every program excludes it).
  EXPECT_EQ(MakeLinkCode(nullptr, 0), kAllLinks);
  const std::uint8_t bad[] = {0xFF, 1, 2};
  EXPECT_EQ(MakeLinkCode(bad, sizeof bad), kAllLinks);
  std::uint8_t null_sig[4];
  EXPECT_EQ(MakeLinkCode(null_sig, EncodeNull(null_sig, sizeof null_sig)), LinkCode{0});
}

// Random decimal numbers (many digits, all magnitudes) against exact
// decimal comparison.
TEST(MetaFilterRandom, NumbersNeverExcludeAMatch) {
  std::mt19937_64 rng(99);
  auto decimal = [&]() {
    std::string s;
    if (rng() % 5 == 0) {  // a binary fraction, written exactly: m / 2^j
      const int j = static_cast<int>(rng() % 12);
      const double v = static_cast<double>(static_cast<std::int64_t>(rng() % 2000000) - 1000000) / std::ldexp(1.0, j);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*f", j, v);
      return std::string(buf);
    }
    if (rng() % 3 == 0) s += '-';
    const int int_digits = static_cast<int>(rng() % 12);
    for (int i = 0; i < int_digits; i++) s += static_cast<char>('0' + rng() % 10);
    if (int_digits == 0) s += '0';
    if (rng() % 2) {
      s += '.';
      const int frac = static_cast<int>(rng() % 25) + 1;
      for (int i = 0; i < frac; i++) s += static_cast<char>('0' + rng() % 10);
    }
    if (rng() % 4 == 0) s += "e" + std::to_string(static_cast<int>(rng() % 90) - 45);
    return s;
  };
  const CmpOp ops[] = {CmpOp::kEq, CmpOp::kNe, CmpOp::kLt, CmpOp::kLe, CmpOp::kGt, CmpOp::kGe};
  // Comparisons of numbers more than 1e-6 apart (relative) that the stored
  // precision can tell apart, and the others (near-equal, or outside the
  // float range in narrow signatures): rounding blurs those.
  long false_count = 0, excluded = 0;
  long near_false = 0, near_excluded = 0;
  for (int i = 0; i < 20000; i++) {
    std::string x = decimal();
    std::string q = rng() % 4 == 0 ? x : decimal();
    if (rng() % 8 == 0) {  // near-equal: differ in the last digit
      q = x;
      char& c = q.back();
      if (c >= '0' && c <= '8') c++;
    }
    EncodeOptions opt;
    opt.wide_numbers = rng() % 2;
    const J doc = J::Obj({{"n", J::Num(x)}});
    const auto sig = Encode(doc, opt);
    for (CmpOp op : ops) {
      const bool truth = RefPathCompare(doc, {"n"}, op, J::Num(q));
      const Match m =
          Check(Build([&](ProgramBuilder& b) { b.NumCmp(P({"n"}), op, q.data(), q.size()); }), sig);
      if (truth) {
        ASSERT_EQ(m, Match::kMaybe) << x << " op" << static_cast<int>(op) << " " << q << " wide=" << opt.wide_numbers;
      } else {
        Number a, b;
        ASSERT_TRUE(ParseNumber(x.data(), x.size(), &a).ok());
        ASSERT_TRUE(ParseNumber(q.data(), q.size(), &b).ok());
        auto outside_float = [](double v) { return v != 0 && (std::fabs(v) < 1e-37 || std::fabs(v) > 3e38); };
        const bool near = std::fabs(a.value - b.value) <= 1e-6 * std::max(std::fabs(a.value), std::fabs(b.value)) ||
                          (!opt.wide_numbers && (outside_float(a.value) || outside_float(b.value)));
        (near ? near_false : false_count)++;
        (near ? near_excluded : excluded) += m == Match::kNo;
      }
    }
  }
  std::printf("[ MetaFilter ] numbers: %ld false comparisons of distinct numbers, %.3f%% not excluded; "
              "%ld of near-equal or out-of-range ones, %.1f%% not excluded\n",
              false_count, 100.0 * (1.0 - double(excluded) / double(false_count)), near_false,
              100.0 * (1.0 - double(near_excluded) / double(near_false)));
  EXPECT_EQ(excluded, false_count);
}

}  // namespace
}  // namespace vecext::meta
