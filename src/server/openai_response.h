// OpenAI response bodies: chat.completion, chat.completion.chunk, text_completion, usage and
// logprobs, as the official SDKs read them. Pure functions of their inputs, so the shapes are
// tested without a server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/service.h"
#include "tokenizer/chat_format.h"

namespace autoglm::server {

using ojson = nlohmann::ordered_json;

// Everything a response needs to know about its request.
struct ResponseHeader {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// `finish_reason` of OpenAI: stop, length, tool_calls; ours beyond: cancelled, timeout, error.
std::string finish_reason_text(engine::FinishReason reason, bool has_tool_calls);

ojson usage_json(const Usage& usage);
ojson tool_calls_json(const std::vector<tokenizer::ToolCall>& calls);

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
ojson chat_logprobs_json(const std::vector<engine::TokenLogprob>& tokens,
                         const std::vector<std::vector<engine::TokenLogprob>>& top);
// Completion logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; offsets count
// from `text_offset0`.
ojson completion_logprobs_json(const std::vector<engine::TokenLogprob>& tokens,
                               const std::vector<std::vector<engine::TokenLogprob>>& top,
                               int64_t text_offset0);

// One chat.completion.chunk with one choice; `delta` is {"role"?, "content"?, "tool_calls"?};
// `finish_reason` empty means null.
ojson chat_chunk(const ResponseHeader& h, int index, ojson delta, ojson logprobs,
                 const std::string& finish_reason, bool with_usage_field);
ojson completion_chunk(const ResponseHeader& h, int index, const std::string& text, ojson logprobs,
                       const std::string& finish_reason, bool with_usage_field);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
ojson usage_chunk(const ResponseHeader& h, const char* object, const Usage& usage);

// "data: {json}\n\n" (Server-Sent Events, one event per chunk).
std::string sse_event(const ojson& chunk);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// JSON text even when token texts carry bytes of a split UTF-8 character (replaced by U+FFFD).
std::string dump_json(const ojson& value);

}  // namespace autoglm::server
