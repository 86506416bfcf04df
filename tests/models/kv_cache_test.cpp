// The paged KV pool's layout and its hand-out order, which attention's reading speed depends on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "models/kv_cache.h"

namespace autoglm::models {
namespace {

ModelSpec small_spec() {
  ModelSpec spec;
  spec.n_layers = 3;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.head_dim = 8;
  return spec;
}

// Every (layer, block, KV head)'s K and V part, as attention finds them (k / v plus h head
// strides), is its own: the parts do not overlap and together tile the pool's bytes exactly.
TEST(KvPool, EveryHeadsPartOfEveryBlockIsItsOwn) {
  const ModelSpec spec = small_spec();
  for (DType type : {DType::F16, DType::F32}) {
    KvPool pool(spec, 5, 4, type);
    const int64_t part = pool.block_size() * pool.head_row_bytes();
    std::vector<std::pair<const std::byte*, const std::byte*>> parts;
    for (int64_t layer = 0; layer < spec.n_layers; ++layer) {
      for (int32_t b = 0; b < pool.n_blocks(); ++b) {
        for (int64_t h = 0; h < spec.n_kv_heads; ++h) {
          for (const std::byte* p : {pool.k(b, layer), pool.v(b, layer)}) {
            parts.emplace_back(p + h * pool.kv_head_stride(), p + h * pool.kv_head_stride() + part);
          }
        }
      }
    }
    std::sort(parts.begin(), parts.end());
    for (size_t i = 1; i < parts.size(); ++i) {
      EXPECT_EQ(parts[i].first, parts[i - 1].second) << dtype_name(type) << ", part " << i;
    }
    EXPECT_EQ(static_cast<size_t>(parts.back().second - parts.front().first), pool.bytes());
  }
}

// One KV head's blocks of one layer lie side by side, K then V of each: a sequence whose blocks
// are consecutive is one stream for attention.
TEST(KvPool, AHeadsConsecutiveBlocksAreAdjacent) {
  const ModelSpec spec = small_spec();
  KvPool pool(spec, 6, 16);
  const int64_t part = pool.block_size() * pool.head_row_bytes();
  for (int64_t layer = 0; layer < spec.n_layers; ++layer) {
    for (int32_t b = 0; b < 5; ++b) {
      EXPECT_EQ(pool.v(b, layer), pool.k(b, layer) + part);
      EXPECT_EQ(pool.k(b + 1, layer), pool.v(b, layer) + part);
    }
  }
}

std::vector<const void*> layer0_keys(const KvCache& cache) {
  std::vector<const void*> k, v;
  cache.layer_blocks(0, k, v);
  return k;
}

// A fresh pool hands a sequence its blocks in ascending order, and so does a pool whose previous
// sequence was cleared: freed blocks go back last first.
TEST(KvPool, HandsOutBlocksInAscendingOrderAgainAfterAClear) {
  KvPool pool(small_spec(), 8, 4);
  KvCache first(pool, 32);
  ASSERT_TRUE(first.reserve(20));  // 5 blocks
  const std::vector<const void*> fresh = layer0_keys(first);
  ASSERT_EQ(fresh.size(), 5u);
  EXPECT_TRUE(std::is_sorted(fresh.begin(), fresh.end()));
  first.clear();
  KvCache second(pool, 32);
  ASSERT_TRUE(second.reserve(20));
  EXPECT_EQ(layer0_keys(second), fresh);
}

}  // namespace
}  // namespace autoglm::models
