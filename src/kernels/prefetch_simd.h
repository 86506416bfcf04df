// Software prefetch of the weight stream, for the decode kernels of the SIMD translation units.
// Decode reads each weight once, so its speed is the rate at which lines arrive from DRAM. For the
// packed q4_0 / q8_0 kernels the hardware prefetcher alone kept too few lines in flight while the
// kernel computed: one thread of q4_0 decode reached 10-11 tokens/s against a 13-15 GB/s read
// probe (compute and memory waits added up instead of overlapping). Asking for the lines 2 KiB
// ahead took it to 14-15 tokens/s, and 2 threads from a median of 15.7 to 17.2 (4 alternating
// runs each; 1 and 3 KiB were slower). The float kernels read 4 rows at once, which the hardware
// prefetcher follows well: prefetching there measured slower, so they do not.
#pragma once

#include <xmmintrin.h>

namespace autoglm::kernels::detail {
namespace {

inline constexpr int kPrefetchAhead = 2048;

// Prefetches every 64-byte line of the Bytes at p, kPrefetchAhead bytes further on. Prefetches
// past the end of the matrix are harmless: a prefetch never faults.
template <int Bytes>
inline void prefetch_ahead(const void* p) {
  const char* q = static_cast<const char*>(p) + kPrefetchAhead;
  for (int o = 0; o < Bytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
}

}  // namespace
}  // namespace autoglm::kernels::detail
