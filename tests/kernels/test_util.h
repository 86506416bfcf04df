// Shared helpers for the kernel tests: deterministic random data, the ISA variants this CPU runs,
// and weight matrices built through the scalar quantizers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/half.h"
#include "core/quant_blocks.h"
#include "kernels/kernels.h"

namespace autoglm::kernels::testing {

constexpr double kU = 1.0 / 16777216.0;  // f32 unit roundoff 2^-24

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// The SIMD variants this CPU supports (scalar is the reference, so it is not in the list).
inline std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (cpu_features().supports(isa)) out.push_back(isa);
  }
  return out;
}

// Runs f at each prefetch level (kernels::prefetch_level), then restores the process's own.
template <typename F>
void at_each_prefetch_level(F&& f) {
  const PrefetchLevel own = prefetch_level();
  for (PrefetchLevel level : {PrefetchLevel::L1, PrefetchLevel::L2}) {
    set_prefetch_level(level);
    f(level);
  }
  set_prefetch_level(own);
}

// Weight bytes for `rows` x `cols`: float/q8_0/q4_0 through the scalar quantizer; q6_K (no
// quantizer) as random blocks with small random super-block scales.
inline std::vector<uint8_t> make_weights(DType dt, int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<uint8_t> bytes(row_bytes(dt, cols) * static_cast<size_t>(rows));
  if (dt == DType::Q6_K) {
    std::mt19937 rng(seed);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    auto* blocks = reinterpret_cast<BlockQ6_K*>(bytes.data());
    std::uniform_real_distribution<float> dist(1e-4f, 2e-3f);
    for (size_t i = 0; i < bytes.size() / sizeof(BlockQ6_K); ++i)
      blocks[i].d = f32_to_f16(dist(rng));
    return bytes;
  }
  const std::vector<float> w = random_floats(static_cast<size_t>(rows * cols), seed);
  const KernelTable& ref = for_isa(Isa::Scalar);
  for (int64_t r = 0; r < rows; ++r) {
    ref.quantize_row(dt, w.data() + r * cols,
                     bytes.data() + static_cast<size_t>(r) * row_bytes(dt, cols), cols);
  }
  return bytes;
}

// The weights as the kernels see them (dequantized with the scalar reference).
inline std::vector<float> dequantized(const Matrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    for_isa(Isa::Scalar).dequantize_row(m.dtype, m.row(r), out.data() + r * m.cols, m.cols);
  }
  return out;
}

inline std::string isa_label(Isa isa) {
  return isa_name(isa);
}

inline bool float_dtype(DType dt) {
  return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16;
}

// Allowed |simd - scalar| for output (t, r).
// Float weights: both sides are f32 sums of the same exact products in a different order, each
// within γ_n·Σ|w·x| of the exact value (γ_n ≈ n·2^-24), so the two differ by at most 2·γ_n·Σ|w·x|.
// Quantized weights: the SIMD path quantizes x to 8 bits per block of 32 (d_b = amax_b/127, round
// to nearest), each x_i off by at most d_b/2 (plus a few ulp of x_i from using 1/d), so the dot is
// off by at most Σ_i |w_i|·(d_b/2 + 4·2^-24·|x_i|), plus the same 2·γ_n·Σ|w·x| for summation and
// the f32 scale products. x_as_bf16: the kernel rounds x to bf16 first (the AVX-512 bf16 kernel),
// each x_i off by at most 2^-9·|x_i|, so the dot by at most 2^-9·Σ|w·x| more; with f16 weights it
// may round them too (the AVX-512 f16 kernel, 4 tokens or more): each product then off by at most
// (2·2^-9 + 2^-18)·|w_i·x_i|.
inline double allowed_error(DType dt, const float* w, const float* x, int64_t cols,
                            bool x_as_bf16 = false) {
  double sum_abs = 0.0;
  for (int64_t i = 0; i < cols; ++i) sum_abs += std::fabs(static_cast<double>(w[i]) * x[i]);
  double bound = 2.0 * static_cast<double>(cols + 4) * kU * sum_abs;
  if (x_as_bf16) bound += sum_abs * (dt == DType::F16 ? 2.0 / 512.0 + 1.0 / 262144.0 : 1.0 / 512.0);
  if (!float_dtype(dt)) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      double amax = 0.0;
      for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        bound +=
            std::fabs(w[b * 32 + j]) * (amax / 127.0 / 2.0 + 4.0 * kU * std::fabs(x[b * 32 + j]));
      }
    }
  }
  return bound + 1e-30;
}

}  // namespace autoglm::kernels::testing
