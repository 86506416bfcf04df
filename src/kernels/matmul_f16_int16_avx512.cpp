// f16 weights (Rows8Pairs) times kInt16MinTokens tokens or more in 16-bit integers
// (Matrix::x_as_int16), with 512-bit VNNI vpdpwssd: 32 multiply-adds per instruction where an f32
// FMA does 16, at the same rate on Zen 5 (2 a cycle each; f16 has no arithmetic of its own there).
// - x: per token, blocks of 32 columns rounded to integers of at most 8191 in magnitude, with an
//   f32 scale d = amax / 8191 (|x - d·q| <= d/2: 2^-14 of the block's largest, where bf16
//   rounding moves each element by up to 2^-9 of itself). An infinity or NaN in x leaves the call
//   to the f32 kernel.
// - weights: each pass's 6 groups (48 rows) converted once per chunk of tokens into this thread's
//   scratch, each row's block of 32 as integers times a power of two 2^(E - 28), E the largest
//   biased f16 exponent of the block: the block's largest weights (within 2^3 of it) keep every
//   bit, the smaller ones are rounded to 2^-14 of the largest (half of f16's own step there
//   or less).
// A 32-bit lane sums 16 products of a block (8 lines, 2 each), at most 16 · 16376 · 8191 < 2^31
// (weights at most 2047 · 8), so the integer sums are exact; each block's sum then goes through
// one convert and one FMA with the two scales' product. On random f16 weights and activations
// with outliers (2048 columns), the relative error of a row against exact arithmetic is 1.7e-4,
// against 1.9e-4 for activations rounded to f16 (what a PyTorch or llama.cpp f16 run multiplies)
// and 1.4e-3 for activations rounded to bf16.
// Layout of a converted group: block b's 8 lines of 64 bytes, line j holding row r's columns
// 32b + 4j + 2h, +1 (h = 0, 1) in 32-bit lane 2r + h, against x's same 4 columns broadcast to
// every 64-bit lane, which is x's own order; a row's two lanes are added once, at the end.
// GCC 12's AVX-512 extract intrinsics start from _mm256_undefined_*() and trip -Wuninitialized
// inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"
#include "kernels/rows8_avx512.h"

namespace autoglm::kernels::detail {
namespace {

constexpr int64_t kBlock = 32;          // columns per scale
constexpr int64_t kBlockInts = 8 * 32;  // int16 of a group's block (8 rows)
constexpr float kXLimit = 8191.0f;      // largest |q| of x
// The weights' scale is 2^(E - kScaleBias) for the block's largest biased exponent E: its largest
// weights, (1024 + m)·2^(E - 25), become (1024 + m)·2^3 <= 16376.
constexpr int kScaleBias = 28;
constexpr int kPassGroups = 6;       // groups converted at a time
constexpr int kTileGroups = 3;       // groups per tile (and 4 tokens)
constexpr int64_t kTokenChunk = 96;  // tokens per conversion of a pass
constexpr int64_t kLineBytes = 64;
// The conversion reads a pass block by block, each block across its groups: one stream per group
// (32 KiB apart at 2048 columns), each prefetched this far ahead into L1, as decode reads its
// weights. kernel_ab from DRAM, 2 threads, 16 tokens, int16 against f32 time: one group after
// another with 4 KiB ahead 1.20-1.28, block by block 1.13, with 1536 bytes ahead 0.95-1.02 (768:
// 0.98, 1024: 0.98, 2048: 0.97).
constexpr int64_t kConvertAhead = 1536;
// The tiles of a pass prefetch the start of the next one into L2, in the order the conversion
// reads it, at most this many lines a tile step (a block of NG groups x 4 tokens), so that the
// conversion starts from L2 and its own stream takes the rest: 16 tokens, the whole next pass
// (about 6 lines a step) 0.99, 8 blocks of it 0.94, 16 or 32 blocks 0.92; 96 tokens (1 line a
// step) 0.67 either way.
constexpr int64_t kNextLinesPerStep = 2;

// x [n_tokens, cols] in blocks of 32: q (int16, x's order) and d (one per block).
struct XInt16 {
  const int16_t* q;
  const float* d;
  int64_t cols;
};

// Blocks whose largest |x| lies below this count as zeros (they add less than 2^-60 of a weight
// to a sum): every other block's d is then at least 2^-73, so that the tiles may scale it by the
// weights' power of two 2^(E - 28) >= 2^-27 by adding to its exponent field (scaled_d) and stay
// a normal number.
constexpr float kTinyX = 0x1p-60f;

// Quantizes x, or returns false when x holds an infinity or a NaN: the caller then multiplies in
// f32, whose results carry them as an f32 run's do.
bool quantize_x(const float* x, int64_t n_tokens, int64_t cols, XInt16& out) {
  const int64_t n_blocks = n_tokens * cols / kBlock;
  auto* q = reinterpret_cast<int16_t*>(scratch_f32(n_tokens * cols / 2, 14));
  float* d = scratch_f32(n_blocks, 15);
  __mmask16 non_finite = 0;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + kBlock * b);
    const __m512 v1 = _mm512_loadu_ps(x + kBlock * b + 16);
    // v - v is NaN exactly where v is infinite or NaN.
    const __m512 t0 = _mm512_sub_ps(v0, v0), t1 = _mm512_sub_ps(v1, v1);
    non_finite |=
        _mm512_cmp_ps_mask(t0, t0, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(t1, t1, _CMP_UNORD_Q);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const bool zero = !(amax >= kTinyX);
    const float inv = zero ? 0.0f : kXLimit / amax;
    d[b] = zero ? 0.0f : amax / kXLimit;
    const __m512 s = _mm512_set1_ps(inv);
    const __m256i q0 = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v0, s)));
    const __m256i q1 = _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(_mm512_mul_ps(v1, s)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + kBlock * b), q0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + kBlock * b + 16), q1);
  }
  out = {q, d, cols};
  return non_finite == 0;
}

