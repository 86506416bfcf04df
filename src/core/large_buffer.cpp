#include "core/large_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <fstream>
#include <new>
#include <sstream>
#include <string>

namespace autoglm {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = size_t{4} << 10;

size_t round_up(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

void LargeBufferDeleter::operator()(std::byte* p) const noexcept {
  if (p != nullptr) ::munmap(p, bytes);
}

LargeBuffer allocate_large(size_t bytes) {
  const size_t length = round_up(bytes == 0 ? 1 : bytes, kPage);
  // Map a huge page more than needed and trim both ends, so the start is 2 MiB aligned: the kernel
  // backs only aligned 2 MiB ranges with huge pages. The tail (under 2 MiB) keeps small pages, so
  // nothing is rounded up to a whole huge page.
  const size_t mapped = length + kHugePage;
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = round_up(base, kHugePage);
  if (start > base) ::munmap(raw, start - base);
  const uintptr_t end = start + length;
  if (base + mapped > end) ::munmap(reinterpret_cast<void*>(end), base + mapped - end);
  auto* p = reinterpret_cast<std::byte*>(start);
  // Advice only: it fails where the kernel has no THP support, and the memory works the same.
  if (length >= kHugePage) ::madvise(p, length, MADV_HUGEPAGE);
  return LargeBuffer(p, LargeBufferDeleter{length});
}

ResidentMemory resident_memory() {
  ResidentMemory m;
  std::ifstream rollup("/proc/self/smaps_rollup");
  for (std::string line; std::getline(rollup, line);) {
    std::istringstream fields(line);
    std::string key;
    size_t kib = 0;
    if (!(fields >> key >> kib)) continue;  // "Rss:   946488 kB"
    if (key == "Rss:") m.resident_bytes = kib * 1024;
    if (key == "AnonHugePages:") m.huge_page_bytes = kib * 1024;
  }
  return m;
}

}  // namespace autoglm
