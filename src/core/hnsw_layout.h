// Page layout of a built graph: which rows share an index page.
//
// A scan scores the links of an element page by page (HnswStore::Score pins
// and locks each page once for all the links on it), so the fewer pages an
// element's level-0 neighbours are spread over, the fewer buffer accesses a
// search makes. Rows written in heap order put graph neighbours on pages at
// random. PageLayout orders the rows so that each page is filled with a
// neighbourhood of the graph: a seed row, then its level-0 neighbours, then
// theirs (breadth first), as long as they fit; when the neighbourhood is
// used up the page continues from the next unplaced row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/hnsw_build.h"
#include "core/status.h"

namespace vecext {
namespace hnsw {

// Orders the inserted rows of `graph` for writing to pages of `page_bytes`
// room each. row_bytes[i] is what row i takes on a page (a row larger than
// a page gets a page of its own). Writes a permutation of 0..n-1 (n =
// graph.inserted()) to order[0..n) and, for each position, page_start[j] =
// 1 when order[j] is the first row of a new page, else 0. The rows of one
// page add up to at most page_bytes. kOutOfMemory if scratch space cannot
// be allocated. REQUIRES: no AddRows is running; order and page_start have
// room for n entries.
Status PageLayout(const GraphBuilder& graph, const std::uint32_t* row_bytes, std::size_t page_bytes,
                  std::uint32_t* order, std::uint8_t* page_start);

// Fraction of the level-0 links of `graph` whose two rows share a page when
// the rows are written in `order` with page breaks at page_start (for tests
// and the build's DEBUG1 line). 0 when there are no links, -1 when out of
// memory.
double SamePageLinkFraction(const GraphBuilder& graph, const std::uint32_t* order, const std::uint8_t* page_start);

}  // namespace hnsw
}  // namespace vecext
