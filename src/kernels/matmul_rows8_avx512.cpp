// q4_0 and q8_0 over the Rows8Pairs layout (matrix.h, core/quant_blocks.h) with 512-bit VNNI, for
// any number of tokens. Blocks go in pairs: a 64-byte load takes one 4-byte step of both blocks of
// a pair for all 8 rows (row r, block s in lane 2r + s; q4_0: elements 4k..4k+3 in the low nibbles,
// 16+4k..16+4k+3 in the high ones), and x's same step of both blocks, broadcast to every 64-bit
// lane (detail::arrange_acts), lines up with it as it is: every instruction does twice the work of
// a 256-bit one, with no permute of x. Each lane's sum is one row's block sum, so one convert,
// multiply and FMA per 16 lanes apply both blocks' scales; a row's two lanes are added once, at
// the end. An odd last block holds each row's steps 2j and 2j + 1 in its two lanes instead.
// Pairing the blocks (before: every block alone, as the odd one is) took the scale step from one
// per block to one per pair, and its permute of the scales away. kernels_bench, one thread,
// alternated, medians of 3: q8_0 16 tokens 1.01 -> 0.77 ms, 512 tokens 32.6 -> 25.5 ms; q4_0 16
// tokens 0.82 -> 0.68 ms, 512 tokens 27.3 -> 24.1 ms; q4_0 decode from L2 62 -> 77 GB/s, from
// DRAM within the noise. The model (2 threads), prefill 512: q4_0 235 -> 278 and 271 -> 300,
// q8_0 220 -> 264 and 235 -> 265 tokens/s; decode q4_0 0.92-1.00x (16 alternated pairs, median
// 0.97x), q8_0 0.84-1.02x (6 pairs, median 0.96x): its speed is the memory's.
// GCC 12's AVX-512 extract intrinsics start from _mm256_undefined_*() and trip -Wuninitialized
// inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cstdint>
#include <cstring>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"
#include "kernels/prefetch_simd.h"
#include "kernels/rows8_avx512.h"

