// Memory for weights and KV caches: anonymous mappings that start on a 2 MiB boundary and ask the
// kernel for transparent huge pages (MADV_HUGEPAGE, honoured when
// /sys/kernel/mm/transparent_hugepage/enabled is "always" or "madvise"). Decode streams every
// weight once per token; with 4 KiB pages that is a TLB miss per 4 KiB of each stream. Measured on
// the AVX2 host, one 6144 x 2048 matrix per call from DRAM, 2 threads, 2 MiB pages against 4 KiB
// in one process: q4_0 decode 1.05-1.13x, q8_0 1.06-1.07x, bf16/f16 1.03-1.04x, the read probe
// 1.04-1.08x. The benchmark model's q4_0 decode (2 threads, 4 pairs of runs): 1.07-1.17x, with
// 899 of its 946 MiB resident in huge pages.
#pragma once

#include <cstddef>
#include <memory>

namespace autoglm {

struct LargeBufferDeleter {
  size_t bytes = 0;  // the mapping's length, for munmap
  void operator()(std::byte* p) const noexcept;
};

// Zero-filled until written; pages are backed by the OS on first touch, so memory never written
// (a KV cache's free blocks) costs nothing. Throws std::bad_alloc when the OS refuses.
using LargeBuffer = std::unique_ptr<std::byte[], LargeBufferDeleter>;

LargeBuffer allocate_large(size_t bytes);

// This process's resident memory and the part of it in transparent huge pages, from
// /proc/self/smaps_rollup (Rss, AnonHugePages); both 0 where that file cannot be read.
struct ResidentMemory {
  size_t resident_bytes = 0;
  size_t huge_page_bytes = 0;
};
ResidentMemory resident_memory();

}  // namespace autoglm
