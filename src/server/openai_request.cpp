#include "server/openai_request.h"

#include <cmath>
#include <limits>
#include <unordered_map>

#include "server/api_error.h"

namespace autoglm::server {
namespace {

using json = nlohmann::ordered_json;

// A short rendering of a bad value for messages: long strings and objects are cut.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) invalid_param(name, "'{}' must be a number, got {}", name, shown(*v));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    invalid_param(name, "'{}' must be between {} and {}, got {}", name, lo, hi, shown(*v));
  }
  return x;
}

std::optional<int64_t> get_int(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  const bool integral = v->is_number_integer() ||
                        (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
                         std::abs(v->get<double>()) < 9e15);
  if (!integral) invalid_param(name, "'{}' must be an integer, got {}", name, shown(*v));
  const int64_t x =
      v->is_number_unsigned()
          ? static_cast<int64_t>(
                std::min<uint64_t>(v->get<uint64_t>(), std::numeric_limits<int64_t>::max()))
          : (v->is_number_integer() ? v->get<int64_t>() : static_cast<int64_t>(v->get<double>()));
  if (x < lo || x > hi) {
    invalid_param(name, "'{}' must be between {} and {}, got {}", name, lo, hi, shown(*v));
  }
  return x;
}

std::optional<bool> get_bool(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) invalid_param(name, "'{}' must be true or false, got {}", name, shown(*v));
  return v->get<bool>();
}

std::optional<std::string> get_string(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) invalid_param(name, "'{}' must be a string, got {}", name, shown(*v));
  return v->get<std::string>();
}

std::vector<std::string> get_stop(const json& body) {
  const json* v = field(body, "stop");
  if (!v) return {};
  std::vector<std::string> stop;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) {
        invalid_param("stop", "'stop' must be a string or a list of strings, got {}", shown(*v));
      }
      stop.push_back(s.get<std::string>());
    }
  } else {
    invalid_param("stop", "'stop' must be a string or a list of strings, got {}", shown(*v));
  }
  if (stop.size() > 16) invalid_param("stop", "'stop' holds {} strings; at most 16", stop.size());
  for (const auto& s : stop) {
    if (s.empty()) invalid_param("stop", "'stop' must not contain an empty string");
  }
  return stop;
}

CommonParams parse_common(const json& body, const engine::SamplingParams& d) {
  if (!body.is_object()) {
    invalid_param("", "the request body must be a JSON object, got {}", shown(body));
  }
  CommonParams p;
  p.model = get_string(body, "model").value_or("");
  p.n = static_cast<int>(get_int(body, "n", 1, 32).value_or(1));
  if (auto m = get_int(body, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max())) {
    p.max_tokens = *m;
  } else if (auto t = get_int(body, "max_tokens", 1, std::numeric_limits<int32_t>::max())) {
    p.max_tokens = *t;
  }
  auto& s = p.sampling;
  s.temperature = static_cast<float>(get_number(body, "temperature", 0, 2).value_or(d.temperature));
  s.top_p = static_cast<float>(get_number(body, "top_p", 0, 1).value_or(d.top_p));
  if (s.top_p <= 0) invalid_param("top_p", "'top_p' must be greater than 0 and at most 1, got 0");
  // vLLM spells "off" as -1; we spell it 0.
  s.top_k =
      static_cast<int>(std::max<int64_t>(0, get_int(body, "top_k", -1, 1 << 20).value_or(d.top_k)));
  s.min_p = static_cast<float>(get_number(body, "min_p", 0, 1).value_or(d.min_p));
  s.frequency_penalty = static_cast<float>(
      get_number(body, "frequency_penalty", -2, 2).value_or(d.frequency_penalty));
  s.presence_penalty =
      static_cast<float>(get_number(body, "presence_penalty", -2, 2).value_or(d.presence_penalty));
  s.repetition_penalty = static_cast<float>(
      get_number(body, "repetition_penalty", 0.01, 10).value_or(d.repetition_penalty));
  if (auto seed = get_int(body, "seed", std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*seed);
    p.seed_given = true;
  }
  p.stop = get_stop(body);
  p.stream = get_bool(body, "stream").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) {
      invalid_param("stream_options", "'stream_options' must be an object, got {}", shown(*so));
    }
    if (!p.stream) {
      invalid_param("stream_options", "'stream_options' is only allowed when 'stream' is true");
    }
    p.include_usage = get_bool(*so, "include_usage").value_or(false);
  }
  p.ignore_eos = get_bool(body, "ignore_eos").value_or(false);
  p.skip_special_tokens = get_bool(body, "skip_special_tokens").value_or(true);
  p.user = get_string(body, "user").value_or("");
  return p;
}

