// glm4: HF Glm4ForCausalLM (GLM-4-9B-0414, GLM-Z1) and the text decoder of Glm4v (GLM-4.1V,
// AutoGLM-Phone-9B); GGUF arch "glm4" (GLM_ARCHITECTURES.md C, D.6, I). Sandwich norms: the
// attention and MLP outputs are normalised again before the residual add.
#include "models/arch_common.h"
#include "models/architecture.h"
#include "models/layers.h"

namespace autoglm::models {
namespace {

void read_hf(const nlohmann::json& config, ModelSpec& spec) {
  // glm4v keeps the decoder's keys under text_config and its tensors under model.language_model.
  // Text-only prompts give M-RoPE identical positions on all three axes, i.e. ordinary RoPE.
  const bool multimodal = config.contains("text_config");
  const nlohmann::json& c = multimodal ? config["text_config"] : config;
  read_hf_common(c, spec, 0.5);
  if (multimodal) {
    spec.hf_prefix = "model.language_model.";
    spec.tie_embeddings = config.value("tie_word_embeddings", spec.tie_embeddings);
    if (spec.eos_ids.empty() && config.contains("eos_token_id"))
      read_eos_ids(config["eos_token_id"], spec);
  }
  spec.rope_style = kernels::RopeStyle::Interleaved;
}

void read_gguf(const nlohmann::json& meta, const std::string& prefix, ModelSpec& spec) {
  read_gguf_common(meta, prefix, spec);
  // GLM-4.1V GGUFs carry M-RoPE sections and Q/K rows permuted to half-split order (I).
  spec.rope_style = meta.contains(prefix + "rope.dimension_sections")
                        ? kernels::RopeStyle::HalfSplit
                        : kernels::RopeStyle::Interleaved;
}

void bind(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) {
  TensorNames n;
  if (binder.format() == formats::FileFormat::Gguf) {
    n = gguf_names();
    n.gate_up = n.up;  // fused gate|up, gate first
    n.post_attn_norm = "blk.{}.post_attention_norm.weight";
    n.post_ffn_norm = "blk.{}.post_ffw_norm.weight";
  } else {
    n = hf_llama_style_names(spec.hf_prefix);
    const std::string layer = spec.hf_prefix + "layers.{}.";
    n.gate_up = layer + "mlp.gate_up_proj.weight";
    n.post_attn_norm = layer + "post_self_attn_layernorm.weight";
    n.post_ffn_norm = layer + "post_mlp_layernorm.weight";
  }
  n.gate.clear();
  n.up.clear();
  bind_with_names(spec, binder, weights, n);
}

}  // namespace

const Architecture& glm4_architecture() {
  static const Architecture arch{"glm4", {"glm4", "glm4v"}, {"glm4"}, read_hf, read_gguf,
                                 bind,   sandwich_layer,    "glm4"};
  return arch;
}

}  // namespace autoglm::models
