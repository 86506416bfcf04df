#include "models/kv_cache.h"

#include "core/error.h"

namespace autoglm::models {

KvCache::KvCache(const ModelSpec& spec, int64_t capacity)
    : capacity_(capacity),
      kv_dim_(spec.kv_dim()),
      layer_stride_(capacity * spec.kv_dim()),
      k_(static_cast<size_t>(spec.n_layers * capacity * spec.kv_dim())),
      v_(k_.size()) {}

void KvCache::truncate(int64_t n) {
  AUTOGLM_ASSERT(n >= 0 && n <= size_);
  size_ = n;
}

}  // namespace autoglm::models
