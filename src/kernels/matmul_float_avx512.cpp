// f16 and bf16 weights over the Rows8Pairs layout (matrix.h) in 512-bit vectors, for any number of
// tokens: y[t, r] = Σ_k w[r, k] · x[t, k]. One 64-byte line of a group holds its 8 rows at 4
// columns, each row's together; the line's weights fill vectors whose 64-bit lane r holds row r at
// two columns, against x at those two columns broadcast to every 64-bit lane. A row's two lanes
// are added once, at the end.
// - f16: vcvtph2ps of each 32 bytes (columns k, k + 1 | k + 2, k + 3), 512-bit FMAs, x loaded as
//   64-bit broadcasts.
// - bf16: the 32-bit lanes of row r are the column pairs (k, k + 1) and (k + 2, k + 3), so a shift
//   gives columns k, k + 2 as f32 and a mask k + 1, k + 3; x takes an in-lane shuffle to match.
// - bf16 with Matrix::x_as_bf16 (`--bf16-activations`): x rounded to bf16 once per call (round to
//   nearest even, vcvtne2ps2bf16), and one vdpbf16ps adds both columns of a pair for 8 rows: twice
//   the multiply-adds per instruction. x's rounding moves each x[t, k] by at most 2^-9 of itself,
//   so a row's sum by at most 2^-9 · Σ|w·x| more than the f32 kernels'. Off by default; llama.cpp
//   does this for bf16 weights.
// - f16 with Matrix::x_as_bf16, 4 tokens or more: the same, on each pass's weights rounded to bf16
//   (F16PassAsBf16): a row's sum moves by at most (2^-8 + 2^-18) · Σ|w·x|.
// Zen 5 runs 512-bit vectors at full width: one thread, independent chains, 224 GFLOP/s of 512-bit
// FMAs against 112 of 256-bit, 412 of 512-bit vdpbf16ps. Zen 4 splits them in two halves, which
// costs nothing. The tiles are 4 groups x 4 tokens (16 accumulators of the 32 registers).
// GCC 12's AVX-512 extract intrinsics start from _mm256_undefined_*() and trip -Wuninitialized
// inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"
#include "kernels/prefetch_simd.h"
#include "kernels/rows8_avx512.h"

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

// One tile: NG groups x NT tokens over all columns. X: the type x is read in (f32, or bf16).
template <typename X>
struct FloatTile {
  const uint8_t* group;  // the first group's weights at column 0
  int64_t group_bytes;   // from one group to the next
  const X* x;            // the first token's x at column 0
  int64_t ldx;           // from one token's x to the next
  int64_t cols;
  float* y;             // the first token's output for the first group's row 0
  int64_t ldy;          // from one token's outputs to the next
  int64_t y_group = 8;  // from one group's outputs to the next
};

constexpr int64_t kLineBytes = 64;
constexpr int64_t kLineColumns = 4;  // of f16 or bf16, 8 rows
constexpr int64_t kColumnBytes = kLineBytes / kLineColumns;

// x[k], x[k + 1] (f32) broadcast to every 64-bit lane.
inline __m512 broadcast_x2(const float* x) {
  double two;
  std::memcpy(&two, x, sizeof two);
  return _mm512_castpd_ps(_mm512_set1_pd(two));
}

// Each policy turns a group's line into kVectors weight vectors and token x[k..k+3] into the
// matching x vectors, and multiplies-adds one pair of them.
// f32 x, two weight vectors per line, multiplied with FMAs.
struct FmaPolicy {
  using X = float;
  static constexpr int kVectors = 2;
  static __m512 madd(__m512 acc, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

struct F16Fma : FmaPolicy {
  static void weights(const uint8_t* line, __m512 (&w)[2]) {
    for (int i = 0; i < 2; ++i)
      w[i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32 * i)));
  }
  static void xs(const float* x, __m512 (&xv)[2]) {
    xv[0] = broadcast_x2(x);
    xv[1] = broadcast_x2(x + 2);
  }
};

