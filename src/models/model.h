// A loaded model: spec, architecture hooks and immutable weights. Forward passes are const; the
// caller owns KV caches and scratch (STYLE.md 9), so one Model serves many sequences.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "formats/tensor_store.h"
#include "models/architecture.h"
#include "models/forward_state.h"

namespace autoglm::models {

struct LoadOptions {
  std::optional<DType> dtype;  // convert weight matrices at load; nullopt keeps the file's types
  // bf16 matrices take activations rounded to bf16 where a kernel gains from it (AVX-512 BF16:
  // vdpbf16ps), as a bf16 run of the model does; f16 matrices round themselves to bf16 too, in
  // matmuls of 4 tokens or more. Off, both are multiplied in f32.
  bool bf16_activations = false;
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
