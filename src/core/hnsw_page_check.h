// The hnsw index's on-disk format (src/pg/hnsw.h) read without Postgres:
// validation of one page and of a whole index image (block 0 first), for
// fuzzing, unit tests and offline tools, on untrusted bytes.
//
// The layout constants below restate what src/pg/hnsw.h derives from the
// Postgres headers for the platforms we build on (BLCKSZ 8192, MAXALIGN 8,
// little-endian ItemPointerData and ItemIdData bit fields). The glue can
// static_assert them against its own (HNSW_ELEMENT_TUPLE_SIZE etc.) and use
// these checks too. The problems found are those of hnsw_index_check
// (src/pg/hnsw_inspect.cpp) on a quiescent index, with the same tolerances:
// links to deleted elements, orphan neighbour tuples and tombstones are not
// problems, a deleted element may have lost its neighbour tuple.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace vecext {
namespace hnsw_format {

inline constexpr std::size_t kPageSize = 8192;           // BLCKSZ
inline constexpr std::size_t kPageHeaderSize = 24;       // SizeOfPageHeaderData
inline constexpr std::size_t kItemIdSize = 4;            // sizeof(ItemIdData)
inline constexpr std::size_t kMaxAlign = 8;              // MAXIMUM_ALIGNOF
inline constexpr std::size_t kSpecialSize = 8;           // MAXALIGN(sizeof(HnswPageOpaqueData))
inline constexpr std::size_t kMetaOffset = 24;           // PageGetContents: MAXALIGN(SizeOfPageHeaderData)
inline constexpr std::size_t kMetaSize = 32;             // offsetof(HnswMetaPageData, params_start): the least a metapage covers
inline constexpr std::size_t kMetaSizeSq8 = 44;          // offsetof(HnswMetaPageData, flags): with the SQ8 fields
inline constexpr std::size_t kMetaSizeFull = 52;         // sizeof(HnswMetaPageData): with flags (filtered search)
inline constexpr std::uint32_t kMetaFilter = 0x0001;     // HNSW_META_FILTER: element tuples end with a signature
// HNSW_MAX_ITEM_SIZE: one line pointer, the page header and the special space.
inline constexpr std::size_t kMaxItemSize = kPageSize - 32 - kSpecialSize;
inline constexpr std::uint16_t kPageId = 0xFF5E;
inline constexpr std::uint32_t kMagic = 0x564E5357u;
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::uint16_t kPageMeta = 1;
inline constexpr std::uint16_t kPageElement = 2;
inline constexpr std::uint8_t kElementTuple = 1;
inline constexpr std::uint8_t kNeighborTuple = 2;
inline constexpr std::uint8_t kParamsTuple = 3;   // HNSW_PARAMS_TUPLE (SQ8 parameter pages)
inline constexpr std::uint8_t kQuantNone = 0;
inline constexpr std::uint8_t kQuantSq8 = 1;      // element data: 12 bytes of side data + dim codes
inline constexpr std::uint8_t kElementDeleted = 0x01;
inline constexpr int kMinM = 2;
inline constexpr int kMaxM = 100;
inline constexpr int kMinEfConstruction = 4;
inline constexpr int kMaxEfConstruction = 1000;
inline constexpr int kMaxLevel = 16;
inline constexpr int kMaxDimensions = 16000;  // what a metapage may record (VECTOR_MAX_DIM)
inline constexpr int kMaxMetric = 3;          // vecext::Metric::kL1
inline constexpr std::uint32_t kInvalidBlock = 0xFFFFFFFFu;
// Offsets inside tuples (HnswElementTupleData / HnswNeighborTupleData).
inline constexpr std::size_t kElementVecOffset = 16;
inline constexpr std::size_t kNeighborIdsOffset = 4;
inline constexpr std::size_t kTidSize = 6;

inline constexpr std::size_t MaxAlign(std::size_t n) { return (n + kMaxAlign - 1) & ~(kMaxAlign - 1); }
// HNSW_ELEMENT_TUPLE_SIZE and HNSW_NEIGHBOR_TUPLE_SIZE.
inline constexpr std::size_t ElementTupleSize(int dim, int quantization = kQuantNone) {
  return MaxAlign(kElementVecOffset + (quantization == kQuantSq8 ? 12 + static_cast<std::size_t>(dim)
                                                                 : 4 * static_cast<std::size_t>(dim)));
}
inline constexpr std::size_t NeighborTupleSize(int slots) {
  return MaxAlign(kNeighborIdsOffset + kTidSize * static_cast<std::size_t>(slots));
}
inline constexpr int NeighborSlots(int level, int m) { return 2 * m + level * m; }
inline constexpr int LevelStart(int lc, int m) { return lc == 0 ? 0 : 2 * m + (lc - 1) * m; }
inline constexpr int LevelSlots(int lc, int m) { return lc == 0 ? 2 * m : m; }

// The highest level an element may have with `m` (HnswMaxLevelForM): its
// neighbour tuple must fit on a page.
int MaxLevelForM(int m);

// An ItemPointerData, decoded. Valid (ItemPointerIsValid) when offset != 0.
struct Tid {
  std::uint32_t block = 0;
  std::uint16_t offset = 0;
  bool valid() const { return offset != 0; }
};

inline std::uint64_t PackTid(Tid t) { return (static_cast<std::uint64_t>(t.block) << 16) | t.offset; }

struct MetaPage {
  std::uint32_t magic = 0;
  std::uint32_t version = 0;
  std::uint32_t dimensions = 0;
  std::uint16_t m = 0;
  std::uint16_t ef_construction = 0;
  std::uint8_t metric = 0;
  std::uint8_t quantization = 0;
  std::int16_t entry_level = -1;
  Tid entry;
  std::uint32_t insert_page = 0;
  std::uint32_t params_start = 0;  // SQ8 parameter pages (0 pages: none)
  std::uint32_t params_pages = 0;
  std::uint32_t params_bytes = 0;
  std::uint32_t flags = 0;         // kMetaFilter
};

// A problem found: where, and a static description.
struct Problem {
  std::uint32_t block = 0;
  std::uint16_t offset = 0;  // 0: the page (or index) as a whole
  const char* what = "";
};

// The first kCapacity problems and how many there were in all.
// Trivially destructible.
struct ProblemList {
  static constexpr int kCapacity = 64;
  Problem items[kCapacity];
  int count = 0;
  std::int64_t total = 0;
  void Add(std::uint32_t block, std::uint16_t offset, const char* what);
};

// What one page holds (filled by CheckElementPage).
struct PageSummary {
  int items = 0;        // used line pointers
  int elements = 0;     // valid element tuples, live or deleted
  int deleted = 0;      // of which marked deleted
  int neighbors = 0;    // valid neighbour tuples
  int tombstones = 0;   // neighbour tuples with count 0 (left by vacuum)
  int invalid = 0;      // items reported as problems
};

// Header and special space of block `blkno` (block 0: a metapage, others:
// element pages), plus the header checks Postgres's PageIsVerified makes
// without checksums. nullptr when valid, else a static description. A new
// page (pd_upper == 0) is valid. REQUIRES: page has kPageSize bytes.
const char* PageProblem(const unsigned char* page, std::uint32_t blkno);

// Decodes and validates the metapage (HnswMetaProblem). nullptr when valid.
// REQUIRES: PageProblem(page, 0) == nullptr.
const char* ReadMetaPage(const unsigned char* page, MetaPage* meta);

// Reads the ItemIdData of line pointer `off` (1-based).
struct LinePointer {
  std::uint32_t offset;  // lp_off
  std::uint32_t flags;   // lp_flags: 0 unused, 1 normal, 2 redirect, 3 dead
  std::uint32_t length;  // lp_len
};
LinePointer GetLinePointer(const unsigned char* page, int off);
// Number of line pointers (PageGetMaxOffsetNumber); 0 for a new page.
int MaxOffset(const unsigned char* page);

// Every item of an element page of an index with `dimensions` and `m`
// (from a valid metapage): line pointers, bounds, tuple type and sizes,
// levels, heap TIDs, finite vectors of live elements and neighbour counts
// (links are checked across pages by CheckIndexImage). Returns Ok when
// nothing was found, kCorrupted (message: the first problem) otherwise.
// REQUIRES: PageProblem(page, blkno) == nullptr, blkno >= 1, 0 <= dimensions
// <= kMaxDimensions, kMinM <= m <= kMaxM.
Status CheckElementPage(const unsigned char* page, std::uint32_t blkno, int dimensions, int m, PageSummary* summary,
                        ProblemList* problems, int quantization = kQuantNone);

struct IndexSummary {
  std::uint32_t nblocks = 0;
  bool meta_ok = false;
  MetaPage meta;
  std::int64_t live = 0;
  std::int64_t deleted = 0;
  std::int64_t neighbors = 0;
  std::int64_t tombstones = 0;
  std::int64_t links = 0;        // valid links of live elements
  std::int64_t unreachable = 0;  // live elements not reachable from the entry point
  int max_level = -1;            // highest level of a live element
};

// A whole index: image[0..size) is blocks 0..size/kPageSize-1 of its main
// fork. Checks every page as above, then across pages: each live element
// owns a neighbour tuple of its level that no other element owns; links on
// level l lead to elements of level >= l; the entry point is an element
// with the metapage's entry level, at least the highest live level; every
// live element is reachable from it; no heap TID has two live elements.
// Returns Ok when nothing was found, kCorrupted (message: the first
// problem), kInvalidInput when size is 0 or not a multiple of kPageSize,
// kOutOfMemory when its working memory could not be allocated.
// Never throws.
Status CheckIndexImage(const unsigned char* image, std::size_t size, IndexSummary* summary, ProblemList* problems);

}  // namespace hnsw_format
}  // namespace vecext
