// Validation of the hnsw on-disk format without Postgres: see hnsw_page_check.h.
// Every read goes through memcpy (the bytes may be unaligned) and is bounds
// checked against the page before it happens.
#include "core/hnsw_page_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

namespace vecext {
namespace hnsw_format {

namespace {

// Page header fields (PageHeaderData).
constexpr std::size_t kPdFlags = 10;
constexpr std::size_t kPdLower = 12;
constexpr std::size_t kPdUpper = 14;
constexpr std::size_t kPdSpecial = 16;
constexpr std::uint16_t kPdValidFlagBits = 0x0007;
// Special space fields (HnswPageOpaqueData) from the end of the page.
constexpr std::size_t kOpaqueFlags = kPageSize - 4;
constexpr std::size_t kOpaquePageId = kPageSize - 2;

std::uint16_t Load16(const unsigned char* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t Load32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

float LoadFloat(const unsigned char* p) {
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Tid LoadTid(const unsigned char* p) {
  Tid t;
  t.block = (static_cast<std::uint32_t>(Load16(p)) << 16) | Load16(p + 2);
  t.offset = Load16(p + 4);
  return t;
}

// HnswLinkIsValid: a link slot that names an element page item.
bool LinkNamesItem(Tid t) { return t.offset != 0 && t.block != kInvalidBlock && t.block != 0; }

// The item at line pointer `off` when it is normal, MAXALIGNed, at least
// min_size (and 4) bytes and inside [pd_upper, pd_special); else nullptr
// with *why set (nullptr for an unused line pointer: not a problem).
const unsigned char* PageItem(const unsigned char* page, int off, std::size_t min_size, std::size_t* len,
                              const char** why) {
  *why = nullptr;
  const LinePointer lp = GetLinePointer(page, off);
  if (lp.flags == 0) return nullptr;
  if (lp.flags != 1) {
    *why = "unexpected line pointer state (redirect or dead)";
    return nullptr;
  }
  const std::size_t upper = Load16(page + kPdUpper);
  const std::size_t special = Load16(page + kPdSpecial);
  if (lp.offset < upper || lp.offset % kMaxAlign != 0 || lp.offset + lp.length > special || lp.length < 4) {
    *why = "item out of bounds";
    return nullptr;
  }
  if (lp.length < min_size) {
    *why = "item too short for its tuple";
    return nullptr;
  }
  *len = lp.length;
  return page + lp.offset;
}

// An item of the index (cross-page pass).
struct Item {
  std::uint64_t id;
  std::uint8_t kind;  // kElementTuple or kNeighborTuple
  std::uint8_t level;
  std::uint8_t flags;
  bool tombstone;
  int owners;
  Tid heaptid;
  Tid neighbortid;
};

struct ById {
  bool operator()(const Item& a, std::uint64_t id) const { return a.id < id; }
};

const Item* FindItem(const std::vector<Item>& items, Tid t) {
  const std::uint64_t id = PackTid(t);
  auto it = std::lower_bound(items.begin(), items.end(), id, ById());
  if (it == items.end() || it->id != id) return nullptr;
  return &*it;
}

Item* FindItemMutable(std::vector<Item>& items, Tid t) { return const_cast<Item*>(FindItem(items, t)); }

// The neighbour tuple at t, if it is a valid one of `level` with slots.
const unsigned char* NeighborTuple(const unsigned char* image, std::uint32_t nblocks, Tid t, int level, int m) {
  if (!LinkNamesItem(t) || t.block >= nblocks) return nullptr;
  const unsigned char* page = image + static_cast<std::size_t>(t.block) * kPageSize;
  if (PageProblem(page, t.block) != nullptr || t.offset > MaxOffset(page)) return nullptr;
  std::size_t len;
  const char* why;
  const unsigned char* item = PageItem(page, t.offset, kNeighborIdsOffset, &len, &why);
  if (item == nullptr || item[0] != kNeighborTuple || item[1] != level) return nullptr;
  const int count = Load16(item + 2);
  if (count != NeighborSlots(level, m) || len < NeighborTupleSize(count)) return nullptr;
  return item;
}

Status Result(const ProblemList& problems) {
  if (problems.total == 0) return Status::Ok();
  return Status::Error(StatusCode::kCorrupted, problems.items[0].what);
}

// The cross-page checks of CheckIndexImage. May throw std::bad_alloc.
void CheckAcross(const unsigned char* image, std::uint32_t nblocks, IndexSummary* summary, ProblemList* problems) {
  const MetaPage& meta = summary->meta;
  const int dim = static_cast<int>(meta.dimensions);
  const int m = meta.m;
  std::vector<Item> items;
  std::vector<std::uint64_t> heaptids;
  for (std::uint32_t blkno = 1; blkno < nblocks; blkno++) {
    const unsigned char* page = image + static_cast<std::size_t>(blkno) * kPageSize;
    if (PageProblem(page, blkno) != nullptr) continue;  // reported by the page pass
    const int maxoff = MaxOffset(page);
    for (int off = 1; off <= maxoff; off++) {
      std::size_t len;
      const char* why;
      const unsigned char* item = PageItem(page, off, 4, &len, &why);
      if (item == nullptr) continue;
      Item e{};
      e.id = PackTid(Tid{blkno, static_cast<std::uint16_t>(off)});
      if (item[0] == kElementTuple) {
        if (item[1] > kMaxLevel || len < ElementTupleSize(dim)) continue;
        e.kind = kElementTuple;
        e.level = item[1];
        e.flags = item[2];
        e.heaptid = LoadTid(item + 4);
        e.neighbortid = LoadTid(item + 10);
        if (!(e.flags & kElementDeleted)) heaptids.push_back(PackTid(e.heaptid));
      } else if (item[0] == kNeighborTuple) {
        if (Load16(item + 2) == 0) {
          e.tombstone = true;
        } else if (item[1] > kMaxLevel || Load16(item + 2) != NeighborSlots(item[1], m) ||
                   len < NeighborTupleSize(Load16(item + 2))) {
          continue;
        }
        e.kind = kNeighborTuple;
        e.level = item[1];
      } else {
        continue;
      }
      items.push_back(e);
    }
  }
  // Pages are visited in order and offsets ascend: items are sorted by id.

  // Ownership of neighbour tuples.
  for (Item& e : items) {
    if (e.kind != kElementTuple) continue;
    const bool deleted = (e.flags & kElementDeleted) != 0;
    Item* n = FindItemMutable(items, e.neighbortid);
    const std::uint32_t blk = static_cast<std::uint32_t>(e.id >> 16);
    const std::uint16_t off = static_cast<std::uint16_t>(e.id & 0xFFFF);
    if (n == nullptr || n->kind != kNeighborTuple) {
      if (!deleted) problems->Add(blk, off, "live element: its neighbour tuple is missing");
      continue;
    }
    n->owners++;
    if (n->tombstone) {
      if (!deleted) problems->Add(blk, off, "live element has a removed (tombstone) neighbour tuple");
    } else if (n->level != e.level) {
      problems->Add(blk, off, "element and its neighbour tuple have different levels");
    }
  }
  for (const Item& e : items) {
    if (e.kind == kNeighborTuple && !e.tombstone && e.owners > 1)
      problems->Add(static_cast<std::uint32_t>(e.id >> 16), static_cast<std::uint16_t>(e.id & 0xFFFF),
                    "neighbour tuple is shared by several elements");
  }
  std::sort(heaptids.begin(), heaptids.end());
  for (std::size_t i = 1; i < heaptids.size(); i++) {
    if (heaptids[i] == heaptids[i - 1] && (i + 1 == heaptids.size() || heaptids[i + 1] != heaptids[i]))
      problems->Add(0, 0, "a heap TID is indexed by several live elements");
  }

  // Entry point.
  if (!meta.entry.valid()) {
    if (summary->live > 0) problems->Add(0, 0, "metapage has no entry point but the index has live elements");
  } else {
    const Item* ep = FindItem(items, meta.entry);
    if (ep == nullptr || ep->kind != kElementTuple) {
      problems->Add(0, 0, "metapage entry point is not an element");
    } else {
      if (ep->level != meta.entry_level)
        problems->Add(0, 0, "metapage entry level differs from the level of the entry point");
      if (summary->max_level > ep->level) problems->Add(0, 0, "entry point level is below the highest element level");
    }
  }

  // Links of live elements, and reachability from the entry point.
  for (const Item& e : items) {
    if (e.kind != kElementTuple || (e.flags & kElementDeleted)) continue;
    const unsigned char* ntup = NeighborTuple(image, nblocks, e.neighbortid, e.level, m);
    if (ntup == nullptr) continue;  // reported above
    for (int lc = 0; lc <= e.level; lc++) {
      const int start = LevelStart(lc, m);
      for (int i = start; i < start + LevelSlots(lc, m); i++) {
        const Tid t = LoadTid(ntup + kNeighborIdsOffset + kTidSize * static_cast<std::size_t>(i));
        if (!t.valid()) continue;
        summary->links++;
        const Item* target = FindItem(items, t);
        if (target == nullptr || target->kind != kElementTuple)
          problems->Add(static_cast<std::uint32_t>(e.id >> 16), static_cast<std::uint16_t>(e.id & 0xFFFF),
                        "link to an item that is not an element");
        else if (target->level < lc)
          problems->Add(static_cast<std::uint32_t>(e.id >> 16), static_cast<std::uint16_t>(e.id & 0xFFFF),
                        "link on a level above the target element's level");
      }
    }
  }
  const Item* ep = meta.entry.valid() ? FindItem(items, meta.entry) : nullptr;
  if (ep == nullptr || ep->kind != kElementTuple) return;
  std::vector<unsigned char> reached(items.size(), 0);
  std::vector<std::size_t> queue;
  queue.push_back(static_cast<std::size_t>(ep - items.data()));
  reached[queue.back()] = 1;
  for (std::size_t head = 0; head < queue.size(); head++) {
    const Item& e = items[queue[head]];
    const unsigned char* ntup = NeighborTuple(image, nblocks, e.neighbortid, e.level, m);
    if (ntup == nullptr) continue;
    const int count = Load16(ntup + 2);
    for (int i = 0; i < count; i++) {
      const Tid t = LoadTid(ntup + kNeighborIdsOffset + kTidSize * static_cast<std::size_t>(i));
      if (!t.valid()) continue;
      const Item* target = FindItem(items, t);
      if (target == nullptr || target->kind != kElementTuple) continue;
      const std::size_t at = static_cast<std::size_t>(target - items.data());
      if (reached[at]) continue;
      reached[at] = 1;
      queue.push_back(at);
    }
  }
  for (std::size_t i = 0; i < items.size(); i++) {
    const Item& e = items[i];
    if (e.kind != kElementTuple || (e.flags & kElementDeleted) || reached[i]) continue;
    summary->unreachable++;
    problems->Add(static_cast<std::uint32_t>(e.id >> 16), static_cast<std::uint16_t>(e.id & 0xFFFF),
                  "live element is not reachable from the entry point");
  }
}

}  // namespace

void ProblemList::Add(std::uint32_t block, std::uint16_t offset, const char* what) {
  if (count < kCapacity) items[count++] = Problem{block, offset, what};
  total++;
}

int MaxLevelForM(int m) {
  int level = kMaxLevel;
  while (level > 0 && NeighborTupleSize(NeighborSlots(level, m)) > kMaxItemSize) level--;
  return level;
}

LinePointer GetLinePointer(const unsigned char* page, int off) {
  const std::uint32_t w = Load32(page + kPageHeaderSize + kItemIdSize * static_cast<std::size_t>(off - 1));
  return LinePointer{w & 0x7FFFu, (w >> 15) & 0x3u, w >> 17};
}

int MaxOffset(const unsigned char* page) {
  const std::size_t lower = Load16(page + kPdLower);
  if (Load16(page + kPdUpper) == 0 || lower <= kPageHeaderSize) return 0;
  return static_cast<int>((lower - kPageHeaderSize) / kItemIdSize);
}

const char* PageProblem(const unsigned char* page, std::uint32_t blkno) {
  const std::uint16_t flags = Load16(page + kPdFlags);
  const std::uint16_t lower = Load16(page + kPdLower);
  const std::uint16_t upper = Load16(page + kPdUpper);
  const std::uint16_t special = Load16(page + kPdSpecial);
  if (upper == 0) return nullptr;  // PageIsNew
  if (lower < kPageHeaderSize || lower > upper || upper > special || special > kPageSize)
    return "invalid page header (pd_lower, pd_upper, pd_special)";
  if ((flags & ~kPdValidFlagBits) != 0) return "invalid page header flags";
  if (special != kPageSize - kSpecialSize) return "special space has the wrong size (not an hnsw page)";
  if (Load16(page + kOpaquePageId) != kPageId) return "wrong page id (not an hnsw page)";
  const std::uint16_t type = Load16(page + kOpaqueFlags);
  if (blkno == 0) {
    if (type != kPageMeta) return "block 0 is not a metapage";
  } else if (type != kPageElement) {
    return "page is not an element page";
  }
  return nullptr;
}

const char* ReadMetaPage(const unsigned char* page, MetaPage* meta) {
  if (Load16(page + kPdUpper) == 0) return "metapage is not initialised";
  if (Load16(page + kPdLower) < kMetaOffset + kMetaSize) return "metapage pd_lower does not cover the metadata";
  const unsigned char* p = page + kMetaOffset;
  meta->magic = Load32(p);
  meta->version = Load32(p + 4);
  meta->dimensions = Load32(p + 8);
  meta->m = Load16(p + 12);
  meta->ef_construction = Load16(p + 14);
  meta->metric = p[16];
  meta->quantization = p[17];
  meta->entry_level = static_cast<std::int16_t>(Load16(p + 18));
  meta->entry = LoadTid(p + 20);
  meta->insert_page = Load32(p + 28);
  const bool sq8_fields = Load16(page + kPdLower) >= kMetaOffset + kMetaSizeSq8;
  meta->params_start = sq8_fields ? Load32(p + 32) : 0;
  meta->params_pages = sq8_fields ? Load32(p + 36) : 0;
  meta->params_bytes = sq8_fields ? Load32(p + 40) : 0;
  const bool flag_fields = Load16(page + kPdLower) >= kMetaOffset + kMetaSizeFull;
  meta->flags = flag_fields ? Load32(p + 44) : 0;
  if (meta->magic != kMagic) return "bad magic number in metapage";
  if (meta->version != kFormatVersion) return "unsupported on-disk format version";
  if (meta->dimensions > static_cast<std::uint32_t>(kMaxDimensions)) return "metapage dimensions out of range";
  if (meta->m < kMinM || meta->m > kMaxM) return "metapage m out of range";
  if (meta->ef_construction < kMinEfConstruction || meta->ef_construction > kMaxEfConstruction)
    return "metapage ef_construction out of range";
  if (meta->metric > kMaxMetric) return "metapage metric unknown";
  if (meta->quantization > kQuantSq8) return "metapage quantization unknown";
  if (meta->quantization == kQuantSq8 && !sq8_fields) return "metapage pd_lower does not cover the SQ8 metadata";
  if ((meta->flags & ~kMetaFilter) != 0) return "metapage flags unknown";
  if (meta->entry_level < -1 || meta->entry_level > kMaxLevel) return "metapage entry level out of range";
  if ((meta->entry_level >= 0) != meta->entry.valid()) return "metapage entry point and entry level disagree";
  if (meta->entry.valid() && meta->entry.block == 0) return "metapage entry point is on the metapage";
  return nullptr;
}

Status CheckElementPage(const unsigned char* page, std::uint32_t blkno, int dimensions, int m, PageSummary* summary,
                        ProblemList* problems, int quantization) {
  *summary = PageSummary();
  const std::int64_t before = problems->total;
  const int maxoff = MaxOffset(page);
  const int max_level = MaxLevelForM(m);
  for (int off = 1; off <= maxoff; off++) {
    const std::uint16_t uoff = static_cast<std::uint16_t>(off);
    if (GetLinePointer(page, off).flags != 0) summary->items++;
    std::size_t len;
    const char* why;
    const unsigned char* item = PageItem(page, off, 4, &len, &why);
    if (item == nullptr) {
      if (why != nullptr) {
        problems->Add(blkno, uoff, why);
        summary->invalid++;
      }
      continue;
    }
    if (item[0] == kElementTuple) {
      if (item[1] > kMaxLevel || len < ElementTupleSize(dimensions, quantization)) {
        problems->Add(blkno, uoff, "invalid element tuple (level or length)");
        summary->invalid++;
        continue;
      }
      summary->elements++;
      const bool deleted = (item[2] & kElementDeleted) != 0;
      if (deleted) summary->deleted++;
      if (!LoadTid(item + 4).valid()) problems->Add(blkno, uoff, "element has an invalid heap TID");
      if (item[1] > max_level) problems->Add(blkno, uoff, "element level exceeds the maximum for m");
      if (!deleted) {
        // Floats: the vector; SQ8: the three floats of side data.
        const int nfloats = quantization == kQuantSq8 ? 3 : dimensions;
        for (int i = 0; i < nfloats; i++) {
          if (!std::isfinite(LoadFloat(item + kElementVecOffset + 4 * static_cast<std::size_t>(i)))) {
            problems->Add(blkno, uoff, "element vector has a non-finite value");
            break;
          }
        }
      }
    } else if (item[0] == kNeighborTuple) {
      const int count = Load16(item + 2);
      if (count == 0) {
        summary->tombstones++;
        continue;
      }
      if (item[1] > kMaxLevel || count != NeighborSlots(item[1], m) || len < NeighborTupleSize(count)) {
        problems->Add(blkno, uoff, "invalid neighbour tuple (level, slot count or length)");
        summary->invalid++;
        continue;
      }
      summary->neighbors++;
    } else {
      problems->Add(blkno, uoff, "unknown tuple type");
      summary->invalid++;
    }
  }
  if (problems->total == before) return Status::Ok();
  return Status::Error(StatusCode::kCorrupted, "element page has problems");
}

Status CheckIndexImage(const unsigned char* image, std::size_t size, IndexSummary* summary, ProblemList* problems) {
  *summary = IndexSummary();
  if (size == 0 || size % kPageSize != 0)
    return Status::Error(StatusCode::kInvalidInput, "index image size is not a positive multiple of the page size");
  if (size / kPageSize >= kInvalidBlock)
    return Status::Error(StatusCode::kInvalidInput, "index image has too many blocks");
  const std::uint32_t nblocks = static_cast<std::uint32_t>(size / kPageSize);
  summary->nblocks = nblocks;
  const char* problem = PageProblem(image, 0);
  if (problem == nullptr) problem = ReadMetaPage(image, &summary->meta);
  if (problem != nullptr) {
    problems->Add(0, 0, problem);
    return Result(*problems);
  }
  summary->meta_ok = true;
  const int dim = static_cast<int>(summary->meta.dimensions);
  const int m = summary->meta.m;
  for (std::uint32_t blkno = 1; blkno < nblocks; blkno++) {
    const unsigned char* page = image + static_cast<std::size_t>(blkno) * kPageSize;
    problem = PageProblem(page, blkno);
    if (problem != nullptr) {
      problems->Add(blkno, 0, problem);
      continue;
    }
    if (summary->meta.quantization == kQuantSq8 && summary->meta.params_pages > 0 &&
        blkno >= summary->meta.params_start && blkno - summary->meta.params_start < summary->meta.params_pages) {
      // An SQ8 parameter page: one parameter tuple.
      std::size_t len;
      const char* why;
      const unsigned char* item = MaxOffset(page) == 1 ? PageItem(page, 1, 16, &len, &why) : nullptr;
      if (item == nullptr || item[0] != kParamsTuple) problems->Add(blkno, 0, "bad SQ8 parameter page");
      continue;
    }
    PageSummary ps;
    (void)CheckElementPage(page, blkno, dim, m, &ps, problems, summary->meta.quantization);
    summary->live += ps.elements - ps.deleted;
    summary->deleted += ps.deleted;
    summary->neighbors += ps.neighbors;
    summary->tombstones += ps.tombstones;
    const int maxoff = MaxOffset(page);
    for (int off = 1; off <= maxoff; off++) {
      std::size_t len;
      const char* why;
      const unsigned char* item = PageItem(page, off, ElementTupleSize(dim), &len, &why);
      if (item != nullptr && item[0] == kElementTuple && item[1] <= kMaxLevel && !(item[2] & kElementDeleted))
        summary->max_level = std::max(summary->max_level, static_cast<int>(item[1]));
    }
  }
  try {
    CheckAcross(image, nblocks, summary, problems);
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "out of memory checking the index image");
  }
  return Result(*problems);
}

}  // namespace hnsw_format
}  // namespace vecext
