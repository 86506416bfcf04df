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
  // Reads one slice of `slice_bytes` on every pool thread, after the slice before it, read to warm
  // up. Each call takes the two slices after the last it read, round the buffer, so every byte it
  // reads was last read a buffer's length of probes ago. A short probe that read its own buffer
  // twice (warm-up, then timed) got part of the timed read from the last-level cache: on the Zen 5
  // host a 64 MiB probe read that way gave 1.09x what a 512 MiB one did (medians of 12 alternated
  // rounds, 50.8 against 46.6 GB/s), fresh slices of the 512 MiB buffer 0.99x (46.2).
  // slice_bytes must be at most half the buffer.
  BandwidthResult measure_slice(ThreadPool& pool, size_t slice_bytes);
  // Where the next slice starts, in bytes from the buffer's start.
  size_t next_slice_offset() const { return next_slice_ * sizeof(uint64_t); }

 private:
  double read_gbps(ThreadPool& pool, size_t first, size_t count) const;

  LargeBuffer buffer_;
  size_t n_ = 0;           // 64-bit words
  size_t next_slice_ = 0;  // the word measure_slice's next slice starts at
};

// A ReadProbe of `bytes` made and read `repeats` times.
BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{512} << 20,
                                       int repeats = 5);

// A compute peak of the pool (best of a few ~20 ms runs), in GFLOP/s (2 per multiply-add), and the
// vector width it was measured in.
struct ComputePeak {
  double gflops = 0;
  int vector_bits = 0;
};
// f32 FMA throughput: 12 independent FMA chains per thread, in the vectors the active kernels'
// f16 / bf16 matmuls use (512 bits for the AVX-512 table, 256 for AVX2; f32 weights keep 256-bit
// kernels on both). The compute roofline of prefill and batches with float weights. 0 GFLOP/s on
// a CPU without AVX2 and FMA.
ComputePeak measure_fma_peak(ThreadPool& pool);
// 8-bit integer dot-product throughput, in the instructions the active q4_0 / q8_0 kernels multiply
// with: 512-bit vpdpbusd (VNNI) for the AVX-512 table, 256-bit vpmaddubsw with a 16-bit add for
// AVX2 (matmul_avx2.cpp's step). 12 independent chains per thread. The compute roofline of
// prefill and batches with quantized weights, above what they can reach: their kernels also
// convert and scale each block's sum in f32. 0 GFLOP/s on a CPU without AVX2.
ComputePeak measure_int8_dot_peak(ThreadPool& pool);
// bf16 dot-product throughput (512-bit vdpbf16ps, two multiply-adds per f32 lane): the compute
// roofline of bf16 (and f16 with --bf16-activations) weights (Matrix::x_as_bf16). 0 GFLOP/s unless
// the AVX-512 kernels (which need AVX-512 BF16) are active.
ComputePeak measure_bf16_dot_peak(ThreadPool& pool);
// 16-bit integer dot-product throughput (512-bit vpdpwssd, two multiply-adds per 32-bit lane): the
// compute roofline of f16 weights multiplied in 16-bit integers (Matrix::x_as_int16). 0 GFLOP/s
// unless the AVX-512 kernels are active.
ComputePeak measure_int16_dot_peak(ThreadPool& pool);

}  // namespace autoglm::ops
