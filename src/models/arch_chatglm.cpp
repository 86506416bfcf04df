// chatglm: THUDM's remote-code ChatGLM (glm-4-9b-chat, chatglm3-6b) and llama.cpp's GGUF arch
// "chatglm" (GLM_ARCHITECTURES.md A, I). Pre-norm, fused q|k|v with bias, fused gate|up,
// interleaved RoPE over the first half of each head, theta = 10000 * rope_ratio.
#include "core/error.h"
#include "models/arch_common.h"
#include "models/architecture.h"
#include "models/layers.h"

namespace autoglm::models {
namespace {

int64_t first_int(const nlohmann::json& c, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (c.contains(key) && c[key].is_number_integer()) return c[key].get<int64_t>();
  }
  fail("config.json: missing key '{}', which chatglm configs carry", *keys.begin());
}

void read_hf(const nlohmann::json& c, ModelSpec& spec) {
  if (!c.value("rmsnorm", true) || c.value("apply_residual_connection_post_layernorm", false)) {
    fail(
        "config.json: this chatglm variant (LayerNorm or post-norm residual, ChatGLM-6B v1) is "
        "not supported; GLM-4 and ChatGLM2/3 checkpoints are");
  }
  spec.n_layers = first_int(c, {"num_layers", "num_hidden_layers"});
  spec.hidden_size = first_int(c, {"hidden_size"});
  spec.n_heads = first_int(c, {"num_attention_heads"});
  spec.head_dim = c.value("kv_channels", spec.hidden_size / spec.n_heads);
  spec.n_kv_heads = c.value("multi_query_attention", false)
                        ? first_int(c, {"multi_query_group_num"})
                        : spec.n_heads;
  spec.intermediate_size = first_int(c, {"ffn_hidden_size"});
  spec.vocab_size = first_int(c, {"padded_vocab_size", "vocab_size"});
  spec.rms_eps = c.value("layernorm_epsilon", 1e-5f);
  spec.rope_theta = 10000.0f * c.value("rope_ratio", 1.0f);
  spec.rotary_dims = spec.head_dim / 2;  // the remote code builds its rotary module on d/2 dims
  spec.rope_style = kernels::RopeStyle::Interleaved;
  spec.max_positions = c.value("seq_length", int64_t{8192});
  spec.qkv_bias = c.value("add_qkv_bias", false);
  if (c.value("add_bias_linear", false)) {
    fail("config.json: add_bias_linear = true (biases on every linear layer) is not supported");
  }
  spec.tie_embeddings = c.value("tie_word_embeddings", false);
  if (c.contains("eos_token_id")) read_eos_ids(c["eos_token_id"], spec);
  if (c.contains("pad_token_id") && c["pad_token_id"].is_number_integer())
    spec.pad_id = c["pad_token_id"];
}

void read_gguf(const nlohmann::json& meta, const std::string& prefix, ModelSpec& spec) {
  read_gguf_common(meta, prefix, spec);
  spec.rope_style = kernels::RopeStyle::Interleaved;
}

void bind(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) {
  if (binder.format() == formats::FileFormat::Gguf) {
    TensorNames n = gguf_names();
    n.gate_up = n.up;  // ffn_up holds gate|up (2I rows), gate first
    n.gate.clear();
    n.up.clear();
    bind_with_names(spec, binder, weights, n);
    return;
  }
  TensorNames n;
  const std::string layer = "transformer.encoder.layers.{}.";
  n.embed = "transformer.embedding.word_embeddings.weight";
  n.final_norm = "transformer.encoder.final_layernorm.weight";
  n.lm_head = "transformer.output_layer.weight";
  n.attn_norm = layer + "input_layernorm.weight";
  n.qkv = layer + "self_attention.query_key_value.weight";
  n.o = layer + "self_attention.dense.weight";
  n.ffn_norm = layer + "post_attention_layernorm.weight";
  n.gate_up = layer + "mlp.dense_h_to_4h.weight";
  n.down = layer + "mlp.dense_4h_to_h.weight";
  bind_with_names(spec, binder, weights, n);
}

}  // namespace

const Architecture& chatglm_architecture() {
  static const Architecture arch{"chatglm", {"chatglm"}, {"chatglm"},   read_hf,
                                 read_gguf, bind,        prenorm_layer, "chatglm"};
  return arch;
}

}  // namespace autoglm::models
