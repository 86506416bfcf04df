// AVX2 matmul rows (also the float path of the AVX-512 table). f32 / f16 (F16C vcvtph2ps) / bf16
// (shift or mask to f32) weights: 8-wide FMA against f32 activations. Packed (Rows8) matrices go to
// matmul_float_rows8_avx2.cpp; in the file layout, one token (decode) and up to 31 tokens run
// here, 32 and more in the panel GEMM of gemm_float_avx2.cpp. q8_0 / q4_0 / q6_K:
// activations quantized to 8-bit blocks of 32 (quantize_acts_avx2, the same rounding as the scalar
// quantize_acts; kernels::matmul does it once per matmul and gives every chunk of rows to
// matmul_rows_quantized_avx2), dot products with maddubs + madd (matmul_quant_simd.h,
// matmul_rows8_simd.h). Up to 4 tokens share each weight load.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

inline __m256i dot_u8s8(__m256i u8, __m256i s8) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), _mm256_set1_epi16(1));
}

// int16 pair sums, which start from the -8 offset (QuantizedActs::q4_offset), so that they end as
// Σ (nibble - 8)·x with no subtraction per block and row group. Exact for the 8 steps of a q4
// block: after any step, each int16 half holds Σ (n - 8)·x over the elements done and -8·x over
// the others, 16 terms of at most 8 · 127 in magnitude: |sum| <= 16256 < 2^15, so the wrapping
// add never wraps. Not the saturating add: on Zen 3 vpaddsw issues only to the two pipes that
// also run vpmaddubsw, so a step took them for two operations (measured: 2 vpmaddubsw a cycle
// alone, 1 a cycle paired with vpaddsw, 1.5-2 paired with vpaddw). One thread, 512 tokens, in L2:
// 109-114 to 133-135 GFLOP/s; the model (2 threads, 3 pairs): prefill 69.5 to 75.3 tokens/s,
// 16-sequence steps 58.4 to 69.0 (medians). The empty asm keeps the adds in order: GCC 12
// otherwise reassociates them, sums each step's two products first, and the 8 more live products
// spill the sums of the 2-group tile.
inline __m256i nib_dot_init(int32_t q4_offset) {
  return _mm256_set1_epi32(q4_offset);
}
inline __m256i nib_dot_step(__m256i acc, __m256i u4, __m256i s8) {
  __m256i sum = _mm256_add_epi16(acc, _mm256_maddubs_epi16(u4, s8));
  asm("" : "+x"(sum));
  return sum;
}
inline __m256i nib_dot_finish(__m256i acc) {
  return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
}

}  // namespace
}  // namespace autoglm::kernels::detail

#include "kernels/float_load_avx2.h"
#include "kernels/matmul_quant_simd.h"
#include "kernels/matmul_rows8_simd.h"

namespace autoglm::kernels::detail {
namespace {

// Rows r..r+NR-1 for tokens t0..t0+NT-1. Two rows x four tokens keep 8 accumulators, 2 weight
// vectors and one activation vector in registers: 6 loads feed 8 FMAs, where one row x four
// tokens needs 5 loads for 4 FMAs (Zen 3 issues up to 3 loads and 2 FMAs a cycle).
template <DType DT, int NR, int NT>
inline void float_block(const Matrix& w, const float* const* xt, float* y, int64_t ldy, int64_t t0,
                        int64_t r) {
  const int64_t n = w.cols;
  const int64_t elem = DT == DType::F32 ? 4 : 2;
  const void* row[NR];
  for (int k = 0; k < NR; ++k) row[k] = static_cast<const uint8_t*>(w.data) + (r + k) * n * elem;
  __m256 acc[NR][NT];
  for (int k = 0; k < NR; ++k) {
    for (int t = 0; t < NT; ++t) acc[k][t] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 wv[NR];
    for (int k = 0; k < NR; ++k) wv[k] = load8<DT>(row[k], i);
    for (int t = 0; t < NT; ++t) {
      const __m256 xv = _mm256_loadu_ps(xt[t] + i);
      for (int k = 0; k < NR; ++k) acc[k][t] = _mm256_fmadd_ps(wv[k], xv, acc[k][t]);
    }
  }
  for (int k = 0; k < NR; ++k) {
    float out[NT];
    for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[k][t]);
    for (int64_t j = i; j < n; ++j) {  // tail: rows need not be a multiple of 8
      const float wj = load1<DT>(row[k], j);
      for (int t = 0; t < NT; ++t) out[t] += wj * xt[t][j];
    }
    for (int t = 0; t < NT; ++t) y[(t0 + t) * ldy + r + k] = out[t];
  }
}

template <DType DT, int NT>
void float_rows_nt(const Matrix& w, const float* x, int64_t t0, float* y, int64_t ldy, int64_t r0,
                   int64_t r1) {
  const float* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = x + (t0 + t) * w.cols;
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) float_block<DT, 2, NT>(w, xt, y, ldy, t0, r);
  if (r < r1) float_block<DT, 1, NT>(w, xt, y, ldy, t0, r);
}

