// GLM-4.5 / GLM-4.6 (G.7): the output of fixtures/templates/chat_template.jinja under Hugging
// Face's Jinja settings (trim_blocks, lstrip_blocks, tojson = json.dumps(ensure_ascii=False)),
// byte for byte; tests/tokenizer/chat_jinja_test.cpp renders the template with jinja2 and compares.
// Tool calls are XML: <tool_call>{name}\n<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>\n...
// </tool_call>, a string value written raw and any other value as JSON.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer::chat {
namespace {

using OJson = nlohmann::ordered_json;

constexpr std::string_view kToolsHead =
    "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n";
constexpr std::string_view kToolsTail =
    "</tools>\n\nFor each function call, output the function name and arguments within the "
    "following XML format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n"
    "<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n"
    "<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>";

const std::vector<std::string> kStops = {"<|user|>", "<|observation|>", "<|endoftext|>"};

std::string tools_block(const ChatOptions& options) {
  tool_functions(options, "glm4.5");  // validates; the template prints whole tool objects
  std::string out(kToolsHead);
  for (const OJson& tool : options.tools) out += py_json_dumps(tool) + "\n";
  out += kToolsTail;
  return out;
}

void render_assistant(const ChatMessage& m, bool after_last_user, std::string& out) {
  out += "<|assistant|>";
  std::string_view content = m.content;
  std::string_view reasoning = m.reasoning;
  if (reasoning.empty() && content.find("</think>") != std::string_view::npos) {
    // The template's split of a reply stored with its <think> part inline.
    const std::string_view before = content.substr(0, content.find("</think>"));
    std::string_view inner =
        after_last(before.substr(0, before.find_last_not_of('\n') + 1), "<think>");
    reasoning = inner.substr(std::min(inner.find_first_not_of('\n'), inner.size()));
    content = skip_newlines(after_last(content, "</think>"));
  }
  // Only replies after the last user turn keep their reasoning.
  if (after_last_user && !reasoning.empty()) {
    out += "\n<think>";
    out += py_strip(reasoning);
    out += "</think>";
  } else {
    out += "\n<think></think>";
  }
  if (const std::string_view body = py_strip(content); !body.empty()) {
    out += '\n';
    out += body;
  }
  for (const ToolCall& call : m.tool_calls) {
    out += "\n<tool_call>" + call.name + "\n";
    const OJson args = call_arguments(call);
    for (const auto& [key, value] : args.items()) {
      out += "<arg_key>" + key + "</arg_key>\n<arg_value>";
      out += value.is_string() ? value.get<std::string>() : py_json_dumps(value);
      out += "</arg_value>\n";
    }
    out += "</tool_call>";
  }
}

class Glm45Format final : public ChatFormat {
 public:
  std::string name() const override { return "glm4.5"; }

  std::string render(const std::vector<ChatMessage>& messages,
                     const ChatOptions& options) const override {
    std::string out = "[gMASK]<sop>";
    if (options.tools.is_array() && !options.tools.empty()) out += tools_block(options);
    size_t last_user = messages.size();  // none
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].role == "user") last_user = i;
    }
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      if (m.role == "user") {
        out += "<|user|>\n" + m.content;
        if (!options.enable_thinking && !m.content.ends_with("/nothink")) out += "/nothink";
      } else if (m.role == "assistant") {
        render_assistant(m, last_user == messages.size() || i > last_user, out);
      } else if (is_tool_result(m.role)) {
        // Consecutive results share one <|observation|>.
        if (i == 0 || !is_tool_result(messages[i - 1].role)) out += "<|observation|>";
        out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      } else if (m.role == "system") {
        out += "<|system|>\n" + m.content;
      } else {
        fail_role(name(), m.role);
      }
    }
    if (options.add_generation_prompt) {
      out += options.enable_thinking ? "<|assistant|>" : "<|assistant|>\n<think></think>";
    }
    return out;
  }

  std::vector<std::string> stop_strings() const override { return kStops; }

 protected:
  ParsedReply parse_reply(std::string_view text, const OJson& tools) const override;
};

