// The online `autoglm bench`: streams chat completions (SSE) against any OpenAI-compatible URL at
// each concurrency level and measures requests/s, output tokens/s, time to first token (TTFT),
// inter-token latency (ITL) and errors by status. All streams of a level run on one thread through
// libcurl's multi interface, so 1000 concurrent streams cost 1000 sockets, not 1000 threads.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace autoglm::ops {

struct LoadBenchOptions {
  std::string url;  // "http://host:port" or ".../v1"; /v1/chat/completions is appended
  // false: /v1/completions with a plain "prompt" (models without a chat format, raw-text servers)
  bool chat = true;
  std::string model;                         // the "model" field of each request
  std::string api_key;                       // sent as "Authorization: Bearer ..." when not empty
  std::vector<int> levels = {1, 4, 16, 64};  // concurrent streams per level
  bool ramp = false;            // stop after the first level whose error rate > max_error_rate
  double max_error_rate = 0.5;  // the ramp's breaking point
  int requests = 0;             // per level; 0: run each level for duration_s instead
  double duration_s = 0;        // per level: launch new requests until then, then drain
  int prompt_tokens = 128;      // approximate: one common English word is about one token
  int max_tokens = 64;
  bool ignore_eos = true;  // ask for exactly max_tokens (vLLM/llama.cpp/autoglm extension)
  double request_timeout_s = 600;
};

// Over the samples of one level, in milliseconds; percentiles interpolate linearly between the two
// nearest ranks (numpy's default), so p50 of {1..100} is 50.5.
struct LatencySummary {
  size_t count = 0;
  double mean = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct LevelResult {
  int concurrency = 0;
  int requests = 0;                   // finished (ok + errors)
  int ok = 0;                         // 200 and a complete stream
  std::map<std::string, int> errors;  // "503", "429", "timeout", "connect", "stream" -> count
  double duration_s = 0;              // first launch to last completion
  uint64_t output_tokens = 0;         // usage.completion_tokens, else content chunks
  uint64_t prompt_tokens = 0;         // usage.prompt_tokens summed (0: server gave none)
  double requests_per_s = 0;          // ok / duration
  double output_tokens_per_s = 0;
  double error_rate = 0;  // (requests - ok) / requests
  LatencySummary ttft_ms, itl_ms, latency_ms;
  std::string first_error;  // one example message, for the report
};

struct LoadBenchResult {
  LoadBenchOptions options;
  std::vector<LevelResult> levels;
  std::string stopped;  // why the ramp stopped early; empty otherwise
};

struct LoadBenchObserver {
  // done/total requests of the level (total 0 in duration mode: elapsed/duration is the fraction).
  std::function<void(int concurrency, int done, int total, double elapsed_s)> progress;
  std::function<void(const LevelResult& level)> level_end;
};

LoadBenchResult run_load_bench(const LoadBenchOptions& options,
                               const LoadBenchObserver& observer = {});

// Statistics and reports (load_bench_report.cpp).
double percentile(const std::vector<double>& sorted, double q);  // q in [0, 1]
LatencySummary summarize(std::vector<double> values);
nlohmann::json to_json(const LoadBenchResult& result);
std::string format_table(const LoadBenchResult& result);
std::string bench_chart_svg(const LoadBenchResult& result);

// "http://h:8080" / "http://h:8080/" / "http://h:8080/v1" -> "http://h:8080/v1/chat/completions".
std::string chat_completions_url(const std::string& url);
// The route the bench posts to: chat_completions_url, or .../v1/completions when !options.chat.
std::string bench_url(const LoadBenchOptions& options);

}  // namespace autoglm::ops
