// q4_0 and q8_0 matmul over the Rows8 layout (matrix.h, core/quant_blocks.h BlockQ4_0x8 /
// BlockQ8_0x8) in 256-bit vectors, for matmul_avx2.cpp (the AVX-512 table has its own 512-bit
// kernels, matmul_rows8_avx512.cpp). Each includer first defines
//   dot_u8s8(u8, s8):          8 int32 lanes, each the sum of 4 u8·s8 products (as for
//                              matmul_quant_simd.h);
//   nib_dot_init(q4_offset):   the sums of a block before its first step, which hold the -8
//                              offset (QuantizedActs::q4_offset);
//   nib_dot_step(acc, u4, s8): adds, per 32-bit lane, the 4 products of unsigned nibbles u4 with
//                              signed bytes s8 (VNNI vpdpbusd, or AVX2 maddubs into int16 pairs);
//   nib_dot_finish(acc):       the 8 int32 lane sums.
// Lane r of a 32-byte load of packed qs belongs to row r, so the integer dot of one block yields
// the 8 rows' sums in 8 lanes: no sign tricks (nibbles are unsigned; the sums start from the -8
// offset, -8·Σxq), no horizontal adds, and one f32 FMA per block for 8 rows. q8_0 keeps
// the sign trick of matmul_quant_simd.h (|w| · x·sign(w)), with |w| shared by the tokens.
#pragma once

#if !defined(__AVX2__)
#error "matmul_rows8_simd.h is for the AVX2 / AVX-512 translation units only"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/quant_blocks.h"
#include "kernels/detail.h"
#include "kernels/prefetch_simd.h"

namespace autoglm::kernels::detail {
namespace {

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// Rows 8g..8g+7 for tokens t0..t0+NT-1: y[t, 8g + r] for r < 8. Each 32-byte load of packed qs
// is split into its low nibbles (elements 4k..4k+3 of the block) and high nibbles (elements
// 16+4k..16+4k+3) and used at once by every token, so the live registers are NT float
// accumulators, NT integer sums and two weight vectors: no spills for NT = 4 (16 ymm registers).
template <int NT>
inline void q4x8_group(const BlockQ4_0x8* blocks, int64_t n_blocks, const QuantizedActs& xa,
                       int64_t cols, int64_t t0, float* y, int64_t ldy, int64_t row0,
                       const BlockQ4_0x8* next) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int64_t blocks_per_token = cols / kQK;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ4_0x8& blk = blocks[b];
    if constexpr (NT == 1) prefetch_ahead<sizeof(BlockQ4_0x8)>(&blk);
    if (next != nullptr) prefetch_lines<_MM_HINT_T1>(next + b, sizeof(BlockQ4_0x8));
    const int8_t* xq = xa.q + ((t0 * blocks_per_token) + b) * kQK;  // token t0's block b
    const int64_t x_step = blocks_per_token * kQK;                  // to the next token's
    // The k loop below is not unrolled: GCC 12 then loads all 8 nibble vectors and the broadcasts
    // up front and spills them (llvm-mca, znver3: 50 cycles per block for 4 tokens, not ~30).
    __m256i sum[NT];
    for (int t = 0; t < NT; ++t)
      sum[t] = nib_dot_init(xa.q4_offset[(t0 + t) * blocks_per_token + b]);
#pragma GCC unroll 1
    for (int k = 0; k < 4; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * k));
      const __m256i lo = _mm256_and_si256(v, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      for (int t = 0; t < NT; ++t) {
        sum[t] = nib_dot_step(sum[t], lo, broadcast4(xq + t * x_step + 4 * k));
        sum[t] = nib_dot_step(sum[t], hi, broadcast4(xq + t * x_step + 16 + 4 * k));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
    for (int t = 0; t < NT; ++t) {
      const int64_t xb = (t0 + t) * blocks_per_token + b;  // activation block index
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nib_dot_finish(sum[t])),
                               _mm256_mul_ps(dw, _mm256_set1_ps(xa.d[xb])), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy + row0, acc[t]);
}

// Rows 8g..8g+15 (two groups) for tokens t0..t0+3. Each broadcast of x serves both groups and
// each nibble vector four tokens: 46 vector operations per k step for 16 maddubs, where one group
// takes 27 for 8 (q4x8_group<4>; llvm-mca, znver3: 12.0 against 2 x 6.9 cycles; the vector pipes
// set the pace). The eight integer sums fill the registers, so the float sums live in a local
// array: a load and a store per block for each group and token. Not in y: the 4 tokens' rows of y
// are ldy floats apart, 24 KiB at 6144 rows, a multiple of 4 KiB, and each load then waited on
// the store to another token's row (4K aliasing): 10% slower than one group at a time.
// Measured on the AVX2 host, single thread, in pairs against q4x8_group<4>: in L1 (kernel alone,
// 10 pairs) 121 against 105 GFLOP/s; kernels_bench 512 tokens 104-114 against 97-104 (3 sets
// of 8-12 pairs), 16 tokens 86-96 against 91-98; the model (2 threads, 6 pairs) prefill 65.1
// against 64.8 and 16-sequence steps 56.8 against 52.9 tokens/s, within the noise. Starting the
// sums from the -8 offset (nib_dot_init) took a block from 215 vector ALU operations to 202
// (objdump; llvm-mca, znver3: 67.2 to 64.9 cycles); timed, within this host's noise.
inline void q4x8_pair4(const BlockQ4_0x8* g0, const BlockQ4_0x8* g1, int64_t n_blocks,
                       const QuantizedActs& xa, int64_t cols, int64_t t0, float* y, int64_t ldy,
                       int64_t row0, const BlockQ4_0x8* next) {
  constexpr int NT = 4;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int64_t blocks_per_token = cols / kQK;
  const int64_t x_step = blocks_per_token * kQK;  // from one token's activations to the next's
  alignas(32) float acc[2][NT][8] = {};
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* xq = xa.q + t0 * x_step + b * kQK;  // token t0's block b
    if (next != nullptr) {
      prefetch_lines<_MM_HINT_T1>(next + b, sizeof(BlockQ4_0x8));
      prefetch_lines<_MM_HINT_T1>(next + n_blocks + b, sizeof(BlockQ4_0x8));
    }
    __m256i sum[2][NT];
    for (int t = 0; t < NT; ++t)
      sum[0][t] = sum[1][t] = nib_dot_init(xa.q4_offset[(t0 + t) * blocks_per_token + b]);
#pragma GCC unroll 1
    for (int k = 0; k < 4; ++k) {
      const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g0[b].qs + 32 * k));
      const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g1[b].qs + 32 * k));
      const __m256i lo0 = _mm256_and_si256(v0, low4);
      const __m256i lo1 = _mm256_and_si256(v1, low4);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m256i xb = broadcast4(xq + t * x_step + 4 * k);
        sum[0][t] = nib_dot_step(sum[0][t], lo0, xb);
        sum[1][t] = nib_dot_step(sum[1][t], lo1, xb);
      }
      const __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low4);
      const __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low4);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const __m256i xb = broadcast4(xq + t * x_step + 16 + 4 * k);
        sum[0][t] = nib_dot_step(sum[0][t], hi0, xb);
        sum[1][t] = nib_dot_step(sum[1][t], hi1, xb);
      }
    }
    const __m256 dw[2] = {
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g0[b].d))),
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g1[b].d)))};
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const int64_t xb = (t0 + t) * blocks_per_token + b;  // activation block index
      const __m256 dx = _mm256_set1_ps(xa.d[xb]);
