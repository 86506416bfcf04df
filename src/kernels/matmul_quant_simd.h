// Quantized-weight matmul rows on 256-bit integer dot products, shared by matmul_avx2.cpp and
// matmul_avx512.cpp. Each includer defines `dot_u8s8(u8, s8)` (8 int32 lanes, each the sum of 4
// u8·s8 products: AVX-512 VNNI vpdpbusd, or AVX2 maddubs + madd) before including this file.
// Everything is in an anonymous namespace on purpose: each ISA's copy stays in its own object file.
//
// Per block of 32: weights are decoded to signed int8 w, activations are q8 blocks xq (scale dx).
// Σ w·xq = Σ |w| · (xq · sign(w)) puts the unsigned operand on |w| (|-128| = 128 still fits u8)
// and xq never is -128 (|xq| <= 127), so the identity is exact; maddubs cannot saturate either
// (2 · 128 · 127 = 32512 < 32767). The int32 block sum is exact in f32 (<= 32·128·127 < 2^24).
#pragma once

#if !defined(__AVX2__)
#error "matmul_quant_simd.h is for the AVX2 / AVX-512 translation units only"
#endif

#include <immintrin.h>

#include <cstdint>

#include "core/quant_blocks.h"
#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half_to_float(uint16_t h) {
  return _cvtsh_ss(h);
}

// Signed weights of q8_0 block b.
inline __m256i decode_q8_0(const BlockQ8_0& blk) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
}

// q4_0: low nibbles are elements 0..15, high nibbles 16..31; value q - 8.
inline __m256i decode_q4_0(const BlockQ4_0& blk) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(bytes, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

// q6_K sub-block j (32 elements) of a super-block: quarter k = j % 4 of half j / 4 takes the low
// (k < 2) or high nibble of ql[64·half + 32·(k & 1) + l] and bits 2k..2k+1 of qh[32·half + l];
// value q - 32 (same layout as dequantize_q6_k in quant.cpp).
inline __m256i decode_q6_k(const BlockQ6_K& blk, int j) {
  const int half = j / 4;
  const int k = j % 4;
  const __m256i mask = _mm256_set1_epi8(0x0f);
  __m256i ql =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.ql + 64 * half + 32 * (k & 1)));
  if (k >= 2) ql = _mm256_srli_epi16(ql, 4);
  ql = _mm256_and_si256(ql, mask);
  __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * half));
  qh = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
  qh = _mm256_slli_epi16(qh, 4);  // values <= 3 per byte, so no bits cross into the next byte
  return _mm256_sub_epi8(_mm256_or_si256(ql, qh), _mm256_set1_epi8(32));
}

// Adds Σ w·xq of block (aw = |w|) for NT tokens into acc[t] scaled by scale[t] (8 lanes).
template <int NT>
inline void block_dot(__m256i w, const int8_t* const* xq, int64_t off, const __m256* scale,
                      __m256* acc) {
  const __m256i aw = _mm256_abs_epi8(w);
  for (int t = 0; t < NT; ++t) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + off));
    const __m256i s = dot_u8s8(aw, _mm256_sign_epi8(x, w));
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale[t], acc[t]);
  }
}

// One weight row against NT tokens (q8_0 or q4_0): y_t = Σ_b dw_b · dx_tb · Σ w·xq.
template <typename Block, int NT>
inline void row_q4_q8(const Block* blocks, int64_t n_blocks, const int8_t* const* xq,
                      const float* const* dx, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float dw = half_to_float(blocks[b].d);
    __m256 scale[NT];
    for (int t = 0; t < NT; ++t) scale[t] = _mm256_set1_ps(dw * dx[t][b]);
    if constexpr (sizeof(Block) == sizeof(BlockQ8_0)) {
      block_dot<NT>(decode_q8_0(blocks[b]), xq, b * 32, scale, acc);
    } else {
      block_dot<NT>(decode_q4_0(blocks[b]), xq, b * 32, scale, acc);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]);
}

