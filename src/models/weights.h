// Bound weights of a decoder. Matrices point into the mapped file (zero-copy) or into buffers the
// Model owns after a load-time dtype conversion; vectors (norms, biases) are always f32.
// Weights are immutable after loading: forward passes take them by const reference.
#pragma once

#include <vector>

#include "kernels/matrix.h"

namespace autoglm::models {

struct Linear {
  kernels::Matrix w;            // [out, in]
  const float* bias = nullptr;  // [out] or null
  bool present() const { return w.data != nullptr; }
};

struct LayerWeights {
  const float* attn_norm = nullptr;       // [H] input_layernorm
  Linear qkv;                             // [(nh + 2 nkv) d, H] fused rows q | k | v (chatglm), or:
  Linear q, k, v;                         // [nh d, H], [nkv d, H], [nkv d, H]
  const float* q_norm = nullptr;          // [d] per-head RMSNorm (GLM-4.5 use_qk_norm)
  const float* k_norm = nullptr;          // [d]
  Linear o;                               // [H, nh d], no bias
  const float* post_attn_norm = nullptr;  // [H] glm4 sandwich: on the attention output
  const float* ffn_norm = nullptr;        // [H] pre-MLP norm (HF post_attention_layernorm)
  Linear gate_up;                         // [2I, H] fused, rows [0, I) gate; or:
  Linear gate, up;                        // [I, H] each
  Linear down;                            // [H, I]
  const float* post_ffn_norm = nullptr;   // [H] glm4 sandwich: on the MLP output

  // Mixture of experts (layers where ModelSpec::is_moe_layer).
  Linear router;                       // [E, H], kept f32: routing is computed in f32
  const float* expert_bias = nullptr;  // [E] e_score_correction_bias, selection only
  std::vector<Linear> expert_gate;     // E x [Im, H]
  std::vector<Linear> expert_up;       // E x [Im, H]
  std::vector<Linear> expert_down;     // E x [H, Im]
  Linear shared_gate, shared_up;       // [Im * n_shared, H]
  Linear shared_down;                  // [H, Im * n_shared]
};

struct ModelWeights {
  kernels::Matrix embed;              // [V, H], rows dequantized on lookup
  std::vector<LayerWeights> layers;   // L
  const float* final_norm = nullptr;  // [H]
  Linear lm_head;                     // [V, H] (the embedding when tied)
};

}  // namespace autoglm::models
