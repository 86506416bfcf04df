#include "models/model_spec.h"

#include <fmt/format.h>

#include "core/error.h"

namespace autoglm::models {

void ModelSpec::validate(const std::string& source) const {
  auto require_positive = [&](int64_t v, const char* what) {
    if (v <= 0)
      fail("{}: {} must be positive, found {}; the config is incomplete or corrupt", source, what,
           v);
  };
  require_positive(vocab_size, "vocab size");
  require_positive(hidden_size, "hidden size");
  require_positive(n_layers, "layer count");
  require_positive(n_heads, "attention head count");
  require_positive(n_kv_heads, "key/value head count");
  require_positive(head_dim, "head dimension");
  if (n_heads % n_kv_heads != 0) {
    fail("{}: {} attention heads cannot be shared evenly by {} key/value heads", source, n_heads,
         n_kv_heads);
  }
  if (rotary_dims <= 0 || rotary_dims > head_dim || rotary_dims % 2 != 0) {
    fail("{}: rotary dimensions {} must be even and within the head dimension {}", source,
         rotary_dims, head_dim);
  }
  if (n_experts == 0 || first_dense_layers > 0)
    require_positive(intermediate_size, "intermediate size");
  if (n_experts > 0) {
    require_positive(n_experts_used, "experts per token");
    require_positive(moe_intermediate_size, "expert intermediate size");
    if (n_experts_used > n_experts) {
      fail("{}: {} experts per token but only {} experts", source, n_experts_used, n_experts);
    }
  }
}

std::string ModelSpec::describe() const {
  std::string s = fmt::format(
      "{}: {} layers, hidden {}, {} heads / {} kv heads x {}, ffn {}, vocab {}, rope {} dims "
      "theta {} ({})",
      arch, n_layers, hidden_size, n_heads, n_kv_heads, head_dim, intermediate_size, vocab_size,
      rotary_dims, rope_theta,
      rope_style == kernels::RopeStyle::Interleaved ? "interleaved" : "half-split");
  if (n_experts > 0) {
    s += fmt::format(", {} experts (top {}, {} shared, width {})", n_experts, n_experts_used,
                     n_shared_experts, moe_intermediate_size);
  }
  return s;
}

int64_t ModelSpec::parameter_count() const {
  const int64_t attn = attention_matrix_params();
  const int64_t dense_mlp = dense_mlp_params();
  const int64_t expert = expert_params();
  int64_t total = vocab_size * hidden_size * (tie_embeddings ? 1 : 2) + hidden_size;
  for (int64_t l = 0; l < n_layers; ++l) {
    total += attn + 2 * hidden_size;
    if (qkv_bias) total += q_dim() + 2 * kv_dim();
    if (is_moe_layer(l)) {
      total += (n_experts + n_shared_experts) * expert + n_experts * hidden_size;
    } else {
      total += dense_mlp;
    }
  }
  return total;
}

}  // namespace autoglm::models
