// Request parsing and validation, response shapes and SSE framing, metrics text, auth helpers and
// the port-owner lookup: the pure parts of the server, without sockets where possible.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <boost/asio/ip/tcp.hpp>

#include "core/error.h"
#include "server/api_error.h"
#include "server/auth.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/port_owner.h"
#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

using nlohmann::ordered_json;
using server::ApiException;

// The error a body provokes: status, param and message.
server::ApiError chat_error(const std::string& body) {
  try {
    server::parse_chat_request(server::parse_json_body(body));
  } catch (const ApiException& e) {
    return e.error();
  }
  ADD_FAILURE() << "no error for " << body;
  return {};
}

const char* kMsgs = R"("messages": [{"role": "user", "content": "hi"}])";

TEST(RequestParsing, ChatDefaultsAndAllSamplingFields) {
  const auto p = server::parse_chat_request(server::parse_json_body(
      std::string("{") + kMsgs +
      R"(, "model": "m", "n": 3, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9,
          "top_k": 40, "min_p": 0.05, "frequency_penalty": 0.5, "presence_penalty": -0.5,
          "repetition_penalty": 1.1, "seed": 42, "stop": ["a", "b"], "stream": true,
          "stream_options": {"include_usage": true}, "logprobs": true, "top_logprobs": 3})"));
  EXPECT_EQ(p.common.model, "m");
  EXPECT_EQ(p.common.n, 3);
  EXPECT_EQ(p.common.max_tokens.value(), 7);
  EXPECT_FLOAT_EQ(p.common.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.common.sampling.top_p, 0.9f);
  EXPECT_EQ(p.common.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(p.common.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.common.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(p.common.sampling.presence_penalty, -0.5f);
  EXPECT_FLOAT_EQ(p.common.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(p.common.sampling.seed, 42u);
  EXPECT_TRUE(p.common.seed_given);
  EXPECT_EQ(p.common.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p.common.stream);
  EXPECT_TRUE(p.common.include_usage);
  EXPECT_EQ(p.common.top_logprobs, 3);
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_EQ(p.messages[0].content, "hi");

  const auto d =
      server::parse_chat_request(server::parse_json_body(std::string("{") + kMsgs + "}"));
  EXPECT_EQ(d.common.n, 1);
  EXPECT_FALSE(d.common.max_tokens);
  EXPECT_FLOAT_EQ(d.common.sampling.temperature, 1.0f);
  EXPECT_EQ(d.common.top_logprobs, -1);
  EXPECT_FALSE(d.common.seed_given);
  EXPECT_FALSE(d.tools_enabled);
}

TEST(RequestParsing, BadJsonSaysWhere) {
  const auto e = chat_error(R"({"messages": [}")");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_NE(e.message.find("line 1, column 15"), std::string::npos) << e.message;
}

TEST(RequestParsing, InvalidParametersAreNamed) {
  struct Case {
    std::string extra, param;
  };
  const std::vector<Case> cases = {
      {R"("temperature": 3)", "temperature"},
      {R"("temperature": "hot")", "temperature"},
      {R"("top_p": 0)", "top_p"},
      {R"("n": 0)", "n"},
      {R"("max_tokens": 0)", "max_tokens"},
      {R"("max_tokens": 1.5)", "max_tokens"},
      {R"("stop": 5)", "stop"},
      {R"("stop": [""])", "stop"},
      {R"("presence_penalty": 9)", "presence_penalty"},
      {R"("top_logprobs": 2)", "top_logprobs"},
      {R"("stream_options": {"include_usage": true})", "stream_options"},
      {R"("tools": [{"type": "function"}])", "tools[0]"},
      {R"("tools": [{"type": "function", "function": {"name": "f"}}],
          "tool_choice": {"type": "function", "function": {"name": "g"}})",
       "tool_choice"},
  };
  for (const auto& c : cases) {
    const auto e = chat_error(std::string("{") + kMsgs + ", " + c.extra + "}");
    EXPECT_EQ(e.status, 400) << c.extra;
    EXPECT_EQ(e.param, c.param) << c.extra;
    EXPECT_NE(e.message.find(c.param.substr(0, c.param.find('['))), std::string::npos) << e.message;
  }
  EXPECT_EQ(chat_error(R"({"messages": []})").param, "messages");
  EXPECT_EQ(chat_error(R"({"messages": [{"role": "robot", "content": "x"}]})").param,
            "messages[0].role");
  EXPECT_EQ(
      chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})").param,
      "messages[0].content[0]");
  EXPECT_EQ(chat_error("[1, 2]").status, 400);
}

