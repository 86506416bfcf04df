#include "model_runner.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace autoglm::testing {

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<std::vector<float>> json_matrix(const nlohmann::json& j) {
  return j.get<std::vector<std::vector<float>>>();
}

double max_abs_diff_rows(const std::vector<std::vector<float>>& a,
                         const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) throw std::runtime_error("row counts differ");
  double m = 0;
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) throw std::runtime_error("row widths differ");
    for (size_t i = 0; i < a[r].size(); ++i) m = std::max(m, std::fabs(double(a[r][i]) - b[r][i]));
  }
  return m;
}

double relative_rms_error(const std::vector<std::vector<float>>& a,
                          const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) throw std::runtime_error("row counts differ");
  double err = 0, ref = 0;
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) throw std::runtime_error("row widths differ");
    for (size_t i = 0; i < a[r].size(); ++i) {
      err += (double(a[r][i]) - b[r][i]) * (double(a[r][i]) - b[r][i]);
      ref += double(b[r][i]) * b[r][i];
    }
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

FixtureRun run_fixture(const models::Model& model, const std::vector<int32_t>& prompt,
                       const std::vector<int32_t>& expected_generated, int n_threads,
                       DType kv_type) {
  ThreadPool pool(n_threads);
  const auto V = static_cast<size_t>(model.spec().vocab_size);
  models::KvCache cache(
      model.spec(), static_cast<int64_t>(prompt.size() + expected_generated.size() + 1), kv_type);
  models::ForwardScratch scratch;
  std::vector<float> logits;
  FixtureRun run;

  models::SequenceChunk chunk{&cache, prompt, true};
  model.forward(std::span(&chunk, 1), scratch, pool, logits);
  for (size_t t = 0; t < prompt.size(); ++t) {
    run.prefill_logits.emplace_back(logits.begin() + static_cast<ptrdiff_t>(t * V),
                                    logits.begin() + static_cast<ptrdiff_t>((t + 1) * V));
  }
  run.greedy.push_back(argmax(run.prefill_logits.back()));
  for (size_t i = 0; i < expected_generated.size(); ++i) {
    const int32_t token = expected_generated[i];
    models::SequenceChunk step{&cache, std::span(&token, 1), false};
    model.forward(std::span(&step, 1), scratch, pool, logits);
    run.decode_logits.emplace_back(logits.begin(), logits.begin() + static_cast<ptrdiff_t>(V));
    if (i + 1 < expected_generated.size()) run.greedy.push_back(argmax(run.decode_logits.back()));
  }
  return run;
}

}  // namespace autoglm::testing
