// Prometheus text exposition (format 0.0.4) for /metrics. Names follow vLLM where the meaning
// matches (vllm:num_requests_running, vllm:time_to_first_token_seconds, ...) so existing vLLM
// dashboards work; the rest are autoglm_*. The leak watch (issue 4) is here too: resident memory
// from /proc/self/statm and glibc's allocator figures from mallinfo2().
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/service.h"

namespace autoglm::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // `name`_bucket{le=...}, _sum and _count lines; `labels` like `model_name="x"`.
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // [bounds_.size()] non-cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ProcessMemory {
  int64_t resident_bytes = 0;
  int64_t virtual_bytes = 0;
  int64_t heap_arena_bytes = 0;   // mallinfo2: arena + hblkhd (memory glibc got from the OS)
  int64_t heap_in_use_bytes = 0;  // mallinfo2: uordblks + hblkhd
  int64_t heap_free_bytes = 0;    // mallinfo2: fordblks
};
ProcessMemory read_process_memory();

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  // One finished request: its route, HTTP status, finish reason ("" when it never ran) and times.
  void observe_request(const std::string& route, int status, const std::string& finish_reason,
                       double ttft_s, double e2e_s, int64_t prompt_tokens,
                       int64_t completion_tokens);
  void observe_http(const std::string& route, int status);

  std::string render(const engine::ServiceStats& stats, int64_t open_connections) const;

 private:
  std::string model_name_;
  mutable std::mutex mutex_;
  Histogram ttft_;
  Histogram e2e_;
  Histogram prompt_tokens_;
  Histogram generation_tokens_;
  std::map<std::string, uint64_t> finished_;                        // by finish reason
  std::map<std::pair<std::string, int>, uint64_t> http_responses_;  // by (route, status)
};

}  // namespace autoglm::server
