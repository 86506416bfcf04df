#include "ops/plan_report.h"

#include <fmt/format.h>

namespace autoglm::ops {

std::string plan_table(const MemoryPlan& plan) {
  std::string out;
  for (const PlanItem& i : plan.items) {
    out += fmt::format("  {:<24} {:>12}  {}\n", i.name, format_bytes(i.bytes), i.detail);
  }
  for (const PlanItem& i : plan.notes) {
    out += fmt::format("  {:<24} {:>12}  {}\n", i.name, "-", i.detail);
  }
  out += fmt::format("  {:<24} {:>12}  {:.4g} parameters{}\n", "total",
                     format_bytes(plan.total_bytes), static_cast<double>(plan.parameters),
                     plan.weight_types.empty() ? "" : ", weights " + plan.weight_types);
  return out;
}

nlohmann::json plan_json(const MemoryPlan& plan) {
  nlohmann::json items = nlohmann::json::array();
  for (const PlanItem& i : plan.items)
    items.push_back({{"name", i.name}, {"bytes", i.bytes}, {"detail", i.detail}});
  nlohmann::json notes = nlohmann::json::array();
  for (const PlanItem& i : plan.notes)
    notes.push_back({{"name", i.name}, {"bytes", i.bytes}, {"detail", i.detail}});
  return {{"parameters", plan.parameters},
          {"weight_types", plan.weight_types},
          {"weight_bytes", plan.weight_bytes},
          {"kv_bytes_per_token", plan.kv_bytes_per_token},
          {"kv_bytes", plan.kv_bytes},
          {"scratch_bytes", plan.scratch_bytes},
          {"overhead_bytes", plan.overhead_bytes},
          {"total_bytes", plan.total_bytes},
          {"items", items},
          {"notes", notes}};
}

std::string fit_line(const FitReport& f) {
  std::string s = fmt::format("{}: needs {}, {} available: {}", f.device, format_bytes(f.needed),
                              format_bytes(f.available), verdict_name(f.verdict));
  if (f.max_context > 0) {
    s += fmt::format("; largest context {}{} (at the batch asked), largest batch {}", f.max_context,
                     f.context_capped ? " (the trained maximum)" : "", f.max_batch);
  }
  return s;
}

nlohmann::json fit_json(const FitReport& f) {
  return {{"device", f.device},           {"available_bytes", f.available},
          {"needed_bytes", f.needed},     {"verdict", verdict_name(f.verdict)},
          {"max_context", f.max_context}, {"context_capped", f.context_capped},
          {"max_batch", f.max_batch}};
}

std::vector<DeviceMemory> plan_devices(const CudaProbe& cuda) {
  std::vector<DeviceMemory> out{cpu_memory()};
  for (const GpuDevice& g : cuda.devices) {
    if (!g.error.empty()) continue;
    out.push_back({fmt::format("GPU {} {}", g.index, g.name), g.free_bytes, g.total_bytes});
  }
  return out;
}

}  // namespace autoglm::ops
