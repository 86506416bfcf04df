#include "core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "core/error.h"

namespace autoglm {
namespace {

constexpr std::array<DTypeInfo, 13> kInfos = {{
    {"f32", 1, 4, true, false},
    {"f16", 1, 2, true, false},
    {"bf16", 1, 2, true, false},
    {"f64", 1, 8, false, false},
    {"i8", 1, 1, false, false},
    {"u8", 1, 1, false, false},
    {"i16", 1, 2, false, false},
    {"i32", 1, 4, false, false},
    {"i64", 1, 8, false, false},
    {"bool", 1, 1, false, false},
    {"q8_0", 32, 34, true, true},
    {"q4_0", 32, 18, true, true},
    {"q6_k", 256, 210, true, true},
}};

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  const auto index = static_cast<size_t>(t);
  AUTOGLM_ASSERT(index < kInfos.size());
  return kInfos[index];
}

size_t row_bytes(DType t, int64_t n) {
  const DTypeInfo& info = dtype_info(t);
  if (n < 0 || n % info.block_elems != 0) {
    fail("a row of {} elements cannot be stored as {}: that type packs blocks of {} elements", n,
         info.name, info.block_elems);
  }
  return static_cast<size_t>(n / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

size_t tensor_bytes(DType t, int64_t numel) {
  return row_bytes(t, numel);
}

DType parse_dtype(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (size_t i = 0; i < kInfos.size(); ++i) {
    if (kInfos[i].name == lower && kInfos[i].is_float) return static_cast<DType>(i);
  }
  fail("unknown weight type '{}': use one of f32, f16, bf16, q8_0, q4_0, q6_k", name);
}

}  // namespace autoglm
