// Internals shared by the kernel variants (not part of the kernels API). The SIMD files are
// compiled with ISA flags, so everything they share with plain files lives here as plain
// declarations: no inline templates cross the boundary (an inline function compiled with AVX-512
// flags could be the copy the linker keeps for scalar callers).
#pragma once

#include <cstdint>

#include "core/quant_blocks.h"
#include "kernels/kernels.h"

namespace autoglm::kernels::detail {

KernelTable scalar_table();
KernelTable avx2_table();    // ops_avx2.cpp
KernelTable avx512_table();  // ops_avx512.cpp

// The scalar reference matmul: dequantize each weight row to f32, f32 dot with x.
void matmul_rows_scalar(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1);
void matmul_rows_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);
// Float weights of type DT (f32 / f16 / bf16) for several tokens: 16-row panels converted to f32
// and transposed once per call, then 16 rows x 6 tokens of FMAs. Instantiated for those three types
// in gemm_float_avx2.cpp (not inline: each copy stays in the AVX2 object file).
template <DType DT>
void float_gemm_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                     int64_t r0, int64_t r1);
// The same over the Rows8 layout (pack_for_matmul): weights converted in registers, 8 rows per
// FMA, every token count (matmul_float_rows8_avx2.cpp).
template <DType DT>
void float_rows8_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1);
void matmul_rows_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1);
void matmul_rows_then_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                             int64_t ldy, int64_t r0, int64_t r1, int64_t next);
// f16 and bf16 Rows8 matrices in 512-bit vectors; bf16 with Matrix::x_as_bf16 through vdpbf16ps
// (matmul_float_avx512.cpp); next as in KernelTable::matmul_rows_then.
void float_rows8_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1, int64_t next);
// f16 Rows8Pairs matrices with Matrix::x_as_int16, columns a multiple of 32: weights and x in
// 16-bit integers per block of 32, through vpdpwssd (matmul_f16_int16_avx512.cpp). Returns false,
// having written nothing, when x holds an infinity or a NaN (the f32 kernel then runs).
bool f16_int16_rows_avx512(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                           int64_t r0, int64_t r1, int64_t next);
// Waking a worker costs microseconds (much more on a busy machine), so a chunk of a parallel
// kernel must carry enough work to pay for it: at least ~64K multiply-adds, which keeps tiny
// models single-threaded.
inline constexpr int64_t kMinChunkWork = 64 * 1024;

// Weight streams a thread's rows are read in by one-token matmuls (the 512-bit kernels'
// for_decode_streams, kernels/rows8_avx512.h), and so what kernels::matmul warms ahead of them.
inline constexpr int kDecodeStreams = 4;

// KernelTable::quantize_acts and matmul_rows_quantized of the SIMD tables.
void quantize_acts_avx2(const float* x, int64_t n_tokens, int64_t cols, int8_t* q, float* d,
                        int32_t* q4_offset);
void matmul_rows_quantized_avx2(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                float* y, int64_t ldy, int64_t r0, int64_t r1);
void quantize_acts_avx512(const float* x, int64_t n_tokens, int64_t cols, int8_t* q, float* d,
                          int32_t* q4_offset);
void quantize_acts_arranged_avx512(const float* x, int64_t cols, int8_t* q, float* d,
                                   int32_t* q4_offset);
// q4_0 / q8_0 Rows8 matrices in 512-bit VNNI (matmul_rows8_avx512.cpp); next as in
// KernelTable::matmul_rows_quantized_then.
void q_rows8_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                    int64_t ldy, int64_t r0, int64_t r1, int64_t next);
void matmul_rows_quantized_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                  float* y, int64_t ldy, int64_t r0, int64_t r1);
void matmul_rows_quantized_then_avx512(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                       float* y, int64_t ldy, int64_t r0, int64_t r1, int64_t next);

// Scalar row conversions (GGUF layouts, ggml reference rounding). Throw Error on a dtype that is
// not a weight type or a length that is not a whole number of blocks.
void quantize_row_scalar(DType dst_type, const float* src, void* dst, int64_t n);
void dequantize_row_scalar(DType src_type, const void* src, float* dst, int64_t n);

// This thread's scratch for n_tokens x cols quantized activations, reused across calls (no
// allocation once it is large enough).
struct ActBuffers {
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* q4_offset = nullptr;
};
ActBuffers act_buffers(int64_t n_tokens, int64_t cols);

// QuantizedActs::q4_offset of a block from its two partial sums of q (i % 4 < 2 and i % 4 >= 2).
int32_t q4_offset_halves(int32_t sum_low, int32_t sum_high);

// Quantizes x [n_tokens, cols] (cols % 32 == 0) into act_buffers(). Rounds to nearest:
// |x - d·q| <= d/2 with d = amax/127 per block of 32.
QuantizedActs quantize_acts(const float* x, int64_t n_tokens, int64_t cols);

// The Rows8Pairs q4_0 / q8_0 kernels' arrangement of quantized activations
// (QuantizedActs::arranged), in which a tile of tokens finds a step's activations side by side and
// its steps one after the other, all at constant offsets from one pointer. A step is a block pair
// 2p, 2p + 1, or an odd last block alone. The tokens go in groups of kActGroupTokens from the
// first (the kernels' tiles; the last group holds the 1-3 left); a group's steps in order; in a
// step, each token's blocks in turn. In a pair, byte 4m + i of block 2p + s (m < 8) lies at
// 8m + 4s + i of its 64 bytes, so that one 64-bit broadcast holds the same 4 elements of both
// blocks; a lone block stays as it is. d and q4_offset go the same way, a value per block.
inline constexpr int64_t kActGroupTokens = 4;
// Writes tokens [t0, t1) of xa's q, d and q4_offset (n_tokens x cols) to their places in the
// arrangement of all n_tokens; each of the outputs holds as many values as its source.
void arrange_acts(const QuantizedActs& xa, int64_t t0, int64_t t1, int64_t n_tokens, int64_t cols,
                  int8_t* q, float* d, int32_t* q4_offset);

// Row r of an interleaved (Rows8 / Rows8Pairs) matrix back in the file's layout (w.row_stride()
// bytes into out).
void unpack_row_x8(const Matrix& w, int64_t r, void* out);

// Throws Error: w was packed for another kernel table (KernelTable::packed_layout).
[[noreturn]] void refuse_layout(const Matrix& w, Isa isa);

// Per-thread f32 scratch of at least n floats (grows, never shrinks). Slots: 0 the scalar matmul's
// dequantized row, 1 attention scores, 2 MoE routing, 3 activation scales, 4 bf16 split x (AVX2) or
// x as bf16 (AVX-512), 5 the f32 weight panel of float_gemm_avx2, 6 and 7 an attention tile's query
// rows and outputs, 8 a pass of f16 weights rounded to bf16 (AVX-512, Matrix::x_as_bf16), 9 the
// AVX-512 integer kernels' activation offsets (int32), 10 their arranged q when the caller gave
// none (and 12, 13 its d and q4_offset), 11 the SIMD transposed-key dot products' padded last
// positions (ops_simd.h), 14 and 15 x's integers and scales for f16_int16_rows_avx512 and 16 its
// pass of weights as integers.
constexpr int kScratchSlots = 17;
float* scratch_f32(int64_t n, int slot);

}  // namespace autoglm::kernels::detail
