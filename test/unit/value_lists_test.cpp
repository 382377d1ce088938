// Unit tests of value lists (docs/filtering.md): the value keys of metadata
// signatures and of filter programs (core/meta_filter.h: ValueKeys,
// RequiredValueKeys, ValueKeyNode) and the builder of the per-value graphs
// (core/hnsw_value_lists.h: ValueListBuilder) over a small GraphBuilder.
//
// The property everything rests on: a row's signature has the key a
// filter requires exactly when the row has the value the filter names, so
// that following the lists of that key never skips a matching row of a
// frequent value and never leads to a row without it.
#include "core/hnsw_value_lists.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/hnsw_build.h"
#include "core/index_distance.h"
#include "core/meta_filter.h"
#include "core/sq8.h"

namespace vecext {
namespace {

using meta::CmpOp;
using meta::EncodeOptions;
using meta::Item;
using meta::Match;
using meta::Node;
using meta::NodeOp;
using meta::PathHash;
using meta::ProgramBuilder;
using meta::SignatureEncoder;
using meta::SignatureView;
using meta::ValueKey;
using meta::ValueKind;

// ---------------------------------------------------------------------------
// Signatures and programs

PathHash PathOf(std::initializer_list<const char*> keys) {
  PathHash p = meta::RootPath();
  for (const char* k : keys) p = meta::ChildPath(p, k, std::strlen(k));
  return p;
}

// A scalar item at `path` (text: a string's bytes or a number's decimal text).
Item Scalar(PathHash path, ValueKind kind, const std::string* text = nullptr) {
  return Item{path, kind, text != nullptr ? text->data() : nullptr, text != nullptr ? text->size() : 0};
}

// The signature of a stream of items (the glue's walk of a jsonb).
std::vector<std::uint8_t> Encode(const std::vector<Item>& items, EncodeOptions opt = {}) {
  std::unique_ptr<SignatureEncoder> enc(new SignatureEncoder);
  enc->Init(opt);
  for (const Item& it : items) EXPECT_TRUE(enc->Add(it).ok());
  std::vector<std::uint8_t> out(meta::kMaxSignatureBytes);
  std::size_t len = 0;
  EXPECT_TRUE(enc->Finish(out.data(), out.size(), &len).ok());
  out.resize(len);
  return out;
}

// The value keys of a signature (every one of them, in signature order).
std::vector<ValueKey> KeysOf(const std::uint8_t* sig, std::size_t len) {
  SignatureView v;
  if (!meta::ParseSignature(sig, len, &v).ok()) {
    ADD_FAILURE() << "invalid signature";
    return {};
  }
  std::vector<ValueKey> keys(SignatureEncoder::kValueCap + SignatureEncoder::kNumberCap);
  const std::size_t n = meta::ValueKeys(v, keys.data(), keys.size());
  EXPECT_LE(n, keys.size());
  keys.resize(std::min(n, keys.size()));
  return keys;
}
std::vector<ValueKey> KeysOf(const std::vector<std::uint8_t>& sig) { return KeysOf(sig.data(), sig.size()); }

bool Contains(const std::vector<ValueKey>& keys, ValueKey k) {
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

// A program built by `fill`.
struct Program {
  std::vector<Node> nodes;
  std::uint32_t n() const { return static_cast<std::uint32_t>(nodes.size()); }
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
  b.Release();
  return p;
}

std::vector<ValueKey> Required(const Program& p, std::size_t cap = 8) {
  std::vector<ValueKey> keys(cap);
  const std::size_t n = meta::RequiredValueKeys(p.nodes.data(), p.n(), keys.data(), cap);
  EXPECT_LE(n, cap);
  keys.resize(n);
  return keys;
}

// jsonb @> of one scalar at a path (what the glue compiles it to).
Program Contains1(PathHash path, ValueKind kind, const std::string& text = "") {
  return Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.ContainedItem(Scalar(path, kind, &text));
    b.Close();
  });
}

// The key a one-value containment query requires (kNoValueKey: none).
ValueKey QueryKey(PathHash path, ValueKind kind, const std::string& text = "") {
  const std::vector<ValueKey> keys = Required(Contains1(path, kind, text));
  EXPECT_LE(keys.size(), 1u);
  return keys.empty() ? meta::kNoValueKey : keys[0];
}

// The one key of a document holding one number at path `n`.
std::vector<ValueKey> NumberDocKeys(const std::string& text, bool wide = false) {
  EncodeOptions opt;
  opt.wide_numbers = wide;
  return KeysOf(Encode({Scalar(PathOf({"n"}), ValueKind::kNumber, &text)}, opt));
}

ValueKey KindOf(ValueKey k) { return k >> 62; }

// ---------------------------------------------------------------------------
// ValueKeys

TEST(ValueKeys, StringsBooleansAndNulls) {
  const PathHash s = PathOf({"s"}), t = PathOf({"t"}), f = PathOf({"f"}), z = PathOf({"z"});
  const std::string x = "x", y = "y";
  const auto keys = KeysOf(Encode({Scalar(s, ValueKind::kString, &x), Scalar(t, ValueKind::kTrue),
                                   Scalar(f, ValueKind::kFalse), Scalar(z, ValueKind::kNull)}));
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(std::set<ValueKey>(keys.begin(), keys.end()).size(), 4u);
  for (ValueKey k : keys) {
    EXPECT_NE(k, meta::kNoValueKey);
    EXPECT_EQ(KindOf(k), 1u) << std::hex << k;
  }
  // The same value at the same path: the same key, alone or among others,
  // as a scalar or inside an array.
  const auto alone = KeysOf(Encode({Scalar(s, ValueKind::kString, &x)}));
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_TRUE(Contains(keys, alone[0]));
  const auto in_array =
      KeysOf(Encode({Scalar(s, ValueKind::kContainer), Scalar(s, ValueKind::kString, &x), Scalar(s, ValueKind::kString, &y)}));
  ASSERT_EQ(in_array.size(), 2u);
  EXPECT_TRUE(Contains(in_array, alone[0]));
  // Another value, another path, another kind: another key.
  EXPECT_NE(KeysOf(Encode({Scalar(s, ValueKind::kString, &y)}))[0], alone[0]);
  EXPECT_NE(KeysOf(Encode({Scalar(t, ValueKind::kString, &x)}))[0], alone[0]);
  EXPECT_NE(KeysOf(Encode({Scalar(t, ValueKind::kFalse)}))[0], KeysOf(Encode({Scalar(t, ValueKind::kTrue)}))[0]);
  EXPECT_NE(KeysOf(Encode({Scalar(t, ValueKind::kNull)}))[0], KeysOf(Encode({Scalar(t, ValueKind::kFalse)}))[0]);
  const std::string one = "1";
  EXPECT_NE(KeysOf(Encode({Scalar(s, ValueKind::kString, &one)}))[0], NumberDocKeys("1")[0]);
  // The key a query for the value requires is the document's.
  EXPECT_EQ(QueryKey(s, ValueKind::kString, x), alone[0]);
  EXPECT_EQ(QueryKey(t, ValueKind::kTrue), KeysOf(Encode({Scalar(t, ValueKind::kTrue)}))[0]);
  EXPECT_EQ(QueryKey(z, ValueKind::kNull), KeysOf(Encode({Scalar(z, ValueKind::kNull)}))[0]);
}

TEST(ValueKeys, ExactNumbers) {
  const auto one = NumberDocKeys("1");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(KindOf(one[0]), 2u) << std::hex << one[0];
  // One number, several spellings; narrow and wide signatures agree.
  for (const char* text : {"1.0", "1e0", "1.000", "10e-1", "+1"}) {
    EXPECT_EQ(NumberDocKeys(text), one) << text;
  }
  EXPECT_EQ(NumberDocKeys("1", true), one);
  EXPECT_EQ(NumberDocKeys("1.0", true), one);
  const auto zero = NumberDocKeys("0");
  ASSERT_EQ(zero.size(), 1u);
  for (const char* text : {"-0", "0.0", "-0.0", "0e5"}) {
    EXPECT_EQ(NumberDocKeys(text), zero) << text;
    EXPECT_EQ(NumberDocKeys(text, true), zero) << text << " wide";
  }
  // Short binary fractions and large float-exact integers have keys too.
  for (const char* text : {"0.5", "2.25", "-3", "1e10", "16777216", "-1024.125"}) {
    const auto narrow = NumberDocKeys(text), wide = NumberDocKeys(text, true);
    ASSERT_EQ(narrow.size(), 1u) << text;
    EXPECT_EQ(narrow, wide) << text;
    EXPECT_NE(narrow[0], one[0]) << text;
    EXPECT_EQ(QueryKey(PathOf({"n"}), ValueKind::kNumber, text), narrow[0]) << text;
  }
  EXPECT_NE(NumberDocKeys("-1")[0], one[0]);
  EXPECT_NE(NumberDocKeys("2")[0], one[0]);
  // The path is part of the key.
  const std::string t1 = "1";
  EXPECT_NE(KeysOf(Encode({Scalar(PathOf({"m"}), ValueKind::kNumber, &t1)}))[0], one[0]);
  EXPECT_EQ(QueryKey(PathOf({"n"}), ValueKind::kNumber, "1.0"), one[0]);
  EXPECT_EQ(QueryKey(PathOf({"n"}), ValueKind::kNumber, "-0"), zero[0]);
}

TEST(ValueKeys, InexactNumbersHaveNoKey) {
  // Not a float32 (0.1, 2^24 + 1), not stored exactly (0.1 is no short
  // binary fraction; 20 digits), out of float range: no key, in narrow and
  // wide signatures alike.
  for (const char* text : {"0.1", "16777217", "12345678901234567890", "1e300", "3.3", "1e-50"}) {
    EXPECT_TRUE(NumberDocKeys(text).empty()) << text;
    EXPECT_TRUE(NumberDocKeys(text, true).empty()) << text << " wide";
    EXPECT_EQ(QueryKey(PathOf({"n"}), ValueKind::kNumber, text), meta::kNoValueKey) << text;
  }
  // Beside other values, only those have keys.
  const std::string x = "x", tenth = "0.1";
  const auto keys =
      KeysOf(Encode({Scalar(PathOf({"s"}), ValueKind::kString, &x), Scalar(PathOf({"n"}), ValueKind::kNumber, &tenth)}));
  EXPECT_EQ(keys.size(), 1u);
}

// A hand-made signature of one number entry: narrow or wide.
std::vector<std::uint8_t> NumberSignature(std::uint16_t tag, double x, bool wide) {
  std::vector<std::uint8_t> sig = {static_cast<std::uint8_t>((meta::kFormatVersion << 4) | (wide ? meta::kFlagWide : 0)),
                                   0, 1, static_cast<std::uint8_t>(tag & 0xFF), static_cast<std::uint8_t>(tag >> 8)};
  if (wide) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    for (int i = 0; i < 8; i++) sig.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  } else {
    const float f = static_cast<float>(x);
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    for (int i = 0; i < 4; i++) sig.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  }
  return sig;
}

