#include "models/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "kernels/kernels.h"

namespace autoglm::models {
namespace {

float* grow(std::vector<float>& buffer, int64_t n) {
  if (static_cast<int64_t>(buffer.size()) < n) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// Row-wise element work (norms, silu · up, residual adds, q/k/v copies, RoPE, KV stores) split over
// the pool when a prompt brings enough of it: single-threaded, it kept the other threads waiting
// (silu · up alone, one 512-token prompt of the benchmark shape: ~2 ms a layer on one thread).
// Chunks carry at least 16K elements, so decode's single rows stay on the calling thread while a
// 16-sequence step's rows (16 x 2048) split: the other thread otherwise waited through them, and
// read its own half of the matmul outputs back from the calling thread's core afterwards. With
// 64K (no split below 32 rows), the benchmark model, 2 threads, alternated with 16K for these and
// quantize_once: 16-sequence steps q4_0 237 -> 258, 247 -> 258, 243 -> 259, 218 -> 252 tokens/s
// (and one pair across a change of the host's speed, 252 -> 214), q8_0 184 -> 194, 175 -> 188,
// f16 90.5 -> 94.9, 89.8 -> 93.3; q4_0 prefill 512 (smaller chunks of its row-wise steps) 274 ->
// 282, 285 -> 304, 272 -> 284. Each row's result does not depend on the split.
void for_row_chunks(ForwardState& st, int64_t n_rows, int64_t row_elems,
                    const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kMinChunkElems = 16 * 1024;
  const int64_t grain = std::max<int64_t>(1, kMinChunkElems / std::max<int64_t>(1, row_elems));
  st.pool.parallel_for(n_rows, fn, grain);
}

// Splits fused q|k|v rows (A.3: blocked, not per-head interleaved) into q, k, v.
void split_qkv(ForwardState& st, const float* qkv, int64_t q_dim, int64_t kv_dim, float* q,
               float* k, float* v) {
  const int64_t width = q_dim + 2 * kv_dim;
  for_row_chunks(st, st.n_tokens, width, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* row = qkv + t * width;
      std::memcpy(q + t * q_dim, row, sizeof(float) * static_cast<size_t>(q_dim));
      std::memcpy(k + t * kv_dim, row + q_dim, sizeof(float) * static_cast<size_t>(kv_dim));
      std::memcpy(v + t * kv_dim, row + q_dim + kv_dim,
                  sizeof(float) * static_cast<size_t>(kv_dim));
    }
  });
}

// q, k and v of the step's tokens, into the buffers q, k and v point at; or, for one token of a
// fused q|k|v matrix, where the matmul wrote them: one token's q, k and v lie one after the other
// there already, and copying them out wrote lines the weight stream had evicted on the calling
// thread while the other threads waited.
void project_qkv(ForwardState& st, const LayerWeights& w, const float* in, float*& q, float*& k,
                 float*& v) {
  const ModelSpec& spec = st.spec;
  const int64_t T = st.n_tokens;
  if (w.qkv.present()) {
    float* fused = grow(st.s.ffn_a, T * (spec.q_dim() + 2 * spec.kv_dim()));
    linear(st, w.qkv, in, T, fused);
    if (T == 1) {
      q = fused, k = fused + spec.q_dim(), v = k + spec.kv_dim();
      return;
    }
    split_qkv(st, fused, spec.q_dim(), spec.kv_dim(), q, k, v);
    return;
  }
  linear(st, w.q, in, T, q);
  linear(st, w.k, in, T, k);
  linear(st, w.v, in, T, v);
}

// Per-head RMSNorm of q and k (GLM-4.5 use_qk_norm), before RoPE.
void qk_norm(ForwardState& st, const LayerWeights& w, float* q, float* k) {
  if (!w.q_norm) return;
  const ModelSpec& spec = st.spec;
  rms_norm_rows(st, q, w.q_norm, st.n_tokens * spec.n_heads, spec.head_dim, q);
  rms_norm_rows(st, k, w.k_norm, st.n_tokens * spec.n_kv_heads, spec.head_dim, k);
}

void apply_rope(ForwardState& st, float* q, float* k) {
  const ModelSpec& spec = st.spec;
  const auto& kt = kernels::active();
  const int64_t half = spec.rotary_dims / 2;
  for_row_chunks(st, st.n_tokens, spec.q_dim() + spec.kv_dim(), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* cos = st.s.rope_cos.data() + t * half;
      const float* sin = st.s.rope_sin.data() + t * half;
      kt.rope(q + t * spec.q_dim(), static_cast<int>(spec.n_heads), static_cast<int>(spec.head_dim),
              static_cast<int>(spec.rotary_dims), cos, sin, spec.rope_style);
      kt.rope(k + t * spec.kv_dim(), static_cast<int>(spec.n_kv_heads),
              static_cast<int>(spec.head_dim), static_cast<int>(spec.rotary_dims), cos, sin,
              spec.rope_style);
    }
  });
}

