// Metadata filtering inside the hnsw index: a compact, bounded "signature"
// of one row's JSON metadata, stored in the row's index element, and a small
// filter program compiled from the query's quals that decides, from the
// signature alone, whether the row can be excluded.
//
// The contract that everything here keeps: Eval answers kNo only when the
// row's metadata cannot satisfy the quals the program was compiled from.
// Everything else is kMaybe, and the executor rechecks kMaybe rows. Hash
// collisions, rounding and lossy encodings can only turn a kNo into a kMaybe.
//
// The model of a document. Every value in it has a key path: the sequence of
// object keys from the root. Array elements do not add a step, so an array of
// values at path P yields several values at P, at any array depth. The glue
// (src/pg/hnsw_filter.cpp) walks a jsonb and reports each value as an Item:
// a scalar (null, false, true, string, number) or a container (object or
// array) at its path. Jsonb containment and lax jsonpath only ever reach
// values at the key path they name, so a predicate on path P only needs the
// values the signature keeps for P.
//
// SIGNATURE FORMAT (version 1). All integers little endian, no alignment.
//   byte 0          high nibble: format version (1); low nibble: flags
//                   kFlagTruncated  the document did not fit: nothing else
//                                   follows and every predicate is kMaybe
//                   kFlagNull       SQL NULL metadata: nothing else follows;
//                                   every program is kNo (strict operators)
//                   kFlagWide       numbers are float64 (else float32)
//   varint          n_values  (LEB128)
//   varint          n_numbers (LEB128)
//   n_values  x u32 sorted, distinct: (path16 << 16) | value16
//                   path16  = top 16 bits of the path hash
//                   value16 = low 16 bits of the hash of (path, kind, bytes)
//                   for strings, booleans, nulls, and containers at a path
//                   that has no other entry (so that the path exists).
//   n_numbers x (u16 tag, f32 or f64) sorted by tag, distinct
//                   tag = (path16 & ~1) | exact; `exact` says the stored
//                   value is the number itself, else the number lies within
//                   one unit in the last place of it (either side).
// A zero-length signature carries no information (every predicate kMaybe).
// Typical sizes: 4 bytes per string/bool/null value, 6 per number (10 wide),
// 4 per object-valued key, 3 bytes of header.
//
// Hashes are part of the on-disk format: HashBytes and the path/value hash
// recipes must never change without a new format version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/hnsw_types.h"
#include "core/status.h"

namespace vecext::meta {

// ---------------------------------------------------------------------------
// Paths and items

// Hash of a key path. RootPath() is the empty path; ChildPath appends a key.
using PathHash = std::uint64_t;
PathHash RootPath();
PathHash ChildPath(PathHash parent, const char* key, std::size_t len);

enum class ValueKind : std::uint8_t {
  kNull = 0,
  kFalse = 1,
  kTrue = 2,
  kString = 3,
  kNumber = 4,     // data: the number as decimal text (JSON number syntax)
  kContainer = 5,  // an object or an array (its contents are other items)
};

// One value of a document (or of a containment query) at `path`.
struct Item {
  PathHash path;
  ValueKind kind;
  const char* data;  // kString: the bytes; kNumber: decimal text; else unused
  std::size_t len;
};

// A number parsed from decimal text: the nearest double, and whether it is
// exactly that double (recognised for integers of at most 15 digits and for
// short binary fractions such as 0.5 or 2.25). -0 is 0. Out-of-range
// magnitudes become +-infinity or 0 (inexact).
struct Number {
  double value;
  bool exact;
};
// Accepts JSON number syntax, also with a leading '+' and without digits
// before or after the decimal point ("1.", ".5"); kInvalidInput otherwise.
Status ParseNumber(const char* text, std::size_t len, Number* out);

// ---------------------------------------------------------------------------
// Signatures

constexpr std::uint8_t kFormatVersion = 1;
constexpr std::uint8_t kFlagTruncated = 0x1;
constexpr std::uint8_t kFlagNull = 0x2;
constexpr std::uint8_t kFlagWide = 0x4;

constexpr std::size_t kDefaultMaxSignatureBytes = 256;
constexpr std::size_t kMinSignatureBytes = 16;
constexpr std::size_t kMaxSignatureBytes = 2048;

struct EncodeOptions {
  std::size_t max_bytes = kDefaultMaxSignatureBytes;  // clamped to [kMin, kMax]
  bool wide_numbers = false;                          // float64 instead of float32
};

// Builds one signature from a stream of items. Plain data (about 9 KB):
// allocate it anywhere, Init, Add every item, Finish.
struct SignatureEncoder {
  static constexpr std::size_t kValueCap = kMaxSignatureBytes / 4;
  static constexpr std::size_t kNumberCap = kMaxSignatureBytes / 6 + 1;

