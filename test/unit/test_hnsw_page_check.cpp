// Unit tests of the Postgres-free hnsw format validator (core/hnsw_page_check.h)
// on pages built here byte by byte, and on real index images saved from a
// server in test/fuzz/corpus/hnsw_page/ (which keeps the constants honest).
#include "core/hnsw_page_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vecext {
namespace hnsw_format {
namespace {

void Put16(unsigned char* p, std::uint16_t v) { std::memcpy(p, &v, sizeof v); }
void Put32(unsigned char* p, std::uint32_t v) { std::memcpy(p, &v, sizeof v); }
void PutTid(unsigned char* p, Tid t) {
  Put16(p, static_cast<std::uint16_t>(t.block >> 16));
  Put16(p + 2, static_cast<std::uint16_t>(t.block & 0xFFFF));
  Put16(p + 4, t.offset);
}

// One page, filled like PageInit + PageAddItem do.
struct PageBuilder {
  unsigned char* page;
  PageBuilder(unsigned char* p, std::uint16_t type) : page(p) {
    std::memset(page, 0, kPageSize);
    Put16(page + 12, 24);                                      // pd_lower
    Put16(page + 14, static_cast<std::uint16_t>(kPageSize - kSpecialSize));  // pd_upper
    Put16(page + 16, static_cast<std::uint16_t>(kPageSize - kSpecialSize));  // pd_special
    Put16(page + 18, static_cast<std::uint16_t>(kPageSize | 4));             // pd_pagesize_version
    Put32(page + kPageSize - 8, kInvalidBlock);
    Put16(page + kPageSize - 4, type);
    Put16(page + kPageSize - 2, kPageId);
  }
  std::uint16_t Add(const std::vector<unsigned char>& tuple) {
    std::uint16_t lower, upper;
    std::memcpy(&lower, page + 12, 2);
    std::memcpy(&upper, page + 14, 2);
    upper = static_cast<std::uint16_t>(upper - MaxAlign(tuple.size()));
    std::memcpy(page + upper, tuple.data(), tuple.size());
    Put32(page + lower, upper | (1u << 15) | (static_cast<std::uint32_t>(tuple.size()) << 17));
    Put16(page + 12, static_cast<std::uint16_t>(lower + 4));
    Put16(page + 14, upper);
    return static_cast<std::uint16_t>((lower - 24) / 4 + 1);
  }
};

std::vector<unsigned char> Element(int level, Tid heap, Tid neighbors, const std::vector<float>& vec,
                                   std::uint8_t flags = 0) {
  std::vector<unsigned char> t(ElementTupleSize(static_cast<int>(vec.size())), 0);
  t[0] = kElementTuple;
  t[1] = static_cast<unsigned char>(level);
  t[2] = flags;
  PutTid(t.data() + 4, heap);
  PutTid(t.data() + 10, neighbors);
  std::memcpy(t.data() + 16, vec.data(), 4 * vec.size());
  return t;
}

std::vector<unsigned char> Neighbors(int level, int m, const std::vector<std::vector<Tid>>& per_level) {
  const int slots = NeighborSlots(level, m);
  std::vector<unsigned char> t(NeighborTupleSize(slots), 0);
  t[0] = kNeighborTuple;
  t[1] = static_cast<unsigned char>(level);
  Put16(t.data() + 2, static_cast<std::uint16_t>(slots));
  for (int lc = 0; lc < static_cast<int>(per_level.size()); lc++)
    for (std::size_t i = 0; i < per_level[lc].size(); i++)
      PutTid(t.data() + 4 + 6 * (LevelStart(lc, m) + i), per_level[lc][i]);
  return t;
}

constexpr int kDim = 3;
constexpr int kM = 2;

// Three elements on block 1: A (level 1, the entry point), B and C (level 0),
// all linked to each other on level 0. Items: A=1, nA=2, B=3, nB=4, C=5, nC=6.
struct Fixture {
  std::vector<unsigned char> image = std::vector<unsigned char>(2 * kPageSize);
  unsigned char* meta() { return image.data(); }
  unsigned char* page() { return image.data() + kPageSize; }
  unsigned char* Item(int off) {
    std::uint32_t w;
    std::memcpy(&w, page() + 24 + 4 * (off - 1), 4);
    return page() + (w & 0x7FFF);
  }
  Fixture() {
    PageBuilder mb(meta(), kPageMeta);
    Put16(meta() + 12, static_cast<std::uint16_t>(kMetaOffset + kMetaSize));
    unsigned char* m = meta() + kMetaOffset;
    Put32(m, kMagic);
    Put32(m + 4, kFormatVersion);
    Put32(m + 8, kDim);
    Put16(m + 12, kM);
    Put16(m + 14, 8);
    m[16] = 0;
    m[17] = 0;
    Put16(m + 18, 1);  // entry level
    PutTid(m + 20, Tid{1, 1});
    Put32(m + 28, 1);
    PageBuilder pb(page(), kPageElement);
    const Tid a{1, 1}, b{1, 3}, c{1, 5};
    pb.Add(Element(1, Tid{0, 1}, Tid{1, 2}, {1, 0, 0}));
    pb.Add(Neighbors(1, kM, {{b, c}, {}}));
    pb.Add(Element(0, Tid{0, 2}, Tid{1, 4}, {0, 1, 0}));
    pb.Add(Neighbors(0, kM, {{a, c}}));
    pb.Add(Element(0, Tid{0, 3}, Tid{1, 6}, {0, 0, 1}));
    pb.Add(Neighbors(0, kM, {{a, b}}));
  }
  Status Check(IndexSummary* s, ProblemList* p) { return CheckIndexImage(image.data(), image.size(), s, p); }
};

bool HasProblem(const ProblemList& p, const std::string& needle) {
  for (int i = 0; i < p.count; i++)
    if (std::string(p.items[i].what).find(needle) != std::string::npos) return true;
  return false;
}

TEST(HnswPageCheck, Constants) {
  EXPECT_EQ(kMaxItemSize, 8152u);
  EXPECT_EQ(ElementTupleSize(3), 32u);
  EXPECT_EQ(NeighborTupleSize(NeighborSlots(0, 16)), 200u);
  EXPECT_EQ(MaxLevelForM(16), 16);
  EXPECT_EQ(MaxLevelForM(100), 11);
}

TEST(HnswPageCheck, ValidImage) {
  Fixture f;
  IndexSummary s;
  ProblemList p;
  Status st = f.Check(&s, &p);
  ASSERT_TRUE(st.ok()) << st.message << " at " << p.items[0].block << "," << p.items[0].offset;
  EXPECT_TRUE(s.meta_ok);
  EXPECT_EQ(s.live, 3);
  EXPECT_EQ(s.neighbors, 3);
  EXPECT_EQ(s.links, 6);
  EXPECT_EQ(s.max_level, 1);
  EXPECT_EQ(s.unreachable, 0);
  EXPECT_EQ(s.meta.m, kM);
  EXPECT_EQ(s.meta.dimensions, static_cast<std::uint32_t>(kDim));
}

TEST(HnswPageCheck, SizeMustBeWholePages) {
  Fixture f;
  IndexSummary s;
  ProblemList p;
  EXPECT_EQ(CheckIndexImage(f.image.data(), 100, &s, &p).code, StatusCode::kInvalidInput);
  EXPECT_EQ(CheckIndexImage(f.image.data(), 0, &s, &p).code, StatusCode::kInvalidInput);
}

TEST(HnswPageCheck, NewPageIsValid) {
  Fixture f;
  f.image.resize(3 * kPageSize, 0);  // an all-zero block 2 (crash after extension)
  IndexSummary s;
  ProblemList p;
  EXPECT_TRUE(f.Check(&s, &p).ok());
}

TEST(HnswPageCheck, PageIdAndType) {
  Fixture f;
  Put16(f.page() + kPageSize - 2, 0x1234);
  IndexSummary s;
  ProblemList p;
  EXPECT_EQ(f.Check(&s, &p).code, StatusCode::kCorrupted);
  EXPECT_TRUE(HasProblem(p, "wrong page id"));
  Fixture g;
  Put16(g.page() + kPageSize - 4, kPageMeta);
  ProblemList q;
  EXPECT_FALSE(g.Check(&s, &q).ok());
  EXPECT_TRUE(HasProblem(q, "not an element page"));
}

TEST(HnswPageCheck, MetaPage) {
  Fixture f;
  Put32(f.meta() + kMetaOffset, 0xDEADBEEF);
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "magic"));
  EXPECT_FALSE(s.meta_ok);
  Fixture g;
  Put16(g.meta() + kMetaOffset + 12, 101);  // m
  ProblemList q;
  EXPECT_TRUE(!g.Check(&s, &q).ok() && HasProblem(q, "m out of range"));
  Fixture h;
  Put16(h.meta() + kMetaOffset + 18, 0);  // entry level 0, but the entry point has level 1
  ProblemList r;
  EXPECT_FALSE(h.Check(&s, &r).ok());
  EXPECT_TRUE(HasProblem(r, "entry level differs"));
  Fixture k;
  k.Item(1)[1] = 0;                     // A becomes level 0 ...
  Put16(k.meta() + kMetaOffset + 18, 0);
  Put16(k.Item(2) + 2, static_cast<std::uint16_t>(NeighborSlots(0, kM)));  // ... with a level-0 tuple
  k.Item(2)[1] = 0;
  k.Item(3)[1] = 1;                     // while B claims level 1
  ProblemList t;
  EXPECT_FALSE(k.Check(&s, &t).ok());
  EXPECT_TRUE(HasProblem(t, "below the highest"));
}

