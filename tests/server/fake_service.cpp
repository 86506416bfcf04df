#include "fake_service.h"

#include <algorithm>

namespace autoglm::testing {

using engine::FinishReason;

FakeService::FakeService() : thread_([this] { loop(); }) {}

FakeService::~FakeService() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

engine::SubmitResult FakeService::submit(engine::GenerationRequest request,
                                         engine::EventCallback on_event) {
  std::lock_guard lock(mutex_);
  if (!ready) return {engine::SubmitStatus::NotReady, 0, "warming up"};
  if (static_cast<int>(active_.size()) >= capacity) {
    return {engine::SubmitStatus::QueueFull, 0, "queue of 0 full"};
  }
  submitted_.push_back(request);
  const uint64_t id = next_id_++;
  active_[id] = Active{std::move(request), std::move(on_event), 0, {}};
  wake_.notify_all();
  return {engine::SubmitStatus::Accepted, id, ""};
}

void FakeService::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  cancel_requests_.push_back(id);
  wake_.notify_all();
}

engine::ServiceStats FakeService::stats() const {
  std::lock_guard lock(mutex_);
  engine::ServiceStats s;
  s.ready = ready;
  s.requests_running = static_cast<int64_t>(active_.size());
  s.kv_blocks_total = 100;
  s.kv_blocks_used = static_cast<int64_t>(active_.size());
  s.steps_total = steps_;
  s.batched_sequences_total = batched_;
  s.generation_tokens_total = generated_;
  return s;
}

std::vector<engine::GenerationRequest> FakeService::submitted() const {
  std::lock_guard lock(mutex_);
  return submitted_;
}

std::vector<uint64_t> FakeService::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

int FakeService::in_flight() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(active_.size());
}

bool FakeService::wait_until(const std::function<bool()>& condition,
                             std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

bool FakeService::step(uint64_t id, Active& a) {
  engine::GenerationEvent ev;
  auto finish = [&](FinishReason reason) {
    ev.finished = true;
    ev.finish_reason = reason;
    ev.prompt_tokens = static_cast<int64_t>(a.request.prompt.size());
    ev.completion_tokens = static_cast<int64_t>(a.step);
    a.on_event(ev);
    return true;
  };
  if (std::find(cancel_requests_.begin(), cancel_requests_.end(), id) != cancel_requests_.end()) {
    cancelled_.push_back(id);
    return finish(FinishReason::Cancelled);
  }
  if (a.request.deadline && std::chrono::steady_clock::now() > *a.request.deadline) {
    return finish(FinishReason::Timeout);
  }
  const std::string piece = pieces[a.step % pieces.size()];
  const int32_t token = static_cast<int32_t>(10 + a.step);
  ++a.step;
  ++generated_;
  a.text += piece;
  if (a.request.top_logprobs >= 0) {
    ev.logprobs.push_back({token, piece, -0.25f * static_cast<float>(a.step)});
    std::vector<engine::TokenLogprob> top;
    for (int k = 0; k < a.request.top_logprobs; ++k) {
      top.push_back({token + k, k == 0 ? piece : "alt" + std::to_string(k),
                     -0.25f * static_cast<float>(a.step) - static_cast<float>(k)});
    }
    ev.top_logprobs.push_back(std::move(top));
  }
  for (const auto& s : a.request.stop_strings) {
    if (auto pos = a.text.find(s); pos != std::string::npos) {
      ev.text_delta = piece.substr(0, piece.size() - std::min(piece.size(), a.text.size() - pos));
      ev.token_ids = {token};
      return finish(FinishReason::Stop);
    }
  }
  ev.text_delta = piece;
  ev.token_ids = {token};
  if (static_cast<int>(a.step) >= a.request.max_tokens) return finish(FinishReason::Length);
  if (a.step >= pieces.size() && !a.request.ignore_eos) return finish(FinishReason::Stop);
  a.on_event(ev);
  return false;
}

void FakeService::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(step_ms),
                   [this] { return stop_ || (!active_.empty() && !paused); });
    if (stop_) break;
    if (paused) {  // cancellations still apply, as they do between real engine steps
      for (auto it = active_.begin(); it != active_.end();) {
        const bool cancel = std::find(cancel_requests_.begin(), cancel_requests_.end(),
                                      it->first) != cancel_requests_.end();
        it = cancel && step(it->first, it->second) ? active_.erase(it) : std::next(it);
      }
      continue;
    }
    if (active_.empty()) continue;
    ++steps_;
    batched_ += static_cast<int64_t>(active_.size());
    for (auto it = active_.begin(); it != active_.end();) {
      it = step(it->first, it->second) ? active_.erase(it) : std::next(it);
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    lock.lock();
  }
  // Shutdown: in-flight requests end as cancelled, as the real engine does.
  for (auto& [id, a] : active_) {
    engine::GenerationEvent ev;
    ev.finished = true;
    ev.finish_reason = FinishReason::Cancelled;
    a.on_event(ev);
  }
}

}  // namespace autoglm::testing
