// GGUF block bit-exactness. glm-tiny-q8_0.gguf and glm-tiny-q4_0.gguf were made by llama-quantize
// from the glm-tiny weights (fixtures README). Measured here: their blocks are what ggml's
// reference quantizers give for the f16-rounded weights (glm-tiny-f16.gguf), i.e. llama-quantize
// read the f16 file; quantizing the f32 weights instead changes ~25% of the q8_0 scales. So our
// scalar quantizer applied to the f16 values must reproduce every block byte for byte, and
// dequantized values must sit within half a quantization step of those values (allowances derived
// below) and within that plus the f16 rounding of the input of the f32 weights.
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
double allowance(double half_steps, int qmax) {
  return half_steps + qmax / 2048.0 + 1e-6;
}

std::vector<float> f32_values(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

std::vector<float> f16_values(const TensorView& t) {
  EXPECT_EQ(t.dtype, DType::F16) << t.name;
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, t.data + 2 * i, 2);
    v[i] = f16_to_f32(h);
  }
  return v;
}

// Input rounding: |f16(x) - x| <= |x|·2^-11, and |x| <= (qmax + 1) steps, so comparing with the
// f32 weights adds (qmax + 1)·2^-11 steps.
double f16_input_allowance(int qmax) {
  return (qmax + 1) / 2048.0;
}

struct QuantCheck {
  int tensors = 0;
  int exact = 0;           // byte-identical when quantizing the f16 values
  int exact_from_f32 = 0;  // byte-identical when quantizing the f32 values (for the record)
  size_t values = 0;
  size_t clipped = 0;  // q4_0 values at the clamped end of the range
  double worst = 0;    // largest |dequantized - source| in steps
};

std::vector<std::byte> quantize(const std::vector<float>& x, const TensorView& like) {
  const auto& k = kernels::for_isa(Isa::Scalar);
  const size_t row = row_bytes(like.dtype, like.cols());
  std::vector<std::byte> out(like.nbytes);
  for (int64_t r = 0; r < like.rows(); ++r) {
    k.quantize_row(like.dtype, x.data() + r * like.cols(), out.data() + r * row, like.cols());
  }
  return out;
}

std::vector<float> dequantize(const TensorView& t) {
  const auto& k = kernels::for_isa(Isa::Scalar);
  const size_t row = row_bytes(t.dtype, t.cols());
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) {
    k.dequantize_row(t.dtype, t.data + r * row, out.data() + r * t.cols(), t.cols());
  }
  return out;
}

// `x16` / `x32`: the f16-rounded and the f32 weights of `quant`.
void check_tensor(const std::vector<float>& x16, const std::vector<float>& x32,
                  const TensorView& quant, QuantCheck& c) {
  ++c.tensors;
  const auto mine = quantize(x16, quant);
  const bool exact = std::memcmp(mine.data(), quant.data, quant.nbytes) == 0;
  c.exact += exact;
  EXPECT_TRUE(exact) << quant.name;
  c.exact_from_f32 += std::memcmp(quantize(x32, quant).data(), quant.data, quant.nbytes) == 0;

  const auto deq = dequantize(quant);
  const bool q8 = quant.dtype == DType::Q8_0;
  for (size_t i = 0; i < x16.size(); ++i) {
    double step = 0;
    bool clipped = false;
    const size_t b = i / kQK;
    if (q8) {
      step = f16_to_f32(reinterpret_cast<const BlockQ8_0*>(quant.data)[b].d);
    } else {
      const auto& blk = reinterpret_cast<const BlockQ4_0*>(quant.data)[b];
      step = std::fabs(f16_to_f32(blk.d));
      const int j = static_cast<int>(i % kQK);
      const int q = j < 16 ? blk.qs[j] & 15 : blk.qs[j - 16] >> 4;
      // ggml clamps x·id + 8.5 at 15: a value at +8 steps lands on 7, a whole step away.
      clipped = q == 15 && std::fabs(x16[i] - deq[i]) > 0.5 * step;
    }
    if (step == 0) continue;
    const double err = std::fabs(double(x16[i]) - deq[i]) / step;
    const double limit = q8 ? allowance(0.5, 127) : allowance(clipped ? 1.0 : 0.5, 8);
    EXPECT_LE(err, limit) << quant.name << " value " << i;
    const double err32 = std::fabs(double(x32[i]) - deq[i]) / step;
    EXPECT_LE(err32, limit + f16_input_allowance(q8 ? 127 : 8)) << quant.name << " value " << i;
    c.worst = std::max(c.worst, err);
    c.clipped += clipped;
    ++c.values;
  }
}

