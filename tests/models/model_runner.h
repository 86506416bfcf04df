// Runs a model over a fixture's prompt and greedy continuation, the way the fixtures were made:
// prefill logits for every prompt position, then each expected token fed with the KV cache.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace autoglm::testing {

struct FixtureRun {
  std::vector<std::vector<float>> prefill_logits;  // [T][V]
  std::vector<std::vector<float>> decode_logits;   // [N][V], decode_logits[i] after feeding gen[i]
  std::vector<int32_t> greedy;                     // our argmax at each step (N tokens)
};

// `expected_generated` is fed back (teacher forcing) so logits stay comparable even if one
// greedy choice differed; `greedy` records what we would have chosen. The KV cache is f32 unless
// kv_type says otherwise, so that each fixture test measures one source of error.
FixtureRun run_fixture(const models::Model& model, const std::vector<int32_t>& prompt,
                       const std::vector<int32_t>& expected_generated, int n_threads = 2,
                       DType kv_type = DType::F32);

std::vector<std::vector<float>> json_matrix(const nlohmann::json& j);
int32_t argmax(const std::vector<float>& v);
// sqrt(mean((a-b)^2)) / sqrt(mean(b^2)) over all rows: the error relative to the logits' size.
double relative_rms_error(const std::vector<std::vector<float>>& a,
                          const std::vector<std::vector<float>>& b);
double max_abs_diff_rows(const std::vector<std::vector<float>>& a,
                         const std::vector<std::vector<float>>& b);

}  // namespace autoglm::testing
