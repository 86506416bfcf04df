// The sums of 8 vectors of 8 floats at once, for the AVX2 and AVX-512 ops (ops_avx2.cpp,
// ops_avx512.cpp: V::hsum8, used by the attention tiles of ops_simd.h).
#pragma once

#if !defined(__AVX2__)
#error "hsum8_avx2.h is for the AVX2 / AVX-512 translation units only"
#endif

#include <immintrin.h>

namespace autoglm::kernels::detail {
namespace {

// out[j] = Σ v[j] for j < 8, by an hadd tree: 6 hadds, 2 lane permutes and an add, where 8
// separate horizontal sums take about 40 operations.
inline void hsum8_ps256(const __m256* v, float* out) {
  const __m256 t0 = _mm256_hadd_ps(v[0], v[1]);  // per 128-bit lane: v0 0+1, 2+3, v1 0+1, 2+3
  const __m256 t1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 t2 = _mm256_hadd_ps(v[4], v[5]);
  const __m256 t3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);  // lane 0: v0..v3 over elements 0-3; lane 1: 4-7
  const __m256 u1 = _mm256_hadd_ps(t2, t3);
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                                      _mm256_permute2f128_ps(u0, u1, 0x31)));
}

}  // namespace
}  // namespace autoglm::kernels::detail
