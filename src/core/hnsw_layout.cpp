// Page layout of a built graph (see hnsw_layout.h).
#include "core/hnsw_layout.h"

#include <new>
#include <vector>

namespace vecext {
namespace hnsw {

Status PageLayout(const GraphBuilder& graph, const std::uint32_t* row_bytes, std::size_t page_bytes,
                  std::uint32_t* order, std::uint8_t* page_start) {
  const std::size_t n = graph.inserted();
  if (n == 0) return Status::Ok();
  try {
    std::vector<std::uint8_t> placed(n, 0);
    std::vector<std::uint32_t> frontier;
    std::vector<std::uint32_t> links(graph.MaxLinks(0));
    std::size_t pos = 0;
    std::size_t seed = 0;  // rows below it are placed
    while (pos < n) {
      // A new page.
      std::size_t room = page_bytes;
      const std::size_t first = pos;
      frontier.clear();
      std::size_t head = 0;
      for (;;) {
        std::size_t next = n;
        // The nearest unplaced neighbourhood first (breadth first from the
        // page's rows), then the next unplaced row in row order.
        while (head < frontier.size()) {
          const std::uint32_t c = frontier[head++];
          if (!placed[c] && row_bytes[c] <= room) {
            next = c;
            break;
          }
        }
        if (next == n) {
          while (seed < n && placed[seed]) seed++;
          if (seed == n) break;
          if (row_bytes[seed] <= room || pos == first) next = seed;  // an oversized row gets a page of its own
        }
        if (next == n) break;  // the page is full
        placed[next] = 1;
        order[pos] = static_cast<std::uint32_t>(next);
        page_start[pos] = pos == first ? 1 : 0;
        pos++;
        room = row_bytes[next] <= room ? room - row_bytes[next] : 0;
        if (room == 0) break;
        const std::size_t count = graph.Neighbors(next, 0, links.data());
        for (std::size_t k = 0; k < count; k++) {
          if (!placed[links[k]]) frontier.push_back(links[k]);
        }
      }
    }
    return Status::Ok();
  } catch (const std::bad_alloc&) {
    return Status::Error(StatusCode::kOutOfMemory, "out of memory while laying out the index pages");
  }
}

double SamePageLinkFraction(const GraphBuilder& graph, const std::uint32_t* order, const std::uint8_t* page_start) {
  const std::size_t n = graph.inserted();
  try {
    std::vector<std::uint32_t> page(n);
    std::uint32_t p = 0;
    for (std::size_t j = 0; j < n; j++) {
      if (page_start[j] && j > 0) p++;
      page[order[j]] = p;
    }
    std::vector<std::uint32_t> links(graph.MaxLinks(0));
    std::size_t total = 0, same = 0;
    for (std::size_t i = 0; i < n; i++) {
      const std::size_t count = graph.Neighbors(i, 0, links.data());
      total += count;
      for (std::size_t k = 0; k < count; k++) same += page[links[k]] == page[i] ? 1 : 0;
    }
    return total == 0 ? 0.0 : static_cast<double>(same) / static_cast<double>(total);
  } catch (const std::bad_alloc&) {
    return -1.0;
  }
}

}  // namespace hnsw
}  // namespace vecext
