// The building blocks shared by every architecture (GLM_ARCHITECTURES.md section 0). Each reads
// like its equation; architectures compose them in their forward_layer hook.
#pragma once

#include <cstdint>

#include "models/forward_state.h"
#include "models/weights.h"

namespace autoglm::models {

// y[t] = RMSNorm(x[t]) ⊙ w for each of n_rows rows of width n (y may equal x).
void rms_norm_rows(ForwardState& st, const float* x, const float* w, int64_t n_rows, int64_t n,
                   float* y);

// y[T, out] = x[T, in] · Wᵀ (+ bias), rows split over the pool.
void linear(ForwardState& st, const Linear& l, const float* x, int64_t n_tokens, float* y);

// out[T, H] = o_proj(Attention(RoPE(q), RoPE(k), v)) of the normalized input `in` [T, H].
// Appends this layer's K/V of every token to its sequence's cache.
void attention_block(ForwardState& st, const LayerWeights& w, int64_t layer, const float* in,
                     float* out);

// out[T, H] = down(silu(gate(in)) ⊙ up(in)) with fused or separate gate/up.
void dense_mlp_block(ForwardState& st, const LayerWeights& w, const float* in, float* out);

// out[T, H] = Σ_k weight_k · expert_k(in) + shared_expert(in)  (GLM-4.5 MoE, E.3).
void moe_block(ForwardState& st, const LayerWeights& w, const float* in, float* out);

// x[T, H] += y[T, H]
void add_rows(ForwardState& st, float* x, const float* y);

}  // namespace autoglm::models