struct Bf16Fma : FmaPolicy {
  static void weights(const uint8_t* line, __m512 (&w)[2]) {
    const __m512i v = _mm512_loadu_si512(line);
    w[0] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));                        // k, k + 2
    w[1] = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(-65536)));  // k + 1, k + 3
  }
  static void xs(const float* x, __m512 (&xv)[2]) {
    const __m512 x4 = _mm512_broadcast_f32x4(_mm_loadu_ps(x));
    xv[0] = _mm512_permute_ps(x4, _MM_SHUFFLE(2, 0, 2, 0));
    xv[1] = _mm512_permute_ps(x4, _MM_SHUFFLE(3, 1, 3, 1));
  }
};

struct Bf16Dot {
  using X = uint16_t;
  static constexpr int kVectors = 1;
  static void weights(const uint8_t* line, __m512 (&w)[1]) { w[0] = _mm512_loadu_ps(line); }
  // x[k..k+3] as bf16: the pairs (k, k + 1) and (k + 2, k + 3) in every 64-bit lane.
  static void xs(const uint16_t* x, __m512 (&xv)[1]) {
    int64_t four;
    std::memcpy(&four, x, sizeof four);
    xv[0] = _mm512_castsi512_ps(_mm512_set1_epi64(four));
  }
  static __m512 madd(__m512 acc, __m512 w, __m512 x) {
    return _mm512_dpbf16_ps(acc, std::bit_cast<__m512bh>(w), std::bit_cast<__m512bh>(x));
  }
};

// acc[g][t] += one line of each group (from line[g]) times token t's x[k..k+3] (from x[t]).
template <typename P, int NG, int NT>
__attribute__((always_inline)) inline void line_step(const uint8_t* const (&line)[NG],
                                                     const typename P::X* const (&x)[NT],
                                                     __m512 (&acc)[NG][NT]) {
  __m512 wv[NG][P::kVectors];
  for (int g = 0; g < NG; ++g) P::weights(line[g], wv[g]);
  for (int t = 0; t < NT; ++t) {
    __m512 xv[P::kVectors];
    P::xs(x[t], xv);
    for (int g = 0; g < NG; ++g) {
      for (int i = 0; i < P::kVectors; ++i) acc[g][t] = P::madd(acc[g][t], wv[g][i], xv[i]);
    }
  }
}

// How far ahead decode prefetches each of its weight streams, into the level of
// kernels::prefetch_level: L1 was chosen on Zen 5, which this paragraph measured; on Zen 4 L2
// took one thread from DRAM from 16-22 to 22-23 GB/s (f16 and bf16, 3 alternated rounds, against
// a 20-24 GB/s probe). Prefetching 384 bytes ahead
// into L2 (as the AVX2 float decode does) left decode waiting on memory whenever the host's
// hardware prefetchers fell behind: in such a phase (the probe at 68-73 GB/s, prefill at half its
// usual rate), the model, 2 threads, 3 rounds, decode in tokens/s: bf16 8.9 / 8.4 / 8.2 -> 15.9 /
// 14.5 / 13.4, f16 9.0 / 8.3 / 8.1 -> 15.5 / 14.2 / 13.2 (1536 and 2048 bytes ahead a little
// less); one thread from DRAM (kernels_bench bm_matmul_dram): 17-19 -> 36 GB/s of a 38-40 GB/s
// probe. That chose 3072; later (twenty-seventh session) 2048 read faster: kernel_ab, bf16 from
// DRAM, 2 threads, B/A time 0.959-0.971 with the probe at 67-79 GB/s (4096: 1.020-1.027); the
// model, decode alternated with 3072 (tokens/s, new / old): bf16 1.079, 1.086, 1.095 with the probe
// at 63-67 GB/s, 1.022-1.038 at 37-44; f16 0.965-1.083 (10 pairs, median 1.03). That is Zen 5,
// prefetching into L1; into L2 (Zen 4) it stays at 3072.
template <_mm_hint Ahead>
constexpr int64_t kDecodeAhead = Ahead == _MM_HINT_T0 ? 2048 : 3072;