TEST(ValueKeys, NegativeZeroAndNaNEntries) {
  // The encoder never stores -0 or NaN, but keys do not rely on it.
  const std::string zero = "0";
  const auto enc = Encode({Scalar(PathOf({"n"}), ValueKind::kNumber, &zero)});
  ASSERT_EQ(enc.size(), 9u);  // header 3 bytes, tag 2, float 4
  const std::uint16_t tag = static_cast<std::uint16_t>(enc[3] | (enc[4] << 8));
  ASSERT_TRUE(tag & 1);
  const auto key = KeysOf(enc);
  ASSERT_EQ(key.size(), 1u);
  EXPECT_EQ(NumberSignature(tag, 0.0, false), enc);
  EXPECT_EQ(KeysOf(NumberSignature(tag, -0.0, false)), key);
  EXPECT_EQ(KeysOf(NumberSignature(tag, -0.0, true)), key);
  EXPECT_TRUE(KeysOf(NumberSignature(tag, std::nan(""), false)).empty());
  EXPECT_TRUE(KeysOf(NumberSignature(tag, std::nan(""), true)).empty());
  // Wide: a double that is no float32 has no key; one that is has the
  // narrow key.
  EXPECT_TRUE(KeysOf(NumberSignature(tag, 0.1, true)).empty());
  EXPECT_TRUE(KeysOf(NumberSignature(tag, 16777217.0, true)).empty());
  EXPECT_EQ(KeysOf(NumberSignature(tag, 0.375, true)), KeysOf(NumberSignature(tag, 0.375, false)));
  // An entry without the exact bit has none.
  EXPECT_TRUE(KeysOf(NumberSignature(static_cast<std::uint16_t>(tag & 0xFFFE), 0.0, false)).empty());
}

TEST(ValueKeys, TruncatedNullAndEmptySignaturesHaveNone) {
  std::uint8_t null_sig[1];
  ASSERT_EQ(meta::EncodeNull(null_sig, 1), 1u);
  EXPECT_TRUE(KeysOf(null_sig, 1).empty());
  EXPECT_TRUE(KeysOf(nullptr, 0).empty());
  // Too many values for 16 bytes: truncated, and no key, not even of the
  // values that fitted.
  std::vector<std::string> texts;
  for (int i = 0; i < 20; i++) texts.push_back("v" + std::to_string(i));
  std::vector<Item> items;
  for (const std::string& t : texts) items.push_back(Scalar(PathOf({"s"}), ValueKind::kString, &t));
  EncodeOptions small;
  small.max_bytes = meta::kMinSignatureBytes;
  const auto truncated = Encode(items, small);
  ASSERT_EQ(truncated.size(), 1u);
  ASSERT_TRUE(truncated[0] & meta::kFlagTruncated);
  EXPECT_TRUE(KeysOf(truncated).empty());
  EXPECT_EQ(KeysOf(Encode(items)).size(), 20u);
  // A number that does not parse truncates the signature.
  std::unique_ptr<SignatureEncoder> enc(new SignatureEncoder);
  enc->Init(EncodeOptions{});
  const std::string bad = "1x";
  EXPECT_FALSE(enc->Add(Scalar(PathOf({"n"}), ValueKind::kNumber, &bad)).ok());
  std::vector<std::uint8_t> out(meta::kMaxSignatureBytes);
  std::size_t len = 0;
  ASSERT_TRUE(enc->Finish(out.data(), out.size(), &len).ok());
  EXPECT_TRUE(KeysOf(out.data(), len).empty());
}

TEST(ValueKeys, CapBoundsWritesNotTheCount) {
  const std::string a = "a", b = "b", two = "2";
  const auto sig = Encode({Scalar(PathOf({"s"}), ValueKind::kString, &a), Scalar(PathOf({"s"}), ValueKind::kString, &b),
                           Scalar(PathOf({"n"}), ValueKind::kNumber, &two)});
  SignatureView v;
  ASSERT_TRUE(meta::ParseSignature(sig.data(), sig.size(), &v).ok());
  ValueKey out[4] = {7, 7, 7, 7};
  EXPECT_EQ(meta::ValueKeys(v, out, 1), 3u);
  EXPECT_NE(out[0], 7u);
  EXPECT_EQ(out[1], 7u);
  EXPECT_EQ(meta::ValueKeys(v, out, 0), 3u);
  EXPECT_EQ(meta::ValueKeys(v, out, 4), 3u);
  EXPECT_EQ(out[3], 7u);
}

