// Software prefetch of the weight stream, for the decode kernels of the SIMD translation units.
// Decode reads each weight once, so its speed is the rate at which lines arrive from DRAM. For the
// packed q4_0 / q8_0 kernels the hardware prefetcher alone kept too few lines in flight while the
// kernel computed: one thread of q4_0 decode reached 10-11 tokens/s against a 13-15 GB/s read
// probe (compute and memory waits added up instead of overlapping). Asking for the lines 2 KiB
// ahead took it to 14-15 tokens/s, and 2 threads from a median of 15.7 to 17.2 (4 alternating
// runs each; 1 and 3 KiB were slower). That kernel read one 8-row group at a time. q4_0 decode
// now reads 8 groups at once and q8_0 4 (matmul_rows8_simd.h x8_decode_rows), which the hardware
// prefetcher follows as well or better without it; prefetch_ahead is left to the single-token
// remainder of several-token calls. The f16 / bf16 decode tile (matmul_float_rows8_avx2.cpp, an
// AVX2-only file with its own prefetch) does still gain from prefetching each of its 4 streams
// 384 bytes ahead (kDecodeAhead). Several-token calls prefetch the weights of their next row chunk
// into L2 (prefetch_lines<_MM_HINT_T1>) while they compute on the current one. The attention ops
// (ops_simd.h) prefetch KV-cache rows with prefetch_lines.
#pragma once

#include <xmmintrin.h>

#include <cstdint>

#include "kernels/kernels.h"

namespace autoglm::kernels::detail {
namespace {

inline constexpr int kPrefetchAhead = 2048;

// Prefetches every 64-byte line of the `bytes` at p, into L1 (T0, the default) or into L2 (T1, for
// data needed after the current pass: the next row chunk of a several-token matmul). Prefetches
// past the end of a buffer are harmless: a prefetch never faults.
template <_mm_hint Hint = _MM_HINT_T0>
inline void prefetch_lines(const void* p, int64_t bytes) {
  const char* q = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(q + o, Hint);
}

// Calls run.template operator()<Hint>() with the hint of kernels::prefetch_level() (L1: T0, L2:
// T1), for the AVX-512 decode kernels' streams. Chosen once per call: inside the loops the hint
// must stay a constant (one held in a variable halved the attention kernels' speed).
template <class Run>
inline void with_prefetch_hint(Run&& run) {
  if (prefetch_level() == PrefetchLevel::L1) return run.template operator()<_MM_HINT_T0>();
  run.template operator()<_MM_HINT_T1>();
}

// The weight stream: the Bytes at p, kPrefetchAhead bytes further on.
template <int Bytes>
inline void prefetch_ahead(const void* p) {
  prefetch_lines(static_cast<const char*>(p) + kPrefetchAhead, Bytes);
}

}  // namespace
}  // namespace autoglm::kernels::detail
