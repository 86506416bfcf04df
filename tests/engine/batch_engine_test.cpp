// The continuous-batching engine: batched answers equal single-sequence answers at temperature 0,
// chunked prefill and preemption change nothing, the queue bound holds, cancellation frees the
// cache, stop strings cut the text.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include "engine/batch_engine.h"
#include "engine/generate.h"
#include "support/fixtures.h"

namespace autoglm::engine {
namespace {

struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;
  std::vector<int32_t> tokens;
  bool finished = false;
  GenerationEvent last;
};

EventCallback collect(std::shared_ptr<Collected> c) {
  return [c](const GenerationEvent& ev) {
    std::lock_guard<std::mutex> lock(c->mu);
    c->text += ev.text_delta;
    c->tokens.insert(c->tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
    if (ev.finished) {
      c->finished = true;
      c->last = ev;
      c->cv.notify_all();
    }
  };
}

void wait_done(Collected& c) {
  std::unique_lock<std::mutex> lock(c.mu);
  ASSERT_TRUE(c.cv.wait_for(lock, std::chrono::seconds(60), [&] { return c.finished; }));
}

void wait_ready(const BatchEngine& e) {
  for (int i = 0; i < 6000 && !e.stats().ready; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(e.stats().ready);
}

struct Fixture {
  explicit Fixture(const std::string& relative) : pool(2) {
    const auto path = testing::fixtures_dir() / relative;
    model = models::Model::load(path, {}, pool);
    tok = tokenizer::load_tokenizer(path);
  }
  ThreadPool pool;
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
};

std::vector<int32_t> prompt_for(int i) {
  std::vector<int32_t> p;
  for (int j = 0; j < 3 + (i * 5) % 11; ++j) p.push_back(260 + (i * 31 + j * 17) % 700);
  return p;
}

std::vector<int32_t> single_answer(Fixture& f, const std::vector<int32_t>& prompt, int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0;
  o.ignore_eos = true;
  return generate(*f.model, prompt, o, f.pool);
}

GenerationRequest greedy(std::vector<int32_t> prompt, int n) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = n;
  r.sampling.temperature = 0;
  r.ignore_eos = true;
  return r;
}

ServiceStats expect_batched_equals_single(EngineConfig config, int n_requests, int n_tokens) {
  Fixture f("gguf/glm-tiny-q8_0.gguf");
  // Single-sequence answers first: the engine thread owns the pool while it runs.
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < n_requests; ++i)
    expected.push_back(single_answer(f, prompt_for(i), n_tokens));
  BatchEngine engine(*f.model, *f.tok, config, f.pool);
  wait_ready(engine);
  std::vector<std::shared_ptr<Collected>> out;
  for (int i = 0; i < n_requests; ++i) {
    out.push_back(std::make_shared<Collected>());
    const SubmitResult r = engine.submit(greedy(prompt_for(i), n_tokens), collect(out.back()));
    EXPECT_EQ(r.status, SubmitStatus::Accepted) << r.message;
  }
  for (int i = 0; i < n_requests; ++i) {
    wait_done(*out[static_cast<size_t>(i)]);
    EXPECT_EQ(out[static_cast<size_t>(i)]->tokens, expected[static_cast<size_t>(i)])
        << "request " << i;
    EXPECT_EQ(out[static_cast<size_t>(i)]->last.finish_reason, FinishReason::Length);
  }
  const ServiceStats s = engine.stats();
  std::printf("steps %lld, sequences per step %.2f, max %lld\n",
              static_cast<long long>(s.steps_total),
              static_cast<double>(s.batched_sequences_total) /
                  static_cast<double>(std::max<int64_t>(1, s.steps_total)),
              static_cast<long long>(s.max_batch_seen));
  EXPECT_GT(s.max_batch_seen, 1) << "the steps never carried more than one sequence";
  EXPECT_EQ(s.kv_blocks_used, 0) << "blocks not returned to the pool";
  return s;
}

TEST(BatchEngine, BatchedAnswersEqualSingleAnswers) {
  EngineConfig c;
  c.max_batch = 8;
  c.max_queue_delay_ms = 50;
  c.context_length = 64;
  expect_batched_equals_single(c, 8, 12);
}

TEST(BatchEngine, ChunkedPrefillChangesNothing) {
  EngineConfig c;
  c.max_batch = 4;
  c.step_tokens = 3;  // prompts of up to 13 tokens take several steps
  c.context_length = 64;
  expect_batched_equals_single(c, 6, 8);
}

TEST(BatchEngine, PreemptionWhenBlocksRunOutChangesNothing) {
  EngineConfig c;
  c.max_batch = 6;
  c.context_length = 40;
  c.block_size = 4;
  c.kv_blocks = 12;  // 48 tokens for six sequences of up to 25: some must wait or be preempted
  const ServiceStats s = expect_batched_equals_single(c, 6, 12);
  EXPECT_GT(s.preemptions_total, 0) << "the pool never ran out: the test did not test preemption";
}

TEST(BatchEngine, QueueBoundRefusesAtOnce) {
  Fixture f("gguf/glm-tiny-q8_0.gguf");
  EngineConfig c;
  c.max_batch = 1;
  c.max_queue = 2;
  c.context_length = 600;
  BatchEngine engine(*f.model, *f.tok, c, f.pool);
  wait_ready(engine);
  int accepted = 0, refused = 0;
  std::vector<std::shared_ptr<Collected>> out;
  for (int i = 0; i < 20; ++i) {
    out.push_back(std::make_shared<Collected>());
    const SubmitResult r = engine.submit(greedy(prompt_for(i), 500), collect(out.back()));
    if (r.status == SubmitStatus::Accepted) ++accepted;
    if (r.status == SubmitStatus::QueueFull) {
      ++refused;
      EXPECT_NE(r.message.find("--max-queue"), std::string::npos);
    }
  }
  EXPECT_LE(accepted, 1 + 2 + 1);  // one running, two waiting (one more if a step admitted early)
  EXPECT_GE(refused, 16);
}

TEST(BatchEngine, CancelFreesTheCache) {
  Fixture f("gguf/glm-tiny-q8_0.gguf");
  EngineConfig c;
  c.context_length = 1000;
  BatchEngine engine(*f.model, *f.tok, c, f.pool);
  wait_ready(engine);
  auto out = std::make_shared<Collected>();
  const SubmitResult r = engine.submit(greedy(prompt_for(1), 900), collect(out));
  ASSERT_EQ(r.status, SubmitStatus::Accepted);
  for (int i = 0; i < 2000 && out->tokens.empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  engine.cancel(r.id);
  wait_done(*out);
  EXPECT_EQ(out->last.finish_reason, FinishReason::Cancelled);
  EXPECT_LT(out->tokens.size(), 900u);
  // The counters follow at the end of the engine step that finished the request.
  for (int i = 0;
       i < 1000 && (engine.stats().kv_blocks_used != 0 || engine.stats().requests_running != 0);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  EXPECT_EQ(engine.stats().requests_running, 0);
}

TEST(BatchEngine, InvalidRequestsAreRefusedWithAReason) {
  Fixture f("gguf/glm-tiny-q8_0.gguf");
  EngineConfig c;
  c.context_length = 32;
  BatchEngine engine(*f.model, *f.tok, c, f.pool);
  wait_ready(engine);
  auto ignore = [](const GenerationEvent&) {};
  SubmitResult r = engine.submit(greedy(prompt_for(1), 40), ignore);
  EXPECT_EQ(r.status, SubmitStatus::Invalid);
  EXPECT_NE(r.message.find("maximum context length is 32"), std::string::npos) << r.message;
  r = engine.submit(greedy({}, 4), ignore);
  EXPECT_EQ(r.status, SubmitStatus::Invalid);
  r = engine.submit(greedy({5000}, 4), ignore);
  EXPECT_EQ(r.status, SubmitStatus::Invalid);
  GenerationRequest bad = greedy({5}, 4);
  bad.sampling.top_p = 2;
  r = engine.submit(bad, ignore);
  EXPECT_EQ(r.status, SubmitStatus::Invalid);
  EXPECT_NE(r.message.find("top_p"), std::string::npos);
}

// A tokenizer with fewer ids than the model has rows (as GLM-4's 151343 tokens for 151552 logits):
// the padding ids have no text, so neither path may sample them. The server's engine thread used
// to die on the first one (the stream decoder throws on an unknown id), taking every request.
TEST(BatchEngine, SamplesOnlyIdsTheTokenizerCanDecode) {
  Fixture f("gguf/glm-tiny-q8_0.gguf");  // 1024 logits
  const auto small = tokenizer::load_tokenizer(testing::fixtures_dir() /
                                               "stories260K/stories260K.gguf");  // 512 ids
  const int32_t limit = small->n_vocab();
  ASSERT_LT(limit, f.model->spec().vocab_size);
  auto max_id = [](const std::vector<int32_t>& ids) {
    return *std::max_element(ids.begin(), ids.end());
  };
  // Unconstrained, greedy decoding of these prompts does reach the ids past the tokenizer.
  int32_t highest = 0;
  for (int i = 0; i < 3; ++i)
    highest = std::max(highest, max_id(single_answer(f, {5, 9, 7 + i}, 24)));
  ASSERT_GE(highest, limit) << "the test needs a prompt whose answer leaves the small vocabulary";

  GenerateOptions o;
  o.max_new_tokens = 24;
  o.sampling.temperature = 0;
  o.ignore_eos = true;
  o.vocab_limit = limit;
  for (int i = 0; i < 3; ++i)
    EXPECT_LT(max_id(generate(*f.model, {5, 9, 7 + i}, o, f.pool)), limit);

  EngineConfig c;
  c.context_length = 64;
  BatchEngine engine(*f.model, *small, c, f.pool);
  wait_ready(engine);
  std::vector<std::shared_ptr<Collected>> out;
  for (int i = 0; i < 3; ++i) {
    GenerationRequest r = greedy({5, 9, 7 + i}, 24);
    r.top_logprobs = 3;
    out.push_back(std::make_shared<Collected>());
    ASSERT_EQ(engine.submit(r, collect(out.back())).status, SubmitStatus::Accepted);
  }
  for (auto& c_out : out) {
    wait_done(*c_out);
    EXPECT_EQ(c_out->last.finish_reason, FinishReason::Length) << c_out->last.error;
    EXPECT_EQ(c_out->tokens.size(), 24u);
    EXPECT_LT(max_id(c_out->tokens), limit);
  }
}

// A real trained model with a real vocabulary: the text streams and a stop string cuts it.
TEST(BatchEngine, StopStringEndsTheTextBeforeIt) {
  Fixture f("stories260K/stories260K.gguf");
  EngineConfig c;
  c.context_length = 128;
  BatchEngine engine(*f.model, *f.tok, c, f.pool);
  wait_ready(engine);
  GenerationRequest r = greedy({1}, 60);
  r.ignore_eos = false;
  r.stop_ids = f.model->spec().eos_ids;
  r.stop_strings = {"Lily"};
  auto out = std::make_shared<Collected>();
  ASSERT_EQ(engine.submit(r, collect(out)).status, SubmitStatus::Accepted);
  wait_done(*out);
  EXPECT_EQ(out->last.finish_reason, FinishReason::Stop);
  EXPECT_EQ(out->text, "Once upon a time, there was a little girl named ");
}

}  // namespace
}  // namespace autoglm::engine
