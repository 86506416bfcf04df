// Measures the machine's memory read bandwidth, so that decode speed can be reported as a
// fraction of the roofline measured in the same run (decode reads every weight once per token).
#pragma once

#include <cstddef>

#include "core/large_buffer.h"
#include "core/thread_pool.h"

namespace autoglm::ops {

struct BandwidthResult {
  double best_gbps = 0;  // best of the repeats, GB/s (1e9 bytes)
  double median_gbps = 0;
  size_t bytes = 0;  // buffer size read per repeat
};

// A buffer of `bytes` (far larger than the caches), allocated and touched once, to be read as
// often as the caller measures: a probe repeated between decode segments costs no allocation or
// page faults each time.
class ReadProbe {
 public:
  ReadProbe(ThreadPool& pool, size_t bytes);
  // Reads the buffer `repeats` times (after one read that warms up) on every pool thread.
  BandwidthResult measure(ThreadPool& pool, int repeats) const;

 private:
  LargeBuffer buffer_;
  size_t n_ = 0;  // 64-bit words
};

// A ReadProbe of `bytes` made and read `repeats` times.
BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{512} << 20,
                                       int repeats = 5);

// f32 FMA throughput of the pool (best of a few ~20 ms runs): 12 independent FMA chains per
// thread, in the vectors the active kernels' f16 / bf16 matmuls use (512 bits for the AVX-512
// table, 256 for AVX2; f32 weights keep 256-bit kernels on both). The compute roofline of prefill
// with float weights. 0 GFLOP/s on a CPU without AVX2 and FMA.
struct FmaPeak {
  double gflops = 0;
  int vector_bits = 0;
};
FmaPeak measure_fma_peak(ThreadPool& pool);

}  // namespace autoglm::ops