// A pass's groups as integers: group g's block b at q + (g·n_blocks + b)·kBlockInts, its 16 lane
// scales 2^(E - 28) (row r's in lanes 2r, 2r + 1) as (E - 28) << 23, what multiplying by them adds
// to an f32's bits, at scale + (g·n_blocks + b)·16.
struct Int16Pass {
  int16_t* q;
  int32_t* scale;
  int64_t n_blocks;
};

// d · 2^(E - 28) for the exponent offsets of Int16Pass::scale: exact, as the product is (d is 0 or
// a normal number at least 2^-73: kTinyX). For d = 0 the result is some finite number, which the
// block's zero sum then multiplies to zero.
inline __m512 scaled_d(__m512 d, __m512i exponent_offset) {
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(d), exponent_offset));
}

// Row r's largest |weight| bits of a block (8 lines from `line`) in 32-bit lane r.
inline __m256i block_row_max(const uint8_t* line) {
  const __m512i magnitude = _mm512_set1_epi16(0x7fff);
  __m512i m = _mm512_setzero_si512();
  for (int j = 0; j < 8; ++j)
    m = _mm512_max_epu16(m, _mm512_and_si512(_mm512_loadu_si512(line + kLineBytes * j), magnitude));
  // Words 2r, 2r + 1 and 16 + 2r, 16 + 2r + 1 hold row r: fold the halves, then each word pair.
  __m256i h = _mm256_max_epu16(_mm512_castsi512_si256(m), _mm512_extracti64x4_epi64(m, 1));
  h = _mm256_max_epu16(h, _mm256_srli_epi32(h, 16));
  return _mm256_and_si256(h, _mm256_set1_epi32(0xffff));
}

// One group's block: 8 f16 lines from src into 8 integer lines at dst, and its 16 lane scales.
// Returns false when a weight is infinite or NaN (E = 31), which the integers cannot hold.
inline bool convert_block(const uint8_t* src, int16_t* dst, int32_t* scale) {
  const __m512i pair_index = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  // E = max(biased exponent, 1): subnormal and zero blocks take the smallest normal's scale.
  const __m256i e =
      _mm256_max_epi32(_mm256_srli_epi32(block_row_max(src), 10), _mm256_set1_epi32(1));
  const __m512i e16 = _mm512_permutexvar_epi32(pair_index, _mm512_castsi256_si512(e));
  const bool finite = _mm256_movemask_epi8(_mm256_cmpeq_epi32(e, _mm256_set1_epi32(31))) == 0;
  // The scale's exponent offset (E - 28) << 23, and 2^(28 - E) as f32 bits (exponent field
  // 127 + 28 - E).
  _mm512_storeu_si512(scale,
                      _mm512_slli_epi32(_mm512_sub_epi32(e16, _mm512_set1_epi32(kScaleBias)), 23));
  const __m512 inv = _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(127 + kScaleBias), e16), 23));
  // Adding 1.5 · 2^23 rounds a value below 2^22 in magnitude to an integer (to nearest even, as
  // the FMA rounds) and leaves it, in two's complement, in the low bits of the sum's f32 bits: one
  // FMA scales and rounds, and the low 16 bits are the integer.
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  // Word 4r + i of the line: row r's column k + i, the low word of lane 2r + i of lo (i < 2) or
  // of lane 2r + i - 2 of hi.
  const __m512i words =
      _mm512_set_epi16(62, 60, 30, 28, 58, 56, 26, 24, 54, 52, 22, 20, 50, 48, 18, 16, 46, 44, 14,
                       12, 42, 40, 10, 8, 38, 36, 6, 4, 34, 32, 2, 0);
  for (int j = 0; j < 8; ++j) {
    const uint8_t* line = src + kLineBytes * j;
    _mm_prefetch(reinterpret_cast<const char*>(line + kConvertAhead), _MM_HINT_T0);
    // Columns k, k + 1 of row r in lanes 2r, 2r + 1; then k + 2, k + 3. Scaling by a power of two
    // is exact; the rounding to an integer is the conversion's only one.
    const __m512 lo = _mm512_fmadd_ps(
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line))), inv, magic);
    const __m512 hi = _mm512_fmadd_ps(
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32))), inv,
        magic);
    _mm512_storeu_si512(dst + 32 * j, _mm512_permutex2var_epi16(_mm512_castps_si512(lo), words,
                                                                _mm512_castps_si512(hi)));
  }
  return finite;
}

