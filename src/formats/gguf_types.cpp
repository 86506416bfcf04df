#include "formats/gguf_types.h"

#include <fmt/format.h>

#include <array>

#include "core/error.h"

namespace autoglm::formats {
namespace {

// ggml.h `enum ggml_type`; ids 4, 5, 31-33, 36-38 were removed and never appear in valid files.
constexpr std::array<std::string_view, 42> kGgmlNames = {"f32",
                                                         "f16",
                                                         "q4_0",
                                                         "q4_1",
                                                         "q4_2 (removed)",
                                                         "q4_3 (removed)",
                                                         "q5_0",
                                                         "q5_1",
                                                         "q8_0",
                                                         "q8_1",
                                                         "q2_K",
                                                         "q3_K",
                                                         "q4_K",
                                                         "q5_K",
                                                         "q6_K",
                                                         "q8_K",
                                                         "iq2_xxs",
                                                         "iq2_xs",
                                                         "iq3_xxs",
                                                         "iq1_s",
                                                         "iq4_nl",
                                                         "iq3_s",
                                                         "iq2_s",
                                                         "iq4_xs",
                                                         "i8",
                                                         "i16",
                                                         "i32",
                                                         "i64",
                                                         "f64",
                                                         "iq1_m",
                                                         "bf16",
                                                         "q4_0_4_4",
                                                         "q4_0_4_8",
                                                         "q4_0_8_8",
                                                         "tq1_0",
                                                         "tq2_0",
                                                         "iq4_nl_4_4",
                                                         "iq4_nl_4_8",
                                                         "iq4_nl_8_8",
                                                         "mxfp4",
                                                         "nvfp4",
                                                         "q1_0"};

struct Pair {
  uint32_t ggml;
  DType dtype;
};
constexpr std::array<Pair, 11> kPairs = {{{0, DType::F32},
                                          {1, DType::F16},
                                          {2, DType::Q4_0},
                                          {8, DType::Q8_0},
                                          {14, DType::Q6_K},
                                          {24, DType::I8},
                                          {25, DType::I16},
                                          {26, DType::I32},
                                          {27, DType::I64},
                                          {28, DType::F64},
                                          {30, DType::BF16}}};

}  // namespace

bool is_valid_gguf_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::F64);
}

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::array<std::string_view, 13> kNames = {
      "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < kNames.size() ? kNames[i] : std::string_view("invalid");
}

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::String:
    case GgufType::Array:
      return 0;
  }
  return 0;
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (const auto& p : kPairs) {
    if (p.ggml == ggml_type) return p.dtype;
  }
  return std::nullopt;
}

uint32_t ggml_type_from_dtype(DType t) {
  for (const auto& p : kPairs) {
    if (p.dtype == t) return p.ggml;
  }
  fail("GGUF cannot store {} tensors (ggml has no such type); store them as i8/i32 or f32",
       dtype_name(t));
}

std::string ggml_type_name(uint32_t ggml_type) {
  if (ggml_type < kGgmlNames.size()) return std::string(kGgmlNames[ggml_type]);
  return fmt::format("unknown type {}", ggml_type);
}

}  // namespace autoglm::formats