// Text of a message's content: a string, null, or a list of {"type": "text", "text": ...} parts.
std::string message_text(const json& content, const std::string& where) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    invalid_param(where, "'{}' must be a string or a list of content parts, got {}", where,
                  shown(content));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      invalid_param(at, "'{}' must be an object with a 'type', got {}", at, shown(part));
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") {
      invalid_param(at, "'{}' has type '{}'; this server accepts text parts only", at, type);
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      invalid_param(at, "'{}.text' must be a string", at);
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<tokenizer::ToolCall> parse_tool_calls(const json& calls, const std::string& where) {
  if (!calls.is_array()) invalid_param(where, "'{}' must be a list", where);
  std::vector<tokenizer::ToolCall> out;
  for (size_t i = 0; i < calls.size(); ++i) {
    const json& c = calls[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object()) {
      invalid_param(at, "'{}' must be an object with a 'function' object", at);
    }
    const json& fn = c["function"];
    tokenizer::ToolCall call;
    call.id = get_string(c, "id").value_or(fmt::format("call_{}", i));
    call.name = fn.contains("name") && fn["name"].is_string() ? fn["name"].get<std::string>() : "";
    if (call.name.empty()) invalid_param(at, "'{}.function.name' must be a non-empty string", at);
    const json* args = field(fn, "arguments");
    call.arguments = !args ? "{}" : args->is_string() ? args->get<std::string>() : args->dump();
    out.push_back(std::move(call));
  }
  return out;
}

std::vector<tokenizer::ChatMessage> parse_messages(const json& body) {
  const json* msgs = field(body, "messages");
  if (!msgs || !msgs->is_array() || msgs->empty()) {
    invalid_param("messages", "'messages' must be a non-empty list of messages");
  }
  std::vector<tokenizer::ChatMessage> out;
  std::unordered_map<std::string, std::string> tool_names;  // tool_call id -> function name
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string at = fmt::format("messages[{}]", i);
    if (!m.is_object()) invalid_param(at, "'{}' must be an object, got {}", at, shown(m));
    const json* role = field(m, "role");
    if (!role || !role->is_string()) invalid_param(at + ".role", "'{}.role' must be a string", at);
    tokenizer::ChatMessage msg;
    msg.role = role->get<std::string>();
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" &&
        msg.role != "tool") {
      invalid_param(at + ".role",
                    "'{}.role' is '{}'; expected system, developer, user, assistant or tool", at,
                    msg.role);
    }
    msg.content = message_text(m.value("content", json()), at + ".content");
    if (msg.role == "assistant") {
      if (const json* calls = field(m, "tool_calls")) {
        msg.tool_calls = parse_tool_calls(*calls, at + ".tool_calls");
        for (const auto& c : msg.tool_calls) tool_names[c.id] = c.name;
      }
      if (const json* r = field(m, "reasoning_content"); r && r->is_string()) {
        msg.reasoning = r->get<std::string>();
      }
    }
    if (msg.role == "tool") {
      msg.name = get_string(m, "name").value_or("");
      if (msg.name.empty()) {
        const std::string id = get_string(m, "tool_call_id").value_or("");
        if (auto it = tool_names.find(id); it != tool_names.end()) msg.name = it->second;
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

// tools + tool_choice -> the tools the model is shown ("none": none; a named function: only it).
nlohmann::ordered_json parse_tools(const json& body, bool& enabled) {
  enabled = false;
  const json* tools = field(body, "tools");
  if (!tools) return json::array();
  if (!tools->is_array()) invalid_param("tools", "'tools' must be a list of tool objects");
  for (size_t i = 0; i < tools->size(); ++i) {
    const json& t = (*tools)[i];
    const std::string at = fmt::format("tools[{}]", i);
    if (!t.is_object() || t.value("type", "function") != "function" || !t.contains("function") ||
        !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string()) {
      invalid_param(at, "'{}' must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}",
                    at);
    }
  }
  json shown_tools = *tools;
  if (const json* choice = field(body, "tool_choice")) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "none") return json::array();
      if (c != "auto" && c != "required") {
        invalid_param("tool_choice",
                      "'tool_choice' must be none, auto, required or a named "
                      "function, got {}",
                      shown(*choice));
      }
    } else if (choice->is_object() && choice->contains("function") &&
               (*choice)["function"].is_object() && (*choice)["function"].contains("name")) {
      const json name = (*choice)["function"]["name"];
      shown_tools = json::array();
      for (const json& t : *tools) {
        if (t["function"]["name"] == name) shown_tools.push_back(t);
      }
      if (shown_tools.empty()) {
        invalid_param("tool_choice", "'tool_choice' names the function {}, which is not in 'tools'",
                      shown(name));
      }
    } else {
      invalid_param("tool_choice",
                    "'tool_choice' must be none, auto, required or "
                    "{{\"type\": \"function\", \"function\": {{\"name\": ...}}}}");
    }
  }
  enabled = !shown_tools.empty();
  return shown_tools;
}

}  // namespace

