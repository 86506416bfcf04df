// Key/value cache of one sequence, owned by the caller (engine), contiguous per layer:
// k and v are [L][capacity][nkv * d] f32. Keys are stored after RoPE.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model_spec.h"

namespace autoglm::models {

class KvCache {
 public:
  KvCache(const ModelSpec& spec, int64_t capacity);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }  // tokens cached so far
  void clear() { size_ = 0; }
  // Drops cached tokens from position n on (n <= size()).
  void truncate(int64_t n);
  void advance(int64_t n_tokens) { size_ += n_tokens; }

  float* k(int64_t layer) { return k_.data() + layer * layer_stride_; }
  float* v(int64_t layer) { return v_.data() + layer * layer_stride_; }
  const float* k(int64_t layer) const { return k_.data() + layer * layer_stride_; }
  const float* v(int64_t layer) const { return v_.data() + layer * layer_stride_; }
  int64_t row_width() const { return kv_dim_; }  // nkv * d
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  int64_t capacity_;
  int64_t kv_dim_;
  int64_t layer_stride_;
  int64_t size_ = 0;
  std::vector<float> k_;
  std::vector<float> v_;
};

}  // namespace autoglm::models
