// A scripted InferenceService for server tests: every accepted request "generates" the pieces of
// a script, one per step, on its own engine thread (as the real engine does: callbacks from a
// thread that is not an HTTP thread). Knobs make it full, not ready, slow or paused; it records
// what it was given and what was cancelled.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/service.h"

namespace autoglm::testing {

class FakeService final : public engine::InferenceService {
 public:
  FakeService();
  ~FakeService() override;

  engine::SubmitResult submit(engine::GenerationRequest request,
                              engine::EventCallback on_event) override;
  void cancel(uint64_t id) override;
  engine::ServiceStats stats() const override;
  int64_t context_length() const override { return context; }

  // Knobs (set before requests arrive).
  std::vector<std::string> pieces = {"Hello", ",", " world", "!"};  // one per step; then Stop
  int step_ms = 1;
  int64_t context = 4096;
  std::atomic<bool> ready{true};
  std::atomic<int> capacity{64};    // requests in flight at most; beyond: QueueFull
  std::atomic<bool> paused{false};  // no steps while true

  // Observations.
  std::vector<engine::GenerationRequest> submitted() const;
  std::vector<uint64_t> cancelled() const;
  int in_flight() const;
  // Polls `condition` every millisecond for up to `timeout`.
  static bool wait_until(const std::function<bool()>& condition,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct Active {
    engine::GenerationRequest request;
    engine::EventCallback on_event;
    size_t step = 0;
    std::string text;
  };
  void loop();
  bool step(uint64_t id, Active& a);  // true when finished

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, Active> active_;
  std::vector<engine::GenerationRequest> submitted_;
  std::vector<uint64_t> cancel_requests_;
  std::vector<uint64_t> cancelled_;
  uint64_t next_id_ = 1;
  int64_t steps_ = 0, batched_ = 0, generated_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace autoglm::testing
