#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace autoglm::engine {

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f) || temperature > 100.0f) {
    fail("temperature {} is out of range: use 0 (greedy) to 100", temperature);
  }
  if (top_k < 0) fail("top_k {} is out of range: use 0 (off) or a positive count", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f))
    fail("top_p {} is out of range: use a value in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    fail("min_p {} is out of range: use a value in [0, 1]", min_p);
  if (!(repetition_penalty > 0.0f)) {
    fail("repetition_penalty {} is out of range: use a positive value (1 = off)",
         repetition_penalty);
  }
  if (!(std::fabs(frequency_penalty) <= 2.0f)) {
    fail("frequency_penalty {} is out of range: use a value in [-2, 2]", frequency_penalty);
  }
  if (!(std::fabs(presence_penalty) <= 2.0f)) {
    fail("presence_penalty {} is out of range: use a value in [-2, 2]", presence_penalty);
  }
}

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> history) const {
  const bool any = params_.repetition_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                   params_.presence_penalty != 0.0f;
  if (!any || history.empty()) return;
  std::unordered_map<int32_t, int> counts;
  for (int32_t t : history) {
    if (t >= 0 && static_cast<size_t>(t) < logits.size()) ++counts[t];
  }
  for (const auto& [token, count] : counts) {
    float& l = logits[static_cast<size_t>(token)];
    if (params_.repetition_penalty != 1.0f) {
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    }
    l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  apply_penalties(logits, history);
  if (params_.temperature == 0.0f || params_.top_k == 1) return argmax(logits);

  // Candidates sorted by logit, cut by top-k; probabilities at the temperature.
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  }
  size_t keep = candidates_.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep),
                    candidates_.end(), by_logit);
  candidates_.resize(keep);

  const float max_logit = candidates_.front().first;
  double total = 0;
  for (auto& [value, token] : candidates_) {
    value = std::exp((value - max_logit) / params_.temperature);
    total += value;
  }
  // min-p: relative to the most likely token (probability 1/total after normalising).
  size_t n = candidates_.size();
  if (params_.min_p > 0.0f) {
    const double threshold = params_.min_p * candidates_.front().first;
    while (n > 1 && candidates_[n - 1].first < threshold) total -= candidates_[--n].first;
  }
  // top-p: the smallest prefix whose probability reaches top_p.
  if (params_.top_p < 1.0f) {
    double cumulative = 0;
    for (size_t i = 0; i < n; ++i) {
      cumulative += candidates_[i].first / total;
      if (cumulative >= params_.top_p) {
        n = i + 1;
        break;
      }
    }
    total = 0;
    for (size_t i = 0; i < n; ++i) total += candidates_[i].first;
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= candidates_[i].first;
    if (r <= 0) return candidates_[i].second;
  }
  return candidates_[n - 1].second;
}

}  // namespace autoglm::engine
