// AVX-512 matmul rows. q8_0 / q4_0 / q6_K: activations quantized once per call to 8-bit blocks of
// 32, dot products with VNNI vpdpbusd: the Rows8Pairs layout in 512-bit vectors
// (matmul_rows8_avx512.cpp), the file layout and q6_K in 256-bit ones (matmul_quant_simd.h). Up to
// 4 tokens share each weight load. f16 and bf16 weights in the Rows8Pairs layout: 512-bit FMAs, or
// vdpbf16ps (matmul_float_avx512.cpp); the other float weights use the AVX2 float kernels (below).
// GCC 12's AVX-512 reduce/extract intrinsics start from _mm256_undefined_*() and trip
// -Wuninitialized inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/avx512_intrinsics.h"

#include <cstdint>

#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

inline __m256i dot_u8s8(__m256i u8, __m256i s8) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u8, s8);
}

}  // namespace
}  // namespace autoglm::kernels::detail

#include "kernels/matmul_quant_simd.h"

namespace autoglm::kernels::detail {
namespace {

// d = amax/127 per block of 32, q = round-to-nearest-even(x / d) (vcvtps2dq), saturating packs.
}  // namespace

namespace {

// One block of 32: writes its d and q4_offset, returns its 32 q.
inline __m256i quantize_block(const float* x, float* d_out, int32_t* offset_out) {
  const __m512 sign_mask = _mm512_set1_ps(-0.0f);
  const __m512 v0 = _mm512_loadu_ps(x);
  const __m512 v1 = _mm512_loadu_ps(x + 16);
  const __m512 amax =
      _mm512_max_ps(_mm512_andnot_ps(sign_mask, v0), _mm512_andnot_ps(sign_mask, v1));
  const float d = _mm512_reduce_max_ps(amax) / 127.0f;
  const __m512 id = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  *d_out = d;
  // |x·id| <= 127 (plus rounding), so the saturating packs below never clip and the block's sums
  // can be taken on the int32 values.
  const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
  const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
  // Lane i of the sum holds elements i and i + 16: the q4_0 offset's halves are lanes with
  // i % 4 < 2 and i % 4 >= 2.
  const __m512i sum = _mm512_add_epi32(i0, i1);
  *offset_out = q4_offset_halves(_mm512_mask_reduce_add_epi32(0x3333, sum),
                                 _mm512_mask_reduce_add_epi32(0xcccc, sum));
  return _mm256_set_m128i(_mm512_cvtsepi32_epi8(i1), _mm512_cvtsepi32_epi8(i0));
}

}  // namespace

void quantize_acts_avx512(const float* x, int64_t n_tokens, int64_t cols, int8_t* q_out,
                          float* d_out, int32_t* offset_out) {
  for (int64_t b = 0; b < n_tokens * (cols / 32); ++b) {
    const __m256i q = quantize_block(x + b * 32, d_out + b, offset_out + b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q_out + b * 32), q);
  }
}

// A pair's two blocks of q side by side, then their 4-byte groups interleaved (group m of block s
// to group 2m + s), as detail::arrange_acts places one token's pair; d and q4_offset keep the
// order of the blocks, which is one token's arrangement of them.
void quantize_acts_arranged_avx512(const float* x, int64_t cols, int8_t* q_out, float* d_out,
                                   int32_t* offset_out) {
  const __m512i interleave =
      _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  const int64_t nb = cols / 32;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i q0 = quantize_block(x + b * 32, d_out + b, offset_out + b);
    const __m256i q1 = quantize_block(x + b * 32 + 32, d_out + b + 1, offset_out + b + 1);
    const __m512i pair = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    _mm512_storeu_si512(q_out + b * 32, _mm512_permutexvar_epi32(interleave, pair));
  }
  if (b < nb) {  // an odd last block stays as it is
    const __m256i q = quantize_block(x + b * 32, d_out + b, offset_out + b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q_out + b * 32), q);
  }
}

void matmul_rows_quantized_then_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                       float* y, int64_t ldy, int64_t r0, int64_t r1,
                                       int64_t next) {
  if (w.layout == WeightLayout::Rows8Pairs)
    return q_rows8_avx512(w, xa, n_tokens, y, ldy, r0, r1, next);
  if (w.layout == WeightLayout::Rows8) refuse_layout(w, Isa::Avx512);
  quant_rows(w, xa, n_tokens, y, ldy, r0, r1);
}

void matmul_rows_quantized_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                  float* y, int64_t ldy, int64_t r0, int64_t r1) {
  matmul_rows_quantized_then_avx512(w, xa, n_tokens, y, ldy, r0, r1, w.rows);
}

void matmul_rows_then_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                             int64_t ldy, int64_t r0, int64_t r1, int64_t next) {
  switch (w.dtype) {
    case DType::BF16:
    case DType::F16:
      // Rows8Pairs: 512-bit kernels (matmul_float_avx512.cpp), at twice the 256-bit FMAs' rate on
      // Zen 5.
      if (w.layout == WeightLayout::Rows8Pairs)
        return float_rows8_avx512(w, x, n_tokens, y, ldy, r0, r1, next);
      if (w.layout == WeightLayout::Rows8) refuse_layout(w, Isa::Avx512);
      [[fallthrough]];
    case DType::F32:
      // The AVX2 float kernels (every AVX-512 CPU has AVX2, FMA and F16C): f32 over 8-row groups
      // (matmul_float_rows8_avx2.cpp), or in the file layout the decode kernel with 8 independent
      // FMA chains and bf16 split loads and the panel GEMM from 32 tokens.
      return matmul_rows_avx2(w, x, n_tokens, y, ldy, r0, r1);
    case DType::Q4_0:
    case DType::Q8_0:
    case DType::Q6_K: {
      const ActBuffers buf = act_buffers(n_tokens, w.cols);
      quantize_acts_avx512(x, n_tokens, w.cols, buf.q, buf.d, buf.q4_offset);
      return matmul_rows_quantized_then_avx512(w, {buf.q, buf.d, buf.q4_offset}, n_tokens, y, ldy,
                                               r0, r1, next);
    }
    default:
      return matmul_rows_scalar(w, x, n_tokens, y, ldy, r0, r1);  // throws on a non-weight dtype
  }
}

void matmul_rows_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1) {
  matmul_rows_then_avx512(w, x, n_tokens, y, ldy, r0, r1, w.rows);
}

}  // namespace autoglm::kernels::detail