namespace autoglm::kernels::detail {
namespace {

// 8 bytes at p broadcast to every 64-bit lane: a token's x for two steps (two 4-byte groups of
// one block, or the same group of a block pair), or two blocks' scales or offsets.
inline __m512i broadcast8(const void* p) {
  int64_t both;
  std::memcpy(&both, p, sizeof both);
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
// -128·Σx = 16 times that for q8_0. A pair's lanes each start from their own block's offset; a
// lone block's only in the even lanes, since a row's two lanes hold one block and are added.
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

// The totals of n blocks' offset halves, in the halves' order (the arrangement's).
template <typename Block>
const int32_t* offset_totals(const int32_t* halves, int64_t n) {
  constexpr int16_t kScale = sizeof(Block) == sizeof(BlockQ4_0x8) ? 1 : 16;
  auto* out = reinterpret_cast<int32_t*>(scratch_f32(n, 9));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_si512(out + i, offset_total16(halves + i, kScale));
  if (i < n) {  // the last blocks through a zero-padded copy
    int32_t tail[16] = {};
    const auto bytes = static_cast<size_t>(n - i) * sizeof(int32_t);
    std::memcpy(tail, halves + i, bytes);
    _mm512_storeu_si512(tail, offset_total16(tail, kScale));
    std::memcpy(out + i, tail, bytes);
  }
  return out;
}

// A lone block's sums before its first step: its offset total in the even lanes.
inline __m512i offset_init(const int32_t* total) {
  return _mm512_maskz_set1_epi32(0x5555, *total);
}

// The activations come in the kernels' arrangement (detail::arrange_acts): a tile of tokens
// t0.. finds its step at block b at t0 * n_blocks + b * (its tokens) blocks from the start, each of
// its tokens' share of the step 2 blocks (a pair) or 1 (a lone last block) further, so that every
// address of a step is a constant offset from one pointer. (Each token's blocks in a row of their
// own, 4 tokens apart by a row, took registers enough for the tile's pointers to spill:
// kernel_ab, one thread, in cache, B/A time against an A/A run's: 16 tokens q4_0 0.915 / 0.962,
// q8_0 0.953 / 0.983; 512 tokens q4_0 0.845, q8_0 0.906; 16 tokens from DRAM on 2 threads q4_0
// 0.907, q8_0 0.952.)
static_assert(kTileTokens == kActGroupTokens, "a tile's tokens are a group of the arrangement");

template <typename Block>
struct QTile {
  const Block* group;               // the first group's block 0
  int64_t n_blocks;                 // blocks per row (also from one group to the next in memory)
  const int8_t* q;                  // the activations' arranged q
  const float* d;                   // and d
  const int32_t* offsets;           // offset_totals of their q4_offset
  float* y;                         // token 0's output for the first group's row 0
  int64_t ldy;                      // from one token's outputs to the next
  int64_t group_stride = n_blocks;  // blocks from one group of the tile to the next
  int64_t y_group = 8;              // from one group's outputs to the next
};

// Which tokens a tile takes, and what it prefetches: passed beside a QTile, not in a copy of it.
// A copy of a QTile just written field by field reads it back with 64-byte loads, which wait for
// those stores to reach the cache (no forwarding from several stores into one load): 97% of
// token_rows' own samples sat on that copy, once per 4 tiles at 16 tokens. Without it, alternated
// (the model, 2 threads): prefill 512 q8_0 290 -> 339 and 302 -> 339, q4_0 322 -> 342 and
// 316 -> 334 tokens/s; 16-sequence steps q8_0 165 -> 181 and 170 -> 177, q4_0 219 -> 248 and
// 238 -> 245 tokens/s.
template <typename Block>
struct TileTokens {
  int64_t t0;           // the first token
  const Block* next;    // weights to prefetch into L2, at the same offsets as group; or null
  PrefetchShare share;  // which steps of next this tile prefetches
};

// A step of a tile covers a block pair (Pair: blocks b and b + 1, one unit of the Rows8Pairs
// layout) or an odd last block alone. In a pair, each 64-bit lane holds one row of one block
// (row r, block b + s in lane 2r + s), so its integer sums go through the scale step as they are:
// one convert, multiply and FMA per two blocks, and the 16 scales convert with no permute. A lone
// block holds each row's two steps in its two lanes: they share the row's scale (duplicated by a
// permute) and, in their sums, the block's offset (in the even lanes only).
template <bool Pair>
constexpr int kQ4Pieces = Pair ? 4 : 2;  // 64-byte loads of a step's quants
template <bool Pair>
constexpr int kQ8Pieces = Pair ? 8 : 4;

// Group g's 64-byte piece j of the step at block b.
template <bool Pair, typename Block>
inline const uint8_t* piece(const QTile<Block>& a, int g, int64_t b, int j) {
  const auto* step = reinterpret_cast<const uint8_t*>(a.group + g * a.group_stride + b);
  return step + (Pair ? 32 : 16) + 64 * j;  // after the scales
}

// In one-token tiles (decode), q4_0's high nibbles enter vpdpbusd in place (byte & 0xf0: 16
// times the nibble), which saves a shift per group and piece: 3 vector instructions before the
// two vpdpbusd, not 4. The step's total is then 16 times the block sum (16·sum + sum_hi,
// step_total), and the tile scales its results back by 1/16 at the end. Both scalings are by
// powers of 2 and the totals stay exact in f32 (|16·sum + sum_hi| <= 16·128·(15·32 + 8·32) < 2^21
// for a block), so the results are the same bits (barring f32 overflow or underflow). The model,
// 2 threads, alternated: decode 63.1 -> 64.7, 61.2 -> 64.1, 62.1 -> 65.3 tokens/s; with 4 tokens
// per tile too, prompts and batches lost 2-3% (prefill 351 / 338, 326 / 333, 359 / 329 tokens/s).
template <int NT>
constexpr bool kQ4HighInPlace = NT == 1;
constexpr float kQ4HighScale = 16.0f;

// GCC folds a piece's load into both of the instructions that take its nibbles apart (the two
// masks of a one-token tile, the mask and the shift of a several-token one), so that each piece
// is read twice; half the pieces straddle two cache lines (a pair step is 288 bytes, its pieces
// start 32 bytes in), and Zen 5 then spent more on the loads than on the arithmetic in decode.
// Making the loaded value opaque to the compiler keeps one load. kernel_ab, one thread, in cache,
// B/A time (an A/A run: 0.99-1.00): decode 0.776 and 0.790 (104.5 -> 134.8 GB/s); 16 tokens 0.987,
// 0.988; 512 tokens 0.973. With one load, pieces moved to 64-byte boundaries (a test that read the
// wrong bytes) gained nothing more (1.028, 1.035).
// (The emulated build's __m512i is a struct, which no register constraint takes; its loads are
// not the point there.)
inline void opaque([[maybe_unused]] __m512i& v) {
#if !defined(AUTOGLM_EMULATE_AVX512)
  asm("" : "+v"(v));
#endif
}

// sum[g][t] += piece j of each group times each token's x. One-token tiles put the high nibbles'
// products (16 times them: kQ4HighInPlace) into sum_hi; several-token tiles add both into sum,
// since their 2 groups x 4 tokens of chains give the vpdpbusd latency enough to overlap, and a
// second sum cost a zeroing and an add per group, token and step. Two sums there before (when
// every block went alone, one sum had lost: one thread, 512 tokens, 37.3 -> 33.7 ms with two);
// kernels_bench, one thread, 11 alternated pairs: 16 tokens 0.95-1.04x the time (median 0.98x,
// 9 faster), 512 tokens 0.90-1.05x (median 0.97x, 8 faster); q8_0 the same way: within the
// noise, so it keeps its two. x's low-nibble elements of the piece lie at 8j; its
// high ones (elements 16 on) 16 bytes further in a lone block, 32 in a pair (detail::arrange_acts).
template <bool Pair, int NG, int NT>
__attribute__((always_inline)) inline void q4_piece(const QTile<BlockQ4_0x8>& a, int64_t b, int j,
                                                    const int8_t* xq, int64_t x_step,
                                                    __m512i (&sum)[NG][NT],
                                                    __m512i (&sum_hi)[NG][NT]) {
  constexpr int kHigh = Pair ? 32 : 16;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i high4 = _mm512_set1_epi8(static_cast<char>(0xf0));
  __m512i lo[NG], hi[NG];
  for (int g = 0; g < NG; ++g) {
    __m512i v = _mm512_loadu_si512(piece<Pair>(a, g, b, j));
    opaque(v);  // one load for both masks
    lo[g] = _mm512_and_si512(v, low4);
    if constexpr (kQ4HighInPlace<NT>)
      hi[g] = _mm512_and_si512(v, high4);  // 16 times the high nibble
    else
      hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
  }
  for (int t = 0; t < NT; ++t) {
    const __m512i x_lo = broadcast8(xq + t * x_step + 8 * j);
    const __m512i x_hi = broadcast8(xq + t * x_step + kHigh + 8 * j);
    for (int g = 0; g < NG; ++g) {
      sum[g][t] = _mm512_dpbusd_epi32(sum[g][t], lo[g], x_lo);
      __m512i& high_sum = kQ4HighInPlace<NT> ? sum_hi[g][t] : sum[g][t];
      high_sum = _mm512_dpbusd_epi32(high_sum, hi[g], x_hi);
    }
  }
}

// The same for q8_0: even pieces into sum, odd ones into sum_hi (a pair's 8 pieces in one chain
// would wait on its latency as q4_0's did).
template <bool Pair, int NG, int NT>
__attribute__((always_inline)) inline void q8_piece(const QTile<BlockQ8_0x8>& a, int64_t b, int j,
                                                    const int8_t* xq, int64_t x_step,
                                                    __m512i (&sum)[NG][NT],
                                                    __m512i (&sum_hi)[NG][NT]) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i u[NG];
  for (int g = 0; g < NG; ++g)
    u[g] = _mm512_xor_si512(_mm512_loadu_si512(piece<Pair>(a, g, b, j)), flip);
  for (int t = 0; t < NT; ++t) {
    const __m512i xv = broadcast8(xq + t * x_step + 8 * j);
    for (int g = 0; g < NG; ++g) {
      __m512i& s = j % 2 == 0 ? sum[g][t] : sum_hi[g][t];
      s = _mm512_dpbusd_epi32(s, u[g], xv);
    }
  }
}

// Decode reads each group's blocks in order, 4 streams side by side (for_decode_streams). The
// hardware prefetchers alone left a thread waiting on each line (one thread from DRAM: 18-22 GB/s,
// what compute and memory take one after the other); prefetching each stream's block about 860
// bytes ahead into L1 overlaps them (25-27 GB/s; 2 threads in the model: 59-60% -> 70-75% of the
// measured bandwidth). 576 bytes gave about the same, 288-432 and 2304 less, and prefetching into
// L2 (T1) less too. That was Zen 5; on Zen 4 (32 KiB L1) L2 is the faster level by far, and the
// same distance about the best: one thread from DRAM, 3 alternated rounds (kernels_bench
// bm_matmul_dram, GB/s, q8_0 / q4_0): L1 15-21 / 14-21, L2 21-28 / 20-24, no prefetch 20-25 /
// 20-23, 1728 bytes into L2 22-25 / 20-22, NTA 15-21 / 15-20, against a 17-25 GB/s probe; so the
// level is the CPU's (kernels::prefetch_level). Near a group's end the address runs into the
// stream's next group, or past the matrix: a prefetch never faults. (The one-token tile left over
// from several tokens prefetches too: its lines are already in cache, which costs a few
// instructions.)
// Since q4_0 decode loads each piece once (opaque), its compute leaves more room, and on Zen 5 (L1
// prefetches) 5 of its steps ahead (1440 bytes) read faster from DRAM: kernel_ab, 2 threads,
// 600 pairs, B/A time with the probe at 63-73 GB/s: 1440 bytes 0.943-0.948 (5 runs), 1296
// 0.944-0.965 (8), 1728 0.955-1.023 (11, median 0.973), 1152 0.981-0.994 (4), 3072 1.16; an A/A
// run gives 0.99-1.00. When the memory read faster still (probe 72-79 GB/s), where the kernel
// already streamed at 88-99% of the probe, 1440 bytes gave 0.995-1.018 (9 runs). q8_0 at 1632
// bytes against 1088: 0.995-1.007, so it keeps its distance.
template <typename Block, _mm_hint Ahead>
constexpr size_t kDecodeAheadBytes = sizeof(Block) == sizeof(BlockQ4_0x8) && Ahead == _MM_HINT_T0
                                         ? 1440
                                         : 864;
template <typename Block, _mm_hint Ahead>
constexpr size_t kDecodeAheadBlocks = (kDecodeAheadBytes<Block, Ahead> + sizeof(Block) - 1) /
                                      sizeof(Block);

// q8_0's several-token tiles: the first tile of a pass (the one that prefetches nothing of the
// next pass) also prefetches its own pass's weights that far ahead into L1, as decode does where
// the CPU's level is L1 (kernels::prefetch_level: Zen 5, where this was measured). Where it is L2
// (Zen 4), the tiles of the pass before already prefetched those lines there, so it does not. The
// next pass's prefetches into L2 did not keep up on Zen 5: one thread, 16 tokens from DRAM, read
// 11-14 GB/s (342-427 GFLOP/s against 670 in cache), where q8_0 needs 22 GB/s a core at that
// compute rate. kernel_ab, 16 tokens from DRAM, B/A time: one thread 0.896, two 0.961 and 0.949;
// 512 tokens 0.987. The model, 2 threads, 16-sequence steps alternated (tokens/s): 230.0 -> 244.6,
// 218.5 -> 234.0, 219.6 -> 233.3, 214.2 -> 227.9;
// prefill 512 312.6 -> 329.5, 315.0 -> 337.4, 322.1 -> 330.1, 324.1 -> 322.2. Not q4_0, with half
// the bytes per multiply-add: its kernel gave 1.002-1.019, and 64-token prompts in the model lost
// 7-24% (4 alternated pairs).
template <typename Block, int NT, _mm_hint Ahead>
constexpr bool kLeadPrefetch = NT > 1 &&
                               sizeof(Block) == sizeof(BlockQ8_0x8) && Ahead == _MM_HINT_T0;

// Prefetches of one step: the next pass's weights into L2 (next); decode's streams, or a leading
// tile's own weights (lead: kLeadPrefetch), ahead into the level Ahead names.
template <typename Block, int NG, int NT, bool Pair, _mm_hint Ahead>
__attribute__((always_inline)) inline void prefetch_step(const QTile<Block>& a, const Block* next,
                                                         int64_t b, bool lead) {
  constexpr size_t kBytes = (Pair ? 2 : 1) * sizeof(Block);
  if (next != nullptr) {
    for (int g = 0; g < NG; ++g) {
      const char* line = reinterpret_cast<const char*>(next + g * a.group_stride + b);
      for (size_t off = 0; off < kBytes; off += 64) _mm_prefetch(line + off, _MM_HINT_T1);
    }
  }
  if (NT == 1 || lead) {
    for (int g = 0; g < NG; ++g) {
      // In integers: the address may lie past the matrix, where no pointer may point.
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(a.group + g * a.group_stride + b) +
                              kDecodeAheadBlocks<Block, Ahead> * sizeof(Block);
      for (size_t off = 0; off < kBytes; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(ahead + off), Ahead);
    }
  }
}

// The integer total of a step: the two sums, q4_0's low one scaled to match its high one in
// one-token tiles (kQ4HighInPlace).
template <typename Block, int NT>
__attribute__((always_inline)) inline __m512i step_total(__m512i sum, __m512i sum_hi) {
  if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8) && kQ4HighInPlace<NT>)
    return _mm512_add_epi32(_mm512_slli_epi32(sum, 4), sum_hi);
  return _mm512_add_epi32(sum, sum_hi);
}

