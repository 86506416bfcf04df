// A weight matrix as the kernels see it: [rows, cols] in PyTorch order (y = x · Wᵀ), rows
// contiguous, each row `row_bytes(dtype, cols)` bytes (whole blocks for quantized types), or, once
// repacked for the SIMD kernels (kernels::pack_for_matmul), groups of 8 rows interleaved.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace autoglm::kernels {

enum class WeightLayout {
  Rows,  // the file's layout: row r at data + r * row_stride()
  // q4_0 / q8_0: rows 8g..8g+7 as cols/32 BlockQ4_0x8 / BlockQ8_0x8 (core/quant_blocks.h), so
  // one 256-bit integer dot product yields the block sums of 8 rows at once (no horizontal adds).
  // f32 / f16 / bf16: rows 8g..8g+7 as cols/u units of u elements, unit j of row r at
  // (8j + r)·u elements into the group (u = 1 for f32 and f16, 2 for bf16), so one load holds
  // the 8 rows' weights at one column (a column pair for bf16): 8 outputs per FMA, no
  // horizontal adds, and a weight converted once serves every token of a tile.
  Rows8,
  // The AVX-512 kernels' form of Rows8, for 512-bit vectors whose 64-bit lanes each hold one row:
  // - q4_0 / q8_0: blocks in pairs (core/quant_blocks.h): the pair's 16 scales, then 64-byte
  //   pieces whose 4-byte group 2r + s is row r's step k of block 2p + s, so that a lane holds one
  //   row of one block. An odd last block holds each row's steps 2j and 2j + 1 side by side.
  // - f16 / bf16: Rows8 with twice the unit (u = 2 for f16, 4 for bf16), so a 64-byte line holds
  //   each row's 2 (f16: 4) columns together instead of each column's 8 rows.
  // A 64-bit broadcast of x then lines up with a whole 512-bit load, with no permute; each row's
  // sum lies in two adjacent lanes, added once at the end. f32 has no such form.
  Rows8Pairs,
};

// Groups of 8 rows interleaved (Rows8 or Rows8Pairs): no contiguous rows.
inline bool is_interleaved(WeightLayout l) {
  return l == WeightLayout::Rows8 || l == WeightLayout::Rows8Pairs;
}

struct Matrix {
  DType dtype = DType::F32;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features
  const void* data = nullptr;
  WeightLayout layout = WeightLayout::Rows;
  // bf16 Rows8 matrices: the kernels may round x to bf16 before multiplying (the AVX-512 BF16
  // kernel does: vdpbf16ps). f16 Rows8 matrices: they may round x and the weights to bf16 (the
  // AVX-512 kernel does for 4 tokens or more). The results then move away from an f32 run's, though
  // less than a bf16 run's do; models::Activations says which matrices set it (`--activations`).
  bool x_as_bf16 = false;
  // f16 Rows8Pairs matrices: the AVX-512 kernels may multiply calls of 32 tokens or more in 16-bit
  // integers (x and each pass's weights per block of 32, matmul_f16_int16_avx512.cpp): about the
  // f16 rounding of x that an f16 run of the model makes, at twice the multiply-adds of f32 FMAs.
  // x_as_bf16 takes precedence.
  bool x_as_int16 = false;

  size_t row_stride() const { return row_bytes(dtype, cols); }
  // Rows layout only (the interleaved layouts have no contiguous rows).
  const std::byte* row(int64_t r) const {
    return static_cast<const std::byte*>(data) + static_cast<size_t>(r) * row_stride();
  }
};

// Calls of fewer tokens multiply f16 matrices with Matrix::x_as_int16 in f32 all the same: below
// it, converting each pass of weights to integers costs about what the faster products gain
// (kernel_ab from DRAM, 2 threads, int16 against f32 time: 16 tokens 0.92-0.95, 32 tokens
// 0.78-0.82, 96 tokens 0.62-0.63), and in the model 16-sequence steps lost with it (69-72
// against 75-87 tokens/s, alternated).
inline constexpr int64_t kInt16MinTokens = 32;

}  // namespace autoglm::kernels
