#include "engine/generate.h"

#include <algorithm>
#include <chrono>
#include <span>

#include "core/error.h"

namespace autoglm::engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::vector<int32_t> generate(const models::Model& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, ThreadPool& pool,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats) {
  if (prompt.empty()) fail("the prompt is empty: give at least one token");
  if (options.max_new_tokens < 0) fail("the number of tokens to generate must not be negative");
  const auto needed = static_cast<int64_t>(prompt.size()) + options.max_new_tokens;
  const int64_t capacity = options.context_length > 0 ? options.context_length : needed;
  if (needed > capacity) {
    fail("prompt ({} tokens) + {} new tokens exceed the context of {} tokens", prompt.size(),
         options.max_new_tokens, capacity);
  }
  const auto& eos = model.spec().eos_ids;
  Sampler sampler(options.sampling);
  models::KvCache cache(model.spec(), capacity, options.kv_type);
  models::ForwardScratch scratch;
  std::vector<float> logits;
  std::vector<int32_t> history = prompt;
  std::vector<int32_t> out;
  GenerateStats local;
  local.prompt_tokens = static_cast<int64_t>(prompt.size());

  auto start = std::chrono::steady_clock::now();
  models::SequenceChunk chunk{&cache, prompt, false};
  model.forward(std::span(&chunk, 1), scratch, pool, logits);
  local.prefill_seconds = seconds_since(start);

  const auto vocab = static_cast<size_t>(model.spec().vocab_size);
  const size_t sampled =
      options.vocab_limit > 0 ? std::min(vocab, static_cast<size_t>(options.vocab_limit)) : vocab;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < options.max_new_tokens; ++i) {
    const int32_t token = sampler.sample(std::span(logits.data(), sampled), history);
    out.push_back(token);
    history.push_back(token);
    const bool is_eos = std::find(eos.begin(), eos.end(), token) != eos.end() ||
                        std::find(options.stop_ids.begin(), options.stop_ids.end(), token) !=
                            options.stop_ids.end();
    const bool keep_going = on_token ? on_token(token) : true;
    if ((is_eos && !options.ignore_eos) || !keep_going) {
      local.stopped_by_eos = is_eos;
      break;
    }
    if (i + 1 == options.max_new_tokens) break;
    models::SequenceChunk step{&cache, std::span(&out.back(), 1), false};
    model.forward(std::span(&step, 1), scratch, pool, logits);
  }
  local.decode_seconds = seconds_since(start);
  local.generated_tokens = static_cast<int64_t>(out.size());
  if (stats) *stats = local;
  return out;
}

}  // namespace autoglm::engine
