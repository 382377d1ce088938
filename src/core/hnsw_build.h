// In-memory HNSW graph builder for index builds (no Postgres).
//
// The caller appends rows (a vector and a 64-bit payload each), then inserts
// them into the graph in chunks, each chunk with N threads, and finally reads
// the graph back (level, neighbours per level, entry point) to write pages.
// The graph algorithm is hnswlib's (search layer, neighbour heuristic,
// mutual linking); the distances are ours (IndexDistanceFn), the vectors are
// stored once in the builder and hnswlib keeps a pointer to each.
//
// With BuildParams::sq8 set (an SQ8 index, its parameters trained first),
// the builder keeps SQ8 codes instead of floats: each row is encoded at
// Append (Sq8Encode: codes and Sq8ElementInfo, the side data computed from
// the float vector), the floats are not kept, and every distance of the
// build comes from codes: code to code between stored rows
// (Sq8CodeDistance, the distance the index's own inserts use), and under
// L2 and L1 the asymmetric kernel from the row being inserted (its codes
// times the scales, computed once) to the rows its searches visit. A row
// then takes 12 + dim bytes instead of 4 dim.
//
// Rows are numbered 0, 1, ... in Append order; a row's number is its element
// id in the graph. Levels are drawn at Append from a generator seeded with
// BuildParams::seed, so they do not depend on the number of threads; with one
// thread the whole graph is a deterministic function of the rows and seed.
//
// No exception leaves this API: failures are reported as Status (hnswlib's
// exceptions and std::bad_alloc are caught inside). A GraphBuilder is used by
// one caller thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/distance.h"
#include "core/sq8.h"
#include "core/status.h"

namespace vecext {
namespace hnsw {

struct BuildParams {
  std::size_t dim = 0;         // REQUIRES: >= 1
  Metric metric = Metric::kL2;
  int m = 16;                  // REQUIRES: 2..128 (kMaxLinks / 2); 2m links on level 0, m above
  int ef_construction = 64;    // REQUIRES: >= 1 (hnswlib uses max(ef_construction, m))
  int max_level = 16;          // levels are capped here; REQUIRES: 0..255
  std::size_t capacity = 0;    // most rows Append accepts; REQUIRES: < 2^32
  std::uint64_t seed = 1;
  // Level-0 lists keep the candidates the heuristic pruned, nearest first,
  // in their free places (SelectNeighbors' keep_pruned): denser lists, and
  // higher recall at the same ef_search for a somewhat slower build.
  bool keep_pruned = false;
  // Each row's OWN level-0 list is chosen with up to 2m links (the
  // heuristic over its ef_construction candidates, then with keep_pruned
  // the pruned ones in the free places) instead of m; the back links and
  // the re-pruning of full lists are unchanged (2m on level 0 either way).
  // Level-0 lists hold the same 2m slots, so memory is unchanged; the build
  // does more re-pruning (slower). The index build sets it for indexes with
  // link codes: two-hop filtered traversal needs the subgraph of matching
  // rows to stay connected through few excluded elements (docs/filtering.md).
  bool dense_level0 = false;
  // SQ8 parameters (sq8.dim == dim; the builder copies lo and scale): the
  // builder holds codes, not floats. sq8.dim == 0: floats.
  Sq8Params sq8;
};

// Polled by every build thread between two points; true means stop.
// It must be safe to call from any thread (e.g. read a flag).
using StopFn = bool (*)(const void* arg);

class GraphBuilderImpl;

class GraphBuilder {
 public:
  // Creates a builder; *out is owned by the caller and freed with Destroy.
  // Allocates nothing proportional to capacity yet.
  static Status Create(const BuildParams& params, GraphBuilder** out);
  static void Destroy(GraphBuilder* builder);  // nullptr is fine

  // Copies vec (dim floats) as the next row, with an opaque payload.
  // Under cosine the copy is L2-normalized; a zero or non-finite norm is
  // kInvalidInput and adds no row. kLimitExceeded when capacity rows exist.
  // SQ8 (quantized()): the row is encoded instead (values outside the
  // trained range clamp); kNotFinite for a NaN or infinite element.
  Status Append(const float* vec, std::uint64_t payload, std::size_t* row = nullptr);

