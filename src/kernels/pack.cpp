// Load-time weight repacking (matrix.h WeightLayout). Plain byte shuffling, no ISA flags: it runs
// once per matrix while loading, and the scalar reference reads packed rows back through
// unpack_row_x8.
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/detail.h"

namespace autoglm::kernels {
namespace {

// Rows8 geometry of a q4_0 / q8_0 block: bytes of one row's block, of its scale, and how many
// 4-byte groups of quants it holds (4 for q4_0: each byte carries two elements).
struct Rows8Geometry {
  size_t block_bytes;
  int groups;
};

Rows8Geometry geometry(DType dt) {
  return dt == DType::Q4_0 ? Rows8Geometry{sizeof(BlockQ4_0), 4}
                           : Rows8Geometry{sizeof(BlockQ8_0), 8};
}

bool is_float(DType dt) {
  return dt == DType::F32 || dt == DType::F16 || dt == DType::BF16;
}

// Float Rows8 (matrix.h): bytes of one row's unit, the run of elements the kernel converts in one
// step: one element for f32 and f16, a pair for bf16 (its 32-bit lanes split into two f32 by a
// shift and a mask). Rows8Pairs doubles the unit of f16 and bf16, so that a 64-bit lane holds two
// of Rows8's units of one row; f32 has no Rows8Pairs form.
size_t float_unit_bytes(DType dt, WeightLayout layout) {
  const size_t rows8 = dt == DType::F16 ? 2 : 4;
  return layout == WeightLayout::Rows8Pairs ? 2 * rows8 : rows8;
}

// The interleaved layout `kernels` reads for w's dtype (f32 always Rows8).
WeightLayout packed_layout_for(DType dt, const KernelTable& kernels) {
  return dt == DType::F32 ? WeightLayout::Rows8 : kernels.packed_layout;
}

bool packs_to(const Matrix& w, WeightLayout layout) {
  if (w.layout != WeightLayout::Rows || w.rows % 8 != 0 || w.rows <= 0 || w.cols <= 0) return false;
  if (w.dtype == DType::Q4_0 || w.dtype == DType::Q8_0) return w.cols % kQK == 0;
  if (!is_float(w.dtype)) return false;
  const size_t unit_elems = float_unit_bytes(w.dtype, layout) / dtype_info(w.dtype).block_bytes;
  return w.cols % static_cast<int64_t>(unit_elems) == 0;
}

// Where row r's quant group k (4 bytes) lies in an interleaved block, counted from its quants
// (after the 8 scales): Rows8 puts the 8 rows' group k together, Rows8Pairs each row's groups 2j
// and 2j + 1 together within the 64 bytes of groups 2j and 2j + 1 (matrix.h).
size_t quant_group_offset(WeightLayout layout, int k, int r) {
  if (layout == WeightLayout::Rows8Pairs) return 64 * (k / 2) + 8 * r + 4 * (k % 2);
  return 32 * k + 4 * r;
}

// One block of 8 rows: scales first (8 x f16), then the quant groups. A row's block is its f16
// scale followed by its quants (BlockQ4_0 / BlockQ8_0).
void interleave(const std::byte* const rows[8], std::byte* dst, const Rows8Geometry& g,
                WeightLayout layout) {
  for (int r = 0; r < 8; ++r) {
    std::memcpy(dst + 2 * r, rows[r], 2);
    for (int k = 0; k < g.groups; ++k)
      std::memcpy(dst + 16 + quant_group_offset(layout, k, r), rows[r] + 2 + 4 * k, 4);
  }
}

// Float Rows8, one group: the destination written in order, unit j of the 8 rows after another.
// With the unit size a constant, each copy compiles to one move instead of a call to memcpy.
template <size_t Unit>
void interleave_units(const Matrix& w, int64_t group, std::byte* out) {
  const size_t units = w.row_stride() / Unit;
  const std::byte* rows[8];
  for (int r = 0; r < 8; ++r) rows[r] = w.row(8 * group + r);
  for (size_t j = 0; j < units; ++j) {
    for (int r = 0; r < 8; ++r, out += Unit) std::memcpy(out, rows[r] + j * Unit, Unit);
  }
}

// Rows 8·group..8·group+7 of w into their place in dst, in `layout` (Rows8 or Rows8Pairs).
void pack_group(const Matrix& w, int64_t group, std::byte* dst, WeightLayout layout) {
  std::byte* out = dst + group * 8 * static_cast<int64_t>(w.row_stride());
  if (is_float(w.dtype)) {
    switch (float_unit_bytes(w.dtype, layout)) {
      case 2:
        return interleave_units<2>(w, group, out);
      case 4:
        return interleave_units<4>(w, group, out);
      default:
        return interleave_units<8>(w, group, out);
    }
  }
  const Rows8Geometry g = geometry(w.dtype);
  for (int64_t b = 0; b < w.cols / kQK; ++b) {
    const std::byte* rows[8];
    for (int r = 0; r < 8; ++r) rows[r] = w.row(8 * group + r) + b * g.block_bytes;
    interleave(rows, out + b * 8 * static_cast<int64_t>(g.block_bytes), g, layout);
  }
}

}  // namespace

size_t packed_bytes(const Matrix& w) {
  const KernelTable& k = active();
  return k.prefers_rows8 && packs_to(w, packed_layout_for(w.dtype, k))
             ? static_cast<size_t>(w.rows) * w.row_stride()
             : 0;
}

Matrix pack_for_matmul(const Matrix& w, void* dst, ThreadPool* pool, const KernelTable& kernels) {
  const WeightLayout layout = packed_layout_for(w.dtype, kernels);
  if (!packs_to(w, layout)) {
    fail(
        "pack_for_matmul: no packed layout for a {} matrix of {} x {} for the {} kernels (f32; "
        "f16, with an even column count on AVX-512; bf16, with an even column count, a multiple "
        "of 4 on AVX-512; q4_0 or q8_0; rows a multiple of 8)",
        dtype_name(w.dtype), w.rows, w.cols, isa_name(kernels.isa));
  }
  auto* out = static_cast<std::byte*>(dst);
  const auto pack_groups = [&](int64_t begin, int64_t end) {
    for (int64_t group = begin; group < end; ++group) pack_group(w, group, out, layout);
  };
  if (pool != nullptr) {
    pool->parallel_for(w.rows / 8, pack_groups, 16);
  } else {
    pack_groups(0, w.rows / 8);
  }
  Matrix m = w;
  m.data = dst;
  m.layout = layout;
  return m;
}

namespace detail {

void unpack_row_x8(const Matrix& w, int64_t r, void* out) {
  if (is_float(w.dtype)) {
    const size_t unit = float_unit_bytes(w.dtype, w.layout);
    const size_t units = w.row_stride() / unit;
    const std::byte* group =
        static_cast<const std::byte*>(w.data) + (r / 8) * 8 * w.row_stride() + (r % 8) * unit;
    for (size_t j = 0; j < units; ++j)
      std::memcpy(static_cast<std::byte*>(out) + j * unit, group + j * 8 * unit, unit);
    return;
  }
  const Rows8Geometry g = geometry(w.dtype);
  const int64_t n_blocks = w.cols / kQK;
  const auto* base = static_cast<const std::byte*>(w.data);
  auto* dst = static_cast<std::byte*>(out);
  const int64_t ri = r % 8;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const std::byte* packed = base + ((r / 8) * n_blocks + b) * 8 * g.block_bytes;
    std::byte* block = dst + b * g.block_bytes;
    std::memcpy(block, packed + 2 * ri, 2);
    for (int k = 0; k < g.groups; ++k)
      std::memcpy(block + 2 + 4 * k, packed + 16 + quant_group_offset(w.layout, k, ri), 4);
  }
}

void refuse_layout(const Matrix& w, Isa isa) {
  fail(
      "a {} matrix packed in the {} layout reached the {} kernels, which read {}: pack it with "
      "pack_for_matmul for the table that runs it",
      dtype_name(w.dtype), w.layout == WeightLayout::Rows8Pairs ? "Rows8Pairs" : "Rows8",
      isa_name(isa), w.layout == WeightLayout::Rows8Pairs ? "Rows8" : "Rows8Pairs");
}

}  // namespace detail
}  // namespace autoglm::kernels
