#include "models/layers.h"

#include "models/blocks.h"

namespace autoglm::models {
namespace {

void feed_forward(ForwardState& st, const LayerWeights& w, int64_t layer, const float* in,
                  float* out) {
  if (st.spec.is_moe_layer(layer)) {
    moe_block(st, w, in, out);
  } else {
    dense_mlp_block(st, w, in, out);
  }
}

}  // namespace

void prenorm_layer(ForwardState& st, const LayerWeights& w, int64_t layer) {
  const int64_t T = st.n_tokens, H = st.spec.hidden_size;
  float* norm = st.s.norm.data();
  float* out = st.s.proj.data();
  rms_norm_rows(st, st.x(), w.attn_norm, T, H, norm);
  attention_block(st, w, layer, norm, out);
  add_rows(st, st.x(), out);
  rms_norm_rows(st, st.x(), w.ffn_norm, T, H, norm);
  feed_forward(st, w, layer, norm, out);
  add_rows(st, st.x(), out);
}

void sandwich_layer(ForwardState& st, const LayerWeights& w, int64_t layer) {
  const int64_t T = st.n_tokens, H = st.spec.hidden_size;
  float* norm = st.s.norm.data();
  float* out = st.s.proj.data();
  rms_norm_rows(st, st.x(), w.attn_norm, T, H, norm);
  attention_block(st, w, layer, norm, out);
  rms_norm_rows(st, out, w.post_attn_norm, T, H, out);
  add_rows(st, st.x(), out);
  rms_norm_rows(st, st.x(), w.ffn_norm, T, H, norm);
  feed_forward(st, w, layer, norm, out);
  rms_norm_rows(st, out, w.post_ffn_norm, T, H, out);
  add_rows(st, st.x(), out);
}

}  // namespace autoglm::models
