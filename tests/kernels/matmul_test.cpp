// matmul_rows of every SIMD variant x every weight dtype x odd shapes, against the scalar
// reference.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/thread_pool.h"
#include "test_util.h"

namespace autoglm::kernels::testing {
namespace {

struct Shape {
  int64_t rows, cols, n_tokens;
};

class MatmulRows : public ::testing::TestWithParam<std::tuple<Isa, DType, Shape>> {};

TEST_P(MatmulRows, MatchesScalarReferenceWithinDerivedBound) {
  const auto [isa, dt, shape] = GetParam();
  const std::vector<uint8_t> bytes = make_weights(dt, shape.rows, shape.cols, 1234);
  const Matrix w{dt, shape.rows, shape.cols, bytes.data()};
  const std::vector<float> x =
      random_floats(static_cast<size_t>(shape.n_tokens * shape.cols), 99, -2.0f, 2.0f);
  const std::vector<float> wf = dequantized(w);

  const int64_t ldy = shape.rows + 3;  // a padded output stride, to catch ldy/rows mix-ups
  std::vector<float> ref(static_cast<size_t>(shape.n_tokens * ldy), -7.0f);
  std::vector<float> got(ref);
  for_isa(Isa::Scalar).matmul_rows(w, x.data(), shape.n_tokens, ref.data(), ldy, 0, shape.rows);
  // Two row ranges, so a kernel that ignores r0 or writes outside [r0, r1) is caught.
  const int64_t mid = shape.rows / 3;
  for_isa(isa).matmul_rows(w, x.data(), shape.n_tokens, got.data(), ldy, 0, mid);
  for_isa(isa).matmul_rows(w, x.data(), shape.n_tokens, got.data(), ldy, mid, shape.rows);

  for (int64_t t = 0; t < shape.n_tokens; ++t) {
    for (int64_t r = 0; r < ldy; ++r) {
      const size_t i = static_cast<size_t>(t * ldy + r);
      if (r >= shape.rows) {
        ASSERT_EQ(got[i], -7.0f) << "wrote past the rows at t=" << t << " r=" << r;
        continue;
      }
      const double tol =
          allowed_error(dt, wf.data() + r * shape.cols, x.data() + t * shape.cols, shape.cols);
      ASSERT_NEAR(got[i], ref[i], tol) << "t=" << t << " r=" << r;
    }
  }
}

std::vector<std::tuple<Isa, DType, Shape>> cases() {
  std::vector<std::tuple<Isa, DType, Shape>> out;
  const std::vector<Shape> quant_shapes = {
      {37, 64, 1}, {19, 96, 3}, {33, 256, 5}, {8, 512, 17}, {21, 768, 4}};
  // One-token shapes reach the decode kernel's 16-, 8- and 1-column steps and its 4-row blocks.
  // From 32 tokens the AVX2 panel GEMM runs: {19, 1100, 45} has a partial 16-row panel, column
  // chunks of 512, 512 and 76 (not a multiple of 8) and a padded last group of 3 tokens;
  // {16, 64, 140} spans two token chunks of 128.
  const std::vector<Shape> float_shapes = {{37, 67, 1},    {19, 13, 3},  {33, 256, 5}, {8, 515, 17},
                                           {5, 7, 2},      {21, 768, 4}, {22, 91, 1},  {3, 2048, 1},
                                           {19, 1100, 45}, {16, 64, 140}};
  for (Isa isa : simd_isas()) {
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      for (const Shape& s : float_shapes) out.emplace_back(isa, dt, s);
    }
    for (DType dt : {DType::Q8_0, DType::Q4_0}) {
      for (const Shape& s : quant_shapes) out.emplace_back(isa, dt, s);
    }
    for (const Shape& s : quant_shapes) {
      if (s.cols % 256 == 0) out.emplace_back(isa, DType::Q6_K, s);
    }
  }
  return out;
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<Isa, DType, Shape>>& info) {
  const auto& [isa, dt, s] = info.param;
  return isa_label(isa) + "_" + std::string(dtype_name(dt)) + "_" + std::to_string(s.rows) + "x" +
         std::to_string(s.cols) + "_t" + std::to_string(s.n_tokens);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, MatmulRows, ::testing::ValuesIn(cases()), case_name);

// The scalar reference itself against a double-precision dot of the dequantized weights.
TEST(MatmulScalar, EqualsDoubleDotOfDequantizedWeights) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q6_K}) {
    const std::vector<uint8_t> bytes = make_weights(dt, 9, 256, 7);
    const Matrix w{dt, 9, 256, bytes.data()};
    const std::vector<float> wf = dequantized(w);
    const std::vector<float> x = random_floats(2 * 256, 8);
    std::vector<float> y(2 * 9);
    for_isa(Isa::Scalar).matmul_rows(w, x.data(), 2, y.data(), 9, 0, 9);
    for (int t = 0; t < 2; ++t) {
      for (int r = 0; r < 9; ++r) {
        double exact = 0.0, sum_abs = 0.0;
        for (int c = 0; c < 256; ++c) {
          exact += static_cast<double>(wf[r * 256 + c]) * x[t * 256 + c];
          sum_abs += std::fabs(static_cast<double>(wf[r * 256 + c]) * x[t * 256 + c]);
        }
        EXPECT_NEAR(y[t * 9 + r], exact, 256 * kU * sum_abs) << dtype_name(dt);
      }
    }
  }
}

// matmul(): the pool split and the bias, against matmul_rows of the active table plus the bias.
// The integer types quantize x once per matmul (tokens split over the pool from a few hundred
// tokens of 1024 columns: the 600-token shape has 3 chunks) and must give the same bits as
// matmul_rows, which quantizes x itself.
TEST(Matmul, PoolSplitAndBiasMatchSingleThread) {
  ThreadPool pool(3);
  for (const Shape& shape : {Shape{101, 256, 5}, Shape{40, 1024, 600}, Shape{37, 1024, 1}})
    for (DType dt : {DType::F32, DType::Q4_0, DType::Q8_0, DType::Q6_K}) {
      const int64_t rows = shape.rows, cols = shape.cols, n = shape.n_tokens;
      const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 3);
      const Matrix w{dt, rows, cols, bytes.data()};
      const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), 4);
      const std::vector<float> bias = random_floats(static_cast<size_t>(rows), 5);
      std::vector<float> expect(static_cast<size_t>(n * rows)), got(expect.size());
      active().matmul_rows(w, x.data(), n, expect.data(), rows, 0, rows);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < rows; ++r) expect[t * rows + r] += bias[r];
      }
      matmul(w, x.data(), n, got.data(), pool, bias.data());
      // Same kernel on the same rows: only the row split differs, and rows are independent.
      EXPECT_EQ(got, expect) << dtype_name(dt) << " " << rows << "x" << cols << ", " << n;
    }
}

}  // namespace
}  // namespace autoglm::kernels::testing
