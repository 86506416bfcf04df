// GGUF file-format constants shared by the reader and the writer. Values are those of ggml.h
// (`enum ggml_type`) and gguf.h (`enum gguf_type`) in ggml-org/llama.cpp; they are on-disk facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace autoglm::formats {

constexpr uint32_t kGgufMagic = 0x46554747;     // "GGUF" read as a little-endian u32
constexpr uint32_t kGgufDefaultAlignment = 32;  // when `general.alignment` is absent
constexpr uint32_t kGgufMaxDims = 4;            // GGML_MAX_DIMS

// Metadata value types (gguf.h `enum gguf_type`).
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

bool is_valid_gguf_type(uint32_t t);
std::string_view gguf_type_name(GgufType t);  // "u32", "string", "array", ...
// Bytes of a scalar value on disk; 0 for String and Array (variable length).
size_t gguf_scalar_size(GgufType t);

// ggml tensor type id <-> our DType. ggml has no u8/bool tensors.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
// Throws Error for a dtype GGUF cannot store (u8, bool).
uint32_t ggml_type_from_dtype(DType t);
// "q4_1", "iq2_xxs", ... for any ggml type id, or "unknown type <id>".
std::string ggml_type_name(uint32_t ggml_type);

}  // namespace autoglm::formats
