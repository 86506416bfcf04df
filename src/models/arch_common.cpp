#include "models/arch_common.h"

#include <cmath>

#include "core/error.h"

namespace autoglm::models {
namespace {

std::string layer_name(const std::string& pattern, int64_t layer, int64_t expert = -1) {
  std::string s = pattern;
  if (auto p = s.find("{e}"); p != std::string::npos) s.replace(p, 3, std::to_string(expert));
  if (auto p = s.find("{}"); p != std::string::npos) s.replace(p, 2, std::to_string(layer));
  return s;
}

std::string bias_name(const std::string& weight_name, const std::string& suffix) {
  const std::string w = ".weight";
  if (weight_name.size() > w.size() &&
      weight_name.compare(weight_name.size() - w.size(), w.size(), w) == 0) {
    return weight_name.substr(0, weight_name.size() - w.size()) + suffix;
  }
  return weight_name + suffix;
}

Linear bind_linear(WeightBinder& b, const std::string& name, int64_t rows, int64_t cols,
                   bool with_bias, const std::string& bias_suffix,
                   Convert convert = Convert::Allowed) {
  Linear l;
  l.w = b.matrix(name, rows, cols, convert);
  if (with_bias) l.bias = b.vector(bias_name(name, bias_suffix), rows);
  return l;
}

void bind_attention(const ModelSpec& spec, WeightBinder& b, LayerWeights& w, const TensorNames& n,
                    int64_t l) {
  const int64_t H = spec.hidden_size;
  const std::string fused = n.qkv.empty() ? "" : layer_name(n.qkv, l);
  // Fused q|k|v when the architecture only has it, or when the file has it (GGUF chatglm from the
  // remote code); otherwise separate projections (the canonical form a synthetic file uses).
  if (!fused.empty() && (n.q.empty() || b.has(fused))) {
    w.qkv =
        bind_linear(b, fused, spec.q_dim() + 2 * spec.kv_dim(), H, spec.qkv_bias, n.bias_suffix);
  } else {
    w.q = bind_linear(b, layer_name(n.q, l), spec.q_dim(), H, spec.qkv_bias, n.bias_suffix);
    w.k = bind_linear(b, layer_name(n.k, l), spec.kv_dim(), H, spec.qkv_bias, n.bias_suffix);
    w.v = bind_linear(b, layer_name(n.v, l), spec.kv_dim(), H, spec.qkv_bias, n.bias_suffix);
  }
  if (spec.qk_norm) {
    w.q_norm = b.vector(layer_name(n.q_norm, l), spec.head_dim);
    w.k_norm = b.vector(layer_name(n.k_norm, l), spec.head_dim);
  }
  w.o.w = b.matrix(layer_name(n.o, l), H, spec.q_dim());
}

void bind_dense_mlp(const ModelSpec& spec, WeightBinder& b, LayerWeights& w, const TensorNames& n,
                    int64_t l) {
  const int64_t H = spec.hidden_size, I = spec.intermediate_size;
  if (!n.gate_up.empty()) {
    w.gate_up.w = b.matrix(layer_name(n.gate_up, l), 2 * I, H);
  } else {
    w.gate.w = b.matrix(layer_name(n.gate, l), I, H);
    w.up.w = b.matrix(layer_name(n.up, l), I, H);
  }
  w.down.w = b.matrix(layer_name(n.down, l), H, I);
}

kernels::Matrix bind_expert(WeightBinder& b, const std::string& pattern, int64_t l, int64_t e,
                            int64_t n_experts, int64_t rows, int64_t cols) {
  if (pattern.find("{e}") != std::string::npos)
    return b.matrix(layer_name(pattern, l, e), rows, cols);
  return b.matrix_slice(layer_name(pattern, l), n_experts, e, rows, cols);
}

void bind_moe(const ModelSpec& spec, WeightBinder& b, LayerWeights& w, const TensorNames& n,
              int64_t l) {
  const int64_t H = spec.hidden_size, E = spec.n_experts, Im = spec.moe_intermediate_size;
  w.router.w = b.matrix(layer_name(n.router, l), E, H, Convert::KeepF32);
  w.expert_bias = b.optional_vector(layer_name(n.expert_bias, l), E);
  for (int64_t e = 0; e < E; ++e) {
    w.expert_gate.push_back({bind_expert(b, n.expert_gate, l, e, E, Im, H), nullptr});
    w.expert_up.push_back({bind_expert(b, n.expert_up, l, e, E, Im, H), nullptr});
    w.expert_down.push_back({bind_expert(b, n.expert_down, l, e, E, H, Im), nullptr});
  }
  const int64_t shared = Im * spec.n_shared_experts;
  w.shared_gate.w = b.matrix(layer_name(n.shared_gate, l), shared, H);
  w.shared_up.w = b.matrix(layer_name(n.shared_up, l), shared, H);
  w.shared_down.w = b.matrix(layer_name(n.shared_down, l), H, shared);
}

}  // namespace

TensorNames hf_llama_style_names(const std::string& prefix) {
  TensorNames n;
  const std::string layer = prefix + "layers.{}.";
  n.embed = prefix + "embed_tokens.weight";
  n.final_norm = prefix + "norm.weight";
  n.lm_head = "lm_head.weight";
  n.attn_norm = layer + "input_layernorm.weight";
  n.q = layer + "self_attn.q_proj.weight";
  n.k = layer + "self_attn.k_proj.weight";
  n.v = layer + "self_attn.v_proj.weight";
  n.q_norm = layer + "self_attn.q_norm.weight";
  n.k_norm = layer + "self_attn.k_norm.weight";
  n.o = layer + "self_attn.o_proj.weight";
  n.ffn_norm = layer + "post_attention_layernorm.weight";
  n.gate = layer + "mlp.gate_proj.weight";
  n.up = layer + "mlp.up_proj.weight";
  n.down = layer + "mlp.down_proj.weight";
  n.router = layer + "mlp.gate.weight";
  n.expert_bias = layer + "mlp.gate.e_score_correction_bias";
  n.expert_gate = layer + "mlp.experts.{e}.gate_proj.weight";
  n.expert_up = layer + "mlp.experts.{e}.up_proj.weight";
  n.expert_down = layer + "mlp.experts.{e}.down_proj.weight";
  n.shared_gate = layer + "mlp.shared_experts.gate_proj.weight";
  n.shared_up = layer + "mlp.shared_experts.up_proj.weight";
  n.shared_down = layer + "mlp.shared_experts.down_proj.weight";
  return n;
}

TensorNames gguf_names() {
  TensorNames n;
  n.embed = "token_embd.weight";
  n.final_norm = "output_norm.weight";
  n.lm_head = "output.weight";
  n.attn_norm = "blk.{}.attn_norm.weight";
  n.qkv = "blk.{}.attn_qkv.weight";
  n.q = "blk.{}.attn_q.weight";
  n.k = "blk.{}.attn_k.weight";
  n.v = "blk.{}.attn_v.weight";
  n.q_norm = "blk.{}.attn_q_norm.weight";
  n.k_norm = "blk.{}.attn_k_norm.weight";
  n.o = "blk.{}.attn_output.weight";
  n.ffn_norm = "blk.{}.ffn_norm.weight";
  n.gate = "blk.{}.ffn_gate.weight";
  n.up = "blk.{}.ffn_up.weight";
  n.down = "blk.{}.ffn_down.weight";
  n.router = "blk.{}.ffn_gate_inp.weight";
  n.expert_bias = "blk.{}.exp_probs_b.bias";
  n.expert_gate = "blk.{}.ffn_gate_exps.weight";
  n.expert_up = "blk.{}.ffn_up_exps.weight";
  n.expert_down = "blk.{}.ffn_down_exps.weight";
  n.shared_gate = "blk.{}.ffn_gate_shexp.weight";
  n.shared_up = "blk.{}.ffn_up_shexp.weight";
  n.shared_down = "blk.{}.ffn_down_shexp.weight";
  return n;
}

void bind_with_names(const ModelSpec& spec, WeightBinder& b, ModelWeights& weights,
                     const TensorNames& n) {
  const int64_t H = spec.hidden_size, V = spec.vocab_size;
  weights.embed = b.matrix(n.embed, V, H);
  weights.layers.resize(static_cast<size_t>(spec.n_layers));
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    LayerWeights& w = weights.layers[static_cast<size_t>(l)];
    w.attn_norm = b.vector(layer_name(n.attn_norm, l), H);
    bind_attention(spec, b, w, n, l);
    if (!n.post_attn_norm.empty()) w.post_attn_norm = b.vector(layer_name(n.post_attn_norm, l), H);
    w.ffn_norm = b.vector(layer_name(n.ffn_norm, l), H);
    if (spec.is_moe_layer(l)) {
      bind_moe(spec, b, w, n, l);
    } else {
      bind_dense_mlp(spec, b, w, n, l);
    }
    if (!n.post_ffn_norm.empty()) w.post_ffn_norm = b.vector(layer_name(n.post_ffn_norm, l), H);
  }
  weights.final_norm = b.vector(n.final_norm, H);
  if (spec.tie_embeddings && !b.has(n.lm_head)) {
    weights.lm_head.w = weights.embed;
  } else {
    weights.lm_head.w = b.matrix(n.lm_head, V, H);
  }
}

