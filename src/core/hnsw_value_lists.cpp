// Value lists (see hnsw_value_lists.h).
#include "core/hnsw_value_lists.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/sq8.h"

namespace vecext {
namespace hnsw {

class ValueListBuilderImpl {
 public:
  ValueListParams params;
  const GraphBuilder* graph = nullptr;
  std::size_t rows = 0;
  bool planned = false;
  const char* detail = "";

  // (row, key) of every row's keys, until Plan.
  std::vector<std::pair<std::uint32_t, meta::ValueKey>> pending;  // (row, key)
  std::unordered_map<meta::ValueKey, std::uint32_t> counts;

  std::vector<ValueDirectoryEntry> directory;
  std::vector<std::vector<std::uint32_t>> members;  // per directory entry
  std::vector<meta::ValueKey> keys;                 // rows * lists
  std::vector<std::uint32_t> links;                 // rows * lists * slots
  std::size_t rows_with_keys = 0;
  std::size_t links_written = 0;
};

Status ValueListBuilder::Create(const ValueListParams& params, const GraphBuilder* graph, ValueListBuilder** out) {
  *out = nullptr;
  if (graph == nullptr || params.lists < 1 || params.lists > kMaxValueLists || params.slots < 4 ||
      params.slots > kMaxLinks || params.slots % 2 != 0 || params.ef_construction < 1)
    return Status::Error(StatusCode::kInvalidInput, "invalid value list parameters");
  try {
    std::unique_ptr<ValueListBuilder> b(new ValueListBuilder());
    b->impl_ = new ValueListBuilderImpl();
    ValueListBuilderImpl* impl = b->impl_;
    impl->params = params;
    impl->graph = graph;
    impl->rows = graph->inserted();
    *out = b.release();
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "out of memory for value lists");
  } catch (...) {
    return Status::Error(StatusCode::kInternal, "could not create the value list builder");
  }
}

void ValueListBuilder::Destroy(ValueListBuilder* b) { delete b; }

ValueListBuilder::~ValueListBuilder() { delete impl_; }

Status ValueListBuilder::AddSignature(std::size_t row, const std::uint8_t* sig, std::size_t len) {
  ValueListBuilderImpl* impl = impl_;
  if (impl->planned || row >= impl->rows) return Status::Error(StatusCode::kInvalidInput, "bad row for value keys");
  if (len == 0) return Status::Ok();
  meta::SignatureView view;
  if (!meta::ParseSignature(sig, len, &view).ok()) return Status::Ok();
  meta::ValueKey keys[meta::SignatureEncoder::kValueCap + meta::SignatureEncoder::kNumberCap];
  const std::size_t cap = sizeof keys / sizeof keys[0];
  const std::size_t n = std::min(meta::ValueKeys(view, keys, cap), cap);
  try {
    for (std::size_t i = 0; i < n; i++) {
      impl->pending.emplace_back(static_cast<std::uint32_t>(row), keys[i]);
      impl->counts[keys[i]]++;
    }
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "out of memory counting metadata values");
  } catch (...) {
    return Status::Error(StatusCode::kInternal, "unexpected failure in the value lists");
  }
  return Status::Ok();
}

Status ValueListBuilder::Plan() {
  ValueListBuilderImpl* impl = impl_;
  if (impl->planned) return Status::Error(StatusCode::kInvalidInput, "value lists already planned");
  impl->planned = true;
  const ValueListParams& p = impl->params;
  try {
    std::vector<ValueDirectoryEntry> band;
    for (const auto& kv : impl->counts) {
      if (kv.second < p.min_rows || (p.max_rows > 0 && kv.second > p.max_rows)) continue;
      band.push_back(ValueDirectoryEntry{kv.first, kv.second, 0});
    }
    // The most frequent max_directory keys (ties by key, deterministic).
    std::sort(band.begin(), band.end(), [](const ValueDirectoryEntry& a, const ValueDirectoryEntry& b) {
      return a.count != b.count ? a.count > b.count : a.key < b.key;
    });
    if (band.size() > p.max_directory) band.resize(p.max_directory);
    std::sort(band.begin(), band.end(),
              [](const ValueDirectoryEntry& a, const ValueDirectoryEntry& b) { return a.key < b.key; });
    impl->directory = band;
    std::unordered_map<meta::ValueKey, std::uint32_t> index;
    for (std::size_t g = 0; g < band.size(); g++) index[band[g].key] = static_cast<std::uint32_t>(g);
    impl->counts.clear();

    // Each row's keys in the directory, fewest rows first.
    const std::size_t lists = static_cast<std::size_t>(p.lists);
    impl->keys.assign(impl->rows * lists, meta::kNoValueKey);
    std::sort(impl->pending.begin(), impl->pending.end());
    impl->members.assign(band.size(), std::vector<std::uint32_t>());
    std::vector<std::uint32_t> cand;
    for (std::size_t i = 0; i < impl->pending.size();) {
      const std::uint32_t row = impl->pending[i].first;
      cand.clear();
      for (; i < impl->pending.size() && impl->pending[i].first == row; i++) {
        auto it = index.find(impl->pending[i].second);
        if (it != index.end() && std::find(cand.begin(), cand.end(), it->second) == cand.end())
          cand.push_back(it->second);
      }
      if (cand.empty()) continue;
      std::sort(cand.begin(), cand.end(), [&](std::uint32_t a, std::uint32_t b) {
        return band[a].count != band[b].count ? band[a].count < band[b].count : band[a].key < band[b].key;
      });
      if (cand.size() > lists) cand.resize(lists);
      for (std::size_t j = 0; j < cand.size(); j++) {
        impl->keys[row * lists + j] = band[cand[j]].key;
        impl->members[cand[j]].push_back(row);
      }
      impl->rows_with_keys++;
    }
    std::vector<std::pair<std::uint32_t, meta::ValueKey>>().swap(impl->pending);
    impl->links.assign(impl->rows * lists * static_cast<std::size_t>(p.slots), kNoValueLink);
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "out of memory planning value lists");
  } catch (...) {
    return Status::Error(StatusCode::kInternal, "unexpected failure in the value lists");
  }
  return Status::Ok();
}

