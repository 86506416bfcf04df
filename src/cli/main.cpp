// autoglm: run GLM-family models on CPU and serve them. One subcommand per file in this folder.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <map>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace autoglm;
  CLI::App app{"autoglm: run GLM-family models on CPU and serve them (OpenAI-compatible)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "autoglm 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));

  std::map<CLI::App*, cli::Action> actions;
  auto add = [&](const char* name, const char* help, cli::Action (*reg)(CLI::App&)) {
    CLI::App* sub = app.add_subcommand(name, help);
    actions[sub] = reg(*sub);
  };
  add("run", "Generate tokens from a prompt", cli::register_run);
  add("logits", "Print the logits of every prompt position (debugging)", cli::register_logits);
  add("synth", "Write a random-weight model of a real configuration", cli::register_synth);
  add("bench", "Prefill/decode speed in-process (--model PATH), or load a server (--url)",
      cli::register_bench);
  add("tokenize", "Print the token ids and pieces of a text (debugging)", cli::register_tokenize);
  add("serve", "OpenAI-compatible HTTP server with continuous batching", cli::register_serve);
  add("pull", "Download a model from a Hugging Face-compatible hub or mirror", cli::register_pull);
  add("plan", "Memory needed by a model, and whether it fits here", cli::register_plan);
  add("doctor", "Preflight checks: GPU, memory, permissions, network, model, port",
      cli::register_doctor);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::map<std::string, log::Level> levels = {{"debug", log::Level::Debug},
                                                    {"info", log::Level::Info},
                                                    {"warn", log::Level::Warn},
                                                    {"error", log::Level::Error},
                                                    {"off", log::Level::Off}};
  log::set_level(levels.at(log_level));
  try {
    for (const auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "autoglm: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "autoglm: error: out of memory; try a smaller --dtype (q8_0, q4_0)\n");
    return 1;
  }
  return 0;
}
