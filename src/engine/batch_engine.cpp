#include "engine/batch_engine.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace autoglm::engine {

using Clock = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::Cancelled:
      return "cancelled";
    case FinishReason::Timeout:
      return "timeout";
    case FinishReason::Error:
      return "error";
  }
  return "error";
}

namespace {

// A reply to a prompt of special tokens only (e.g. just BOS) starts the text: SentencePiece's
// space prefix is then dropped, as a whole-text decode would.
bool prompt_has_no_text(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& prompt) {
  return std::all_of(prompt.begin(), prompt.end(), [&](int32_t id) {
    return id >= 0 && id < tok.n_vocab() && tok.is_special(id);
  });
}

}  // namespace

struct BatchEngine::Sequence {
  Sequence(uint64_t id_, GenerationRequest r, EventCallback cb, const tokenizer::Tokenizer& tok)
      : id(id_),
        req(std::move(r)),
        on_event(std::move(cb)),
        tokens(req.prompt),
        prompt_len(static_cast<int64_t>(req.prompt.size())),
        sampler(req.sampling),
        decoder(tok, req.skip_special_tokens, prompt_has_no_text(tok, req.prompt)),
        submitted(Clock::now()) {
    for (const auto& s : req.stop_strings) max_stop_len = std::max(max_stop_len, s.size());
  }

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - n_cached(); }
  int64_t n_cached() const { return cache ? cache->size() : 0; }
  std::span<const int32_t> generated_tokens() const {
    return std::span(tokens).subspan(static_cast<size_t>(prompt_len));
  }

  uint64_t id;
  GenerationRequest req;
  EventCallback on_event;
  std::vector<int32_t> tokens;  // prompt, then every sampled token; [0, n_cached) are in the cache
  int64_t prompt_len;
  std::unique_ptr<models::KvCache> cache;  // null while waiting
  Sampler sampler;
  tokenizer::StreamDecoder decoder;
  std::string held;  // decoded text not yet sent: it may be the start of a stop string
  size_t max_stop_len = 0;
  Clock::time_point submitted;
  std::optional<Clock::time_point> first_token;
  bool done = false;
};

namespace {

int64_t default_kv_blocks(const EngineConfig& c) {
  return std::max<int64_t>(1, c.max_batch) * ((c.context_length + c.block_size - 1) / c.block_size);
}

// Largest prefix length of `held` that cannot be the beginning of a stop string, cut on a UTF-8
// character boundary.
size_t emittable_prefix(const std::string& held, size_t max_stop_len) {
  if (max_stop_len <= 1) return held.size();
  size_t cut = held.size() >= max_stop_len - 1 ? held.size() - (max_stop_len - 1) : 0;
  while (cut > 0 && cut < held.size() && (static_cast<unsigned char>(held[cut]) & 0xC0u) == 0x80u) {
    --cut;
  }
  return cut;
}

// log-softmax of `logits` at `token`, and the top `n` alternatives.
void compute_logprobs(std::span<const float> logits, int32_t token, int n,
                      const tokenizer::Tokenizer& tok, GenerationEvent& ev) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max_logit));
  const auto log_z = static_cast<float>(std::log(sum)) + max_logit;
  auto text_of = [&](int32_t id) {
    return id >= 0 && id < tok.n_vocab() ? tok.token_bytes(id, false) : std::string();
  };
  ev.logprobs.push_back({token, text_of(token), logits[static_cast<size_t>(token)] - log_z});
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  const size_t k = std::min(order.size(), static_cast<size_t>(std::max(n, 0)));
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(),
                    [&](int32_t a, int32_t b) {
                      return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)];
                    });
  std::vector<TokenLogprob> top;
  for (size_t i = 0; i < k; ++i) {
    top.push_back({order[i], text_of(order[i]), logits[static_cast<size_t>(order[i])] - log_z});
  }
  ev.top_logprobs.push_back(std::move(top));
}

}  // namespace

BatchEngine::BatchEngine(const models::Model& model, const tokenizer::Tokenizer& tokenizer,
                         EngineConfig config, ThreadPool& pool)
    : model_(model),
      tokenizer_(tokenizer),
      config_(config),
      pool_(pool),
      pool_kv_(model.spec(), config.kv_blocks > 0 ? config.kv_blocks : default_kv_blocks(config),
               config.block_size, config.kv_type) {
  if (config_.max_batch < 1 || config_.max_queue < 0 || config_.context_length < 2 ||
      config_.block_size < 1 || config_.step_tokens < 1) {
    fail(
        "engine settings out of range: max_batch {} (>= 1), max_queue {} (>= 0), context {} "
        "(>= 2), block size {} (>= 1), step tokens {} (>= 1)",
        config_.max_batch, config_.max_queue, config_.context_length, config_.block_size,
        config_.step_tokens);
  }
  config_.kv_blocks = pool_kv_.n_blocks();
  thread_ = std::thread([this] { loop(); });
}

