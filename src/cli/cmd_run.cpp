// autoglm run --model PATH --tokens 1,2,3 -n 16: generated token ids on one line.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/generate.h"

namespace autoglm::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  std::string tokens;
  engine::GenerateOptions gen;
};

int run(const RunFlags& f) {
  const std::vector<int32_t> prompt = parse_token_list(f.tokens);
  ThreadPool pool(f.model.thread_count());
  auto model = f.model.load(pool);
  engine::GenerateStats stats;
  std::string line;
  auto on_token = [&](int32_t id) {
    std::printf("%s%d", line.empty() ? "" : " ", id);
    line += ' ';
    std::fflush(stdout);
    return true;
  };
  engine::generate(*model, prompt, f.gen, pool, on_token, &stats);
  std::printf("\n");
  log::info(
      "{} prompt tokens in {:.3f} s ({:.1f} tokens/s); {} generated in {:.3f} s ({:.1f} tokens/s)",
      stats.prompt_tokens, stats.prefill_seconds,
      stats.prompt_tokens / std::max(stats.prefill_seconds, 1e-9), stats.generated_tokens,
      stats.decode_seconds,
      stats.generated_tokens > 1
          ? (stats.generated_tokens - 1) / std::max(stats.decode_seconds, 1e-9)
          : 0.0);
  return 0;
}

}  // namespace

Action register_run(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  f->model.add_to(app);
  app.add_option("--tokens", f->tokens, "Prompt as token ids, e.g. 1,2,3")->required();
  app.add_option("-n,--max-tokens", f->gen.max_new_tokens, "Tokens to generate")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", f->gen.sampling.temperature, "0 = greedy (default 1)");
  app.add_option("--top-k", f->gen.sampling.top_k, "Keep the k most likely tokens (0 = off)");
  app.add_option("--top-p", f->gen.sampling.top_p, "Nucleus sampling mass (1 = off)");
  app.add_option("--min-p", f->gen.sampling.min_p, "Drop tokens below min_p x the top probability");
  app.add_option("--repetition-penalty", f->gen.sampling.repetition_penalty, "1 = off");
  app.add_option("--seed", f->gen.sampling.seed, "Random seed (default 0)");
  app.add_flag("--ignore-eos", f->gen.ignore_eos, "Keep generating past end-of-sequence tokens");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
