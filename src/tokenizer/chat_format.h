// GLM chat formats: OpenAI-style messages -> the prompt text a GLM model was trained on, and the
// model's reply text -> content, reasoning and OpenAI tool calls (GLM_ARCHITECTURES.md G.3-G.7).
// Rendered prompts contain the special-token strings ([gMASK]<sop><|user|>...): tokenize them with
// parse_special = true and without the tokenizer's own prefix. Formats are immutable and safe to
// use from many threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoglm::tokenizer {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text of an object, as in OpenAI `function.arguments`
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool | observation (tool == observation)
  std::string content;
  std::string reasoning;  // the <think> part, assistant only
  std::vector<ToolCall> tool_calls;
  std::string name;  // tool name, for tool results
};

struct ChatOptions {
  // The OpenAI `tools` array. Ordered: the official templates print tool schemas with the keys in
  // the order the client wrote them (Python dicts keep insertion order), so keep that order by
  // parsing the request with nlohmann::ordered_json; a plain nlohmann::json converts implicitly
  // (keys then come out sorted).
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;
  bool enable_thinking = true;  // GLM-4.5: false adds /nothink and an empty <think></think>
};

struct ParsedReply {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
};

class ChatFormat {
 public:
  virtual ~ChatFormat() = default;

  // The name chat_format_named() accepts: glm4, glm4-0414, glm-z1, glm4.1v, glm4.5, glm-edge,
  // chatglm3.
  virtual std::string name() const = 0;

  // The prompt for `messages`. Throws Error on what the format cannot express (tools for a
  // format without tool calling, a role it does not know, tool arguments that are not a JSON
  // object, a tool without a name).
  virtual std::string render(const std::vector<ChatMessage>& messages,
                             const ChatOptions& options) const = 0;

  // The reply generated after a prompt from render() (with add_generation_prompt). Never throws
  // on model output: a tool call that does not parse stays plain content. `tools` (the request's
  // OpenAI tools) lets GLM-4.5 keep string-typed arguments as strings even when they look like
  // numbers; without it, argument values that are JSON literals become typed.
  ParsedReply parse(std::string_view generated_text,
                    const nlohmann::ordered_json& tools = nlohmann::ordered_json::array()) const {
    return parse_reply(generated_text, tools);
  }

  // Text that ends a reply (the matching special tokens also end it by id).
  virtual std::vector<std::string> stop_strings() const = 0;

 protected:
  virtual ParsedReply parse_reply(std::string_view generated_text,
                                  const nlohmann::ordered_json& tools) const = 0;
};

// The image placeholder GLM-4.1V and GLM-4.5V expect in user text, one per image
// (GLM_ARCHITECTURES.md D.4, G.5); the vision path replaces <|image|> by the image's tokens.
inline constexpr std::string_view kGlmImagePlaceholder =
    "<|begin_of_image|><|image|><|end_of_image|>";

// The names chat_format_named() accepts.
std::vector<std::string> chat_format_names();

// Throws Error naming the valid names when `name` is not one of them.
std::unique_ptr<ChatFormat> chat_format_named(std::string_view name);

// Picks the format of a model from its config.json (`model_type`, vocabulary size) and, when
// given, its tokenizer_config.json, whose `chat_template` (a string or a list of {name,
// template}) is recognised by its markers. A directory that ships chat_template.jinja instead
// should pass its text as tokenizer_config["chat_template"]. We never execute the Jinja template:
// `why` (when not null) says which built-in format is used and why, and that the template is not
// rendered, for the caller to log at load. Returns nullptr (and says why) for a model that is not
// a GLM chat model (e.g. llama): it takes raw prompts.
std::unique_ptr<ChatFormat> chat_format_for_model(const nlohmann::json& config,
                                                  const nlohmann::json* tokenizer_config,
                                                  std::string* why);

}  // namespace autoglm::tokenizer
