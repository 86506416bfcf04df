// Chat formats: the llama.cpp goldens byte for byte, hand-derived prompts for the formats whose
// templates are not in the fixtures, tool calls of every format rendered and parsed back into the
// same OpenAI structure, malformed calls kept as content, and the choice of format for a model.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/fixtures.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;

ChatMessage message(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatMessage calls(std::vector<ToolCall> tool_calls, std::string content = "") {
  ChatMessage m = message("assistant", std::move(content));
  m.tool_calls = std::move(tool_calls);
  return m;
}

OJson weather_tools() {
  return OJson::parse(R"JSON([{"type": "function", "function": {"name": "get_weather",
      "description": "天气", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}, "zip": {"type": "string"},
                     "days": {"type": "integer"}}}}}])JSON");
}

TEST(ChatFormat, GoldensByteForByte) {
  const nlohmann::json goldens = autoglm::testing::read_json(autoglm::testing::fixtures_dir() /
                                                             "templates/glm_chat_goldens.json");
  std::vector<ChatMessage> messages;
  for (const auto& m : goldens["messages"]) {
    messages.push_back(message(m["role"].get<std::string>(), m["content"].get<std::string>()));
  }
  int checked = 0;
  for (const auto& [key, expected] : goldens["expected"].items()) {
    std::string format;
    if (key.starts_with("ChatGLM4")) format = "glm4";
    if (key.starts_with("GLMEdge")) format = "glm-edge";
    if (key.starts_with("ChatGLM3")) format = "chatglm3";
    ASSERT_FALSE(format.empty()) << "golden '" << key << "' has no format mapped";
    ASSERT_NE(key.find("add_generation_prompt"), std::string::npos) << key;
    EXPECT_EQ(chat_format_named(format)->render(messages, {}), expected.get<std::string>()) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

// glm-4-9b-chat's tokenizer_config template under trim_blocks: "{% if tool['type'] ==
// 'function' %}\n\n## " loses its first newline; tojson(indent=4) is json.dumps(indent=4,
// ensure_ascii=False). Tools end the prompt at "<|assistant|>" so a call can follow the role.
TEST(ChatFormat, Glm4ToolsPromptAndCall) {
  ChatOptions options;
  options.tools = OJson::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
  const std::vector<ChatMessage> messages = {
      message("user", "北京?"), calls({{"call_1", "get_weather", R"({"city": "北京"})"}}),
      message("tool", R"({"temp": 20})")};
  const std::string expected =
      "[gMASK]<sop><|system|>\n你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 "
      "GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具\n## "
      "get_weather\n\n{\n    \"name\": \"get_weather\",\n    \"parameters\": {\n        \"type\": "
      "\"object\",\n        \"properties\": {\n            \"city\": {\n                "
      "\"type\": \"string\"\n            }\n        }\n    }\n}\n在调用上述函数时，请使用 Json "
      "格式表示调用的参数。<|user|>\n北京?<|assistant|>get_weather\n{\"city\": \"北京\"}"
      "<|observation|>\n{\"temp\": 20}<|assistant|>";
  EXPECT_EQ(chat_format_named("glm4")->render(messages, options), expected);
}

// GLM-Z1-0414's chat_template.jinja (G.4): system messages first, turns re-rendered from after
// their last </think> and stripped, reply started inside <think>.
TEST(ChatFormat, GlmZ1AndGlm40414) {
  const std::vector<ChatMessage> messages = {message("user", "Q1"),
                                             message("assistant", "<think>old</think>\n\n A1 "),
                                             message("system", "Sys"), message("user", "Q2")};
  EXPECT_EQ(chat_format_named("glm-z1")->render(messages, {}),
            "[gMASK]<sop><|system|>\nSys<|user|>\nQ1<|assistant|>\nA1<|user|>\nQ2<|assistant|>\n"
            "<think>");
  EXPECT_EQ(chat_format_named("glm4-0414")->render({message("user", "Q")}, {}),
            "[gMASK]<sop><|user|>\nQ<|assistant|>");
  const ParsedReply reply = chat_format_named("glm-z1")->parse("step 1\nstep 2</think>\n\nAnswer");
  EXPECT_EQ(reply.reasoning, "step 1\nstep 2");
  EXPECT_EQ(reply.content, "Answer");
  EXPECT_EQ(chat_format_named("glm-z1")->parse("cut off while thinking").reasoning,
            "cut off while thinking");
}

TEST(ChatFormat, Glm41vThinkAnswer) {
  const auto format = chat_format_named("glm4.1v");
  std::string user = "What is this?";
  user.insert(0, kGlmImagePlaceholder);
  EXPECT_EQ(format->render({message("system", "S"), message("user", user)}, {}),
            "[gMASK]<sop><|system|>\nS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>What "
            "is this?<|assistant|>\n");
  const ParsedReply reply = format->parse(
      "<think>Tap the button.</think><answer>do(action=\"Tap\", element=[500,100])</answer>");
  EXPECT_EQ(reply.reasoning, "Tap the button.");
  EXPECT_EQ(reply.content, "do(action=\"Tap\", element=[500,100])");
  EXPECT_EQ(format->parse("<think>a</think>\nplain answer").content, "plain answer");
}

TEST(ChatFormat, Glm45ThinkingAndStops) {
  const auto format = chat_format_named("glm4.5");
  ParsedReply reply = format->parse("\n<think>reason</think>\nThe answer.<|user|>");
  EXPECT_EQ(reply.reasoning, "reason");
  EXPECT_EQ(reply.content, "The answer.");
  reply = format->parse("\n<think>cut");
  EXPECT_EQ(reply.reasoning, "cut");
  EXPECT_EQ(reply.content, "");
  EXPECT_EQ(format->stop_strings(),
            (std::vector<std::string>{"<|user|>", "<|observation|>", "<|endoftext|>"}));
}

// Render an assistant turn with tool calls after a prompt, take the text after the generation
// prompt as the "model output", parse it back: the same names and the same argument objects.
void expect_round_trip(const std::string& format_name, const std::vector<ToolCall>& tool_calls,
                       const std::string& content) {
  SCOPED_TRACE(format_name);
  const auto format = chat_format_named(format_name);
  ChatOptions options;
  options.tools = weather_tools();
  const std::vector<ChatMessage> history = {message("user", "weather?")};
  const std::string prompt = format->render(history, options);
  std::vector<ChatMessage> with_reply = history;
  with_reply.push_back(calls(tool_calls, content));
  options.add_generation_prompt = false;
  const std::string full = format->render(with_reply, options);
  // The reply is what follows the prompt. GLM-Z1's prompt goes on into "\n<think>", which a
  // past turn does not keep: its reply is reasoning, </think>, then the turn as rendered.
  std::string_view prefix = prompt;
  std::string reasoning;
  if (format_name == "glm-z1") {
    prefix.remove_suffix(std::string_view("\n<think>").size());
    reasoning = "Need the weather.";
  }
  ASSERT_TRUE(full.starts_with(prefix)) << full;
  const std::string generated =
      (reasoning.empty() ? "" : reasoning + "</think>") + full.substr(prefix.size());
  const ParsedReply reply = format->parse(generated, options.tools);
  EXPECT_EQ(reply.reasoning, reasoning);
  EXPECT_EQ(reply.content, content);
  ASSERT_EQ(reply.tool_calls.size(), tool_calls.size());
  for (size_t i = 0; i < tool_calls.size(); ++i) {
    EXPECT_EQ(reply.tool_calls[i].name, tool_calls[i].name);
    EXPECT_EQ(OJson::parse(reply.tool_calls[i].arguments), OJson::parse(tool_calls[i].arguments));
    EXPECT_TRUE(reply.tool_calls[i].id.starts_with("call_"));
  }
  if (tool_calls.size() == 2) {
    EXPECT_NE(reply.tool_calls[0].id, reply.tool_calls[1].id);
  }
}

TEST(ChatFormat, ToolCallsRoundTrip) {
  const std::vector<ToolCall> one = {{"x", "get_weather", R"({"city": "北京", "days": 3})"}};
  // "zip" is declared a string: it must come back as "02139", not the number 2139.
  const std::vector<ToolCall> two = {
      {"x", "get_weather", R"({"city": "Paris", "zip": "02139", "days": 2})"},
      {"y", "get_weather", R"({"city": "Oslo", "extra": {"a": [1, true, null]}})"}};
  for (const char* name : {"glm4", "glm4-0414", "glm-z1", "glm4.5"}) {
    expect_round_trip(name, one, "");
    expect_round_trip(name, two, "");
  }
  expect_round_trip("glm4", one, "Let me check.");
  expect_round_trip("glm4.5", two, "Let me check.");
}

TEST(ChatFormat, Glm45ArgumentTypesWithoutSchema) {
  const ParsedReply reply = chat_format_named("glm4.5")->parse(
      "<tool_call>f\n<arg_key>n</arg_key>\n<arg_value>7</arg_value>\n<arg_key>s</arg_key>\n"
      "<arg_value>seven</arg_value>\n<arg_key>o</arg_key>\n<arg_value>{\"k\": 1}</arg_value>\n"
      "</tool_call>");
  ASSERT_EQ(reply.tool_calls.size(), 1u);
  EXPECT_EQ(OJson::parse(reply.tool_calls[0].arguments),
            OJson::parse(R"({"n": 7, "s": "seven", "o": {"k": 1}})"));
}

TEST(ChatFormat, MalformedToolCallsStayContent) {
  const auto glm45 = chat_format_named("glm4.5");
  for (const std::string text :
       {"<tool_call>f\n<arg_key>a</arg_key>\n<arg_value>1", "<tool_call>bad name!\n</tool_call>",
        "<tool_call>f\n<arg_key>a\n<arg_value>1</arg_value></tool_call>", "<tool_call>",
        "</tool_call><tool_call>f<arg_key></arg_key>"}) {
    const ParsedReply reply = glm45->parse(text);
    EXPECT_TRUE(reply.tool_calls.empty()) << text;
    EXPECT_EQ(reply.content, std::string(chat::py_strip(text))) << text;
  }
  const auto glm4 = chat_format_named("glm4");
  for (const std::string text :
       {"get_weather\n{\"city\": ", "Answer:\n{\"a\": 1}", "get_weather\n[1, 2]", "\nHello"}) {
    const ParsedReply reply = glm4->parse(text);
    EXPECT_TRUE(reply.tool_calls.empty()) << text;
    EXPECT_EQ(reply.content, std::string(chat::skip_newlines(text))) << text;
  }
}

TEST(ChatFormat, UserErrorsAreErrors) {
  ChatOptions options;
  options.tools = weather_tools();
  for (const char* name : {"glm-edge", "chatglm3", "glm4.1v"}) {
    EXPECT_THROW(chat_format_named(name)->render({message("user", "x")}, options), Error) << name;
  }
  EXPECT_THROW(chat_format_named("glm4.5")->render({calls({{"c", "f", "[1]"}})}, {}), Error);
  EXPECT_THROW(chat_format_named("glm4.5")->render({message("wizard", "x")}, {}), Error);
  options.tools = OJson::parse(R"([{"type": "function", "function": {"description": "x"}}])");
  EXPECT_THROW(chat_format_named("glm4")->render({message("user", "x")}, options), Error);
  EXPECT_THROW(chat_format_named("glm5"), Error);
}

TEST(ChatFormat, ForModel) {
  std::string why;
  auto pick = [&](const char* config, const nlohmann::json* tokenizer_config = nullptr) {
    auto format = chat_format_for_model(nlohmann::json::parse(config), tokenizer_config, &why);
    return format ? format->name() : std::string("none");
  };
  EXPECT_EQ(pick(R"({"model_type": "chatglm", "padded_vocab_size": 151552})"), "glm4");
  EXPECT_EQ(pick(R"({"model_type": "chatglm", "padded_vocab_size": 65024})"), "chatglm3");
  EXPECT_EQ(pick(R"({"model_type": "glm", "vocab_size": 59264})"), "glm-edge");
  EXPECT_EQ(pick(R"({"model_type": "glm4", "vocab_size": 151552})"), "glm4-0414");
  EXPECT_EQ(pick(R"({"model_type": "glm4v"})"), "glm4.1v");
  EXPECT_EQ(pick(R"({"model_type": "llama"})"), "none");
  EXPECT_NE(why.find("no GLM chat format"), std::string::npos) << why;

  // The GLM-4.5 fixture directory: config plus the official template as tokenizer_config text.
  const auto dir = autoglm::testing::fixtures_dir() / "templates";
  nlohmann::json tokenizer_config = autoglm::testing::read_json(dir / "tokenizer_config.json");
  std::ifstream jinja(dir / "chat_template.jinja");
  std::ostringstream jinja_text;
  jinja_text << jinja.rdbuf();
  tokenizer_config["chat_template"] = jinja_text.str();
  auto format = chat_format_for_model(autoglm::testing::read_json(dir / "config.json"),
                                      &tokenizer_config, &why);
  ASSERT_TRUE(format);
  EXPECT_EQ(format->name(), "glm4.5");
  EXPECT_NE(why.find("not executed"), std::string::npos) << why;

  // A Z1 template on a glm4 config overrides the model_type guess.
  const nlohmann::json z1 = {{"chat_template",
                              "[gMASK]<sop>{%- set meta = message.get(\"metadata\", \"\") %}"
                              "{% if add_generation_prompt %}<|assistant|>\n<think>{% endif %}"}};
  EXPECT_EQ(pick(R"({"model_type": "glm4"})", &z1), "glm-z1");
  EXPECT_NE(why.find("overrides glm4-0414"), std::string::npos) << why;
}

TEST(ChatText, PythonCompatibleHelpers) {
  EXPECT_EQ(chat::py_strip("\u3000\t a b \u00a0\n"), "a b");
  EXPECT_EQ(chat::py_strip("\xff x \xfe"), "\xff x \xfe");  // invalid bytes are not space
  const OJson v = OJson::parse(R"({"b": [1, 2.5, 1e20, 1e-5, "é\n\u0001"], "a": {}, "c": []})");
  EXPECT_EQ(chat::py_json_dumps(v),
            "{\"b\": [1, 2.5, 1e+20, 1e-05, \"é\\n\\u0001\"], \"a\": {}, \"c\": []}");
  EXPECT_EQ(chat::py_json_dumps(OJson::parse(R"({"a": [1]})"), 2), "{\n  \"a\": [\n    1\n  ]\n}");
}

}  // namespace
}  // namespace autoglm::tokenizer
