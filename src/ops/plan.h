// `autoglm plan`: how much memory a model needs before anything is loaded. Weights are counted by
// running the architecture's own bind hook against a recording binder (the same tensors, shapes
// and load-time conversions as models::Model::load), the KV cache and scratch from the sizes the
// engine allocates (models/kv_cache.h, models/forward_state.h), so `serve` can refuse a
// configuration that cannot fit before it loads a byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/tensor_store.h"
#include "models/kv_cache.h"
#include "models/model_spec.h"

namespace autoglm::ops {

struct PlanOptions {
  std::optional<DType> dtype;  // weight matrices after load; nullopt keeps the stored types
  DType stored = DType::BF16;  // what a config-only plan assumes the checkpoint holds
  int64_t context = 4096;      // tokens per sequence (EngineConfig::context_length)
  int64_t batch = 1;           // sequences at once (EngineConfig::max_batch)
  int64_t step_tokens = 512;   // tokens in one forward pass (EngineConfig::step_tokens)
  int64_t block_size = 16;     // KV block (EngineConfig::block_size)
  DType kv_type = models::kDefaultKvType;  // KV-cache element type (EngineConfig::kv_type)
  int threads = 0;                         // compute threads; 0 = every core
};

// One row of the breakdown.
struct PlanItem {
  std::string name;    // "embeddings", "layers", "KV cache", ...
  std::string detail;  // "q8_0, 32.8M params", "2 x 28 x 2 x 128 x 4 B x 4096 tokens x 1"
  uint64_t bytes = 0;
};

struct MemoryPlan {
  std::vector<PlanItem> items;  // everything counted in total_bytes
  std::vector<PlanItem> notes;  // shown but not resident (vision tower not loaded, ...)
  int64_t parameters = 0;       // every weight the engine loads
  uint64_t weight_bytes = 0;    // resident weights after load conversion
  uint64_t kv_bytes_per_token = 0;
  uint64_t kv_bytes = 0;        // context x batch, rounded up to whole blocks
  uint64_t scratch_bytes = 0;   // activations, logits, sampler, per-thread kernel buffers
  uint64_t overhead_bytes = 0;  // binary, libraries, thread stacks, allocator
  uint64_t total_bytes = 0;
  std::string weight_types;  // "q8_0 + f32"
};

// Serving plan of a model. `store` (optional) gives the stored dtypes and which optional tensors
// exist; without it every matrix is assumed stored as options.stored.
MemoryPlan plan_memory(const models::ModelSpec& spec, const PlanOptions& options,
                       const formats::TensorStore* store = nullptr);

// Parameters of a vision tower from its HF vision_config (GLM-4.1V layout, GLM_ARCHITECTURES.md
// D.2); 0 when the config has none. The engine does not load it (text only).
int64_t vision_parameters(const nlohmann::json& config);

struct TrainOptions {
  DType dtype = DType::F32;        // weights and gradients
  std::string optimizer = "adam";  // adam, adamw (2 f32 states), sgd (none: plain SGD)
  uint64_t activation_bytes = 0;
};

// Training memory of `parameters` weights: weights + gradients + optimizer states (+ an f32 master
// copy when the weights are not f32) + activations.
MemoryPlan plan_training(int64_t parameters, const TrainOptions& options);

// "512MiB", "1.5GiB", "2GB", "1048576" -> bytes. Throws Error on anything else.
uint64_t parse_size(const std::string& text);
// 2456789012 -> "2.29 GiB".
std::string format_bytes(uint64_t bytes);

// Where the plan could run.
struct DeviceMemory {
  std::string name;        // "CPU RAM", "GPU 0 NVIDIA H100"
  uint64_t available = 0;  // bytes free now
  uint64_t total = 0;
};

enum class Verdict { Fits, FitsWithQ8, FitsWithQ4, DoesNotFit };
const char* verdict_name(Verdict v);  // "fits", "fits with q8_0", ...

struct FitReport {
  std::string device;
  uint64_t available = 0;
  uint64_t needed = 0;  // plan as requested
  Verdict verdict = Verdict::DoesNotFit;
  int64_t max_context = 0;      // largest context (whole blocks) that fits at the requested batch
                                // with the verdict's dtype; 0 when not even one block does
  bool context_capped = false;  // max_context stopped at the model's trained maximum
  int64_t max_batch = 0;        // largest batch that fits at the requested context
};

// Fits the plan onto one device: as requested, else with q8_0, else q4_0 weights.
FitReport fit_on(const models::ModelSpec& spec, const PlanOptions& options,
                 const DeviceMemory& device, const formats::TensorStore* store = nullptr);

// CPU RAM from /proc/meminfo (MemAvailable, MemTotal); `meminfo` overridable for tests.
DeviceMemory cpu_memory(const std::string& meminfo = "/proc/meminfo");

}  // namespace autoglm::ops
