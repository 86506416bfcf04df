// AVX2 + FMA element-wise ops (the algorithms are in ops_simd.h).
#include <immintrin.h>

#include "kernels/hsum8_avx2.h"
#include "kernels/ops_simd.h"

namespace autoglm::kernels::detail {
namespace {

struct Avx2 {
  using T = __m256;
  static constexpr int W = 8;
  static constexpr _mm_hint kKvPrefetch = _MM_HINT_T1;  // KV-cache rows into L2 (ops_simd.h)
  static constexpr int kAxpyHeads = 4;  // 8 accumulators of 16 registers (ops_simd.h)
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  // W halves of v, rounded to nearest even (f32_to_f16's bits: a NaN becomes sign | 0x7e00).
  static void store_f16(uint16_t* p, T v) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i sign =
        _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(v), 16), _mm256_set1_epi32(0x8000));
    const __m256i nan32 = _mm256_or_si256(sign, _mm256_set1_epi32(0x7e00));
    const __m128i nan =
        _mm_packus_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m256i is_nan32 = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m128i is_nan =
        _mm_packs_epi32(_mm256_castsi256_si128(is_nan32), _mm256_extracti128_si256(is_nan32, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm_blendv_epi8(h, nan, is_nan));
  }
  static T set1(float f) { return _mm256_set1_ps(f); }
  static T zero() { return _mm256_setzero_ps(); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T round(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T scale_pow2(T p, T n) {  // p · 2^n for integral n in [-126, 127]
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
  static float hsum(T v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static void hsum8(const T* v, float* out) { hsum8_ps256(v, out); }
  static float hmax(T v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static T dup_pairs(const float* p) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)),
                                    _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  }
  static T swap_pairs(T v) { return _mm256_permute_ps(v, 0xb1); }
  static T sign_even() { return _mm256_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1); }
};

}  // namespace

KernelTable avx2_table() {
  return simd_table<Avx2>(Isa::Avx2, matmul_rows_avx2, quantize_acts_avx2,
                          matmul_rows_quantized_avx2);
}

}  // namespace autoglm::kernels::detail
