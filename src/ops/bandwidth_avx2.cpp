// The read loop, compiled with AVX2: 32-byte loads into four independent accumulators, so the loop
// is limited by memory, not by the add latency; and the FMA and 8-bit dot-product loops of the
// compute-peak probes.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace autoglm::ops {

namespace {

inline __m256i load2(const uint64_t* p) {
  return _mm256_add_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)),
                          _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 4)));
}

}  // namespace

// Reads the range as four streams at once (its quarters), as the decode kernels read four row
// groups at once. One stream per thread read 6-34% slower than four on the AVX2 host (8 pairs,
// 2 threads, 512 MiB: 13.6-21.5 against 16.3-24.2 GB/s), so a one-stream probe understated the
// machine, and the decode kernels measured up to 122% of it.
uint64_t read_sum_avx2(const uint64_t* data, size_t n) {
  const size_t q = n / 4 / 8 * 8;  // a quarter, in whole 64-byte lines (data is 64-byte aligned)
  const uint64_t* p[4] = {data, data + q, data + 2 * q, data + 3 * q};
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < q; i += 8) {
    a0 = _mm256_add_epi64(a0, load2(p[0] + i));
    a1 = _mm256_add_epi64(a1, load2(p[1] + i));
    a2 = _mm256_add_epi64(a2, load2(p[2] + i));
    a3 = _mm256_add_epi64(a3, load2(p[3] + i));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (size_t i = 4 * q; i < n; ++i) sum += data[i];
  return sum;
}

// `iters` steps of 12 independent FMA chains (8 lanes each): 12 chains cover the FMA latency
// (4 cycles) times the 2 FMA units of current cores with room to spare. Returns a value that
// depends on every chain, so the compiler cannot drop any.
float fma_chains_avx2(int64_t iters, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

// 12 independent chains of the AVX2 q4_0 kernel's step (matmul_avx2.cpp nib_dot_step): vpmaddubsw
// (32 byte products, added in pairs into 16-bit lanes) and a 16-bit add. Each chain multiplies its
// own sum's bytes, so the products cannot be hoisted out of the loop; the 16-bit sums wrap, which
// only the timing sees.
int32_t dot_chains_avx2(int64_t iters, int32_t seed) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi16(static_cast<int16_t>(seed + i));
  const __m256i u = _mm256_set1_epi8(3);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_add_epi16(acc[i], _mm256_maddubs_epi16(u, acc[i]));
  }
  __m256i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_epi16(sum, acc[i]);
  return _mm256_extract_epi16(sum, 0) + _mm256_extract_epi16(sum, 15);
}

}  // namespace autoglm::ops
