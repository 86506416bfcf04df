// The row-wise blocks split a prompt's rows over the pool (for_row_chunks in blocks.cpp); each
// row's result must not depend on the split: the same bits as the kernels on one row at a time.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "models/blocks.h"
#include "models/model.h"
#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

// Enough rows of width 64 for several 64K-element chunks on 3 threads.
constexpr int64_t kRows = 5000, kWidth = 64;

std::vector<float> random_values(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

struct Split {
  models::ModelSpec spec;
  ThreadPool pool{3};
  models::ForwardScratch scratch;
  models::ForwardState st{spec, pool, {}, scratch, kRows, {}};
  Split() {
    spec.hidden_size = kWidth;
    spec.rms_eps = 1e-5f;
  }
};

TEST(RowBlocks, RmsNormOverThreadsMatchesRowByRow) {
  Split s;
  const auto x = random_values(kRows * kWidth, 1);
  const auto w = random_values(kWidth, 2);
  std::vector<float> y(x.size()), expected(x.size());
  models::rms_norm_rows(s.st, x.data(), w.data(), kRows, kWidth, y.data());
  const auto& kt = kernels::active();
  for (int64_t r = 0; r < kRows; ++r)
    kt.rms_norm(x.data() + r * kWidth, w.data(), kWidth, s.spec.rms_eps,
                expected.data() + r * kWidth);
  EXPECT_EQ(y, expected);
}

TEST(RowBlocks, ResidualAddOverThreadsMatchesOneCall) {
  Split s;
  auto x = random_values(kRows * kWidth, 3);
  const auto y = random_values(kRows * kWidth, 4);
  auto expected = x;
  kernels::active().add(expected.data(), y.data(), kRows * kWidth);
  models::add_rows(s.st, x.data(), y.data());
  EXPECT_EQ(x, expected);
}

// A whole prompt long enough that every row-wise block splits over 3 threads (the tiny glm4
// fixture's rows are narrow: 1500 tokens): the same logits as on one thread, bit for bit, since
// each row is computed whole by one thread either way.
TEST(RowBlocks, LongPromptGivesTheSameLogitsOnOneAndThreeThreads) {
  const auto dir = fixtures_dir() / "hf-tiny" / "glm4";
  ThreadPool load_pool(1);
  auto model = models::Model::load(dir, {}, load_pool);
  std::vector<int32_t> prompt(1500);
  std::mt19937 rng(7);
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng() % model->spec().vocab_size);
  auto logits_on = [&](int threads) {
    ThreadPool pool(threads);
    models::KvCache cache(model->spec(), static_cast<int64_t>(prompt.size()), DType::F16);
    models::ForwardScratch scratch;
    std::vector<float> logits;
    models::SequenceChunk chunk{&cache, prompt, true};
    model->forward(std::span(&chunk, 1), scratch, pool, logits);
    return logits;
  };
  const auto one = logits_on(1);
  const auto three = logits_on(3);
  ASSERT_EQ(one.size(), prompt.size() * static_cast<size_t>(model->spec().vocab_size));
  EXPECT_EQ(one, three);
}

}  // namespace
}  // namespace autoglm::testing
