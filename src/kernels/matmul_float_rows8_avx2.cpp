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
// bf16's column pair); several tokens take 3 groups x 4 tokens (2 x 4 for bf16; see kPassGroups)
// over all columns.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

// Bytes of a group's 8 weights of one column.
template <DType DT>
constexpr int64_t kColumnBytes = DT == DType::F32 ? 32 : 16;

// The 8 rows of one group at column k (f32, f16), p = the group's column 0.
template <DType DT>
inline __m256 load_column(const uint8_t* p, int64_t k) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p + k * kColumnBytes<DT>));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k * 16)));
  }
}

// One tile: NG groups x NT tokens over kc columns.
struct TileArgs {
  const uint8_t* group;  // the first group's weights at the first column
  int64_t group_bytes;   // from one group to the next
  const float* x;        // the first token's x at the first column
  int64_t ldx;           // from one token's x to the next
  int64_t kc;            // columns (even for bf16)
  float* y;              // the first token's output for the first group's row 0
  int64_t ldy;           // from one token's outputs to the next
  const uint8_t* next;   // weights to prefetch into L2, at the same offsets as group; or null
};

// How far ahead in its own weight streams decode prefetches (into L2; a prefetch never faults,
// so reaching past the matrix's end is harmless). The hardware prefetcher alone kept too few lines
// in flight: every FMA waits on its load, so the out-of-order window fills with work that hangs on
// the oldest missing line. Weights from DRAM, in one process alternating with the 4-stream read
// probe over the same bytes (3 runs each), as a fraction of the probe, without -> with:
// one thread f16 78-82% -> 85-88%, bf16 79-82% -> 86-87%; two threads f16 80-86% -> 88-91%, bf16
// 86-91% -> 90-95%. T0 and T1 gave the same; 256 and 512 bytes a little less; 1-2 KiB was slower
// than none. 8 groups per pass, or two accumulators per group, added nothing. The q4_0 / q8_0
// decode kernels gained nothing from the same prefetch (256 or 384 bytes, within +-3%).
constexpr int64_t kDecodeAhead = 384;

// Prefetches the line of a.next that holds column k of each of the NG groups (and the columns
// after it in that line: 4 of f16 or of bf16 pairs' halves, 2 of f32).
template <DType DT, int NG>
inline void prefetch_next(const TileArgs& a, int64_t k) {
  for (int g = 0; g < NG; ++g)
    _mm_prefetch(reinterpret_cast<const char*>(a.next + g * a.group_bytes + k * kColumnBytes<DT>),
                 _MM_HINT_T1);
}

// Columns a step of the tile takes: one (f32, f16) or a column pair (bf16).
template <DType DT>
constexpr int64_t kStepColumns = DT == DType::BF16 ? 2 : 1;

// acc[g][t] += the step's columns from k of group g times token t's x.
template <DType DT, int NG, int NT>
__attribute__((always_inline)) inline void column_step(const TileArgs& a, const float* const* xt,
                                                       int64_t k, __m256 (&acc)[NG][NT]) {
  if constexpr (DT == DType::BF16) {
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    __m256 even[NG], odd[NG];
    for (int g = 0; g < NG; ++g) {
      const __m256i v = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(a.group + g * a.group_bytes + k * 16));
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
  } else {
    __m256 wv[NG];
    for (int g = 0; g < NG; ++g) wv[g] = load_column<DT>(a.group + g * a.group_bytes, k);
    for (int t = 0; t < NT; ++t) {
      const __m256 xb = _mm256_broadcast_ss(xt[t] + k);
      for (int g = 0; g < NG; ++g) acc[g][t] = _mm256_fmadd_ps(wv[g], xb, acc[g][t]);
    }
  }
}

// y[t, 8g..8g+7] = Σ_k w[8g..8g+7, k] · x[t, k]. Every loop over the accumulators is unrolled:
// GCC 12 left the final one rolled, which indexes the array with a variable, so the array lived
// on the stack and every FMA's result was stored there.
template <DType DT, int NG, int NT>
void tile(const TileArgs& a) {
  const float* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = a.x + t * a.ldx;
  __m256 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm256_setzero_ps();
  }
  // A 64-byte line of every group at a time, then the columns after the last whole line. The
  // line's steps are unrolled where the accumulators leave registers free (decode, bf16's 2 x 4);
  // unrolled, the 3 x 4 tile spilled 3 accumulators. Against a loop of one step that tested k for
  // a line start (paired, 2 threads, weights from DRAM): decode f16 1.02-1.05x, bf16 1.00-1.01x;
  // 16 tokens bf16 1.04-1.12x.
  constexpr int64_t kLineColumns = 64 / kColumnBytes<DT>;
  int64_t k = 0;
  for (; k + kLineColumns <= a.kc; k += kLineColumns) {
    if (a.next != nullptr) prefetch_next<DT, NG>(a, k);
    if constexpr (NG * NT <= 8) {
#pragma GCC unroll 4
      for (int64_t j = 0; j < kLineColumns; j += kStepColumns<DT>) {
        column_step<DT, NG, NT>(a, xt, k + j, acc);
      }
    } else {
#pragma GCC unroll 1
      for (int64_t j = 0; j < kLineColumns; j += kStepColumns<DT>) {
        column_step<DT, NG, NT>(a, xt, k + j, acc);
      }
    }
  }
  for (; k < a.kc; k += kStepColumns<DT>) column_step<DT, NG, NT>(a, xt, k, acc);
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      _mm256_storeu_ps(a.y + t * a.ldy + 8 * g, acc[g][t]);
    }
  }
}