  EncodeOptions options;
  bool truncated;
  std::uint32_t n_values;
  std::uint32_t n_containers;
  std::uint32_t n_numbers;
  std::uint32_t values[kValueCap];      // string/bool/null entries
  std::uint32_t containers[kValueCap];  // container entries, merged by Finish
  std::uint16_t number_tags[kNumberCap];
  double numbers[kNumberCap];

  void Init(const EncodeOptions& opt);
  // Adds one item. A number that does not parse is kInvalidInput (and the
  // signature becomes truncated, so it stays safe to use).
  Status Add(const Item& item);
  // Writes the signature to out (REQUIRES: cap >= options.max_bytes).
  // The result is at most options.max_bytes bytes.
  Status Finish(std::uint8_t* out, std::size_t cap, std::size_t* len);
};

// The signature of SQL NULL metadata (1 byte). REQUIRES: cap >= 1.
std::size_t EncodeNull(std::uint8_t* out, std::size_t cap);

// A parsed signature (pointers into the signature bytes).
struct SignatureView {
  std::uint8_t flags;
  std::uint32_t n_values;
  std::uint32_t n_numbers;
  const std::uint8_t* values;
  const std::uint8_t* numbers;
};
// Validates a signature (version, counts, sizes, order); len 0 is valid and
// empty. kCorrupted for anything else.
Status ParseSignature(const std::uint8_t* sig, std::size_t len, SignatureView* out);

// ---------------------------------------------------------------------------
// Filter programs

enum class Match : std::uint8_t { kNo = 0, kMaybe = 1 };

enum class CmpOp : std::uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

enum class NodeOp : std::uint8_t {
  kMaybe,     // cannot be decided from the index (also "always true")
  kNo,        // never true
  kAnd,       // `arg` = nodes in this subtree, children follow in order
  kOr,        // likewise
  kHasValue,  // arg = the value entry: some value at the path equals it
  kHasPath,   // arg = path16: the path has some value (key existence)
  kNumCmp,    // arg = path16: some number x at the path with x `cmp` q, q in [lo, hi]
};

// One node of a program in prefix order. Plain data.
struct Node {
  NodeOp op;
  CmpOp cmp;
  std::uint32_t arg;
  double lo;
  double hi;
};

// What a whole program decides regardless of the row.
enum class ProgramKind : std::uint8_t { kAlwaysMaybe, kAlwaysNo, kDepends };

// Builds a program in memory from `alloc` (which may not return on failure:
// everything here is trivially destructible). Every leaf is a condition the
// row's metadata must meet for the qual to be true; kAnd/kOr combine them.
// When memory or nesting runs out, the program becomes kMaybe (safe).
struct ProgramBuilder {
  static constexpr int kMaxDepth = 64;

  hnsw::Allocator alloc;
  Node* nodes;
  std::uint32_t size;
  std::uint32_t cap;
  std::uint32_t open[kMaxDepth];
  int depth;
  int overflow_depth;  // opens beyond kMaxDepth, not recorded
  bool failed;

  void Init(const hnsw::Allocator& a);
  void Release();

  void OpenAnd();
  void OpenOr();
  void Close();
  void Maybe();
  void No();
  // Some value at `path` is (kind, data). kNumber compares numerically.
  void HasValue(PathHash path, ValueKind kind, const char* data, std::size_t len);
  // `path` has a value (a key exists). The root always does.
  void HasPath(PathHash path);
  // Some number x at `path` satisfies x `op` number(text); text that does
  // not parse as a number gives kMaybe.
  void NumCmp(PathHash path, CmpOp op, const char* text, std::size_t len);
  // Containment (jsonb @>): a document containing the query has this item
  // of the query (every scalar at its path; containers: the path exists).
  void ContainedItem(const Item& item);
  // Key existence (jsonb ?): a top-level key, or a top-level string element
  // of an array (or a string scalar) document.
  void KeyExists(const char* key, std::size_t len);
  // A lax jsonpath comparison `path op constant` is true: some value x at
  // `path` compares true with the scalar constant (kind, data). Comparisons
  // follow jsonpath: values of different types never compare true, except
  // that null != any non-null value; numbers compare numerically.
  void PathCompare(PathHash path, CmpOp op, ValueKind kind, const char* data, std::size_t len);

