// autoglm bench --model PATH [--dtype ...] [--prompt-tokens 512] [--decode-tokens 128]:
// offline prefill/decode speed with GB/s against the read bandwidth measured in the same run.
// autoglm bench --url URL --model NAME --concurrency 1,4,16,64 | --ramp 100,500,1000
//   --requests N | --duration S [--prompt-tokens N] [--max-tokens N] [--json] [--svg FILE]:
// online load against an OpenAI-compatible server (ops/load_bench.h).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/common.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "ops/load_bench.h"
#include "ops/offline_bench.h"

namespace autoglm::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  ops::OfflineBenchOptions options;
  bool json = false;
  // Online mode (--url).
  ops::LoadBenchOptions online;
  std::string concurrency, ramp, svg;
  bool allow_eos = false;
  CLI::Option* prompt_flag = nullptr;
};

std::vector<int> parse_levels(const std::string& text, const char* flag) {
  std::vector<int> out;
  for (int32_t v : parse_token_list(text)) {
    if (v <= 0) fail("{} wants positive concurrency levels like 1,4,16,64; got {}", flag, v);
    out.push_back(v);
  }
  return out;
}

// The running level on one terminal line; nothing when stderr is not a terminal.
void show_progress(const ops::LoadBenchOptions& o, int concurrency, int done, int total,
                   double elapsed) {
  if (!isatty(STDERR_FILENO)) return;
  const double frac = total > 0 ? double(done) / total : std::min(1.0, elapsed / o.duration_s);
  const int width = 30, filled = static_cast<int>(frac * width);
  std::fprintf(stderr, "\rconcurrency %5d [%s%s] %6d%s requests  %6.1f s ", concurrency,
               std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(), done,
               total > 0 ? fmt::format("/{}", total).c_str() : "", elapsed);
}

int run_online(BenchFlags& f) {
  ops::LoadBenchOptions& o = f.online;
  o.model = f.model.model;
  if (!f.concurrency.empty() && !f.ramp.empty()) fail("pass --concurrency or --ramp, not both");
  o.ramp = !f.ramp.empty();
  if (o.ramp)
    o.levels = parse_levels(f.ramp, "--ramp");
  else if (!f.concurrency.empty())
    o.levels = parse_levels(f.concurrency, "--concurrency");
  o.prompt_tokens = f.prompt_flag->count() ? f.options.prompt_tokens : 128;
  o.ignore_eos = !f.allow_eos;
  if (o.requests == 0 && o.duration_s == 0) o.requests = 32;
  ops::LoadBenchObserver obs;
  obs.progress = [&o](int c, int done, int total, double t) {
    show_progress(o, c, done, total, t);
  };
  obs.level_end = [](const ops::LevelResult& l) {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%90s\r", "");
    std::fprintf(stderr, "concurrency %d: %d/%d ok, %.1f output tokens/s, TTFT p50 %.0f ms\n",
                 l.concurrency, l.ok, l.requests, l.output_tokens_per_s, l.ttft_ms.p50);
  };
  const ops::LoadBenchResult r = ops::run_load_bench(o, obs);
  if (!f.svg.empty()) {
    std::ofstream out(f.svg);
    out << ops::bench_chart_svg(r);
    if (!out) fail("cannot write the chart to {}; check the path", f.svg);
  }
  if (f.json) {
    std::cout << ops::to_json(r).dump(2) << "\n";
  } else {
    std::printf("%s, model %s, prompt ~%d tokens, %d output tokens\n", ops::bench_url(o).c_str(),
                o.model.c_str(), o.prompt_tokens, o.max_tokens);
    std::fputs(ops::format_table(r).c_str(), stdout);
    if (!f.svg.empty()) std::printf("chart: %s\n", f.svg.c_str());
  }
  for (const auto& l : r.levels)
    if (l.ok == 0) return 1;  // a level where nothing worked: say so in the exit code
  return 0;
}