// q6_K: lanes 0..3 of a sub-block's dot cover elements 0..15 (scale sc[2j]), lanes 4..7 elements
// 16..31 (scale sc[2j+1]), so the per-16 scales become one lane-wise f32 vector.
template <int NT>
inline void row_q6_k(const BlockQ6_K* blocks, int64_t n_super, const int8_t* const* xq,
                     const float* const* dx, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < n_super; ++sb) {
    const BlockQ6_K& blk = blocks[sb];
    const float d = half_to_float(blk.d);
    for (int j = 0; j < 8; ++j) {
      const __m256 sv = _mm256_set_m128(_mm_set1_ps(d * static_cast<float>(blk.scales[2 * j + 1])),
                                        _mm_set1_ps(d * static_cast<float>(blk.scales[2 * j])));
      const int64_t b = sb * 8 + j;  // activation block index
      __m256 scale[NT];
      for (int t = 0; t < NT; ++t) scale[t] = _mm256_mul_ps(sv, _mm256_set1_ps(dx[t][b]));
      block_dot<NT>(decode_q6_k(blk, j), xq, b * 32, scale, acc);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]);
}

template <int NT>
inline void quant_rows_nt(const Matrix& w, const QuantizedActs& xa, int64_t t0, float* y,
                          int64_t ldy, int64_t r0, int64_t r1) {
  const int64_t n_blocks = w.cols / 32;
  const int8_t* xq[NT];
  const float* dx[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = xa.q + (t0 + t) * w.cols;
    dx[t] = xa.d + (t0 + t) * n_blocks;
  }
  // Row stride computed here rather than with Matrix::row(): no inline function shared with the
  // plain object files is compiled with these ISA flags.
  const int64_t stride = w.dtype == DType::Q8_0 ? n_blocks * static_cast<int64_t>(sizeof(BlockQ8_0))
                         : w.dtype == DType::Q4_0
                             ? n_blocks * static_cast<int64_t>(sizeof(BlockQ4_0))
                             : n_blocks / 8 * static_cast<int64_t>(sizeof(BlockQ6_K));
  const auto* base = static_cast<const uint8_t*>(w.data);
  float out[NT];
  for (int64_t r = r0; r < r1; ++r) {
    const void* row = base + r * stride;
    if (w.dtype == DType::Q8_0) {
      row_q4_q8<BlockQ8_0, NT>(static_cast<const BlockQ8_0*>(row), n_blocks, xq, dx, out);
    } else if (w.dtype == DType::Q4_0) {
      row_q4_q8<BlockQ4_0, NT>(static_cast<const BlockQ4_0*>(row), n_blocks, xq, dx, out);
    } else {
      row_q6_k<NT>(static_cast<const BlockQ6_K*>(row), n_blocks / 8, xq, dx, out);
    }
    for (int t = 0; t < NT; ++t) y[(t0 + t) * ldy + r] = out[t];
  }
}

// Rows in chunks of 16 (a chunk's weights stay in L2 while every group of 4 tokens passes over
// them; each group's activations stay in L1), so prefill reads each weight row from memory once.
inline void quant_rows(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                       int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int64_t kRowChunk = 16;
  for (int64_t c0 = r0; c0 < r1; c0 += kRowChunk) {
    const int64_t c1 = c0 + kRowChunk < r1 ? c0 + kRowChunk : r1;
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) quant_rows_nt<4>(w, xa, t0, y, ldy, c0, c1);
    switch (n_tokens - t0) {
      case 3:
        quant_rows_nt<3>(w, xa, t0, y, ldy, c0, c1);
        break;
      case 2:
        quant_rows_nt<2>(w, xa, t0, y, ldy, c0, c1);
        break;
      case 1:
        quant_rows_nt<1>(w, xa, t0, y, ldy, c0, c1);
        break;
      default:
        break;
    }
  }
}

}  // namespace
}  // namespace autoglm::kernels::detail
