// autoglm doctor [--model PATH] [--port N] [--host H] [--device auto|cpu|cuda|cuda:0,1] [--json]:
// preflight checks; exit code 0 only when serving can work.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "core/dtype.h"
#include "ops/doctor.h"

namespace autoglm::cli {
namespace {

struct DoctorFlags {
  ops::DoctorOptions options;
  std::string dtype;
  bool offline = false;
  bool json = false;
};

int run(DoctorFlags f) {
  if (!f.dtype.empty()) f.options.plan.dtype = parse_dtype(f.dtype);
  f.options.network = !f.offline;
  const ops::DoctorReport report = ops::run_doctor(f.options);
  if (f.json) {
    std::cout << ops::doctor_json(report).dump(2) << "\n";
  } else {
    std::printf("%s", ops::doctor_text(report).c_str());
  }
  return report.can_serve() ? 0 : 1;
}

}  // namespace

Action register_doctor(CLI::App& app) {
  auto f = std::make_shared<DoctorFlags>();
  ops::DoctorOptions& o = f->options;
  app.add_option("-m,--model", o.model, "Model directory or .gguf file to check");
  app.add_option("--host", o.host, "Address serve will bind (default 127.0.0.1)");
  app.add_option("--port", o.port, "Port serve will use (default 8000; 0: not checked)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--device", o.device, "auto (default), cpu, cuda, or cuda:0,1 for a split");
  app.add_option("--dtype", f->dtype, "Weights for the memory check: f32, f16, bf16, q8_0, q4_0");
  app.add_option("--ctx", o.plan.context, "Context for the memory check (default 4096)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", o.plan.batch, "Batch for the memory check (default 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--api-key-file", o.api_key_file, "API key file serve will read");
  app.add_option("--cache-dir", o.cache_dir,
                 "Download cache (default $AUTOGLM_CACHE_DIR, ~/.cache/autoglm)");
  app.add_option("--log-dir", o.log_dir, "Log directory to check");
  app.add_option("--endpoint", o.endpoint, "Hub endpoint (default $HF_ENDPOINT or huggingface.co)");
  app.add_option("--timeout-ms", o.network_timeout_ms, "Network check timeout (default 2000)");
  app.add_flag("--offline", f->offline, "Do not try to reach the hub");
  app.add_flag("--json", f->json, "Print the checks as JSON");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