// acc[g][t] += the step at block b (a pair, or a lone last block) for NG groups and NT tokens.
template <typename Block, int NG, int NT, bool Pair, _mm_hint Ahead>
__attribute__((always_inline)) inline void q_step(const QTile<Block>& a, TileTokens<Block> tt,
                                                  bool prefetching, int64_t b,
                                                  __m512 (&acc)[NG][NT]) {
  constexpr int64_t kWidth = Pair ? 2 : 1;         // blocks per token in the step
  constexpr int64_t x_step = kWidth * kQK;         // from one token's activations to the next's
  const int64_t at = tt.t0 * a.n_blocks + b * NT;  // token t0's step, in blocks
  const bool lead = kLeadPrefetch<Block, NT, Ahead> && !tt.share.on;
  prefetch_step<Block, NG, NT, Pair, Ahead>(a, prefetching ? tt.next : nullptr, b, lead);
  const int8_t* xq = a.q + at * kQK;
  __m512i sum[NG][NT], sum_hi[NG][NT];
  for (int t = 0; t < NT; ++t) {
    const int32_t* total = a.offsets + at + t * kWidth;
    const __m512i init = Pair ? broadcast8(total) : offset_init(total);
    for (int g = 0; g < NG; ++g) {
      sum[g][t] = init;
      sum_hi[g][t] = _mm512_setzero_si512();
    }
  }
  if constexpr (sizeof(Block) == sizeof(BlockQ4_0x8)) {
#pragma GCC unroll 4
    for (int j = 0; j < kQ4Pieces<Pair>; ++j)
      q4_piece<Pair, NG, NT>(a, b, j, xq, x_step, sum, sum_hi);
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < kQ8Pieces<Pair>; ++j)
      q8_piece<Pair, NG, NT>(a, b, j, xq, x_step, sum, sum_hi);
  }
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  for (int g = 0; g < NG; ++g) {
    const Block& first = a.group[g * a.group_stride + b];
    const __m512 dw = Pair ? _mm512_cvtph_ps(_mm256_loadu_si256(
                                 reinterpret_cast<const __m256i*>(&first)))  // 16 scales
                           : row_scales(first.d, pair_index);
    for (int t = 0; t < NT; ++t) {
      const float* dx_at = a.d + at + t * kWidth;
      const __m512 dx = Pair ? _mm512_castsi512_ps(broadcast8(dx_at)) : _mm512_set1_ps(*dx_at);
      const __m512i total = step_total<Block, NT>(sum[g][t], sum_hi[g][t]);
      acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_mul_ps(dw, dx), acc[g][t]);
    }
  }
}

