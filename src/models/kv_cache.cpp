#include "models/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace autoglm::models {

int64_t kv_elem_bytes(DType kv_type) {
  if (kv_type != DType::F16 && kv_type != DType::F32) {
    fail("a KV cache of {} is not supported: choose f16 (the default) or f32", dtype_name(kv_type));
  }
  return dtype_info(kv_type).block_bytes;
}

KvPool::KvPool(const ModelSpec& spec, int64_t n_blocks, int64_t block_size, DType kv_type)
    : kv_type_(kv_type),
      n_blocks_(n_blocks),
      block_size_(block_size),
      n_kv_heads_(spec.n_kv_heads),
      head_dim_(spec.head_dim),
      head_part_bytes_(block_size * spec.head_dim * kv_elem_bytes(kv_type)),
      region_bytes_(n_blocks * 2 * head_part_bytes_),
      block_bytes_(2 * spec.n_layers * spec.n_kv_heads * head_part_bytes_),
      storage_(allocate_large(static_cast<size_t>(n_blocks * block_bytes_))) {
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

KvCache::KvCache(const ModelSpec& spec, int64_t capacity, DType kv_type)
    : own_pool_(std::make_unique<KvPool>(spec,
                                         (capacity + kPrivateBlockSize - 1) / kPrivateBlockSize,
                                         kPrivateBlockSize, kv_type)),
      pool_(own_pool_.get()),
      capacity_(capacity) {}

KvCache::KvCache(KvPool& pool, int64_t capacity) : pool_(&pool), capacity_(capacity) {}

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
  // Last block first, so that the next sequence's blocks come off the free list in ascending
  // order, side by side in each region, as attention reads them.
  for (auto b = blocks_.rbegin(); b != blocks_.rend(); ++b) pool_->release(*b);
  blocks_.clear();
  size_ = 0;
}

void KvCache::rewind(int64_t n_tokens) {
  if (n_tokens < 0 || n_tokens > size_) {
    fail("KV cache: cannot rewind to {} tokens when it holds {}", n_tokens, size_);
  }
  size_ = n_tokens;
}

std::byte* KvCache::k_column(int64_t layer, int64_t pos, int64_t kv_head) {
  const int64_t bs = pool_->block_size();
  const int32_t block = blocks_[static_cast<size_t>(pos / bs)];
  const int64_t elem = kv_elem_bytes(pool_->kv_type());
  return pool_->k(block, layer) + kv_head * pool_->kv_head_stride() + (pos % bs) * elem;
}

std::byte* KvCache::v_row(int64_t layer, int64_t pos, int64_t kv_head) {
  const int64_t bs = pool_->block_size();
  const int32_t block = blocks_[static_cast<size_t>(pos / bs)];
  return pool_->v(block, layer) + kv_head * pool_->kv_head_stride() +
         (pos % bs) * pool_->head_row_bytes();
}

void KvCache::layer_blocks(int64_t layer, std::vector<const void*>& k,
                           std::vector<const void*>& v) const {
  k.clear();
  v.clear();
  for (int32_t b : blocks_) {
    k.push_back(pool_->k(b, layer));
    v.push_back(pool_->v(b, layer));
  }
}

}  // namespace autoglm::models