// The JSON schema type the request declared for argument `key` of function `name` ("" when not
// declared).
std::string declared_type(const OJson& tools, std::string_view name, const std::string& key) {
  if (!tools.is_array()) return "";
  for (const OJson& tool : tools) {
    if (!tool.is_object()) continue;
    const OJson& function = tool.contains("function") ? tool["function"] : tool;
    if (!function.is_object()) continue;
    const auto name_it = function.find("name");
    if (name_it == function.end() || !name_it->is_string() ||
        name_it->get_ref<const std::string&>() != name) {
      continue;
    }
    const auto params = function.find("parameters");
    if (params == function.end() || !params->is_object()) return "";
    const auto props = params->find("properties");
    if (props == params->end() || !props->is_object()) return "";
    const auto prop = props->find(key);
    if (prop == props->end() || !prop->is_object()) return "";
    const auto type = prop->find("type");
    return type != prop->end() && type->is_string() ? type->get<std::string>() : "";
  }
  return "";
}

// A value as the template wrote it: raw text for a string, JSON for anything else. Without a
// declared type, text that parses as a JSON non-string is taken as that value.
OJson argument_value(std::string_view raw, const std::string& type) {
  if (type == "string") return OJson(std::string(raw));
  OJson value = OJson::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || value.is_string()) return OJson(std::string(raw));
  return value;
}

// The body of one <tool_call>...</tool_call>: "{name}\n" then key/value pairs. nullopt when it is
// not that shape.
std::optional<ToolCall> parse_call_body(std::string_view body, const OJson& tools) {
  static constexpr std::string_view kKey = "<arg_key>", kKeyEnd = "</arg_key>";
  static constexpr std::string_view kValue = "<arg_value>", kValueEnd = "</arg_value>";
  const std::string_view name = py_strip(body.substr(0, body.find(kKey)));
  if (!is_function_name(name)) return std::nullopt;
  OJson args = OJson::object();
  size_t pos = body.find(kKey);
  while (pos != std::string_view::npos) {
    const size_t key_end = body.find(kKeyEnd, pos);
    if (key_end == std::string_view::npos) return std::nullopt;
    const std::string key(py_strip(body.substr(pos + kKey.size(), key_end - pos - kKey.size())));
    const size_t value_begin = body.find(kValue, key_end);
    if (value_begin == std::string_view::npos ||
        !py_strip(body.substr(key_end + kKeyEnd.size(), value_begin - key_end - kKeyEnd.size()))
             .empty()) {
      return std::nullopt;
    }
    const size_t value_end = body.find(kValueEnd, value_begin);
    if (value_end == std::string_view::npos) return std::nullopt;
    const size_t raw_begin = value_begin + kValue.size();
    args[key] = argument_value(body.substr(raw_begin, value_end - raw_begin),
                               declared_type(tools, name, key));
    pos = body.find(kKey, value_end);
  }
  return ToolCall{new_tool_call_id(), std::string(name), py_json_dumps(args)};
}

ParsedReply Glm45Format::parse_reply(std::string_view text, const OJson& tools) const {
  ParsedReply reply;
  ThinkSplit split = split_think(drop_stop_suffix(text, kStops), /*starts_in_think=*/false);
  reply.reasoning = std::move(split.reasoning);
  const std::string_view rest = split.rest;
  static constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
  std::string content;
  size_t pos = 0;
  while (true) {
    const size_t open = rest.find(kOpen, pos);
    const size_t close = open == std::string_view::npos ? open : rest.find(kClose, open);
    if (close == std::string_view::npos) {
      content += rest.substr(pos);  // no (complete) call left: the rest is text
      break;
    }
    const size_t body_begin = open + kOpen.size();
    if (auto call = parse_call_body(rest.substr(body_begin, close - body_begin), tools)) {
      content += rest.substr(pos, open - pos);
      reply.tool_calls.push_back(*std::move(call));
    } else {
      content += rest.substr(pos, close + kClose.size() - pos);  // malformed: keep as text
    }
    pos = close + kClose.size();
  }
  reply.content = py_strip(content);
  return reply;
}

}  // namespace

std::unique_ptr<ChatFormat> make_glm45() {
  return std::make_unique<Glm45Format>();
}

}  // namespace autoglm::tokenizer::chat