// bf16 weights are the top halves of f32s: one 32-byte load holds 16, and in each 32-bit lane the
// even element becomes an f32 by a shift and the odd one by a mask. Against x split the same way
// (per 16 elements: the 8 even ones, then the 8 odd ones) that is one load and one ALU op per 8
// weights, where widening each 8 (vpmovzxwd, a cross-lane shuffle, then a shift) takes two ops.
// Returns x [n_tokens, n] split per whole 16 of each row, the tail copied as it is.
const float* bf16_split_x(const float* x, int64_t n_tokens, int64_t n) {
  float* out = scratch_f32(n_tokens * n, 4);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* src = x + t * n;
    float* dst = out + t * n;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      for (int j = 0; j < 8; ++j) {
        dst[i + j] = src[i + 2 * j];
        dst[i + 8 + j] = src[i + 2 * j + 1];
      }
    }
    for (; i < n; ++i) dst[i] = src[i];
  }
  return out;
}

// 16 bf16 weights at p as f32: even elements (slot 0) and odd elements (slot 1).
inline void load16_bf16_split(const void* p, __m256& even, __m256& odd) {
  const __m256i v = _mm256_loadu_si256(static_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

// One token (decode): 4 rows, each with 2 accumulators over alternate 8-column steps. One
// accumulator per row would chain every FMA on the one before (4 cycles of latency on Zen 3):
// 8 independent chains keep the FMA units fed, so the weight stream sets the pace.
template <DType DT>
void float_rows_decode(const Matrix& w, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t n = w.cols;
  const int64_t elem = DT == DType::F32 ? 4 : 2;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const float* xs = DT == DType::BF16 ? bf16_split_x(x, 1, n) : x;  // the 16-wide steps read xs
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    const void* row[4];
    for (int k = 0; k < 4; ++k) row[k] = base + (r + k) * n * elem;
    __m256 acc[4][2];
    for (int k = 0; k < 4; ++k) acc[k][0] = acc[k][1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256 x0 = _mm256_loadu_ps(xs + i);
      const __m256 x1 = _mm256_loadu_ps(xs + i + 8);
      for (int k = 0; k < 4; ++k) {
        if constexpr (DT == DType::BF16) {
          __m256 even, odd;
          load16_bf16_split(static_cast<const uint16_t*>(row[k]) + i, even, odd);
          acc[k][0] = _mm256_fmadd_ps(even, x0, acc[k][0]);
          acc[k][1] = _mm256_fmadd_ps(odd, x1, acc[k][1]);
        } else {
          acc[k][0] = _mm256_fmadd_ps(load8<DT>(row[k], i), x0, acc[k][0]);
          acc[k][1] = _mm256_fmadd_ps(load8<DT>(row[k], i + 8), x1, acc[k][1]);
        }
      }
    }
    for (; i + 8 <= n; i += 8) {
      const __m256 x0 = _mm256_loadu_ps(x + i);
      for (int k = 0; k < 4; ++k) acc[k][0] = _mm256_fmadd_ps(load8<DT>(row[k], i), x0, acc[k][0]);
    }
    for (int k = 0; k < 4; ++k) {
      float out = hsum256(_mm256_add_ps(acc[k][0], acc[k][1]));
      for (int64_t j = i; j < n; ++j) out += load1<DT>(row[k], j) * x[j];
      y[r + k] = out;
    }
  }
  const float* xt[1] = {x};
  for (; r < r1; ++r) float_block<DT, 1, 1>(w, xt, y, 0, 0, r);
}

constexpr int64_t kPanelGemmMinTokens = 32;

template <DType DT>
void float_rows(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                int64_t r0, int64_t r1) {
  if (w.layout == WeightLayout::Rows8) return float_rows8_avx2<DT>(w, x, n_tokens, y, ldy, r0, r1);
  if (w.layout == WeightLayout::Rows8Pairs) refuse_layout(w, Isa::Avx2);
  if (n_tokens == 1) return float_rows_decode<DT>(w, x, y, r0, r1);
  // The panel GEMM converts each weight once per call (per 128 tokens): at 16 tokens that cost
  // cancels its faster FMA loop (single-thread kernels_bench, f16 and bf16: equal within noise);
  // at 512 tokens it is about 1.5x faster.
  if (n_tokens >= kPanelGemmMinTokens) return float_gemm_avx2<DT>(w, x, n_tokens, y, ldy, r0, r1);
  constexpr int64_t kRowChunk = 16;  // see quant_rows: weights reused from L2 across token groups
  for (int64_t c0 = r0; c0 < r1; c0 += kRowChunk) {
    const int64_t c1 = c0 + kRowChunk < r1 ? c0 + kRowChunk : r1;
    int64_t t0 = 0;
    for (; t0 + 4 <= n_tokens; t0 += 4) float_rows_nt<DT, 4>(w, x, t0, y, ldy, c0, c1);
    switch (n_tokens - t0) {
      case 3:
        float_rows_nt<DT, 3>(w, x, t0, y, ldy, c0, c1);
        break;
      case 2:
        float_rows_nt<DT, 2>(w, x, t0, y, ldy, c0, c1);
        break;
      case 1:
        float_rows_nt<DT, 1>(w, x, t0, y, ldy, c0, c1);
        break;
      default:
        break;
    }
  }
}

// d = amax/127 per block of 32, q = round-to-nearest-even(x / d) (vcvtps2dq, as nearbyint in the
// scalar quantize_acts), the q4_0 offset's two partial sums of q from the int32 values (|x·id| <=
// 127: no saturation).
}  // namespace