  // Closes what is open, folds constants (kAnd of nothing is kMaybe, kOr of
  // nothing is kNo, ...) and returns the program; *n = its node count (>= 1).
  const Node* Finish(std::uint32_t* n);
};

// What the folded program `prog` decides regardless of the row.
ProgramKind Classify(const Node* prog, std::uint32_t n);

// Evaluates a program (from ProgramBuilder::Finish) against a signature.
// An invalid signature gives kMaybe.
Match Eval(const Node* prog, std::uint32_t n, const std::uint8_t* sig, std::size_t len);
Match Eval(const Node* prog, std::uint32_t n, const SignatureView& sig);

// ---------------------------------------------------------------------------
// Link codes
//
// A 64-bit summary of a signature that the index stores next to every link
// to the element, so that a filtered traversal can tell from the linking
// element's neighbour list alone whether the linked one may match, without
// visiting its page. It is a Bloom filter: one bit per key path (bit
// PathKey & 63 of every path that has a value, the low path bit cleared as
// number tags do) and three bits per value (string, boolean, null entries;
// numbers stored exactly, by their double value; one "inexact number" key
// per path that has a number stored inexactly or NaN). A signature without
// information (empty, truncated, invalid) gives kAllLinks: every bit set.
// SQL NULL metadata gives 0 (every program excludes it anyway).
//
// The contract: EvalCode(prog, LinkCode(sig)) is kNo only when
// Eval(prog, sig) is kNo. Range comparisons of numbers only test the path.
// The bit recipes are part of the on-disk format.
using LinkCode = std::uint64_t;
constexpr LinkCode kAllLinks = ~LinkCode{0};
LinkCode MakeLinkCode(const std::uint8_t* sig, std::size_t len);
LinkCode MakeLinkCode(const SignatureView& sig);
Match EvalCode(const Node* prog, std::uint32_t n, LinkCode code);

// A program's link-code test flattened for the traversal's inner loop: an OR
// of up to kMaxCodeTerms terms, each the bits an AND of leaves needs
// ((code & term) == term). CodeTestMatches(t, c) equals
// EvalCode(prog, n, c) == kMaybe for every code c when CompileCodeTest
// returns true; programs whose flat form has more terms give false (then
// use EvalCode).
constexpr int kMaxCodeTerms = 8;
struct CodeTest {
  int n;  // 0: no code passes (a kNo program)
  LinkCode terms[kMaxCodeTerms];
};
bool CompileCodeTest(const Node* prog, std::uint32_t n, CodeTest* out);
inline bool CodeTestMatches(const CodeTest& t, LinkCode code) {
  for (int i = 0; i < t.n; i++) {
    if ((code & t.terms[i]) == t.terms[i]) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Value keys (value lists, docs/filtering.md)
//
// A 64-bit name of one equality a row can satisfy: a string, boolean or
// null value at a path (kind 1: the signature's value entry), or a number
// stored exactly at a path whose float32 is the number itself (kind 2: the
// number tag without its exact bit, and the float's bits). 0 is no key.
// A program leaf `value at path == constant` that must hold for a row to
// match names the same key as the row's signature entry for that value, so
// the rows with a key are exactly the rows with that entry. The recipe is
// part of the on-disk format of indexes with value lists.
using ValueKey = std::uint64_t;
constexpr ValueKey kNoValueKey = 0;

// The keys of a signature's entries (at most cap written; returns how many
// there are). A truncated, NULL or empty signature has none. Container
// entries are included (they cannot be told apart from values).
std::size_t ValueKeys(const SignatureView& sig, ValueKey* out, std::size_t cap);

// Keys that every row the program may match has: the program's root leaf,
// or the leaves directly under its root kAnd, that are a kHasValue or an
// exact kNumCmp kEq whose constant is a float32. Returns how many were
// written (at most cap).
std::size_t RequiredValueKeys(const Node* prog, std::uint32_t n, ValueKey* out, std::size_t cap);

// A one-node program that holds for the rows with `key` (and may hold for
// others only as a hash collision would). False for kNoValueKey or a key
// of an unknown kind.
bool ValueKeyNode(ValueKey key, Node* out);

// A readable form of a program, for tests and debugging ("and(value(..),..)").
// Writes at most cap bytes including the terminating NUL; returns the length
// it needed.
std::size_t Describe(const Node* prog, std::uint32_t n, char* out, std::size_t cap);

// The 64-bit hash behind paths and values (stable: part of the format).
std::uint64_t HashBytes(std::uint64_t seed, const void* data, std::size_t len);

static_assert(std::is_trivially_destructible_v<SignatureEncoder>);
static_assert(std::is_trivially_destructible_v<ProgramBuilder>);
static_assert(std::is_trivially_destructible_v<Node>);
static_assert(std::is_trivially_destructible_v<CodeTest>);

}  // namespace vecext::meta