// y[t0 + t, 8g..8g+7] for NG groups and NT tokens: the block pairs, then an odd last block.
// Ahead: where one-token tiles prefetch their streams (several-token tiles read theirs from L2).
template <typename Block, int NG, int NT, _mm_hint Ahead = _MM_HINT_T1>
void q_tile(const QTile<Block>& a, TileTokens<Block> tt) {
  const int64_t nb = a.n_blocks;
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  int64_t b = 0;
  PrefetchTurns turns(tt.share);
  for (; b + 2 <= nb; b += 2) q_step<Block, NG, NT, true, Ahead>(a, tt, turns.next(), b, acc);
  if (b < nb) q_step<Block, NG, NT, false, Ahead>(a, tt, turns.next(), b, acc);
  float* y = a.y + tt.t0 * a.ldy;
  const __m512 unscale = _mm512_set1_ps(
      sizeof(Block) == sizeof(BlockQ4_0x8) && kQ4HighInPlace<NT> ? 1.0f / kQ4HighScale : 1.0f);
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t)
      store_sum_of_pairs(y + t * a.ldy + a.y_group * g, _mm512_mul_ps(acc[g][t], unscale));
  }
}

// xa in the kernels' arrangement: the caller's (QuantizedActs::arranged), else arranged here.
inline QuantizedActs::Arranged arranged_acts(const QuantizedActs& xa, int64_t n_tokens,
                                             int64_t cols) {
  if (xa.arranged.q != nullptr) return xa.arranged;
  const int64_t n_blocks = n_tokens * cols / kQK;
  auto* q = reinterpret_cast<int8_t*>(scratch_f32((n_tokens * cols + 3) / 4, 10));
  float* d = scratch_f32(n_blocks, 12);
  auto* offsets = reinterpret_cast<int32_t*>(scratch_f32(n_blocks, 13));
  arrange_acts(xa, 0, n_tokens, n_tokens, cols, q, d, offsets);
  return {q, d, offsets};
}

