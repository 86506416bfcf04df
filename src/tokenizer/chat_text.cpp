#include "tokenizer/chat_text.h"

#include <random>

#include "core/error.h"

namespace autoglm::tokenizer::chat {
namespace {

using OJson = nlohmann::ordered_json;

void dump_value(const OJson& value, int indent, int level, std::string& out) {
  const bool pretty = indent >= 0;
  auto newline = [&](int depth) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
  };
  if (value.is_array() || value.is_object()) {
    const bool object = value.is_object();
    if (value.empty()) {  // Python prints [] and {} even with an indent
      out += object ? "{}" : "[]";
      return;
    }
    out += object ? '{' : '[';
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!first) out += pretty ? "," : ", ";
      first = false;
      if (pretty) newline(level + 1);
      if (object) {
        out += OJson(it.key()).dump(-1, ' ', false, OJson::error_handler_t::replace);
        out += ": ";
      }
      dump_value(it.value(), indent, level + 1, out);
    }
    if (pretty) newline(level);
    out += object ? '}' : ']';
    return;
  }
  // Scalars: nlohmann escapes strings as Python does with ensure_ascii=False (\" \\ \b \f \n \r
  // \t, other controls as \u00xx) and prints doubles in Python's repr form (shortest round trip,
  // exponent outside 1e-4 <= |x| < 1e16, "1.0" for integral values).
  out += value.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

// The code point that ends at text[end) / starts at text[begin], and its byte length; {0, 1} on
// bytes that are not UTF-8 (never white space).
std::pair<char32_t, size_t> code_point_at(std::string_view text, size_t begin) {
  const auto b0 = static_cast<unsigned char>(text[begin]);
  size_t len = b0 < 0x80           ? 1
               : (b0 >> 5) == 0x6  ? 2
               : (b0 >> 4) == 0xE  ? 3
               : (b0 >> 3) == 0x1E ? 4
                                   : 0;
  if (len == 0 || begin + len > text.size()) return {0, 1};
  char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(text[begin + i]);
    if ((b & 0xC0) != 0x80) return {0, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, len};
}

bool is_py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Length of the white space at the end of `text`.
size_t trailing_space(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t begin = end - 1;  // walk back to the lead byte (at most 3 continuation bytes)
    while (begin > 0 && end - begin < 4 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80)
      --begin;
    const auto [cp, len] = code_point_at(text, begin);
    if (begin + len != end || !is_py_space(cp)) break;
    end = begin;
  }
  return text.size() - end;
}

}  // namespace

std::string py_json_dumps(const OJson& value, int indent) {
  std::string out;
  dump_value(value, indent, 0, out);
  return out;
}

std::string_view py_lstrip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    const auto [cp, len] = code_point_at(text, begin);
    if (!is_py_space(cp)) break;
    begin += len;
  }
  return text.substr(begin);
}

std::string_view py_rstrip(std::string_view text) {
  return text.substr(0, text.size() - trailing_space(text));
}

std::string_view py_strip(std::string_view text) {
  return py_rstrip(py_lstrip(text));
}

std::string_view skip_newlines(std::string_view text) {
  const size_t begin = text.find_first_not_of('\n');
  return begin == std::string_view::npos ? std::string_view() : text.substr(begin);
}

std::string_view after_last(std::string_view text, std::string_view marker) {
  const size_t pos = text.rfind(marker);
  return pos == std::string_view::npos ? text : text.substr(pos + marker.size());
}

std::optional<OJson> parse_json_object(std::string_view text) {
  OJson value = OJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object()) return std::nullopt;  // also the "discarded" value of a parse error
  return value;
}

OJson call_arguments(const ToolCall& call) {
  if (py_strip(call.arguments).empty()) return OJson::object();
  auto args = parse_json_object(call.arguments);
  if (!args) {
    fail(
        "tool call '{}' (id '{}') has arguments that are not a JSON object: {}; send "
        "`function.arguments` as the JSON text of an object, e.g. {{\"city\": \"Paris\"}}",
        call.name, call.id, call.arguments.substr(0, 200));
  }
  return *std::move(args);
}

std::vector<OJson> tool_functions(const ChatOptions& options, std::string_view format) {
  std::vector<OJson> functions;
  if (options.tools.is_null()) return functions;
  if (!options.tools.is_array()) fail("`tools` must be an array of tool objects");
  for (size_t i = 0; i < options.tools.size(); ++i) {
    const OJson& tool = options.tools[i];
    if (!tool.is_object()) fail("tools[{}] must be an object", i);
    if (tool.contains("type") && tool["type"] != "function") {
      fail("tools[{}] has type {}: the {} chat format supports only \"function\" tools", i,
           tool["type"].dump(), format);
    }
    const OJson& function = tool.contains("function") ? tool["function"] : tool;
    if (!function.is_object() || !function.contains("name") || !function["name"].is_string()) {
      fail(
          "tools[{}] has no function name: give each tool {{\"type\": \"function\", "
          "\"function\": {{\"name\": ..., \"parameters\": ...}}}}",
          i);
    }
    functions.push_back(function);
  }
  return functions;
}

std::string new_tool_call_id() {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

bool is_function_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

ThinkSplit split_think(std::string_view text, bool starts_in_think) {
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  const size_t close = text.find(kClose);
  const std::string_view lead = py_lstrip(text);
  const bool opens = lead.starts_with(kOpen);
  if (close == std::string_view::npos) {
    if (opens) return {std::string(py_strip(lead.substr(kOpen.size()))), {}};
    if (starts_in_think) return {std::string(py_strip(text)), {}};
    return {"", text};
  }
  std::string_view inner = text.substr(0, close);
  if (opens) {
    inner = py_lstrip(inner).substr(kOpen.size());
  } else if (!starts_in_think) {
    return {"", text};  // a stray </think> in ordinary text: not ours to interpret
  }
  return {std::string(py_strip(inner)), text.substr(close + kClose.size())};
}

std::string_view drop_stop_suffix(std::string_view text, const std::vector<std::string>& stops) {
  for (const std::string& stop : stops) {
    std::string_view trimmed = py_rstrip(text);
    if (trimmed.ends_with(stop)) return trimmed.substr(0, trimmed.size() - stop.size());
  }
  return text;
}

bool is_tool_result(std::string_view role) {
  return role == "tool" || role == "observation";
}

void fail_role(std::string_view format, std::string_view role) {
  fail(
      "message role '{}' is not supported by the {} chat format; use system, user, assistant "
      "or tool",
      role, format);
}

void reject_tools(const ChatOptions& options, std::string_view format) {
  if (options.tools.is_array() && !options.tools.empty()) {
    fail(
        "the {} chat format has no tool calling (its model was not trained with tools); send "
        "the request without `tools`, or serve a GLM-4 / GLM-4-0414 / GLM-4.5 model",
        format);
  }
}

}  // namespace autoglm::tokenizer::chat
