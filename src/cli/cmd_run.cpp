// autoglm run: generate from a prompt, streaming text, or chat interactively.
//   autoglm run --model PATH "prompt"             one reply (chat format when the model has one)
//   autoglm run --model PATH                      interactive chat (/reset, /exit; Ctrl-C stops a
//   reply) autoglm run --model PATH --tokens 1,2,3 -n 16 token ids in, generated ids out (one line)
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/generate.h"
#include "engine/generation_defaults.h"
#include "engine/model_bundle.h"

namespace autoglm::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  std::string tokens;
  std::string prompt;
  std::string system;
  std::string tokenizer;
  bool raw = false;
  engine::GenerateOptions gen;
};

std::atomic<bool> g_generating{false};
std::atomic<bool> g_stop_reply{false};

// Ctrl-C while a reply streams stops that reply; at the chat prompt it ends the program.
void on_sigint(int) {
  if (g_generating.load()) {
    g_stop_reply = true;
    return;
  }
  const char msg[] = "\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  std::_Exit(130);
}

void log_speed(const engine::GenerateStats& s) {
  log::info(
      "{} prompt tokens in {:.3f} s ({:.1f} tokens/s); {} generated in {:.3f} s ({:.1f} tokens/s)",
      s.prompt_tokens, s.prefill_seconds, s.prompt_tokens / std::max(s.prefill_seconds, 1e-9),
      s.generated_tokens, s.decode_seconds,
      s.generated_tokens > 1 ? (s.generated_tokens - 1) / std::max(s.decode_seconds, 1e-9) : 0.0);
}

int run_ids(const RunFlags& f) {
  const std::vector<int32_t> prompt = parse_token_list(f.tokens);
  ThreadPool pool(f.model.thread_count());
  auto model = f.model.load(pool);
  engine::GenerateStats stats;
  bool first = true;
  auto on_token = [&](int32_t id) {
    std::printf("%s%d", first ? "" : " ", id);
    first = false;
    std::fflush(stdout);
    return true;
  };
  engine::generate(*model, prompt, f.gen, pool, on_token, &stats);
  std::printf("\n");
  log_speed(stats);
  return 0;
}

// Streams the reply to `prompt_ids` to stdout; returns the reply text.
std::string stream_reply(const engine::ModelBundle& b, const std::vector<int32_t>& prompt_ids,
                         engine::GenerateOptions gen, ThreadPool& pool) {
  if (!gen.ignore_eos) gen.stop_ids = b.stop_ids();
  gen.vocab_limit = b.tokenizer->n_vocab();
  const bool starts_text = std::all_of(prompt_ids.begin(), prompt_ids.end(),
                                       [&](int32_t id) { return b.tokenizer->is_special(id); });
  tokenizer::StreamDecoder decoder(*b.tokenizer, true, starts_text);
  std::string reply;
  const auto& stops = gen.stop_ids;
  auto on_token = [&](int32_t id) {
    if (std::find(stops.begin(), stops.end(), id) == stops.end()) {
      const std::string piece = decoder.push(id);
      reply += piece;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return !g_stop_reply.load();
  };
  g_stop_reply = false;
  g_generating = true;
  engine::GenerateStats stats;
  engine::generate(*b.model, prompt_ids, gen, pool, on_token, &stats);
  g_generating = false;
  const std::string tail = decoder.finish();
  reply += tail;
  std::fwrite(tail.data(), 1, tail.size(), stdout);
  std::printf("\n");
  std::fflush(stdout);
  log_speed(stats);
  return reply;
}

std::vector<int32_t> encode_turns(const engine::ModelBundle& b,
                                  const std::vector<tokenizer::ChatMessage>& messages, bool raw) {
  if (raw || !b.chat) return b.encode_completion(messages.back().content);
  return b.encode_chat(messages, {});
}

int run_text(RunFlags f) {
  ThreadPool pool(f.model.thread_count());
  const engine::ModelBundle b =
      engine::load_model_bundle(f.model.model, f.model.load_options(), pool, f.tokenizer);
  std::signal(SIGINT, on_sigint);
  if (f.gen.context_length == 0 && f.gen.max_new_tokens > b.model->spec().max_positions) {
    log::warn("-n {} goes past the model's trained context of {} tokens; quality may drop there",
              f.gen.max_new_tokens, b.model->spec().max_positions);
  }

  std::vector<tokenizer::ChatMessage> history;
  if (!f.system.empty()) history.push_back({"system", f.system, {}, {}, {}});
  if (!f.prompt.empty()) {
    history.push_back({"user", f.prompt, {}, {}, {}});
    stream_reply(b, encode_turns(b, history, f.raw), f.gen, pool);
    return 0;
  }
  std::fprintf(stderr,
               "chat with %s (%s). /reset clears the history, /exit or Ctrl-D quits, "
               "Ctrl-C stops a reply.\n",
               f.model.model.c_str(), b.chat ? b.chat->name().c_str() : "raw prompts");
  std::string line;
  for (;;) {
    std::fprintf(stderr, "> ");
    std::fflush(stderr);
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line.empty()) continue;
    if (line == "/reset") {
      history.resize(f.system.empty() ? 0 : 1);
      std::fprintf(stderr, "(history cleared)\n");
      continue;
    }
    history.push_back({"user", line, {}, {}, {}});
    try {
      const std::string reply = stream_reply(b, encode_turns(b, history, f.raw), f.gen, pool);
      history.push_back({"assistant", reply, {}, {}, {}});
    } catch (const Error& e) {
      history.pop_back();  // a turn that failed (e.g. context full) leaves the chat usable
      std::fprintf(stderr, "autoglm: error: %s\n", e.what());
    }
  }
  return 0;
}

}  // namespace