// The new tokens' K and V rows into each sequence's cache, one KV head at a time (the cache keeps
// each head's keys and values together), in the cache's type (kernels::store_kv_head). A sequence
// with one new token (decode) leaves its store to the attention kernel instead
// (AttentionArgs::new_k), where the thread that reads each KV head's rows writes them first: here,
// on the calling thread alone, the store met the lines of both heads' blocks cold, one after
// another (the benchmark model's q4_0 decode, 2 threads: 2.3-6.3 us a layer).
bool kernel_stores_kv(const SequenceChunk& seq) {
  return seq.tokens.size() == 1;
}

void store_kv(ForwardState& st, int64_t layer, const float* k, const float* v) {
  const int64_t kv_dim = st.spec.kv_dim();
  const int64_t d = st.spec.head_dim;
  for (size_t s = 0; s < st.seqs.size(); ++s) {
    if (kernel_stores_kv(st.seqs[s])) continue;
    KvCache& cache = *st.seqs[s].cache;
    const int64_t n = static_cast<int64_t>(st.seqs[s].tokens.size());
    const int64_t first = st.seq_first[s];
    for_row_chunks(st, n, 2 * kv_dim, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t pos = cache.size() + i;
        for (int64_t h = 0; h < st.spec.n_kv_heads; ++h) {
          const int64_t src = (first + i) * kv_dim + h * d;
          kernels::store_kv_head(cache.kv_type(), k + src, v + src, d,
                                 cache.k_column(layer, pos, h), cache.k_stride(),
                                 cache.v_row(layer, pos, h));
        }
      }
    });
  }
}

// out[n, H] = down(silu(gate(in)) ⊙ up(in)) with separate gate and up matrices.
void swiglu(ForwardState& st, const Linear& gate_w, const Linear& up_w, const Linear& down_w,
            const float* in, int64_t n, float* out) {
  const int64_t width = gate_w.w.rows;
  float* gate = grow(st.s.ffn_a, n * width);
  float* up = grow(st.s.ffn_b, n * width);
  linear(st, gate_w, in, n, gate);
  linear(st, up_w, in, n, up);
  for_row_chunks(st, n, width, [&](int64_t r0, int64_t r1) {
    kernels::active().silu_mul(gate + r0 * width, up + r0 * width, gate + r0 * width,
                               (r1 - r0) * width);
  });
  linear(st, down_w, gate, n, out);
}

}  // namespace

void rms_norm_rows(ForwardState& st, const float* x, const float* w, int64_t n_rows, int64_t n,
                   float* y) {
  const auto& kt = kernels::active();
  const float eps = st.spec.rms_eps;
  for_row_chunks(st, n_rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) kt.rms_norm(x + r * n, w, n, eps, y + r * n);
  });
}

void linear(ForwardState& st, const Linear& l, const float* x, int64_t n_tokens, float* y) {
  kernels::matmul(l.w, x, n_tokens, y, st.pool, l.bias);
}

void attention_block(ForwardState& st, const LayerWeights& w, int64_t layer, const float* in,
                     float* out) {
  const ModelSpec& spec = st.spec;
  const int64_t T = st.n_tokens;
  float* q = grow(st.s.q, T * spec.q_dim());
  float* k = grow(st.s.k, T * spec.kv_dim());
  float* v = grow(st.s.v, T * spec.kv_dim());
  project_qkv(st, w, in, q, k, v);
  qk_norm(st, w, q, k);
  apply_rope(st, q, k);
  store_kv(st, layer, k, v);

  float* attn = grow(st.s.attn, T * spec.q_dim());
  // Every sequence in one call: a step of many sequences waits once for the threads, not once per
  // sequence.
  const size_t n_seqs = st.seqs.size();
  if (st.s.k_blocks.size() < n_seqs) {
    st.s.k_blocks.resize(n_seqs);
    st.s.v_blocks.resize(n_seqs);
  }
  st.s.attention.clear();
  for (size_t s = 0; s < n_seqs; ++s) {
    KvCache& cache = *st.seqs[s].cache;
    const int64_t first = st.seq_first[s];
    kernels::AttentionArgs args;
    args.q = q + first * spec.q_dim();
    args.out = attn + first * spec.q_dim();
    cache.layer_blocks(layer, st.s.k_blocks[s], st.s.v_blocks[s]);
    args.kv_type = cache.kv_type();
    args.k_blocks = st.s.k_blocks[s].data();
    args.v_blocks = st.s.v_blocks[s].data();
    args.block_size = cache.block_size();
    args.kv_head_stride = cache.kv_head_stride();
    args.n_q = static_cast<int64_t>(st.seqs[s].tokens.size());
    args.q_pos0 = cache.size();
    args.n_heads = static_cast<int>(spec.n_heads);
    args.n_kv_heads = static_cast<int>(spec.n_kv_heads);
    args.head_dim = static_cast<int>(spec.head_dim);
    args.scale = 1.0f / std::sqrt(static_cast<float>(spec.head_dim));
    if (kernel_stores_kv(st.seqs[s])) {
      args.new_k = k + first * spec.kv_dim();
      args.new_v = v + first * spec.kv_dim();
      args.k_store = cache.k_column(layer, cache.size(), 0);
      args.v_store = cache.v_row(layer, cache.size(), 0);
    }
    st.s.attention.push_back(args);
  }
  kernels::attention(std::span<const kernels::AttentionArgs>(st.s.attention), st.pool);
  linear(st, w.o, attn, T, out);
}