void quantize_acts_avx2(const float* x, int64_t n_tokens, int64_t cols, int8_t* q_out, float* d_out,
                        int32_t* offset_out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n_tokens * (cols / 32); ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + b * 32 + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float d = _mm_cvtss_f32(m) / 127.0f;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    d_out[b] = d;
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], id));
    const __m256i sum =
        _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    // Lane i of s sums the q of elements i, i + 4, i + 8, ...; then lanes 0 + 1 and 2 + 3.
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    offset_out[b] = q4_offset_halves(_mm_cvtsi128_si32(s), _mm_extract_epi32(s, 2));
    // int32 -> int16 -> int8 packs work within 128-bit lanes; the permute puts the 32 bytes back
    // in element order.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    const __m256i ordered =
        _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q_out + b * 32), ordered);
  }
}

void matmul_rows_quantized_avx2(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                float* y, int64_t ldy, int64_t r0, int64_t r1) {
  if (w.layout == WeightLayout::Rows8) return rows8_matmul(w, xa, n_tokens, y, ldy, r0, r1);
  if (w.layout == WeightLayout::Rows8Pairs) refuse_layout(w, Isa::Avx2);
  quant_rows(w, xa, n_tokens, y, ldy, r0, r1);
}

void matmul_rows_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) {
  switch (w.dtype) {
    case DType::F32:
      return float_rows<DType::F32>(w, x, n_tokens, y, ldy, r0, r1);
    case DType::F16:
      return float_rows<DType::F16>(w, x, n_tokens, y, ldy, r0, r1);
    case DType::BF16:
      return float_rows<DType::BF16>(w, x, n_tokens, y, ldy, r0, r1);
    case DType::Q4_0:
    case DType::Q8_0:
    case DType::Q6_K: {
      const ActBuffers buf = act_buffers(n_tokens, w.cols);
      quantize_acts_avx2(x, n_tokens, w.cols, buf.q, buf.d, buf.q4_offset);
      return matmul_rows_quantized_avx2(w, {buf.q, buf.d, buf.q4_offset}, n_tokens, y, ldy, r0, r1);
    }
    default:
      return matmul_rows_scalar(w, x, n_tokens, y, ldy, r0, r1);  // throws on a non-weight dtype
  }
}

}  // namespace autoglm::kernels::detail
