// libFuzzer target: the hnsw on-disk format (core/hnsw_page_check.h) on
// arbitrary bytes. The input is an index image: 8 KB blocks, block 0 the
// metapage, a partial last block padded with zeros (at most 4 blocks). The
// checker must never read out of bounds, must return Ok exactly when it
// found no problem, and each element page is also checked on its own with
// the metapage's parameters, or defaults when the metapage is invalid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/hnsw_page_check.h"

namespace {

namespace fmt = vecext::hnsw_format;

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 4 * fmt::kPageSize) return -1;
  const std::size_t nblocks = (size + fmt::kPageSize - 1) / fmt::kPageSize;
  // An exact-size heap copy (ASan sees overruns); unaligned on purpose.
  std::vector<unsigned char> buf(nblocks * fmt::kPageSize + 1, 0);
  unsigned char* image = buf.data() + 1;
  std::memcpy(image, data, size);

  fmt::IndexSummary summary;
  fmt::ProblemList problems;
  const vecext::Status st = fmt::CheckIndexImage(image, nblocks * fmt::kPageSize, &summary, &problems);
  Require(st.ok() == (problems.total == 0));
  Require(st.ok() || st.code == vecext::StatusCode::kCorrupted);
  Require(problems.count <= fmt::ProblemList::kCapacity && problems.count <= problems.total);
  if (st.ok()) Require(summary.meta_ok && summary.unreachable == 0);

  const int dim = summary.meta_ok ? static_cast<int>(summary.meta.dimensions) : 8;
  const int m = summary.meta_ok ? summary.meta.m : 16;
  for (std::uint32_t blkno = 1; blkno < nblocks; blkno++) {
    const unsigned char* page = image + blkno * fmt::kPageSize;
    if (fmt::PageProblem(page, blkno) != nullptr) continue;
    fmt::PageSummary ps;
    fmt::ProblemList pp;
    const vecext::Status ps_st = fmt::CheckElementPage(page, blkno, dim, m, &ps, &pp);
    Require(ps_st.ok() == (pp.total == 0));
    Require(ps.elements >= ps.deleted && ps.items <= fmt::MaxOffset(page));
  }
  return 0;
}