std::size_t ValueListBuilder::DirectorySize() const { return impl_->directory.size(); }
const ValueDirectoryEntry* ValueListBuilder::Directory() const { return impl_->directory.data(); }

Status ValueListBuilder::BuildGroup(std::size_t g, int threads, StopFn stop, const void* stop_arg) {
  ValueListBuilderImpl* impl = impl_;
  if (!impl->planned || g >= impl->directory.size())
    return Status::Error(StatusCode::kInvalidInput, "bad value list group");
  const ValueListParams& p = impl->params;
  const GraphBuilder& graph = *impl->graph;
  const std::vector<std::uint32_t>& rows = impl->members[g];
  const meta::ValueKey key = impl->directory[g].key;
  const std::size_t lists = static_cast<std::size_t>(p.lists);
  const std::size_t slots = static_cast<std::size_t>(p.slots);
  if (rows.size() < 2) return Status::Ok();

  BuildParams bp;
  bp.dim = graph.dim();
  bp.metric = p.metric;
  bp.m = std::max(2, p.slots / 2);  // level-0 lists of 2 * (slots / 2) = slots links
  bp.ef_construction = p.ef_construction;
  bp.max_level = 16;
  bp.capacity = rows.size();
  bp.seed = p.seed ^ key;
  bp.keep_pruned = true;
  if (graph.quantized()) {
    if (p.sq8.dim != graph.dim()) {
      return Status::Error(StatusCode::kInvalidInput, "value lists of a quantized graph need its SQ8 parameters");
    }
    bp.sq8 = p.sq8;
  }
  GraphBuilder* sub = nullptr;
  Status st = GraphBuilder::Create(bp, &sub);
  if (!st.ok()) return st;
  std::vector<float> buf;
  try {
    buf.resize(bp.dim);
  } catch (...) {
    GraphBuilder::Destroy(sub);
    return Status::Error(StatusCode::kOutOfMemory, "out of memory for a value list graph");
  }
  for (std::size_t i = 0; i < rows.size() && st.ok(); i++) {
    const float* v;
    if (graph.quantized()) {
      Sq8Decode(p.sq8, graph.Element(rows[i]) + sizeof(Sq8ElementInfo), buf.data());
      v = buf.data();
    } else {
      v = graph.Vector(rows[i]);
    }
    st = sub->Append(v, rows[i]);
  }
  if (st.ok()) st = sub->AddRows(0, sub->rows(), threads, stop, stop_arg);
  std::size_t added = 0, unreachable = 0;
  if (st.ok()) st = sub->EnsureReachable(&added, &unreachable);
  if (st.ok()) {
    std::uint32_t out[kMaxLinks];
    for (std::size_t i = 0; i < sub->inserted(); i++) {
      const std::size_t row = static_cast<std::size_t>(sub->Payload(i));
      std::size_t j = 0;
      while (j < lists && impl->keys[row * lists + j] != key) j++;
      if (j == lists) continue;
      const std::size_t n = std::min(sub->Neighbors(i, 0, out), slots);
      std::uint32_t* dst = &impl->links[(row * lists + j) * slots];
      for (std::size_t k = 0; k < n; k++) dst[k] = static_cast<std::uint32_t>(sub->Payload(out[k]));
      impl->links_written += n;
    }
  }
  GraphBuilder::Destroy(sub);
  return st;
}

meta::ValueKey ValueListBuilder::Key(std::size_t row, int j) const {
  const ValueListBuilderImpl* impl = impl_;
  if (!impl->planned || row >= impl->rows || j < 0 || j >= impl->params.lists) return meta::kNoValueKey;
  return impl->keys[row * static_cast<std::size_t>(impl->params.lists) + static_cast<std::size_t>(j)];
}

void ValueListBuilder::Links(std::size_t row, int j, std::uint32_t* out) const {
  const ValueListBuilderImpl* impl = impl_;
  const std::size_t slots = static_cast<std::size_t>(impl->params.slots);
  if (!impl->planned || row >= impl->rows || j < 0 || j >= impl->params.lists) {
    for (std::size_t k = 0; k < slots; k++) out[k] = kNoValueLink;
    return;
  }
  const std::size_t at = (row * static_cast<std::size_t>(impl->params.lists) + static_cast<std::size_t>(j)) * slots;
  std::memcpy(out, &impl->links[at], slots * sizeof(std::uint32_t));
}

std::size_t ValueListBuilder::RowsWithKeys() const { return impl_->rows_with_keys; }
std::size_t ValueListBuilder::LinksWritten() const { return impl_->links_written; }

std::size_t ValueListBuilder::MemoryUsage() const {
  const ValueListBuilderImpl* impl = impl_;
  std::size_t bytes = impl->keys.capacity() * sizeof(meta::ValueKey) + impl->links.capacity() * 4 +
                      impl->pending.capacity() * sizeof(impl->pending[0]) +
                      impl->directory.capacity() * sizeof(ValueDirectoryEntry);
  for (const auto& m : impl->members) bytes += m.capacity() * 4;
  return bytes;
}

const char* ValueListBuilder::ErrorDetail() const { return impl_ != nullptr ? impl_->detail : ""; }

}  // namespace hnsw
}  // namespace vecext
