// Float-weight matmul over the Rows8 layout (matrix.h) on AVX2: f32, f16 (F16C) and bf16 weights,
// y[t, r] = Σ_k w[r, k] · x[t, k], for any number of tokens.
//
// One load of a group holds its 8 rows at one column (f32, f16) or at a column pair (bf16: the
// 32-bit lane of row r is (w[r, k], w[r, k + 1]); a shift gives column k as f32, a mask column
// k + 1). The load is converted once in a register and multiplied by a broadcast x[t, k] for every
// token of the tile, and the accumulator of group g and token t is y[t, 8g..8g+7] itself: no
// horizontal sums, no transposed copy of the weights (the panel GEMM of gemm_float_avx2.cpp
// converts and transposes each weight into a buffer and reads it back; this needs neither).
//
// Tiles: decode (one token) takes 4 groups at a time, so each x broadcast feeds 4 FMAs (8 for
// bf16's column pair); several tokens take 2 groups x kTileTokens tokens, 12 (f32, f16) or 8
// (bf16, whose two converted halves need 2 more registers) accumulators of the 16 ymm registers.
// Columns go in chunks of kColChunk: a tile's weights (2 groups x 512 columns: 16-32 KiB) stay in
// L1 for all the token tiles of a chunk, and a chunk's x (kTokenChunk tokens) in L2.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

constexpr int64_t kColChunk = 512;
constexpr int64_t kTokenChunk = 96;

template <DType DT>
constexpr int kTileTokens = DT == DType::BF16 ? 4 : 6;

// Bytes of a group's 8 weights of one column.
template <DType DT>
constexpr int64_t kColumnBytes = DT == DType::F32 ? 32 : 16;

// The 8 rows of one group at column k (f32, f16), p = the group's start.
template <DType DT>
inline __m256 load_column(const uint8_t* p, int64_t k) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p + k * kColumnBytes<DT>));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * 16)));
  }
}

// y[t0 + t, row0 + 8g ..] for NG groups x NT tokens over columns [k0, k1) (even for bf16):
// written when `first`, added to what earlier column chunks left there otherwise. Every loop over
// the accumulators is unrolled: GCC 12 left the final one rolled, which indexes the array with a
// variable, so the array lived on the stack and every FMA's result was stored there.
template <DType DT, int NG, int NT>
void tile(const Matrix& w, const float* x, int64_t t0, int64_t row0, int64_t k0, int64_t k1,
          bool first, float* y, int64_t ldy) {
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const uint8_t* group = static_cast<const uint8_t*>(w.data) + (row0 / 8) * group_bytes;
  const float* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = x + (t0 + t) * w.cols;
  __m256 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm256_setzero_ps();
  }
  if constexpr (DT == DType::BF16) {
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    for (int64_t k = k0; k < k1; k += 2) {
      __m256 even[NG], odd[NG];
      for (int g = 0; g < NG; ++g) {
        const __m256i v =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group + g * group_bytes + k * 16));
        even[g] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        odd[g] = _mm256_castsi256_ps(_mm256_and_si256(v, high));
      }
      for (int t = 0; t < NT; ++t) {
        const __m256 xb = _mm256_broadcast_ss(xt[t] + k);
        for (int g = 0; g < NG; ++g) acc[g][t] = _mm256_fmadd_ps(even[g], xb, acc[g][t]);
      }
      for (int t = 0; t < NT; ++t) {
        const __m256 xb = _mm256_broadcast_ss(xt[t] + k + 1);
        for (int g = 0; g < NG; ++g) acc[g][t] = _mm256_fmadd_ps(odd[g], xb, acc[g][t]);
      }
    }
  } else {
    for (int64_t k = k0; k < k1; ++k) {
      __m256 wv[NG];
      for (int g = 0; g < NG; ++g) wv[g] = load_column<DT>(group + g * group_bytes, k);
      for (int t = 0; t < NT; ++t) {
        const __m256 xb = _mm256_broadcast_ss(xt[t] + k);
        for (int g = 0; g < NG; ++g) acc[g][t] = _mm256_fmadd_ps(wv[g], xb, acc[g][t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      float* out = y + (t0 + t) * ldy + row0 + 8 * g;
      _mm256_storeu_ps(out, first ? acc[g][t] : _mm256_add_ps(_mm256_loadu_ps(out), acc[g][t]));
    }
  }
}

// One token: 4 groups per pass over all columns, then the 1-3 groups left.
template <DType DT>
void decode(const Matrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 32 <= r1; r += 32) tile<DT, 4, 1>(w, x, 0, r, 0, w.cols, true, y, 0);
  for (; r < r1; r += 8) tile<DT, 1, 1>(w, x, 0, r, 0, w.cols, true, y, 0);
}

// Tokens [t0, t1) against NG groups from row0, columns [k0, k1): whole tiles of kTileTokens,
// then one tile of the tokens left.
template <DType DT, int NG>
void token_tiles(const Matrix& w, const float* x, int64_t t0, int64_t t1, int64_t row0, int64_t k0,
                 int64_t k1, float* y, int64_t ldy) {
  constexpr int NT = kTileTokens<DT>;
  const bool first = k0 == 0;
  int64_t t = t0;
  for (; t + NT <= t1; t += NT) tile<DT, NG, NT>(w, x, t, row0, k0, k1, first, y, ldy);
  switch (t1 - t) {
    case 5:
      if constexpr (NT > 5) tile<DT, NG, 5>(w, x, t, row0, k0, k1, first, y, ldy);
      break;
    case 4:
      if constexpr (NT > 4) tile<DT, NG, 4>(w, x, t, row0, k0, k1, first, y, ldy);
      break;
    case 3:
      tile<DT, NG, 3>(w, x, t, row0, k0, k1, first, y, ldy);
      break;
    case 2:
      tile<DT, NG, 2>(w, x, t, row0, k0, k1, first, y, ldy);
      break;
    case 1:
      tile<DT, NG, 1>(w, x, t, row0, k0, k1, first, y, ldy);
      break;
    default:
      break;
  }
}

}  // namespace

template <DType DT>
void float_rows8_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) {
  if (n_tokens == 1) return decode<DT>(w, x, y, r0, r1);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t t1 = std::min(n_tokens, t0 + kTokenChunk);
    for (int64_t k0 = 0; k0 < w.cols; k0 += kColChunk) {
      const int64_t k1 = std::min(w.cols, k0 + kColChunk);
      int64_t r = r0;
      for (; r + 16 <= r1; r += 16) token_tiles<DT, 2>(w, x, t0, t1, r, k0, k1, y, ldy);
      if (r < r1) token_tiles<DT, 1>(w, x, t0, t1, r, k0, k1, y, ldy);
    }
  }
}

template void float_rows8_avx2<DType::F32>(const Matrix&, const float*, int64_t, float*, int64_t,
                                           int64_t, int64_t);
template void float_rows8_avx2<DType::F16>(const Matrix&, const float*, int64_t, float*, int64_t,
                                           int64_t, int64_t);
template void float_rows8_avx2<DType::BF16>(const Matrix&, const float*, int64_t, float*, int64_t,
                                            int64_t, int64_t);

}  // namespace autoglm::kernels::detail