#pragma GCC unroll 2
      for (int g = 0; g < 2; ++g) {
        _mm256_store_ps(acc[g][t],
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(nib_dot_finish(sum[g][t])),
                                        _mm256_mul_ps(dw[g], dx), _mm256_load_ps(acc[g][t])));
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int g = 0; g < 2; ++g)
      _mm256_storeu_ps(y + (t0 + t) * ldy + row0 + 8 * g, _mm256_load_ps(acc[g][t]));
  }
}

template <int NT>
inline void q8x8_group(const BlockQ8_0x8* blocks, int64_t n_blocks, const QuantizedActs& xa,
                       int64_t cols, int64_t t0, float* y, int64_t ldy, int64_t row0,
                       const BlockQ8_0x8* next) {
  const int64_t blocks_per_token = cols / kQK;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const BlockQ8_0x8& blk = blocks[b];
    if constexpr (NT == 1) prefetch_ahead<sizeof(BlockQ8_0x8)>(&blk);
    if (next != nullptr) prefetch_lines<_MM_HINT_T1>(next + b, sizeof(BlockQ8_0x8));
    const int8_t* xq = xa.q + ((t0 * blocks_per_token) + b) * kQK;
    const int64_t x_step = blocks_per_token * kQK;
    __m256i sum[NT];
    for (int t = 0; t < NT; ++t) sum[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {  // elements 4k..4k+3 of the block, 8 rows
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + 32 * k));
      const __m256i aw = _mm256_abs_epi8(w);
      for (int t = 0; t < NT; ++t) {
        const __m256i sx = _mm256_sign_epi8(broadcast4(xq + t * x_step + 4 * k), w);
        sum[t] = _mm256_add_epi32(sum[t], dot_u8s8(aw, sx));
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.d)));
    for (int t = 0; t < NT; ++t) {
      const float dx = xa.d[(t0 + t) * blocks_per_token + b];
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(dx)),
                               acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + (t0 + t) * ldy + row0, acc[t]);
}