// Decode's prefetch for the line at `offset` of each of its NG streams: kDecodeAhead further on,
// into the level Ahead names.
template <int NG, _mm_hint Ahead, typename X>
__attribute__((always_inline)) inline void prefetch_decode_ahead(const FloatTile<X>& a,
                                                                 int64_t offset) {
  for (int g = 0; g < NG; ++g) {
    // In integers: the address may lie past the matrix, where no pointer may point.
    const uintptr_t ahead =
        reinterpret_cast<uintptr_t>(a.group + g * a.group_bytes + offset) + kDecodeAhead<Ahead>;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), Ahead);
  }
}

// y[t0 + t, 8g..8g+7] for the tile's groups and NT tokens from t0. One prefetch per group and
// line of share's lines, when next (weights at the same offsets as a.group) is not null. t0 and
// next come beside a, not in a copy of it: a FloatTile just written field by field and copied reads
// back with 64-byte loads that wait for those stores to reach the cache (as the integer kernels'
// QTile did). The last columns (fewer than a line: f16 whose column count is even but not a
// multiple of 4, columns k and k + 1 of each row in the line's first half) go through zero-padded
// copies of their weights and x, so that they take the same instructions. Decode prefetches its
// own streams on every line (prefetch_decode_ahead), without walking a share: the step counter cost
// its bf16 decode 4% (17.8 / 17.1, 17.6 / 17.0, 17.4 / 16.6 tokens/s, alternated). Decode tiles
// set kDecode, and Ahead for the level their streams are prefetched into.
template <typename P, int NG, int NT, bool kDecode = false, _mm_hint Ahead = _MM_HINT_T1>
void tile(const FloatTile<typename P::X>& a, int64_t t0, const uint8_t* next, PrefetchShare share) {
  const typename P::X* x = a.x + t0 * a.ldx;
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g) {
    for (int t = 0; t < NT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  const uint8_t* line[NG];
  const typename P::X* xk[NT];
  PrefetchTurns turns(share);
  int64_t k = 0;
  for (; k + kLineColumns <= a.cols; k += kLineColumns) {
    const int64_t offset = k * kColumnBytes;
    for (int g = 0; g < NG; ++g) line[g] = a.group + g * a.group_bytes + offset;
    if constexpr (kDecode) {
      prefetch_decode_ahead<NG, Ahead>(a, offset);
    } else if (next != nullptr && turns.next()) {
      for (int g = 0; g < NG; ++g)
        _mm_prefetch(reinterpret_cast<const char*>(next + g * a.group_bytes + offset), _MM_HINT_T1);
    }
    for (int t = 0; t < NT; ++t) xk[t] = x + t * a.ldx + k;
    line_step<P, NG, NT>(line, xk, acc);
  }
  if (k < a.cols) {
    alignas(64) uint8_t padded[NG][kLineBytes] = {};
    for (int g = 0; g < NG; ++g) {
      std::memcpy(padded[g], a.group + g * a.group_bytes + k * kColumnBytes,
                  static_cast<size_t>((a.cols - k) * kColumnBytes));
      line[g] = padded[g];
    }
    typename P::X x_padded[NT][kLineColumns] = {};
    for (int t = 0; t < NT; ++t) {
      std::copy(x + t * a.ldx + k, x + t * a.ldx + a.cols, x_padded[t]);
      xk[t] = x_padded[t];
    }
    line_step<P, NG, NT>(line, xk, acc);
  }
#pragma GCC unroll 8
  for (int g = 0; g < NG; ++g) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t)
      store_sum_of_pairs(a.y + (t0 + t) * a.ldy + a.y_group * g, acc[g][t]);
  }
}

constexpr int kTileGroups = 4;

// Tokens [0, n) of a in tiles of 4 (kernels/rows8_avx512.h).
template <typename P, int NG>
void token_tiles(const FloatTile<typename P::X>& a, const uint8_t* next, int64_t n) {
  for_token_tiles(
      n, true, [&]<int NT>(int64_t t, PrefetchShare share) { tile<P, NG, NT>(a, t, next, share); });
}