TEST(ValueKeys, ContainerEntriesAreKeysOfTheirOwn) {
  // {"a": {"b": "x"}}: a container entry at a (nothing else says a exists)
  // and the string at a.b. A query for {"a": {}} names no value.
  const std::string x = "x";
  const auto keys = KeysOf(Encode({Scalar(PathOf({"a"}), ValueKind::kContainer),
                                   Scalar(PathOf({"a", "b"}), ValueKind::kString, &x)}));
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_TRUE(Contains(keys, QueryKey(PathOf({"a", "b"}), ValueKind::kString, x)));
  EXPECT_EQ(QueryKey(PathOf({"a"}), ValueKind::kContainer), meta::kNoValueKey);
}

// ---------------------------------------------------------------------------
// RequiredValueKeys

TEST(RequiredValueKeys, ShapesOfPrograms) {
  const PathHash s = PathOf({"s"}), n = PathOf({"n"}), t = PathOf({"t"});
  const std::string x = "x", y = "y", seven = "7", tenth = "0.1", five = "5";
  const ValueKey kx = QueryKey(s, ValueKind::kString, x), k7 = QueryKey(n, ValueKind::kNumber, seven),
                 kt = QueryKey(t, ValueKind::kTrue);
  ASSERT_NE(kx, meta::kNoValueKey);
  ASSERT_NE(k7, meta::kNoValueKey);
  ASSERT_NE(kt, meta::kNoValueKey);

  // A single leaf (the program is folded to it).
  const Program leaf = Contains1(s, ValueKind::kString, x);
  ASSERT_EQ(leaf.n(), 1u);
  EXPECT_EQ(Required(leaf), std::vector<ValueKey>{kx});

  // AND of leaves: every one.
  const Program both = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.ContainedItem(Scalar(s, ValueKind::kString, &x));
    b.ContainedItem(Scalar(n, ValueKind::kNumber, &seven));
    b.ContainedItem(Scalar(t, ValueKind::kTrue));
    b.Close();
  });
  const auto req = Required(both);
  EXPECT_EQ(std::set<ValueKey>(req.begin(), req.end()), (std::set<ValueKey>{kx, k7, kt}));
  EXPECT_EQ(Required(both, 1).size(), 1u);  // cap
  EXPECT_EQ(meta::RequiredValueKeys(both.nodes.data(), both.n(), nullptr, 0), 0u);
  EXPECT_EQ(meta::RequiredValueKeys(both.nodes.data(), 0, nullptr, 4), 0u);

  // OR: no key is required.
  const Program either = Build([&](ProgramBuilder& b) {
    b.OpenOr();
    b.ContainedItem(Scalar(s, ValueKind::kString, &x));
    b.ContainedItem(Scalar(s, ValueKind::kString, &y));
    b.Close();
  });
  EXPECT_TRUE(Required(either).empty());
  // AND of a leaf and an OR: the leaf's.
  const Program mixed = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.OpenOr();
    b.ContainedItem(Scalar(s, ValueKind::kString, &x));
    b.ContainedItem(Scalar(s, ValueKind::kString, &y));
    b.Close();
    b.ContainedItem(Scalar(n, ValueKind::kNumber, &seven));
    b.Close();
  });
  EXPECT_EQ(Required(mixed), std::vector<ValueKey>{k7});

  // An inexact number, a range, inequality, key existence, a path: none.
  EXPECT_TRUE(Required(Contains1(n, ValueKind::kNumber, tenth)).empty());
  for (CmpOp op : {CmpOp::kLt, CmpOp::kLe, CmpOp::kGt, CmpOp::kGe, CmpOp::kNe}) {
    const Program range = Build([&](ProgramBuilder& b) {
      b.OpenAnd();
      b.PathCompare(n, op, ValueKind::kNumber, five.data(), five.size());
      b.Close();
    });
    EXPECT_TRUE(Required(range).empty()) << static_cast<int>(op);
  }
  const Program ne = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.PathCompare(s, CmpOp::kNe, ValueKind::kString, x.data(), x.size());
    b.Close();
  });
  EXPECT_TRUE(Required(ne).empty());
  EXPECT_TRUE(Required(Build([&](ProgramBuilder& b) { b.KeyExists("s", 1); })).empty());
  EXPECT_TRUE(Required(Build([&](ProgramBuilder& b) { b.HasPath(s); })).empty());
  EXPECT_TRUE(Required(Build([&](ProgramBuilder& b) { b.Maybe(); })).empty());
  EXPECT_TRUE(Required(Build([&](ProgramBuilder& b) { b.No(); })).empty());
  // A range beside an equality: the equality's.
  const Program range_and_eq = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.PathCompare(n, CmpOp::kLt, ValueKind::kNumber, five.data(), five.size());
    b.ContainedItem(Scalar(s, ValueKind::kString, &x));
    b.Close();
  });
  EXPECT_EQ(Required(range_and_eq), std::vector<ValueKey>{kx});
  // jsonpath equality (`$.n == 7`, `$.s == "x"`) requires what @> does.
  const Program path_eq = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.PathCompare(n, CmpOp::kEq, ValueKind::kNumber, seven.data(), seven.size());
    b.Close();
  });
  EXPECT_EQ(Required(path_eq), std::vector<ValueKey>{k7});
  const Program path_eq_s = Build([&](ProgramBuilder& b) {
    b.OpenAnd();
    b.PathCompare(s, CmpOp::kEq, ValueKind::kString, x.data(), x.size());
    b.Close();
  });
  EXPECT_EQ(Required(path_eq_s), std::vector<ValueKey>{kx});
}

// A small model of metadata documents over a fixed vocabulary: each path
// has a few values; equal values (7 and 7.0) share a class.
struct Vocab {
  struct Value {
    ValueKind kind;
    std::string text;
    int cls;     // values of one class are equal
    bool keyed;  // the value has a key (not an inexact number)
  };
  struct Path {
    std::vector<std::string> keys;  // 1 or 2 levels
    PathHash hash;
    std::vector<Value> values;
  };
  std::vector<Path> paths;

  Vocab() {
    auto add = [&](std::vector<std::string> keys, std::vector<Value> values) {
      Path p;
      p.keys = keys;
      p.hash = meta::RootPath();
      for (const std::string& k : keys) p.hash = meta::ChildPath(p.hash, k.data(), k.size());
      p.values = std::move(values);
      paths.push_back(p);
    };
    add({"tenant"}, {{ValueKind::kNumber, "1", 0, true},
                     {ValueKind::kNumber, "2", 1, true},
                     {ValueKind::kNumber, "7", 2, true},
                     {ValueKind::kNumber, "7.0", 2, true},
                     {ValueKind::kNumber, "0", 3, true},
                     {ValueKind::kNumber, "-0", 3, true},
                     {ValueKind::kNumber, "1e3", 4, true},
                     {ValueKind::kString, "1", 5, true},
                     {ValueKind::kString, "7", 6, true}});
    add({"tag"}, {{ValueKind::kString, "a", 0, true},
                  {ValueKind::kString, "b", 1, true},
                  {ValueKind::kString, "c", 2, true},
                  {ValueKind::kString, "", 3, true},
                  {ValueKind::kNull, "", 4, true}});
    add({"flag"}, {{ValueKind::kTrue, "", 0, true}, {ValueKind::kFalse, "", 1, true}, {ValueKind::kNull, "", 2, true}});
    add({"n"}, {{ValueKind::kNumber, "0.5", 0, true},
                {ValueKind::kNumber, "2.25", 1, true},
                {ValueKind::kNumber, "0.1", 2, false},
                {ValueKind::kNumber, "16777217", 3, false},
                {ValueKind::kNumber, "-3", 4, true},
                {ValueKind::kNumber, "-3.0", 4, true},
                {ValueKind::kNumber, "1e10", 5, true},
                {ValueKind::kTrue, "", 6, true}});
    add({"x", "y"}, {{ValueKind::kString, "p", 0, true}, {ValueKind::kString, "q", 1, true}});
  }
};

// A document: for some paths, one or more values (several: an array).
struct Doc {
  std::vector<std::pair<int, std::vector<int>>> fields;  // (path, value indexes)