TEST(RequestParsing, MessagesToolsAndToolChoice) {
  const auto p = server::parse_chat_request(server::parse_json_body(R"({
    "messages": [
      {"role": "developer", "content": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]},
      {"role": "user", "content": "weather?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "b": 1, "a": 2}}},
              {"type": "function", "function": {"name": "other"}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})"));
  ASSERT_EQ(p.messages.size(), 4u);
  EXPECT_EQ(p.messages[0].role, "system");
  EXPECT_EQ(p.messages[0].content, "be brief");
  ASSERT_EQ(p.messages[2].tool_calls.size(), 1u);
  EXPECT_EQ(p.messages[2].tool_calls[0].name, "get_weather");
  EXPECT_EQ(p.messages[2].tool_calls[0].arguments, R"({"city": "Paris"})");
  EXPECT_EQ(p.messages[3].name, "get_weather");  // from the tool_call_id
  ASSERT_TRUE(p.tools_enabled);
  ASSERT_EQ(p.options.tools.size(), 1u);  // the named function only
  // Client key order survives (the official templates print schemas as written).
  EXPECT_EQ(p.options.tools[0]["function"]["parameters"].dump(),
            R"({"type":"object","b":1,"a":2})");

  const auto none = server::parse_chat_request(server::parse_json_body(
      std::string("{") + kMsgs +
      R"(, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"})"));
  EXPECT_FALSE(none.tools_enabled);
  EXPECT_TRUE(none.options.tools.empty());
}

TEST(RequestParsing, CompletionPrompts) {
  auto parse = [](const std::string& s) {
    return server::parse_completion_request(server::parse_json_body(s));
  };
  EXPECT_EQ(parse(R"({"prompt": "abc"})").text_prompts, std::vector<std::string>{"abc"});
  EXPECT_EQ(parse(R"({"prompt": ["a", "b"]})").text_prompts.size(), 2u);
  EXPECT_EQ(parse(R"({"prompt": [1, 2, 3]})").token_prompts,
            (std::vector<std::vector<int32_t>>{{1, 2, 3}}));
  EXPECT_EQ(parse(R"({"prompt": [[1], [2, 3]]})").token_prompts.size(), 2u);
  const auto lp = parse(R"({"prompt": "x", "logprobs": 2, "echo": true})");
  EXPECT_EQ(lp.common.top_logprobs, 2);
  EXPECT_TRUE(lp.echo);
  for (const char* bad : {R"({})", R"({"prompt": 5})", R"({"prompt": [-1]})",
                          R"({"prompt": ["a", [1]]})", R"({"prompt": []})"}) {
    try {
      parse(bad);
      ADD_FAILURE() << bad;
    } catch (const ApiException& e) {
      EXPECT_EQ(e.error().param, "prompt") << bad;
    }
  }
}

TEST(Responses, ErrorShapeIsOpenAis) {
  const auto j = server::queue_full_error("busy", 1).to_json();
  EXPECT_EQ(j["error"]["message"], "busy");
  EXPECT_EQ(j["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_EQ(j["error"]["code"], "queue_full");
  EXPECT_EQ(server::queue_full_error("busy", 1).headers.at(0).first, "Retry-After");
}

TEST(Responses, SseAndChunkFraming) {
  const server::ResponseHeader h{"chatcmpl-1", 123, "m"};
  const auto chunk = server::chat_chunk(h, 0, {{"content", "hi"}}, nullptr, "", true);
  const std::string event = server::sse_event(chunk);
  EXPECT_EQ(event.rfind("data: {", 0), 0u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_EQ(event.find('\n'), event.size() - 2);  // one line per event
  const auto back = nlohmann::json::parse(event.substr(6));
  EXPECT_EQ(back["object"], "chat.completion.chunk");
  EXPECT_EQ(back["choices"][0]["delta"]["content"], "hi");
  EXPECT_TRUE(back["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(back.contains("usage") && back["usage"].is_null());
  // A token that is half a UTF-8 character is sent as U+FFFD, not as an exception.
  const std::string half = "\xe4\xbd";
  const std::string lp = server::dump_json(server::chat_logprobs_json({{5, half, -1.0f}}, {{}}));
  EXPECT_NE(lp.find("\xef\xbf\xbd"), std::string::npos);
  EXPECT_NE(lp.find("[228,189]"), std::string::npos);  // bytes keep the truth
  EXPECT_EQ(server::http_chunk("abc"), "3\r\nabc\r\n");
  EXPECT_EQ(server::http_chunk(std::string(26, 'x')).substr(0, 4), "1a\r\n");
}

TEST(Responses, CompletionLogprobsOffsets) {
  const auto j = server::completion_logprobs_json({{1, "ab", -0.5f}, {2, "c", -1.5f}},
                                                  {{{1, "ab", -0.5f}, {3, "x", -2.0f}}, {}}, 10);
  EXPECT_EQ(j["tokens"], ordered_json({"ab", "c"}));
  EXPECT_EQ(j["text_offset"], ordered_json({10, 12}));
  EXPECT_FLOAT_EQ(j["top_logprobs"][0]["x"].get<float>(), -2.0f);
}

TEST(Metrics, HistogramIsCumulativeWithSumAndCount) {
  server::Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string out;
  h.render(out, "t", "m=\"x\"");
  EXPECT_NE(out.find("t_bucket{m=\"x\",le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_bucket{m=\"x\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_bucket{m=\"x\",le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_sum{m=\"x\"} 5.55\n"), std::string::npos) << out;
  EXPECT_NE(out.find("t_count{m=\"x\"} 3\n"), std::string::npos) << out;
}

TEST(Metrics, TextHasTheVllmNamesAndProcessMemory) {
  server::ServerMetrics m("glm\"x");
  m.observe_request("/v1/chat/completions", 200, "stop", 0.02, 0.3, 10, 5);
  engine::ServiceStats s;
  s.requests_running = 3;
  s.kv_blocks_total = 8;
  s.kv_blocks_used = 2;
  const std::string text = m.render(s, 4);
  for (const char* name :
       {"vllm:num_requests_running{model_name=\"glm\\\"x\"} 3", "vllm:num_requests_waiting",
        "vllm:gpu_cache_usage_perc{model_name=\"glm\\\"x\"} 0.25",
        "vllm:time_to_first_token_seconds_count{model_name=\"glm\\\"x\"} 1",
        "vllm:e2e_request_latency_seconds_bucket", "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total", "autoglm_kv_cache_blocks_used",
        "autoglm_kv_cache_blocks_total", "autoglm_engine_steps_total",
        "autoglm_engine_batched_sequences_total", "process_resident_memory_bytes",
        "autoglm_malloc_in_use_bytes",
        "vllm:request_success_total{model_name=\"glm\\\"x\",finished_reason=\"stop\"} 1",
        "autoglm_http_open_connections{model_name=\"glm\\\"x\"} 4"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  // Every sample line is "name{labels} value" or "name value" with a number.
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    size_t used = 0;
    const std::string value = line.substr(space + 1);
    if (value != "+Inf") {
      EXPECT_NO_THROW((void)std::stod(value, &used)) << line;
    }
  }
  EXPECT_GT(server::read_process_memory().resident_bytes, 1 << 20);
}

TEST(Auth, BearerComparison) {
  EXPECT_TRUE(server::constant_time_equal("abc", "abc"));
  EXPECT_FALSE(server::constant_time_equal("abc", "abd"));
  EXPECT_FALSE(server::constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(server::bearer_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(server::bearer_matches("bearer s3cret ", "s3cret"));
  EXPECT_FALSE(server::bearer_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(server::bearer_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(server::bearer_matches("", "s3cret"));
}

TEST(Auth, KeyFileMustBePrivate) {
  const auto dir = temp_dir("server-key");
  const auto path = dir / "key";
  std::ofstream(path) << "  k3y \n";
  ::chmod(path.c_str(), 0644);
  try {
    server::read_api_key_file(path);
    ADD_FAILURE() << "a world-readable key file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
  }
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(server::read_api_key_file(path), "k3y");
  EXPECT_THROW(server::read_api_key_file(dir / "missing"), Error);
}

TEST(PortOwner, FindsThisProcessHoldingAPort) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::acceptor holder(io, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = holder.local_endpoint().port();
  const auto owner = server::find_port_owner(port);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->pid, static_cast<int>(::getpid()));
  EXPECT_NE(owner->command.find("test_server"), std::string::npos) << owner->command;

  // Binding the held port reports the owner and the flag to change it.
  server::HttpConfig config;
  config.port = port;
  server::HttpServer http(config, [](server::HttpRequest&&, auto) {});
  try {
    http.bind();
    ADD_FAILURE() << "bound a port in use";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(fmt::format("port {}", port)), std::string::npos) << msg;
    EXPECT_NE(msg.find(fmt::format("pid {}", ::getpid())), std::string::npos) << msg;
    EXPECT_NE(msg.find("--port"), std::string::npos) << msg;
  }
}

// The model's sampling defaults (generation_config.json) fill what a request leaves out; what the
// request sets wins.
TEST(RequestParsing, SamplingDefaultsFillOnlyWhatIsLeftOut) {
  engine::SamplingParams d;
  d.temperature = 0.7f;
  d.top_p = 0.9f;
  d.repetition_penalty = 1.3f;
  const auto left_out = server::parse_chat_request(
      server::parse_json_body(R"({"messages": [{"role": "user", "content": "hi"}]})"), d);
  EXPECT_FLOAT_EQ(left_out.common.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(left_out.common.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(left_out.common.sampling.repetition_penalty, 1.3f);
  const auto set = server::parse_completion_request(
      server::parse_json_body(
          R"({"prompt": "x", "temperature": 0, "top_p": 1, "repetition_penalty": 1})"),
      d);
  EXPECT_FLOAT_EQ(set.common.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(set.common.sampling.top_p, 1.0f);
  EXPECT_FLOAT_EQ(set.common.sampling.repetition_penalty, 1.0f);
  const auto openai = server::parse_chat_request(
      server::parse_json_body(R"({"messages": [{"role": "user", "content": "hi"}]})"));
  EXPECT_FLOAT_EQ(openai.common.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(openai.common.sampling.repetition_penalty, 1.0f);
}

}  // namespace
}  // namespace autoglm::testing