BatchEngine::~BatchEngine() {
  shutdown();
}

void BatchEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SubmitResult BatchEngine::submit(GenerationRequest request, EventCallback on_event) {
  const auto prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) return {SubmitStatus::Invalid, 0, "the prompt is empty"};
  if (request.max_tokens < 1) return {SubmitStatus::Invalid, 0, "max_tokens must be at least 1"};
  if (prompt + request.max_tokens > config_.context_length) {
    return {SubmitStatus::Invalid, 0,
            fmt::format("this model's maximum context length is {} tokens, but {} were requested "
                        "({} in the prompt, {} for the completion); shorten the prompt or lower "
                        "max_tokens",
                        config_.context_length, prompt + request.max_tokens, prompt,
                        request.max_tokens)};
  }
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= model_.spec().vocab_size) {
      return {SubmitStatus::Invalid, 0, fmt::format("token id {} is outside the vocabulary", id)};
    }
  }
  try {
    request.sampling.validate();
  } catch (const Error& e) {
    return {SubmitStatus::Invalid, 0, e.what()};
  }
  if (request.ignore_eos) {
    const auto& eos = model_.spec().eos_ids;
    std::erase_if(request.stop_ids,
                  [&](int32_t id) { return std::find(eos.begin(), eos.end(), id) != eos.end(); });
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (!ready_.load()) return {SubmitStatus::NotReady, 0, "the model is still loading"};
  if (stopping_) return {SubmitStatus::NotReady, 0, "the server is shutting down"};
  // Free batch slots count as room too: the next step admits that many at once.
  const int64_t free_slots = std::max<int64_t>(0, config_.max_batch - n_running_.load());
  if (static_cast<int64_t>(waiting_.size()) >= config_.max_queue + free_slots) {
    return {SubmitStatus::QueueFull, 0,
            fmt::format("{} requests are already waiting (--max-queue {}); retry shortly",
                        waiting_.size(), config_.max_queue)};
  }
  const uint64_t id = next_id_++;
  waiting_.push_back(
      std::make_unique<Sequence>(id, std::move(request), std::move(on_event), tokenizer_));
  n_waiting_ = static_cast<int64_t>(waiting_.size());
  lock.unlock();
  wake_.notify_all();
  return {SubmitStatus::Accepted, id, {}};
}

void BatchEngine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_requests_.insert(id);
  }
  wake_.notify_all();
}

ServiceStats BatchEngine::stats() const {
  ServiceStats s;
  s.requests_running = n_running_.load();
  s.requests_waiting = n_waiting_.load();
  s.kv_blocks_total = pool_kv_.n_blocks();
  s.kv_blocks_used = kv_used_.load();
  s.prompt_tokens_total = prompt_tokens_total_.load();
  s.generation_tokens_total = generation_tokens_total_.load();
  s.steps_total = steps_total_.load();
  s.batched_sequences_total = batched_total_.load();
  s.max_batch_seen = max_batch_seen_.load();
  s.preemptions_total = preemptions_.load();
  s.ready = ready_.load();
  return s;
}

void BatchEngine::warm_up() {
  // One token through every layer: touches the weights (page-in) before /ready says yes.
  models::KvCache cache(model_.spec(), 1, config_.kv_type);
  const int32_t token = 0;
  models::SequenceChunk chunk{&cache, std::span(&token, 1), false};
  model_.forward(std::span(&chunk, 1), scratch_, pool_, logits_);
}

void BatchEngine::loop() {
  try {
    warm_up();
  } catch (const std::exception& e) {
    log::warn("warm-up failed: {}", e.what());
  }
  ready_ = true;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wait_for_work(lock);
      if (stopping_) break;
    }
    // Nothing may leave this thread: an exception would end the process and every request in it.
    // The step's own failures end its requests with an error (run_step); this is the backstop.
    try {
      apply_cancellations_and_deadlines();
      admit_waiting();
      if (!running_.empty()) run_step();
    } catch (const std::exception& e) {
      log::warn("engine step failed: {}", e.what());
      for (auto& s : running_) finish(*s, FinishReason::Error, e.what());
    }
    std::erase_if(running_, [](const auto& s) { return s->done; });
    n_running_ = static_cast<int64_t>(running_.size());
    kv_used_ = pool_kv_.used_blocks();
  }
  // Shutting down: whatever is left ends now.
  std::deque<std::unique_ptr<Sequence>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    left.swap(waiting_);
  }
  for (auto& s : running_) finish(*s, FinishReason::Cancelled, "the server is shutting down");
  for (auto& s : left) finish(*s, FinishReason::Cancelled, "the server is shutting down");
  running_.clear();
}

