// The loading binder: takes tensors from a TensorStore, checks their shapes, and converts weight
// matrices to the requested dtype (or f32 where a kernel needs it).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "models/weight_binder.h"

namespace autoglm::models {

class StoreBinder final : public WeightBinder {
 public:
  StoreBinder(const formats::TensorStore& store, std::optional<DType> target, ThreadPool& pool,
              std::vector<LargeBuffer>& owned);

  formats::FileFormat format() const override { return store_.format(); }
  bool has(const std::string& name) const override { return store_.contains(name); }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols,
                         Convert convert) override;
  kernels::Matrix matrix_slice(const std::string& name, int64_t count, int64_t index, int64_t rows,
                               int64_t cols) override;
  const float* vector(const std::string& name, int64_t n) override;

  size_t weight_bytes() const { return weight_bytes_; }
  // "q4_0 (converted from f32)", "bf16", "q4_0 + q6_k (as stored)", ...
  std::string summary() const;

 private:
  kernels::Matrix convert_matrix(const kernels::Matrix& src, DType dst);
  std::byte* allocate(size_t bytes);

  const formats::TensorStore& store_;
  std::optional<DType> target_;
  ThreadPool& pool_;
  std::vector<LargeBuffer>& owned_;
  size_t weight_bytes_ = 0;
  std::vector<DType> stored_types_;
  std::vector<DType> final_types_;
  int64_t kept_unconvertible_ = 0;
};

}  // namespace autoglm::models
