// autoglm plan --model PATH | --config CONFIG.json | --params N [--dtype ...] [--ctx N] [--batch N]
//              [--train --optimizer adam|adamw|sgd] [--activations SIZE] [--json]:
// memory estimate and, per device, whether it fits.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "formats/tensor_store.h"
#include "ops/plan_report.h"

namespace autoglm::cli {
namespace {

struct PlanFlags {
  std::string model, config, dtype;
  double params = 0;
  ops::PlanOptions options;
  bool train = false;
  std::string optimizer = "adam";
  std::string activations = "0";
  bool json = false;
};

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read '{}': give the path of a Hugging Face config.json", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path, e.what());
  }
}

DType torch_dtype(const nlohmann::json& config) {
  const std::string t = config.value("torch_dtype", std::string("bfloat16"));
  if (t == "float32") return DType::F32;
  if (t == "float16") return DType::F16;
  return DType::BF16;
}

int print(const PlanFlags& f, const ops::MemoryPlan& plan, const std::vector<ops::FitReport>& fits,
          const nlohmann::json& extra) {
  if (f.json) {
    nlohmann::json out = extra;
    out["plan"] = ops::plan_json(plan);
    out["devices"] = nlohmann::json::array();
    for (const auto& fit : fits) out["devices"].push_back(ops::fit_json(fit));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%s", ops::plan_table(plan).c_str());
  for (const auto& fit : fits) std::printf("%s\n", ops::fit_line(fit).c_str());
  return 0;
}

int run_train(const PlanFlags& f) {
  ops::TrainOptions t;
  t.dtype = f.dtype.empty() ? DType::F32 : parse_dtype(f.dtype);
  t.optimizer = f.optimizer;
  t.activation_bytes = ops::parse_size(f.activations);
  int64_t params = static_cast<int64_t>(f.params);
  if (params == 0) {
    const models::ModelSpec spec =
        f.config.empty() ? models::read_spec(f.model)
                         : models::spec_from_hf_config(read_json_file(f.config), f.config);
    params = spec.parameter_count();
  }
  const ops::MemoryPlan plan = ops::plan_training(params, t);
  std::vector<ops::FitReport> fits;
  for (const ops::DeviceMemory& d : ops::plan_devices(ops::probe_cuda())) {
    ops::FitReport r{
        d.name,
        d.available,
        plan.total_bytes,
        plan.total_bytes <= d.available ? ops::Verdict::Fits : ops::Verdict::DoesNotFit,
        0,
        0};
    fits.push_back(r);
  }
  return print(f, plan, fits, {{"mode", "train"}, {"optimizer", f.optimizer}});
}

int run(const PlanFlags& f) {
  const int sources = !f.model.empty() + !f.config.empty() + (f.params > 0);
  if (sources != 1) fail("plan: give exactly one of --model, --config or --params");
  if (f.train) return run_train(f);
  if (f.params > 0) {
    fail(
        "plan: --params alone describes no KV cache; use it with --train, or give "
        "--config/--model");
  }
  ops::PlanOptions o = f.options;
  if (!f.dtype.empty()) o.dtype = parse_dtype(f.dtype);
  models::ModelSpec spec;
  formats::TensorStore store;
  const formats::TensorStore* store_ptr = nullptr;
  nlohmann::json extra = {{"mode", "serve"}};
  int64_t vision = 0;
  if (!f.model.empty()) {
    spec = models::read_spec(f.model);
    store = formats::open_weights(f.model);
    store_ptr = &store;
  } else {
    const nlohmann::json config = read_json_file(f.config);
    spec = models::spec_from_hf_config(config, f.config);
    o.stored = torch_dtype(config);
    vision = ops::vision_parameters(config);
  }
  ops::MemoryPlan plan = ops::plan_memory(spec, o, store_ptr);
  if (vision > 0) {
    plan.notes.push_back(
        {"vision tower",
         fmt::format("{:.3g} params, not loaded (text-only engine)", static_cast<double>(vision)),
         0});
  }
  std::vector<ops::FitReport> fits;
  for (const ops::DeviceMemory& d : ops::plan_devices(ops::probe_cuda())) {
    fits.push_back(ops::fit_on(spec, o, d, store_ptr));
  }
  extra["model"] = spec.describe();
  return print(f, plan, fits, extra);
}

}  // namespace

Action register_plan(CLI::App& app) {
  auto f = std::make_shared<PlanFlags>();
  app.add_option("-m,--model", f->model, "Model directory or .gguf file (reads shapes and dtypes)");
  app.add_option("--config", f->config, "A Hugging Face config.json (nothing downloaded)");
  app.add_option("--params", f->params, "Parameter count, e.g. 1.2e8 (with --train)");
  app.add_option("--dtype", f->dtype, "Weights: f32, f16, bf16, q8_0, q4_0 (default: as stored)");
  app.add_option("--ctx", f->options.context, "Tokens per sequence (default 4096)")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch", f->options.batch, "Sequences at once (default 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--step-tokens", f->options.step_tokens,
                 "Tokens per forward pass (default 512, as serve)")
      ->check(CLI::PositiveNumber);
  app.add_option("-t,--threads", f->options.threads, "Compute threads (default: every core)");
  add_kv_type_flag(app, f->options.kv_type);
  app.add_flag("--train", f->train, "Training memory: weights, gradients, optimizer, activations");
  app.add_option("--optimizer", f->optimizer, "adam (default), adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}));
  app.add_option("--activations", f->activations, "Activation memory for --train, e.g. 512MiB");
  app.add_flag("--json", f->json, "Print the plan as JSON");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