Action register_run(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  f->gen.max_new_tokens = 256;
  f->model.add_to(app, /*model_required=*/false);
  app.add_option("prompt", f->prompt,
                 "Prompt text; without it (and without --tokens): interactive chat");
  app.add_option("--tokens", f->tokens, "Prompt as token ids, e.g. 1,2,3 (prints generated ids)");
  app.add_option("--system", f->system, "System message of the chat");
  app.add_option("--tokenizer", f->tokenizer,
                 "Tokenizer from another path (for weights without a vocabulary)");
  app.add_flag("--raw", f->raw, "Send the prompt as plain text, without the chat format");
  app.add_option("-n,--max-tokens", f->gen.max_new_tokens, "Tokens to generate (default 256)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--ctx", f->gen.context_length, "Context length (default: prompt + -n per reply)");
  // Sampling flags left out take the model's generation_config.json values (as `serve` does).
  auto* temperature = app.add_option("--temperature", f->gen.sampling.temperature,
                                     "0 = greedy (default: the model's, else 1)");
  auto* top_k =
      app.add_option("--top-k", f->gen.sampling.top_k, "Keep the k most likely tokens (0 = off)");
  auto* top_p = app.add_option("--top-p", f->gen.sampling.top_p, "Nucleus sampling mass (1 = off)");
  auto* min_p = app.add_option("--min-p", f->gen.sampling.min_p,
                               "Drop tokens below min_p x the top probability");
  auto* repetition = app.add_option("--repetition-penalty", f->gen.sampling.repetition_penalty,
                                    "1 = off (default: the model's, else 1)");
  app.add_option("--seed", f->gen.sampling.seed, "Random seed (default 0)");
  add_kv_type_flag(app, f->gen.kv_type);
  app.add_flag("--ignore-eos", f->gen.ignore_eos, "Keep generating past end-of-sequence tokens");
  return [f, temperature, top_k, top_p, min_p, repetition] {
    f->model.model = resolve_model(f->model.model);
    const engine::GenerationDefaults g = engine::read_generation_defaults(f->model.model);
    engine::SamplingParams& s = f->gen.sampling;
    if (temperature->count() == 0) s.temperature = g.sampling.temperature;
    if (top_k->count() == 0) s.top_k = g.sampling.top_k;
    if (top_p->count() == 0) s.top_p = g.sampling.top_p;
    if (min_p->count() == 0) s.min_p = g.sampling.min_p;
    if (repetition->count() == 0) s.repetition_penalty = g.sampling.repetition_penalty;
    if (!g.summary.empty()) log::info("sampling defaults from {}: {}", g.source, g.summary);
    return f->tokens.empty() ? run_text(*f) : run_ids(*f);
  };
}

}  // namespace autoglm::cli
