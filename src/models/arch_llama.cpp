// llama: HF LlamaForCausalLM and GGUF arch "llama" (used for the TinyStories end-to-end model).
// Pre-norm, separate gate/up. HF applies half-split RoPE; llama.cpp's converters permute the Q/K
// rows so that GGUF llama uses interleaved pairs (llama2.c checkpoints are interleaved natively).
#include "models/arch_common.h"
#include "models/architecture.h"
#include "models/layers.h"

namespace autoglm::models {
namespace {

void read_hf(const nlohmann::json& c, ModelSpec& spec) {
  read_hf_common(c, spec, 1.0);
  spec.rope_style = kernels::RopeStyle::HalfSplit;
}

void read_gguf(const nlohmann::json& meta, const std::string& prefix, ModelSpec& spec) {
  read_gguf_common(meta, prefix, spec);
  spec.rope_style = kernels::RopeStyle::Interleaved;
}

void bind(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) {
  const TensorNames n = binder.format() == formats::FileFormat::Gguf
                            ? gguf_names()
                            : hf_llama_style_names(spec.hf_prefix);
  bind_with_names(spec, binder, weights, n);
}

}  // namespace

const Architecture& llama_architecture() {
  static const Architecture arch{"llama",   {"llama"}, {"llama"},     read_hf,
                                 read_gguf, bind,      prenorm_layer, "llama"};
  return arch;
}

}  // namespace autoglm::models