void BatchEngine::wait_for_work(std::unique_lock<std::mutex>& lock) {
  if (!running_.empty() || stopping_) return;
  wake_.wait(lock, [&] { return stopping_ || !waiting_.empty() || !cancel_requests_.empty(); });
  // Batch formation: give other requests a moment to arrive before the first step.
  const auto until = Clock::now() + std::chrono::milliseconds(config_.max_queue_delay_ms);
  wake_.wait_until(lock, until, [&] {
    return stopping_ || static_cast<int>(waiting_.size()) >= config_.max_batch;
  });
}

void BatchEngine::apply_cancellations_and_deadlines() {
  std::unordered_set<uint64_t> cancels;
  std::vector<std::unique_ptr<Sequence>> dropped;
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancels.swap(cancel_requests_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const bool late = (*it)->req.deadline && now >= *(*it)->req.deadline;
      if (cancels.count((*it)->id) || late) {
        dropped.push_back(std::move(*it));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    n_waiting_ = static_cast<int64_t>(waiting_.size());
  }
  for (auto& s : dropped) {
    const bool late = s->req.deadline && now >= *s->req.deadline;
    finish(*s, late ? FinishReason::Timeout : FinishReason::Cancelled);
  }
  for (auto& s : running_) {
    if (cancels.count(s->id)) {
      finish(*s, FinishReason::Cancelled);
    } else if (s->req.deadline && now >= *s->req.deadline) {
      finish(*s, FinishReason::Timeout, "the request timed out");
    }
  }
}

void BatchEngine::admit_waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  while (!waiting_.empty() && static_cast<int>(running_.size()) < config_.max_batch) {
    Sequence& next = *waiting_.front();
    const int64_t first_chunk = std::min(next.pending(), config_.step_tokens);
    const int64_t need = (first_chunk + config_.block_size - 1) / config_.block_size;
    if (need > pool_kv_.free_blocks()) break;  // admission by free KV blocks
    const int64_t capacity =
        std::min<int64_t>(config_.context_length, next.prompt_len + next.req.max_tokens);
    next.cache = std::make_unique<models::KvCache>(pool_kv_, capacity);
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  n_waiting_ = static_cast<int64_t>(waiting_.size());
}

void BatchEngine::preempt(Sequence& seq) {
  // Recompute preemption: drop the cache, go back to the head of the queue; the tokens sampled so
  // far stay, so the sequence resumes exactly where it was once blocks are free again.
  seq.cache.reset();
  preemptions_ += 1;
  auto it = std::find_if(running_.begin(), running_.end(),
                         [&](const auto& p) { return p.get() == &seq; });
  std::unique_ptr<Sequence> owned = std::move(*it);
  running_.erase(it);
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_.push_front(std::move(owned));
  n_waiting_ = static_cast<int64_t>(waiting_.size());
}

bool BatchEngine::run_step() {
  // Decode tokens first (one each), then prefill chunks from the remaining token budget.
  std::vector<Sequence*> order;
  for (auto& s : running_) {
    if (!s->done && s->pending() == 1) order.push_back(s.get());
  }
  for (auto& s : running_) {
    if (!s->done && s->pending() > 1) order.push_back(s.get());
  }
  int64_t budget = std::max<int64_t>(config_.step_tokens, static_cast<int64_t>(order.size()));
  std::vector<models::SequenceChunk> chunks;
  std::vector<Sequence*> in_step;
  for (size_t i = 0; i < order.size() && budget > 0; ++i) {
    Sequence* s = order[i];
    if (s->cache == nullptr) continue;  // preempted below in this step
    const int64_t len = std::min(s->pending(), budget);
    while (!s->cache->reserve(len)) {
      // Out of KV blocks: preempt the newest sequence not yet in this step (possibly this one).
      Sequence* victim = nullptr;
      for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
        Sequence* c = it->get();
        if (!c->done && c->cache && std::find(in_step.begin(), in_step.end(), c) == in_step.end()) {
          victim = c;
          break;
        }
      }
      if (victim == nullptr) break;
      const bool self = victim == s;
      preempt(*victim);
      if (self) break;
    }
    if (s->cache == nullptr || s->cache->blocks_needed(len) > 0) continue;
    const auto first = static_cast<size_t>(s->n_cached());
    chunks.push_back(
        {s->cache.get(), std::span(s->tokens).subspan(first, static_cast<size_t>(len)), false});
    in_step.push_back(s);
    budget -= len;
  }
  if (chunks.empty()) return false;

  const int64_t prefill_tokens = [&] {
    int64_t n = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (in_step[i]->n_cached() < in_step[i]->prompt_len) {
        n += std::min<int64_t>(static_cast<int64_t>(chunks[i].tokens.size()),
                               in_step[i]->prompt_len - in_step[i]->n_cached());
      }
    }
    return n;
  }();
  try {
    model_.forward(chunks, scratch_, pool_, logits_);
  } catch (const std::exception& e) {
    log::warn("engine step failed: {}", e.what());
    for (Sequence* s : in_step) finish(*s, FinishReason::Error, e.what());
    return false;
  }
  steps_total_ += 1;
  batched_total_ += static_cast<int64_t>(chunks.size());
  max_batch_seen_ = std::max<int64_t>(max_batch_seen_.load(), static_cast<int64_t>(chunks.size()));
  prompt_tokens_total_ += prefill_tokens;

  const auto V = static_cast<size_t>(model_.spec().vocab_size);
  for (size_t i = 0; i < in_step.size(); ++i) {
    Sequence& s = *in_step[i];
    if (s.pending() != 0) continue;  // not every token is cached yet
    // A failure here (a bug, memory) ends this request with an error, not the engine thread and
    // with it every other request.
    try {
      sample_and_emit(s, logits_.data() + i * V);
    } catch (const std::exception& e) {
      log::warn("request {}: sampling failed: {}", s.id, e.what());
      finish(s, FinishReason::Error, e.what());
    }
  }
  return true;
}

