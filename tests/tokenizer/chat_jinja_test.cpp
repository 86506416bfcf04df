// GLM-4.5 rendering against the official chat template executed by a real Jinja engine: jinja2,
// driven as Hugging Face transformers drives it (chat_render_jinja.py), on cases covering system,
// user, assistant, multi-turn, reasoning, tools, tool calls, tool results and thinking on/off.
// Needs python3 with jinja2 (Debian python3-jinja2, installed by scripts/setup.sh).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;
namespace fs = std::filesystem;

// The OpenAI-shaped case (arguments as objects, as vLLM hands them to templates) -> our messages.
std::vector<ChatMessage> to_messages(const OJson& c) {
  std::vector<ChatMessage> out;
  for (const OJson& m : c["messages"]) {
    ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    msg.content = m.value("content", "");
    msg.reasoning = m.value("reasoning_content", "");
    if (m.contains("tool_calls")) {
      for (const OJson& tc : m["tool_calls"]) {
        msg.tool_calls.push_back({tc["id"].get<std::string>(),
                                  tc["function"]["name"].get<std::string>(),
                                  tc["function"]["arguments"].dump()});
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

ChatOptions to_options(const OJson& c) {
  ChatOptions options;
  if (c.contains("tools")) options.tools = c["tools"];
  options.add_generation_prompt = c.value("add_generation_prompt", true);
  options.enable_thinking = c.value("enable_thinking", true);
  return options;
}

OJson tools() {
  return OJson::parse(R"JSON([
    {"type": "function", "function": {"name": "get_weather",
      "description": "查询天气 \"now\"\n(with a newline)",
      "parameters": {"type": "object",
        "properties": {"city": {"type": "string", "description": "城市"},
                       "days": {"type": "integer"}, "zip": {"type": "string"}},
        "required": ["city"]}}},
    {"type": "function", "function": {"name": "search.web", "description": "Search",
      "parameters": {"type": "object", "properties": {}}}}
  ])JSON");
}

OJson call(const char* id, const char* name, const char* arguments) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", name}, {"arguments", OJson::parse(arguments)}}}};
}

OJson msg(const char* role, const char* content) {
  return {{"role", role}, {"content", content}};
}

OJson cases() {
  OJson all = OJson::array();
  auto add = [&](OJson messages, bool thinking, bool gen = true, OJson tool_list = nullptr) {
    OJson c = {{"messages", std::move(messages)},
               {"add_generation_prompt", gen},
               {"enable_thinking", thinking}};
    if (!tool_list.is_null()) c["tools"] = std::move(tool_list);
    all.push_back(std::move(c));
  };
  const OJson golden =
      OJson::array({msg("system", "You are a helpful assistant"), msg("user", "Hello"),
                    msg("assistant", "Hi there"), msg("user", "Who are you"),
                    msg("assistant", "   I am an assistant   "), msg("user", "Another question")});
  add(OJson::array(), true);                     // no messages at all
  add(OJson::array({msg("user", "Hi")}), true);  // one user turn
  add(OJson::array({msg("system", "Be brief."), msg("user", "Hi")}), true);
  add(golden, true);                                                 // multi-turn
  add(golden, false);                                                // thinking off
  add(golden, true, /*gen=*/false);                                  // no generation prompt
  add(OJson::array({msg("user", "Stop thinking/nothink")}), false);  // /nothink not doubled
  {
    // Reasoning: kept only after the last user turn; inline <think> split like the template.
    OJson reasoned = msg("assistant", "\n\n Answer A \n");
    reasoned["reasoning_content"] = "  step 1\nstep 2  ";
    OJson inline_think = msg("assistant", "<think>\nplan B\n</think>\n\nAnswer B");
    add(OJson::array({msg("user", "Q1"), reasoned, msg("user", "Q2"), inline_think}), true);
    add(OJson::array({msg("user", "Q1"), inline_think, msg("user", "Q2"), reasoned}), true);
  }
  add(OJson::array(
          {msg("user", "\u3000 full-width space \u3000"), msg("assistant", "\u3000x\u00a0")}),
      true);
  {
    // Tools, a call with every JSON type, two results in a row, then the answer.
    OJson calling = msg("assistant", "Let me check.");
    calling["tool_calls"] = OJson::array(
        {call("c1", "get_weather",
              R"({"city": "北京", "days": 3, "zip": "100000", "ratio": 0.25, "big": 1e20,
                  "ok": true, "none": null, "list": [1, "two", {"x": []}], "obj": {}})"),
         call("c2", "search.web", "{}")});
    add(OJson::array({msg("system", "Tools allowed."), msg("user", "北京天气?"), calling,
                      msg("tool", "{\"temp\": 20}"), msg("tool", "no results"),
                      msg("assistant", "It is 20 degrees."), msg("user", "Thanks")}),
        true, true, tools());
    add(OJson::array({msg("user", "北京天气?"), calling, msg("tool", "sunny")}), false, true,
        tools());
  }
  return all;
}

// Runs chat_render_jinja.py on `cases` with `template`; the rendered strings.
std::vector<std::string> render_with_jinja(const fs::path& template_path, const OJson& all) {
  const fs::path dir = autoglm::testing::temp_dir("chat_jinja");
  const fs::path input = dir / "cases.json";
  std::ofstream(input) << all.dump();
  const fs::path script = fs::path(__FILE__).parent_path() / "chat_render_jinja.py";
  const std::string command = "python3 '" + script.string() + "' '" + template_path.string() +
                              "' '" + input.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    throw std::runtime_error(
        "jinja2 renderer failed (needs python3-jinja2, see "
        "scripts/setup.sh): " +
        output);
  }
  return nlohmann::json::parse(output).get<std::vector<std::string>>();
}

