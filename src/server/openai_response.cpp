#include "server/openai_response.h"

namespace autoglm::server {
namespace {

ojson bytes_of(const std::string& text) {
  ojson bytes = ojson::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

ojson chunk_base(const ResponseHeader& h, const char* object) {
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

}  // namespace

std::string finish_reason_text(engine::FinishReason reason, bool has_tool_calls) {
  if (reason == engine::FinishReason::Stop && has_tool_calls) return "tool_calls";
  return engine::finish_reason_name(reason);
}

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

ojson tool_calls_json(const std::vector<tokenizer::ToolCall>& calls) {
  ojson out = ojson::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    out.push_back({{"index", i},
                   {"id", calls[i].id},
                   {"type", "function"},
                   {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  }
  return out;
}

ojson chat_logprobs_json(const std::vector<engine::TokenLogprob>& tokens,
                         const std::vector<std::vector<engine::TokenLogprob>>& top) {
  ojson content = ojson::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    ojson alternatives = ojson::array();
    if (i < top.size()) {
      for (const auto& t : top[i]) {
        alternatives.push_back(
            {{"token", t.text}, {"logprob", t.logprob}, {"bytes", bytes_of(t.text)}});
      }
    }
    content.push_back({{"token", tokens[i].text},
                       {"logprob", tokens[i].logprob},
                       {"bytes", bytes_of(tokens[i].text)},
                       {"top_logprobs", std::move(alternatives)}});
  }
  return {{"content", std::move(content)}};
}

ojson completion_logprobs_json(const std::vector<engine::TokenLogprob>& tokens,
                               const std::vector<std::vector<engine::TokenLogprob>>& top,
                               int64_t text_offset0) {
  ojson texts = ojson::array(), lps = ojson::array(), tops = ojson::array(),
        offsets = ojson::array();
  int64_t offset = text_offset0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    texts.push_back(tokens[i].text);
    lps.push_back(tokens[i].logprob);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(tokens[i].text.size());
    ojson alternatives = ojson::object();
    if (i < top.size()) {
      for (const auto& t : top[i]) alternatives[t.text] = t.logprob;
    }
    tops.push_back(std::move(alternatives));
  }
  return {{"tokens", std::move(texts)},
          {"token_logprobs", std::move(lps)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

ojson chat_chunk(const ResponseHeader& h, int index, ojson delta, ojson logprobs,
                 const std::string& finish_reason, bool with_usage_field) {
  ojson chunk = chunk_base(h, "chat.completion.chunk");
  chunk["choices"] =
      ojson::array({{{"index", index},
                     {"delta", std::move(delta)},
                     {"logprobs", std::move(logprobs)},
                     {"finish_reason", finish_reason.empty() ? ojson() : ojson(finish_reason)}}});
  if (with_usage_field) chunk["usage"] = nullptr;
  return chunk;
}

ojson completion_chunk(const ResponseHeader& h, int index, const std::string& text, ojson logprobs,
                       const std::string& finish_reason, bool with_usage_field) {
  ojson chunk = chunk_base(h, "text_completion");
  chunk["choices"] =
      ojson::array({{{"index", index},
                     {"text", text},
                     {"logprobs", std::move(logprobs)},
                     {"finish_reason", finish_reason.empty() ? ojson() : ojson(finish_reason)}}});
  if (with_usage_field) chunk["usage"] = nullptr;
  return chunk;
}

ojson usage_chunk(const ResponseHeader& h, const char* object, const Usage& usage) {
  ojson chunk = chunk_base(h, object);
  chunk["choices"] = ojson::array();
  chunk["usage"] = usage_json(usage);
  return chunk;
}

std::string dump_json(const ojson& value) {
  return value.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

std::string sse_event(const ojson& chunk) {
  return "data: " + dump_json(chunk) + "\n\n";
}

}  // namespace autoglm::server
