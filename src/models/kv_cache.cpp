#include "models/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace autoglm::models {

KvPool::KvPool(const ModelSpec& spec, int64_t n_blocks, int64_t block_size)
    : n_blocks_(n_blocks),
      block_size_(block_size),
      layer_floats_(block_size * spec.kv_dim()),
      block_floats_(2 * spec.n_layers * block_size * spec.kv_dim()),
      storage_(new float[static_cast<size_t>(n_blocks * block_floats_)]) {
  AUTOGLM_ASSERT(n_blocks >= 0 && block_size > 0);
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int32_t KvPool::allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  return b;
}

void KvPool::release(int32_t block) {
  AUTOGLM_ASSERT(block >= 0 && block < n_blocks_);
  free_.push_back(block);
}

namespace {
constexpr int64_t kPrivateBlockSize = 16;
}

KvCache::KvCache(const ModelSpec& spec, int64_t capacity)
    : own_pool_(std::make_unique<KvPool>(
          spec, (capacity + kPrivateBlockSize - 1) / kPrivateBlockSize, kPrivateBlockSize)),
      pool_(own_pool_.get()),
      capacity_(capacity),
      kv_dim_(spec.kv_dim()) {}

KvCache::KvCache(KvPool& pool, int64_t capacity)
    : pool_(&pool), capacity_(capacity), kv_dim_(pool.kv_dim()) {}

KvCache::~KvCache() {
  clear();
}

int64_t KvCache::blocks_needed(int64_t n_tokens) const {
  const int64_t bs = pool_->block_size();
  const int64_t need = (size_ + n_tokens + bs - 1) / bs;
  return std::max<int64_t>(0, need - blocks_held());
}

bool KvCache::reserve(int64_t n_tokens) {
  const int64_t need = blocks_needed(n_tokens);
  if (need > pool_->free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) blocks_.push_back(pool_->allocate());
  return true;
}

void KvCache::clear() {
  for (int32_t b : blocks_) pool_->release(b);
  blocks_.clear();
  size_ = 0;
}

void KvCache::rewind(int64_t n_tokens) {
  if (n_tokens < 0 || n_tokens > size_) {
    fail("KV cache: cannot rewind to {} tokens when it holds {}", n_tokens, size_);
  }
  size_ = n_tokens;
}

float* KvCache::k_row(int64_t layer, int64_t pos) {
  const int64_t bs = pool_->block_size();
  return pool_->k(blocks_[static_cast<size_t>(pos / bs)], layer) + (pos % bs) * kv_dim_;
}

float* KvCache::v_row(int64_t layer, int64_t pos) {
  const int64_t bs = pool_->block_size();
  return pool_->v(blocks_[static_cast<size_t>(pos / bs)], layer) + (pos % bs) * kv_dim_;
}

void KvCache::layer_blocks(int64_t layer, std::vector<const float*>& k,
                           std::vector<const float*>& v) const {
  k.clear();
  v.clear();
  for (int32_t b : blocks_) {
    k.push_back(pool_->k(b, layer));
    v.push_back(pool_->v(b, layer));
  }
}

}  // namespace autoglm::models
