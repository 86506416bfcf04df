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
  std::string model;                 // empty when optional and not given: see resolve_model
  std::string dtype;                 // empty: keep the file's types
  int threads = 0;                   // 0: every core
  std::string activations = "auto";  // models::parse_activations

  // `model_required` false (run): without --model, resolve_model picks the model.
  void add_to(CLI::App& app, bool model_required = true);
  models::LoadOptions load_options() const;
  std::unique_ptr<models::Model> load(ThreadPool& pool) const;
  int thread_count() const;
};

// --activations auto|f32|bf16 (models::Activations) and --bf16-activations, its shorthand for
// bf16 (kept for the scripts that used it when it was a flag), for ModelFlags and `serve`.
void add_activations_option(CLI::App& app, std::string& activations);

// The directory name of the small model the repository embeds (models/, issue 7).
inline constexpr const char* kEmbeddedModel = "autoglm-mini";

// The model `run` and `serve` load: --model if given; else $AUTOGLM_MODEL; else the embedded
// model, looked up next to the executable (<exe dir>/../models/autoglm-mini: build/autoglm finds
// the checkout's models/), in the source tree's models/ (set by CMake at build time), and in
// /usr/share/autoglm/models (the container). Logs which one it took and why; fails, listing every
// place it looked, when none has a config.json.
std::string resolve_model(const std::string& flag);

// --kv-type f16|f32: the element type of the KV cache (default f16: half the memory and half the
// bytes attention reads; f32 for values beyond f16's range, about ±65504).
void add_kv_type_flag(CLI::App& app, DType& kv_type);

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