int64_t hf_require_int(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_number_integer()) {
    fail("config.json: missing or non-integer key '{}', which this architecture needs", key);
  }
  return it->get<int64_t>();
}

void read_eos_ids(const nlohmann::json& value, ModelSpec& spec) {
  spec.eos_ids.clear();
  if (value.is_number_integer()) spec.eos_ids.push_back(value.get<int32_t>());
  if (value.is_array()) {
    for (const auto& v : value) {
      if (v.is_number_integer()) spec.eos_ids.push_back(v.get<int32_t>());
    }
  }
}

void read_hf_common(const nlohmann::json& c, ModelSpec& spec, double default_partial_rotary) {
  spec.vocab_size = hf_require_int(c, "vocab_size");
  spec.hidden_size = hf_require_int(c, "hidden_size");
  spec.n_layers = hf_require_int(c, "num_hidden_layers");
  spec.n_heads = hf_require_int(c, "num_attention_heads");
  spec.n_kv_heads = c.value("num_key_value_heads", spec.n_heads);
  spec.head_dim = c.contains("head_dim") && c["head_dim"].is_number_integer()
                      ? c["head_dim"].get<int64_t>()
                      : (spec.n_heads > 0 ? spec.hidden_size / spec.n_heads : 0);
  spec.intermediate_size = c.value("intermediate_size", int64_t{0});
  spec.max_positions = c.value("max_position_embeddings", int64_t{4096});
  spec.rms_eps = c.value("rms_norm_eps", 1e-5f);
  spec.rope_theta = c.value("rope_theta", 10000.0f);
  const double partial = c.value("partial_rotary_factor", default_partial_rotary);
  spec.rotary_dims =
      static_cast<int64_t>(std::llround(static_cast<double>(spec.head_dim) * partial));
  spec.qkv_bias = c.value("attention_bias", false);
  spec.tie_embeddings = c.value("tie_word_embeddings", false);
  if (c.contains("eos_token_id")) read_eos_ids(c["eos_token_id"], spec);
  if (c.contains("bos_token_id") && c["bos_token_id"].is_number_integer())
    spec.bos_id = c["bos_token_id"];
  if (c.contains("pad_token_id") && c["pad_token_id"].is_number_integer())
    spec.pad_id = c["pad_token_id"];
  if (c.contains("rope_scaling") && c["rope_scaling"].is_object()) {
    const auto& rs = c["rope_scaling"];
    const std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
    if (type != "default") {
      fail("config.json: rope_scaling type '{}' is not supported yet (only the default RoPE)",
           type);
    }
  }
}