TEST(HnswPageCheck, HeaderBounds) {
  Fixture f;
  Put16(f.page() + 14, 10);  // pd_upper below pd_lower
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "invalid page header"));
}

TEST(HnswPageCheck, LinePointerOutOfBounds) {
  Fixture f;
  Put32(f.page() + 24 + 4 * 2, 8000u | (1u << 15) | (1000u << 17));  // item 3 runs past pd_special
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "out of bounds"));
}

TEST(HnswPageCheck, BadLinks) {
  Fixture f;
  // B's level-0 links: A and the metapage-less (1,2) neighbour tuple of A.
  PutTid(f.Item(4) + 4 + 6, Tid{1, 2});
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "not an element"));

  Fixture g;
  PutTid(g.Item(2) + 4 + 6 * LevelStart(1, kM), Tid{1, 3});  // A on level 1 -> B (level 0)
  ProblemList q;
  EXPECT_FALSE(g.Check(&s, &q).ok());
  EXPECT_TRUE(HasProblem(q, "above the target element's level"));

  Fixture h;
  PutTid(h.Item(2) + 4 + 6, Tid{77, 1});  // a block past the end
  ProblemList r;
  EXPECT_FALSE(h.Check(&s, &r).ok());
  EXPECT_TRUE(HasProblem(r, "not an element"));
}

