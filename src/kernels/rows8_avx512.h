// What the 512-bit Rows8 kernels of the AVX-512 table share (matmul_rows8_avx512.cpp for q4_0 /
// q8_0, matmul_float_avx512.cpp for f16 / bf16). A 512-bit vector holds a group's 8 rows twice:
// lanes 0-7 take one column (or step) and lanes 8-15 the next, against x laid out the same way, and
// the two halves of a sum are added once, at the end.
// In an anonymous namespace: each ISA's translation unit keeps its own copy (kernels/detail.h).
#pragma once

#include <cstdint>

#include "kernels/avx512_intrinsics.h"

namespace autoglm::kernels::detail {
namespace {

// The index vector of a permute that fills lanes 0-7 from element a and lanes 8-15 from element b.
inline __m512i halves_index(int a, int b) {
  return _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
}

// y[0..7] = the sum of acc's two halves.
inline void store_sum_of_halves(float* y, __m512 acc) {
  const __m256 low = _mm512_castps512_ps256(acc);
  const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
  _mm256_storeu_ps(y, _mm256_add_ps(low, high));
}

// The token loop of the several-token kernels: tiles of 4 tokens from the first, then one tile of
// the 1-3 left. Each tile takes every weight of its pass from L2 but one: the second tile (or the
// only one) also prefetches the next pass's weights, so that the reads from memory spread over the
// whole pass instead of stalling its first tile. Calls run_tile.template operator()<NT>(t,
// prefetching) for the tile of NT tokens from token t.
template <typename RunTile>
inline void for_token_tiles(int64_t n_tokens, RunTile&& run_tile) {
  constexpr int64_t kTileTokens = 4;
  const int64_t prefetch_at = n_tokens > kTileTokens ? kTileTokens : 0;
  int64_t t = 0;
  for (; t + kTileTokens <= n_tokens; t += kTileTokens)
    run_tile.template operator()<kTileTokens>(t, t == prefetch_at);
  switch (n_tokens - t) {
    case 3:
      return run_tile.template operator()<3>(t, t == prefetch_at);
    case 2:
      return run_tile.template operator()<2>(t, t == prefetch_at);
    case 1:
      return run_tile.template operator()<1>(t, t == prefetch_at);
    default:
      return;
  }
}

}  // namespace
}  // namespace autoglm::kernels::detail