  bool Has(const Vocab& v, int path, int cls) const {
    for (const auto& f : fields) {
      if (f.first != path) continue;
      for (int i : f.second)
        if (v.paths[path].values[i].cls == cls) return true;
    }
    return false;
  }

  std::vector<Item> Items(const Vocab& v) const {
    std::vector<Item> items;
    for (const auto& f : fields) {
      const Vocab::Path& p = v.paths[f.first];
      if (p.keys.size() == 2) items.push_back(Item{PathOf({p.keys[0].c_str()}), ValueKind::kContainer, nullptr, 0});
      if (f.second.size() > 1) items.push_back(Item{p.hash, ValueKind::kContainer, nullptr, 0});
      for (int i : f.second) items.push_back(Scalar(p.hash, p.values[i].kind, &p.values[i].text));
    }
    return items;
  }
};

Doc RandomDoc(const Vocab& v, std::mt19937_64& rng) {
  Doc d;
  for (int p = 0; p < static_cast<int>(v.paths.size()); p++) {
    if (rng() % 2) continue;
    const int nv = 1 + static_cast<int>(rng() % 3);
    std::vector<int> values;
    for (int i = 0; i < nv; i++) values.push_back(static_cast<int>(rng() % v.paths[p].values.size()));
    d.fields.emplace_back(p, values);
  }
  return d;
}

TEST(RequiredValueKeys, DocumentHasTheKeyExactlyWhenItHasTheValue) {
  const Vocab vocab;
  // The key of each (path, value) of the vocabulary, from a one-value query:
  // equal values share it, values of other classes or paths never do (no
  // hash collision in this vocabulary, or the property below could not be
  // exact), inexact numbers have none.
  std::map<std::pair<int, int>, ValueKey> class_key;  // (path, class)
  std::set<ValueKey> all;
  for (int p = 0; p < static_cast<int>(vocab.paths.size()); p++) {
    for (const Vocab::Value& val : vocab.paths[p].values) {
      const ValueKey k = QueryKey(vocab.paths[p].hash, val.kind, val.text);
      ASSERT_EQ(k != meta::kNoValueKey, val.keyed) << vocab.paths[p].keys[0] << " " << val.text;
      if (!val.keyed) continue;
      auto it = class_key.find({p, val.cls});
      if (it == class_key.end()) {
        ASSERT_TRUE(all.insert(k).second) << "key collision at " << val.text;
        class_key[{p, val.cls}] = k;
      } else {
        ASSERT_EQ(it->second, k) << val.text;
      }
    }
  }

  std::mt19937_64 rng(20261122);
  std::vector<Doc> docs;
  std::vector<std::vector<ValueKey>> doc_keys;
  for (int i = 0; i < 400; i++) {
    docs.push_back(RandomDoc(vocab, rng));
    EncodeOptions opt;
    opt.wide_numbers = rng() % 3 == 0;
    doc_keys.push_back(KeysOf(Encode(docs.back().Items(vocab), opt)));
  }

  long checked = 0, with_value = 0, queries_with_keys = 0;
  for (int q = 0; q < 300; q++) {
    // A containment query of 1..3 values at distinct paths, sometimes with
    // a range beside them (no key), sometimes under an OR (no key at all).
    std::vector<std::pair<int, int>> pairs;  // (path, value index)
    const int want = 1 + static_cast<int>(rng() % 3);
    for (int tries = 0; static_cast<int>(pairs.size()) < want && tries < 20; tries++) {
      const int p = static_cast<int>(rng() % vocab.paths.size());
      bool dup = false;
      for (const auto& pr : pairs) dup = dup || pr.first == p;
      if (!dup) pairs.emplace_back(p, static_cast<int>(rng() % vocab.paths[p].values.size()));
    }
    const int shape = static_cast<int>(rng() % 4);  // 0, 1: AND; 2: AND with a range; 3: OR
    const std::string five = "5";
    const Program prog = Build([&](ProgramBuilder& b) {
      if (shape == 3)
        b.OpenOr();
      else
        b.OpenAnd();
      for (const auto& pr : pairs) {
        const Vocab::Value& val = vocab.paths[pr.first].values[pr.second];
        b.ContainedItem(Scalar(vocab.paths[pr.first].hash, val.kind, &val.text));
      }
      if (shape == 2) b.PathCompare(PathOf({"n"}), CmpOp::kLt, ValueKind::kNumber, five.data(), five.size());
      b.Close();
    });
    const std::vector<ValueKey> req = Required(prog);
    std::set<ValueKey> expected;
    if (shape != 3 || pairs.size() == 1) {
      for (const auto& pr : pairs) {
        const Vocab::Value& val = vocab.paths[pr.first].values[pr.second];
        if (val.keyed) expected.insert(class_key.at({pr.first, val.cls}));
      }
    }
    ASSERT_EQ(std::set<ValueKey>(req.begin(), req.end()), expected) << "query " << q << " shape " << shape;
    ASSERT_EQ(req.size(), expected.size());
    if (!req.empty()) queries_with_keys++;
    for (const auto& pr : pairs) {
      const Vocab::Value& val = vocab.paths[pr.first].values[pr.second];
      if (!val.keyed) continue;
      const ValueKey k = class_key.at({pr.first, val.cls});
      for (std::size_t d = 0; d < docs.size(); d++) {
        const bool has = docs[d].Has(vocab, pr.first, val.cls);
        ASSERT_EQ(Contains(doc_keys[d], k), has) << "doc " << d << " path " << vocab.paths[pr.first].keys[0]
                                                 << " value " << val.text;
        checked++;
        with_value += has;
      }
    }
  }
  std::printf("[ ValueKeys ] %ld (document, key) pairs checked, %ld with the value; %ld of 300 queries with keys\n",
              checked, with_value, queries_with_keys);
  EXPECT_GT(with_value, 1000);
  EXPECT_GT(checked - with_value, 1000);
  EXPECT_GT(queries_with_keys, 150);
}

// ---------------------------------------------------------------------------
// ValueKeyNode

TEST(ValueKeyNode, RoundTripOnRandomDocuments) {
  const Vocab vocab;
  std::mt19937_64 rng(77);
  std::vector<std::vector<std::uint8_t>> sigs;
  for (int i = 0; i < 300; i++) {
    EncodeOptions opt;
    opt.wide_numbers = rng() % 2 == 0;
    sigs.push_back(Encode(RandomDoc(vocab, rng).Items(vocab), opt));
  }
  std::set<ValueKey> keys;
  for (const auto& sig : sigs)
    for (ValueKey k : KeysOf(sig)) keys.insert(k);
  ASSERT_GT(keys.size(), 20u);
  long maybe = 0, no = 0;
  for (ValueKey k : keys) {
    Node node;
    ASSERT_TRUE(meta::ValueKeyNode(k, &node)) << std::hex << k;
    // The node requires its own key.
    ValueKey back = 0;
    ASSERT_EQ(meta::RequiredValueKeys(&node, 1, &back, 1), 1u);
    EXPECT_EQ(back, k);
    meta::CodeTest test;
    const bool flat = meta::CompileCodeTest(&node, 1, &test);
    for (const auto& sig : sigs) {
      const bool has = Contains(KeysOf(sig), k);
      const Match m = meta::Eval(&node, 1, sig.data(), sig.size());
      const meta::LinkCode code = meta::MakeLinkCode(sig.data(), sig.size());
      if (has) {
        // Never excluded, by the signature or by its link code.
        ASSERT_EQ(m, Match::kMaybe) << std::hex << k;
        ASSERT_EQ(meta::EvalCode(&node, 1, code), Match::kMaybe) << std::hex << k;
        if (flat) {
          ASSERT_TRUE(meta::CodeTestMatches(test, code));
        }
        maybe++;
      } else {
        // This vocabulary has no collisions and no inexact number next to
        // an exact one: a document without the key is excluded.
        ASSERT_EQ(m, Match::kNo) << std::hex << k;
        no++;
      }
    }
  }
  EXPECT_GT(maybe, 500);
  EXPECT_GT(no, 500);
}

