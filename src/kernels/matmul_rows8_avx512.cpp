// q4_0 and q8_0 over the Rows8Pairs layout (matrix.h, core/quant_blocks.h) with 512-bit VNNI, for
// any number of tokens. A 64-byte load takes two 32-byte steps of a block, k = 2j and 2j + 1 (q4_0:
// elements 4k..4k+3 and 16+4k..16+4k+3; q8_0: 4k..4k+3), row r's two in lanes 2r and 2r + 1. x's 8
// bytes of those steps, broadcast to every 64-bit lane, line up with them as they are: every
// instruction does twice the work of a 256-bit one, with no permute of x (the Rows8 layout, steps
// in lanes 0-7 and 8-15, took one vpermd per token and step: a fifth of the tile's instructions).
// The two lanes of a row share the block's scales (duplicated pairwise) and are added once, at the
// end. GCC 12's AVX-512 extract intrinsics start from _mm256_undefined_*() and trip
// -Wuninitialized inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cstdint>
#include <cstring>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"
#include "kernels/rows8_avx512.h"

namespace autoglm::kernels::detail {
namespace {

// A token's x for two steps: the 4-byte groups at q (even lanes) and q + 4 (odd lanes).
inline __m512i x_pair(const int8_t* q) {
  int64_t both;
  std::memcpy(&both, q, sizeof both);
  return _mm512_set1_epi64(both);
}

// The block's 8 row scales (f16) as f32, row r's in lanes 2r and 2r + 1.
inline __m512 row_scales(const uint16_t* d, __m512i pair_index) {
  const __m256 s = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)));
  return _mm512_permutexvar_ps(pair_index, _mm512_castps256_ps512(s));
}

// vpdpbusd multiplies unsigned by signed bytes. q4_0 nibbles are unsigned (n - 8 is the weight),
// q8_0 weights w become unsigned as w + 128 (w xor 0x80). The sums start from the offset that
// takes the excess back: -8·Σx for q4_0 (QuantizedActs::q4_offset holds it as two int16 halves),
// -128·Σx = 16 times that for q8_0. In the even lanes only: a row's two lanes are added at the
// end, so the offset must be counted once.
// The offsets are added up once per call (offset_totals, 16 blocks per instruction), so that each
// tile starts its sums with one masked broadcast load per token and block, instead of adding the
// halves in general registers and moving the total into a vector (q4_0), or a vpmaddwd of the
// halves (q8_0), per token and block. q4_0, 5 alternated pairs (kernels_bench, one thread): 16
// tokens 0.95 -> 0.87 ms in the 3 quiet pairs, 512 tokens 30.4 -> 28.9 and 30.3 -> 28.6 ms; the
// model (2 threads, 3 pairs) prefill 232 -> 247, 232 -> 278, 271 -> 262 tokens/s, 16-sequence
// steps 190 -> 191, 185 -> 210, 190 -> 200. q8_0 within the noise (prefill 0.95-1.05x).
// 16 blocks' offsets: each block's two int16 halves added (vpmaddwd by 1), times `scale`.
inline __m512i offset_total16(const int32_t* halves, int16_t scale) {
  return _mm512_madd_epi16(_mm512_loadu_si512(halves), _mm512_set1_epi16(scale));
}

template <typename Block>
const int32_t* offset_totals(const QuantizedActs& xa, int64_t n) {
  constexpr int16_t kScale = sizeof(Block) == sizeof(BlockQ4_0x8) ? 1 : 16;
  auto* out = reinterpret_cast<int32_t*>(scratch_f32(n, 9));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_si512(out + i, offset_total16(xa.q4_offset + i, kScale));
  if (i < n) {  // the last blocks through a zero-padded copy
    int32_t tail[16] = {};
    const auto bytes = static_cast<size_t>(n - i) * sizeof(int32_t);
    std::memcpy(tail, xa.q4_offset + i, bytes);
    _mm512_storeu_si512(tail, offset_total16(tail, kScale));
    std::memcpy(out + i, tail, bytes);
  }
  return out;
}

// A block's sums before its first step: its offset total in the even lanes.
inline __m512i offset_init(const int32_t* total) {
  return _mm512_maskz_set1_epi32(0x5555, *total);
}

template <typename Block>
struct QTile {
  const Block* group;  // the first group's block 0
  int64_t n_blocks;    // blocks per row (also from one group to the next in memory)
  const QuantizedActs* xa;
  const int32_t* offsets;  // offset_totals of xa
  int64_t t0;              // the first token
  float* y;                // the first token's output for the first group's row 0
  int64_t ldy;             // from one token's outputs to the next
  const Block* next;       // weights to prefetch into L2, at the same offsets as group; or null
  int64_t group_stride = n_blocks;  // blocks from one group of the tile to the next
  int64_t y_group = 8;              // from one group's outputs to the next
};

