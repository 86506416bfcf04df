// The intrinsics of the *_avx512.cpp translation units. Normally the compiler's own (<immintrin.h>,
// built with -mavx512f ... -mavx512bf16). In a build with AUTOGLM_EMULATE_AVX512 (CMake option of
// the same name, preset avx512-emulated), the same sources are compiled for AVX2 against SIMDe
// (Debian libsimde-dev), which implements the AVX-512 intrinsics in portable code: the AVX-512
// kernels then run, slowly but with the same results, on a CPU without AVX-512. That is how the
// test suite checks them on the AVX2-only hosts where it usually runs (scripts/test.sh).
#pragma once

#if defined(AUTOGLM_EMULATE_AVX512)

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "core/half.h"

// The eleven intrinsics our AVX-512 code uses that SIMDe 0.7.4 lacks, lane by lane on arrays as the
// Intel guide defines them (and, after them, two aliases it gets wrong). cvtps2dq, cvtdq2ps and
// vcvtph2ps round and convert exactly as their AVX2 forms do, so each half goes through those.
namespace autoglm::kernels::avx512_emulation {

template <class T, size_t N, class V>
std::array<T, N> lanes(const V& v) {
  static_assert(sizeof(V) == N * sizeof(T));
  std::array<T, N> a;
  std::memcpy(a.data(), &v, sizeof v);
  return a;
}

template <class V, class T, size_t N>
V from_lanes(const std::array<T, N>& a) {
  static_assert(sizeof(V) == N * sizeof(T));
  V v;
  std::memcpy(&v, a.data(), sizeof v);
  return v;
}

// The 16 lanes of v (of type InLane) through op(in, out), 8 lanes at a time: op runs the AVX2 form
// of an instruction on a half.
template <class Out, class OutLane, class InLane, class In, class Op>
Out by_halves(const In& v, Op op) {
  const auto in = lanes<InLane, 16>(v);
  std::array<OutLane, 16> out;
  for (int half = 0; half < 2; ++half) op(in.data() + 8 * half, out.data() + 8 * half);
  return from_lanes<Out>(out);
}

inline __m512i cvtps_epi32(__m512 v) {
  return by_halves<__m512i, int32_t, float>(v, [](const float* in, int32_t* out) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_cvtps_epi32(_mm256_loadu_ps(in)));
  });
}

inline __m512 cvtepi32_ps(__m512i v) {
  return by_halves<__m512, float, int32_t>(v, [](const int32_t* in, float* out) {
    _mm256_storeu_ps(out,
                     _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in))));
  });
}

inline __m512 cvtph_ps(__m256i h) {
  return by_halves<__m512, float, uint16_t>(h, [](const uint16_t* in, float* out) {
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
  });
}

// vcvtps2ph with rounding Imm, each half through F16C's form (the same rounding, NaNs and
// subnormals).
template <int Imm>
__m256i cvtps_ph(__m512 v) {
  return by_halves<__m256i, uint16_t, float>(v, [](const float* in, uint16_t* out) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_cvtps_ph(_mm256_loadu_ps(in), Imm));
  });
}

// vpmovdw: each 32-bit lane's low 16 bits.
inline __m256i cvtepi32_epi16(__m512i v) {
  const auto in = lanes<int32_t, 16>(v);
  std::array<uint16_t, 16> out;
  for (int i = 0; i < 16; ++i) out[i] = static_cast<uint16_t>(in[i]);
  return from_lanes<__m256i>(out);
}

inline __m512 zextps256_ps512(__m256 v) {
  std::array<float, 16> out{};
  _mm256_storeu_ps(out.data(), v);
  return from_lanes<__m512>(out);
}

// Within each 128-bit lane, element j takes the lane's element (imm >> 2j) & 3.
inline __m512 permute_ps(__m512 v, int imm) {
  const auto in = lanes<float, 16>(v);
  std::array<float, 16> out;
  for (int i = 0; i < 16; ++i) out[i] = in[(i & ~3) + ((imm >> (2 * (i & 3))) & 3)];
  return from_lanes<__m512>(out);
}

