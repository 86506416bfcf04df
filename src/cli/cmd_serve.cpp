// autoglm serve --model PATH [--host 127.0.0.1] [--port 8000] [--dtype auto] [--max-batch 16] ...:
// loads the model, tokenizer and chat format, starts the batching engine and the OpenAI-compatible
// server, and runs until SIGTERM/SIGINT (drain, exit 0).
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/batch_engine.h"
#include "engine/generation_defaults.h"
#include "engine/model_bundle.h"
#include "formats/tensor_store.h"
#include "ops/plan.h"
#include "server/auth.h"
#include "server/server.h"

namespace autoglm::cli {
namespace {

struct ServeFlags {
  std::string model;
  std::string dtype = "auto";
  std::string tokenizer;
  int threads = 0;
  std::string served_name;
  server::ServerConfig server;
  engine::EngineConfig engine;
  std::string api_key_file;
  double request_timeout_s = 0;
  bool skip_memory_check = false;
  std::string activations = "auto";  // models::parse_activations
  std::string generation_config = "auto";
  bool ctx_given = false;
};

ops::PlanOptions plan_options(const ServeFlags& f, std::optional<DType> dtype) {
  ops::PlanOptions o;
  o.dtype = dtype;
  o.context = f.engine.context_length;
  o.batch = f.engine.max_batch;
  o.step_tokens = f.engine.step_tokens;
  o.block_size = f.engine.block_size;
  o.kv_type = f.engine.kv_type;
  o.threads = f.threads;
  return o;
}

// Decided by `plan` before anything loads (issue 4; GLM_ARCHITECTURES.md H). --dtype auto on CPU:
// a GGUF keeps the types it was quantized to when they fit; other weights are quantized at load,
// q8_0 when it fits with its KV cache, q4_0 otherwise. An explicit --dtype is checked the same way.
// A configuration that cannot fit is refused here, with the numbers and what to change.
// Returns the dtype ("" = keep the stored types) and the reason.
std::pair<std::string, std::string> choose_dtype(const ServeFlags& f,
                                                 const models::ModelSpec& spec) {
  const formats::TensorStore store = formats::open_weights(f.model);
  const ops::DeviceMemory ram = ops::cpu_memory();
  const bool gguf = store.format() == formats::FileFormat::Gguf;
  std::optional<DType> want;
  if (f.dtype != "auto" && f.dtype != "keep") want = parse_dtype(f.dtype);
  if (f.dtype == "auto" && !gguf) want = DType::Q8_0;
  const ops::FitReport fit = ops::fit_on(spec, plan_options(f, want), ram, &store);
  const std::string need = fmt::format("{} needed of {} available", ops::format_bytes(fit.needed),
                                       ops::format_bytes(fit.available));
  if (f.skip_memory_check)
    return {want ? std::string(dtype_name(*want)) : "", "memory check skipped"};
  if (fit.verdict == ops::Verdict::Fits) {
    if (f.dtype != "auto")
      return {want ? std::string(dtype_name(*want)) : "", "chosen with --dtype; " + need};
    return {want ? std::string(dtype_name(*want)) : "",
            gguf ? "auto: the GGUF keeps the types it was quantized to; " + need
                 : "auto: CPU, q8_0 weights with the KV cache fit; " + need};
  }
  if (fit.verdict != ops::Verdict::DoesNotFit && f.dtype == "auto") {
    const char* q = fit.verdict == ops::Verdict::FitsWithQ8 ? "q8_0" : "q4_0";
    return {q, fmt::format("auto: CPU, {} weights: the requested types do not fit ({})", q, need)};
  }
  const ops::MemoryPlan plan = ops::plan_memory(spec, plan_options(f, want), &store);
  fail(
      "this configuration does not fit in memory: {} (weights {}, KV cache {} for --ctx {} x "
      "--max-batch {}). {}; `autoglm plan --model {}` shows the breakdown",
      need, ops::format_bytes(plan.weight_bytes), ops::format_bytes(plan.kv_bytes),
      f.engine.context_length, f.engine.max_batch,
      fit.verdict == ops::Verdict::DoesNotFit
          ? fmt::format("Lower --ctx (at most {} fits) or --max-batch (at most {})",
                        fit.max_context, fit.max_batch)
          : fmt::format("Use --dtype {} or lower --ctx / --max-batch",
                        fit.verdict == ops::Verdict::FitsWithQ8 ? "q8_0" : "q4_0"),
      f.model);
}

int serve(ServeFlags& f) {
  f.model = resolve_model(f.model);
  auto& sc = f.server;
  if (!f.api_key_file.empty()) {
    sc.api_key = server::read_api_key_file(f.api_key_file);
  } else if (sc.api_key.empty()) {
    if (const char* env = std::getenv("AUTOGLM_API_KEY")) sc.api_key = env;
  }
  server::check_exposure(sc);
  if (sc.http.port != 0) {
    // Report a taken port now, not after minutes of loading.
    server::HttpServer probe(sc.http, [](server::HttpRequest&&, auto) {});
    probe.bind();
  }
  const models::ModelSpec spec = models::read_spec(f.model);
  if (!f.ctx_given) {
    // Positions past what the model was trained on give noise, not text: the default context
    // is the smaller of 4096 and the model's max_position_embeddings.
    const int64_t trained = spec.max_positions;
    if (trained > 0 && trained < f.engine.context_length) {
      f.engine.context_length = trained;
      log::info(
          "context: {} tokens per sequence (the model's max_position_embeddings; --ctx sets "
          "another)",
          trained);
    }
  }
  const auto [dtype, dtype_reason] = choose_dtype(f, spec);
  log::info("dtype: {} ({})", dtype.empty() ? "as stored" : dtype, dtype_reason);
  models::LoadOptions load;
  if (!dtype.empty()) load.dtype = parse_dtype(dtype);
  load.activations = models::parse_activations(f.activations);
  const int threads = f.threads > 0
                          ? f.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(threads);
  engine::ModelBundle bundle = engine::load_model_bundle(f.model, load, pool, f.tokenizer);
  log::info("chat format: {}", bundle.chat_why);
  log::info("weights: {}", bundle.model->weight_summary());

  server::ServedModel served;
  served.id = f.served_name.empty()
                  ? std::filesystem::path(f.model).filename().replace_extension().string()
                  : f.served_name;
  served.metadata = {{"dtype", dtype.empty() ? "as stored" : dtype},
                     {"dtype_reason", dtype_reason},
                     {"weights", bundle.model->weight_summary()},
                     {"architecture", bundle.model->spec().arch},
                     {"context_length", f.engine.context_length},
                     {"chat_format", bundle.chat ? bundle.chat->name() : "none"},
                     {"chat_format_reason", bundle.chat_why},
                     {"max_batch", f.engine.max_batch},
                     {"max_queue", f.engine.max_queue}};
  sc.api.request_timeout_s = f.request_timeout_s;
  sc.api.extra_stop_ids = bundle.stop_ids();
  if (f.generation_config == "auto") {
    const engine::GenerationDefaults g = engine::read_generation_defaults(f.model);
    sc.api.sampling_defaults = g.sampling;
    if (!g.summary.empty()) {
      log::info(
          "sampling defaults from {}: {} (for requests that leave them out; "
          "--generation-config none ignores the file)",
          g.source, g.summary);
    }
    served.metadata["sampling_defaults"] = g.summary.empty() ? "openai" : g.summary;
  }

  engine::BatchEngine engine(*bundle.model, *bundle.tokenizer, f.engine, pool);
  log::info("KV cache: {} blocks of {} tokens, {}, {} (--kv-type)", engine.config().kv_blocks,
            f.engine.block_size, dtype_name(f.engine.kv_type),
            ops::format_bytes(engine.kv_pool_bytes()));
  int code = 0;
  {
    server::Server srv(sc, engine, *bundle.tokenizer, bundle.chat.get(), served);
    const uint16_t port = srv.listen();
    std::printf("listening on http://%s:%u (model %s)\n", sc.http.host.c_str(), port,
                served.id.c_str());
    std::fflush(stdout);
    code = srv.run();
  }
  engine.shutdown();
  return code;
}

}  // namespace

Action register_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  app.add_option("-m,--model", f->model,
                 "Model: a directory with config.json + *.safetensors, or a .gguf file (default: "
                 "$AUTOGLM_MODEL, else the embedded models/autoglm-mini)");
  app.add_option("--dtype", f->dtype, "Weights: auto (default), keep, f32, f16, bf16, q8_0, q4_0")
      ->check(CLI::IsMember({"auto", "keep", "f32", "f16", "bf16", "q8_0", "q4_0"}));
  app.add_option(
      "--tokenizer", f->tokenizer,
      "Tokenizer from another path (tokenizer.json, tokenizer.model, a model directory or "
      "a GGUF): for weights without a vocabulary, e.g. from `autoglm synth`");
  add_activations_option(app, f->activations);
  app.add_flag("--skip-memory-check", f->skip_memory_check,
               "Start even when `plan` says the weights + KV cache do not fit in free memory");
  app.add_option("-t,--threads", f->threads, "Compute threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--served-model-name", f->served_name,
                 "Model id clients send (default: file name)");
  auto& http = f->server.http;
  app.add_option("--host", http.host, "Address to bind (default 127.0.0.1: this machine only)");
  app.add_option("--port", http.port, "TCP port (default 8000; 0 picks a free one and prints it)");
  app.add_option("--io-threads", http.io_threads, "HTTP I/O threads (default 2)")
      ->check(CLI::Range(1, 64));
  app.add_option("--max-body-bytes", http.max_body_bytes,
                 "Largest request body (default 8 MiB; beyond: 413)");
  app.add_option("--read-timeout", http.read_timeout_s,
                 "Seconds to receive a request or idle between requests (default 60)")
      ->check(CLI::PositiveNumber);
  app.add_option("--api-key", f->server.api_key,
                 "Require `Authorization: Bearer KEY` (prefer --api-key-file or AUTOGLM_API_KEY: "
                 "arguments are visible in ps)");
  app.add_option("--api-key-file", f->api_key_file,
                 "File holding the API key (must not be readable by others)");
  app.add_flag("--insecure-no-auth", f->server.insecure_no_auth,
               "Allow a non-loopback --host without an API key");
  app.add_option("--drain-timeout", f->server.drain_timeout_s,
                 "Seconds to finish in-flight requests on SIGTERM (default 30)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--generation-config", f->generation_config,
                 "auto: sampling defaults from the model's generation_config.json (as vLLM); none: "
                 "the OpenAI defaults (default auto)")
      ->check(CLI::IsMember({"auto", "none"}));
  app.add_option("--request-timeout", f->request_timeout_s,
                 "Seconds a request may run (default 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  auto& e = f->engine;
  app.add_option("--max-batch", e.max_batch, "Sequences per engine step (default 16)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-queue", e.max_queue,
                 "Requests waiting for a slot (default 64; beyond: 429)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--max-queue-delay-ms", e.max_queue_delay_ms,
                 "How long the first waiting request may wait for others (default 5)")
      ->check(CLI::Range(0, 10000));
  app.add_option("--ctx", e.context_length,
                 "Tokens per sequence, prompt + reply (default 4096, or the model's "
                 "max_position_embeddings when smaller)")
      ->check(CLI::Range(16, 1 << 20))
      ->each([f](const std::string&) { f->ctx_given = true; });
  app.add_option("--step-tokens", e.step_tokens,
                 "Tokens per engine step: a token for each running reply, then prompt chunks up "
                 "to this budget (default 512). Lower shortens how long a long prompt holds up the "
                 "replies being streamed; higher prefills with fewer steps")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--kv-blocks", e.kv_blocks,
                 "KV-cache blocks (default: max-batch x ctx / block size)")
      ->check(CLI::NonNegativeNumber);
  add_kv_type_flag(app, e.kv_type);
  return [f] { return serve(*f); };
}

}  // namespace autoglm::cli