TEST(HnswPageCheck, Unreachable) {
  Fixture f;
  // Nobody links to C any more.
  PutTid(f.Item(2) + 4 + 6, Tid{0, 0});
  PutTid(f.Item(4) + 4 + 6, Tid{0, 0});
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_EQ(s.unreachable, 1);
  EXPECT_TRUE(HasProblem(p, "not reachable"));
}

TEST(HnswPageCheck, DuplicateHeapTid) {
  Fixture f;
  PutTid(f.Item(5) + 4, Tid{0, 2});  // C indexes B's row
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "heap TID"));
}

TEST(HnswPageCheck, NonFiniteVector) {
  Fixture f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(f.Item(3) + 16 + 4, &nan, 4);
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "non-finite"));
  // The same in an element marked deleted is not a problem.
  f.Item(3)[2] = kElementDeleted;
  ProblemList q;
  EXPECT_TRUE(f.Check(&s, &q).ok()) << q.items[0].what;
  EXPECT_EQ(s.deleted, 1);
}

TEST(HnswPageCheck, DeletedElementMayLoseItsNeighbourTuple) {
  Fixture f;
  f.Item(5)[2] = kElementDeleted;  // C deleted
  Put16(f.Item(6) + 2, 0);         // its neighbour tuple is a tombstone
  IndexSummary s;
  ProblemList p;
  EXPECT_TRUE(f.Check(&s, &p).ok()) << p.items[0].what;
  EXPECT_EQ(s.tombstones, 1);
  Fixture g;
  Put16(g.Item(6) + 2, 0);  // the same for a live element is a problem
  ProblemList q;
  EXPECT_FALSE(g.Check(&s, &q).ok());
  EXPECT_TRUE(HasProblem(q, "tombstone"));
}

