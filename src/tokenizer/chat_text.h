// Helpers shared by the chat formats (chat_*.cpp): the string operations the official Jinja
// templates use, written to give the same bytes as Python does (str.strip, json.dumps as the
// `tojson` filter of Hugging Face transformers), and the pieces of reply parsing every format
// needs.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_format.h"

namespace autoglm::tokenizer::chat {

// Python `json.dumps(value, ensure_ascii=False, indent=indent)`; indent < 0 is indent=None, whose
// separators are ", " and ": " (transformers' `tojson` filter calls exactly this).
std::string py_json_dumps(const nlohmann::ordered_json& value, int indent = -1);

// Python str.strip() / lstrip() / rstrip() with no argument: they remove Unicode white space
// (str.isspace: ASCII \t\n\v\f\r, \x1c-\x1f and space, plus U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
std::string_view py_strip(std::string_view text);
std::string_view py_lstrip(std::string_view text);
std::string_view py_rstrip(std::string_view text);

// `text` without the newlines it starts with (the model writes "\n" right after <|assistant|>).
std::string_view skip_newlines(std::string_view text);

// Everything after the last occurrence of `marker` (all of `text` when absent), as Python's
// text.split(marker)[-1].
std::string_view after_last(std::string_view text, std::string_view marker);

// `text` parsed as a JSON object with its key order kept; nullopt when it is anything else.
std::optional<nlohmann::ordered_json> parse_json_object(std::string_view text);

// The arguments of a tool call in a request, as an object. Empty text is {}; anything that is not
// a JSON object throws Error naming the call.
nlohmann::ordered_json call_arguments(const ToolCall& call);

// The function objects of options.tools (each tool's "function", or the tool itself when it has
// none, as the GLM-4-0414 template does). Throws Error on a tool that is not an object, a type
// other than "function", or a function without a string "name".
std::vector<nlohmann::ordered_json> tool_functions(const ChatOptions& options,
                                                   std::string_view format);

// A fresh OpenAI-style tool call id: "call_" and 24 random letters and digits.
std::string new_tool_call_id();

// An OpenAI function name: 1-64 of [A-Za-z0-9_.-] (OpenAI allows [A-Za-z0-9_-]; '.' is common in
// MCP tool names).
bool is_function_name(std::string_view name);

// Splits a reply into its <think> part and the rest. `starts_in_think`: the prompt already ended
// with "<think>" (GLM-Z1), so the reply begins inside the reasoning. A reply with <think> but no
// </think> (cut off by max_tokens) is all reasoning.
struct ThinkSplit {
  std::string reasoning;  // stripped
  std::string_view rest;  // after </think>
};
ThinkSplit split_think(std::string_view text, bool starts_in_think);

// `text` without a trailing stop string (when the engine passed one through) and the white space
// before it.
std::string_view drop_stop_suffix(std::string_view text, const std::vector<std::string>& stops);

bool is_tool_result(std::string_view role);  // "tool" or "observation"

// Throws Error for a role the format does not know (what the official templates silently drop).
[[noreturn]] void fail_role(std::string_view format, std::string_view role);

// Throws Error when `options` offers tools to a format whose model was not trained on any.
void reject_tools(const ChatOptions& options, std::string_view format);

// The formats (chat_glm4.cpp, chat_glm45.cpp, chat_glm_plain.cpp).
std::unique_ptr<ChatFormat> make_glm4();
std::unique_ptr<ChatFormat> make_glm4_0414(bool z1);
std::unique_ptr<ChatFormat> make_glm41v();
std::unique_ptr<ChatFormat> make_glm45();
std::unique_ptr<ChatFormat> make_glm_edge();
std::unique_ptr<ChatFormat> make_chatglm3();

}  // namespace autoglm::tokenizer::chat