template <typename P>
void group_tiles(const FloatTile<typename P::X>& a, const uint8_t* next, int ng, int64_t n) {
  switch (ng) {
    case 4:
      return token_tiles<P, 4>(a, next, n);
    case 3:
      return token_tiles<P, 3>(a, next, n);
    case 2:
      return token_tiles<P, 2>(a, next, n);
    default:
      return token_tiles<P, 1>(a, next, n);
  }
}

// Tokens that share a pass over the weights (the pass's 4 groups stay in L2 meanwhile).
constexpr int64_t kTokenChunk = 96;
// f16 with Matrix::x_as_bf16 rounds a pass's weights to bf16 for calls of at least this many
// tokens: a line's conversion (5 instructions) then costs less than the vdpbf16ps it saves. With
// fewer (decode), memory sets the pace and the f32 FMAs keep the weights exact.
constexpr int64_t kF16AsBf16MinTokens = 4;

// A pass's weights as the tiles read them: the packed matrix itself.
struct PackedPass {
  const uint8_t* operator()(const uint8_t* group, int64_t, int) const { return group; }
};

// f16 Rows8Pairs line (columns k, k + 1 of rows 0-7, then k + 2, k + 3) as a bf16 Rows8Pairs line
// (row r's 4 columns in 64-bit lane r), each weight rounded to the nearest bf16, ties to even.
inline void f16_line_as_bf16(const uint8_t* src, uint8_t* dst) {
  const __m512 pair01 = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  const __m512 pair23 =
      _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32)));
  // 32-bit lane r: row r's columns k, k + 1; lane 8 + r: its k + 2, k + 3.
  const __m512i halves = std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(pair23, pair01));
  const __m512i rows = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  _mm512_storeu_si512(dst, _mm512_permutexvar_epi32(rows, halves));
}

// f16 weights multiplied in bf16 (Matrix::x_as_bf16): each pass's groups rounded to bf16 into this
// thread's scratch (in L2 with the pass), once per pass and chunk of up to kTokenChunk tokens, for
// the Bf16Dot tiles. f16 holds 3 more significand bits than bf16; an f16 file converted from a
// bf16 release (GLM's are bf16) holds bf16 values, which this rounding keeps exactly.
// The conversion reads the pass's groups as one stream and prefetches it kConvertAhead bytes
// ahead: without, 16-sequence steps of the benchmark model (2 threads, 2 runs each) ran at
// 88-89 tokens/s, with 2 KiB 92-105, 4 KiB 101-103, 8 KiB 106-108.
constexpr int64_t kConvertAhead = 4096;
struct F16PassAsBf16 {
  uint8_t* scratch;  // kTileGroups groups
  const uint8_t* operator()(const uint8_t* group, int64_t group_bytes, int ng) const {
    for (int64_t off = 0; off < ng * group_bytes; off += kLineBytes) {
      // In integers: the address may lie past the matrix, where no pointer may point.
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(group + off) + kConvertAhead;
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      f16_line_as_bf16(group + off, scratch + off);
    }
    return scratch;
  }
};

// Decode: the rows [r0, r1) in long weight streams (for_decode_streams), prefetched into the level
// Ahead names.
template <typename P, _mm_hint Ahead>
void decode_rows(const Matrix& w, const typename P::X* x, float* y, int64_t r0, int64_t r1) {
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const auto* first = static_cast<const uint8_t*>(w.data) + (r0 / 8) * group_bytes;
  for_decode_streams((r1 - r0) / 8, [&]<int NG>(int64_t g, int64_t stride) {
    const uint8_t* group = first + g * group_bytes;
    FloatTile<typename P::X> a{group, stride * group_bytes, x, w.cols, w.cols, y + r0 + 8 * g, 0};
    a.y_group = 8 * stride;
    tile<P, NG, 1, true, Ahead>(a, 0, nullptr, {});
  });
}

