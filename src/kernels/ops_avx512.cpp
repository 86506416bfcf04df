// AVX-512 element-wise ops (the algorithms are in ops_simd.h).
// GCC 12's AVX-512 reduce/extract intrinsics start from _mm256_undefined_*() and trip
// -Wuninitialized inside the system header once inlined (GCC PR 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/avx512_intrinsics.h"

#include "kernels/hsum8_avx2.h"
#include "kernels/ops_simd.h"

namespace autoglm::kernels::detail {
namespace {

// KvHint: where the KV-cache ops prefetch the next block (ops_simd.h), kernels::prefetch_level.
// Zen 5 read it faster from L1: one layer's decode attention, f16 cache, 2 KV heads on 2 threads
// (kernels_bench bm_attention_decode, 3 alternated pairs), 2048 positions 133-149 against 141-154
// us, 8192 positions 621-659 against 679-694 us; the benchmark model, q4_0 decode after 8192
// cached tokens, 9 alternated pairs: 0.89-1.27x, median 1.07x (6 faster). Zen 4 from L2: the
// same benchmark, 3 alternated rounds, L2 against L1: one thread 306-341 against 361-507 us at
// 2048 positions; 2 threads 681-906 against 860-1196 us at 8192 positions.
template <_mm_hint KvHint>
struct Avx512 {
  using T = __m512;
  static constexpr int W = 16;
  static constexpr _mm_hint kKvPrefetch = KvHint;
  static constexpr int kAxpyHeads = 8;  // 16 accumulators of 32 registers (ops_simd.h)
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  // W halves of v, rounded to nearest even (f32_to_f16's bits: a NaN becomes sign | 0x7e00).
  static void store_f16(uint16_t* p, T v) {
    const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i sign =
        _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(v), 16), _mm512_set1_epi32(0x8000));
    const __m256i nan = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, _mm512_set1_epi32(0x7e00)));
    const __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_mask_blend_epi16(is_nan, h, nan));
  }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T zero() { return _mm512_setzero_ps(); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T round(T a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static T scale_pow2(T p, T n) { return _mm512_scalef_ps(p, n); }  // p · 2^n
  static float hsum(T v) { return _mm512_reduce_add_ps(v); }
  // Each vector folded to 8 lanes (its two 256-bit halves added), then the AVX2 hadd tree: about
  // 25 operations, where 8 full reductions take about 64, as many as the FMAs of the 4-head x
  // 2-row dot tile over a 128-wide head.
  static void hsum8(const T* v, float* out) {
    __m256 half[8];
    for (int j = 0; j < 8; ++j) {
      half[j] = _mm256_add_ps(_mm512_castps512_ps256(v[j]),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[j]), 1)));
    }
    hsum8_ps256(half, out);
  }
  static float hmax(T v) { return _mm512_reduce_max_ps(v); }
  static T dup_pairs(const float* p) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7),
                                 _mm512_zextps256_ps512(_mm256_loadu_ps(p)));
  }
  static T swap_pairs(T v) { return _mm512_permute_ps(v, 0xb1); }
  static T sign_even() {
    return _mm512_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1);
  }
};

using Avx512L1 = Avx512<_MM_HINT_T0>;
using Avx512L2 = Avx512<_MM_HINT_T1>;

// An op that calls OnL1 or OnL2 by the prefetch level of the moment: one branch per call, so the
// hint stays a constant inside the loops, as with_prefetch_hint does for decode (prefetch_simd.h).
template <auto OnL1, auto OnL2, class... A>
void by_prefetch_level(A... a) {
  if (prefetch_level() == PrefetchLevel::L1) return OnL1(a...);
  OnL2(a...);
}

}  // namespace

KernelTable avx512_table() {
  KernelTable t = simd_table<Avx512L2>(Isa::Avx512, matmul_rows_avx512, quantize_acts_avx512,
                                       matmul_rows_quantized_avx512);
  t.dot_heads = by_prefetch_level<simd_dot_heads<Avx512L1, float>, simd_dot_heads<Avx512L2, float>>;
  t.dot_heads_f16 =
      by_prefetch_level<simd_dot_heads<Avx512L1, uint16_t>, simd_dot_heads<Avx512L2, uint16_t>>;
  t.dot_heads_t =
      by_prefetch_level<simd_dot_heads_t<Avx512L1, float>, simd_dot_heads_t<Avx512L2, float>>;
  t.dot_heads_t_f16 =
      by_prefetch_level<simd_dot_heads_t<Avx512L1, uint16_t>, simd_dot_heads_t<Avx512L2, uint16_t>>;
  t.axpy_heads =
      by_prefetch_level<simd_axpy_heads<Avx512L1, float>, simd_axpy_heads<Avx512L2, float>>;
  t.axpy_heads_f16 =
      by_prefetch_level<simd_axpy_heads<Avx512L1, uint16_t>, simd_axpy_heads<Avx512L2, uint16_t>>;
  t.matmul_rows_then = matmul_rows_then_avx512;
  t.matmul_rows_quantized_then = matmul_rows_quantized_then_avx512;
  t.packed_layout = WeightLayout::Rows8Pairs;  // matmul_rows8_avx512.cpp, matmul_float_avx512.cpp
  t.quantize_acts_arranged = quantize_acts_arranged_avx512;
  return t;
}

}  // namespace autoglm::kernels::detail
