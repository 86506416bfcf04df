// Token sampling: greedy, temperature, top-k, top-p (nucleus), min-p, repetition / frequency /
// presence penalties, with a seeded generator so a (prompt, seed) pair always gives one answer.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace autoglm::engine {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int top_k = 0;                    // 0 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off; keep tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // HF style: divide positive logits, multiply negative ones
  float frequency_penalty = 0.0f;   // OpenAI style: minus count * penalty
  float presence_penalty = 0.0f;    // OpenAI style: minus penalty if seen
  uint64_t seed = 0;

  // Throws Error naming the parameter and its valid range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from `logits` (vocab_size values). `history` is the tokens generated so
  // far (and the prompt, if penalties should see it). `logits` is used as scratch.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> history) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace autoglm::engine
