// Everything the engine needs to know about a model's shape, from HF config.json or GGUF metadata.
// One struct for every architecture; fields an architecture does not use keep their defaults.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace autoglm::models {

struct ModelSpec {
  std::string arch;  // registry name: chatglm, glm, glm4, glm4_moe, llama
  // Where the decoder's tensors live in an HF checkpoint: "model." for text models,
  // "model.language_model." for the text decoder of glm4v (GLM-4.1V, AutoGLM-Phone).
  std::string hf_prefix = "model.";

  int64_t vocab_size = 0;         // V: embedding and output rows
  int64_t hidden_size = 0;        // H
  int64_t n_layers = 0;           // L (MTP / NextN layers excluded)
  int64_t n_heads = 0;            // nh
  int64_t n_kv_heads = 0;         // nkv
  int64_t head_dim = 0;           // d
  int64_t intermediate_size = 0;  // I of the dense SwiGLU
  int64_t max_positions = 0;

  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int64_t rotary_dims = 0;  // R: a prefix of each head; dims [R, d) pass through
  kernels::RopeStyle rope_style = kernels::RopeStyle::Interleaved;

  bool qkv_bias = false;  // q/k/v projections carry a bias
  bool qk_norm = false;   // per-head RMSNorm on q and k before RoPE (GLM-4.5)
  bool tie_embeddings = false;

  // Mixture of experts (glm4_moe); n_experts == 0 means dense.
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  int64_t n_shared_experts = 0;
  int64_t moe_intermediate_size = 0;
  int64_t first_dense_layers = 0;  // layers [0, first_dense_layers) use the dense MLP
  float routed_scaling_factor = 1.0f;
  bool norm_topk_prob = true;

  std::vector<int32_t> eos_ids;
  int32_t bos_id = -1;
  int32_t pad_id = -1;

  bool is_moe_layer(int64_t layer) const { return n_experts > 0 && layer >= first_dense_layers; }
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Weights of one layer's matrices: attention's q, k, v and o; the dense SwiGLU MLP's gate, up and
  // down; one expert's (MoE).
  int64_t attention_matrix_params() const { return 2 * hidden_size * (q_dim() + kv_dim()); }
  int64_t dense_mlp_params() const { return 3 * hidden_size * intermediate_size; }
  int64_t expert_params() const { return 3 * hidden_size * moe_intermediate_size; }
  // Throws Error when the numbers cannot describe a working model (zero sizes, heads not dividing,
  // rotary dims odd or larger than the head, ...), naming the offending keys.
  void validate(const std::string& source) const;
  std::string describe() const;  // one line for start-up logs
  int64_t parameter_count() const;
};

}  // namespace autoglm::models
