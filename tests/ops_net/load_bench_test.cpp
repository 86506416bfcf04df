// The online bench against tests/fake_hub/fake_openai.py, a scripted SSE server whose every
// FAIL_EVERY-th request answers 503, so the expected counts are known exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "ops/hub_http.h"
#include "ops/load_bench.h"
#include "ops/svg_chart.h"
#include "ops_net/child_server.h"
#include "support/fixtures.h"

namespace autoglm::ops {
namespace {

using testing::ChildServer;

ChildServer fake_openai(const std::string& delay, const std::string& fail_every) {
  return ChildServer({"python3", (testing::fake_hub_dir() / "fake_openai.py").string(), "--delay",
                      delay, "--fail-every", fail_every});
}

LoadBenchOptions options(const ChildServer& s) {
  LoadBenchOptions o;
  o.url = s.url();
  o.model = "fake";
  o.levels = {1, 4, 16};
  o.requests = 20;
  o.prompt_tokens = 16;
  o.max_tokens = 8;
  return o;
}

void expect_ordered(const LatencySummary& s) {
  EXPECT_LE(s.p50, s.p95);
  EXPECT_LE(s.p95, s.p99);
  EXPECT_LE(s.p99, s.max);
  EXPECT_GT(s.p50, 0);
}

TEST(LoadBench, CountsAddUpAndPercentilesAreOrdered) {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) unsetenv(v);
  ChildServer server = fake_openai("0.002", "5");
  LoadBenchOptions o = options(server);
  o.api_key = "k-123";
  const LoadBenchResult r = run_load_bench(o);
  ASSERT_EQ(r.levels.size(), 3u);
  int errors = 0;
  for (const auto& l : r.levels) {
    EXPECT_EQ(l.requests, 20);
    int level_errors = 0;
    for (const auto& [status, n] : l.errors) {
      EXPECT_EQ(status, "503");
      level_errors += n;
    }
    EXPECT_EQ(l.ok + level_errors, l.requests);
    EXPECT_DOUBLE_EQ(l.error_rate, double(level_errors) / 20);
    errors += level_errors;
    EXPECT_EQ(l.output_tokens, uint64_t(l.ok) * 8);  // usage.completion_tokens
    EXPECT_EQ(l.ttft_ms.count, size_t(l.ok));
    EXPECT_EQ(l.itl_ms.count, size_t(l.ok) * 7);  // 8 tokens: 7 gaps each
    EXPECT_EQ(l.latency_ms.count, size_t(l.ok));
    expect_ordered(l.ttft_ms);
    expect_ordered(l.itl_ms);
    EXPECT_NEAR(l.requests_per_s, l.ok / l.duration_s, 1e-9);
    EXPECT_NEAR(l.output_tokens_per_s, double(l.output_tokens) / l.duration_s, 1e-9);
  }
  EXPECT_EQ(errors, 60 / 5);  // requests 5, 10, ..., 60 of the 60 failed
  std::string stats;
  ASSERT_EQ(http_get_text(server.url() + "/stats", {}, stats).status, 200);
  const auto j = nlohmann::json::parse(stats);
  EXPECT_EQ(j["requests"], 60);
  EXPECT_EQ(j["auth"], "Bearer k-123");
}

// --api completions posts a plain prompt to /v1/completions and counts `text` chunks as tokens.
TEST(LoadBench, CompletionsApiStreamsText) {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"}) unsetenv(v);
  ChildServer server = fake_openai("0.001", "0");
  LoadBenchOptions o = options(server);
  o.chat = false;
  o.levels = {1, 4};
  o.requests = 8;
  EXPECT_EQ(bench_url(o), server.url() + "/v1/completions");
  const LoadBenchResult r = run_load_bench(o);
  ASSERT_EQ(r.levels.size(), 2u);
  for (const auto& l : r.levels) {
    EXPECT_EQ(l.ok, 8) << "errors: " << l.errors.size();
    EXPECT_EQ(l.itl_ms.count, size_t(l.ok) * 7);  // 8 text chunks: 7 gaps each
  }
  std::string stats;
  ASSERT_EQ(http_get_text(server.url() + "/stats", {}, stats).status, 200);
  EXPECT_EQ(nlohmann::json::parse(stats)["paths"]["/v1/completions"], 16);
}

TEST(LoadBench, JsonShapeAndSvgIsWellFormed) {
  ChildServer server = fake_openai("0.001", "0");
  LoadBenchOptions o = options(server);
  o.levels = {1, 2};
  o.requests = 4;
  const LoadBenchResult r = run_load_bench(o);
  const nlohmann::json j = to_json(r);
  EXPECT_EQ(j["url"], server.url() + "/v1/chat/completions");
  EXPECT_EQ(j["model"], "fake");
  ASSERT_EQ(j["levels"].size(), 2u);
  for (const auto& l : j["levels"]) {
    for (const char* k : {"concurrency", "requests", "ok", "errors", "error_rate", "duration_s",
                          "requests_per_s", "output_tokens_per_s", "ttft_ms", "itl_ms"})
      EXPECT_TRUE(l.contains(k)) << k;
    for (const char* k : {"p50", "p95", "p99", "mean", "max", "count"})
      EXPECT_TRUE(l["ttft_ms"].contains(k)) << k;
    EXPECT_EQ(l["ok"], 4);
  }
  const std::string svg = bench_chart_svg(r);
  const auto path = testing::temp_dir("svg") / "bench.svg";
  std::ofstream(path) << svg;
  // Well-formed XML, checked by an independent parser (Python's expat).
  const std::string cmd =
      "python3 -c \"import sys, xml.etree.ElementTree as E; "
      "sys.exit(0 if E.parse(sys.argv[1]).getroot().tag.endswith('svg') else 1)\" " +
      path.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << svg.substr(0, 400);
  // Three latency percentiles in two panels plus the throughput line: 7 polylines.
  size_t polylines = 0;
  for (size_t p = 0; (p = svg.find("<polyline", p)) != std::string::npos; ++p) ++polylines;
  EXPECT_EQ(polylines, 7u);
}

TEST(LoadBench, RampStopsAtTheBreakingPoint) {
  ChildServer server = fake_openai("0.001", "1");  // every request fails
  LoadBenchOptions o = options(server);
  o.ramp = true;
  o.requests = 3;
  const LoadBenchResult r = run_load_bench(o);
  ASSERT_EQ(r.levels.size(), 1u);
  EXPECT_EQ(r.levels[0].errors.at("503"), 3);
  EXPECT_NE(r.stopped.find("stopped at 1"), std::string::npos) << r.stopped;
}

TEST(LoadBench, DurationModeAndRefusedConnections) {
  ChildServer server = fake_openai("0.001", "0");
  LoadBenchOptions o = options(server);
  o.levels = {2};
  o.requests = 0;
  o.duration_s = 0.3;
  const LoadBenchResult r = run_load_bench(o);
  EXPECT_GE(r.levels[0].duration_s, 0.3);
  EXPECT_GT(r.levels[0].ok, 0);
  o.url = "http://127.0.0.1:" + std::to_string(testing::dead_port());
  o.duration_s = 0;
  o.requests = 5;
  const LoadBenchResult dead = run_load_bench(o);
  EXPECT_EQ(dead.levels[0].errors.at("connect"), 5);
  EXPECT_EQ(dead.levels[0].ok, 0);
}

TEST(LoadBenchUnits, PercentilesInterpolateBetweenRanks) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  const LatencySummary s = summarize(v);
  // rank = q (n - 1): p50 -> 49.5 -> halfway between 50 and 51; p99 -> 98.01 -> 99.01.
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_NEAR(s.p99, 99.01, 1e-12);
  EXPECT_NEAR(s.p95, 95.05, 1e-12);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_EQ(summarize({}).count, 0u);
}

TEST(LoadBenchUnits, UrlsOptionsAndAxes) {
  EXPECT_EQ(chat_completions_url("http://h:1/"), "http://h:1/v1/chat/completions");
  EXPECT_EQ(chat_completions_url("http://h:1/v1"), "http://h:1/v1/chat/completions");
  EXPECT_THROW(chat_completions_url("h:1"), Error);
  LoadBenchOptions o;
  o.url = "http://127.0.0.1:1";
  o.model = "m";
  o.requests = 1;
  o.duration_s = 1;
  EXPECT_THROW(run_load_bench(o), Error);  // both --requests and --duration
  EXPECT_EQ(nice_axis(87).max, 100);
  EXPECT_EQ(nice_axis(87).step, 20);
  EXPECT_EQ(xml_escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
}

}  // namespace
}  // namespace autoglm::ops
