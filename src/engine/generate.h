// Single-sequence generation: prefill the prompt, then sample one token at a time with the KV
// cache until max_new_tokens, an end-of-sequence token or a stop callback.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "engine/sampler.h"
#include "models/kv_cache.h"
#include "models/model.h"

namespace autoglm::engine {

struct GenerateOptions {
  int max_new_tokens = 16;
  SamplingParams sampling;
  bool ignore_eos = false;                 // keep going past the model's end-of-sequence ids
  std::vector<int32_t> stop_ids;           // more ids that end generation (chat turn ends)
  int64_t context_length = 0;              // KV cache capacity; 0 = prompt + max_new_tokens
  DType kv_type = models::kDefaultKvType;  // the KV cache's element type (f16 or f32)
  // Sample only ids below this: the tokenizer's vocabulary, where the model's is padded past it
  // (GLM-4: 151552 rows for 151343 tokens). Those padding rows have no text, and a sampled one
  // could not be decoded. 0 = the model's whole vocabulary (no tokenizer: `run --ids`).
  int64_t vocab_limit = 0;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
  bool stopped_by_eos = false;
};

// Calls on_token(id) for each generated token; returning false stops generation.
std::vector<int32_t> generate(const models::Model& model, const std::vector<int32_t>& prompt,
                              const GenerateOptions& options, ThreadPool& pool,
                              const std::function<bool(int32_t)>& on_token = {},
                              GenerateStats* stats = nullptr);

}  // namespace autoglm::engine
