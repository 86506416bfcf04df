// Flags and helpers shared by the subcommands. Each subcommand file registers itself on the app
// and does argument handling only; the work is in the layers below (DESIGN.md, cli/).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/model.h"

namespace autoglm::cli {

struct ModelFlags {
  std::string model;
  std::string dtype;  // empty: keep the file's types
  int threads = 0;    // 0: every core

  void add_to(CLI::App& app);
  std::unique_ptr<models::Model> load(ThreadPool& pool) const;
  int thread_count() const;
};

// "1,2,3" -> {1, 2, 3}; throws Error on anything that is not a comma-separated integer list.
std::vector<int32_t> parse_token_list(const std::string& text);

// Every subcommand: registers its flags and returns the action to run when it is chosen.
using Action = std::function<int()>;
Action register_run(CLI::App& app);
Action register_logits(CLI::App& app);
Action register_synth(CLI::App& app);
Action register_bench(CLI::App& app);
Action register_tokenize(CLI::App& app);
Action register_serve(CLI::App& app);
Action register_pull(CLI::App& app);
Action register_plan(CLI::App& app);
Action register_doctor(CLI::App& app);

}  // namespace autoglm::cli
