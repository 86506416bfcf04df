// Per-call state of a forward pass over a batch of sequence chunks: the residual stream of every
// token, the position and sequence of each token, and scratch buffers reused across calls.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "models/kv_cache.h"
#include "models/model_spec.h"

namespace autoglm::models {

// New tokens of one sequence: appended to `cache` at positions cache->size() onwards.
struct SequenceChunk {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;
  bool all_logits = false;  // logits for every token, else for the last one only
};

// Reusable buffers; grown on demand, never shrunk (no allocation on the steady-state hot path).
struct ForwardScratch {
  std::vector<float> x, norm, q, k, v, attn, proj, ffn_a, ffn_b, ffn_out;
  std::vector<float> router, moe_in, moe_out;
  std::vector<float> rope_cos, rope_sin;  // [T][R/2]
  std::vector<int64_t> positions;         // [T]
  std::vector<int64_t> seq_of_token;      // [T]
  // Each sequence's block table for one layer, and its attention call (one call for them all).
  std::vector<std::vector<const void*>> k_blocks, v_blocks;
  std::vector<kernels::AttentionArgs> attention;
};

struct ForwardState {
  const ModelSpec& spec;
  ThreadPool& pool;
  std::span<SequenceChunk> seqs;
  ForwardScratch& s;
  int64_t n_tokens = 0;            // T, all sequences stacked
  std::vector<int64_t> seq_first;  // first stacked token of each sequence

  float* x() { return s.x.data(); }  // [T, H] residual stream
};

}  // namespace autoglm::models
