// Load-time conversion (--dtype) of the HF fixtures, and llama.cpp-written GGUF files, against the
// f32 reference. Quantization changes the numbers, so the bounds are per dtype: they were set from
// measured errors (printed by each test) with about 2x headroom, and they are far below what a
// wrong block layout or scale produces (a relative error of the order of 1).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "kernels/kernels.h"

#include "model_runner.h"
#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

struct QuantCase {
  std::string dir;
  std::string section;
  DType dtype;
  double max_rel_rms;  // bound on the RMS logit error relative to the RMS of the logits
};

void PrintTo(const QuantCase& c, std::ostream* os) {
  *os << c.dir << "/" << dtype_name(c.dtype);
}

class ConvertedFixture : public ::testing::TestWithParam<QuantCase> {};

TEST_P(ConvertedFixture, StaysCloseToReference) {
  const QuantCase& c = GetParam();
  const auto dir = fixtures_dir() / "hf-tiny" / c.dir;
  nlohmann::json expected = read_json(dir / "expected.json");
  if (!c.section.empty()) expected = expected[c.section];

  ThreadPool pool(2);
  auto model = models::Model::load(dir, {c.dtype}, pool);
  const auto prompt = expected["input_ids"].get<std::vector<int32_t>>();
  const auto generated = expected["generated_ids"].get<std::vector<int32_t>>();
  const FixtureRun run = run_fixture(*model, prompt, generated);

  auto all_rows = [](const FixtureRun& r) {
    auto rows = r.prefill_logits;
    rows.insert(rows.end(), r.decode_logits.begin(), r.decode_logits.end());
    return rows;
  };
  auto reference = json_matrix(expected["prefill_logits"]);
  const auto decode_ref = json_matrix(expected["decode_logits"]);
  reference.insert(reference.end(), decode_ref.begin(), decode_ref.end());
  const double rel = relative_rms_error(all_rows(run), reference);
  const double max_err = max_abs_diff_rows(all_rows(run), reference);
  int equal = 0;
  for (size_t i = 0; i < generated.size(); ++i) equal += run.greedy[i] == generated[i];
  std::printf("[ %s %s ] logit error: relative RMS %.4f, max %.4f; greedy %d/%zu equal\n",
              c.dir.c_str(), std::string(dtype_name(c.dtype)).c_str(), rel, max_err, equal,
              generated.size());
  EXPECT_LE(rel, c.max_rel_rms);
}

