// The formats without a tool prompt: GLM-4.1V-Thinking (G.5), GLM-Edge and ChatGLM3 (the strings of
// fixtures/templates/glm_chat_goldens.json). Each turn is `<|{role}|>\n{content}`; they differ in
// the prefix and in the generation prompt.
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer::chat {
namespace {

using OJson = nlohmann::ordered_json;

struct PlainStyle {
  std::string_view name;
  std::string_view prefix;             // "[gMASK]<sop>", "[gMASK]sop" (ChatGLM3's SentencePiece
                                       // piece), or nothing (GLM-Edge)
  std::string_view generation_prompt;  // GLM-4.1V: "<|assistant|>\n"; the others "<|assistant|>"
  std::vector<std::string> stops;
};

class PlainFormat : public ChatFormat {
 public:
  explicit PlainFormat(PlainStyle style) : style_(std::move(style)) {}

  std::string name() const override { return std::string(style_.name); }

  std::string render(const std::vector<ChatMessage>& messages,
                     const ChatOptions& options) const override {
    reject_tools(options, style_.name);
    std::string out(style_.prefix);
    for (const ChatMessage& m : messages) {
      if (m.role != "system" && m.role != "user" && m.role != "assistant")
        fail_role(name(), m.role);
      if (!m.tool_calls.empty()) {
        fail(
            "an assistant message carries tool calls, but the {} chat format has no tool "
            "calling; drop them from the history",
            style_.name);
      }
      // Past replies are re-rendered without their reasoning (GLM-V README: history keeps no
      // <think> part), so `reasoning` is not written.
      out += "<|" + m.role + "|>\n" + m.content;
    }
    if (options.add_generation_prompt) out += style_.generation_prompt;
    return out;
  }

  std::vector<std::string> stop_strings() const override { return style_.stops; }

 protected:
  ParsedReply parse_reply(std::string_view text, const OJson&) const override {
    ParsedReply reply;
    reply.content = skip_newlines(drop_stop_suffix(text, style_.stops));
    return reply;
  }

  const PlainStyle style_;
};

// GLM-4.1V-Thinking replies `<think>{reasoning}</think><answer>{answer}</answer>`: the content is
// the answer without its tags (AutoGLM-Phone parses the action out of it and breaks on a trailing
// </answer>, G.6). Grounding boxes <|begin_of_box|>...<|end_of_box|> stay in the content.
class Glm41vFormat final : public PlainFormat {
 public:
  using PlainFormat::PlainFormat;

 protected:
  ParsedReply parse_reply(std::string_view text, const OJson&) const override {
    ParsedReply reply;
    ThinkSplit split = split_think(drop_stop_suffix(text, style_.stops), false);
    reply.reasoning = std::move(split.reasoning);
    std::string_view rest = split.rest;
    static constexpr std::string_view kOpen = "<answer>", kClose = "</answer>";
    if (const size_t open = rest.find(kOpen); open != std::string_view::npos) {
      rest = rest.substr(open + kOpen.size());
      rest = rest.substr(0, rest.find(kClose));  // npos (cut off): keep all
    }
    reply.content = py_strip(rest);
    return reply;
  }
};

}  // namespace

std::unique_ptr<ChatFormat> make_glm41v() {
  return std::make_unique<Glm41vFormat>(
      PlainStyle{"glm4.1v",
                 "[gMASK]<sop>",
                 "<|assistant|>\n",
                 {"<|user|>", "<|observation|>", "<|endoftext|>"}});
}

std::unique_ptr<ChatFormat> make_glm_edge() {
  return std::make_unique<PlainFormat>(PlainStyle{
      "glm-edge", "", "<|assistant|>", {"<|user|>", "<|observation|>", "<|endoftext|>"}});
}

std::unique_ptr<ChatFormat> make_chatglm3() {
  // ChatGLM3's end of turn is </s> (id 2, by id) and its role tokens.
  return std::make_unique<PlainFormat>(
      PlainStyle{"chatglm3", "[gMASK]sop", "<|assistant|>", {"<|user|>", "<|observation|>"}});
}

}  // namespace autoglm::tokenizer::chat