void BatchEngine::sample_and_emit(Sequence& seq, const float* logits_row) {
  // Only ids the tokenizer can decode: GLM-4's model vocabulary is padded past its tokenizer's
  // (151552 rows for 151343 tokens), and the padding ids have no text.
  const auto V = std::min(static_cast<size_t>(model_.spec().vocab_size),
                          static_cast<size_t>(tokenizer_.n_vocab()));
  GenerationEvent ev;
  std::vector<float> row(logits_row, logits_row + V);
  const int32_t token = seq.sampler.sample(row, seq.generated_tokens());
  if (seq.req.top_logprobs >= 0) {
    compute_logprobs(std::span(logits_row, V), token, seq.req.top_logprobs, tokenizer_, ev);
  }
  if (!seq.first_token) seq.first_token = Clock::now();
  seq.tokens.push_back(token);
  generation_tokens_total_ += 1;
  ev.token_ids.push_back(token);

  const auto& stops = seq.req.stop_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    ev.text_delta = std::move(seq.held) + seq.decoder.finish();
    seq.held.clear();
    seq.on_event(ev);
    finish(seq, FinishReason::Stop);
    return;
  }
  seq.held += seq.decoder.push(token);
  for (const std::string& stop : seq.req.stop_strings) {
    if (stop.empty()) continue;
    if (const size_t pos = seq.held.find(stop); pos != std::string::npos) {
      ev.text_delta = seq.held.substr(0, pos);
      seq.held.clear();
      seq.on_event(ev);
      finish(seq, FinishReason::Stop);
      return;
    }
  }
  const int64_t generated = static_cast<int64_t>(seq.tokens.size()) - seq.prompt_len;
  const bool length = generated >= seq.req.max_tokens ||
                      static_cast<int64_t>(seq.tokens.size()) >= seq.cache->capacity();
  if (length) {
    ev.text_delta = std::move(seq.held) + seq.decoder.finish();
    seq.held.clear();
    seq.on_event(ev);
    finish(seq, FinishReason::Length);
    return;
  }
  const size_t n = emittable_prefix(seq.held, seq.max_stop_len);
  ev.text_delta = seq.held.substr(0, n);
  seq.held.erase(0, n);
  seq.on_event(ev);
}

void BatchEngine::finish(Sequence& seq, FinishReason reason, const std::string& error) {
  if (seq.done) return;
  seq.done = true;
  GenerationEvent ev;
  ev.finished = true;
  ev.finish_reason = reason;
  ev.error = error;
  if (reason == FinishReason::Cancelled || reason == FinishReason::Timeout ||
      reason == FinishReason::Error) {
    ev.text_delta = std::move(seq.held);
  }
  ev.prompt_tokens = seq.prompt_len;
  ev.completion_tokens = static_cast<int64_t>(seq.tokens.size()) - seq.prompt_len;
  if (seq.first_token) {
    ev.time_to_first_token_s =
        std::chrono::duration<double>(*seq.first_token - seq.submitted).count();
  }
  seq.cache.reset();  // blocks back to the pool now, not at the end of the step
  kv_used_ = pool_kv_.used_blocks();
  seq.on_event(ev);
}

}  // namespace autoglm::engine
