// The FMA loop of the compute-peak probe in 512-bit vectors, for the AVX-512 kernels (their float
// kernels issue 512-bit FMAs: matmul_float_avx512.cpp). Zen 5 runs them at full width, twice the
// 256-bit rate; Zen 4 as two halves, the same rate.
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

}  // namespace autoglm::ops
