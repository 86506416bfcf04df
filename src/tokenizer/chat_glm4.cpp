// glm-4-9b-chat (G.3) and GLM-4-0414 / GLM-Z1-0414 (G.4): every turn is `<|{role}|>{metadata}\n
// {content}`; a tool call is an assistant turn whose metadata is the function name and whose
// content is the JSON arguments (`<|assistant|>get_weather\n{"city": "Paris"}`), a tool result an
// `<|observation|>` turn. Whitespace is what the official templates give under Hugging Face's
// Jinja settings (trim_blocks and lstrip_blocks): e.g. the block tag before "\n\n## {name}" eats
// the first newline, so tools read "# 可用工具\n## get_weather\n\n{...}".
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer::chat {
namespace {

using OJson = nlohmann::ordered_json;

// The system prompt in front of the tool list. glm-4-9b-chat's tokenizer_config.json template
// writes "智谱AI"; the GLM-Z1-0414 chat_template.jinja writes "智谱 AI 公司" (G.4; the non-Z1
// GLM-4-0414 text is assumed equal to Z1's, GLM_ARCHITECTURES.md marks it [M]).
constexpr std::string_view kGlm4ToolsIntro =
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 "
    "模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。";
constexpr std::string_view kGlm0414ToolsIntro =
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 "
    "模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。";
constexpr std::string_view kToolHint = "\n在调用上述函数时，请使用 Json 格式表示调用的参数。";

const std::vector<std::string> kStops = {"<|user|>", "<|observation|>", "<|endoftext|>"};

std::string tools_block(std::string_view intro, const std::vector<OJson>& functions) {
  std::string out = "<|system|>\n";
  out += intro;
  out += "\n\n# 可用工具";
  for (const OJson& function : functions) {
    out += "\n## ";
    out += function["name"].get<std::string>();
    out += "\n\n";
    out += py_json_dumps(function, 4);
    out += kToolHint;
  }
  return out;
}

// One `<|assistant|>` segment of a reply as a tool call: "{name}\n{JSON object}".
std::optional<ToolCall> parse_call_segment(std::string_view segment) {
  const size_t newline = segment.find('\n');
  if (newline == std::string_view::npos) return std::nullopt;
  const std::string_view name = segment.substr(0, newline);
  if (!is_function_name(name)) return std::nullopt;
  const std::string_view body = py_strip(segment.substr(newline + 1));
  if (!parse_json_object(body)) return std::nullopt;
  return ToolCall{new_tool_call_id(), std::string(name), std::string(body)};
}

// A reply in the metadata family: optional reasoning, then segments separated by <|assistant|>
// (a model that calls two functions writes the role token again), each a call or plain text.
ParsedReply parse_metadata_reply(std::string_view text, bool thinks) {
  ParsedReply reply;
  text = drop_stop_suffix(text, kStops);
  if (thinks) {  // GLM-Z1: the prompt ends inside <think>
    ThinkSplit split = split_think(text, /*starts_in_think=*/true);
    reply.reasoning = std::move(split.reasoning);
    text = split.rest;
  }
  static constexpr std::string_view kRole = "<|assistant|>";
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(kRole, begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view segment = text.substr(begin, end - begin);
    if (auto call = parse_call_segment(segment)) {
      reply.tool_calls.push_back(*std::move(call));
    } else if (const std::string_view piece = skip_newlines(segment); !piece.empty()) {
      if (!reply.content.empty()) reply.content += '\n';
      reply.content += piece;
    }
    begin = end + kRole.size();
  }
  return reply;
}

// glm-4-9b-chat. The official template renders `<|{role}|>{metadata}\n{content}` only for a
// message with content, so empty messages vanish.
class Glm4Format final : public ChatFormat {
 public:
  std::string name() const override { return "glm4"; }

  std::string render(const std::vector<ChatMessage>& messages,
                     const ChatOptions& options) const override {
    const std::vector<OJson> functions = tool_functions(options, name());
    std::string out = "[gMASK]<sop>";
    if (!functions.empty()) out += tools_block(kGlm4ToolsIntro, functions);
    for (const ChatMessage& m : messages) {
      if (m.role == "system" || m.role == "user" || m.role == "assistant") {
        if (!m.content.empty()) out += "<|" + m.role + "|>\n" + m.content;
        for (const ToolCall& call : m.tool_calls) {
          out +=
              "<|assistant|>" + call.name + "\n" + (call.arguments.empty() ? "{}" : call.arguments);
        }
      } else if (is_tool_result(m.role)) {
        if (!m.content.empty()) out += "<|observation|>\n" + m.content;
      } else {
        fail_role(name(), m.role);
      }
    }
    // llama.cpp's ChatGLM4 golden ends in "<|assistant|>\n" (the newline the model writes first
    // anyway). With tools offered we stop at "<|assistant|>" as the tokenizer_config template
    // does, because a call is written right after the role token ("<|assistant|>get_weather\n").
    if (options.add_generation_prompt)
      out += functions.empty() ? "<|assistant|>\n" : "<|assistant|>";
    return out;
  }

  std::vector<std::string> stop_strings() const override { return kStops; }

 protected:
  ParsedReply parse_reply(std::string_view text, const OJson&) const override {
    return parse_metadata_reply(text, /*thinks=*/false);
  }
};

// GLM-4-0414 and GLM-Z1-0414: tools, then every system message, then the other turns in order.
// Z1 re-renders only what follows the last </think> of each turn, stripped, and starts the reply
// inside <think>.
class Glm40414Format final : public ChatFormat {
 public:
  explicit Glm40414Format(bool z1) : z1_(z1) {}

  std::string name() const override { return z1_ ? "glm-z1" : "glm4-0414"; }

  std::string render(const std::vector<ChatMessage>& messages,
                     const ChatOptions& options) const override {
    const std::vector<OJson> functions = tool_functions(options, name());
    std::string out = "[gMASK]<sop>";
    if (!functions.empty()) out += tools_block(kGlm0414ToolsIntro, functions);
    for (const ChatMessage& m : messages) {
      if (m.role == "system") out += "<|system|>\n" + m.content;
    }
    for (const ChatMessage& m : messages) {
      if (m.role == "system") continue;
      const std::string_view visible = this->visible(m.content);
      if (m.role == "user") {
        out += "<|user|>\n";
        out += visible;
      } else if (m.role == "assistant") {
        if (m.tool_calls.empty() || !visible.empty()) {
          out += "<|assistant|>\n";
          out += visible;
        }
        for (const ToolCall& call : m.tool_calls) {
          out += "<|assistant|>" + call.name + "\n";
          out += call.arguments.empty() ? std::string_view("{}") : this->visible(call.arguments);
        }
      } else if (is_tool_result(m.role)) {
        out += "<|observation|>\n";
        out += visible;
      } else {
        fail_role(name(), m.role);
      }
    }
    if (options.add_generation_prompt) out += z1_ ? "<|assistant|>\n<think>" : "<|assistant|>";
    return out;
  }

  std::vector<std::string> stop_strings() const override { return kStops; }

 protected:
  ParsedReply parse_reply(std::string_view text, const OJson&) const override {
    return parse_metadata_reply(text, /*thinks=*/z1_);
  }

 private:
  // Z1's `content.split('</think>')[-1].strip()`.
  std::string_view visible(std::string_view content) const {
    return z1_ ? py_strip(after_last(content, "</think>")) : content;
  }

  bool z1_;
};

}  // namespace

std::unique_ptr<ChatFormat> make_glm4() {
  return std::make_unique<Glm4Format>();
}
std::unique_ptr<ChatFormat> make_glm4_0414(bool z1) {
  return std::make_unique<Glm40414Format>(z1);
}

}  // namespace autoglm::tokenizer::chat
