// What the server sees of the engine: submit a tokenized request, receive events on a callback,
// cancel, read stats. One engine thread owns the model; HTTP threads only call these methods
// (DESIGN.md "A request, end to end"; STYLE.md 10). An abstract interface so server tests can run
// against a scripted fake as well as the real engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampler.h"

namespace autoglm::engine {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, chat format already applied
  SamplingParams sampling;
  int max_tokens = 256;                   // new tokens at most
  std::vector<int32_t> stop_ids;          // end generation when sampled (eos ids by default)
  std::vector<std::string> stop_strings;  // end generation when the text contains one (not emitted)
  bool ignore_eos = false;
  int top_logprobs = -1;  // -1: no logprobs; 0..20: logprob of the token + that many alternatives
  bool skip_special_tokens = true;                                // in the text deltas
  std::optional<std::chrono::steady_clock::time_point> deadline;  // per-request timeout
};

struct TokenLogprob {
  int32_t token = 0;
  std::string text;
  float logprob = 0;
};

enum class FinishReason { Stop, Length, Cancelled, Timeout, Error };
const char* finish_reason_name(
    FinishReason r);  // "stop", "length", "cancelled", "timeout", "error"

// One event per engine step for a request: new text (possibly empty while a UTF-8 character or a
// possible stop string is held back), and, on the last event, the finish reason.
struct GenerationEvent {
  std::string text_delta;
  std::vector<int32_t> token_ids;      // tokens sampled in this step (usually one)
  std::vector<TokenLogprob> logprobs;  // per token, when requested
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  bool finished = false;
  FinishReason finish_reason = FinishReason::Stop;
  std::string error;          // when finish_reason == Error
  int64_t prompt_tokens = 0;  // filled on the last event
  int64_t completion_tokens = 0;
  double time_to_first_token_s = 0;  // filled on the last event
};

// Called on the engine thread: must be quick and must not block (post to your own executor).
using EventCallback = std::function<void(const GenerationEvent&)>;

struct ServiceStats {
  int64_t requests_running = 0;
  int64_t requests_waiting = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  int64_t steps_total = 0;
  int64_t batched_sequences_total = 0;  // sum over steps of sequences in the step
  int64_t max_batch_seen = 0;
  int64_t preemptions_total = 0;  // sequences sent back to the queue when KV blocks ran out
  bool ready = false;             // model loaded and warmed up
};

enum class SubmitStatus { Accepted, QueueFull, NotReady, Invalid };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Accepted;
  uint64_t id = 0;  // valid when Accepted
  std::string
      message;  // why, when not accepted (e.g. "prompt of 9000 tokens exceeds the context of 8192")
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;
  // Never blocks. Events arrive on `on_event` until one has finished == true (exactly once).
  virtual SubmitResult submit(GenerationRequest request, EventCallback on_event) = 0;
  // Idempotent; the request finishes with Cancelled at the next step and frees its cache.
  virtual void cancel(uint64_t id) = 0;
  virtual ServiceStats stats() const = 0;
  virtual int64_t context_length() const = 0;
};

}  // namespace autoglm::engine
