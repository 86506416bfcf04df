// Load-time weight repacking (matrix.h WeightLayout). Plain byte shuffling, no ISA flags: it runs
// once per matrix while loading, and the scalar reference reads packed rows back through
// unpack_row_x8.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
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

// Where row r's scale and its quant group k (4 bytes) of block b lie in an interleaved group of
// n_blocks blocks, in bytes from the group's start (matrix.h, core/quant_blocks.h). Rows8: block b
// at b·B (B = 8 row blocks), its 8 scales, then the 8 rows' group k together. Rows8Pairs: blocks
// 2p and 2p + 1 as one unit of 2B bytes, the 16 scales of rows r, blocks s (2r + s) first, then
// 64-byte pieces k holding row r's group k of block 2p + s at 8r + 4s; an odd last block alone
// at its place, each row's groups 2j and 2j + 1 together in piece j.
struct QuantPlace {
  size_t scale, quants;
};

QuantPlace quant_place(WeightLayout layout, size_t block_bytes, int64_t n_blocks, int64_t b, int k,
                       int r) {
  const size_t unit = 8 * block_bytes;  // one block of the 8 rows
  const size_t base = static_cast<size_t>(b) * unit;
  if (layout != WeightLayout::Rows8Pairs) return {base + 2 * r, base + 16 + 32 * k + 4 * r};
  const bool paired = b < n_blocks - n_blocks % 2;
  if (!paired) return {base + 2 * r, base + 16 + 64 * (k / 2) + 8 * r + 4 * (k % 2)};
  const int s = static_cast<int>(b % 2);
  const size_t pair = base - s * unit;
  return {pair + 2 * (2 * r + s), pair + 32 + 64 * k + 8 * r + 4 * s};
}

// One block of 8 rows into its places in the group at dst. A row's block is its f16 scale
// followed by its quants (BlockQ4_0 / BlockQ8_0).
void interleave(const std::byte* const rows[8], std::byte* dst, const Rows8Geometry& g,
                WeightLayout layout, int64_t n_blocks, int64_t b) {
  for (int r = 0; r < 8; ++r) {
    std::memcpy(dst + quant_place(layout, g.block_bytes, n_blocks, b, 0, r).scale, rows[r], 2);
    for (int k = 0; k < g.groups; ++k) {
      const QuantPlace at = quant_place(layout, g.block_bytes, n_blocks, b, k, r);
      std::memcpy(dst + at.quants, rows[r] + 2 + 4 * k, 4);
    }
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
    interleave(rows, out, g, layout, w.cols / kQK, b);
  }
}

// Whether an f16 value has an exact bf16 form: at most 8 significant bits, that is the three low
// mantissa bits of a normal value clear (infinities and NaNs alike: their f32 form shifts the
// mantissa as a normal's), or a subnormal whose bits span at most 8.
bool f16_fits_bf16(uint16_t h) {
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp != 0) return (mant & 7u) == 0;
  if (mant == 0) return true;
  const int span = std::bit_width(mant) - std::countr_zero(mant);
  return span <= 8;
}

// An f16 value's bf16 bits, for values f16_fits_bf16 takes: exact. The subnormals go through f32.
uint16_t f16_as_bf16_bits(uint16_t h) {
  return static_cast<uint16_t>(f32_to_bits(f16_to_f32(h)) >> 16);
}

// Every f16 bit pattern's bf16 bits (for the values f16_fits_bf16 takes) and whether it fits: one
// load per value where the conversion through f32 branches on subnormals (done that way, the scan
// and the conversion took 54% of the samples of loading the 3.9 GB benchmark model).
struct F16ToBf16Table {
  std::vector<uint16_t> bits = std::vector<uint16_t>(65536);
  std::vector<uint8_t> fits = std::vector<uint8_t>(65536);
  F16ToBf16Table() {
    for (uint32_t h = 0; h < 65536; ++h) {
      bits[h] = f16_as_bf16_bits(static_cast<uint16_t>(h));
      fits[h] = f16_fits_bf16(static_cast<uint16_t>(h)) ? 1 : 0;
    }
  }
};

const F16ToBf16Table& f16_to_bf16_table() {
  static const F16ToBf16Table table;
  return table;
}

// Float Rows8 of bf16 from f16 rows, one group: the f16 values interleaved as the bf16 matrix of
// the same values would be (interleave_units with bf16's unit), then converted in place.
void interleave_f16_as_bf16(const Matrix& w, int64_t group, size_t unit_bytes, std::byte* out) {
  std::byte* dst = out + group * 8 * static_cast<int64_t>(w.row_stride());
  if (unit_bytes == 4) {
    interleave_units<4>(w, group, dst);
  } else {
    interleave_units<8>(w, group, dst);
  }
  const uint16_t* bits = f16_to_bf16_table().bits.data();
  auto* v = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < 8 * w.cols; ++i) v[i] = bits[v[i]];
}

}  // namespace