void dense_mlp_block(ForwardState& st, const LayerWeights& w, const float* in, float* out) {
  const int64_t T = st.n_tokens;
  const auto& kt = kernels::active();
  if (w.gate_up.present()) {
    const int64_t inter = w.gate_up.w.rows / 2;
    float* gate_up = grow(st.s.ffn_a, T * 2 * inter);
    float* act = grow(st.s.ffn_b, T * inter);
    linear(st, w.gate_up, in, T, gate_up);
    for_row_chunks(st, T, inter, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* row = gate_up + t * 2 * inter;  // rows [0, I) are the gate (HF chunk(2))
        kt.silu_mul(row, row + inter, act + t * inter, inter);
      }
    });
    linear(st, w.down, act, T, out);
    return;
  }
  swiglu(st, w.gate, w.up, w.down, in, T, out);
}

void moe_block(ForwardState& st, const LayerWeights& w, const float* in, float* out) {
  const ModelSpec& spec = st.spec;
  const int64_t T = st.n_tokens;
  const int64_t H = spec.hidden_size;
  const int64_t E = spec.n_experts;
  const int64_t K = spec.n_experts_used;
  const auto& kt = kernels::active();

  // Shared expert, always active and unweighted.
  swiglu(st, w.shared_gate, w.shared_up, w.shared_down, in, T, out);

  float* logits = grow(st.s.router, T * E);
  linear(st, w.router, in, T, logits);
  std::vector<int> ids(static_cast<size_t>(T * K));
  std::vector<float> weights(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t) {
    kernels::moe_route(logits + t * E, static_cast<int>(E), static_cast<int>(K), w.expert_bias,
                       spec.norm_topk_prob, spec.routed_scaling_factor, ids.data() + t * K,
                       weights.data() + t * K);
  }

  // Group tokens by expert so each expert's weights are read once per step.
  float* gathered = grow(st.s.moe_in, T * H);
  float* expert_out = grow(st.s.moe_out, T * H);
  std::vector<int64_t> rows;
  std::vector<float> row_weights;
  for (int64_t e = 0; e < E; ++e) {
    rows.clear();
    row_weights.clear();
    for (int64_t i = 0; i < T * K; ++i) {
      if (ids[static_cast<size_t>(i)] != e) continue;
      rows.push_back(i / K);
      row_weights.push_back(weights[static_cast<size_t>(i)]);
    }
    if (rows.empty()) continue;
    const auto n = static_cast<int64_t>(rows.size());
    for (int64_t r = 0; r < n; ++r) {
      std::memcpy(gathered + r * H, in + rows[static_cast<size_t>(r)] * H,
                  sizeof(float) * static_cast<size_t>(H));
    }
    const auto ue = static_cast<size_t>(e);
    swiglu(st, w.expert_gate[ue], w.expert_up[ue], w.expert_down[ue], gathered, n, expert_out);
    for (int64_t r = 0; r < n; ++r) {
      kt.axpy(row_weights[static_cast<size_t>(r)], expert_out + r * H,
              out + rows[static_cast<size_t>(r)] * H, H);
    }
  }
}

void add_rows(ForwardState& st, float* x, const float* y) {
  const int64_t H = st.spec.hidden_size;
  for_row_chunks(st, st.n_tokens, H, [&](int64_t r0, int64_t r1) {
    kernels::active().add(x + r0 * H, y + r0 * H, (r1 - r0) * H);
  });
}

}  // namespace autoglm::models