// One token: the rows [r0, r1) in long weight streams (for_decode_streams), each prefetched into
// the level Ahead names.
template <typename Block, _mm_hint Ahead>
void decode_rows(const Matrix& w, const QuantizedActs& xa, float* y, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / kQK;
  const QuantizedActs::Arranged x = arranged_acts(xa, 1, w.cols);
  const int32_t* offsets = offset_totals<Block>(x.q4_offset, nb);
  const auto* first = static_cast<const Block*>(w.data) + (r0 / 8) * nb;
  for_decode_streams((r1 - r0) / 8, [&]<int NG>(int64_t g, int64_t stride) {
    QTile<Block> a{first + g * nb, nb, x.q, x.d, offsets, y + r0 + 8 * g, 0};
    a.group_stride = stride * nb;
    a.y_group = 8 * stride;
    q_tile<Block, NG, 1, Ahead>(a, {0, nullptr, {}});
  });
}

// Tokens [0, n_tokens) of a in tiles of 4 (kernels/rows8_avx512.h).
template <typename Block, int NG, _mm_hint Ahead>
void token_tiles(const QTile<Block>& a, const Block* next, int64_t n_tokens) {
  // q8_0 spreads its prefetches over the tiles (rows8_avx512.h); q4_0, with half the bytes per
  // pass and more work per byte, lost by it. The model, 2 threads, alternated: 16-sequence steps
  // q8_0 188 -> 221, 188 -> 214, 174 -> 213, 181 -> 223 tokens/s; q4_0 250 -> 233, 259 -> 252,
  // 255 -> 234, 260 -> 256.
  constexpr bool kSpread = sizeof(Block) == sizeof(BlockQ8_0x8);
  for_token_tiles(n_tokens, kSpread, [&]<int NT>(int64_t t, PrefetchShare share) {
    q_tile<Block, NG, NT, Ahead>(a, {t, next, share});
  });
}

