// plan: the training arithmetic of issue 5, size parsing, fitting, and the serving estimate
// against the peak RSS the real binary reaches on a synthetic GLM-Edge-shaped model.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "models/model.h"
#include "ops/plan.h"
#include "support/fixtures.h"

namespace autoglm::ops {
namespace {

TEST(Plan, TrainingExampleOfTheIssueIs229GiB) {
  // 1.2e8 f32 params: weights 4 B + gradients 4 B + Adam m and v 8 B = 16 B each = 1.92e9 B,
  // plus 512 MiB of activations: (1.92e9 + 536870912) / 2^30 = 2.288 GiB.
  TrainOptions t;
  t.optimizer = "adam";
  t.activation_bytes = parse_size("512MiB");
  const MemoryPlan p = plan_training(120000000, t);
  EXPECT_EQ(p.total_bytes, 1920000000ull + 536870912ull);
  EXPECT_EQ(format_bytes(p.total_bytes), "2.29 GiB");
  ASSERT_EQ(p.items.size(), 4u);  // weights, gradients, optimizer states, activations
  EXPECT_EQ(p.items[2].bytes, 960000000ull);
  t.optimizer = "sgd";
  EXPECT_EQ(plan_training(120000000, t).total_bytes, 960000000ull + 536870912ull);
  t.dtype = DType::BF16;  // bf16 weights + grads, f32 master copy, no SGD state
  EXPECT_EQ(plan_training(120000000, t).total_bytes, 120000000ull * 8 + 536870912ull);
  t.optimizer = "lion";
  EXPECT_THROW(plan_training(1, t), Error);
}

TEST(Plan, ParseSize) {
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_size("2GB"), 2000000000ull);
  EXPECT_EQ(parse_size("1048576"), 1048576ull);
  EXPECT_THROW(parse_size("lots"), Error);
  EXPECT_THROW(parse_size("5 parsecs"), Error);
}

models::ModelSpec edge_small() {
  return models::spec_from_hf_config(
      testing::read_json(std::string(AUTOGLM_OPS_TEST_DIR) + "/glm4-edge-small.json"), "small");
}

TEST(Plan, WeightsAndKvFollowTheSpec) {
  const models::ModelSpec spec = edge_small();
  PlanOptions o;
  o.dtype = DType::Q8_0;
  o.context = 1000;
  o.batch = 3;
  const MemoryPlan p = plan_memory(spec, o);
  EXPECT_EQ(p.parameters, spec.parameter_count() + 2 * spec.n_layers * spec.hidden_size)
      << "glm4 has two extra sandwich norms per layer beyond ModelSpec::parameter_count";
  // KV, f16 by default: 2 (K, V) x 4 layers x 2 kv heads x 128 x 2 B = 4 KiB a token; 1000 -> 63
  // blocks of 16. An f32 cache takes twice that.
  EXPECT_EQ(p.kv_bytes_per_token, 4096u);
  EXPECT_EQ(p.kv_bytes, 3u * 63 * 16 * 4096);
  PlanOptions f32 = o;
  f32.kv_type = DType::F32;
  EXPECT_EQ(plan_memory(spec, f32).kv_bytes, 2 * p.kv_bytes);
  // q8_0 matrices: 34 B per 32 weights; norms/biases f32.
  const uint64_t matrices =
      static_cast<uint64_t>(p.parameters) - 4 * (4 * 2048) - 2048 - 4 * (2048 + 2 * 256);
  EXPECT_EQ(p.weight_bytes, matrices / 32 * 34 + (p.parameters - matrices) * 4);
  o.dtype = DType::Q4_0;
  EXPECT_LT(plan_memory(spec, o).weight_bytes, p.weight_bytes);
}

TEST(Plan, FitVerdictsAndLargestContext) {
  const models::ModelSpec spec = edge_small();
  PlanOptions o;
  o.dtype = DType::BF16;
  o.context = 2048;
  o.threads = 2;
  const uint64_t bf16 = plan_memory(spec, o).total_bytes;
  PlanOptions q8 = o, q4 = o;
  q8.dtype = DType::Q8_0;
  q4.dtype = DType::Q4_0;
  const uint64_t need_q8 = plan_memory(spec, q8).total_bytes;
  const uint64_t need_q4 = plan_memory(spec, q4).total_bytes;
  EXPECT_EQ(fit_on(spec, o, {"ram", bf16, bf16}).verdict, Verdict::Fits);
  EXPECT_EQ(fit_on(spec, o, {"ram", bf16 - 1, bf16}).verdict, Verdict::FitsWithQ8);
  EXPECT_EQ(fit_on(spec, o, {"ram", need_q8 - 1, bf16}).verdict, Verdict::FitsWithQ4);
  const FitReport none = fit_on(spec, o, {"ram", need_q4 - 1, bf16});
  EXPECT_EQ(none.verdict, Verdict::DoesNotFit);
  // The largest context is the last whole block that still fits, and one block more does not.
  const FitReport f = fit_on(spec, o, {"ram", bf16 + 100 * 8192 * 16, bf16});
  EXPECT_EQ(f.verdict, Verdict::Fits);
  PlanOptions at = o;
  at.context = f.max_context;
  EXPECT_LE(plan_memory(spec, at).total_bytes, f.available);
  at.context += 16;
  EXPECT_GT(plan_memory(spec, at).total_bytes, f.available);
  EXPECT_GE(f.max_context, 2048 + 100 * 16 - 16);
}

// Runs argv to completion; returns the exit status and the child's peak RSS (ru_maxrss = VmHWM).
std::pair<int, uint64_t> run_peak(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          static_cast<uint64_t>(usage.ru_maxrss) * 1024};
}

TEST(Plan, WithinTenPercentOfMeasuredPeakRss) {
  const std::string bin = AUTOGLM_BIN_DEFAULT;
  const auto dir = testing::temp_dir("plan_rss");
  const std::string model = (dir / "edge-small-q8_0.gguf").string();
  ASSERT_EQ(run_peak({bin, "synth", "--config",
                      std::string(AUTOGLM_OPS_TEST_DIR) + "/glm4-edge-small.json", "--out", model,
                      "--dtype", "q8_0", "-t", "2"})
                .first,
            0);
  // 64 prompt tokens in one forward pass, then 16 decoded: context 80.
  std::string tokens;
  for (int i = 1; i <= 64; ++i) {
    if (i > 1) tokens += ',';
    tokens += std::to_string(i);
  }
  const auto [rc, peak] =
      run_peak({bin, "--log-level", "error", "run", "-m", model, "--tokens", tokens, "-n", "16",
                "--ignore-eos", "--temperature", "0", "-t", "2"});
  ASSERT_EQ(rc, 0);
  PlanOptions o;
  o.context = 80;
  o.batch = 1;
  o.step_tokens = 64;
  o.threads = 2;
  formats::TensorStore store = formats::open_weights(model);
  const MemoryPlan p = plan_memory(models::read_spec(model), o, &store);
  const double ratio = static_cast<double>(p.total_bytes) / static_cast<double>(peak);
  std::printf("plan %s, measured peak RSS %s, ratio %.3f\n", format_bytes(p.total_bytes).c_str(),
              format_bytes(peak).c_str(), ratio);
  EXPECT_NEAR(ratio, 1.0, 0.10);
}

}  // namespace
}  // namespace autoglm::ops
