// GGUF block layouts (ggml's block_q8_0, block_q4_0, block_q6_K). These are file-format facts: the
// bytes must match files written by llama.cpp, so every struct is checked with static_assert.
#pragma once

#include <cstdint>

namespace autoglm {

constexpr int kQK = 32;     // elements per q8_0 / q4_0 block
constexpr int kQK_K = 256;  // elements per k-quant super-block

struct BlockQ8_0 {
  uint16_t d;      // f16 scale
  int8_t qs[kQK];  // x[i] = d * qs[i]
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;           // f16 scale
  uint8_t qs[kQK / 2];  // low nibble of qs[j] is x[j], high nibble is x[j + 16]; x = d * (q - 8)
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];      // low 4 bits of the 6-bit quants
  uint8_t qh[kQK_K / 4];      // high 2 bits
  int8_t scales[kQK_K / 16];  // one int8 scale per 16 elements
  uint16_t d;                 // f16 super-block scale; x = d * scale * (q - 32)
};
static_assert(sizeof(BlockQ6_K) == 210);

// Eight q4_0 rows interleaved (kernels::WeightLayout::Rows8): block b of rows 8g..8g+7. Byte
// qs[32k + 4r + j] (k < 4, r < 8, j < 4) is byte 4k + j of row r's BlockQ4_0::qs, so one 32-byte
// load holds elements 4k..4k+3 (low nibbles) and 16+4k..16+4k+3 (high nibbles) of all 8 rows.
// WeightLayout::Rows8Pairs takes blocks 2p and 2p + 1 as one unit of two BlockQ4_0x8's bytes:
// first the 16 scales, row r's of block 2p + s at index 2r + s, then 64-byte pieces k (k < 4;
// q8_0: 8) in which bytes 8r + 4s + i are byte 4k + i of row r's qs in block 2p + s. An odd last
// block keeps this struct's bytes, with each 64 bytes (steps k = 2j, 2j + 1) ordered by row first:
// qs[64j + 8r + 4s + i] is byte 4(2j + s) + i of row r's qs (q8_0 the same, with j < 4).
struct BlockQ4_0x8 {
  uint16_t d[8];  // f16 scale of each row's block
  uint8_t qs[8 * kQK / 2];
};
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0));

// Eight q8_0 rows interleaved the same way: qs[32k + 4r + j] (k < 8) is qs[4k + j] of row r.
struct BlockQ8_0x8 {
  uint16_t d[8];
  int8_t qs[8 * kQK];
};
static_assert(sizeof(BlockQ8_0x8) == 8 * sizeof(BlockQ8_0));

}  // namespace autoglm
