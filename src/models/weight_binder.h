// How an architecture's bind hook asks for tensors. The loading binder validates shapes against
// the file and converts dtypes; the recording binder only notes names and shapes, so
// `autoglm synth` writes exactly the tensors the loader will ask for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "formats/tensor_store.h"
#include "kernels/matrix.h"

namespace autoglm::models {

enum class Convert { Allowed, KeepF32 };

class WeightBinder {
 public:
  virtual ~WeightBinder() = default;
  virtual formats::FileFormat format() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // A weight [rows, cols] for matmul; may be converted to the requested load dtype.
  virtual kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols,
                                 Convert convert = Convert::Allowed) = 0;
  // Slice `index` of a 3-D tensor [count, rows, cols] (GGUF stores MoE experts merged).
  virtual kernels::Matrix matrix_slice(const std::string& name, int64_t count, int64_t index,
                                       int64_t rows, int64_t cols) = 0;
  // A 1-D tensor of n values as f32 (norm weights, biases).
  virtual const float* vector(const std::string& name, int64_t n) = 0;

  const float* optional_vector(const std::string& name, int64_t n) {
    return has(name) ? vector(name, n) : nullptr;
  }
};

}  // namespace autoglm::models
