// The server over real sockets against the scripted FakeService: routes, OpenAI shapes, SSE,
// errors, auth, limits, disconnect -> cancel, 429/503, drain on stop and on SIGTERM.
#include <gtest/gtest.h>

#include <csignal>
#include <future>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>

#include "core/error.h"
#include "test_client.h"

namespace autoglm::testing {
namespace {

using nlohmann::json;

json chat_body(json extra = json::object()) {
  json body = {{"model", "glm-tiny"}, {"messages", {{{"role", "user"}, {"content", "Hi there"}}}}};
  body.update(extra);
  return body;
}

std::string concat_chat(const std::vector<json>& events) {
  std::string text;
  for (const auto& e : events) {
    for (const auto& c : e["choices"]) {
      if (c["delta"].contains("content") && c["delta"]["content"].is_string()) {
        text += c["delta"]["content"].get<std::string>();
      }
    }
  }
  return text;
}

TEST(Server, HealthReadyModelsAndUnknownRoutes) {
  Harness h;
  EXPECT_EQ(http_call(h.port, "GET", "/health").status, 200);
  EXPECT_EQ(http_call(h.port, "GET", "/ready").status, 200);
  const auto models = http_call(h.port, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["data"][0]["id"], "glm-tiny");
  EXPECT_EQ(models.json()["data"][0]["owned_by"], "autoglm");
  EXPECT_EQ(models.json()["data"][0]["max_model_len"], 4096);
  EXPECT_EQ(models.json()["data"][0]["autoglm"]["dtype"], "q8_0");
  EXPECT_EQ(http_call(h.port, "GET", "/v1/models/glm-tiny").status, 200);
  EXPECT_EQ(http_call(h.port, "GET", "/v1/models/nope").status, 404);
  const auto missing = http_call(h.port, "GET", "/v2/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(missing.json()["error"].contains("message"));
  EXPECT_EQ(http_call(h.port, "GET", "/v1/chat/completions").status, 405);
  h.service.ready = false;
  const auto not_ready = http_call(h.port, "GET", "/ready");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.headers.count("retry-after"), 1u);
  EXPECT_EQ(http_call(h.port, "GET", "/health").status, 200);
}

TEST(Server, ChatNonStreamRendersTokenizesAndAnswers) {
  Harness h;
  const auto r = post_json(h.port, "/v1/chat/completions",
                           chat_body({{"temperature", 0}, {"max_tokens", 50}, {"seed", 7}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "glm-tiny");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello, world!");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  // The engine got the glm4 rendering of the conversation, tokenized with special tokens.
  const auto sent = h.service.submitted();
  ASSERT_EQ(sent.size(), 1u);
  const std::string rendered = h.format->render({{"user", "Hi there", "", {}, ""}}, {});
  EXPECT_EQ(sent[0].prompt, fixture_tokenizer().encode(rendered, true));
  EXPECT_EQ(sent[0].max_tokens, 50);
  EXPECT_EQ(sent[0].sampling.temperature, 0.0f);
  EXPECT_EQ(sent[0].sampling.seed, 7u);
  for (int32_t id : fixture_tokenizer().special().stop) {
    EXPECT_NE(std::find(sent[0].stop_ids.begin(), sent[0].stop_ids.end(), id),
              sent[0].stop_ids.end());
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], sent[0].prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"], sent[0].prompt.size() + 4);
}

TEST(Server, ChatStreamConcatenatesToTheNonStreamAnswer) {
  Harness h;
  const auto plain = post_json(h.port, "/v1/chat/completions", chat_body());
  const auto r =
      post_json(h.port, "/v1/chat/completions",
                chat_body({{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/event-stream");
  bool done = false;
  const auto events = sse_events(r.body, &done);
  EXPECT_TRUE(done) << r.body;
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(concat_chat(events), plain.json()["choices"][0]["message"]["content"]);
  const json& finish = events[events.size() - 2];
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  const json& usage = events.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], plain.json()["usage"]);
  for (size_t i = 0; i + 1 < events.size(); ++i) EXPECT_TRUE(events[i]["usage"].is_null());
}

// The "\n" a GLM model writes after `<|assistant|>` ends the role line: it is not content, in the
// final message or in the stream (where it may come alone, as the first piece).
TEST(Server, ChatReplyLosesTheRoleLineNewline) {
  Harness h(test_config(), false);
  h.service.pieces = {"\n", "Hello", "\n", "world"};
  h.start();
  const auto plain = post_json(h.port, "/v1/chat/completions", chat_body());
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.json()["choices"][0]["message"]["content"], "Hello\nworld");
  const auto r = post_json(h.port, "/v1/chat/completions", chat_body({{"stream", true}}));
  bool done = false;
  EXPECT_EQ(concat_chat(sse_events(r.body, &done)), "Hello\nworld");
  EXPECT_TRUE(done);
}

// A prompt past the context names the field it came from.
TEST(Server, TooLongPromptNamesItsField) {
  Harness h(test_config(), false);
  h.service.context = 4;
  h.start();
  const auto chat = post_json(h.port, "/v1/chat/completions", chat_body());
  ASSERT_EQ(chat.status, 400) << chat.body;
  EXPECT_EQ(chat.json()["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(chat.json()["error"]["param"], "messages");
  const auto text =
      post_json(h.port, "/v1/completions", {{"prompt", {1, 2, 3, 4, 5, 6}}, {"max_tokens", 1}});
  ASSERT_EQ(text.status, 400) << text.body;
  EXPECT_EQ(text.json()["error"]["param"], "prompt");
}

TEST(Server, NChoicesStopAndLogprobs) {
  Harness h;
  const auto r = post_json(
      h.port, "/v1/chat/completions",
      chat_body(
          {{"n", 2}, {"seed", 100}, {"stop", " world"}, {"logprobs", true}, {"top_logprobs", 2}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello,");
  const auto sent = h.service.submitted();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].sampling.seed, 100u);
  EXPECT_EQ(sent[1].sampling.seed, 101u);  // choices differ when sampling
  EXPECT_EQ(sent[0].stop_strings.at(0), " world");
  const json& lp = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 3u);  // "Hello", ",", and the token that hit the stop string
  EXPECT_EQ(lp[0]["token"], "Hello");
  EXPECT_EQ(lp[0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
}

TEST(Server, CompletionsStreamAndNonStream) {
  Harness h;
  const auto r = post_json(h.port, "/v1/completions",
                           {{"model", "glm-tiny"},
                            {"prompt", "Once"},
                            {"echo", true},
                            {"logprobs", 1},
                            {"max_tokens", 3}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "OnceHello, world");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["logprobs"]["text_offset"][0], 4);
  EXPECT_EQ(h.service.submitted()[0].prompt, fixture_tokenizer().encode_with_prefix("Once", true));

  const auto s = post_json(h.port, "/v1/completions",
                           {{"prompt", {1, 2, 3}}, {"stream", true}, {"max_tokens", 3}});
  bool done = false;
  const auto events = sse_events(s.body, &done);
  EXPECT_TRUE(done);
  std::string text;
  for (const auto& e : events) text += e["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, "Hello, world");
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(h.service.submitted()[1].prompt, (std::vector<int32_t>{1, 2, 3}));
}

TEST(Server, ToolCallsAreParsedFromTheReply) {
  Harness h;
  // What a GLM-4 model writes for a call: the function name, a newline, the JSON arguments.
  h.service.pieces = {"get_weather", "\n", R"({"city": "Paris"})"};
  const json tools = json::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])");
  json with_tools = chat_body();
  with_tools["tools"] = tools;
  const auto r = post_json(h.port, "/v1/chat/completions", with_tools);
  ASSERT_EQ(r.status, 200) << r.body;
  const json response = r.json();
  const json& choice = response["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls") << r.body;
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(
      json::parse(choice["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>()),
      json({{"city", "Paris"}}));
  // The tools reached the prompt.
  const auto prompt = h.service.submitted().at(0).prompt;
  EXPECT_NE(fixture_tokenizer().decode(prompt, false).find("get_weather"), std::string::npos);

  with_tools["stream"] = true;
  const auto s = post_json(h.port, "/v1/chat/completions", with_tools);
  bool done = false;
  const auto events = sse_events(s.body, &done);
  ASSERT_TRUE(done);
  json calls;
  for (const auto& e : events) {
    if (e["choices"][0]["delta"].contains("tool_calls"))
      calls = e["choices"][0]["delta"]["tool_calls"];
  }
  ASSERT_EQ(calls.size(), 1u) << s.body;
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(events.back()["choices"][0]["finish_reason"], "tool_calls");
}

TEST(Server, ErrorStatusesAndShapes) {
  server::ServerConfig config = test_config();
  config.http.max_body_bytes = 2000;
  Harness h(config);
  const auto bad_json = http_call(h.port, "POST", "/v1/chat/completions", "{\"messages\": [");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.json()["error"]["code"], "invalid_json");
  const auto bad_param = post_json(h.port, "/v1/chat/completions", chat_body({{"top_p", 7}}));
  EXPECT_EQ(bad_param.status, 400);
  EXPECT_EQ(bad_param.json()["error"]["param"], "top_p");
  EXPECT_EQ(bad_param.json()["error"]["type"], "invalid_request_error");
  const auto model = post_json(h.port, "/v1/chat/completions", chat_body({{"model", "gpt-9"}}));
  EXPECT_EQ(model.status, 404);
  EXPECT_EQ(model.json()["error"]["code"], "model_not_found");
  const auto too_long =
      post_json(h.port, "/v1/chat/completions", chat_body({{"max_tokens", 5000}}));
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(too_long.json()["error"]["param"], "max_tokens");
  EXPECT_NE(too_long.json()["error"]["message"].get<std::string>().find("4096"), std::string::npos);
  const auto big = post_json(h.port, "/v1/completions", {{"prompt", std::string(3000, 'x')}});
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.json()["error"]["message"].get<std::string>().find("--max-body-bytes"),
            std::string::npos);
  EXPECT_TRUE(h.service.submitted().empty());  // nothing invalid reached the engine
  const std::string malformed = raw_exchange(h.port, "GARBAGE\r\n\r\n");
  EXPECT_EQ(malformed.rfind("HTTP/1.1 400", 0), 0u) << malformed;
}

TEST(Server, QueueFullIs429AndNotReadyIs503WithRetryAfter) {
  Harness h;
  h.service.capacity = 0;
  const auto full = post_json(h.port, "/v1/chat/completions", chat_body());
  EXPECT_EQ(full.status, 429);
  EXPECT_EQ(full.headers.at("retry-after"), "1");
  EXPECT_EQ(full.json()["error"]["code"], "queue_full");
  h.service.capacity = 1;  // n = 2 needs two slots: all or nothing
  const auto partial = post_json(h.port, "/v1/chat/completions", chat_body({{"n", 2}}));
  EXPECT_EQ(partial.status, 429);
  EXPECT_TRUE(FakeService::wait_until([&] { return h.service.in_flight() == 0; }));
  h.service.capacity = 64;
  h.service.ready = false;
  const auto loading = post_json(h.port, "/v1/completions", {{"prompt", "x"}});
  EXPECT_EQ(loading.status, 503);
  EXPECT_EQ(loading.headers.count("retry-after"), 1u);
}

TEST(Server, ApiKeyGuardsEveryRouteButHealth) {
  server::ServerConfig config = test_config();
  config.api_key = "s3cret";
  Harness h(config);
  EXPECT_EQ(http_call(h.port, "GET", "/health").status, 200);
  const auto none = http_call(h.port, "GET", "/v1/models");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["type"], "authentication_error");
  EXPECT_EQ(http_call(h.port, "GET", "/metrics", "", {{"Authorization", "Bearer nope"}}).status,
            401);
  EXPECT_EQ(post_json(h.port, "/v1/chat/completions", chat_body()).status, 401);
  EXPECT_EQ(http_call(h.port, "GET", "/ready", "", {{"Authorization", "Bearer s3cret"}}).status,
            200);
  EXPECT_EQ(
      post_json(h.port, "/v1/chat/completions", chat_body(), {{"Authorization", "Bearer s3cret"}})
          .status,
      200);
}

TEST(Server, NonLoopbackHostNeedsAKey) {
  server::ServerConfig config = test_config();
  config.http.host = "0.0.0.0";
  EXPECT_THROW(server::check_exposure(config), Error);
  config.insecure_no_auth = true;
  EXPECT_NO_THROW(server::check_exposure(config));
  config.insecure_no_auth = false;
  config.api_key = "k";
  EXPECT_NO_THROW(server::check_exposure(config));
}

// Opens a streaming request on a raw socket, reads its first bytes, then hangs up.
void start_and_abandon(uint16_t port, const json& body) {
  namespace net = boost::asio;
  net::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  const std::string text = body.dump();
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(text.size()) + "\r\n\r\n" + text;
  net::write(stream.socket(), net::buffer(req));
  if (body.value("stream", false)) {
    char buf[256];
    stream.expires_after(std::chrono::seconds(5));
    stream.read_some(net::buffer(buf));  // headers and the first chunk: it is running
  }
  stream.socket().close();
}

TEST(Server, ClientDisconnectCancelsTheRequest) {
  Harness h;
  h.service.pieces = std::vector<std::string>(10000, "x");
  h.service.step_ms = 5;
  start_and_abandon(h.port, chat_body({{"stream", true}}));
  EXPECT_TRUE(FakeService::wait_until([&] { return h.service.cancelled().size() == 1; }));
  // A non-streaming request is watched too.
  start_and_abandon(h.port, chat_body());
  EXPECT_TRUE(FakeService::wait_until([&] { return h.service.cancelled().size() == 2; }));
  EXPECT_TRUE(FakeService::wait_until([&] { return h.service.in_flight() == 0; }));
  EXPECT_TRUE(
      FakeService::wait_until([&] { return h.server != nullptr && h.service.in_flight() == 0; }));
  const auto metrics = http_call(h.port, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("finished_reason=\"cancelled\"} 2"), std::string::npos)
      << metrics.body;
}

TEST(Server, RequestTimeoutEndsTheRequest) {
  server::ServerConfig config = test_config();
  config.api.request_timeout_s = 0.05;
  Harness h(config);
  h.service.paused = true;
  auto pending = std::async(std::launch::async,
                            [&] { return post_json(h.port, "/v1/chat/completions", chat_body()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  h.service.paused = false;
  const auto r = pending.get();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "timeout");
}

TEST(Server, KeepAliveServesPipelinedRequests) {
  Harness h;
  const std::string get = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string out = raw_exchange(
      h.port, get + get + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t count = 0;
  for (size_t pos = 0; (pos = out.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 3u) << out;
}

TEST(Server, StopDrainsInFlightStreams) {
  Harness h;
  h.service.pieces = std::vector<std::string>(40, "y");
  h.service.step_ms = 5;
  auto pending = std::async(std::launch::async, [&] {
    return post_json(h.port, "/v1/chat/completions", chat_body({{"stream", true}}));
  });
  ASSERT_TRUE(FakeService::wait_until([&] { return h.service.in_flight() == 1; }));
  EXPECT_EQ(h.stop(), 0);
  const auto r = pending.get();
  bool done = false;
  EXPECT_EQ(concat_chat(sse_events(r.body, &done)), std::string(40, 'y'));
  EXPECT_TRUE(done);
  EXPECT_TRUE(h.service.cancelled().empty());
  EXPECT_ANY_THROW(http_call(h.port, "GET", "/health"));  // no longer accepting
}

TEST(Server, DrainTimeoutCancelsWhatIsLeft) {
  server::ServerConfig config = test_config();
  config.drain_timeout_s = 0.1;
  Harness h(config);
  h.service.pieces = std::vector<std::string>(100000, "z");
  h.service.step_ms = 5;
  auto pending = std::async(std::launch::async, [&] {
    return post_json(h.port, "/v1/chat/completions", chat_body({{"stream", true}}));
  });
  ASSERT_TRUE(FakeService::wait_until([&] { return h.service.in_flight() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.stop(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(h.service.cancelled().size(), 1u);
  const auto r = pending.get();
  EXPECT_NE(r.body.find("\"finish_reason\":\"cancelled\""), std::string::npos);
}

TEST(Server, SigtermDrainsAndExitsZero) {
  server::ServerConfig config = test_config();
  config.handle_signals = true;
  Harness h(config);
  // A successful request proves run() installed the handler (it does so before serving).
  ASSERT_EQ(http_call(h.port, "GET", "/health").status, 200);
  h.service.pieces = std::vector<std::string>(30, "s");
  h.service.step_ms = 5;
  auto pending = std::async(std::launch::async,
                            [&] { return post_json(h.port, "/v1/chat/completions", chat_body()); });
  ASSERT_TRUE(FakeService::wait_until([&] { return h.service.in_flight() == 1; }));
  std::raise(SIGTERM);
  EXPECT_EQ(h.stop(), 0);
  const auto r = pending.get();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], std::string(30, 's'));
}

TEST(Server, MetricsCountRequestsAndShowEngineStats) {
  Harness h;
  ASSERT_EQ(post_json(h.port, "/v1/chat/completions", chat_body()).status, 200);
  const auto m = http_call(h.port, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.at("content-type").rfind("text/plain", 0), 0u);
  EXPECT_NE(m.body.find("vllm:e2e_request_latency_seconds_count{model_name=\"glm-tiny\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(
      m.body.find("vllm:request_success_total{model_name=\"glm-tiny\",finished_reason=\"stop\"} 1"),
      std::string::npos);
  EXPECT_NE(m.body.find("autoglm_kv_cache_blocks_total{model_name=\"glm-tiny\"} 100"),
            std::string::npos);
  // A streamed request is counted before its [DONE] reaches the client.
  ASSERT_EQ(post_json(h.port, "/v1/chat/completions", chat_body({{"stream", true}})).status, 200);
  const auto after_stream = http_call(h.port, "GET", "/metrics");
  EXPECT_NE(
      after_stream.body.find("vllm:e2e_request_latency_seconds_count{model_name=\"glm-tiny\"} 2"),
      std::string::npos)
      << after_stream.body;
}

}  // namespace
}  // namespace autoglm::testing