TEST(ValueKeyNode, RejectsKeysOfNoKind) {
  Node node;
  const ValueKey string_key = QueryKey(PathOf({"s"}), ValueKind::kString, "x");
  const ValueKey number_key = QueryKey(PathOf({"n"}), ValueKind::kNumber, "7");
  ASSERT_TRUE(meta::ValueKeyNode(string_key, &node));
  EXPECT_EQ(node.op, NodeOp::kHasValue);
  ASSERT_TRUE(meta::ValueKeyNode(number_key, &node));
  EXPECT_EQ(node.op, NodeOp::kNumCmp);
  EXPECT_EQ(node.cmp, CmpOp::kEq);
  EXPECT_EQ(node.lo, 7.0);
  EXPECT_EQ(node.hi, 7.0);
  EXPECT_FALSE(meta::ValueKeyNode(meta::kNoValueKey, &node));
  EXPECT_FALSE(meta::ValueKeyNode(ValueKey{3} << 62 | 5, &node));                // kind 3
  EXPECT_FALSE(meta::ValueKeyNode(ValueKey{5}, &node));                          // kind 0
  EXPECT_FALSE(meta::ValueKeyNode(string_key | (ValueKey{1} << 40), &node));     // junk above the entry
  EXPECT_FALSE(meta::ValueKeyNode(number_key | (ValueKey{1} << 32), &node));     // the exact bit
  EXPECT_FALSE(meta::ValueKeyNode(number_key | (ValueKey{1} << 50), &node));     // junk above the tag
  EXPECT_FALSE(meta::ValueKeyNode((number_key & ~ValueKey{0xFFFFFFFF}) | 0x7FC00000u, &node));  // NaN
}

// ---------------------------------------------------------------------------
// ValueListBuilder

using hnsw::GraphBuilder;
using hnsw::kNoValueLink;
using hnsw::ValueDirectoryEntry;
using hnsw::ValueListBuilder;
using hnsw::ValueListParams;

// Rows with metadata over a few attributes whose values are frequent,
// in the band or rare, and clustered vectors.
struct Table {
  std::size_t n = 0, dim = 0;
  std::vector<float> vectors;
  std::vector<std::vector<std::uint8_t>> sigs;
};

Table MakeTable(std::size_t n, std::size_t dim, std::uint64_t seed) {
  Table t;
  t.n = n;
  t.dim = dim;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const int clusters = 12;
  std::vector<float> centers(clusters * dim);
  for (float& c : centers) c = 2.0f * uni(rng);
  t.vectors.resize(n * dim);
  for (std::size_t i = 0; i < n; i++) {
    const std::size_t c = rng() % clusters;
    for (std::size_t j = 0; j < dim; j++) t.vectors[i * dim + j] = centers[c * dim + j] + 0.4f * gauss(rng);
  }
  // tenant: 0 on 40% of the rows (too frequent), 1..4 on 9% each (in the
  // band), 5..36 on the rest (rare); color: 4 values of 25% (too frequent)
  // or, on every 8th row, "teal"; n: i % 9 (11% each: in the band); vip on
  // every 13th row.
  const char* colors[] = {"red", "green", "blue", "gray"};
  for (std::size_t i = 0; i < n; i++) {
    const std::uint64_t r = rng() % 100;
    const int tenant = r < 40 ? 0 : (r < 76 ? 1 + static_cast<int>((r - 40) / 9) : 5 + static_cast<int>(rng() % 32));
    const std::string ts = std::to_string(tenant), ns = std::to_string(i % 9);
    const std::string color = i % 8 == 0 ? "teal" : colors[rng() % 4];
    std::vector<Item> items = {Scalar(PathOf({"tenant"}), ValueKind::kNumber, &ts),
                               Scalar(PathOf({"color"}), ValueKind::kString, &color),
                               Scalar(PathOf({"n"}), ValueKind::kNumber, &ns)};
    if (i % 13 == 0) items.push_back(Scalar(PathOf({"vip"}), ValueKind::kTrue));
    EncodeOptions opt;
    opt.wide_numbers = i % 5 == 0;
    t.sigs.push_back(Encode(items, opt));
  }
  return t;
}

struct OwnedGraph {
  GraphBuilder* b = nullptr;
  ~OwnedGraph() { GraphBuilder::Destroy(b); }
};
struct OwnedLists {
  ValueListBuilder* b = nullptr;
  ~OwnedLists() { ValueListBuilder::Destroy(b); }
};

hnsw::BuildParams GraphParams(const Table& t, int m = 8) {
  hnsw::BuildParams p;
  p.dim = t.dim;
  p.metric = Metric::kL2;
  p.m = m;
  p.ef_construction = 48;
  p.capacity = t.n;
  p.seed = 3;
  return p;
}

void BuildGraph(const Table& t, OwnedGraph* g, const hnsw::BuildParams& p) {
  ASSERT_TRUE(GraphBuilder::Create(p, &g->b).ok());
  for (std::size_t i = 0; i < t.n; i++) ASSERT_TRUE(g->b->Append(&t.vectors[i * t.dim], i).ok());
  ASSERT_TRUE(g->b->AddRows(0, t.n, 1).ok());
}

ValueListParams ListParams(int lists, int slots, std::size_t min_rows, std::size_t max_rows) {
  ValueListParams p;
  p.lists = lists;
  p.slots = slots;
  p.min_rows = min_rows;
  p.max_rows = max_rows;
  p.max_directory = 256;
  p.ef_construction = 48;
  p.seed = 11;
  p.metric = Metric::kL2;
  return p;
}

void AddAll(const Table& t, ValueListBuilder* vb) {
  for (std::size_t i = 0; i < t.n; i++) ASSERT_TRUE(vb->AddSignature(i, t.sigs[i].data(), t.sigs[i].size()).ok());
}

// What Plan should choose: the directory and each row's keys.
struct Expected {
  std::map<ValueKey, std::uint32_t> counts;
  std::vector<ValueDirectoryEntry> directory;  // by key
  std::vector<std::vector<ValueKey>> row_keys;
};