// sum[g][t] += the block's 64-byte piece j of each group times each token's x: the low nibbles'
// products into sum, the high nibbles' into sum_hi. Two sums of two vpdpbusd each per block, not
// one of four: a 4-deep chain of their latency held the 2-group x 4-token tile back (one thread,
// 512 tokens: 37.3 -> 33.7 ms; q8_0 gained nothing from the same split).
template <int NG, int NT>
__attribute__((always_inline)) inline void q4_piece(const QTile<BlockQ4_0x8>& a, int64_t b, int j,
                                                    const int8_t* xq, int64_t x_step,
                                                    __m512i (&sum)[NG][NT],
                                                    __m512i (&sum_hi)[NG][NT]) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  __m512i lo[NG], hi[NG];
  for (int g = 0; g < NG; ++g) {
    const __m512i v = _mm512_loadu_si512(a.group[g * a.group_stride + b].qs + 64 * j);
    lo[g] = _mm512_and_si512(v, low4);
    hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
  }
  for (int t = 0; t < NT; ++t) {
    const __m512i x_lo = x_pair(xq + t * x_step + 8 * j);
    const __m512i x_hi = x_pair(xq + t * x_step + 16 + 8 * j);
    for (int g = 0; g < NG; ++g) {
      sum[g][t] = _mm512_dpbusd_epi32(sum[g][t], lo[g], x_lo);
      sum_hi[g][t] = _mm512_dpbusd_epi32(sum_hi[g][t], hi[g], x_hi);
    }
  }
}

template <int NG, int NT>
__attribute__((always_inline)) inline void q8_piece(const QTile<BlockQ8_0x8>& a, int64_t b, int j,
                                                    const int8_t* xq, int64_t x_step,
                                                    __m512i (&sum)[NG][NT]) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i u[NG];
  for (int g = 0; g < NG; ++g)
    u[g] = _mm512_xor_si512(_mm512_loadu_si512(a.group[g * a.group_stride + b].qs + 64 * j), flip);
  for (int t = 0; t < NT; ++t) {
    const __m512i xv = x_pair(xq + t * x_step + 8 * j);
    for (int g = 0; g < NG; ++g) sum[g][t] = _mm512_dpbusd_epi32(sum[g][t], u[g], xv);
  }
}

// Decode reads each group's blocks in order, 4 streams side by side (for_decode_streams). The
// hardware prefetchers alone left a thread waiting on each line (one thread from DRAM: 18-22 GB/s,
// what compute and memory take one after the other); prefetching each stream's block about 860
// bytes ahead into L1 overlaps them (25-27 GB/s; 2 threads in the model: 59-60% -> 70-75% of the
// measured bandwidth). 576 bytes gave about the same, 288-432 and 2304 less, and prefetching into
// L2 (T1) less too. Near a group's end the address runs into the stream's next group, or past the
// matrix: a prefetch never faults. (The one-token tile left over from several tokens prefetches
// too: its lines are already in cache, which costs a few instructions.)
template <typename Block>
constexpr size_t kDecodeAheadBlocks = (864 + sizeof(Block) - 1) / sizeof(Block);

