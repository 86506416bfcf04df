// autoglm logits --model PATH --tokens 1,2,3 --json: the logits of every prompt position.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"

namespace autoglm::cli {
namespace {

struct LogitsFlags {
  ModelFlags model;
  std::string tokens;
  bool json = false;
  int top = 5;
  DType kv_type = models::kDefaultKvType;
};

int run(const LogitsFlags& f) {
  const std::vector<int32_t> prompt = parse_token_list(f.tokens);
  ThreadPool pool(f.model.thread_count());
  auto model = f.model.load(pool);
  models::KvCache cache(model->spec(), static_cast<int64_t>(prompt.size()), f.kv_type);
  models::ForwardScratch scratch;
  std::vector<float> logits;
  models::SequenceChunk chunk{&cache, prompt, true};
  model->forward(std::span(&chunk, 1), scratch, pool, logits);
  const auto V = static_cast<size_t>(model->spec().vocab_size);

  if (f.json) {
    nlohmann::json out;
    out["tokens"] = prompt;
    out["vocab_size"] = V;
    auto& rows = out["logits"] = nlohmann::json::array();
    for (size_t t = 0; t < prompt.size(); ++t) {
      rows.push_back(std::vector<float>(logits.begin() + static_cast<ptrdiff_t>(t * V),
                                        logits.begin() + static_cast<ptrdiff_t>((t + 1) * V)));
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  for (size_t t = 0; t < prompt.size(); ++t) {
    const float* row = logits.data() + t * V;
    std::vector<int32_t> order(V);
    for (size_t i = 0; i < V; ++i) order[i] = static_cast<int32_t>(i);
    const size_t k = std::min<size_t>(static_cast<size_t>(std::max(f.top, 1)), V);
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    std::printf("position %zu (token %d):", t, prompt[t]);
    for (size_t i = 0; i < k; ++i) std::printf(" %d:%.4f", order[i], row[order[i]]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace

Action register_logits(CLI::App& app) {
  auto f = std::make_shared<LogitsFlags>();
  f->model.add_to(app);
  app.add_option("--tokens", f->tokens, "Prompt as token ids, e.g. 1,2,3")->required();
  app.add_flag("--json", f->json, "Print every logit of every position as JSON");
  app.add_option("--top", f->top, "Without --json: the k best tokens per position (default 5)");
  add_kv_type_flag(app, f->kv_type);
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
