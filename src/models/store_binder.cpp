#include "models/store_binder.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "kernels/kernels.h"

namespace autoglm::models {
namespace {

void note_type(std::vector<DType>& types, DType t) {
  if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
}

std::string type_list(const std::vector<DType>& types) {
  std::string s;
  for (DType t : types) {
    if (!s.empty()) s += " + ";
    s += dtype_name(t);
  }
  return s;
}

}  // namespace

StoreBinder::StoreBinder(const formats::TensorStore& store, std::optional<DType> target,
                         ThreadPool& pool, std::vector<LargeBuffer>& owned)
    : store_(store), target_(target), pool_(pool), owned_(owned) {}

std::byte* StoreBinder::allocate(size_t bytes) {
  owned_.push_back(allocate_large(bytes));
  return owned_.back().get();
}

kernels::Matrix StoreBinder::convert_matrix(const kernels::Matrix& src, DType dst) {
  kernels::Matrix out{dst, src.rows, src.cols, nullptr};
  std::byte* data = allocate(static_cast<size_t>(src.rows) * out.row_stride());
  out.data = data;
  const auto& kt = kernels::active();
  pool_.parallel_for(src.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(src.cols));
    for (int64_t r = r0; r < r1; ++r) {
      kt.dequantize_row(src.dtype, src.row(r), row.data(), src.cols);
      kt.quantize_row(dst, row.data(), data + static_cast<size_t>(r) * out.row_stride(), src.cols);
    }
  });
  return out;
}

kernels::Matrix StoreBinder::matrix(const std::string& name, int64_t rows, int64_t cols,
                                    Convert convert) {
  const TensorView& t = store_.get(name, {rows, cols});
  if (!dtype_info(t.dtype).is_float) {
    fail(
        "{}: tensor '{}' is stored as {}, which is not a weight type (expected f32, f16, bf16, "
        "q8_0, q4_0 or q6_k)",
        store_.source(), name, dtype_name(t.dtype));
  }
  kernels::Matrix m{t.dtype, rows, cols, t.data};
  note_type(stored_types_, t.dtype);
  DType want = t.dtype;
  const bool misaligned = reinterpret_cast<uintptr_t>(t.data) % 4 != 0 && !is_quantized(t.dtype);
  if (convert == Convert::KeepF32) {
    want = DType::F32;
  } else if (target_) {
    if (cols % dtype_info(*target_).block_elems == 0) {
      want = *target_;
    } else {
      ++kept_unconvertible_;
    }
  }
  if (want != t.dtype || misaligned) m = convert_matrix(m, want);
  note_type(final_types_, want);
  weight_bytes_ += static_cast<size_t>(rows) * m.row_stride();
  return m;
}

kernels::Matrix StoreBinder::matrix_slice(const std::string& name, int64_t count, int64_t index,
                                          int64_t rows, int64_t cols) {
  const TensorView& t = store_.get(name, {count, rows, cols});
  kernels::Matrix m{t.dtype, rows, cols, nullptr};
  m.data = t.data + static_cast<size_t>(index * rows) * m.row_stride();
  note_type(stored_types_, t.dtype);
  DType want = t.dtype;
  if (target_ && cols % dtype_info(*target_).block_elems == 0) want = *target_;
  if (want != t.dtype) m = convert_matrix(m, want);
  note_type(final_types_, want);
  weight_bytes_ += static_cast<size_t>(rows) * m.row_stride();
  return m;
}

const float* StoreBinder::vector(const std::string& name, int64_t n) {
  const TensorView& t = store_.get(name, {n});
  weight_bytes_ += static_cast<size_t>(n) * sizeof(float);
  // Zero-copy only when the bytes are f32 and 4-byte aligned (safetensors does not promise it).
  if (t.dtype == DType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(t.data);
  }
  if (!dtype_info(t.dtype).is_float) {
    fail("{}: tensor '{}' is stored as {}; expected a float type", store_.source(), name,
         dtype_name(t.dtype));
  }
  auto* out = reinterpret_cast<float*>(allocate(static_cast<size_t>(n) * sizeof(float)));
  kernels::active().dequantize_row(t.dtype, t.data, out, n);
  return out;
}

std::string StoreBinder::summary() const {
  std::string s = type_list(final_types_);
  if (target_) {
    s += " (converted at load from " + type_list(stored_types_) + ")";
    if (kept_unconvertible_ > 0) {
      s += fmt::format("; {} matrices kept as stored: their width is not a multiple of {}",
                       kept_unconvertible_, dtype_info(*target_).block_elems);
    }
  } else {
    s += " (as stored)";
  }
  return s;
}

}  // namespace autoglm::models