  // Inserts rows [begin, end) into the graph with `threads` threads (the
  // calling thread is one of them; the others run with every signal
  // blocked). REQUIRES: begin == inserted(), end <= rows(), threads >= 1.
  // `stop` (may be null) is polled before each point; when it returns true
  // the threads finish the points they have started and return kCancelled.
  // *done (may be null) receives inserted() on return: rows
  // [begin, inserted()) are in the graph whatever the status, and a later
  // call can continue from there. Any other error leaves the builder
  // unusable (every later call fails).
  Status AddRows(std::size_t begin, std::size_t end, int threads, StopFn stop = nullptr,
                 const void* stop_arg = nullptr, std::size_t* done = nullptr);

  // Makes every inserted row reachable from the entry point on level 0.
  // The heuristic can leave rows without in-links (under inner product, up
  // to half of them: small-norm rows are nobody's "diverse" neighbour); an
  // unreachable row is never returned by a scan. For each, a reachable
  // neighbour (one of its own, else one found by a search from the entry
  // point) gets a link to it: in a free slot, or in place of its farthest
  // link whose target has another in-link. *added: links written;
  // *unreachable: rows still unreachable (0 unless every candidate's list
  // was full of sole in-links). REQUIRES: no AddRows is running.
  Status EnsureReachable(std::size_t* added, std::size_t* unreachable);

  std::size_t rows() const;      // rows appended
  std::size_t inserted() const;  // rows in the graph (a prefix of the rows)
  std::size_t dim() const;
  int m() const;

  bool quantized() const;  // BuildParams::sq8 was set: rows are SQ8 codes

  // REQUIRES: row < rows().
  const float* Vector(std::size_t row) const;  // normalized under cosine; REQUIRES: !quantized()
  // The row as the index stores an element's data: Sq8ElementInfo (12
  // bytes) then dim codes when quantized(), else Vector(row). ElementBytes()
  // bytes, 4-byte aligned.
  const unsigned char* Element(std::size_t row) const;
  std::size_t ElementBytes() const;
  std::uint64_t Payload(std::size_t row) const;
  int Level(std::size_t row) const;

  // The links of `row` on `level` (row numbers, nearest-first is not
  // guaranteed). Returns how many were written to out.
  // REQUIRES: row < inserted(), 0 <= level <= Level(row), out has room for
  // MaxLinks(level) ids, and no AddRows is running.
  std::size_t Neighbors(std::size_t row, int level, std::uint32_t* out) const;
  std::size_t MaxLinks(int level) const { return level == 0 ? 2 * static_cast<std::size_t>(m()) : m(); }

  // Entry point (a row of the highest level) and that level; false when
  // the graph is empty.
  bool EntryPoint(std::uint32_t* row, int* level) const;

  // Approximate k-NN over the inserted rows (for tests and checks), nearest
  // first. ids/dists have room for k; *found receives how many were written.
  // query is compared as is (the caller normalizes under cosine). When
  // quantized(), the query is encoded first and compared code to code.
  Status Search(const float* query, std::size_t k, std::size_t ef, std::uint32_t* ids, float* dists,
                std::size_t* found) const;

  // Bytes this builder has allocated (from the sizes it requested).
  std::size_t MemoryUsage() const;

  // Detail of the last non-OK status (e.g. hnswlib's message); static or
  // owned by the builder, valid until the next call.
  const char* ErrorDetail() const;

  ~GraphBuilder();
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

 private:
  GraphBuilder() = default;
  GraphBuilderImpl* impl_ = nullptr;
};

// Memory model, used to keep a build within maintenance_work_mem: a builder
// of n rows built with `threads` threads allocates at most
//   BuildFixedBytes(dim, m, sq8) + n * BuildBytesPerElement(dim, m, threads, sq8)
// (sq8: the builder holds SQ8 codes, BuildParams::sq8 set).
std::size_t BuildBytesPerElement(std::size_t dim, int m, int threads, bool sq8 = false);
std::size_t BuildFixedBytes(std::size_t dim, int m, bool sq8 = false);

// The most rows that fit in `budget` bytes (0 if not even the fixed part fits).
std::size_t BuildCapacity(std::size_t budget, std::size_t dim, int m, int threads, bool sq8 = false);

}  // namespace hnsw
}  // namespace vecext
