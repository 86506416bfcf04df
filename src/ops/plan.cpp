#include "ops/plan.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "models/architecture.h"
#include "models/weight_binder.h"

namespace autoglm::ops {
namespace {

// Resident memory of the process before any model: the binary, its libraries, the thread pool
// and glibc arenas. Measured as VmHWM of `autoglm run -n 4` on the 3.4 MiB glm-tiny-q8_0 fixture:
// 9.0-9.3 MiB with 1, 2 or 8 threads, i.e. about 5.8 MiB besides the weights; threads add under
// 64 KiB each (touched stack pages).
constexpr uint64_t kBaseOverhead = 6ull << 20;
constexpr uint64_t kPerThreadOverhead = 64ull << 10;

// What the bind hook asks for, with the bytes each tensor will occupy after load: the same
// dtype decision as models::StoreBinder::matrix (KeepF32 -> f32; the target when the row width
// is a whole number of its blocks; else as stored).
class PlanBinder final : public models::WeightBinder {
 public:
  PlanBinder(const models::ModelSpec& spec, const PlanOptions& options,
             const formats::TensorStore* store)
      : spec_(spec), options_(options), store_(store) {}

  formats::FileFormat format() const override {
    return store_ ? store_->format() : formats::FileFormat::Safetensors;
  }
  bool has(const std::string& name) const override { return store_ && store_->contains(name); }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols,
                         models::Convert convert) override {
    DType want = stored(name);
    if (convert == models::Convert::KeepF32) {
      want = DType::F32;
    } else if (options_.dtype && cols % dtype_info(*options_.dtype).block_elems == 0) {
      want = *options_.dtype;
    }
    add(group_of(rows, cols), want, rows, cols);
    return {want, rows, cols, nullptr};
  }
  kernels::Matrix matrix_slice(const std::string& name, int64_t, int64_t, int64_t rows,
                               int64_t cols) override {
    DType want = stored(name);
    if (options_.dtype && cols % dtype_info(*options_.dtype).block_elems == 0)
      want = *options_.dtype;
    add("layers", want, rows, cols);
    return {want, rows, cols, nullptr};
  }
  const float* vector(const std::string&, int64_t n) override {
    add("norms and biases", DType::F32, 1, n);  // always f32 (StoreBinder::vector)
    return nullptr;
  }

  struct Group {
    int64_t params = 0;
    uint64_t bytes = 0;
    std::map<DType, int64_t> by_type;  // params per dtype
  };
  const std::map<std::string, Group>& groups() const { return groups_; }

 private:
  DType stored(const std::string& name) const {
    if (store_) {
      if (const TensorView* t = store_->find(name)) return t->dtype;
    }
    return options_.stored;
  }
  // The embedding is the first matrix the hooks ask for (bind_with_names); the output head is
  // the other [V, H] matrix.
  std::string group_of(int64_t rows, int64_t cols) {
    const bool vocab_shaped = rows == spec_.vocab_size && cols == spec_.hidden_size;
    std::string g = !seen_matrix_ && vocab_shaped ? "embeddings"
                    : vocab_shaped                ? "output head"
                                                  : "layers";
    seen_matrix_ = true;
    return g;
  }
  void add(const std::string& group, DType t, int64_t rows, int64_t cols) {
    Group& g = groups_[group];
    g.params += rows * cols;
    g.bytes += static_cast<uint64_t>(rows) * row_bytes(t, cols);
    g.by_type[t] += rows * cols;
  }

