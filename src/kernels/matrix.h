// A weight matrix as the kernels see it: [rows, cols] in PyTorch order (y = x · Wᵀ), rows
// contiguous, each row `row_bytes(dtype, cols)` bytes (whole blocks for quantized types).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace autoglm::kernels {

struct Matrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
  const void* data = nullptr;

  size_t row_stride() const { return row_bytes(dtype, cols); }
  const std::byte* row(int64_t r) const {
    return static_cast<const std::byte*>(data) + static_cast<size_t>(r) * row_stride();
  }
};

}  // namespace autoglm::kernels
