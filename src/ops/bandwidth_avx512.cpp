// The loops of the compute-peak probes in 512-bit vectors, for the AVX-512 kernels: FMAs (their
// float kernels issue 512-bit FMAs: matmul_float_avx512.cpp; Zen 5 runs them at full width, twice
// the 256-bit rate; Zen 4 as two halves, the same rate) and vpdpbusd (their q4_0 / q8_0 kernels:
// matmul_rows8_avx512.cpp) and vdpbf16ps (their bf16 multiplies with --bf16-activations).
#include "kernels/avx512_intrinsics.h"

#include <cstdint>

namespace autoglm::ops {

// As fma_chains_avx2: 12 independent chains, 16 lanes each.
float fma_chains_avx512(int64_t iters, float seed) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  return lanes[0] + lanes[15];
}

// 12 independent vpdpbusd chains, 64 byte products each: every step adds 4 products of bytes to
// each 32-bit lane, in place, so no step can be hoisted or merged with another. The sums stay far
// from overflow (-24 a step).
int32_t dot_chains_avx512(int64_t iters, int32_t seed) {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(seed + i);
  const __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], u, s);
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, sum);
  return lanes[0] + lanes[15];
}

// 12 independent vdpbf16ps chains (the bf16 kernels' instruction with --bf16-activations:
// matmul_float_avx512.cpp), 32 multiply-adds each: every step adds two bf16 products to each f32
// lane, in place.
float bf16_dot_chains_avx512(int64_t iters, float seed) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed + static_cast<float>(i));
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.25f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(-1e-3f));
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  return lanes[0] + lanes[15];
}

// 12 independent vpdpwssd chains (the f16 kernels' instruction with 16-bit integer activations:
// matmul_f16_int16_avx512.cpp), 32 multiply-adds each: every step adds two products of 16-bit
// integers to each 32-bit lane, in place. The sums stay far from overflow (-12 a step).
int32_t int16_dot_chains_avx512(int64_t iters, int32_t seed) {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(seed + i);
  const __m512i a = _mm512_set1_epi16(3), b = _mm512_set1_epi16(-2);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpwssd_epi32(acc[i], a, b);
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, sum);
  return lanes[0] + lanes[15];
}

}  // namespace autoglm::ops
