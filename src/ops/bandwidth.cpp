#include "ops/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/large_buffer.h"
#include "kernels/kernels.h"

namespace autoglm::ops {

uint64_t read_sum_avx2(const uint64_t* data, size_t n);
float fma_chains_avx2(int64_t iters, float seed);
float fma_chains_avx512(int64_t iters, float seed);
int32_t dot_chains_avx2(int64_t iters, int32_t seed);
int32_t dot_chains_avx512(int64_t iters, int32_t seed);
float bf16_dot_chains_avx512(int64_t iters, float seed);
int32_t int16_dot_chains_avx512(int64_t iters, int32_t seed);

namespace {

uint64_t read_sum_scalar(const uint64_t* data, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += data[i];
    s1 += data[i + 1];
    s2 += data[i + 2];
    s3 += data[i + 3];
  }
  for (; i < n; ++i) s0 += data[i];
  return s0 + s1 + s2 + s3;
}

}  // namespace

ReadProbe::ReadProbe(ThreadPool& pool, size_t bytes) : n_(bytes / sizeof(uint64_t)) {
  // Memory of the kind the weights live in (huge pages where the kernel gives them), so that the
  // roofline compares like with like.
  try {
    buffer_ = allocate_large(n_ * sizeof(uint64_t));
  } catch (const std::bad_alloc&) {
    fail("cannot allocate {} MiB to measure memory bandwidth", bytes >> 20);
  }
  auto* data = reinterpret_cast<uint64_t*>(buffer_.get());
  pool.parallel_for(
      static_cast<int64_t>(n_),
      [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) data[i] = static_cast<uint64_t>(i);  // touch: real pages
      },
      4096);
}

// GB/s (1e9 bytes) of one read of the words [first, first + count) on every pool thread.
double ReadProbe::read_gbps(ThreadPool& pool, size_t first, size_t count) const {
  const auto* data = reinterpret_cast<const uint64_t*>(buffer_.get()) + first;
  const bool avx2 = cpu_features().supports(Isa::Avx2);
  std::atomic<uint64_t> sink{0};
  const auto start = std::chrono::steady_clock::now();
  pool.parallel_for(
      static_cast<int64_t>(count),
      [&](int64_t a, int64_t b) {
        const uint64_t* p = data + a;
        const auto n = static_cast<size_t>(b - a);
        sink += avx2 ? read_sum_avx2(p, n) : read_sum_scalar(p, n);
      },
      4096);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(count * sizeof(uint64_t)) / seconds / 1e9;
}

BandwidthResult ReadProbe::measure(ThreadPool& pool, int repeats) const {
  std::vector<double> gbps;
  for (int r = 0; r < repeats + 1; ++r) {
    const double rate = read_gbps(pool, 0, n_);
    if (r > 0) gbps.push_back(rate);  // r 0 warms up
  }
  std::sort(gbps.begin(), gbps.end());
  BandwidthResult result;
  result.bytes = n_ * sizeof(uint64_t);
  if (gbps.empty()) return result;
  result.best_gbps = gbps[gbps.size() - 1];
  result.median_gbps = gbps[gbps.size() / 2];
  return result;
}

BandwidthResult ReadProbe::measure_slice(ThreadPool& pool, size_t slice_bytes) {
  const size_t words = slice_bytes / sizeof(uint64_t);
  if (words == 0 || 2 * words > n_) {
    fail("a read probe slice of {} bytes needs a buffer of at least twice that ({} bytes here)",
         slice_bytes, n_ * sizeof(uint64_t));
  }
  const auto next = [&] {
    if (next_slice_ + words > n_) next_slice_ = 0;  // round the buffer
    const size_t first = next_slice_;
    next_slice_ += words;
    return first;
  };
  read_gbps(pool, next(), words);  // warms up
  BandwidthResult result;
  result.bytes = words * sizeof(uint64_t);
  result.median_gbps = result.best_gbps = read_gbps(pool, next(), words);
  return result;
}

BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes, int repeats) {
  return ReadProbe(pool, bytes).measure(pool, repeats);
}

namespace {

// The best GFLOP/s of 3 timed runs of chains(thread index) on every pool thread, after one that
// warms the clocks up; flops_per_thread: what one call computes.
template <typename Chains>
double best_gflops(ThreadPool& pool, double flops_per_thread, Chains&& chains) {
  std::atomic<int> sink{0};
  double best = 0;
  for (int r = 0; r < 4; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.run([&](int index, int) { sink += chains(index) ? 1 : 0; });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) best = std::max(best, flops_per_thread * pool.size() / seconds / 1e9);
  }
  return best;
}

}  // namespace

ComputePeak measure_fma_peak(ThreadPool& pool) {
  if (!cpu_features().supports(Isa::Avx2)) return {};
  const bool avx512 = kernels::active().isa == Isa::Avx512;
  ComputePeak peak;
  peak.vector_bits = avx512 ? 512 : 256;
  constexpr int64_t kIters = 2'000'000;  // 24M FMAs a thread: ~10-20 ms
  const double flops = static_cast<double>(kIters) * 12.0 * (peak.vector_bits / 32) * 2;
  peak.gflops = best_gflops(pool, flops, [&](int index) {
    const float seed = static_cast<float>(index);
    return (avx512 ? fma_chains_avx512(kIters, seed) : fma_chains_avx2(kIters, seed)) > 0.0f;
  });
  return peak;
}

ComputePeak measure_int8_dot_peak(ThreadPool& pool) {
  if (!cpu_features().supports(Isa::Avx2)) return {};
  const bool avx512 = kernels::active().isa == Isa::Avx512;
  ComputePeak peak;
  peak.vector_bits = avx512 ? 512 : 256;
  constexpr int64_t kIters = 1'000'000;  // 12M dot-product steps a thread: ~5-20 ms
  // Each step multiplies-adds every byte of the vector.
  const double flops = static_cast<double>(kIters) * 12.0 * (peak.vector_bits / 8) * 2;
  peak.gflops = best_gflops(pool, flops, [&](int index) {
    return (avx512 ? dot_chains_avx512(kIters, index) : dot_chains_avx2(kIters, index)) != 0;
  });
  return peak;
}

namespace {

// The peak of a 512-bit instruction of 32 multiply-adds (two per 32-bit lane), for the AVX-512
// table only: 12 chains of it a thread, `chains(iters, index)` running them (nonzero: a result
// the compiler cannot drop).
template <typename Chains>
ComputePeak avx512_pair_dot_peak(ThreadPool& pool, Chains chains) {
  if (kernels::active().isa != Isa::Avx512) return {};
  ComputePeak peak;
  peak.vector_bits = 512;
  constexpr int64_t kIters = 1'000'000;  // 12M instructions a thread: ~5-20 ms
  const double flops = static_cast<double>(kIters) * 12.0 * 32 * 2;
  peak.gflops = best_gflops(pool, flops, [&](int index) { return chains(kIters, index); });
  return peak;
}

}  // namespace

ComputePeak measure_bf16_dot_peak(ThreadPool& pool) {
  return avx512_pair_dot_peak(pool, [](int64_t iters, int index) {
    return bf16_dot_chains_avx512(iters, static_cast<float>(index)) > 0.0f;
  });
}

ComputePeak measure_int16_dot_peak(ThreadPool& pool) {
  return avx512_pair_dot_peak(
      pool, [](int64_t iters, int index) { return int16_dot_chains_avx512(iters, index) != 0; });
}

}  // namespace autoglm::ops
