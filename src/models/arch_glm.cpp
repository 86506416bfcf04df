// glm: HF GlmForCausalLM (glm-4-9b-chat-hf, GLM-Edge; GLM_ARCHITECTURES.md B). The math of
// chatglm with HF names: separate q/k/v (bias when attention_bias), fused gate_up_proj,
// interleaved RoPE over partial_rotary_factor of each head (GLM-Edge: 1.0). llama.cpp writes
// these as GGUF arch "chatglm", which loads through that architecture.
#include "models/arch_common.h"
#include "models/architecture.h"
#include "models/layers.h"

namespace autoglm::models {
namespace {

void read_hf(const nlohmann::json& c, ModelSpec& spec) {
  read_hf_common(c, spec, 0.5);
  spec.rope_style = kernels::RopeStyle::Interleaved;
}

void bind(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) {
  TensorNames n = hf_llama_style_names(spec.hf_prefix);
  n.gate_up = spec.hf_prefix + "layers.{}.mlp.gate_up_proj.weight";  // rows [0, I) are the gate
  n.gate.clear();
  n.up.clear();
  bind_with_names(spec, binder, weights, n);
}

}  // namespace

const Architecture& glm_architecture() {
  static const Architecture arch{"glm", {"glm"},       {},       read_hf, nullptr,
                                 bind,  prenorm_layer, "chatglm"};
  return arch;
}

}  // namespace autoglm::models
