// glm4_moe: HF Glm4MoeForCausalLM (GLM-4.5, GLM-4.5-Air, GLM-4.6) and GGUF arch "glm4moe"
// (GLM_ARCHITECTURES.md E, I). Pre-norm; the first layers dense, the rest sigmoid-routed MoE with
// a shared expert; half-split (NeoX) RoPE; optional per-head q/k RMSNorm. The MTP layer is skipped.
#include "core/error.h"
#include "models/arch_common.h"
#include "models/architecture.h"
#include "models/layers.h"

namespace autoglm::models {
namespace {

void read_hf(const nlohmann::json& c, ModelSpec& spec) {
  read_hf_common(c, spec, 0.5);
  spec.rope_style = kernels::RopeStyle::HalfSplit;
  spec.n_experts = hf_require_int(c, "n_routed_experts");
  spec.n_experts_used = hf_require_int(c, "num_experts_per_tok");
  spec.n_shared_experts = c.value("n_shared_experts", int64_t{1});
  spec.moe_intermediate_size = hf_require_int(c, "moe_intermediate_size");
  spec.first_dense_layers = c.value("first_k_dense_replace", int64_t{0});
  spec.routed_scaling_factor = c.value("routed_scaling_factor", 1.0f);
  spec.norm_topk_prob = c.value("norm_topk_prob", true);
  spec.qk_norm = c.value("use_qk_norm", false);
  if (c.value("n_group", 1) != 1 || c.value("topk_group", 1) != 1) {
    fail(
        "config.json: group-limited expert routing (n_group {} / topk_group {}) is not supported; "
        "every released GLM-4.5 config uses 1 / 1",
        c.value("n_group", 1), c.value("topk_group", 1));
  }
}

void read_gguf(const nlohmann::json& m, const std::string& prefix, ModelSpec& spec) {
  read_gguf_common(m, prefix, spec);
  spec.rope_style = kernels::RopeStyle::HalfSplit;
  // llama.cpp counts the NextN/MTP layers in block_count; they are not run here.
  spec.n_layers -= m.value(prefix + "nextn_predict_layers", int64_t{0});
  spec.n_experts = m.value(prefix + "expert_count", int64_t{0});
  spec.n_experts_used = m.value(prefix + "expert_used_count", int64_t{0});
  spec.n_shared_experts = m.value(prefix + "expert_shared_count", int64_t{1});
  spec.moe_intermediate_size = m.value(prefix + "expert_feed_forward_length", int64_t{0});
  spec.first_dense_layers = m.value(prefix + "leading_dense_block_count", int64_t{0});
  spec.routed_scaling_factor = m.value(prefix + "expert_weights_scale", 1.0f);
  spec.norm_topk_prob = m.value(prefix + "expert_weights_norm", true);
}

void bind(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) {
  if (binder.format() == formats::FileFormat::Gguf) {
    TensorNames n = gguf_names();
    n.ffn_norm = "blk.{}.post_attention_norm.weight";  // in glm4moe this is the pre-FFN norm
    bind_with_names(spec, binder, weights, n);
    return;
  }
  bind_with_names(spec, binder, weights, hf_llama_style_names(spec.hf_prefix));
}

}  // namespace

const Architecture& glm4_moe_architecture() {
  static const Architecture arch{"glm4_moe", {"glm4_moe"}, {"glm4moe"},   read_hf,
                                 read_gguf,  bind,         prenorm_layer, "glm4moe"};
  return arch;
}

}  // namespace autoglm::models