Expected Reference(const Table& t, const ValueListParams& p) {
  Expected e;
  std::vector<std::vector<ValueKey>> keys(t.n);
  for (std::size_t i = 0; i < t.n; i++) {
    keys[i] = KeysOf(t.sigs[i]);
    std::sort(keys[i].begin(), keys[i].end());
    keys[i].erase(std::unique(keys[i].begin(), keys[i].end()), keys[i].end());
    for (ValueKey k : keys[i]) e.counts[k]++;
  }
  std::vector<ValueDirectoryEntry> band;
  for (const auto& kv : e.counts)
    if (kv.second >= p.min_rows && (p.max_rows == 0 || kv.second <= p.max_rows))
      band.push_back(ValueDirectoryEntry{kv.first, kv.second, 0});
  std::sort(band.begin(), band.end(), [](const ValueDirectoryEntry& a, const ValueDirectoryEntry& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  if (band.size() > p.max_directory) band.resize(p.max_directory);
  std::sort(band.begin(), band.end(), [](const ValueDirectoryEntry& a, const ValueDirectoryEntry& b) { return a.key < b.key; });
  e.directory = band;
  std::map<ValueKey, std::uint32_t> in_dir;
  for (const auto& d : band) in_dir[d.key] = d.count;
  e.row_keys.resize(t.n);
  for (std::size_t i = 0; i < t.n; i++) {
    std::vector<std::pair<std::uint32_t, ValueKey>> cand;
    for (ValueKey k : keys[i])
      if (in_dir.count(k)) cand.emplace_back(in_dir[k], k);
    std::sort(cand.begin(), cand.end());  // fewest rows first, then by key
    for (std::size_t j = 0; j < cand.size() && j < static_cast<std::size_t>(p.lists); j++)
      e.row_keys[i].push_back(cand[j].second);
  }
  return e;
}

void ExpectPlan(const Table& t, const ValueListParams& p, const ValueListBuilder& vb, const Expected& e) {
  ASSERT_EQ(vb.DirectorySize(), e.directory.size());
  for (std::size_t g = 0; g < e.directory.size(); g++) {
    EXPECT_EQ(vb.Directory()[g].key, e.directory[g].key) << g;
    EXPECT_EQ(vb.Directory()[g].count, e.directory[g].count) << g;
  }
  std::size_t with_keys = 0;
  for (std::size_t i = 0; i < t.n; i++) {
    with_keys += !e.row_keys[i].empty();
    for (int j = 0; j < p.lists; j++) {
      const ValueKey want = j < static_cast<int>(e.row_keys[i].size()) ? e.row_keys[i][j] : meta::kNoValueKey;
      ASSERT_EQ(vb.Key(i, j), want) << "row " << i << " list " << j;
    }
  }
  EXPECT_EQ(vb.RowsWithKeys(), with_keys);
}

TEST(ValueListBuilder, DirectoryIsTheBandOfFrequentKeys) {
  const Table t = MakeTable(3000, 8, 5);
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t));
  // The band of 150 .. 500 rows: tenants 1..4 (9%: ~270), n = 0..8 (11%:
  // 333 or 334), teal (375), vip (231); not tenant 0 (40%), the other
  // colors (~656), rare tenants (~15).
  ValueListParams p = ListParams(2, 8, 150, 500);
  const Expected e = Reference(t, p);
  const ValueKey tenant0 = QueryKey(PathOf({"tenant"}), ValueKind::kNumber, "0");
  const ValueKey tenant1 = QueryKey(PathOf({"tenant"}), ValueKind::kNumber, "1");
  const ValueKey tenant9 = QueryKey(PathOf({"tenant"}), ValueKind::kNumber, "9");
  const ValueKey red = QueryKey(PathOf({"color"}), ValueKind::kString, "red");
  const ValueKey teal = QueryKey(PathOf({"color"}), ValueKind::kString, "teal");
  const ValueKey vip = QueryKey(PathOf({"vip"}), ValueKind::kTrue);
  auto in_dir = [&](ValueKey k) {
    for (const auto& d : e.directory)
      if (d.key == k) return true;
    return false;
  };
  EXPECT_TRUE(in_dir(tenant1) && in_dir(teal) && in_dir(vip));
  EXPECT_FALSE(in_dir(tenant0) || in_dir(red) || in_dir(tenant9));
  EXPECT_EQ(e.directory.size(), 4u + 9u + 2u);

  OwnedLists vl;
  ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &vl.b).ok());
  AddAll(t, vl.b);
  ASSERT_TRUE(vl.b->Plan().ok());
  ExpectPlan(t, p, *vl.b, e);

  // max_directory keeps the most frequent keys (ties by key), sorted by key.
  for (std::size_t cap : {1, 3, 6}) {
    ValueListParams q = p;
    q.max_directory = cap;
    const Expected ec = Reference(t, q);
    ASSERT_EQ(ec.directory.size(), cap);
    OwnedLists capped;
    ASSERT_TRUE(ValueListBuilder::Create(q, g.b, &capped.b).ok());
    AddAll(t, capped.b);
    ASSERT_TRUE(capped.b->Plan().ok());
    ExpectPlan(t, q, *capped.b, ec);
    std::uint32_t least = ~0u;
    for (const auto& d : ec.directory) least = std::min(least, d.count);
    for (const auto& kv : e.counts) {
      bool kept = false;
      for (const auto& d : ec.directory) kept = kept || d.key == kv.first;
      if (!kept && kv.second >= p.min_rows && kv.second <= p.max_rows) {
        EXPECT_LE(kv.second, least);
      }
    }
  }
  // No upper bound (max_rows 0): the frequent keys join.
  ValueListParams open = p;
  open.max_rows = 0;
  const Expected eo = Reference(t, open);
  EXPECT_EQ(eo.directory.size(), e.directory.size() + 1 + 4);  // tenant 0 and the 4 colors
  OwnedLists unbounded;
  ASSERT_TRUE(ValueListBuilder::Create(open, g.b, &unbounded.b).ok());
  AddAll(t, unbounded.b);
  ASSERT_TRUE(unbounded.b->Plan().ok());
  ExpectPlan(t, open, *unbounded.b, eo);
  // Nothing in the band: an empty directory, no keys.
  ValueListParams none = p;
  none.min_rows = t.n + 1;
  none.max_rows = 0;
  OwnedLists empty;
  ASSERT_TRUE(ValueListBuilder::Create(none, g.b, &empty.b).ok());
  AddAll(t, empty.b);
  ASSERT_TRUE(empty.b->Plan().ok());
  EXPECT_EQ(empty.b->DirectorySize(), 0u);
  EXPECT_EQ(empty.b->RowsWithKeys(), 0u);
  EXPECT_EQ(empty.b->Key(0, 0), meta::kNoValueKey);
}

TEST(ValueListBuilder, RowsKeepTheirRarestKeys) {
  const Table t = MakeTable(3000, 8, 6);
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t));
  for (int lists : {1, 2, 4}) {
    const ValueListParams p = ListParams(lists, 8, 150, 500);
    const Expected e = Reference(t, p);
    OwnedLists vl;
    ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &vl.b).ok());
    AddAll(t, vl.b);
    ASSERT_TRUE(vl.b->Plan().ok());
    ExpectPlan(t, p, *vl.b, e);
    // Rows with more directory keys than lists exist (so the choice is
    // tested): a tenant of 1..4, n, teal and vip make up to 4.
    std::size_t crowded = 0;
    for (std::size_t i = 0; i < t.n; i++) {
      std::size_t in_dir = 0;
      for (ValueKey k : KeysOf(t.sigs[i]))
        for (const auto& d : e.directory) in_dir += d.key == k;
      crowded += in_dir > static_cast<std::size_t>(lists);
    }
    if (lists < 4) {
      EXPECT_GT(crowded, 100u) << lists;
    }
    // Key and Links outside the lists: none.
    EXPECT_EQ(vl.b->Key(0, -1), meta::kNoValueKey);
    EXPECT_EQ(vl.b->Key(0, lists), meta::kNoValueKey);
    EXPECT_EQ(vl.b->Key(t.n, 0), meta::kNoValueKey);
    std::vector<std::uint32_t> out(p.slots, 5);
    vl.b->Links(t.n, 0, out.data());
    for (std::uint32_t x : out) EXPECT_EQ(x, kNoValueLink);
  }
}

// Index distance between two rows of the graph.
float RowDistance(const GraphBuilder& g, std::size_t a, std::size_t b) {
  return IndexDistanceFn(Metric::kL2)(g.Vector(a), g.Vector(b), g.dim());
}

// Beam search (ef) from `start` over the value lists of key k (list index
// per row from the builder), by the distance to q. The k nearest found.
std::vector<std::uint32_t> ListSearch(const GraphBuilder& g, const ValueListBuilder& vb, int lists, int slots,
                                      ValueKey key, std::uint32_t start, const float* q, std::size_t k,
                                      std::size_t ef) {
  using Cand = std::pair<float, std::uint32_t>;
  DistanceFn fn = IndexDistanceFn(Metric::kL2);
  auto dist = [&](std::uint32_t r) { return fn(q, g.Vector(r), g.dim()); };
  std::priority_queue<Cand> result;
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> cand;
  std::set<std::uint32_t> visited{start};
  cand.push({dist(start), start});
  result.push({dist(start), start});
  std::vector<std::uint32_t> links(slots);
  while (!cand.empty()) {
    const Cand c = cand.top();
    if (result.size() >= ef && c.first > result.top().first) break;
    cand.pop();
    int j = 0;
    while (j < lists && vb.Key(c.second, j) != key) j++;
    if (j == lists) continue;
    vb.Links(c.second, j, links.data());
    for (std::uint32_t e : links) {
      if (e == kNoValueLink || !visited.insert(e).second) continue;
      const float d = dist(e);
      if (result.size() < ef || d < result.top().first) {
        cand.push({d, e});
        result.push({d, e});
        if (result.size() > ef) result.pop();
      }
    }
  }
  while (result.size() > k) result.pop();
  std::vector<std::uint32_t> ids;
  for (; !result.empty(); result.pop()) ids.push_back(result.top().second);
  return ids;
}