// The tile for rows from row0 of w, all columns, one token: decode.
template <DType DT, int NG>
void decode_tile(const Matrix& w, const float* x, float* y, int64_t row0) {
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const auto* group = static_cast<const uint8_t*>(w.data) + (row0 / 8) * group_bytes;
  tile<DT, NG, 1>({group, group_bytes, x, w.cols, w.cols, y + row0, 0, group + kDecodeAhead});
}

// One token: 4 groups per pass over all columns (each broadcast of x feeds 4 FMAs, 8 for bf16),
// then the 1-3 groups left.
template <DType DT>
void decode(const Matrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + 32 <= r1; r += 32) decode_tile<DT, 4>(w, x, y, r);
  for (; r < r1; r += 8) decode_tile<DT, 1>(w, x, y, r);
}

// Several tokens: passes of 3 groups, tiles of 4 tokens. The 12 accumulators, 3 weight vectors
// and a broadcast fill the 16 ymm registers. bf16 converts each load into two vectors (its even
// and odd columns), so it takes 2 groups. Against 2 groups x 6 tokens (the same 12 accumulators
// and one load fewer per 12 FMAs, but 6 broadcasts instead of 4, and 16 tokens split 6 + 6 + 4),
// f16, one thread, alternating in one process: 16 tokens 55-63 -> 62-67 GFLOP/s, 512 tokens
// 63-76 -> 69-74; 2 threads, 16 tokens 94-105 -> 98-117. 4 groups x 3 tokens spills registers.
// Tried for bf16 earlier: 6 tokens spills and 5 was slower; f32 panels converted once per column
// chunk (as gemm_float_avx2.cpp does) gave the same 512-token prefill and 16-sequence steps 7-17%
// slower.
template <DType DT>
constexpr int kPassGroups = DT == DType::BF16 ? 2 : 3;
constexpr int kTileTokens = 4;

// NG groups (a.group ...) against tokens [0, n) of a.x, NT at a time, then the rest. The first
// tile reads the weights from memory and the others from L2, so the tile after the first (or the
// only one) prefetches a.next, the next pass's weights: they are then in L2 when its first
// tile starts, and the reads from memory are spread over the whole chunk instead of stalling one
// tile. Measured (with 2 x 6 tiles for f16) on the AVX2 host, one thread, weights from DRAM (6144 x
// 2048, 4 copies), with and without, alternating in one process: 4 tokens f16 20.5 -> 29.3 and
// bf16 24.2 -> 34.2 GFLOP/s, 16 tokens f16 45.5 -> 52.9 and bf16 36.3 -> 42.3, 512 tokens +3-5%.
// Model (2 threads, 3 pairs of runs): 16-sequence steps f16 +5-16%, bf16 +12-15%; 16-token prefill
// f16 +24-37%.
template <DType DT, int NG, int NT = kTileTokens>
void token_tiles(TileArgs a, int64_t n) {
  const uint8_t* next = a.next;
  const int64_t prefetch_at = n > NT ? NT : 0;
  int64_t t = 0;
  for (; t + NT <= n; t += NT, a.x += NT * a.ldx, a.y += NT * a.ldy) {
    a.next = t == prefetch_at ? next : nullptr;
    tile<DT, NG, NT>(a);
  }
  a.next = t == prefetch_at ? next : nullptr;
  static_assert(NT == 4, "the remainder below takes 1-3 tokens");
  switch (n - t) {
    case 3:
      return tile<DT, NG, 3>(a);
    case 2:
      return tile<DT, NG, 2>(a);
    case 1:
      return tile<DT, NG, 1>(a);
    default:
      return;
  }
}

// Tokens of a chunk share each pass over the weights. The tiles run over all columns: a pass's
// weights (96 KiB of f16 at 2048 columns) stay in L2 while the chunk's token tiles pass
// over them, and x streams from L2/L3. Blocking columns for L1 instead (chunks of 512, the
// weights of a tile in L1) was slower: one thread, 512 tokens, in one process alternating, f16
// 57-61 (once 68) GFLOP/s against 67-76 over all columns (6144 x 2048, 2048 x 6144, 1024 x
// 13696), bf16 49-52 against 60-63; 16 tokens 51-58 against 58-66 (f16), 46-47 against 55-57
// (bf16). Token chunks of 48-512 gave the same as 96.
constexpr int64_t kTokenChunk = 96;

// Groups of rows [r, r + 8·ng) (ng = 1 .. kPassGroups), tokens [t0, t0 + n); with
// prefetch_next_pass, the next pass's kPassGroups groups are prefetched.
template <DType DT>
void group_chunk(const Matrix& w, const float* x, int64_t t0, int64_t n, int64_t r, int ng,
                 float* y, int64_t ldy, bool prefetch_next_pass) {
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const auto* group = static_cast<const uint8_t*>(w.data) + (r / 8) * group_bytes;
  TileArgs a{group,
             group_bytes,
             x + t0 * w.cols,
             w.cols,
             w.cols,
             y + t0 * ldy + r,
             ldy,
             prefetch_next_pass ? group + kPassGroups<DT> * group_bytes : nullptr};
  if constexpr (kPassGroups<DT> == 3) {
    if (ng == 3) return token_tiles<DT, 3>(a, n);
  }
  if (ng == 2) return token_tiles<DT, 2>(a, n);
  token_tiles<DT, 1>(a, n);
}

}  // namespace

template <DType DT>
void float_rows8_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) {
  if (n_tokens == 1) return decode<DT>(w, x, y, r0, r1);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t n = std::min(kTokenChunk, n_tokens - t0);
    constexpr int64_t kPassRows = 8 * kPassGroups<DT>;
    for (int64_t r = r0; r < r1; r += kPassRows) {
      const int ng = static_cast<int>(std::min(kPassRows, r1 - r) / 8);
      group_chunk<DT>(w, x, t0, n, r, ng, y, ldy, r + 2 * kPassRows <= r1);
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
