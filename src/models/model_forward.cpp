#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/kernels.h"
#include "models/blocks.h"
#include "models/model.h"

namespace autoglm::models {
namespace {

void embed_tokens(const ModelWeights& w, std::span<SequenceChunk> chunks, int64_t H, float* x) {
  const auto& kt = kernels::active();
  int64_t t = 0;
  for (const SequenceChunk& c : chunks) {
    for (int32_t id : c.tokens) {
      if (id < 0 || id >= w.embed.rows) {
        fail("token id {} is outside the vocabulary [0, {})", id, w.embed.rows);
      }
      kt.dequantize_row(w.embed.dtype, w.embed.row(id), x + t * H, H);
      ++t;
    }
  }
}

void prepare_positions(ForwardState& st) {
  const ModelSpec& spec = st.spec;
  const int64_t half = spec.rotary_dims / 2;
  st.s.positions.resize(static_cast<size_t>(st.n_tokens));
  st.s.rope_cos.resize(static_cast<size_t>(st.n_tokens * half));
  st.s.rope_sin.resize(static_cast<size_t>(st.n_tokens * half));
  st.seq_first.clear();
  int64_t t = 0;
  for (const SequenceChunk& c : st.seqs) {
    st.seq_first.push_back(t);
    const int64_t pos0 = c.cache->size();
    if (pos0 + static_cast<int64_t>(c.tokens.size()) > c.cache->capacity()) {
      fail("context full: {} cached + {} new tokens exceed the cache of {} tokens", pos0,
           c.tokens.size(), c.cache->capacity());
    }
    if (!c.cache->reserve(static_cast<int64_t>(c.tokens.size()))) {
      fail(
          "KV cache exhausted: no free block for {} more tokens; raise --kv-blocks or lower "
          "--max-batch",
          c.tokens.size());
    }
    for (size_t i = 0; i < c.tokens.size(); ++i, ++t) {
      const int64_t pos = pos0 + static_cast<int64_t>(i);
      st.s.positions[static_cast<size_t>(t)] = pos;
      kernels::rope_angles(pos, static_cast<int>(spec.rotary_dims), spec.rope_theta,
                           st.s.rope_cos.data() + t * half, st.s.rope_sin.data() + t * half);
    }
  }
}

// Rows of x whose logits are wanted, gathered into `out`; returns how many.
int64_t gather_logit_rows(std::span<SequenceChunk> chunks, const float* x, int64_t H, float* out) {
  int64_t t = 0, rows = 0;
  for (const SequenceChunk& c : chunks) {
    const auto n = static_cast<int64_t>(c.tokens.size());
    const int64_t first = c.all_logits ? 0 : n - 1;
    for (int64_t i = first; i < n; ++i, ++rows) {
      std::memcpy(out + rows * H, x + (t + i) * H, sizeof(float) * static_cast<size_t>(H));
    }
    t += n;
  }
  return rows;
}

}  // namespace

void Model::forward(std::span<SequenceChunk> chunks, ForwardScratch& scratch, ThreadPool& pool,
                    std::vector<float>& logits) const {
  int64_t n_tokens = 0;
  for (const SequenceChunk& c : chunks) {
    AUTOGLM_ASSERT(c.cache != nullptr && !c.tokens.empty());
    n_tokens += static_cast<int64_t>(c.tokens.size());
  }
  const int64_t H = spec_.hidden_size;
  ForwardState st{spec_, pool, chunks, scratch, n_tokens, {}};
  scratch.x.resize(std::max(scratch.x.size(), static_cast<size_t>(n_tokens * H)));
  scratch.norm.resize(std::max(scratch.norm.size(), static_cast<size_t>(n_tokens * H)));
  scratch.proj.resize(std::max(scratch.proj.size(), static_cast<size_t>(n_tokens * H)));
  scratch.ffn_out.resize(std::max(scratch.ffn_out.size(), static_cast<size_t>(n_tokens * H)));

  prepare_positions(st);
  embed_tokens(weights_, chunks, H, st.x());
  for (int64_t l = 0; l < spec_.n_layers; ++l) {
    arch_->forward_layer(st, weights_.layers[static_cast<size_t>(l)], l);
  }
  for (SequenceChunk& c : chunks) c.cache->advance(static_cast<int64_t>(c.tokens.size()));

  const int64_t rows = gather_logit_rows(chunks, st.x(), H, scratch.norm.data());
  rms_norm_rows(st, scratch.norm.data(), weights_.final_norm, rows, H, scratch.norm.data());
  logits.resize(static_cast<size_t>(rows * spec_.vocab_size));
  kernels::matmul(weights_.lm_head.w, scratch.norm.data(), rows, logits.data(), pool,
                  weights_.lm_head.bias);
}

}  // namespace autoglm::models
