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
// roofline of bf16 and f16 weights with --bf16-activations (Matrix::x_as_bf16). 0 GFLOP/s unless
// the AVX-512 kernels (which need AVX-512 BF16) are active.
ComputePeak measure_bf16_dot_peak(ThreadPool& pool);

}  // namespace autoglm::ops
