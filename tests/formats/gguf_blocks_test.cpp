// GGUF block bit-exactness. glm-tiny-q8_0.gguf and glm-tiny-q4_0.gguf were made by llama-quantize
// from the weights of glm-tiny-f32.gguf (fixtures README), so our scalar quantizer applied to the
// f32 tensors must give the same blocks byte for byte, and dequantized values must sit within half
// a quantization step of the f32 weights (allowances derived below).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "core/quant_blocks.h"
#include "formats/tensor_store.h"
#include "kernels/kernels.h"
#include "support/fixtures.h"

namespace autoglm::formats {
namespace {

using autoglm::testing::fixtures_dir;

// f16 rounds a scale d to d16 with |d16 - d| <= d·2^-11 (11 significant bits). A value quantized
// to q with the f32 scale and dequantized with d16 is off by at most |q|·|d16 - d| more than the
// rounding error itself, so the allowance is (0.5 + |q|max · 2^-11) steps (+1e-6 for float math).
double allowance(double half_steps, int qmax) { return half_steps + qmax / 2048.0 + 1e-6; }

std::vector<float> f32_values(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

struct QuantCheck {
  int tensors = 0;
  int exact = 0;
  size_t values = 0;
  size_t clipped = 0;  // q4_0 / q6_K values at the clamped end of the range
  double worst = 0;    // largest |dequantized - f32| in steps
};

// Quantizes each row of `f32` with the scalar kernel and compares with `quant`'s bytes; checks the
// dequantized values against the f32 weights.
void check_tensor(const TensorView& f32, const TensorView& quant, QuantCheck& c) {
  const auto& k = kernels::for_isa(Isa::Scalar);
  const auto x = f32_values(f32);
  const size_t row = row_bytes(quant.dtype, quant.cols());
  std::vector<std::byte> mine(quant.nbytes);
  std::vector<float> deq(x.size());
  for (int64_t r = 0; r < quant.rows(); ++r) {
    k.quantize_row(quant.dtype, x.data() + r * quant.cols(), mine.data() + r * row, quant.cols());
    k.dequantize_row(quant.dtype, quant.data + r * row, deq.data() + r * quant.cols(), quant.cols());
  }
  ++c.tensors;
  c.exact += std::memcmp(mine.data(), quant.data, quant.nbytes) == 0;
  EXPECT_EQ(std::memcmp(mine.data(), quant.data, quant.nbytes), 0) << quant.name;

  for (size_t i = 0; i < x.size(); ++i) {
    double step = 0;
    bool clipped = false;
    const size_t b = i / kQK;
    if (quant.dtype == DType::Q8_0) {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(quant.data) + b;
      step = f16_to_f32(blk->d);
    } else {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(quant.data) + b;
      step = std::fabs(f16_to_f32(blk->d));
      const int j = static_cast<int>(i % kQK);
      const int q = j < 16 ? blk->qs[j] & 15 : blk->qs[j - 16] >> 4;
      // ggml clamps x·id + 8.5 at 15: a value at +8 steps lands on 7, a whole step away.
      clipped = q == 15 && std::fabs(x[i] - deq[i]) > 0.5 * step;
    }
    const double err = step > 0 ? std::fabs(double(x[i]) - deq[i]) / step : 0;
    const double limit = quant.dtype == DType::Q8_0 ? allowance(0.5, 127) : allowance(clipped ? 1.0 : 0.5, 8);
    EXPECT_LE(err, limit) << quant.name << " value " << i;
    c.worst = std::max(c.worst, err);
    c.clipped += clipped;
    ++c.values;
  }
}

TEST(GgufBlocks, ScalarQuantizerReproducesLlamaQuantizeBytes) {
  const TensorStore f32 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f32.gguf");
  for (const std::string file : {"glm-tiny-q8_0.gguf", "glm-tiny-q4_0.gguf"}) {
    SCOPED_TRACE(file);
    const TensorStore q = open_gguf(fixtures_dir() / "gguf" / file);
    QuantCheck c;
    for (const auto& name : q.names()) {
      const auto& t = q.get(name);
      if (t.dtype != DType::Q8_0 && t.dtype != DType::Q4_0) continue;
      check_tensor(f32.get(name), t, c);
    }
    EXPECT_EQ(c.tensors, file == std::string("glm-tiny-q8_0.gguf") ? 26 : 25);
    EXPECT_EQ(c.exact, c.tensors);
    std::printf("%s: %d of %d tensors byte-identical; %zu values, worst error %.4f steps, %zu "
                "clipped at +8 steps\n", file.c_str(), c.exact, c.tensors, c.values, c.worst,
                c.clipped);
  }
}

TEST(GgufBlocks, Q6KDequantizesWithinHalfAStep) {
  // q6_K (ggml quantize_row_q6_K_ref): step of element j of a super-block = d16 · scales[j / 16];
  // the final quants are nearest_int(x / step) clamped to [-32, 31], so unclamped values are
  // within half a step; a clamped one (at +32 steps -> 31) within 1.5.
  const TensorStore f32 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f32.gguf");
  const TensorStore q = open_gguf(fixtures_dir() / "gguf/glm-tiny-q4_0.gguf");
  const auto& t = q.get("output.weight");
  ASSERT_EQ(t.dtype, DType::Q6_K);
  const auto x = f32_values(f32.get("output.weight"));
  std::vector<float> deq(x.size());
  const auto& k = kernels::for_isa(Isa::Scalar);
  const size_t row = row_bytes(t.dtype, t.cols());
  for (int64_t r = 0; r < t.rows(); ++r) {
    k.dequantize_row(t.dtype, t.data + r * row, deq.data() + r * t.cols(), t.cols());
  }
  size_t clamped = 0;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(t.data) + i / kQK_K;
    const double step = std::fabs(f16_to_f32(blk->d) * blk->scales[(i % kQK_K) / 16]);
    ASSERT_GT(step, 0);
    const double q6 = deq[i] / (f16_to_f32(blk->d) * blk->scales[(i % kQK_K) / 16]);
    const bool at_end = std::lround(q6) == 31 || std::lround(q6) == -32;
    const double err = std::fabs(double(x[i]) - deq[i]) / step;
    const bool is_clamped = at_end && err > 0.5 + 1e-5;
    EXPECT_LE(err, (is_clamped ? 1.5 : 0.5) + 1e-5) << i;
    clamped += is_clamped;
    worst = std::max(worst, is_clamped ? 0.0 : err);
  }
  std::printf("q6_K output.weight: %zu values, worst unclamped error %.4f steps, %zu clamped\n",
              x.size(), worst, clamped);
}

}  // namespace
}  // namespace autoglm::formats
