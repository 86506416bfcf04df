// OpenAI request bodies -> validated parameters. Every field is type- and range-checked here and a
// bad one is a 400 that names it (ApiException), so the handler and the engine only ever see
// sensible values. Reference: OpenAI API "Create chat completion" / "Create completion", plus the
// vLLM extensions top_k, min_p, repetition_penalty, ignore_eos, skip_special_tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "tokenizer/chat_format.h"

namespace autoglm::server {

// Parameters shared by both routes.
struct CommonParams {
  std::string model;                  // empty: the served model
  int n = 1;                          // choices per prompt: n engine requests
  std::optional<int64_t> max_tokens;  // nullopt: up to the context length
  engine::SamplingParams sampling;
  bool seed_given = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int top_logprobs = -1;       // -1: no logprobs; 0..20 alternatives per token
  bool ignore_eos = false;
  bool skip_special_tokens = true;
  std::string user;
};

struct ChatParams {
  CommonParams common;
  std::vector<tokenizer::ChatMessage> messages;
  tokenizer::ChatOptions options;  // tools already filtered by tool_choice
  bool tools_enabled = false;      // parse tool calls out of the reply
};

struct CompletionParams {
  CommonParams common;
  // One entry per prompt: text, or token ids.
  std::vector<std::string> text_prompts;
  std::vector<std::vector<int32_t>> token_prompts;
  bool echo = false;
};

// Throws ApiException(400) saying where the JSON is broken.
nlohmann::ordered_json parse_json_body(std::string_view body);

// `defaults` fills the sampling fields a request leaves out (temperature, top_p, top_k, min_p,
// the three penalties).
ChatParams parse_chat_request(const nlohmann::ordered_json& body,
                              const engine::SamplingParams& defaults = {});
CompletionParams parse_completion_request(const nlohmann::ordered_json& body,
                                          const engine::SamplingParams& defaults = {});

}  // namespace autoglm::server
