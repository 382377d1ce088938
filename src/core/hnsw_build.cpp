// In-memory HNSW graph builder over hnswlib (see hnsw_build.h).
//
// hnswlib 0.6.2 stores each element's data inline next to its level-0 links.
// We give it a "space" whose data is a pointer to the row's element (its
// float vector, or its SQ8 side data and codes) in our chunks and whose
// distance follows both pointers into our SIMD kernels, so an element is
// stored once and hnswlib's own (here scalar) kernels are unused.
//
// hnswlib's addPoint draws the element's level from a generator it shares
// between threads without a lock, and keeps a label hash map we do not need;
// InsertRow below is our insertion with the level fixed at Append, written
// against hnswlib's public members (storage, locks, visited lists), with our
// own layer search (SearchLayer: hnswlib's searchBaseLayer reorganised to
// prefetch vectors) and linking (Connect: its mutuallyConnectNewElement with
// the shared neighbour heuristic of hnsw_heuristic.h, as inserts use). Locking is addPoint's: an element's list lock is held
// for its whole insertion, `global` while it raises the entry level.
// ThreadSanitizer reports lock-order inversions between element locks; they
// cannot deadlock: a thread working on level l only reaches elements already
// linked on level l, whose inserting threads are below l, so two threads
// never wait for each other's element.
#include "core/hnsw_build.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "core/hnsw_heuristic.h"
#include "core/hnsw_types.h"
#include "core/index_distance.h"

// No SSE block in hnswlib.h: it would define non-inline cpuid helpers
// (one definition per program), and its kernels are not used.
#define NO_MANUAL_VECTORIZATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wclass-memaccess"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop

namespace vecext {
namespace hnsw {
namespace {

using Index = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;

constexpr std::size_t kChunkBytes = std::size_t{32} << 20;  // most bytes per chunk of rows
constexpr std::size_t kMaxChunkRows = std::size_t{1} << 16;
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kUpdateLocks = Index::max_update_element_locks;  // hnswlib's fixed lock array
constexpr std::size_t kMallocOverhead = 16;                            // glibc chunk header + rounding
// A level-0 list holds 2m links, and the neighbour heuristic (and the
// search's scratch) hold at most kMaxLinks: m up to kMaxLinks / 2.
constexpr int kMaxM = kMaxLinks / 2;
constexpr std::size_t kPrefetchBytes = 1024;

// How two elements compare: float vectors through the index distance, or
// SQ8 elements (Sq8ElementInfo, then dim codes) code to code.
struct ElementSpace {
  DistanceFn fn;  // floats
  std::size_t dim;
  Metric metric;
  Sq8CodeFn code;  // SQ8 codes when not null: code_l1 under L1, else code_l2
  Sq8OffsetFn probe;  // SQ8 under L2 and L1: the asymmetric kernel (see Probe)
  Sq8Params sq8;
};

// Sq8CodeDistance inlined (the same expression, so the same float): at 128
// dimensions the kernel takes about 10 ns and a second call level showed.
inline float ElementDistance(const ElementSpace& s, const unsigned char* a, const unsigned char* b) {
  if (s.code == nullptr) {
    return s.fn(reinterpret_cast<const float*>(a), reinterpret_cast<const float*>(b), s.dim);
  }
  const float d = s.code(s.sq8.scale, a + sizeof(Sq8ElementInfo), b + sizeof(Sq8ElementInfo), s.dim);
  if (s.metric == Metric::kL2 || s.metric == Metric::kL1) return d;
  // Elements are 4-byte aligned: the side data can be read in place.
  const float dot = 0.5f * (reinterpret_cast<const Sq8ElementInfo*>(a)->sq_norm +
                            reinterpret_cast<const Sq8ElementInfo*>(b)->sq_norm - d);
  return s.metric == Metric::kCosine ? 1.0f - dot : -dot;
}

// hnswlib's data for an element is a pointer to the element; a and b point
// to such pointers.
float PointerDistance(const void* a, const void* b, const void* param) {
  const unsigned char* x;
  const unsigned char* y;
  std::memcpy(&x, a, sizeof x);
  std::memcpy(&y, b, sizeof y);
  return ElementDistance(*static_cast<const ElementSpace*>(param), x, y);
}

class PointerSpace final : public hnswlib::SpaceInterface<float> {
 public:
  explicit PointerSpace(const ElementSpace& space) : param_(space) {}
  size_t get_data_size() override { return sizeof(const unsigned char*); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return PointerDistance; }
  void* get_dist_func_param() override { return &param_; }
  const ElementSpace& space() const { return param_; }