int run(BenchFlags& f) {
  if (!f.online.url.empty()) return run_online(f);
  ThreadPool pool(f.model.thread_count());
  auto model = f.model.load(pool);
  const ops::OfflineBenchResult r = ops::run_offline_bench(*model, f.options, pool);
  const double bw = r.bandwidth_median_gbps;
  const double roofline_tps = bw * 1e9 / r.decode_bytes_per_token;
  if (f.json) {
    nlohmann::json out = {
        {"model", f.model.model},
        {"weights", model->weight_summary()},
        {"threads", pool.size()},
        {"isa", isa_name(kernels::active().isa)},
        {"prefetch", kernels::prefetch_level_name(kernels::prefetch_level())},
        {"kv_type", dtype_name(f.options.kv_type)},
        {"read_bandwidth_gbps",
         {{"median", bw}, {"max", r.bandwidth_max_gbps}, {"samples", r.bandwidth_gbps}}},
        {"fma_peak_gflops", r.fma_peak.gflops},
        {"fma_peak_vector_bits", r.fma_peak.vector_bits},
        {"int8_dot_peak_gflops", r.int8_peak.gflops},
        {"int8_dot_peak_vector_bits", r.int8_peak.vector_bits},
        {"bf16_dot_peak_gflops", r.bf16_peak.gflops},
        {"int16_dot_peak_gflops", r.int16_peak.gflops},
        {"resident_bytes", r.resident_bytes},
        {"huge_page_bytes", r.huge_page_bytes},
        {"prefill",
         {{"tokens", f.options.prompt_tokens},
          {"tokens_per_s", r.prefill_tps},
          {"median_tokens_per_s", r.prefill_median_tps},
          {"gflops", r.prefill_gflops}}},
        {"decode",
         {{"tokens", f.options.decode_tokens},
          {"context", f.options.context},
          {"tokens_per_s", r.decode_tps},
          {"median_tokens_per_s", r.decode_median_tps},
          {"bytes_per_token", r.decode_bytes_per_token},
          {"gbps", r.decode_gbps},
          {"roofline_fraction", r.decode_gbps / bw},
          {"roofline_fraction_of_max", r.decode_gbps / r.bandwidth_max_gbps},
          {"roofline_fraction_alongside",
           {{"median", r.decode_segment_fraction_median},
            {"segments", r.decode_segment_fraction}}}}},
        {"batched_decode",
         {{"sequences", f.options.batch},
          {"tokens_per_s", r.batch_tps},
          {"median_tokens_per_s", r.batch_median_tps},
          {"gflops", r.batch_gflops},
          {"speedup_over_single", r.batch_median_tps / r.decode_median_tps}}}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf(
      "model    %s\nweights  %s\nthreads  %d, kernels %s (streams prefetched into %s), KV cache "
      "%s\n",
      f.model.model.c_str(), model->weight_summary().c_str(), pool.size(),
      isa_name(kernels::active().isa), kernels::prefetch_level_name(kernels::prefetch_level()),
      std::string(dtype_name(f.options.kv_type)).c_str());
  std::printf(
      "memory   read bandwidth %.1f GB/s (median of %zu probes, one before and one after each "
      "decode run; highest %.1f)\n",
      bw, r.bandwidth_gbps.size(), r.bandwidth_max_gbps);
  if (r.resident_bytes > 0) {
    std::printf(
        "pages    %.0f of %.0f MiB resident in 2 MiB huge pages%s\n",
        static_cast<double>(r.huge_page_bytes) / 1048576.0,
        static_cast<double>(r.resident_bytes) / 1048576.0,
        r.huge_page_bytes == 0 ? " (see `autoglm doctor`: transparent huge pages off?)" : "");
  }
  if (r.fma_peak.gflops > 0) {
    const bool wide = r.int8_peak.vector_bits == 512;
    std::string bf16 =
        r.bf16_peak.gflops > 0
            ? fmt::format(", bf16 dot products {:.0f} (vdpbf16ps)", r.bf16_peak.gflops)
            : "";
    if (r.int16_peak.gflops > 0)
      bf16 += fmt::format(", 16-bit dot products {:.0f} (vpdpwssd)", r.int16_peak.gflops);
    std::printf(
        "compute  peaks of the threads together, GFLOP/s: f32 FMAs %.0f, 8-bit dot products %.0f "
        "(%s)%s; %d-bit vectors, the higher of a probe before and one after the runs\n",
        r.fma_peak.gflops, r.int8_peak.gflops, wide ? "vpdpbusd" : "vpmaddubsw", bf16.c_str(),
        r.fma_peak.vector_bits);
  }
  // Prefill and batches multiply on the instructions of their weights' kernels: f32 FMAs for
  // float weights (bf16 dot products with bf16 activations; 16-bit dot products for f16 with
  // 16-bit activations, from kernels::kInt16MinTokens tokens a call), 8-bit dot products for
  // quantized ones.
  const auto of_peak = [&](double gflops, int tokens) {
    const bool int16 = r.int16_products && tokens >= kernels::kInt16MinTokens;
    const double peak = r.bf16_products   ? r.bf16_peak.gflops
                        : int16           ? r.int16_peak.gflops
                        : r.float_weights ? r.fma_peak.gflops
                                          : r.int8_peak.gflops;
    const char* peak_name = r.bf16_products   ? "bf16 dot-product"
                            : int16           ? "16-bit dot-product"
                            : r.float_weights ? "FMA"
                                              : "8-bit dot-product";
    if (peak <= 0) return std::string();
    return fmt::format(" = {:.0f}% of the {} peak", 100.0 * gflops / peak, peak_name);
  };
  std::printf("prefill  %d tokens: %.1f tokens/s (median of %d), %.1f GFLOP/s%s\n",
              f.options.prompt_tokens, r.prefill_median_tps, f.options.repeats, r.prefill_gflops,
              of_peak(r.prefill_gflops, f.options.prompt_tokens).c_str());
  const std::string after =
      f.options.context > 0 ? fmt::format(" after {} cached", f.options.context) : "";
  std::printf(
      "decode   %d tokens%s: %.2f tokens/s (median of %d), %.3f GB/token, %.1f GB/s = %.0f%% of "
      "the measured bandwidth, %.0f%% of the highest probe (roofline %.1f tokens/s)\n",
      f.options.decode_tokens, after.c_str(), r.decode_median_tps, f.options.repeats,
      r.decode_bytes_per_token / 1e9, r.decode_gbps, 100.0 * r.decode_gbps / bw,
      100.0 * r.decode_gbps / r.bandwidth_max_gbps, roofline_tps);
  std::printf(
      "         %.0f%% of the bandwidth probed on either side of each 0.1 s of decode (median of "
      "%zu segments)\n",
      100.0 * r.decode_segment_fraction_median, r.decode_segment_fraction.size());
  if (f.options.batch > 0) {
    std::printf(
        "batched  %d sequences x 1 token per step: %.1f tokens/s (median of %d), %.1f GFLOP/s%s, "
        "%.1fx single-stream decode\n",
        f.options.batch, r.batch_median_tps, f.options.repeats, r.batch_gflops,
        of_peak(r.batch_gflops, f.options.batch).c_str(), r.batch_median_tps / r.decode_median_tps);
  }
  return 0;
}

}  // namespace

Action register_bench(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  f->model.add_to(app);
  f->prompt_flag = app.add_option("--prompt-tokens", f->options.prompt_tokens,
                                  "Prefill length (default 512; online: about 128 tokens)");
  app.add_option("--decode-tokens", f->options.decode_tokens, "Tokens decoded (default 128)");
  app.add_option("--context", f->options.context,
                 "Tokens already in the KV cache when decode starts (default 0): decode speed at a "
                 "long context")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--repeats", f->options.repeats, "Repeats; medians are reported (default 3)");
  app.add_option("--batch", f->options.batch,
                 "Sequences decoded together in the batched-decode run (default 16; 0 skips it)")
      ->check(CLI::NonNegativeNumber);
  add_kv_type_flag(app, f->options.kv_type);
  app.add_flag("--json", f->json, "Print the results as JSON");
  auto* online = app.add_option_group("online", "Load test of a running server (--url)");
  online->add_option("--url", f->online.url,
                     "OpenAI-compatible server, e.g. http://127.0.0.1:8080; --model is then its "
                     "model id");
  online->add_option("--api-key", f->online.api_key, "Bearer key for the server");
  online
      ->add_option_function<std::string>(
          "--api", [f](const std::string& api) { f->online.chat = api == "chat"; },
          "chat: /v1/chat/completions (default); completions: /v1/completions with a plain "
          "prompt, for models without a chat format")
      ->check(CLI::IsMember({"chat", "completions"}));
  online->add_option("--concurrency", f->concurrency, "Concurrent streams per level (1,4,16,64)");
  online->add_option("--ramp", f->ramp,
                     "Levels like 100,500,1000; stops at the first level whose error rate "
                     "passes --max-error-rate");
  online->add_option("--max-error-rate", f->online.max_error_rate, "Ramp breaking point (0.5)");
  online->add_option("--requests", f->online.requests, "Requests per level (default 32)");
  online->add_option("--duration", f->online.duration_s,
                     "Seconds per level, instead of --requests");
  online->add_option("--max-tokens", f->online.max_tokens, "Output tokens per request (64)");
  online->add_option("--timeout", f->online.request_timeout_s, "Seconds per request (600)");
  online->add_flag("--allow-eos", f->allow_eos,
                   "Let the model stop early (default asks for exactly --max-tokens: ignore_eos)");
  online->add_option("--svg", f->svg, "Write a chart of latency and throughput to this file");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