  const models::ModelSpec& spec_;
  const PlanOptions& options_;
  const formats::TensorStore* store_;
  bool seen_matrix_ = false;
  std::map<std::string, Group> groups_;
};

std::string type_detail(const PlanBinder::Group& g) {
  std::string s;
  for (const auto& [t, n] : g.by_type) {
    if (!s.empty()) s += " + ";
    s += fmt::format("{} {:.1f}M", dtype_name(t), static_cast<double>(n) / 1e6);
  }
  return s + " params";
}

int thread_count(const PlanOptions& o) {
  return o.threads > 0 ? o.threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Buffers of one forward pass over T tokens producing `rows` logit rows (blocks.cpp,
// model_forward.cpp, engine sampler), plus the kernels' per-thread buffers (ops_scalar.cpp).
uint64_t scratch_bytes(const models::ModelSpec& s, const PlanOptions& o, std::string& detail) {
  const int64_t T = std::max<int64_t>(1, std::min(o.step_tokens, o.context * o.batch));
  const int64_t H = s.hidden_size, V = s.vocab_size;
  const int64_t I = std::max(s.intermediate_size, s.n_shared_experts * s.moe_intermediate_size);
  const int64_t rows = std::max<int64_t>(1, o.batch);
  int64_t floats = 4 * T * H;                                 // x, norm, proj, ffn_out
  floats += 2 * T * s.q_dim() + 2 * T * s.kv_dim();           // q, attn, k, v
  floats += T * std::max(s.q_dim() + 2 * s.kv_dim(), 2 * I);  // ffn_a: fused qkv or gate|up
  floats += T * I;                                            // ffn_b
  floats += T * s.rotary_dims;                                // rope cos + sin, R/2 each
  if (s.n_experts > 0) floats += T * (s.n_experts + 2 * H + 2 * s.moe_intermediate_size);
  const int64_t logits = rows * V;       // engine logits_, one row a sequence
  const int64_t sampler = rows * V * 2;  // candidates: (float, int32) per token
  // Per calling thread: 4 f32 attention buffers of one context, int8 activations [T, widest].
  const int64_t widest = std::max({H, I, s.q_dim()});
  const uint64_t per_thread =
      static_cast<uint64_t>(4 * o.context * 4 + T * widest + T * (widest / 32) * 4);
  const uint64_t bytes = static_cast<uint64_t>(floats + logits + sampler) * 4 +
                         static_cast<uint64_t>(T) * 16 + per_thread * thread_count(o);
  detail = fmt::format("{} tokens a step, {} logit rows", T, rows);
  return bytes;
}

}  // namespace

MemoryPlan plan_memory(const models::ModelSpec& spec, const PlanOptions& options,
                       const formats::TensorStore* store) {
  if (options.context < 1 || options.batch < 1 || options.step_tokens < 1 ||
      options.block_size < 1) {
    fail("plan: context ({}), batch ({}), step tokens ({}) and block size ({}) must be >= 1",
         options.context, options.batch, options.step_tokens, options.block_size);
  }
  PlanBinder binder(spec, options, store);
  models::ModelWeights weights;
  models::architecture_named(spec.arch).bind(spec, binder, weights);

  MemoryPlan plan;
  std::map<DType, bool> types;
  for (const char* name : {"embeddings", "layers", "output head", "norms and biases"}) {
    auto it = binder.groups().find(name);
    if (it == binder.groups().end()) continue;
    plan.items.push_back({name, type_detail(it->second), it->second.bytes});
    plan.parameters += it->second.params;
    plan.weight_bytes += it->second.bytes;
    for (const auto& [t, n] : it->second.by_type) types[t] = true;
  }
  for (const auto& [t, unused] : types) {
    if (!plan.weight_types.empty()) plan.weight_types += " + ";
    plan.weight_types += dtype_name(t);
  }
  if (spec.tie_embeddings && !binder.groups().count("output head")) {
    plan.notes.push_back({"output head", "tied to the embeddings: no extra memory", 0});
  }

  // KvPool: [L][nkv][blocks][K, V][block · d] of f16 or f32 (models/kv_cache.h).
  const int64_t kv_elem = models::kv_elem_bytes(options.kv_type);
  plan.kv_bytes_per_token = static_cast<uint64_t>(2 * spec.n_layers * spec.kv_dim() * kv_elem);
  const int64_t blocks =
      options.batch * ((options.context + options.block_size - 1) / options.block_size);
  plan.kv_bytes = static_cast<uint64_t>(blocks * options.block_size) * plan.kv_bytes_per_token;
  plan.items.push_back(
      {"KV cache",
       fmt::format("2 x {} layers x {} x {} B ({}) = {} per token; {} tokens x {}", spec.n_layers,
                   spec.kv_dim(), kv_elem, dtype_name(options.kv_type),
                   format_bytes(plan.kv_bytes_per_token), options.context, options.batch),
       plan.kv_bytes});

  std::string detail;
  plan.scratch_bytes = scratch_bytes(spec, options, detail);
  plan.items.push_back({"activations and scratch", detail, plan.scratch_bytes});

  const int threads = thread_count(options);
  plan.overhead_bytes = kBaseOverhead + kPerThreadOverhead * static_cast<uint64_t>(threads);
  plan.items.push_back(
      {"runtime", fmt::format("binary, libraries, {} threads", threads), plan.overhead_bytes});
  for (const PlanItem& i : plan.items) plan.total_bytes += i.bytes;
  return plan;
}

MemoryPlan plan_training(int64_t parameters, const TrainOptions& o) {
  if (parameters < 1) fail("plan: --params must be >= 1 (got {})", parameters);
  int64_t states = 0;  // f32 values per parameter kept by the optimizer
  if (o.optimizer == "adam" || o.optimizer == "adamw") {
    states = 2;  // first and second moments
  } else if (o.optimizer != "sgd") {
    fail("plan: unknown optimizer '{}': use adam, adamw or sgd", o.optimizer);
  }
  const uint64_t p = static_cast<uint64_t>(parameters);
  const uint64_t w = p * row_bytes(o.dtype, 1);
  MemoryPlan plan;
  plan.parameters = parameters;
  plan.weight_bytes = w;
  plan.weight_types = std::string(dtype_name(o.dtype));
  const std::string per =
      fmt::format("{:.3g} params x {} B", static_cast<double>(p), row_bytes(o.dtype, 1));
  plan.items.push_back({"weights", per, w});
  plan.items.push_back({"gradients", per, w});
  if (o.dtype != DType::F32) plan.items.push_back({"f32 master weights", "params x 4 B", p * 4});
  plan.items.push_back({"optimizer states",
                        fmt::format("{}: {} x params x 4 B", o.optimizer, states),
                        p * 4 * static_cast<uint64_t>(states)});
  plan.items.push_back({"activations", "as given (--activations)", o.activation_bytes});
  plan.scratch_bytes = o.activation_bytes;
  for (const PlanItem& i : plan.items) plan.total_bytes += i.bytes;
  return plan;
}

uint64_t parse_size(const std::string& text) {
  std::istringstream in(text);
  double value = 0;
  std::string unit;
  if (!(in >> value) || value < 0)
    fail("'{}' is not a size: write e.g. 512MiB, 1.5GiB or 2GB", text);
  in >> unit;
  std::string u;
  for (char c : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, double> units = {{"", 1},
                                                      {"b", 1},
                                                      {"k", 1024.0},
                                                      {"kib", 1024.0},
                                                      {"kb", 1e3},
                                                      {"m", 1 << 20},
                                                      {"mib", 1 << 20},
                                                      {"mb", 1e6},
                                                      {"g", 1 << 30},
                                                      {"gib", 1 << 30},
                                                      {"gb", 1e9},
                                                      {"t", 1099511627776.0},
                                                      {"tib", 1099511627776.0},
                                                      {"tb", 1e12}};
  auto it = units.find(u);
  if (it == units.end())
    fail("'{}': unknown size unit '{}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB)", text, unit);
  return static_cast<uint64_t>(value * it->second + 0.5);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

DeviceMemory cpu_memory(const std::string& meminfo) {
  std::ifstream in(meminfo);
  if (!in) fail("cannot read {}: memory cannot be checked", meminfo);
  DeviceMemory d{"CPU RAM", 0, 0};
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") d.available = kib * 1024;
    if (key == "MemTotal:") d.total = kib * 1024;
  }
  return d;
}

}  // namespace autoglm::ops