TEST(ChatJinja, Glm45MatchesOfficialTemplate) {
  const OJson all = cases();
  const auto expected =
      render_with_jinja(autoglm::testing::fixtures_dir() / "templates/chat_template.jinja", all);
  ASSERT_EQ(expected.size(), all.size());
  const auto format = chat_format_named("glm4.5");
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(format->render(to_messages(all[i]), to_options(all[i])), expected[i])
        << "case " << i << ": " << all[i].dump();
  }
}

// What llama.cpp's copy renders under a real Jinja engine, derived from our (official) output:
// its `{%- set user_content ... -%}` eats the newline after <|user|>, and its tool-call loop's
// `-%}` tags eat the newlines after the function name and after each </arg_value>. Only the part
// after the tool list changes (the tool list's own example has the same text in both).
std::string llama_cpp_variant(std::string text) {
  static constexpr std::string_view kListEnd = "...\n</tool_call>";
  const size_t list_end = text.find(kListEnd);
  const size_t from = list_end == std::string::npos ? 0 : list_end + kListEnd.size();
  auto replace_all = [&](std::string_view from_text, std::string_view to_text) {
    for (size_t pos = text.find(from_text, from); pos != std::string::npos;
         pos = text.find(from_text, pos + to_text.size())) {
      text.replace(pos, from_text.size(), to_text);
    }
  };
  replace_all("<|user|>\n", "<|user|>");
  replace_all("\n<arg_key>", "<arg_key>");
  replace_all("</arg_value>\n", "</arg_value>");
  replace_all("\n</tool_call>", "</tool_call>");  // a call without arguments
  return text;
}

TEST(ChatJinja, LlamaCppCopyDiffersOnlyInKnownWhitespace) {
  const OJson all = cases();
  const auto official =
      render_with_jinja(autoglm::testing::fixtures_dir() / "templates/chat_template.jinja", all);
  const auto llama = render_with_jinja(
      autoglm::testing::fixtures_dir() / "templates/glm_4_5.llama.cpp.jinja", all);
  ASSERT_EQ(llama.size(), all.size());
  int differing = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    differing += official[i] != llama[i];
    EXPECT_EQ(llama_cpp_variant(official[i]), llama[i]) << "case " << i;
  }
  EXPECT_GT(differing, 0);  // the copies do differ: we follow the official one
}

}  // namespace
}  // namespace autoglm::tokenizer
