// Helpers the architecture files share: reading the usual config keys, and binding tensors from a
// table of name patterns ("{}" is the layer index, "{e}" the expert index).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "models/model_spec.h"
#include "models/weight_binder.h"
#include "models/weights.h"

namespace autoglm::models {

struct TensorNames {
  std::string embed, final_norm, lm_head;
  // Per layer. An empty pattern means the architecture has no such tensor.
  std::string attn_norm, qkv, q, k, v, q_norm, k_norm, o, post_attn_norm, ffn_norm;
  std::string gate_up, gate, up, down, post_ffn_norm;
  // MoE layers. Experts are either per-expert tensors ("{e}" in the pattern) or merged 3-D
  // tensors [E, rows, cols] (GGUF), told apart by the presence of "{e}".
  std::string router, expert_bias, expert_gate, expert_up, expert_down;
  std::string shared_gate, shared_up, shared_down;
  std::string bias_suffix = ".bias";  // q/k/v biases: "<weight name without .weight>.bias"
};

// The names of HF Llama-style checkpoints under `prefix` (glm, glm4, glm4_moe, llama).
TensorNames hf_llama_style_names(const std::string& prefix);
// llama.cpp's GGUF names (token_embd, blk.N.attn_q, ...).
TensorNames gguf_names();

void bind_with_names(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights,
                     const TensorNames& names);

// Config readers. `hf_require_int` fails with the key name and the file when a key is missing.
int64_t hf_require_int(const nlohmann::json& config, const char* key);
// The keys shared by glm, glm4, glm4_moe and llama configs; partial_rotary_factor defaults to
// `default_partial_rotary` when absent.
void read_hf_common(const nlohmann::json& config, ModelSpec& spec, double default_partial_rotary);
// The keys llama.cpp writes for every architecture ("<arch>.block_count", ...).
void read_gguf_common(const nlohmann::json& meta, const std::string& prefix, ModelSpec& spec);
// eos_token_id as int or list.
void read_eos_ids(const nlohmann::json& value, ModelSpec& spec);

}  // namespace autoglm::models
