// bf16 weights over the Rows8 layout with AVX-512 BF16 dot products (vdpbf16ps), for any number
// of tokens: y[t, r] = Σ_k w[r, k] · x[t, k].
//
// The Rows8 bf16 layout already holds what vdpbf16ps wants: the 32-bit lane of row r of a group is
// the column pair (w[r, k], w[r, k + 1]). x is rounded to bf16 once per call (round to nearest
// even, vcvtne2ps2bf16), so the lane pair (x[t, k], x[t, k + 1]) is one 32-bit broadcast, and one
// vdpbf16ps adds both columns' exact products into the 8 rows' f32 sums. Against the AVX2 kernel
// (matmul_float_rows8_avx2.cpp), a column pair takes one instruction per group and token instead
// of a shift, a mask and two FMAs: twice the multiply-adds per instruction, and the 32 vector
// registers of AVX-512 leave room for a tile of 4 groups x 4 tokens.
//
// The price is x's rounding: each x[t, k] is off by at most 2^-9 of itself, so a row's sum by at
// most 2^-9 · Σ|w·x| more than the f32 kernels'. That is what bf16 weights are made for (their
// training and reference implementation run the activations in bf16) and what llama.cpp does for
// bf16 weights too.
//
// 512-bit vectors: each load takes a 64-byte line of a group, two column pairs. Zen 5 runs them at
// full width: one thread, independent chains, 412 GFLOP/s of 512-bit vdpbf16ps against 207 of
// 256-bit (and 112 of 256-bit FMAs). Zen 4 splits them in two halves, which costs nothing.
// GCC 12's AVX-512 extract intrinsics start from _mm256_undefined_*() and trip -Wuninitialized
// inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

// x [n] as bf16 into out [n] (two vectors at a time; the tail goes through a zero-padded copy so
// that every element takes the same instruction).
void round_to_bf16(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    std::memcpy(out + i, &v, sizeof v);
  }
  if (i == n) return;
  float tail[32] = {};
  std::copy(x + i, x + n, tail);
  const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(tail + 16), _mm512_loadu_ps(tail));
  std::memcpy(out + i, &v, static_cast<size_t>(n - i) * sizeof(uint16_t));
}

// One tile: NG groups x NT tokens over all column pairs.
struct Bf16Tile {
  const uint8_t* group;  // the first group's weights at column 0
  int64_t group_bytes;   // from one group to the next
  const uint16_t* x;     // the first token's x (bf16) at column 0
  int64_t ldx;           // from one token's x to the next
  int64_t pairs;         // column pairs
  float* y;              // the first token's output for the first group's row 0
  int64_t ldy;           // from one token's outputs to the next
  const uint8_t* next;   // weights to prefetch into L2, at the same offsets as group; or null
};

// 32 bytes of a group per column pair: a 64-byte line (one 512-bit load) holds 2 pairs. In a
// 512-bit accumulator, lanes 0-7 take the line's first pair for the group's 8 rows and lanes 8-15
// its second; the halves are added once, at the end.
constexpr int64_t kPairBytes = 32;
constexpr int64_t kLinePairs = 2;

// Token t's x pairs p (lanes 0-7) and p + 1 (lanes 8-15).
inline __m512bh x_pairs(const uint16_t* x, int64_t p) {
  int64_t both;
  std::memcpy(&both, x + 2 * p, sizeof both);
  const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return std::bit_cast<__m512bh>(_mm512_permutexvar_epi32(halves, _mm512_set1_epi64(both)));
}

// acc[g][t] += one line of group g (pairs p, p + 1) times token t's x. A last odd pair (tail) takes
// the lower half only: the upper weights are zero.
template <int NG, int NT, bool kTail = false>
__attribute__((always_inline)) inline void line_step(const Bf16Tile& a, int64_t p,
                                                     __m512 (&acc)[NG][NT]) {
  __m512bh wv[NG];
  for (int g = 0; g < NG; ++g) {
    const uint8_t* w = a.group + g * a.group_bytes + p * kPairBytes;
    if constexpr (kTail) {
      const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      wv[g] = std::bit_cast<__m512bh>(_mm512_inserti64x4(_mm512_setzero_si512(), half, 0));
    } else {
      wv[g] = std::bit_cast<__m512bh>(_mm512_loadu_si512(w));
    }
  }
  for (int t = 0; t < NT; ++t) {
    __m512bh xb;
    if constexpr (kTail) {
      int32_t pair;
      std::memcpy(&pair, a.x + t * a.ldx + 2 * p, sizeof pair);
      xb = std::bit_cast<__m512bh>(_mm512_set1_epi32(pair));
    } else {
      xb = x_pairs(a.x + t * a.ldx, p);
    }
    for (int g = 0; g < NG; ++g) acc[g][t] = _mm512_dpbf16_ps(acc[g][t], wv[g], xb);
  }
}