struct ListQuality {
  double nearest = 0;  // lists holding the member's exact nearest same-key row
  double recall = 0;   // of a list against the member's exact `slots` nearest same-key rows
  double search = 0;   // recall@10 of a beam search (ef 32) over the lists
};

// Builds every group and checks the links: valid, only between rows whose
// lists carry the key, and near.
void CheckLinks(const Table& t, const GraphBuilder& g, ValueListBuilder* vb, const ValueListParams& p, int threads,
                ListQuality* quality) {
  const std::size_t groups = vb->DirectorySize();
  for (std::size_t k = 0; k < groups; k++) ASSERT_TRUE(vb->BuildGroup(k, threads).ok());
  // The members of each key: rows whose lists carry it.
  std::map<ValueKey, std::vector<std::uint32_t>> members;
  for (std::size_t i = 0; i < t.n; i++)
    for (int j = 0; j < p.lists; j++)
      if (vb->Key(i, j) != meta::kNoValueKey) members[vb->Key(i, j)].push_back(static_cast<std::uint32_t>(i));
  std::vector<std::uint32_t> links(p.slots);
  std::size_t total = 0, lists_used = 0;
  double nearest = 0, recall = 0;
  for (std::size_t i = 0; i < t.n; i++) {
    for (int j = 0; j < p.lists; j++) {
      const ValueKey key = vb->Key(i, j);
      vb->Links(i, j, links.data());
      if (key == meta::kNoValueKey) {
        for (std::uint32_t x : links) ASSERT_EQ(x, kNoValueLink) << "row " << i << " unused list " << j;
        continue;
      }
      const std::vector<std::uint32_t>& mem = members[key];
      std::set<std::uint32_t> seen;
      std::size_t n = 0;
      bool gap = false;
      for (std::uint32_t x : links) {
        if (x == kNoValueLink) {
          gap = true;
          continue;
        }
        ASSERT_FALSE(gap) << "links after an unused place";
        ASSERT_LT(x, t.n);
        ASSERT_NE(x, i) << "self link";
        ASSERT_TRUE(seen.insert(x).second) << "duplicate link";
        bool shares = false;
        for (int jj = 0; jj < p.lists; jj++) shares = shares || vb->Key(x, jj) == key;
        ASSERT_TRUE(shares) << "row " << i << " links to row " << x << " without the key";
        ASSERT_TRUE(Contains(KeysOf(t.sigs[x]), key));
        n++;
      }
      total += n;
      if (mem.size() >= 2) {
        ASSERT_GT(n, 0u) << "row " << i << " has an empty list of a group of " << mem.size();
      }
      if (n == 0) continue;
      lists_used++;
      // The member's exact nearest same-key rows.
      std::vector<std::pair<float, std::uint32_t>> by_dist;
      for (std::uint32_t r : mem)
        if (r != i) by_dist.emplace_back(RowDistance(g, i, r), r);
      std::sort(by_dist.begin(), by_dist.end());
      nearest += seen.count(by_dist[0].second) ? 1.0 : 0.0;
      const std::size_t kk = std::min<std::size_t>(p.slots, by_dist.size());
      std::size_t hit = 0;
      for (std::size_t r = 0; r < kk; r++) hit += seen.count(by_dist[r].second);
      recall += static_cast<double>(hit) / static_cast<double>(kk);
    }
  }
  EXPECT_EQ(vb->LinksWritten(), total);
  quality->nearest = nearest / static_cast<double>(lists_used);
  quality->recall = recall / static_cast<double>(lists_used);

  // Searches over each key's lists find its nearest rows.
  std::mt19937_64 rng(99);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  double search = 0;
  int searches = 0;
  for (const auto& kv : members) {
    if (kv.second.size() < 20) continue;
    for (int s = 0; s < 10; s++) {
      const std::uint32_t base = kv.second[rng() % kv.second.size()];
      std::vector<float> q(t.dim);
      for (std::size_t d = 0; d < t.dim; d++) q[d] = g.Vector(base)[d] + 0.3f * gauss(rng);
      const std::uint32_t start = kv.second[rng() % kv.second.size()];
      const auto found = ListSearch(g, *vb, p.lists, p.slots, kv.first, start, q.data(), 10, 32);
      std::vector<std::pair<float, std::uint32_t>> exact;
      DistanceFn fn = IndexDistanceFn(Metric::kL2);
      for (std::uint32_t r : kv.second) exact.emplace_back(fn(q.data(), g.Vector(r), t.dim), r);
      std::sort(exact.begin(), exact.end());
      const float kth = exact[9].first;
      std::size_t hit = 0;
      for (std::uint32_t r : found) hit += fn(q.data(), g.Vector(r), t.dim) <= kth;
      search += static_cast<double>(hit) / 10.0;
      searches++;
    }
  }
  ASSERT_GT(searches, 0);
  quality->search = search / searches;
}

TEST(ValueListBuilder, LinksJoinRowsOfTheKeyAndAreNear) {
  const Table t = MakeTable(3000, 8, 7);
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t));
  for (int lists : {1, 2}) {
    const ValueListParams p = ListParams(lists, 8, 150, 500);
    OwnedLists vl;
    ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &vl.b).ok());
    AddAll(t, vl.b);
    ASSERT_TRUE(vl.b->Plan().ok());
    ASSERT_GT(vl.b->DirectorySize(), 10u);
    ListQuality qual;
    CheckLinks(t, *g.b, vl.b, p, 1, &qual);
    if (HasFatalFailure()) return;
    std::printf("[ ValueLists ] lists %d: nearest same-key row in %.3f of the lists, list recall %.3f, "
                "search recall@10 %.3f\n",
                lists, qual.nearest, qual.recall, qual.search);
    EXPECT_GE(qual.nearest, 0.93);
    EXPECT_GE(qual.recall, 0.4);
    EXPECT_GE(qual.search, 0.95);
    EXPECT_GT(vl.b->MemoryUsage(), 0u);
  }
}

TEST(ValueListBuilder, DeterministicWithOneThreadAndValidWithTwo) {
  const Table t = MakeTable(1500, 8, 8);
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t));
  const ValueListParams p = ListParams(2, 6, 60, 300);
  std::vector<std::uint32_t> first;
  for (int run = 0; run < 2; run++) {
    OwnedLists vl;
    ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &vl.b).ok());
    AddAll(t, vl.b);
    ASSERT_TRUE(vl.b->Plan().ok());
    // Groups in reverse order: the result does not depend on it.
    for (std::size_t k = vl.b->DirectorySize(); k-- > 0;) ASSERT_TRUE(vl.b->BuildGroup(k, 1).ok());
    std::vector<std::uint32_t> all, links(p.slots);
    for (std::size_t i = 0; i < t.n; i++)
      for (int j = 0; j < p.lists; j++) {
        vl.b->Links(i, j, links.data());
        all.insert(all.end(), links.begin(), links.end());
      }
    if (run == 0)
      first = all;
    else
      EXPECT_EQ(all, first);
  }
  OwnedLists two;
  ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &two.b).ok());
  AddAll(t, two.b);
  ASSERT_TRUE(two.b->Plan().ok());
  ListQuality qual;
  CheckLinks(t, *g.b, two.b, p, 2, &qual);
  EXPECT_GE(qual.search, 0.9);
}