inline float reduce_max_ps(__m512 v) {
  const auto f = lanes<float, 16>(v);
  float m = f[0];
  for (float x : f) m = x > m ? x : m;
  return m;
}

// In the order of GCC's own: the 256-bit halves, then the 128-bit halves, then pairs.
inline float reduce_add_ps(__m512 v) {
  const auto f = lanes<float, 16>(v);
  float quad[4];
  for (int i = 0; i < 4; ++i) quad[i] = (f[12 + i] + f[4 + i]) + (f[8 + i] + f[i]);
  const float pair0 = quad[0] + quad[2], pair1 = quad[1] + quad[3];
  return pair0 + pair1;
}

inline int mask_reduce_add_epi32(__mmask16 k, __m512i v) {
  const auto x = lanes<int32_t, 16>(v);
  uint32_t sum = 0;  // wraps, as the vector adds do
  for (int i = 0; i < 16; ++i) {
    if ((k >> i) & 1) sum += static_cast<uint32_t>(x[i]);
  }
  return static_cast<int>(sum);
}

// vcvtne2ps2bf16: the low 16 results from b, the high 16 from a. Round to nearest even with NaNs
// kept quiet (core/half.h f32_to_bf16), but subnormal inputs count as zero (DAZ is implied).
inline uint16_t round_bf16_daz(float f) {
  const uint32_t bits = f32_to_bits(f);
  if ((bits & 0x7f800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);
  return f32_to_bf16(f);
}

inline __m512bh cvtne2ps_pbh(__m512 a, __m512 b) {
  const auto fa = lanes<float, 16>(a);
  const auto fb = lanes<float, 16>(b);
  std::array<uint16_t, 32> out;
  for (int i = 0; i < 16; ++i) {
    out[i] = round_bf16_daz(fb[i]);
    out[16 + i] = round_bf16_daz(fa[i]);
  }
  return from_lanes<__m512bh>(out);
}

}  // namespace autoglm::kernels::avx512_emulation

#define _mm512_cvtps_epi32(v) ::autoglm::kernels::avx512_emulation::cvtps_epi32(v)
#define _mm512_cvtepi32_ps(v) ::autoglm::kernels::avx512_emulation::cvtepi32_ps(v)
#define _mm512_cvtph_ps(h) ::autoglm::kernels::avx512_emulation::cvtph_ps(h)
#define _mm512_cvtps_ph(v, imm) ::autoglm::kernels::avx512_emulation::cvtps_ph<(imm)>(v)
#define _mm512_cvtepi32_epi16(v) ::autoglm::kernels::avx512_emulation::cvtepi32_epi16(v)
#define _mm512_zextps256_ps512(v) ::autoglm::kernels::avx512_emulation::zextps256_ps512(v)
#define _mm512_permute_ps(v, imm) ::autoglm::kernels::avx512_emulation::permute_ps(v, imm)
#define _mm512_reduce_add_ps(v) ::autoglm::kernels::avx512_emulation::reduce_add_ps(v)
#define _mm512_reduce_max_ps(v) ::autoglm::kernels::avx512_emulation::reduce_max_ps(v)
#define _mm512_mask_reduce_add_epi32(k, v) \
  ::autoglm::kernels::avx512_emulation::mask_reduce_add_epi32(k, v)
#define _mm512_cvtne2ps_pbh(a, b) ::autoglm::kernels::avx512_emulation::cvtne2ps_pbh(a, b)
// SIMDe 0.7.4's aliases of these two take (src, k, a, b); its functions are right.
#undef _mm512_madd_epi16
#undef _mm512_maskz_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#define _mm512_maskz_madd_epi16(k, a, b) simde_mm512_maskz_madd_epi16(k, a, b)

#else

#include <immintrin.h>

#endif
