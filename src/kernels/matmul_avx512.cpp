// AVX-512 matmul rows. f32 / f16 (vcvtph2ps) / bf16 (shift to f32) weights: 16-wide FMA against f32
// activations. q8_0 / q4_0 / q6_K: activations quantized once per call to 8-bit blocks of 32, dot
// products with VNNI vpdpbusd (matmul_quant_simd.h). Up to 4 tokens share each weight load.
// GCC 12's AVX-512 reduce/extract intrinsics start from _mm256_undefined_*() and trip
// -Wuninitialized inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstdint>

#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

inline __m256i dot_u8s8(__m256i u8, __m256i s8) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u8, s8);
}

inline __m256i nib_dot_step(__m256i acc, __m256i u4, __m256i s8) {
  return _mm256_dpbusd_epi32(acc, u4, s8);
}
inline __m256i nib_dot_finish(__m256i acc) {
  return acc;
}

}  // namespace
}  // namespace autoglm::kernels::detail

#include "kernels/matmul_quant_simd.h"
#include "kernels/matmul_rows8_simd.h"

namespace autoglm::kernels::detail {
namespace {

template <DType DT>
inline __m512 load16(const void* row, int64_t i, __mmask16 m) {
  if constexpr (DT == DType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + i);
  } else if constexpr (DT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i));
  } else {  // bf16: the 16 bits are the top half of an f32
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType DT, int NT>
void float_rows_nt(const Matrix& w, const float* x, int64_t t0, float* y, int64_t ldy, int64_t r0,
                   int64_t r1) {
  const int64_t n = w.cols;
  const int64_t elem = DT == DType::F32 ? 4 : 2;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const float* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = x + (t0 + t) * n;
  for (int64_t r = r0; r < r1; ++r) {
    const void* row = base + r * n * elem;
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512 wv = load16<DT>(row, i, 0xffff);
      for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xt[t] + i), acc[t]);
    }
    if (i < n) {  // masked tail: rows need not be a multiple of 16
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
      const __m512 wv = load16<DT>(row, i, m);
      for (int t = 0; t < NT; ++t) {
        acc[t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, xt[t] + i), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) y[(t0 + t) * ldy + r] = _mm512_reduce_add_ps(acc[t]);
  }
}

template <DType DT>
void float_rows(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                int64_t r0, int64_t r1) {
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

// d = amax/127 per block of 32, q = round-to-nearest-even(x / d) (vcvtps2dq), saturating packs.
QuantizedActs quantize_acts_avx512(const float* x, int64_t n_tokens, int64_t cols) {
  const ActBuffers buf = act_buffers(n_tokens, cols);
  const __m512 sign_mask = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < n_tokens * (cols / 32); ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * 32);
    const __m512 v1 = _mm512_loadu_ps(x + b * 32 + 16);
    const __m512 amax =
        _mm512_max_ps(_mm512_andnot_ps(sign_mask, v0), _mm512_andnot_ps(sign_mask, v1));
    const float d = _mm512_reduce_max_ps(amax) / 127.0f;
    const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    buf.d[b] = d;
    // |x·id| <= 127 (plus rounding), so the saturating packs below never clip and the block sum
    // can be taken on the int32 values.
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    buf.s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    const __m128i q0 = _mm512_cvtsepi32_epi8(i0);
    const __m128i q1 = _mm512_cvtsepi32_epi8(i1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf.q + b * 32), _mm256_set_m128i(q1, q0));
  }
  return {buf.q, buf.d, buf.s};
}

}  // namespace

void matmul_rows_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
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
      const QuantizedActs xa = quantize_acts_avx512(x, n_tokens, w.cols);
      if (w.layout == WeightLayout::Rows8) return rows8_matmul(w, xa, n_tokens, y, ldy, r0, r1);
      return quant_rows(w, xa, n_tokens, y, ldy, r0, r1);
    }
    default:
      return matmul_rows_scalar(w, x, n_tokens, y, ldy, r0, r1);  // throws on a non-weight dtype
  }
}

}  // namespace autoglm::kernels::detail