bool can_pack_f16_as_bf16(const Matrix& w, ThreadPool* pool, const KernelTable& kernels) {
  Matrix as_bf16 = w;
  as_bf16.dtype = DType::BF16;
  if (w.dtype != DType::F16 || !kernels.prefers_rows8 ||
      !packs_to(as_bf16, packed_layout_for(DType::BF16, kernels))) {
    return false;
  }
  std::atomic<bool> fits{true};
  const uint8_t* fits_bf16 = f16_to_bf16_table().fits.data();
  const auto check_rows = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end && fits.load(std::memory_order_relaxed); ++r) {
      const auto* row = reinterpret_cast<const uint16_t*>(w.row(r));
      unsigned all = 1;
      for (int64_t c = 0; c < w.cols; ++c) all &= fits_bf16[row[c]];
      if (all == 0) fits.store(false, std::memory_order_relaxed);
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(w.rows, check_rows, 64);
  } else {
    check_rows(0, w.rows);
  }
  return fits.load();
}

Matrix pack_f16_as_bf16(const Matrix& w, void* dst, ThreadPool* pool, const KernelTable& kernels) {
  Matrix as_bf16 = w;  // the shape and strides the packed bf16 matrix has
  as_bf16.dtype = DType::BF16;
  const WeightLayout layout = packed_layout_for(DType::BF16, kernels);
  if (w.dtype != DType::F16 || !packs_to(as_bf16, layout)) {
    fail(
        "pack_f16_as_bf16: no packed bf16 layout for a {} matrix of {} x {} for the {} kernels "
        "(f16, rows a multiple of 8, columns even, and a multiple of 4 for the AVX-512 layout)",
        dtype_name(w.dtype), w.rows, w.cols, isa_name(kernels.isa));
  }
  const size_t unit_bytes = float_unit_bytes(DType::BF16, layout);
  auto* out = static_cast<std::byte*>(dst);
  const auto pack_groups = [&](int64_t begin, int64_t end) {
    for (int64_t group = begin; group < end; ++group)
      interleave_f16_as_bf16(w, group, unit_bytes, out);
  };
  if (pool != nullptr) {
    pool->parallel_for(w.rows / 8, pack_groups, 16);
  } else {
    pack_groups(0, w.rows / 8);
  }
  as_bf16.data = dst;
  as_bf16.layout = layout;
  return as_bf16;
}

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

void arrange_acts(const QuantizedActs& xa, int64_t t0, int64_t t1, int64_t n_tokens, int64_t cols,
                  int8_t* q, float* d, int32_t* q4_offset) {
  const int64_t nb = cols / kQK;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t g0 = t / kActGroupTokens * kActGroupTokens;  // the group's first token
    const int64_t group = std::min(kActGroupTokens, n_tokens - g0);
    const int8_t* src = xa.q + t * cols;
    for (int64_t b = 0; b < nb; b += 2, src += 2 * kQK) {
      const int64_t width = b + 1 < nb ? 2 : 1;                   // blocks in the step
      const int64_t at = g0 * nb + b * group + (t - g0) * width;  // the token's step, in blocks
      for (int64_t s = 0; s < width; ++s) {
        d[at + s] = xa.d[t * nb + b + s];
        q4_offset[at + s] = xa.q4_offset[t * nb + b + s];
      }
      int8_t* dst = q + at * kQK;
      if (width == 1) {
        std::memcpy(dst, src, kQK);
        continue;
      }
      for (int m = 0; m < 8; ++m) {
        std::memcpy(dst + 8 * m, src + 4 * m, 4);
        std::memcpy(dst + 8 * m + 4, src + kQK + 4 * m, 4);
      }
    }
  }
}

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
  const int ri = static_cast<int>(r % 8);
  const std::byte* group = base + (r / 8) * n_blocks * 8 * static_cast<int64_t>(g.block_bytes);
  for (int64_t b = 0; b < n_blocks; ++b) {
    std::byte* block = dst + b * g.block_bytes;
    std::memcpy(block, group + quant_place(w.layout, g.block_bytes, n_blocks, b, 0, ri).scale, 2);
    for (int k = 0; k < g.groups; ++k) {
      const QuantPlace at = quant_place(w.layout, g.block_bytes, n_blocks, b, k, ri);
      std::memcpy(block + 2 + 4 * k, group + at.quants, 4);
    }
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