void read_gguf_common(const nlohmann::json& m, const std::string& prefix, ModelSpec& spec) {
  auto require = [&](const std::string& key) -> int64_t {
    auto it = m.find(prefix + key);
    if (it == m.end() || !it->is_number_integer()) {
      fail("GGUF metadata: missing integer key '{}{}'", prefix, key);
    }
    return it->get<int64_t>();
  };
  spec.n_layers = require("block_count");
  spec.hidden_size = require("embedding_length");
  spec.intermediate_size = m.value(prefix + "feed_forward_length", int64_t{0});
  spec.n_heads = require("attention.head_count");
  spec.n_kv_heads = m.value(prefix + "attention.head_count_kv", spec.n_heads);
  spec.head_dim = m.value(prefix + "attention.key_length", spec.hidden_size / spec.n_heads);
  spec.rotary_dims = m.value(prefix + "rope.dimension_count", spec.head_dim);
  spec.rope_theta = m.value(prefix + "rope.freq_base", 10000.0f);
  spec.rms_eps = m.value(prefix + "attention.layer_norm_rms_epsilon", 1e-5f);
  spec.max_positions = m.value(prefix + "context_length", int64_t{4096});
  if (m.contains("tokenizer.ggml.tokens") && m["tokenizer.ggml.tokens"].is_array()) {
    spec.vocab_size = static_cast<int64_t>(m["tokenizer.ggml.tokens"].size());
  }
  spec.vocab_size = m.value(prefix + "vocab_size", spec.vocab_size);
  if (m.contains("tokenizer.ggml.eos_token_id"))
    read_eos_ids(m["tokenizer.ggml.eos_token_id"], spec);
  if (m.contains("tokenizer.ggml.eot_token_id") &&
      m["tokenizer.ggml.eot_token_id"].is_number_integer()) {
    spec.eos_ids.push_back(m["tokenizer.ggml.eot_token_id"].get<int32_t>());
  }
  if (m.contains("tokenizer.ggml.bos_token_id") &&
      m["tokenizer.ggml.bos_token_id"].is_number_integer()) {
    spec.bos_id = m["tokenizer.ggml.bos_token_id"].get<int32_t>();
  }
}

}  // namespace autoglm::models
