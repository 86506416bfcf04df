// autoglm bench --model PATH [--dtype ...] [--prompt-tokens 512] [--decode-tokens 128]:
// offline prefill/decode speed with GB/s against the read bandwidth measured in the same run.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "core/cpu_features.h"
#include "kernels/kernels.h"
#include "ops/offline_bench.h"

namespace autoglm::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  ops::OfflineBenchOptions options;
  bool json = false;
};

int run(const BenchFlags& f) {
  ThreadPool pool(f.model.thread_count());
  auto model = f.model.load(pool);
  const ops::OfflineBenchResult r = ops::run_offline_bench(*model, f.options, pool);
  const double bw = r.bandwidth_median_gbps;
  const double roofline_tps = bw * 1e9 / r.decode_bytes_per_token;
  if (f.json) {
    nlohmann::json out = {{"model", f.model.model},
                          {"weights", model->weight_summary()},
                          {"threads", pool.size()},
                          {"isa", isa_name(kernels::active().isa)},
                          {"read_bandwidth_gbps", {{"median", bw}, {"samples", r.bandwidth_gbps}}},
                          {"prefill",
                           {{"tokens", f.options.prompt_tokens},
                            {"tokens_per_s", r.prefill_tps},
                            {"median_tokens_per_s", r.prefill_median_tps},
                            {"gflops", r.prefill_gflops}}},
                          {"decode",
                           {{"tokens", f.options.decode_tokens},
                            {"tokens_per_s", r.decode_tps},
                            {"median_tokens_per_s", r.decode_median_tps},
                            {"bytes_per_token", r.decode_bytes_per_token},
                            {"gbps", r.decode_gbps},
                            {"roofline_fraction", r.decode_gbps / bw}}}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("model    %s\nweights  %s\nthreads  %d, kernels %s\n", f.model.model.c_str(),
              model->weight_summary().c_str(), pool.size(), isa_name(kernels::active().isa));
  std::printf(
      "memory   read bandwidth %.1f GB/s (median of %zu probes, one before each decode run)\n", bw,
      r.bandwidth_gbps.size());
  std::printf("prefill  %d tokens: %.1f tokens/s (median of %d), %.1f GFLOP/s\n",
              f.options.prompt_tokens, r.prefill_median_tps, f.options.repeats, r.prefill_gflops);
  std::printf(
      "decode   %d tokens: %.2f tokens/s (median of %d), %.3f GB/token, %.1f GB/s = %.0f%% of "
      "the measured bandwidth (roofline %.1f tokens/s)\n",
      f.options.decode_tokens, r.decode_median_tps, f.options.repeats,
      r.decode_bytes_per_token / 1e9, r.decode_gbps, 100.0 * r.decode_gbps / bw, roofline_tps);
  return 0;
}

}  // namespace

Action register_bench(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  f->model.add_to(app);
  app.add_option("--prompt-tokens", f->options.prompt_tokens, "Prefill length (default 512)");
  app.add_option("--decode-tokens", f->options.decode_tokens, "Tokens decoded (default 128)");
  app.add_option("--repeats", f->options.repeats, "Repeats; medians are reported (default 3)");
  app.add_flag("--json", f->json, "Print the results as JSON");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