TEST(HnswPageCheck, NeighbourCountAndSharing) {
  Fixture f;
  Put16(f.Item(4) + 2, 5);  // B's neighbour tuple claims 5 slots
  IndexSummary s;
  ProblemList p;
  EXPECT_FALSE(f.Check(&s, &p).ok());
  EXPECT_TRUE(HasProblem(p, "invalid neighbour tuple"));
  Fixture g;
  PutTid(g.Item(5) + 10, Tid{1, 4});  // C points at B's neighbour tuple
  ProblemList q;
  EXPECT_FALSE(g.Check(&s, &q).ok());
  EXPECT_TRUE(HasProblem(q, "shared"));
}

TEST(HnswPageCheck, ProblemListKeepsTheTotal) {
  ProblemList p;
  for (int i = 0; i < 1000; i++) p.Add(1, 1, "x");
  EXPECT_EQ(p.count, ProblemList::kCapacity);
  EXPECT_EQ(p.total, 1000);
}

// Random byte changes never make the checker read out of bounds (run under
// ASan in build-asan) and never make an invalid page look valid by crashing.
TEST(HnswPageCheck, RandomCorruptionIsSafe) {
  std::mt19937 rng(7);
  Fixture base;
  for (int round = 0; round < 3000; round++) {
    Fixture f;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; i++) f.image[rng() % f.image.size()] = static_cast<unsigned char>(rng());
    IndexSummary s;
    ProblemList p;
    Status st = f.Check(&s, &p);
    ASSERT_TRUE(st.ok() || st.code == StatusCode::kCorrupted);
    ASSERT_EQ(st.ok(), p.total == 0);
  }
}

std::string CorpusDir() {
  std::string file = __FILE__;  // .../test/unit/test_hnsw_page_check.cpp
  std::string dir = file.substr(0, file.find_last_of('/'));
  return dir + "/../fuzz/corpus/hnsw_page";
}

// Index images saved from a running server by test/fuzz/make_page_corpus.sh.
TEST(HnswPageCheck, RealIndexImagesAreValid) {
  DIR* d = opendir(CorpusDir().c_str());
  if (d == nullptr) GTEST_SKIP() << "no corpus at " << CorpusDir();
  int checked = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("real_", 0) != 0) continue;
    std::ifstream in(CorpusDir() + "/" + name, std::ios::binary);
    std::vector<unsigned char> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    IndexSummary s;
    ProblemList p;
    Status st = CheckIndexImage(image.data(), image.size(), &s, &p);
    EXPECT_TRUE(st.ok()) << name << ": " << st.message << " (block " << p.items[0].block << " offset "
                         << p.items[0].offset << ")";
    EXPECT_GT(s.live, 0) << name;
    checked++;
  }
  closedir(d);
  if (checked == 0) GTEST_SKIP() << "no real_* images in " << CorpusDir();
}

}  // namespace
}  // namespace hnsw_format
}  // namespace vecext