 private:
  ElementSpace param_;
};

// Bytes of an element: dim floats, or SQ8 side data and dim codes.
std::size_t ElementBytesOf(std::size_t dim, bool sq8) {
  return sq8 ? sizeof(Sq8ElementInfo) + dim : dim * sizeof(float);
}

// A row in a chunk: payload (8 bytes), level (1), padding to 16, then the
// element (elem bytes); rows are 16-byte aligned.
std::size_t RowStride(std::size_t elem) { return 16 + ((elem + 15) & ~std::size_t{15}); }

// Rows per chunk: a power of two (a row's chunk and slot are a shift and a
// mask) such that a chunk stays within kChunkBytes.
int ChunkShift(std::size_t elem) {
  int shift = 0;
  while ((std::size_t{2} << shift) * RowStride(elem) <= kChunkBytes && (std::size_t{2} << shift) <= kMaxChunkRows) {
    shift++;
  }
  return shift;
}

std::size_t ChunkBytes(std::size_t elem) {
  return ((std::size_t{1} << ChunkShift(elem)) * RowStride(elem) + kHugePage - 1) & ~(kHugePage - 1);
}

// Asks for transparent huge pages on [p, p + bytes) (Linux; a hint). A
// build reads vectors at random: with 4 KiB pages nearly every distance
// misses the TLB, which in a virtual machine costs about as much as the
// distance itself (measured: 0.7 us per 3 KiB vector, 0.37 us with 2 MiB pages).
void AdviseHugePages(void* p, std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  const std::uintptr_t page = 4096;
  std::uintptr_t start = (reinterpret_cast<std::uintptr_t>(p) + page - 1) & ~(page - 1);
  std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(page - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// An anonymous mapping aligned to kHugePage, with huge pages requested.
// Untouched pages cost no memory.
class Chunk {
 public:
  explicit Chunk(std::size_t bytes) : bytes_(bytes) {
    void* raw = mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    std::uintptr_t r = reinterpret_cast<std::uintptr_t>(raw);
    std::uintptr_t aligned = (r + kHugePage - 1) & ~(kHugePage - 1);
    if (aligned > r) munmap(raw, aligned - r);
    std::size_t tail = (r + bytes + kHugePage) - (aligned + bytes);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    data_ = reinterpret_cast<unsigned char*>(aligned);
    AdviseHugePages(data_, bytes_);
  }
  ~Chunk() { munmap(data_, bytes_); }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;
  unsigned char* data() const { return data_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t bytes_;
};

// hnswlib's per-element bytes: level-0 record (links, data pointer, label),
// linkLists_ pointer, element_levels_, link_list_locks_.
std::size_t HnswlibBytesPerElement(int m) {
  std::size_t level0 = 2 * static_cast<std::size_t>(m) * sizeof(tableint) + sizeof(hnswlib::linklistsizeint) +
                       sizeof(const unsigned char*) + sizeof(hnswlib::labeltype);
  return level0 + sizeof(char*) + sizeof(int) + sizeof(std::mutex);
}

// Expected bytes of upper-level link lists per element, doubled for safety:
// P(level >= l) = m^-l, so E[level] = 1/(m-1); an element with level > 0
// (probability 1/m) has one malloc of level * (4m + 4) + 1 bytes.
std::size_t UpperLinkBytesPerElement(int m) {
  double per_level = 4.0 * m + 4.0;
  double expected = per_level / (m - 1.0) + (1.0 + kMallocOverhead) / m;
  return static_cast<std::size_t>(std::ceil(2.0 * expected)) + 1;
}

}  // namespace

// The space of a builder: sq8 points at the builder's copy of the params.
ElementSpace MakeSpace(const BuildParams& p, const std::vector<float>& lo, const std::vector<float>& scale) {
  ElementSpace s;
  s.fn = IndexDistanceFn(p.metric);
  s.dim = p.dim;
  s.metric = p.metric;
  s.code = nullptr;
  s.probe = nullptr;
  if (p.sq8.dim != 0) {
    const Sq8Kernels& k = Sq8KernelsDispatched();
    s.code = p.metric == Metric::kL1 ? k.code_l1 : k.code_l2;
    if (p.metric == Metric::kL2) s.probe = k.l2;
    if (p.metric == Metric::kL1) s.probe = k.l1;
  }
  s.sq8.dim = p.sq8.dim;
  s.sq8.lo = lo.data();
  s.sq8.scale = scale.data();
  return s;
}

class GraphBuilderImpl {
 public:
  explicit GraphBuilderImpl(const BuildParams& p)
      : params_(p),
        quantized_(p.sq8.dim != 0),
        elem_bytes_(ElementBytesOf(p.dim, quantized_)),
        chunk_shift_(ChunkShift(elem_bytes_)),
        rows_per_chunk_(std::size_t{1} << chunk_shift_),
        row_stride_(RowStride(elem_bytes_)),
        sq8_lo_(quantized_ ? p.sq8.lo : nullptr, quantized_ ? p.sq8.lo + p.dim : nullptr),
        sq8_scale_(quantized_ ? p.sq8.scale : nullptr, quantized_ ? p.sq8.scale + p.dim : nullptr),
        space_(MakeSpace(p, sq8_lo_, sq8_scale_)),
        rng_(p.seed),
        level_mult_(1.0 / std::log(static_cast<double>(p.m))) {
    params_.sq8 = space_.space().sq8;
  }

  BuildParams params_;
  bool quantized_;
  std::size_t elem_bytes_;
  int chunk_shift_;
  std::size_t rows_per_chunk_;
  std::size_t row_stride_;
  std::vector<float> sq8_lo_;  // the SQ8 params (quantized_)
  std::vector<float> sq8_scale_;
  PointerSpace space_;
  std::mt19937_64 rng_;
  double level_mult_;

  // Row storage: chunks of rows_per_chunk_ rows of RowStride(dim) bytes.
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::size_t rows_ = 0;

  std::unique_ptr<Index> index_;
  std::size_t inserted_ = 0;
  std::atomic<std::size_t> upper_link_bytes_{0};
  int max_threads_used_ = 0;
  bool concurrent_ = false;  // several threads insert: take hnswlib's locks (one thread needs none)

  bool broken_ = false;
  Status broken_status_;
  char detail_[256] = "";

  unsigned char* RowPtr(std::size_t row) const {
    return chunks_[row >> chunk_shift_]->data() + (row & (rows_per_chunk_ - 1)) * row_stride_;
  }
  unsigned char* ElemPtr(std::size_t row) const { return RowPtr(row) + 16; }
  float Dist(const unsigned char* a, const unsigned char* b) const { return ElementDistance(space_.space(), a, b); }

  // The element a search compares with many others (the row being inserted).
  // SQ8 under L2 and L1: its codes times the scales, once, in `a`, so that
  // each comparison is the asymmetric kernel (a_i - s_i d_i: one FMA less
  // per 16 codes than s_i (c_i - d_i)); the same distance as Dist up to the
  // rounding of a_i. Else Dist.
  struct Probe {
    const unsigned char* elem;
    const float* a;  // null: Dist
  };
  Probe MakeProbe(const unsigned char* elem, std::vector<float>* buffer) const {
    const ElementSpace& sp = space_.space();
    if (sp.probe == nullptr) return {elem, nullptr};
    buffer->resize(params_.dim);
    const std::uint8_t* c = elem + sizeof(Sq8ElementInfo);
    for (std::size_t i = 0; i < params_.dim; i++) (*buffer)[i] = sp.sq8.scale[i] * static_cast<float>(c[i]);
    return {elem, buffer->data()};
  }
  float ProbeDist(const Probe& q, const unsigned char* b) const {
    const ElementSpace& sp = space_.space();
    if (q.a == nullptr) return Dist(q.elem, b);
    return sp.probe(q.a, sp.sq8.scale, b + sizeof(Sq8ElementInfo), params_.dim);
  }
  std::uint64_t PayloadOf(std::size_t row) const {
    std::uint64_t payload;
    std::memcpy(&payload, RowPtr(row), sizeof payload);
    return payload;
  }
  int LevelOf(std::size_t row) const { return RowPtr(row)[8]; }

  // Starts loading a vector ahead of its distance computation: its first
  // lines; the hardware prefetcher follows the rest of a long vector.
  void Prefetch(std::size_t row) const {
    const char* p = reinterpret_cast<const char*>(ElemPtr(row));
    const std::size_t bytes = std::min<std::size_t>(elem_bytes_, kPrefetchBytes);
    for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
  }

  using MaxHeap = std::priority_queue<std::pair<float, tableint>, std::vector<std::pair<float, tableint>>,
                                      Index::CompareByFirst>;

  // The ef_construction nearest elements to `vec` on `level` reachable from
  // ep (hnswlib's searchBaseLayer, reorganised for memory: a list is copied
  // under its lock, then the unvisited neighbours' vectors are prefetched one
  // ahead of their distance computation). May throw (std::bad_alloc).
  MaxHeap SearchLayer(tableint ep, const Probe& vec, int level) const {
    Index& h = *index_;
    const std::size_t ef = h.ef_construction_;
    hnswlib::VisitedList* vl = h.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type* visited = vl->mass;
    const hnswlib::vl_type tag = vl->curV;
    MaxHeap top;
    MaxHeap candidates;  // by negated distance: nearest on top
    tableint ids[2 * kMaxM];
    try {
      float d = ProbeDist(vec, ElemPtr(ep));
      top.emplace(d, ep);
      candidates.emplace(-d, ep);
      visited[ep] = tag;
      float bound = d;
      while (!candidates.empty()) {
        const std::pair<float, tableint> c = candidates.top();
        if (-c.first > bound && top.size() == ef) break;
        candidates.pop();
        std::size_t count;
        {
          std::unique_lock<std::mutex> lock(h.link_list_locks_[c.second], std::defer_lock);
          if (concurrent_) lock.lock();
          const hnswlib::linklistsizeint* list = h.get_linklist_at_level(c.second, level);
          count = h.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
          std::memcpy(ids, list + 1, count * sizeof(tableint));
        }
        std::size_t fresh = 0;
        for (std::size_t i = 0; i < count; i++) {
          if (visited[ids[i]] != tag) {
            visited[ids[i]] = tag;
            ids[fresh++] = ids[i];
          }
        }
        if (fresh > 0) Prefetch(ids[0]);
        for (std::size_t i = 0; i < fresh; i++) {
          if (i + 1 < fresh) Prefetch(ids[i + 1]);
          const float dist = ProbeDist(vec, ElemPtr(ids[i]));
          if (top.size() < ef || dist < bound) {
            candidates.emplace(-dist, ids[i]);
            top.emplace(dist, ids[i]);
            if (top.size() > ef) top.pop();
            bound = top.top().first;
          }
        }
      }
    } catch (...) {
      h.visited_list_pool_->releaseVisitedList(vl);
      throw;
    }
    h.visited_list_pool_->releaseVisitedList(vl);
    return top;
  }

  void SetDetail(const char* what) {
    std::snprintf(detail_, sizeof detail_, "%s", what ? what : "");
  }

  int DrawLevel() {
    // u in (0, 1]: never log(0).
    double u = static_cast<double>((rng_() >> 11) + 1) * 0x1.0p-53;
    double level = std::floor(-std::log(u) * level_mult_);
    return level >= params_.max_level ? params_.max_level : static_cast<int>(level);
  }

  // Ensures hnswlib's arrays hold rows_ elements. May throw.
  void EnsureIndex() {
    if (!index_) {
      index_.reset(new Index(&space_, rows_, static_cast<size_t>(params_.m),
                             static_cast<size_t>(params_.ef_construction), params_.seed));
      AdviseHugePages(index_->data_level0_memory_, index_->max_elements_ * index_->size_data_per_element_);
    } else if (index_->max_elements_ < rows_) {
      index_->resizeIndex(rows_);
      AdviseHugePages(index_->data_level0_memory_, index_->max_elements_ * index_->size_data_per_element_);
    }
  }

  // Candidates sorted by Closer, with their elements, for SelectNeighborsBy.
  struct Scratch {
    std::vector<Candidate> cands;
    std::vector<const unsigned char*> vecs;
    std::vector<int> picks;
  };

  void Sort(Scratch* sc) const {
    std::sort(sc->cands.begin(), sc->cands.end(), Closer);
    sc->vecs.resize(sc->cands.size());
    for (std::size_t i = 0; i < sc->cands.size(); i++) sc->vecs[i] = ElemPtr(sc->cands[i].id);
    sc->picks.resize(sc->cands.size());
  }

  // The heuristic (hnsw_heuristic.h) over the sorted candidates of sc.
  int Select(Scratch* sc, int m, bool keep_pruned) const {
    const unsigned char* const* vecs = sc->vecs.data();
    return SelectNeighborsBy(
        sc->cands.data(), static_cast<int>(sc->cands.size()), m,
        [this, vecs](int i, int j) { return Dist(vecs[i], vecs[j]); }, keep_pruned, sc->picks.data());
  }

  // Links row `cur` on `level` to the heuristic's choice among `found` (at
  // most m; 2m on level 0 with dense_level0), and each chosen neighbour back
  // to cur: in a free slot, else by
  // re-running the heuristic over the neighbour's links plus cur (hnswlib's
  // mutuallyConnectNewElement, with the heuristic of hnsw_heuristic.h and
  // prefetching). Returns the nearest chosen neighbour (the next level's
  // entry). REQUIRES: cur's list lock is held; found is not empty. May throw.
  tableint Connect(tableint cur, MaxHeap* found, int level) const {
    Index& h = *index_;
    thread_local Scratch sc;
    sc.cands.clear();
    for (; !found->empty(); found->pop()) sc.cands.push_back({found->top().first, found->top().second, 0});
    Sort(&sc);
    const bool keep_pruned = level == 0 && params_.keep_pruned;
    const int own = level == 0 && params_.dense_level0 ? 2 * params_.m : params_.m;
    const int chosen = Select(&sc, own, keep_pruned);
    tableint selected[2 * kMaxM];
    for (int i = 0; i < chosen; i++) selected[i] = static_cast<tableint>(sc.cands[sc.picks[i]].id);
    {
      hnswlib::linklistsizeint* list = h.get_linklist_at_level(cur, level);
      h.setListCount(list, static_cast<unsigned short>(chosen));
      std::memcpy(list + 1, selected, chosen * sizeof(tableint));
    }
    const std::size_t cap = level == 0 ? h.maxM0_ : h.maxM_;
    for (int i = 0; i < chosen; i++) {
      const tableint e = selected[i];
      std::unique_lock<std::mutex> lock(h.link_list_locks_[e], std::defer_lock);
      if (concurrent_) lock.lock();
      hnswlib::linklistsizeint* list = h.get_linklist_at_level(e, level);
      const std::size_t count = h.getListCount(list);
      tableint* links = reinterpret_cast<tableint*>(list + 1);
      if (std::find(links, links + count, cur) != links + count) continue;
      if (count < cap) {
        links[count] = cur;
        h.setListCount(list, static_cast<unsigned short>(count + 1));
        continue;
      }
      const unsigned char* ev = ElemPtr(e);
      sc.cands.clear();
      sc.cands.push_back({Dist(ev, ElemPtr(cur)), cur, 0});
      if (count > 0) Prefetch(links[0]);
      for (std::size_t j = 0; j < count; j++) {
        if (j + 1 < count) Prefetch(links[j + 1]);
        sc.cands.push_back({Dist(ev, ElemPtr(links[j])), links[j], 0});
      }
      Sort(&sc);
      const int kept = Select(&sc, static_cast<int>(cap), keep_pruned);
      for (int j = 0; j < kept; j++) links[j] = static_cast<tableint>(sc.cands[sc.picks[j]].id);
      h.setListCount(list, static_cast<unsigned short>(kept));
    }
    return selected[0];
  }

  // Inserts row `cur` (its level fixed at Append). May throw.
  void InsertRow(tableint cur) {
    Index& h = *index_;
    const int level = LevelOf(cur);
    thread_local std::vector<float> probe_buffer;
    const Probe vec = MakeProbe(ElemPtr(cur), &probe_buffer);

    std::unique_lock<std::mutex> lock_el(h.link_list_locks_[cur], std::defer_lock);
    if (concurrent_) lock_el.lock();
    std::memset(h.data_level0_memory_ + cur * h.size_data_per_element_ + h.offsetLevel0_, 0,
                h.size_data_per_element_);
    std::memcpy(h.getDataByInternalId(cur), &vec.elem, sizeof vec.elem);
    h.setExternalLabel(cur, cur);
    if (level > 0) {
      std::size_t bytes = h.size_links_per_element_ * level + 1;
      char* links = static_cast<char*>(std::malloc(bytes));
      if (links == nullptr) throw std::bad_alloc();
      std::memset(links, 0, bytes);
      h.linkLists_[cur] = links;
      upper_link_bytes_.fetch_add(bytes + kMallocOverhead, std::memory_order_relaxed);
    }
    // Only now: hnswlib's destructor frees linkLists_[i] of elements whose level is > 0.
    h.element_levels_[cur] = level;

    std::unique_lock<std::mutex> lock_global(h.global, std::defer_lock);
    if (concurrent_) lock_global.lock();
    const int top = h.maxlevel_;
    tableint ep = h.enterpoint_node_;
    if (top < 0) {  // the first element
      h.enterpoint_node_ = cur;
      h.maxlevel_ = level;
      return;
    }
    if (level <= top && concurrent_) lock_global.unlock();

    if (level < top) {  // greedy descent to the element's top level
      float best = ProbeDist(vec, ElemPtr(ep));
      tableint ids[kMaxM];
      for (int lc = top; lc > level; lc--) {
        bool changed = true;
        while (changed) {
          changed = false;
          std::size_t count;
          {
            std::unique_lock<std::mutex> lock(h.link_list_locks_[ep], std::defer_lock);
            if (concurrent_) lock.lock();
            hnswlib::linklistsizeint* list = h.get_linklist(ep, lc);
            count = h.getListCount(list);
            std::memcpy(ids, list + 1, count * sizeof(tableint));
          }
          for (std::size_t i = 0; i < count; i++) {
            if (i + 1 < count) Prefetch(ids[i + 1]);
            float d = ProbeDist(vec, ElemPtr(ids[i]));
            if (d < best) {
              best = d;
              ep = ids[i];
              changed = true;
            }
          }
        }
      }
    }
    for (int lc = std::min(level, top); lc >= 0; lc--) {
      MaxHeap candidates = SearchLayer(ep, vec, lc);
      ep = Connect(cur, &candidates, lc);
    }
    if (level > top) {  // still holding `global`
      h.enterpoint_node_ = cur;
      h.maxlevel_ = level;
    }
  }

  // Level-0 list of `row` (no locks: no insertion runs).
  tableint* Links0(tableint row, std::size_t* count) const {
    hnswlib::linklistsizeint* list = index_->get_linklist0(row);
    *count = index_->getListCount(list);
    return reinterpret_cast<tableint*>(list + 1);
  }

  bool HasFreeSlot(tableint row) const {
    std::size_t count;
    Links0(row, &count);
    return count < index_->maxM0_;
  }

  // Marks everything reachable on level 0 from `from` (through unmarked elements).
  void Mark(tableint from, std::vector<char>* reached, std::vector<tableint>* stack) const {
    (*reached)[from] = 1;
    stack->push_back(from);
    while (!stack->empty()) {
      tableint e = stack->back();
      stack->pop_back();
      std::size_t count;
      const tableint* links = Links0(e, &count);
      for (std::size_t i = 0; i < count; i++) {
        if (!(*reached)[links[i]]) {
          (*reached)[links[i]] = 1;
          stack->push_back(links[i]);
        }
      }
    }
  }

  // Adds a link y -> x on level 0: into a free slot, else in place of y's
  // farthest link whose target keeps another in-link and was not linked by
  // the repair itself (so that repairs never undo each other). False if y
  // has neither.
  bool LinkFrom(tableint y, tableint x, std::vector<std::uint32_t>* indeg, const std::vector<char>& pinned) {
    std::size_t count;
    tableint* links = Links0(y, &count);
    for (std::size_t i = 0; i < count; i++) {
      if (links[i] == x) return true;
    }
    if (count < index_->maxM0_) {
      links[count] = x;
      index_->setListCount(index_->get_linklist0(y), static_cast<unsigned short>(count + 1));
      (*indeg)[x]++;
      return true;
    }
    std::size_t victim = count;
    float worst = -std::numeric_limits<float>::infinity();
    for (std::size_t i = 0; i < count; i++) {
      if ((*indeg)[links[i]] < 2 || pinned[links[i]]) continue;
      float d = Dist(ElemPtr(y), ElemPtr(links[i]));
      if (d > worst || victim == count) {
        worst = d;
        victim = i;
      }
    }
    if (victim == count) return false;
    (*indeg)[links[victim]]--;
    links[victim] = x;
    (*indeg)[x]++;
    return true;
  }

  // Candidates to link to x, nearest first: x's own level-0 neighbours, then
  // what a search from the entry point finds (every result is reachable).
  void LinkCandidates(tableint x, std::vector<std::pair<float, tableint>>* out) {
    out->clear();
    std::size_t count;
    const tableint* links = Links0(x, &count);
    for (std::size_t i = 0; i < count; i++) {
      out->emplace_back(Dist(ElemPtr(x), ElemPtr(links[i])), links[i]);
    }
    std::sort(out->begin(), out->end());
    tableint ep = index_->enterpoint_node_;
    std::vector<float> probe_buffer;
    const Probe vec = MakeProbe(ElemPtr(x), &probe_buffer);
    float best = ProbeDist(vec, ElemPtr(ep));
    for (int lc = index_->maxlevel_; lc > 0; lc--) {
      bool changed = true;
      while (changed) {
        changed = false;
        hnswlib::linklistsizeint* list = index_->get_linklist(ep, lc);
        const std::size_t n = index_->getListCount(list);
        const tableint* up = reinterpret_cast<const tableint*>(list + 1);
        for (std::size_t i = 0; i < n; i++) {
          float d = ProbeDist(vec, ElemPtr(up[i]));
          if (d < best) {
            best = d;
            ep = up[i];
            changed = true;
          }
        }
      }
    }
    MaxHeap found = SearchLayer(ep, vec, 0);
    std::vector<std::pair<float, tableint>> searched;
    while (!found.empty()) {
      if (found.top().second != x) searched.push_back(found.top());
      found.pop();
    }
    std::reverse(searched.begin(), searched.end());
    out->insert(out->end(), searched.begin(), searched.end());
  }

  // See GraphBuilder::EnsureReachable. May throw (std::bad_alloc).
  std::size_t EnsureReachable(std::size_t* unreachable) {
    const std::size_t n = inserted_;
    *unreachable = 0;
    if (n < 2) return 0;
    std::vector<std::uint32_t> indeg(n, 0);
    for (std::size_t e = 0; e < n; e++) {
      std::size_t count;
      const tableint* links = Links0(static_cast<tableint>(e), &count);
      for (std::size_t i = 0; i < count; i++) indeg[links[i]]++;
    }
    std::vector<char> reached(n, 0), pinned(n, 0);
    std::vector<tableint> stack;
    std::vector<std::pair<float, tableint>> candidates;
    std::size_t added = 0;
    for (int round = 0; round < 8; round++) {
      std::fill(reached.begin(), reached.end(), 0);
      Mark(index_->enterpoint_node_, &reached, &stack);
      std::size_t missing = static_cast<std::size_t>(std::count(reached.begin(), reached.end(), 0));
      if (missing == 0) break;
      for (std::size_t e = 0; e < n; e++) {
        const tableint x = static_cast<tableint>(e);
        if (reached[x]) continue;
        LinkCandidates(x, &candidates);
        // First a free slot, then a replaced link, nearest candidate first.
        for (int pass = 0; pass < 2 && !reached[x]; pass++) {
          for (const auto& c : candidates) {
            if (c.second == x || !reached[c.second]) continue;
            if (pass == 0 && !HasFreeSlot(c.second)) continue;
            if (LinkFrom(c.second, x, &indeg, pinned)) {
              pinned[x] = 1;
              added++;
              Mark(x, &reached, &stack);
              break;
            }
          }
        }
      }
    }
    std::fill(reached.begin(), reached.end(), 0);
    Mark(index_->enterpoint_node_, &reached, &stack);
    *unreachable = static_cast<std::size_t>(std::count(reached.begin(), reached.end(), 0));
    return added;
  }
};

namespace {

// Shared state of one AddRows call.
struct Work {
  GraphBuilderImpl* impl;
  std::size_t end;
  StopFn stop;
  const void* stop_arg;
  std::atomic<std::size_t> next;
  std::atomic<bool> abort{false};
  std::atomic<bool> stopped{false};
  std::mutex error_lock;
  bool failed = false;
  Status error;
  char detail[256] = "";
};

void RecordError(Work* w, Status st, const char* detail) {
  std::lock_guard<std::mutex> guard(w->error_lock);
  if (!w->failed) {
    w->failed = true;
    w->error = st;
    std::snprintf(w->detail, sizeof w->detail, "%s", detail);
  }
  w->abort.store(true, std::memory_order_relaxed);
}

void WorkLoop(Work* w) noexcept {
  try {
    for (;;) {
      if (w->abort.load(std::memory_order_relaxed)) return;
      if (w->stop != nullptr && w->stop(w->stop_arg)) {
        w->stopped.store(true, std::memory_order_relaxed);
        w->abort.store(true, std::memory_order_relaxed);
        return;
      }
      std::size_t row = w->next.fetch_add(1, std::memory_order_relaxed);
      if (row >= w->end) return;
      w->impl->InsertRow(static_cast<tableint>(row));
    }
  } catch (const std::bad_alloc&) {
    RecordError(w, Status::Error(StatusCode::kOutOfMemory, "out of memory while building the hnsw graph"),
                "std::bad_alloc");
  } catch (const std::exception& e) {
    RecordError(w, Status::Error(StatusCode::kInternal, "hnswlib failed while building the graph"), e.what());
  } catch (...) {
    RecordError(w, Status::Error(StatusCode::kInternal, "hnswlib failed while building the graph"),
                "unknown exception");
  }
}

}  // namespace

Status GraphBuilder::Create(const BuildParams& p, GraphBuilder** out) {
  *out = nullptr;
  if (p.dim < 1 || p.m < 2 || p.m > kMaxM || p.ef_construction < 1 || p.max_level < 0 || p.max_level > 255 ||
      p.capacity >= (std::size_t{1} << 32)) {
    return Status::Error(StatusCode::kInvalidInput, "invalid hnsw build parameters");
  }
  switch (p.metric) {
    case Metric::kL2:
    case Metric::kInnerProduct:
    case Metric::kCosine:
    case Metric::kL1:
      break;
    default:
      return Status::Error(StatusCode::kInvalidInput, "invalid hnsw build metric");
  }
  if (p.sq8.dim != 0 && (p.sq8.dim != p.dim || p.sq8.lo == nullptr || p.sq8.scale == nullptr)) {
    return Status::Error(StatusCode::kInvalidInput, "invalid SQ8 parameters for the hnsw build");
  }
  GraphBuilder* b = new (std::nothrow) GraphBuilder();
  if (b == nullptr) return Status::Error(StatusCode::kOutOfMemory, "out of memory");
  try {
    b->impl_ = new GraphBuilderImpl(p);
  } catch (...) {
    delete b;
    return Status::Error(StatusCode::kOutOfMemory, "out of memory");
  }
  *out = b;
  return Status::Ok();
}

void GraphBuilder::Destroy(GraphBuilder* builder) { delete builder; }

GraphBuilder::~GraphBuilder() { delete impl_; }

Status GraphBuilder::Append(const float* vec, std::uint64_t payload, std::size_t* row) {
  GraphBuilderImpl& s = *impl_;
  if (s.broken_) return s.broken_status_;
  if (s.rows_ >= s.params_.capacity) {
    s.SetDetail("capacity reached");
    return Status::Error(StatusCode::kLimitExceeded, "the hnsw build holds its maximum number of rows");
  }
  if ((s.rows_ >> s.chunk_shift_) == s.chunks_.size()) {
    try {
      s.chunks_.emplace_back(new Chunk(ChunkBytes(s.elem_bytes_)));
    } catch (...) {
      s.SetDetail("std::bad_alloc");
      return Status::Error(StatusCode::kOutOfMemory, "out of memory while loading the hnsw build");
    }
  }
  unsigned char* r = s.RowPtr(s.rows_);
  if (s.quantized_) {
    // The side data come from the float vector (Sq8Encode normalizes under cosine).
    Sq8ElementInfo info;
    Status st = Sq8Encode(s.params_.sq8, s.params_.metric, vec, r + 16 + sizeof info, &info);
    if (!st.ok()) {
      s.SetDetail(st.message);
      return st;
    }
    std::memcpy(r + 16, &info, sizeof info);
  } else {
    float* dst = reinterpret_cast<float*>(r + 16);
    std::memcpy(dst, vec, s.params_.dim * sizeof(float));
    if (IndexNormalizes(s.params_.metric) && !NormalizeInPlace(dst, s.params_.dim)) {
      s.SetDetail("zero norm");
      return Status::Error(StatusCode::kInvalidInput, "a vector with zero norm cannot be indexed for cosine distance");
    }
  }
  std::memcpy(r, &payload, sizeof payload);
  r[8] = static_cast<unsigned char>(s.DrawLevel());
  if (row != nullptr) *row = s.rows_;
  s.rows_++;
  return Status::Ok();
}

Status GraphBuilder::AddRows(std::size_t begin, std::size_t end, int threads, StopFn stop, const void* stop_arg,
                             std::size_t* done) {
  GraphBuilderImpl& s = *impl_;
  if (done != nullptr) *done = s.inserted_;
  if (s.broken_) return s.broken_status_;
  if (begin != s.inserted_ || end < begin || end > s.rows_ || threads < 1) {
    s.SetDetail("bad row range");
    return Status::Error(StatusCode::kInvalidInput, "invalid row range for the hnsw build");
  }
  if (begin == end) return Status::Ok();
  try {
    s.EnsureIndex();
  } catch (const std::bad_alloc&) {
    s.SetDetail("std::bad_alloc");
    return Status::Error(StatusCode::kOutOfMemory, "out of memory while building the hnsw graph");
  } catch (const std::exception& e) {
    s.SetDetail(e.what());
    return Status::Error(StatusCode::kOutOfMemory, "out of memory while building the hnsw graph");
  }

  Work w;
  w.impl = &s;
  w.end = end;
  w.stop = stop;
  w.stop_arg = stop_arg;
  w.next.store(begin);

  std::size_t helpers = std::min<std::size_t>(static_cast<std::size_t>(threads) - 1, end - begin - 1);
  std::thread pool[64];
  helpers = std::min<std::size_t>(helpers, 64);
  std::size_t started = 0;
  s.concurrent_ = helpers > 0;
  if (helpers > 0) {
    // Threads inherit the signal mask: block everything while creating them,
    // so that signals keep going to the calling thread only.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      for (; started < helpers; started++) pool[started] = std::thread(WorkLoop, &w);
    } catch (const std::exception& e) {
      RecordError(&w, Status::Error(StatusCode::kInternal, "could not start hnsw build threads"), e.what());
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  s.max_threads_used_ = std::max<int>(s.max_threads_used_, static_cast<int>(started) + 1);
  WorkLoop(&w);
  for (std::size_t i = 0; i < started; i++) pool[i].join();

  // Every claimed row was finished, so the rows done are a prefix.
  std::size_t reached = std::min(w.next.load(), end);
  s.inserted_ = reached;
  if (s.index_->cur_element_count < reached) s.index_->cur_element_count = reached;
  if (done != nullptr) *done = s.inserted_;
  if (w.failed) {
    s.broken_ = true;
    s.broken_status_ = w.error;
    s.SetDetail(w.detail);
    return w.error;
  }
  if (w.stopped.load() && s.inserted_ < end) {
    s.SetDetail("stopped");
    return Status::Error(StatusCode::kCancelled, "the hnsw build was interrupted");
  }
  return Status::Ok();
}

Status GraphBuilder::EnsureReachable(std::size_t* added, std::size_t* unreachable) {
  GraphBuilderImpl& s = *impl_;
  *added = 0;
  *unreachable = 0;
  if (s.broken_) return s.broken_status_;
  if (!s.index_ || s.inserted_ == 0) return Status::Ok();
  try {
    *added = s.EnsureReachable(unreachable);
  } catch (const std::bad_alloc&) {
    s.SetDetail("std::bad_alloc");
    return Status::Error(StatusCode::kOutOfMemory, "out of memory while linking the hnsw graph");
  } catch (const std::exception& e) {
    s.SetDetail(e.what());
    return Status::Error(StatusCode::kInternal, "hnswlib failed while linking the graph");
  }
  return Status::Ok();
}

std::size_t GraphBuilder::rows() const { return impl_->rows_; }
std::size_t GraphBuilder::inserted() const { return impl_->inserted_; }
std::size_t GraphBuilder::dim() const { return impl_->params_.dim; }
int GraphBuilder::m() const { return impl_->params_.m; }
bool GraphBuilder::quantized() const { return impl_->quantized_; }
const float* GraphBuilder::Vector(std::size_t row) const {
  return impl_->quantized_ ? nullptr : reinterpret_cast<const float*>(impl_->ElemPtr(row));
}
const unsigned char* GraphBuilder::Element(std::size_t row) const { return impl_->ElemPtr(row); }
std::size_t GraphBuilder::ElementBytes() const { return impl_->elem_bytes_; }
std::uint64_t GraphBuilder::Payload(std::size_t row) const { return impl_->PayloadOf(row); }
int GraphBuilder::Level(std::size_t row) const { return impl_->LevelOf(row); }

std::size_t GraphBuilder::Neighbors(std::size_t row, int level, std::uint32_t* out) const {
  const Index& h = *impl_->index_;
  const hnswlib::linklistsizeint* list = h.get_linklist_at_level(static_cast<tableint>(row), level);
  std::size_t count = h.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
  count = std::min(count, MaxLinks(level));
  std::memcpy(out, list + 1, count * sizeof(std::uint32_t));
  return count;
}

bool GraphBuilder::EntryPoint(std::uint32_t* row, int* level) const {
  const GraphBuilderImpl& s = *impl_;
  if (!s.index_ || s.inserted_ == 0 || s.index_->maxlevel_ < 0) return false;
  *row = s.index_->enterpoint_node_;
  *level = s.index_->maxlevel_;
  return true;
}

Status GraphBuilder::Search(const float* query, std::size_t k, std::size_t ef, std::uint32_t* ids, float* dists,
                            std::size_t* found) const {
  *found = 0;
  const GraphBuilderImpl& s = *impl_;
  if (!s.index_ || s.inserted_ == 0 || k == 0) return Status::Ok();
  try {
    // hnswlib's data is a pointer to an element: the query's vector, or its encoding.
    std::vector<unsigned char> encoded;
    const unsigned char* elem = reinterpret_cast<const unsigned char*>(query);
    if (s.quantized_) {
      encoded.resize(s.elem_bytes_);
      Sq8ElementInfo info;
      Status st = Sq8Encode(s.params_.sq8, s.params_.metric, query, encoded.data() + sizeof info, &info);
      if (!st.ok()) return st;
      std::memcpy(encoded.data(), &info, sizeof info);
      elem = encoded.data();
    }
    s.index_->setEf(ef);
    auto result = s.index_->searchKnn(&elem, k);
    std::size_t n = result.size();
    *found = n;
    while (!result.empty()) {  // farthest first
      n--;
      ids[n] = static_cast<std::uint32_t>(result.top().second);
      dists[n] = result.top().first;
      result.pop();
    }
  } catch (const std::bad_alloc&) {
    *found = 0;
    return Status::Error(StatusCode::kOutOfMemory, "out of memory while searching the hnsw graph");
  } catch (...) {
    *found = 0;
    return Status::Error(StatusCode::kInternal, "hnswlib failed while searching the graph");
  }
  return Status::Ok();
}

std::size_t GraphBuilder::MemoryUsage() const {
  const GraphBuilderImpl& s = *impl_;
  std::size_t bytes = sizeof(GraphBuilder) + sizeof(GraphBuilderImpl);
  // Touched chunk memory: whole chunks, then the last one up to its huge page.
  if (!s.chunks_.empty()) {
    std::size_t last = ((s.rows_ - ((s.chunks_.size() - 1) << s.chunk_shift_)) * s.row_stride_ + kHugePage - 1) &
                       ~(kHugePage - 1);
    bytes += (s.chunks_.size() - 1) * ChunkBytes(s.elem_bytes_) + last;
  }
  bytes += (s.sq8_lo_.capacity() + s.sq8_scale_.capacity()) * sizeof(float);
  bytes += s.chunks_.capacity() * (sizeof(void*) + sizeof(Chunk) + kMallocOverhead);
  if (s.index_) {
    std::size_t n = s.index_->max_elements_;
    std::size_t visited = static_cast<std::size_t>(std::max(1, s.max_threads_used_)) * sizeof(hnswlib::vl_type);
    bytes += sizeof(Index) + n * (HnswlibBytesPerElement(s.params_.m) + visited) +
             kUpdateLocks * sizeof(std::mutex) + s.upper_link_bytes_.load();
  }
  return bytes;
}

const char* GraphBuilder::ErrorDetail() const { return impl_->detail_; }

std::size_t BuildBytesPerElement(std::size_t dim, int m, int threads, bool sq8) {
  // A row's share of its chunk (whose last huge page may be partly used).
  const std::size_t elem = ElementBytesOf(dim, sq8);
  std::size_t rows_per_chunk = std::size_t{1} << ChunkShift(elem);
  std::size_t row = (ChunkBytes(elem) + rows_per_chunk - 1) / rows_per_chunk;
  std::size_t visited = static_cast<std::size_t>(std::max(1, threads)) * sizeof(hnswlib::vl_type);
  return row + HnswlibBytesPerElement(m) + visited + UpperLinkBytesPerElement(m);
}

std::size_t BuildFixedBytes(std::size_t dim, int m, bool sq8) {
  // The last chunk's and hnswlib's level-0 array's partly used huge pages,
  // hnswlib's update locks and objects, the chunk pointer array, and a
  // margin for the allocator (m: reserved); SQ8: the builder's copy of the
  // params.
  (void)m;
  const std::size_t params = sq8 ? 2 * (dim * sizeof(float) + kMallocOverhead) : 0;
  return 2 * kHugePage + kUpdateLocks * sizeof(std::mutex) + sizeof(Index) + sizeof(GraphBuilderImpl) +
         (std::size_t{64} << 10) + params;
}

std::size_t BuildCapacity(std::size_t budget, std::size_t dim, int m, int threads, bool sq8) {
  std::size_t fixed = BuildFixedBytes(dim, m, sq8);
  if (budget <= fixed) return 0;
  std::size_t n = (budget - fixed) / BuildBytesPerElement(dim, m, threads, sq8);
  return std::min<std::size_t>(n, (std::size_t{1} << 32) - 1);
}

}  // namespace hnsw
}  // namespace vecext
