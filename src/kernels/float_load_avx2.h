// f32 / f16 / bf16 weight loads as f32 vectors, for the AVX2 float kernels (matmul_avx2.cpp,
// gemm_float_avx2.cpp).
#pragma once

#if !defined(__AVX2__)
#error "float_load_avx2.h is for the AVX2 translation units only"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace autoglm::kernels::detail {
namespace {

// Elements i..i+7 of a row.
template <DType DT>
inline __m256 load8(const void* row, int64_t i) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  } else {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
    if constexpr (DT == DType::F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// Element i of a row.
template <DType DT>
inline float load1(const void* row, int64_t i) {
  if constexpr (DT == DType::F32) return static_cast<const float*>(row)[i];
  const uint16_t h = static_cast<const uint16_t*>(row)[i];
  if constexpr (DT == DType::F16) return _cvtsh_ss(h);
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace
}  // namespace autoglm::kernels::detail
