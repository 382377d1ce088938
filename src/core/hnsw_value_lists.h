// Value lists for filtered search (no Postgres): extra level-0 links among
// the rows that share a frequent metadata value.
//
// A filtered two-hop scan (docs/filtering.md) finds the rows that match
// `metadata @> '{"tenant": 7}'` by walking the main graph and looking
// through the elements that do not match. At 1% selectivity most of its
// page visits are such look-throughs. With value lists, the rows that have
// a frequent value (a ValueKey, src/core/meta_filter.h) also carry a list of
// links to their nearest rows with that value: a small graph per value,
// built like the main one. Once the scan reaches a matching row, it follows
// that row's list for the query's value and stays among matching rows.
//
// ValueListBuilder runs after the main graph is built (it reads the rows'
// vectors from the GraphBuilder):
//   1. AddSignature for every row: counts the rows of each value key;
//   2. Plan: the directory (keys held by min_rows..max_rows rows, the most
//      frequent max_directory of them) and each row's keys: its `lists`
//      directory keys with the fewest rows;
//   3. BuildGroup(g) for every directory key: an HNSW graph over the rows
//      with that key, whose level-0 lists become the rows' value lists.
// Between two calls the caller may check for interrupts and report
// progress. No exception leaves the API; failures are Status.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/hnsw_build.h"
#include "core/meta_filter.h"
#include "core/status.h"

namespace vecext {
namespace hnsw {

constexpr int kMaxValueLists = 4;
constexpr std::uint32_t kNoValueLink = 0xFFFFFFFFu;

struct ValueListParams {
  int lists = 1;             // lists per row, 1..kMaxValueLists
  int slots = 16;            // links per list, even, 4..kMaxLinks
  std::size_t min_rows = 1;  // a key needs at least this many rows...
  std::size_t max_rows = 0;  // ...and at most this many (0: no limit)
  std::size_t max_directory = 256;
  int ef_construction = 64;
  std::uint64_t seed = 1;
  Metric metric = Metric::kL2;  // the graph's
  Sq8Params sq8;                // the graph's SQ8 parameters when it is quantized (else dim 0)
};

struct ValueDirectoryEntry {
  meta::ValueKey key;
  std::uint32_t count;  // rows with the key when the index was built
  std::uint32_t unused;
};
static_assert(sizeof(ValueDirectoryEntry) == 16, "stored in the metapage");

class ValueListBuilderImpl;

class ValueListBuilder {
 public:
  // `graph` must outlive the builder and have all its rows inserted.
  static Status Create(const ValueListParams& params, const GraphBuilder* graph, ValueListBuilder** out);
  static void Destroy(ValueListBuilder* b);  // nullptr is fine

  // The signature of row `row` (rows in any order, each at most once; rows
  // never added have no keys). An invalid signature adds nothing.
  Status AddSignature(std::size_t row, const std::uint8_t* sig, std::size_t len);

  // Chooses the directory and each row's keys. REQUIRES: called once,
  // after every AddSignature.
  Status Plan();

  // The directory, sorted by key (after Plan).
  std::size_t DirectorySize() const;
  const ValueDirectoryEntry* Directory() const;

  // Builds the value lists of directory entry g (any order, each once) with
  // `threads` threads (the caller's among them); `stop` as in AddRows.
  Status BuildGroup(std::size_t g, int threads, StopFn stop = nullptr, const void* stop_arg = nullptr);

  // Row `row`'s list j (0 <= j < lists): its key (kNoValueKey: none) and
  // its links (rows; kNoValueLink in unused places), `slots` of them written
  // to out. Links exist once the key's group is built.
  meta::ValueKey Key(std::size_t row, int j) const;
  void Links(std::size_t row, int j, std::uint32_t* out) const;

  // Rows with at least one key (after Plan), and links written so far.
  std::size_t RowsWithKeys() const;
  std::size_t LinksWritten() const;
  std::size_t MemoryUsage() const;
  const char* ErrorDetail() const;

  ~ValueListBuilder();
  ValueListBuilder(const ValueListBuilder&) = delete;
  ValueListBuilder& operator=(const ValueListBuilder&) = delete;

 private:
  ValueListBuilder() = default;
  ValueListBuilderImpl* impl_ = nullptr;
};

// Bytes per row a ValueListBuilder holds (keys and links), for build memory.
inline std::size_t ValueListBytesPerRow(int lists, int slots) {
  return static_cast<std::size_t>(lists) * (sizeof(meta::ValueKey) + 4 * static_cast<std::size_t>(slots) + 4) + 16;
}

}  // namespace hnsw
}  // namespace vecext
