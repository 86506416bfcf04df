// Rendering a plan: the terminal table and the JSON of `autoglm plan`, shared with `doctor`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ops/cuda_probe.h"
#include "ops/plan.h"

namespace autoglm::ops {

// One aligned line per item, then the total.
std::string plan_table(const MemoryPlan& plan);
nlohmann::json plan_json(const MemoryPlan& plan);

// "CPU RAM: 3.10 GiB of 120.4 GiB available: fits; largest context 131072, batch 512".
std::string fit_line(const FitReport& fit);
nlohmann::json fit_json(const FitReport& fit);

// CPU RAM (MemAvailable), then every GPU the probe found with its free memory.
std::vector<DeviceMemory> plan_devices(const CudaProbe& cuda);

}  // namespace autoglm::ops
