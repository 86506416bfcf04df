#include "server/metrics.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace autoglm::server {
namespace {

// vLLM's buckets (vllm/engine/metrics.py), so dashboards and SLO queries carry over.
std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> e2e_buckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}
std::vector<double> token_buckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename T>
void sample(std::string& out, const char* name, const std::string& labels, T value) {
  out += fmt::format("{}{{{}}} {}\n", name, labels, value);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  if (it != bounds_.end()) ++counts_[static_cast<size_t>(it - bounds_.begin())];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count_);
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count_);
}

ProcessMemory read_process_memory() {
  ProcessMemory m;
  // /proc/self/statm: size resident shared text lib data dt, in pages (proc(5)).
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    long size = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &size, &resident) == 2) {
      const long page = sysconf(_SC_PAGESIZE);
      m.virtual_bytes = static_cast<int64_t>(size) * page;
      m.resident_bytes = static_cast<int64_t>(resident) * page;
    }
    std::fclose(f);
  }
  const struct mallinfo2 mi = mallinfo2();
  m.heap_arena_bytes = static_cast<int64_t>(mi.arena + mi.hblkhd);
  m.heap_in_use_bytes = static_cast<int64_t>(mi.uordblks + mi.hblkhd);
  m.heap_free_bytes = static_cast<int64_t>(mi.fordblks);
  return m;
}

ServerMetrics::ServerMetrics(std::string model_name)
    : model_name_(std::move(model_name)),
      ttft_(ttft_buckets()),
      e2e_(e2e_buckets()),
      prompt_tokens_(token_buckets()),
      generation_tokens_(token_buckets()) {}

void ServerMetrics::observe_request(const std::string& route, int status,
                                    const std::string& finish_reason, double ttft_s, double e2e_s,
                                    int64_t prompt_tokens, int64_t completion_tokens) {
  std::lock_guard lock(mutex_);
  http_responses_[{route, status}]++;
  if (finish_reason.empty()) return;
  finished_[finish_reason]++;
  if (completion_tokens > 0) ttft_.observe(ttft_s);
  e2e_.observe(e2e_s);
  prompt_tokens_.observe(static_cast<double>(prompt_tokens));
  generation_tokens_.observe(static_cast<double>(completion_tokens));
}

void ServerMetrics::observe_http(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  http_responses_[{route, status}]++;
}

std::string ServerMetrics::render(const engine::ServiceStats& s, int64_t open_connections) const {
  const std::string m = fmt::format("model_name=\"{}\"", escape_label(model_name_));
  std::string out;
  header(out, "vllm:num_requests_running", "gauge", "Requests in the running batch.");
  sample(out, "vllm:num_requests_running", m, s.requests_running);
  header(out, "vllm:num_requests_waiting", "gauge", "Requests waiting for a batch slot.");
  sample(out, "vllm:num_requests_waiting", m, s.requests_waiting);
  const double usage = s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) /
                                                   static_cast<double>(s.kv_blocks_total)
                                             : 0.0;
  header(out, "vllm:gpu_cache_usage_perc", "gauge",
         "KV-cache usage, 1 = full (named as vLLM's; here the cache lives where the model runs).");
  sample(out, "vllm:gpu_cache_usage_perc", m, usage);
  header(out, "autoglm_kv_cache_blocks_used", "gauge", "KV-cache blocks held by sequences.");
  sample(out, "autoglm_kv_cache_blocks_used", m, s.kv_blocks_used);
  header(out, "autoglm_kv_cache_blocks_total", "gauge", "KV-cache blocks in the pool.");
  sample(out, "autoglm_kv_cache_blocks_total", m, s.kv_blocks_total);
  header(out, "vllm:prompt_tokens_total", "counter", "Prompt tokens processed.");
  sample(out, "vllm:prompt_tokens_total", m, s.prompt_tokens_total);
  header(out, "vllm:generation_tokens_total", "counter", "Tokens generated.");
  sample(out, "vllm:generation_tokens_total", m, s.generation_tokens_total);
  header(out, "autoglm_engine_steps_total", "counter", "Engine steps (one forward pass each).");
  sample(out, "autoglm_engine_steps_total", m, s.steps_total);
  header(out, "autoglm_engine_batched_sequences_total", "counter",
         "Sum over steps of the sequences in the step; divided by steps: the mean batch.");
  sample(out, "autoglm_engine_batched_sequences_total", m, s.batched_sequences_total);
  header(out, "autoglm_engine_max_batch_seen", "gauge", "Most sequences seen in one step.");
  sample(out, "autoglm_engine_max_batch_seen", m, s.max_batch_seen);
  header(out, "autoglm_ready", "gauge", "1 when the model is loaded and warmed up.");
  sample(out, "autoglm_ready", m, s.ready ? 1 : 0);
  header(out, "autoglm_http_open_connections", "gauge", "Open HTTP connections.");
  sample(out, "autoglm_http_open_connections", m, open_connections);

  const ProcessMemory mem = read_process_memory();
  header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out += fmt::format("process_resident_memory_bytes {}\n", mem.resident_bytes);
  header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  out += fmt::format("process_virtual_memory_bytes {}\n", mem.virtual_bytes);
  header(out, "autoglm_malloc_arena_bytes", "gauge",
         "Memory the allocator holds from the OS (mallinfo2 arena + hblkhd).");
  out += fmt::format("autoglm_malloc_arena_bytes {}\n", mem.heap_arena_bytes);
  header(out, "autoglm_malloc_in_use_bytes", "gauge",
         "Memory in allocated blocks (mallinfo2 uordblks + hblkhd).");
  out += fmt::format("autoglm_malloc_in_use_bytes {}\n", mem.heap_in_use_bytes);
  header(out, "autoglm_malloc_free_bytes", "gauge",
         "Free memory inside the allocator (mallinfo2 fordblks).");
  out += fmt::format("autoglm_malloc_free_bytes {}\n", mem.heap_free_bytes);

  std::lock_guard lock(mutex_);
  header(out, "vllm:time_to_first_token_seconds", "histogram", "Time to first token.");
  ttft_.render(out, "vllm:time_to_first_token_seconds", m);
  header(out, "vllm:e2e_request_latency_seconds", "histogram", "End-to-end request latency.");
  e2e_.render(out, "vllm:e2e_request_latency_seconds", m);
  header(out, "vllm:request_prompt_tokens", "histogram", "Prompt tokens per request.");
  prompt_tokens_.render(out, "vllm:request_prompt_tokens", m);
  header(out, "vllm:request_generation_tokens", "histogram", "Generated tokens per request.");
  generation_tokens_.render(out, "vllm:request_generation_tokens", m);
  header(out, "vllm:request_success_total", "counter", "Finished requests by finish reason.");
  for (const auto& [reason, n] : finished_) {
    sample(out, "vllm:request_success_total",
           fmt::format("{},finished_reason=\"{}\"", m, escape_label(reason)), n);
  }
  header(out, "autoglm_http_responses_total", "counter", "HTTP responses by route and status.");
  for (const auto& [key, n] : http_responses_) {
    sample(out, "autoglm_http_responses_total",
           fmt::format("route=\"{}\",status=\"{}\"", escape_label(key.first), key.second), n);
  }
  return out;
}

}  // namespace autoglm::server