// y[t, 8g..8g+7] for the tile's groups and tokens. One prefetch per group and line, when a.next.
template <int NG, int NT>
void tile(const Bf16Tile& a) {
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  int64_t p = 0;
  for (; p + kLinePairs <= a.pairs; p += kLinePairs) {
    if (a.next != nullptr) {
      for (int g = 0; g < NG; ++g) {
        _mm_prefetch(reinterpret_cast<const char*>(a.next + g * a.group_bytes + p * kPairBytes),
                     _MM_HINT_T1);
      }
    }
    line_step<NG, NT>(a, p, acc);
  }
  if (p < a.pairs) line_step<NG, NT, true>(a, p, acc);
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m256 low = _mm512_castps512_ps256(acc[g][t]);
      const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[g][t]), 1));
      _mm256_storeu_ps(a.y + t * a.ldy + 8 * g, _mm256_add_ps(low, high));
    }
  }
}

constexpr int kTileGroups = 4;
constexpr int kTileTokens = 4;

// Tokens [0, n) of a, NT at a time, then the 1-3 left. The second tile (or the only one) prefetches
// a.next, so that the next pass's weights come from memory while this pass computes from L2.
template <int NG>
void token_tiles(Bf16Tile a, int64_t n) {
  const uint8_t* next = a.next;
  const int64_t prefetch_at = n > kTileTokens ? kTileTokens : 0;
  int64_t t = 0;
  for (; t + kTileTokens <= n;
       t += kTileTokens, a.x += kTileTokens * a.ldx, a.y += kTileTokens * a.ldy) {
    a.next = t == prefetch_at ? next : nullptr;
    tile<NG, kTileTokens>(a);
  }
  a.next = t == prefetch_at ? next : nullptr;
  switch (n - t) {
    case 3:
      return tile<NG, 3>(a);
    case 2:
      return tile<NG, 2>(a);
    case 1:
      return tile<NG, 1>(a);
    default:
      return;
  }
}

void group_tiles(const Bf16Tile& a, int ng, int64_t n) {
  switch (ng) {
    case 4:
      return token_tiles<4>(a, n);
    case 3:
      return token_tiles<3>(a, n);
    case 2:
      return token_tiles<2>(a, n);
    default:
      return token_tiles<1>(a, n);
  }
}

// How far ahead decode prefetches its own weight streams (as the AVX2 float decode does).
constexpr int64_t kDecodeAhead = 384;
// Tokens that share a pass over the weights (the pass's 4 groups stay in L2 meanwhile).
constexpr int64_t kTokenChunk = 96;

}  // namespace

void bf16_rows8_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                       int64_t r0, int64_t r1) {
  auto* xb = reinterpret_cast<uint16_t*>(scratch_f32((n_tokens * w.cols + 1) / 2, 4));
  round_to_bf16(x, n_tokens * w.cols, xb);
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const auto* weights = static_cast<const uint8_t*>(w.data);
  constexpr int64_t kPassRows = 8 * kTileGroups;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t n = std::min(kTokenChunk, n_tokens - t0);
    for (int64_t r = r0; r < r1; r += kPassRows) {
      const int ng = static_cast<int>(std::min(kPassRows, r1 - r) / 8);
      const uint8_t* group = weights + (r / 8) * group_bytes;
      const uint8_t* next = n_tokens == 1             ? group + kDecodeAhead
                            : r + 2 * kPassRows <= r1 ? group + kTileGroups * group_bytes
                                                      : nullptr;
      group_tiles(
          {group, group_bytes, xb + t0 * w.cols, w.cols, w.cols / 2, y + t0 * ldy + r, ldy, next},
          ng, n);
    }
  }
}

}  // namespace autoglm::kernels::detail
