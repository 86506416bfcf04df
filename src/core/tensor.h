// A read-only view of a tensor's bytes. Shapes are in PyTorch order: the last dimension is
// contiguous, so a weight [out, in] has `rows() == out` rows of `cols() == in` elements.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace autoglm {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
};

// "[4608, 4096]"
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace autoglm
