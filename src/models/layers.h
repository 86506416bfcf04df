// The two decoder-layer shapes of the GLM family. Architectures point their forward_layer hook at
// one of these.
#pragma once

#include "models/forward_state.h"
#include "models/weights.h"

namespace autoglm::models {

// Pre-norm (chatglm, glm, llama, glm4_moe; A.5, E.1):
//   h1 = h + Attn(RMSNorm_in(h));  h2 = h1 + FFN(RMSNorm_ffn(h1))  (FFN dense or MoE by layer)
void prenorm_layer(ForwardState& st, const LayerWeights& w, int64_t layer);

// Sandwich norm (glm4, glm4v text; C.2):
//   h1 = h + RMSNorm_postSA(Attn(RMSNorm_in(h)));  h2 = h1 + RMSNorm_postMLP(MLP(RMSNorm_ffn(h1)))
void sandwich_layer(ForwardState& st, const LayerWeights& w, int64_t layer);

}  // namespace autoglm::models
