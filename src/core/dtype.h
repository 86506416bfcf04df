// Element types of tensors, with the GGUF block layouts of the quantized ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace autoglm {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I8,
  U8,
  I16,
  I32,
  I64,
  BOOL,
  Q8_0,  // GGUF block of 32: f16 scale d, 32 x int8; x = d * q
  Q4_0,  // GGUF block of 32: f16 scale d, 16 bytes of nibbles; x = d * (q - 8)
  Q6_K,  // GGUF super-block of 256 (210 bytes); see quant_blocks.h
};

struct DTypeInfo {
  std::string_view name;  // as users write it: "f32", "bf16", "q4_0", ...
  int64_t block_elems;    // elements per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
  bool is_float;          // usable as a weight type (float or quantized float)
  bool is_quantized;
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}
inline bool is_quantized(DType t) {
  return dtype_info(t).is_quantized;
}

// Bytes of a row of `n` elements; throws Error if `n` is not a whole number of blocks.
size_t row_bytes(DType t, int64_t n);
// Bytes of `numel` elements; throws Error if not a whole number of blocks.
size_t tensor_bytes(DType t, int64_t numel);

// Parses a user-facing name ("f32", "F16", "bf16", "q8_0", "q4_0", "q6_k"); throws Error listing
// the valid names otherwise.
DType parse_dtype(std::string_view name);

}  // namespace autoglm