// y[t0 + t, 8g..8g+7] for NG groups and NT tokens.
template <typename Block, int NG, int NT>
void q_tile(const QTile<Block>& a) {
  const int64_t nb = a.n_blocks;
  const int64_t x_step = nb * kQK;  // from one token's activations to the next's
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    if (a.next != nullptr) {
      for (int g = 0; g < NG; ++g) {
        const char* line = reinterpret_cast<const char*>(a.next + g * a.group_stride + b);
        for (size_t off = 0; off < sizeof(BlockQ4_0x8); off += 64)
          _mm_prefetch(line + off, _MM_HINT_T1);
      }
    }
    if constexpr (NT == 1) {
      for (int g = 0; g < NG; ++g) {
        // In integers: the address may lie past the matrix, where no pointer may point.
        const uintptr_t ahead = reinterpret_cast<uintptr_t>(a.group + g * a.group_stride + b) +
                                kDecodeAheadBlocks<Block> * sizeof(Block);
        for (size_t off = 0; off < sizeof(Block); off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(ahead + off), _MM_HINT_T0);
      }
    }
    const int8_t* xq = a.xa->q + (a.t0 * nb + b) * kQK;  // token t0's block b
    __m512i sum[NG][NT];
    for (int t = 0; t < NT; ++t) {
      const __m512i init = offset_init(a.offsets + (a.t0 + t) * nb + b);
      for (int g = 0; g < NG; ++g) sum[g][t] = init;
    }
    if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
      __m512i sum_hi[NG][NT];
      for (int g = 0; g < NG; ++g) {
        for (int t = 0; t < NT; ++t) sum_hi[g][t] = _mm512_setzero_si512();
      }
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) q4_piece<NG, NT>(a, b, j, xq, x_step, sum, sum_hi);  // 2j, 2j + 1
      for (int g = 0; g < NG; ++g) {
        for (int t = 0; t < NT; ++t) sum[g][t] = _mm512_add_epi32(sum[g][t], sum_hi[g][t]);
      }
    } else {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) q8_piece<NG, NT>(a, b, j, xq, x_step, sum);
    }
    for (int g = 0; g < NG; ++g) {
      const __m512 dw = row_scales(a.group[g * a.group_stride + b].d, pair_index);
      for (int t = 0; t < NT; ++t) {
        const __m512 dx = _mm512_set1_ps(a.xa->d[(a.t0 + t) * nb + b]);
        acc[g][t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[g][t]), _mm512_mul_ps(dw, dx), acc[g][t]);
      }
    }
  }
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) store_sum_of_pairs(a.y + t * a.ldy + a.y_group * g, acc[g][t]);
  }
}

// One token: the rows [r0, r1) in long weight streams (for_decode_streams).
template <typename Block>
void decode_rows(const Matrix& w, const QuantizedActs& xa, float* y, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / kQK;
  const int32_t* offsets = offset_totals<Block>(xa, nb);
  const auto* first = static_cast<const Block*>(w.data) + (r0 / 8) * nb;
  for_decode_streams((r1 - r0) / 8, [&]<int NG>(int64_t g, int64_t stride) {
    QTile<Block> a{first + g * nb, nb, &xa, offsets, 0, y + r0 + 8 * g, 0, nullptr};
    a.group_stride = stride * nb;
    a.y_group = 8 * stride;
    q_tile<Block, NG, 1>(a);
  });
}

// Tokens [0, n_tokens) of a in tiles of 4 (kernels/rows8_avx512.h).
template <typename Block, int NG>
void token_tiles(const QTile<Block>& a, int64_t n_tokens) {
  for_token_tiles(n_tokens, [&]<int NT>(int64_t t, bool prefetching) {
    QTile<Block> b = a;
    b.t0 += t;
    b.y += t * a.ldy;
    b.next = prefetching ? a.next : nullptr;
    q_tile<Block, NG, NT>(b);
  });
}

// Several tokens: chunks of 64 rows (they stay in L2 while every tile of 4 tokens passes over
// them), 2 groups x 4 tokens per tile; the second tile prefetches the next chunk.
template <typename Block>
void token_rows(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y, int64_t ldy,
                int64_t r0, int64_t r1) {
  constexpr int64_t kRowChunk = 64;
  const int64_t nb = w.cols / kQK;
  const auto* groups = static_cast<const Block*>(w.data);
  const int32_t* offsets = offset_totals<Block>(xa, n_tokens * nb);
  for (int64_t c0 = r0; c0 < r1; c0 += kRowChunk) {
    const int64_t c1 = c0 + kRowChunk < r1 ? c0 + kRowChunk : r1;
    for (int64_t r = c0; r < c1;) {
      const Block* g = groups + (r / 8) * nb;
      const Block* next = c1 < r1 ? g + (kRowChunk / 8) * nb : nullptr;
      const QTile<Block> a{g, nb, &xa, offsets, 0, y + r, ldy, next};
      if (r + 16 <= c1) {
        token_tiles<Block, 2>(a, n_tokens);
        r += 16;
      } else {
        token_tiles<Block, 1>(a, n_tokens);
        r += 8;
      }
    }
  }
}

}  // namespace

void q_rows8_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                    int64_t ldy, int64_t r0, int64_t r1) {
  if (w.dtype == DType::Q4_0) {
    if (n_tokens == 1) return decode_rows<BlockQ4_0x8>(w, xa, y, r0, r1);
    return token_rows<BlockQ4_0x8>(w, xa, n_tokens, y, ldy, r0, r1);
  }
  if (n_tokens == 1) return decode_rows<BlockQ8_0x8>(w, xa, y, r0, r1);
  token_rows<BlockQ8_0x8>(w, xa, n_tokens, y, ldy, r0, r1);
}

}  // namespace autoglm::kernels::detail
