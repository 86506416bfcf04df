// The continuous-batching engine: one thread owns the model and runs steps; each step admits
// waiting requests while batch slots and KV blocks allow, builds one batch of decode tokens and
// prefill chunks (chunked prefill, so a long prompt does not stall running decodes), runs one
// forward pass over all of them, samples, detokenizes and checks stops, and pushes events to each
// request's callback. Requests beyond the queue bound are refused at once (QueueFull).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/thread_pool.h"
#include "engine/service.h"
#include "models/kv_cache.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::engine {

struct EngineConfig {
  int max_batch = 16;             // sequences in one step
  int max_queue = 64;             // requests waiting for a slot; beyond: QueueFull
  int max_queue_delay_ms = 5;     // how long the first waiting request may wait for others
  int64_t context_length = 4096;  // tokens per sequence (prompt + completion)
  int64_t kv_blocks = 0;          // blocks in the shared pool; 0 = max_batch * context / block
  int64_t block_size = 16;        // tokens per KV block
  int64_t step_tokens = 512;      // tokens per step (decodes first, then prefill chunks)
  DType kv_type = models::kDefaultKvType;  // KV-cache element type: f16 (default) or f32
};

class BatchEngine final : public InferenceService {
 public:
  BatchEngine(const models::Model& model, const tokenizer::Tokenizer& tokenizer,
              EngineConfig config, ThreadPool& pool);
  ~BatchEngine() override;
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  SubmitResult submit(GenerationRequest request, EventCallback on_event) override;
  void cancel(uint64_t id) override;
  ServiceStats stats() const override;
  int64_t context_length() const override { return config_.context_length; }
  const EngineConfig& config() const { return config_; }
  size_t kv_pool_bytes() const { return pool_kv_.bytes(); }

  // Stops taking requests; in-flight ones are cancelled. Called by the destructor.
  void shutdown();

 private:
  struct Sequence;

  void loop();
  void wait_for_work(std::unique_lock<std::mutex>& lock);
  void admit_waiting();
  void apply_cancellations_and_deadlines();
  bool run_step();
  void sample_and_emit(Sequence& seq, const float* logits);
  void finish(Sequence& seq, FinishReason reason, const std::string& error = {});
  void preempt(Sequence& seq);
  void warm_up();

  const models::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  EngineConfig config_;
  ThreadPool& pool_;
  models::KvPool pool_kv_;
  models::ForwardScratch scratch_;
  std::vector<float> logits_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Sequence>> waiting_;   // guarded by mutex_
  std::unordered_set<uint64_t> cancel_requests_;    // guarded by mutex_
  std::vector<std::unique_ptr<Sequence>> running_;  // engine thread only
  uint64_t next_id_ = 1;                            // guarded by mutex_
  bool stopping_ = false;                           // guarded by mutex_

  std::atomic<int64_t> n_running_{0}, n_waiting_{0}, kv_used_{0};
  std::atomic<int64_t> prompt_tokens_total_{0}, generation_tokens_total_{0};
  std::atomic<int64_t> steps_total_{0}, batched_total_{0}, max_batch_seen_{0}, preemptions_{0};
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

}  // namespace autoglm::engine