std::vector<QuantCase> quant_cases() {
  std::vector<QuantCase> cases;
  const std::vector<std::pair<std::string, std::string>> fixtures = {
      {"glm", ""},   {"glm4", ""},    {"glm4_moe", ""},
      {"llama", ""}, {"chatglm", ""}, {"glm4v", "text_only"}};
  for (const auto& [dir, section] : fixtures) {
    // Measured (scalar / AVX-512 paths, 2026-11): f16 <= 0.0009, bf16 <= 0.0074, q8_0 <= 0.031
    // (0.082 for the MoE: an expert choice can flip), q4_0 <= 0.34. A wrong block layout, scale
    // or nibble order gives a relative error of 1 or more.
    const bool moe = dir == "glm4_moe";
    cases.push_back({dir, section, DType::F16, 0.002});
    cases.push_back({dir, section, DType::BF16, 0.015});
    cases.push_back({dir, section, DType::Q8_0, moe ? 0.15 : 0.05});
    cases.push_back({dir, section, DType::Q4_0, 0.5});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ConvertedFixture, ::testing::ValuesIn(quant_cases()),
                         [](const ::testing::TestParamInfo<QuantCase>& param_info) {
                           return param_info.param.dir + "_" +
                                  std::string(dtype_name(param_info.param.dtype));
                         });

// GGUF files written by llama.cpp's tools from one set of random glm4 weights.
class GgufFile : public ::testing::TestWithParam<std::pair<std::string, double>> {};

std::vector<int32_t> gguf_prompt() {
  std::vector<int32_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(300 + 37 * i);  // plain tokens of the 1024 vocabulary
  return ids;
}

FixtureRun run_gguf(const std::string& name, std::vector<int32_t> continuation) {
  ThreadPool pool(2);
  auto model = models::Model::load(fixtures_dir() / "gguf" / name, {}, pool);
  return run_fixture(*model, gguf_prompt(), continuation);
}

TEST_P(GgufFile, AgreesWithF32File) {
  const auto& [name, bound] = GetParam();
  const FixtureRun reference = run_gguf("glm-tiny-f32.gguf", std::vector<int32_t>(8, 0));
  // Feed the f32 model's own greedy tokens to both, then compare.
  std::vector<int32_t> tokens = reference.greedy;
  const FixtureRun ref = run_gguf("glm-tiny-f32.gguf", tokens);
  const FixtureRun run = run_gguf(name, tokens);
  auto rows = run.prefill_logits;
  rows.insert(rows.end(), run.decode_logits.begin(), run.decode_logits.end());
  auto ref_rows = ref.prefill_logits;
  ref_rows.insert(ref_rows.end(), ref.decode_logits.begin(), ref.decode_logits.end());
  const double rel = relative_rms_error(rows, ref_rows);
  std::printf("[ %s ] logit error vs the f32 file: relative RMS %.4f, max %.4f\n", name.c_str(),
              rel, max_abs_diff_rows(rows, ref_rows));
  EXPECT_LE(rel, bound);
}

INSTANTIATE_TEST_SUITE_P(
    LlamaCppFiles, GgufFile,
    // Measured: f16 0.0007, q8_0 0.024, q4_0 (+ q6_K output) 0.32.
    ::testing::Values(std::pair<std::string, double>{"glm-tiny-f16.gguf", 0.002},
                      std::pair<std::string, double>{"glm-tiny-q8_0.gguf", 0.05},
                      std::pair<std::string, double>{"glm-tiny-q4_0.gguf", 0.5}));

// Prefill of a whole prompt must equal feeding it one token at a time through the KV cache.
TEST(GgufFile, PrefillEqualsTokenByTokenDecode) {
  ThreadPool pool(2);
  auto model = models::Model::load(fixtures_dir() / "gguf" / "glm-tiny-q8_0.gguf", {}, pool);
  const auto prompt = gguf_prompt();
  const FixtureRun whole = run_fixture(*model, prompt, {});
  const FixtureRun stepwise =
      run_fixture(*model, {prompt[0]}, std::vector<int32_t>(prompt.begin() + 1, prompt.end()));
  std::vector<std::vector<float>> stepped = {stepwise.prefill_logits[0]};
  stepped.insert(stepped.end(), stepwise.decode_logits.begin(), stepwise.decode_logits.end());
  EXPECT_LE(max_abs_diff_rows(whole.prefill_logits, stepped), 1e-4);
}

// Packing runs a layer's separate q, k and v as one fused matrix (models/weight_packing.cpp): the
// logits must stay those of the unfused, unpacked model (AUTOGLM_REPACK=0), up to the summation
// order of the packed kernels.
TEST(PackedWeights, FusedQkvGivesTheUnfusedLogits) {
  const auto dir = fixtures_dir() / "gguf" / "glm-tiny-f32.gguf";
  ThreadPool pool(2);
  auto fused = models::Model::load(dir, {}, pool);
  if (fused->weight_summary().find("repacked") == std::string::npos)
    GTEST_SKIP() << "the " << isa_name(kernels::active().isa) << " kernels do not repack weights";
  EXPECT_NE(fused->weight_summary().find("q, k and v fused into one matrix in 4 layers"),
            std::string::npos)
      << fused->weight_summary();
  ::setenv("AUTOGLM_REPACK", "0", 1);
  auto plain = models::Model::load(dir, {}, pool);
  ::unsetenv("AUTOGLM_REPACK");
  EXPECT_EQ(plain->weight_summary().find("fused"), std::string::npos) << plain->weight_summary();
  const std::vector<int32_t> continuation = {5, 6, 7};
  const FixtureRun a = run_fixture(*fused, gguf_prompt(), continuation);
  const FixtureRun b = run_fixture(*plain, gguf_prompt(), continuation);
  EXPECT_LE(max_abs_diff_rows(a.prefill_logits, b.prefill_logits), 1e-4);
  EXPECT_LE(max_abs_diff_rows(a.decode_logits, b.decode_logits), 1e-4);
}

// f16 weights whose every value is also a bf16 value (the bf16 fixture converted to f16 at load, as
// an f16 file made from a bf16 release holds) are packed as bf16 (kernels::pack_f16_as_bf16): the
// load says so, and the logits stay those of the f16 matrices unpacked (AUTOGLM_REPACK=0), up to
// the summation order. f16 converted from f32 weights keeps its f16 kernels.
TEST(PackedWeights, F16HoldingBf16ValuesRunsAsBf16WithTheSameLogits) {
  ThreadPool pool(2);
  models::LoadOptions as_f16;
  as_f16.dtype = DType::F16;
  as_f16.activations = models::Activations::kF32;  // the packing alone, not bf16 products
  const auto dir = fixtures_dir() / "hf-tiny" / "glm4_bf16";
  auto packed = models::Model::load(dir, as_f16, pool);
  if (packed->weight_summary().find("repacked") == std::string::npos)
    GTEST_SKIP() << "the " << isa_name(kernels::active().isa) << " kernels do not repack weights";
  EXPECT_NE(packed->weight_summary().find("f16 matrices hold only bf16 values"), std::string::npos)
      << packed->weight_summary();
  ::setenv("AUTOGLM_REPACK", "0", 1);
  auto plain = models::Model::load(dir, as_f16, pool);
  ::unsetenv("AUTOGLM_REPACK");
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<int32_t> continuation = {9, 10, 11};
  const FixtureRun a = run_fixture(*packed, prompt, continuation);
  const FixtureRun b = run_fixture(*plain, prompt, continuation);
  EXPECT_LE(max_abs_diff_rows(a.prefill_logits, b.prefill_logits), 1e-4);
  EXPECT_LE(max_abs_diff_rows(a.decode_logits, b.decode_logits), 1e-4);
  auto from_f32 = models::Model::load(fixtures_dir() / "hf-tiny" / "glm4", as_f16, pool);
  EXPECT_EQ(from_f32->weight_summary().find("bf16"), std::string::npos)
      << from_f32->weight_summary();
}

TEST(GgufFile, ChatglmArchLoadsAndRuns) {
  ThreadPool pool(2);
  auto model = models::Model::load(fixtures_dir() / "gguf" / "glm-tiny-chatglm-f16.gguf", {}, pool);
  EXPECT_EQ(model->spec().arch, "chatglm");
  EXPECT_EQ(model->spec().n_layers, 4);
  EXPECT_EQ(model->spec().rotary_dims, 16);
  const FixtureRun run = run_fixture(*model, gguf_prompt(), {5, 6});
  for (const auto& row : run.prefill_logits)
    for (float v : row) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace autoglm::testing