// The ng groups from `group` (f16 Rows8Pairs, group_bytes apart) into pass, block by block;
// false when one of their weights is infinite or NaN.
bool convert_pass(const uint8_t* group, int64_t group_bytes, int ng, const Int16Pass& pass) {
  bool finite = true;
  for (int64_t b = 0; b < pass.n_blocks; ++b) {
    for (int g = 0; g < ng; ++g) {
      finite &= convert_block(group + g * group_bytes + b * 8 * kLineBytes,
                              pass.q + (g * pass.n_blocks + b) * kBlockInts,
                              pass.scale + (g * pass.n_blocks + b) * 16);
    }
  }
  return finite;
}

inline __m512i broadcast8(const int16_t* p) {
  int64_t four;
  std::memcpy(&four, p, sizeof four);
  return _mm512_set1_epi64(four);
}

// Which lines of the next pass a tile prefetches into L2: `lines` lines from line `begin`, in the
// order the conversion reads them (block by block, each block across the pass's groups), spread
// over its blocks (per_block each), so that the reads from memory overlap the pass's arithmetic.
struct NextShare {
  const uint8_t* pass = nullptr;
  int64_t group_bytes = 0, begin = 0, lines = 0, per_block = 0;
  const uint8_t* line(int64_t i) const {
    constexpr int64_t kBlockLines = 8 * kPassGroups;  // a block across the groups
    const int64_t rest = i % kBlockLines;
    return pass + (rest / 8) * group_bytes + (i / kBlockLines) * 8 * kLineBytes +
           (rest % 8) * kLineBytes;
  }
};

// The tiles of a pass in order, each with its share of the next pass's lines.
class NextShares {
 public:
  NextShares(const uint8_t* next, int64_t group_bytes, int64_t lines, int64_t tiles,
             int64_t n_blocks)
      : next_(next),
        group_bytes_(group_bytes),
        lines_(next != nullptr ? lines : 0),
        per_tile_((lines_ + tiles - 1) / tiles),
        per_block_((per_tile_ + n_blocks - 1) / n_blocks) {}
  NextShare take() {
    const int64_t begin = std::min(lines_, per_tile_ * taken_++);
    return {next_, group_bytes_, begin, std::min(per_tile_, lines_ - begin), per_block_};
  }

 private:
  const uint8_t* next_;
  int64_t group_bytes_, lines_, per_tile_, per_block_, taken_ = 0;
};

