// Load-time weight repacking (matrix.h WeightLayout). Plain byte shuffling, no ISA flags: it runs
// once per matrix while loading, and the scalar reference reads packed rows back through
// unpack_row_q4_0x8.
#include <cstring>

#include "core/error.h"
#include "kernels/detail.h"

namespace autoglm::kernels {
namespace {

bool packs_to_rows8(const Matrix& w) {
  return w.dtype == DType::Q4_0 && w.layout == WeightLayout::Rows && w.rows % 8 == 0 &&
         w.rows > 0 && w.cols % kQK == 0;
}

}  // namespace

size_t packed_bytes(const Matrix& w) {
  return active().prefers_q4_0_rows8 && packs_to_rows8(w)
             ? static_cast<size_t>(w.rows) * w.row_stride()
             : 0;
}

Matrix pack_for_matmul(const Matrix& w, void* dst) {
  if (!packs_to_rows8(w)) {
    fail(
        "pack_for_matmul: no packed layout for a {} matrix of {} x {} (q4_0, rows a multiple of 8)",
        dtype_name(w.dtype), w.rows, w.cols);
  }
  const int64_t n_blocks = w.cols / kQK;
  auto* out = static_cast<BlockQ4_0x8*>(dst);
  for (int64_t g = 0; g < w.rows / 8; ++g) {
    for (int64_t b = 0; b < n_blocks; ++b) {
      BlockQ4_0x8 packed;
      for (int r = 0; r < 8; ++r) {
        BlockQ4_0 src;
        std::memcpy(&src, w.row(8 * g + r) + b * static_cast<int64_t>(sizeof(BlockQ4_0)),
                    sizeof src);
        packed.d[r] = src.d;
        for (int k = 0; k < 4; ++k) std::memcpy(&packed.qs[32 * k + 4 * r], &src.qs[4 * k], 4);
      }
      std::memcpy(&out[g * n_blocks + b], &packed, sizeof packed);
    }
  }
  Matrix m = w;
  m.data = dst;
  m.layout = WeightLayout::Rows8;
  return m;
}

namespace detail {

void unpack_row_q4_0x8(const Matrix& w, int64_t r, BlockQ4_0* out) {
  const int64_t n_blocks = w.cols / kQK;
  const auto* base = static_cast<const std::byte*>(w.data);
  const int ri = static_cast<int>(r % 8);
  for (int64_t b = 0; b < n_blocks; ++b) {
    BlockQ4_0x8 packed;
    std::memcpy(&packed, base + ((r / 8) * n_blocks + b) * static_cast<int64_t>(sizeof packed),
                sizeof packed);
    out[b].d = packed.d[ri];
    for (int k = 0; k < 4; ++k) std::memcpy(&out[b].qs[4 * k], &packed.qs[32 * k + 4 * ri], 4);
  }
}

}  // namespace detail
}  // namespace autoglm::kernels