// Decode in the prefetch level of the moment (with_prefetch_hint).
template <typename P>
void decode_rows(const Matrix& w, const typename P::X* x, float* y, int64_t r0, int64_t r1) {
  with_prefetch_hint([&]<_mm_hint Ahead>() { decode_rows<P, Ahead>(w, x, y, r0, r1); });
}

// The rows [r0, r1) of w (Rows8Pairs) for x in P's type; pass(group, group_bytes, ng) gives the
// weights of the ng groups from `group` in the layout P reads. The tiles of a pass prefetch the
// next one: of this range, or for the last pass the first from next_rows (the rows this thread
// runs after these, KernelTable::matmul_rows_then), which otherwise started cold. Timed call by
// call in the model, alternated (f16, 16 tokens, 3 runs, B/A time): 2048 rows (o, down)
// 0.946-0.998, the output layer 0.957-0.981.
template <typename P, typename Pass = PackedPass>
void float_rows(const Matrix& w, const typename P::X* x, int64_t n_tokens, float* y, int64_t ldy,
                int64_t r0, int64_t r1, int64_t next_rows, const Pass& pass = {}) {
  if (n_tokens == 1) return decode_rows<P>(w, x, y, r0, r1);
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const auto* weights = static_cast<const uint8_t*>(w.data);
  constexpr int64_t kPassRows = 8 * kTileGroups;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t n = std::min(kTokenChunk, n_tokens - t0);
    for (int64_t r = r0; r < r1; r += kPassRows) {
      const int ng = static_cast<int>(std::min(kPassRows, r1 - r) / 8);
      const uint8_t* group = weights + (r / 8) * group_bytes;
      const uint8_t* next = r + 2 * kPassRows <= r1 ? group + kTileGroups * group_bytes : nullptr;
      if (r + kPassRows >= r1 && next_rows + kPassRows <= w.rows)
        next = weights + (next_rows / 8) * group_bytes;
      group_tiles<P>({pass(group, group_bytes, ng), group_bytes, x + t0 * w.cols, w.cols, w.cols,
                      y + t0 * ldy + r, ldy},
                     next, ng, n);
    }
  }
}

// x [n_tokens, cols] rounded to bf16 in this thread's scratch.
const uint16_t* x_as_bf16(const float* x, int64_t n_tokens, int64_t cols) {
  auto* xb = reinterpret_cast<uint16_t*>(scratch_f32((n_tokens * cols + 1) / 2, 4));
  round_to_bf16(x, n_tokens * cols, xb);
  return xb;
}

}  // namespace

void float_rows8_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1, int64_t next) {
  if (w.dtype == DType::F16) {
    if (!w.x_as_bf16 && w.x_as_int16 && n_tokens >= kInt16MinTokens && w.cols % 32 == 0 &&
        f16_int16_rows_avx512(w, x, n_tokens, y, ldy, r0, r1, next))
      return;
    if (!w.x_as_bf16 || n_tokens < kF16AsBf16MinTokens || w.cols % kLineColumns != 0)
      return float_rows<F16Fma>(w, x, n_tokens, y, ldy, r0, r1, next);
    // kTileGroups groups of bf16, from a 64-byte boundary: each line then fills one cache line.
    const int64_t pass_floats = kTileGroups * 8 * w.cols / 2;
    const auto at = reinterpret_cast<uintptr_t>(scratch_f32(pass_floats + 16, 8));
    const F16PassAsBf16 pass{reinterpret_cast<uint8_t*>((at + 63) & ~uintptr_t{63})};
    return float_rows<Bf16Dot>(w, x_as_bf16(x, n_tokens, w.cols), n_tokens, y, ldy, r0, r1, next,
                               pass);
  }
  if (!w.x_as_bf16) return float_rows<Bf16Fma>(w, x, n_tokens, y, ldy, r0, r1, next);
  float_rows<Bf16Dot>(w, x_as_bf16(x, n_tokens, w.cols), n_tokens, y, ldy, r0, r1, next);
}

}  // namespace autoglm::kernels::detail