template <typename Block, int NT>
inline void x8_group(const Block* blocks, int64_t n_blocks, const QuantizedActs& xa, int64_t cols,
                     int64_t t0, float* y, int64_t ldy, int64_t row0, const Block* next) {
  if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
    q4x8_group<NT>(blocks, n_blocks, xa, cols, t0, y, ldy, row0, next);
  } else {
    q8x8_group<NT>(blocks, n_blocks, xa, cols, t0, y, ldy, row0, next);
  }
}

// One token (decode), NG consecutive groups per pass: each broadcast of x and each activation
// scale serves NG groups, and NG weight streams are read at once. q4_0's k loop is unrolled, unlike
// the several-token tiles': one token's sums leave room in the registers, and without the loop's
// counter and branch more of the stream is in flight. 2 threads, weights from DRAM, alternating in
// one process (7 runs): 1.03-1.09x; one thread 1.00-1.03x.
template <int NG>
inline void q4x8_decode(const BlockQ4_0x8* groups, int64_t n_blocks, const QuantizedActs& xa,
                        float* y, int64_t row0) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256 acc[NG];
  for (int g = 0; g < NG; ++g) acc[g] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* xq = xa.q + b * kQK;
    __m256i sum[NG];
    for (int g = 0; g < NG; ++g) sum[g] = nib_dot_init(xa.q4_offset[b]);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m256i x_lo = broadcast4(xq + 4 * k);
      const __m256i x_hi = broadcast4(xq + 16 + 4 * k);
      for (int g = 0; g < NG; ++g) {
        const __m256i v = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(groups[g * n_blocks + b].qs + 32 * k));
        sum[g] = nib_dot_step(sum[g], _mm256_and_si256(v, low4), x_lo);
        sum[g] = nib_dot_step(sum[g], _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), x_hi);
      }
    }
    const __m256 dx = _mm256_set1_ps(xa.d[b]);
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) {
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(groups[g * n_blocks + b].d)));
      acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nib_dot_finish(sum[g])), _mm256_mul_ps(dw, dx),
                               acc[g]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) _mm256_storeu_ps(y + row0 + 8 * g, acc[g]);
}

template <int NG>
inline void q8x8_decode(const BlockQ8_0x8* groups, int64_t n_blocks, const QuantizedActs& xa,
                        float* y, int64_t row0) {
  __m256 acc[NG];
  for (int g = 0; g < NG; ++g) acc[g] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int8_t* xq = xa.q + b * kQK;
    __m256i sum[NG];
    for (int g = 0; g < NG; ++g) sum[g] = _mm256_setzero_si256();
    for (int k = 0; k < 8; ++k) {
      const __m256i xb = broadcast4(xq + 4 * k);
      for (int g = 0; g < NG; ++g) {
        const __m256i w = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(groups[g * n_blocks + b].qs + 32 * k));
        sum[g] = _mm256_add_epi32(sum[g], dot_u8s8(_mm256_abs_epi8(w), _mm256_sign_epi8(xb, w)));
      }
    }
    const __m256 dx = _mm256_set1_ps(xa.d[b]);
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) {
      const __m256 dw = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(groups[g * n_blocks + b].d)));
      acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[g]), _mm256_mul_ps(dw, dx), acc[g]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) _mm256_storeu_ps(y + row0 + 8 * g, acc[g]);
}

template <typename Block, int NG>
inline void x8_decode(const Block* groups, int64_t n_blocks, const QuantizedActs& xa, float* y,
                      int64_t row0) {
  if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
    q4x8_decode<NG>(groups, n_blocks, xa, y, row0);
  } else {
    q8x8_decode<NG>(groups, n_blocks, xa, y, row0);
  }
}

