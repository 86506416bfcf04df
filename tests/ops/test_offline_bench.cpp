// bench's prefill GFLOP/s counts the multiply-adds the prompt really goes through.
#include <gtest/gtest.h>

#include "models/model_spec.h"
#include "ops/offline_bench.h"

namespace autoglm::ops {
namespace {

// The benchmark shape of issue 6 (GLM-Edge-like glm4): per layer q and o 2048 x 2048, k and v
// 256 x 2048, gate, up and down 6144 x 2048: 47,185,920 multiply-adds per token and layer. The
// output layer (151552 x 2048) runs once per prompt, for its last token's logits.
TEST(OfflineBench, PrefillCountsEveryLayerPerTokenAndTheOutputLayerOnce) {
  models::ModelSpec spec;
  spec.arch = "glm4";
  spec.vocab_size = 151552;
  spec.hidden_size = 2048;
  spec.n_layers = 28;
  spec.n_heads = 16;
  spec.n_kv_heads = 2;
  spec.head_dim = 128;
  spec.intermediate_size = 6144;
  const double per_layer = 2.0 * 2048 * 2048 + 2.0 * 256 * 2048 + 3.0 * 6144 * 2048;
  EXPECT_EQ(per_layer, 47185920.0);
  EXPECT_EQ(prefill_matmul_params(spec, 512), 28 * per_layer * 512 + 151552.0 * 2048);
  EXPECT_EQ(prefill_matmul_params(spec, 1), 28 * per_layer + 151552.0 * 2048);
}

// MoE layers count the experts a token is routed to, the shared ones, and the router; the first
// dense layers their dense MLP.
TEST(OfflineBench, PrefillCountsOnlyTheExpertsATokenUses) {
  models::ModelSpec spec;
  spec.arch = "glm4_moe";
  spec.vocab_size = 1000;
  spec.hidden_size = 64;
  spec.n_layers = 3;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.head_dim = 16;
  spec.intermediate_size = 128;
  spec.n_experts = 8;
  spec.n_experts_used = 2;
  spec.n_shared_experts = 1;
  spec.moe_intermediate_size = 32;
  spec.first_dense_layers = 1;
  const double attn = 2.0 * 64 * 64 + 2.0 * 64 * 32;
  const double dense = attn + 3.0 * 64 * 128;
  const double moe = attn + 3.0 * 64 * 32 * 3 + 64.0 * 8;
  EXPECT_EQ(prefill_matmul_params(spec, 10), (dense + 2 * moe) * 10 + 1000.0 * 64);
}

}  // namespace
}  // namespace autoglm::ops