nlohmann::ordered_json parse_json_body(std::string_view body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    ApiError err;
    err.status = 400;
    err.code = "invalid_json";
    // e.what() names the byte: "[json.exception.parse_error.101] parse error at line 1, column 9:
    // syntax error while parsing object key - ..."
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    err.message = fmt::format("the request body is not valid JSON: {} (byte {})", what, e.byte);
    throw ApiException(std::move(err));
  }
}

ChatParams parse_chat_request(const nlohmann::ordered_json& body,
                              const engine::SamplingParams& defaults) {
  ChatParams p;
  p.common = parse_common(body, defaults);
  const bool logprobs = get_bool(body, "logprobs").value_or(false);
  const auto top = get_int(body, "top_logprobs", 0, 20);
  if (top && !logprobs) {
    invalid_param("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  }
  if (logprobs) p.common.top_logprobs = static_cast<int>(top.value_or(0));
  p.messages = parse_messages(body);
  p.options.tools = parse_tools(body, p.tools_enabled);
  if (const json* kw = field(body, "chat_template_kwargs")) {
    if (!kw->is_object()) {
      invalid_param("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    }
    p.options.enable_thinking = get_bool(*kw, "enable_thinking").value_or(true);
  }
  return p;
}

CompletionParams parse_completion_request(const nlohmann::ordered_json& body,
                                          const engine::SamplingParams& defaults) {
  CompletionParams p;
  p.common = parse_common(body, defaults);
  if (auto lp = get_int(body, "logprobs", 0, 20)) p.common.top_logprobs = static_cast<int>(*lp);
  p.echo = get_bool(body, "echo").value_or(false);
  const json* prompt = field(body, "prompt");
  const char* shape =
      "'prompt' must be a string, a list of strings, a list of token ids or a "
      "list of token-id lists";
  if (!prompt) invalid_param("prompt", "{}; it is missing", shape);
  auto token_list = [&](const json& ids) {
    std::vector<int32_t> out;
    for (const json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        invalid_param("prompt", "{}; {} is not a token id", shape, shown(id));
      }
      out.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    if (out.empty()) invalid_param("prompt", "a token-id prompt must not be empty");
    return out;
  };
  if (prompt->is_string()) {
    p.text_prompts.push_back(prompt->get<std::string>());
  } else if (prompt->is_array() && !prompt->empty()) {
    const json& first = (*prompt)[0];
    if (first.is_number()) {
      p.token_prompts.push_back(token_list(*prompt));
    } else {
      for (const json& item : *prompt) {
        if (item.is_string()) {
          p.text_prompts.push_back(item.get<std::string>());
        } else if (item.is_array()) {
          p.token_prompts.push_back(token_list(item));
        } else {
          invalid_param("prompt", "{}, got {}", shape, shown(item));
        }
      }
      if (!p.text_prompts.empty() && !p.token_prompts.empty()) {
        invalid_param("prompt", "{}; do not mix strings and token lists", shape);
      }
    }
  } else {
    invalid_param("prompt", "{}, got {}", shape, shown(*prompt));
  }
  if (p.text_prompts.size() + p.token_prompts.size() > 32) {
    invalid_param("prompt", "at most 32 prompts per request");
  }
  return p;
}

}  // namespace autoglm::server
