// A loaded model: spec, architecture hooks and immutable weights. Forward passes are const; the
// caller owns KV caches and scratch (STYLE.md 9), so one Model serves many sequences.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "formats/tensor_store.h"
#include "models/architecture.h"
#include "models/forward_state.h"

namespace autoglm::models {

// How the matmuls of bf16 and f16 weights take their input, the activations.
enum class Activations {
  // bf16 matrices (and f16 ones holding only bf16 values, which load as bf16) round x to bf16
  // where a kernel gains from it (AVX-512 BF16: vdpbf16ps), as the model's own bf16 run does:
  // GLM releases are bf16, and transformers, vLLM and llama.cpp multiply them in bf16. Other f16
  // matrices multiply calls of kernels::kInt16MinTokens tokens or more in 16-bit integers on
  // AVX-512 (kernels::Matrix::x_as_int16: about an f16 run's rounding of x; rounding the weights
  // to bf16 would lose bits), fewer in f32.
  kAuto,
  // Every matmul in f32: an f32 run's logits (the reference fixtures' 1e-4).
  kF32,
  // kAuto, and f16 matrices also round themselves to bf16 in matmuls of 4 tokens or more.
  kBf16,
};

// "auto", "f32", "bf16"; throws Error naming the choices on anything else.
Activations parse_activations(std::string_view text);

struct LoadOptions {
  std::optional<DType> dtype;  // convert weight matrices at load; nullopt keeps the file's types
  Activations activations = Activations::kAuto;
};

class Model {
 public:
  const ModelSpec& spec() const { return spec_; }
  const Architecture& arch() const { return *arch_; }
  const ModelWeights& weights() const { return weights_; }
  const formats::TensorStore& store() const { return store_; }
  // What the weights are stored as after loading, e.g. "q4_0 (converted from f32)".
  const std::string& weight_summary() const { return weight_summary_; }
  size_t weight_bytes() const { return weight_bytes_; }

  // Runs the new tokens of every chunk through the model, appends their K/V to each chunk's cache
  // and writes logits: for each chunk in order, every token's row (all_logits) or the last one's.
  // `logits` is resized to rows x vocab_size.
  void forward(std::span<SequenceChunk> chunks, ForwardScratch& scratch, ThreadPool& pool,
               std::vector<float>& logits) const;

  // Loads config.json + safetensors (a directory or a .safetensors file beside its config.json)
  // or a GGUF file. Throws Error with the reason and the fix.
  static std::unique_ptr<Model> load(const std::filesystem::path& path, const LoadOptions& options,
                                     ThreadPool& pool);

 private:
  friend class ModelLoader;
  ModelSpec spec_;
  const Architecture* arch_ = nullptr;
  formats::TensorStore store_;
  ModelWeights weights_;
  std::vector<LargeBuffer> owned_;  // converted weights
  std::string weight_summary_;
  size_t weight_bytes_ = 0;
};

// Reads the spec of a model without loading weights (config.json or GGUF metadata).
ModelSpec read_spec(const std::filesystem::path& path);
// Spec from an HF config.json object; `source` names it in errors.
ModelSpec spec_from_hf_config(const nlohmann::json& config, const std::string& source);
// Spec from GGUF metadata.
ModelSpec spec_from_gguf(const nlohmann::json& metadata, const std::string& source);

}  // namespace autoglm::models