TEST(ValueListBuilder, QuantizedGraphNeedsItsParameters) {
  const Table t = MakeTable(800, 8, 9);
  std::vector<float> lo(t.dim), scale(t.dim);
  std::vector<const float*> rows;
  for (std::size_t i = 0; i < t.n; i++) rows.push_back(&t.vectors[i * t.dim]);
  ASSERT_TRUE(Sq8Train(rows.data(), rows.size(), static_cast<std::uint32_t>(t.dim), Metric::kL2, lo.data(),
                       scale.data())
                  .ok());
  hnsw::BuildParams bp = GraphParams(t);
  bp.sq8.dim = static_cast<std::uint32_t>(t.dim);
  bp.sq8.lo = lo.data();
  bp.sq8.scale = scale.data();
  OwnedGraph g;
  BuildGraph(t, &g, bp);
  ASSERT_TRUE(g.b->quantized());
  ValueListParams p = ListParams(1, 8, 40, 200);
  OwnedLists missing;
  ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &missing.b).ok());
  AddAll(t, missing.b);
  ASSERT_TRUE(missing.b->Plan().ok());
  ASSERT_GT(missing.b->DirectorySize(), 0u);
  // Every group with rows to link fails (a group no row keeps, here a
  // color more frequent than every row's n, has nothing to build).
  std::size_t failed = 0;
  for (std::size_t k = 0; k < missing.b->DirectorySize(); k++) {
    std::size_t members = 0;
    for (std::size_t i = 0; i < t.n; i++) members += missing.b->Key(i, 0) == missing.b->Directory()[k].key;
    const StatusCode code = missing.b->BuildGroup(k, 1).code;
    EXPECT_EQ(code, members >= 2 ? StatusCode::kInvalidInput : StatusCode::kOk) << k;
    failed += code != StatusCode::kOk;
  }
  EXPECT_GT(failed, 5u);
  p.sq8 = bp.sq8;
  OwnedLists vl;
  ASSERT_TRUE(ValueListBuilder::Create(p, g.b, &vl.b).ok());
  AddAll(t, vl.b);
  ASSERT_TRUE(vl.b->Plan().ok());
  for (std::size_t k = 0; k < vl.b->DirectorySize(); k++) ASSERT_TRUE(vl.b->BuildGroup(k, 1).ok());
  EXPECT_GT(vl.b->LinksWritten(), vl.b->RowsWithKeys());
  std::vector<std::uint32_t> links(p.slots);
  for (std::size_t i = 0; i < t.n; i++) {
    const ValueKey key = vl.b->Key(i, 0);
    vl.b->Links(i, 0, links.data());
    for (std::uint32_t x : links) {
      if (x == kNoValueLink) continue;
      ASSERT_LT(x, t.n);
      ASSERT_EQ(vl.b->Key(x, 0), key);
    }
  }
}

TEST(ValueListBuilder, RejectsBadParametersAndMisuse) {
  const Table t = MakeTable(300, 4, 10);
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t, 4));
  ValueListBuilder* vb = reinterpret_cast<ValueListBuilder*>(1);
  const ValueListParams good = ListParams(1, 8, 10, 0);
  EXPECT_EQ(ValueListBuilder::Create(good, nullptr, &vb).code, StatusCode::kInvalidInput);
  EXPECT_EQ(vb, nullptr);
  auto bad = [&](void (*change)(ValueListParams*)) {
    ValueListParams p = good;
    change(&p);
    ValueListBuilder* b = nullptr;
    const Status st = ValueListBuilder::Create(p, g.b, &b);
    ValueListBuilder::Destroy(b);
    return st.code == StatusCode::kInvalidInput && b == nullptr;
  };
  EXPECT_TRUE(bad([](ValueListParams* p) { p->lists = 0; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->lists = hnsw::kMaxValueLists + 1; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->lists = -1; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->slots = 2; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->slots = 7; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->slots = hnsw::kMaxLinks + 2; }));
  EXPECT_TRUE(bad([](ValueListParams* p) { p->ef_construction = 0; }));
  for (int lists = 1; lists <= hnsw::kMaxValueLists; lists++) {
    ValueListParams p = good;
    p.lists = lists;
    p.slots = lists % 2 ? 4 : hnsw::kMaxLinks;
    OwnedLists ok;
    EXPECT_TRUE(ValueListBuilder::Create(p, g.b, &ok.b).ok()) << lists;
  }
  ValueListBuilder::Destroy(nullptr);

  OwnedLists vl;
  ASSERT_TRUE(ValueListBuilder::Create(good, g.b, &vl.b).ok());
  // Before Plan: no group, no keys.
  EXPECT_EQ(vl.b->BuildGroup(0, 1).code, StatusCode::kInvalidInput);
  EXPECT_EQ(vl.b->Key(0, 0), meta::kNoValueKey);
  // Rows past the graph; invalid and empty signatures add nothing.
  EXPECT_EQ(vl.b->AddSignature(t.n, t.sigs[0].data(), t.sigs[0].size()).code, StatusCode::kInvalidInput);
  const std::uint8_t junk[] = {0x7F, 1, 2, 3};
  EXPECT_TRUE(vl.b->AddSignature(0, junk, sizeof junk).ok());
  EXPECT_TRUE(vl.b->AddSignature(1, nullptr, 0).ok());
  for (std::size_t i = 2; i < t.n; i++) ASSERT_TRUE(vl.b->AddSignature(i, t.sigs[i].data(), t.sigs[i].size()).ok());
  ASSERT_TRUE(vl.b->Plan().ok());
  EXPECT_EQ(vl.b->Key(0, 0), meta::kNoValueKey);
  EXPECT_EQ(vl.b->Key(1, 0), meta::kNoValueKey);
  ASSERT_GT(vl.b->DirectorySize(), 0u);
  // Plan once; no signature after it; groups within the directory.
  EXPECT_EQ(vl.b->Plan().code, StatusCode::kInvalidInput);
  EXPECT_EQ(vl.b->AddSignature(0, t.sigs[0].data(), t.sigs[0].size()).code, StatusCode::kInvalidInput);
  EXPECT_EQ(vl.b->BuildGroup(vl.b->DirectorySize(), 1).code, StatusCode::kInvalidInput);
  EXPECT_TRUE(vl.b->BuildGroup(0, 1).ok());
}

// A group of one row builds no links; two rows link to each other.
TEST(ValueListBuilder, TinyGroups) {
  Table t = MakeTable(50, 4, 11);
  const std::string a = "a", b = "b";
  for (std::size_t i = 0; i < t.n; i++) {
    const std::string& v = i == 0 ? a : b;  // "a" on one row, "b" on two, none elsewhere
    t.sigs[i] = i < 3 ? Encode({Scalar(PathOf({"k"}), ValueKind::kString, &v)}) : std::vector<std::uint8_t>{};
  }
  OwnedGraph g;
  BuildGraph(t, &g, GraphParams(t, 4));
  OwnedLists vl;
  ASSERT_TRUE(ValueListBuilder::Create(ListParams(1, 4, 1, 0), g.b, &vl.b).ok());
  AddAll(t, vl.b);
  ASSERT_TRUE(vl.b->Plan().ok());
  ASSERT_EQ(vl.b->DirectorySize(), 2u);
  EXPECT_EQ(vl.b->RowsWithKeys(), 3u);
  for (std::size_t k = 0; k < 2; k++) ASSERT_TRUE(vl.b->BuildGroup(k, 1).ok());
  std::uint32_t links[4];
  vl.b->Links(0, 0, links);
  for (std::uint32_t x : links) EXPECT_EQ(x, kNoValueLink);
  vl.b->Links(1, 0, links);
  EXPECT_EQ(links[0], 2u);
  EXPECT_EQ(links[1], kNoValueLink);
  vl.b->Links(2, 0, links);
  EXPECT_EQ(links[0], 1u);
  EXPECT_EQ(vl.b->LinksWritten(), 2u);
}

}  // namespace
}  // namespace vecext