TEST(GgufBlocks, ScalarQuantizerReproducesLlamaQuantizeBytes) {
  const TensorStore f32 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f32.gguf");
  const TensorStore f16 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f16.gguf");
  for (const std::string file : {"glm-tiny-q8_0.gguf", "glm-tiny-q4_0.gguf"}) {
    SCOPED_TRACE(file);
    const TensorStore q = open_gguf(fixtures_dir() / "gguf" / file);
    QuantCheck c;
    for (const auto& name : q.names()) {
      const auto& t = q.get(name);
      if (t.dtype != DType::Q8_0 && t.dtype != DType::Q4_0) continue;
      check_tensor(f16_values(f16.get(name)), f32_values(f32.get(name)), t, c);
    }
    // Every 2-D tensor: 2 + 6 per block; in the q4_0 file output.weight is q6_K instead.
    EXPECT_EQ(c.tensors, file == std::string("glm-tiny-q8_0.gguf") ? 26 : 25);
    EXPECT_EQ(c.exact, c.tensors);
    std::printf(
        "%s: %d of %d tensors byte-identical from the f16 weights (%d from the f32 "
        "weights); %zu values, worst error %.4f steps, %zu clipped at +8 steps\n",
        file.c_str(), c.exact, c.tensors, c.exact_from_f32, c.values, c.worst, c.clipped);
  }
}

TEST(GgufBlocks, Q6KDequantizesWithinHalfAStep) {
  // q6_K (ggml quantize_row_q6_K_ref): the step of element j of a super-block is
  // d16 · scales[j / 16], and the final quants are nearest_int(x / step) clamped to [-32, 31], so
  // an unclamped value is within half a step of its source; a clamped one (+32 steps -> 31)
  // within 1.5 (bounds on the f16 source; the f32 weights add the f16 input rounding).
  const TensorStore f32 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f32.gguf");
  const TensorStore f16 = open_gguf(fixtures_dir() / "gguf/glm-tiny-f16.gguf");
  const TensorStore q = open_gguf(fixtures_dir() / "gguf/glm-tiny-q4_0.gguf");
  const auto& t = q.get("output.weight");
  ASSERT_EQ(t.dtype, DType::Q6_K);
  const auto x16 = f16_values(f16.get("output.weight"));
  const auto x32 = f32_values(f32.get("output.weight"));
  const auto deq = dequantize(t);
  size_t clamped = 0;
  double worst = 0;
  for (size_t i = 0; i < x16.size(); ++i) {
    const auto& blk = reinterpret_cast<const BlockQ6_K*>(t.data)[i / kQK_K];
    const double signed_step = f16_to_f32(blk.d) * blk.scales[(i % kQK_K) / 16];
    const double step = std::fabs(signed_step);
    ASSERT_GT(step, 0);
    const long q6 = std::lround(deq[i] / signed_step);
    const double err = std::fabs(double(x16[i]) - deq[i]) / step;
    const bool is_clamped = (q6 == 31 || q6 == -32) && err > 0.5 + 1e-5;
    const double limit = (is_clamped ? 1.5 : 0.5) + 1e-5;
    EXPECT_LE(err, limit) << i;
    EXPECT_LE(std::fabs(double(x32[i]) - deq[i]) / step, limit + f16_input_allowance(32)) << i;
    clamped += is_clamped;
    if (!is_clamped) worst = std::max(worst, err);
  }
  std::printf("q6_K output.weight: %zu values, worst unclamped error %.4f steps, %zu clamped\n",
              x16.size(), worst, clamped);
}

}  // namespace
}  // namespace autoglm::formats