// y[t, 8g..8g+7] for NG groups from g0 of the pass and NT tokens from x's token t0 (y: token 0's
// outputs for the pass's row 0, ldy apart).
template <int NG, int NT>
void tile(const Int16Pass& p, int g0, const XInt16& x, int64_t t0, float* y, int64_t ldy,
          NextShare next) {
  const int64_t nb = p.n_blocks;
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  const int16_t* xq = x.q + t0 * x.cols;
  const float* xd = x.d + t0 * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * next.per_block;
    for (int64_t i = i0; i < std::min(next.lines, i0 + next.per_block); ++i)
      _mm_prefetch(reinterpret_cast<const char*>(next.line(next.begin + i)), _MM_HINT_T1);
    __m512i sum[NG][NT];
    for (int g = 0; g < NG; ++g) {
      for (int t = 0; t < NT; ++t) sum[g][t] = _mm512_setzero_si512();
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      __m512i w[NG];
      for (int g = 0; g < NG; ++g)
        w[g] = _mm512_loadu_si512(p.q + ((g0 + g) * nb + b) * kBlockInts + 32 * j);
      for (int t = 0; t < NT; ++t) {
        const __m512i xv = broadcast8(xq + t * x.cols + kBlock * b + 4 * j);
        for (int g = 0; g < NG; ++g) sum[g][t] = _mm512_dpwssd_epi32(sum[g][t], w[g], xv);
      }
    }
    for (int g = 0; g < NG; ++g) {
      // The scales' product by an integer add: the FMA pipes' only other work is the FMA itself.
      const __m512i dw = _mm512_loadu_si512(p.scale + ((g0 + g) * nb + b) * 16);
      for (int t = 0; t < NT; ++t) {
        const __m512 dx = _mm512_set1_ps(xd[t * nb + b]);
        acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[g][t]), scaled_d(dx, dw), acc[g][t]);
      }
    }
  }
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) store_sum_of_pairs(y + (t0 + t) * ldy + 8 * (g0 + g), acc[g][t]);
  }
}

// Every token of [0, n) for NG groups from g0, in tiles of 4 and one of the 1-3 left.
template <int NG>
void token_tiles(const Int16Pass& p, int g0, const XInt16& x, int64_t n, float* y, int64_t ldy,
                 NextShares& next) {
  int64_t t = 0;
  for (; t + 4 <= n; t += 4) tile<NG, 4>(p, g0, x, t, y, ldy, next.take());
  switch (n - t) {
    case 3:
      return tile<NG, 3>(p, g0, x, t, y, ldy, next.take());
    case 2:
      return tile<NG, 2>(p, g0, x, t, y, ldy, next.take());
    case 1:
      return tile<NG, 1>(p, g0, x, t, y, ldy, next.take());
    default:
      return;
  }
}

}  // namespace

bool f16_int16_rows_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                           int64_t r0, int64_t r1, int64_t next_rows) {
  const int64_t nb = w.cols / kBlock;
  const int64_t group_bytes = 8 * w.cols * 2;
  const auto* weights = static_cast<const uint8_t*>(w.data);
  XInt16 xq;
  if (!quantize_x(x, n_tokens, w.cols, xq)) return false;
  float* scratch = scratch_f32(kPassGroups * nb * (kBlockInts / 2 + 16), 16);
  const Int16Pass pass{reinterpret_cast<int16_t*>(scratch),
                       reinterpret_cast<int32_t*>(scratch + kPassGroups * nb * kBlockInts / 2), nb};
  constexpr int64_t kPassRows = 8 * kPassGroups;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t n = std::min(kTokenChunk, n_tokens - t0);
    const XInt16 xc{xq.q + t0 * w.cols, xq.d + t0 * nb, w.cols};
    for (int64_t r = r0; r < r1; r += kPassRows) {
      const int ng = static_cast<int>(std::min(kPassRows, r1 - r) / 8);
      const uint8_t* group = weights + (r / 8) * group_bytes;
      if (!convert_pass(group, group_bytes, ng, pass)) {
        // A broken file's infinite or NaN weights: the scalar reference carries them as an f32
        // run does (the integers would not).
        matmul_rows_scalar(w, x + t0 * w.cols, n, y + t0 * ldy, ldy, r, r + 8 * ng);
        continue;
      }
      // The tiles prefetch the next pass: of this range, or after its last pass the first of the
      // rows this thread runs next (KernelTable::matmul_rows_then), which the conversion then
      // reads from L2. (A shorter last pass of the range is not prefetched.)
      const uint8_t* next = nullptr;
      if (r + 2 * kPassRows <= r1)
        next = group + kPassGroups * group_bytes;
      else if (r + kPassRows >= r1 && next_rows + kPassRows <= w.rows)
        next = weights + (next_rows / 8) * group_bytes;
      const int64_t tiles = (ng + kTileGroups - 1) / kTileGroups * ((n + 3) / 4);
      const int64_t lines = std::min(nb * kPassGroups * 8, kNextLinesPerStep * tiles * nb);
      NextShares shares(next, group_bytes, lines, tiles, nb);
      float* yp = y + t0 * ldy + r;
      int g = 0;
      for (; g + kTileGroups <= ng; g += kTileGroups)
        token_tiles<kTileGroups>(pass, g, xc, n, yp, ldy, shares);
      if (ng - g == 2) token_tiles<2>(pass, g, xc, n, yp, ldy, shares);
      if (ng - g == 1) token_tiles<1>(pass, g, xc, n, yp, ldy, shares);
    }
  }
  return true;
}

}  // namespace autoglm::kernels::detail