// One token: q4_0 8 groups (64 rows) per pass, q8_0 4 (32 rows), then 4 and the 1-3 groups left,
// without software prefetch. More weight streams at once keep more lines in flight: against one
// group per pass with lines prefetched 2 KiB ahead, in pairs of runs, q8_0 one thread from DRAM
// (kernels_bench bm_matmul_dram) 13.8 against 11.9 GB/s (medians of 3), q4_0 the same (12.3 /
// 12.8); 2-thread decode of the benchmark model q4_0 1.00-1.10x (5 pairs), q8_0 1.05-1.06x (2
// pairs). Prefetching on top of 4 or 2 groups was not faster (4 pairs). q4_0, 8 groups against 4,
// alternating in one process (6144 x 2048 from DRAM): 2 threads 1.07-1.13x, one thread 1.14-1.18x;
// 6 groups were within the noise of 8 (0.89-1.06x), 16 slower (0.66-0.81x); q8_0 at 8 groups was
// 0.96-1.04x of 4, so it keeps 4. The benchmark model's q4_0 decode, 8 pairs of runs: 0.84-1.23x,
// median 1.07x.
template <typename Block>
inline void x8_decode_rows(const Matrix& w, const QuantizedActs& xa, float* y, int64_t r0,
                           int64_t r1) {
  const int64_t n_blocks = w.cols / kQK;
  const auto* groups = static_cast<const Block*>(w.data);
  int64_t r = r0;
  if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
    for (; r + 64 <= r1; r += 64)
      x8_decode<Block, 8>(groups + (r / 8) * n_blocks, n_blocks, xa, y, r);
  }
  for (; r + 32 <= r1; r += 32)
    x8_decode<Block, 4>(groups + (r / 8) * n_blocks, n_blocks, xa, y, r);
  for (; r < r1; r += 8) x8_decode<Block, 1>(groups + (r / 8) * n_blocks, n_blocks, xa, y, r);
}

// Row groups in chunks of 64 rows (73 KB of q4_0 weights at 2048 columns: they stay in L2 while
// every group of 4 tokens passes over them; each group's activations stay in L1). The first pass
// reads the chunk from memory, the others from L2, so the second pass (or the only one) prefetches
// the next chunk into L2: the reads from memory then overlap the passes that only compute.
// Measured on the AVX2 host, one thread, weights from DRAM (6144 x 2048, 6-8 copies), with and
// without, alternating in one process (2 runs each): q4_0 2 tokens 1.28-1.45x, 4 tokens 1.44x,
// 8 tokens 1.16-1.19x, 16 tokens 1.07-1.08x, 512 tokens 1.01-1.05x; q8_0 4 tokens 1.19-1.22x,
// 16 tokens 1.08-1.09x, 3 and 512 tokens within noise (0.96-1.07). The model's 16-sequence steps
// (2 threads, 3 pairs of runs): q8_0 +4-6%, q4_0 within the noise (0.96-1.11).
template <typename Block>
inline void x8_rows(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                    int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int64_t kRowChunk = 64;
  const int64_t n_blocks = w.cols / kQK;
  const auto* groups = static_cast<const Block*>(w.data);
  const int64_t prefetch_t0 = n_tokens > 4 ? 4 : 0;
  for (int64_t c0 = r0; c0 < r1; c0 += kRowChunk) {
    const int64_t c1 = c0 + kRowChunk < r1 ? c0 + kRowChunk : r1;
    const bool has_next = c1 < r1;
    // The group at the same place in the next chunk, when pass t0 prefetches it; else null.
    const auto next = [&](const Block* g, int64_t t0) -> const Block* {
      return has_next && t0 == prefetch_t0 ? g + (kRowChunk / 8) * n_blocks : nullptr;
    };
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) {
      int64_t r = c0;
      if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
        for (; r + 16 <= c1; r += 16) {
          const Block* g = groups + (r / 8) * n_blocks;
          q4x8_pair4(g, g + n_blocks, n_blocks, xa, w.cols, t0, y, ldy, r, next(g, t0));
        }
      }
      for (; r < c1; r += 8) {
        const Block* g = groups + (r / 8) * n_blocks;
        x8_group<Block, 4>(g, n_blocks, xa, w.cols, t0, y, ldy, r, next(g, t0));
      }
    }
    for (int64_t r = c0; r < c1; r += 8) {
      const Block* g = groups + (r / 8) * n_blocks;
      switch (n_tokens - t0) {
        case 3:
          x8_group<Block, 3>(g, n_blocks, xa, w.cols, t0, y, ldy, r, next(g, t0));
          break;
        case 2:
          x8_group<Block, 2>(g, n_blocks, xa, w.cols, t0, y, ldy, r, next(g, t0));
          break;
        case 1:
          x8_group<Block, 1>(g, n_blocks, xa, w.cols, t0, y, ldy, r, next(g, t0));
          break;
        default:
          break;
      }
    }
  }
}

inline void rows8_matmul(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                         int64_t ldy, int64_t r0, int64_t r1) {
  if (n_tokens == 1) {
    if (w.dtype == DType::Q4_0) return x8_decode_rows<BlockQ4_0x8>(w, xa, y, r0, r1);
    return x8_decode_rows<BlockQ8_0x8>(w, xa, y, r0, r1);
  }
  if (w.dtype == DType::Q4_0) return x8_rows<BlockQ4_0x8>(w, xa, n_tokens, y, ldy, r0, r1);
  x8_rows<BlockQ8_0x8>(w, xa, n_tokens, y, ldy, r0, r1);
}

}  // namespace
}  // namespace autoglm::kernels::detail