// Several tokens: chunks of 64 rows (they stay in L2 while every tile of 4 tokens passes over
// them), 2 groups x 4 tokens per tile; the tiles after the first prefetch the next chunk, and
// those of the last chunk the first one from next_rows (the rows this thread runs after these,
// KernelTable::matmul_rows_quantized_then), which otherwise started cold. Timed call by call in
// the model, alternated (q4_0, 16 tokens, 4 runs, B/A time): 2048 rows (o, down) 0.912-0.978,
// gate|up 0.961-1.008; 16-sequence steps 1.04x (12 alternated pairs, 11 faster). Ahead: where
// q8_0's first tile of a pass prefetches its own weights (kLeadPrefetch), and where a one-token
// tile left over after the tiles of 4 prefetches its streams.
template <typename Block, _mm_hint Ahead = _MM_HINT_T1>
void token_rows(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y, int64_t ldy,
                int64_t r0, int64_t r1, int64_t next_rows) {
  constexpr int64_t kRowChunk = 64;
  // Tiles that prefetch their own pass as they go (kLeadPrefetch: q8_0 on Zen 5) start the next
  // range warm already: there the next range's prefetch gave 16-sequence steps 0.85-1.04x (median
  // 0.985, 8 alternated pairs).
  constexpr bool kWarmNextRange = !kLeadPrefetch<Block, 4, Ahead>;
  const int64_t nb = w.cols / kQK;
  const auto* groups = static_cast<const Block*>(w.data);
  const QuantizedActs::Arranged x = arranged_acts(xa, n_tokens, w.cols);
  const int32_t* offsets = offset_totals<Block>(x.q4_offset, n_tokens * nb);
  for (int64_t c0 = r0; c0 < r1; c0 += kRowChunk) {
    const int64_t c1 = c0 + kRowChunk < r1 ? c0 + kRowChunk : r1;
    for (int64_t r = c0; r < c1;) {
      const Block* g = groups + (r / 8) * nb;
      // The same rows of the next chunk: of this range, or of the one from next_rows.
      const int64_t next_row =
          c1 < r1 ? r + kRowChunk : (kWarmNextRange ? next_rows + (r - c0) : w.rows);
      const Block* next = next_row + 16 <= w.rows ? groups + (next_row / 8) * nb : nullptr;
      const QTile<Block> a{g, nb, x.q, x.d, offsets, y + r, ldy};
      if (r + 16 <= c1) {
        token_tiles<Block, 2, Ahead>(a, next, n_tokens);
        r += 16;
      } else {
        token_tiles<Block, 1, Ahead>(a, next, n_tokens);
        r += 8;
      }
    }
  }
}

// Decode in the prefetch level of the moment (with_prefetch_hint).
template <typename Block>
void decode_rows(const Matrix& w, const QuantizedActs& xa, float* y, int64_t r0, int64_t r1) {
  with_prefetch_hint([&]<_mm_hint Ahead>() { decode_rows<Block, Ahead>(w, xa, y, r0, r1); });
}

}  // namespace

void q_rows8_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                    int64_t ldy, int64_t r0, int64_t r1, int64_t next) {
  if (w.dtype == DType::Q4_0) {
    if (n_tokens == 1) return decode_rows<BlockQ4_0x8>(w, xa, y, r0, r1);
    return token_rows<BlockQ4_0x8>(w, xa, n_tokens, y, ldy, r0, r1, next);
  }
  if (n_tokens == 1) return decode_rows<BlockQ8_0x8>(w, xa, y, r0, r1);
  with_prefetch_hint([&]<_mm_hint Ahead>() {
    token_rows<BlockQ8_0x8, Ahead>(w, xa, n_tokens, y, ldy, r0, r1, next);
  });
}

}  // namespace autoglm::kernels::detail
