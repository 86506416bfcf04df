// The math the models are made of. Each op has a scalar reference and AVX2 / AVX-512 variants;
// `active()` is the table chosen once at start-up (core/cpu_features.h, AUTOGLM_ISA overrides) and
// `for_isa()` gives any variant, so tests compare every variant with the scalar reference.
//
// All activations are f32. Weights may be f32, f16, bf16, q8_0, q4_0 or q6_K (GGUF layouts).
#pragma once

#include <cstdint>
#include <span>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/matrix.h"

namespace autoglm::kernels {

enum class RopeStyle {
  Interleaved,  // GPT-J / ggml NORM: pairs (x[2j], x[2j+1]); chatglm, glm, glm4, glm4v text
  HalfSplit,    // NeoX: pairs (x[j], x[j + R/2]); glm4_moe, llama
};

// Scaled-dot-product causal attention with GQA for the queries of one sequence.
// Query token t (0 <= t < n_q) sits at absolute position q_pos0 + t and attends to cached
// positions [0, q_pos0 + t]. Query head h uses KV head h / (n_heads / n_kv_heads).
struct AttentionArgs {
  const float* q = nullptr;  // [n_q, n_heads, head_dim]
  float* out = nullptr;      // [n_q, n_heads, head_dim]
  // The cache's element type: F32, or F16 (IEEE half: half the memory, and half the bytes read).
  DType kv_type = DType::F32;
  const void* k = nullptr;  // [n_ctx, n_kv_heads, head_dim] of kv_type (post-RoPE)
  const void* v = nullptr;  // [n_ctx, n_kv_heads, head_dim] of kv_type
  // A paged cache instead of k/v: position j is in block j / block_size, at j % block_size. A V
  // block is [n_kv_heads, block_size, head_dim] (each KV head's rows contiguous); a K block is
  // [n_kv_heads, head_dim, block_size], each head's keys transposed, so that a vector of
  // consecutive elements holds one element of consecutive positions (KernelTable::dot_heads_t).
  const void* const* k_blocks = nullptr;
  const void* const* v_blocks = nullptr;
  int64_t block_size = 0;
  // Bytes from KV head h's part of a block (K or V) to head h + 1's. 0: block_size * head_dim
  // elements, the heads adjacent in each block as above; a cache may instead keep each KV head's
  // blocks in a region of their own, as KvPool does, so that a head's consecutive blocks lie side
  // by side in memory.
  int64_t kv_head_stride = 0;
  int64_t n_q = 0;
  int64_t q_pos0 = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
  // One query token (n_q == 1) over a paged cache may leave its own key and value to the kernel:
  // new_k / new_v [n_kv_heads, head_dim] f32 (keys after RoPE), stored at position q_pos0 by the
  // thread that attends with each KV head, just before it reads that head's rows, through k_store
  // (the position's key column of KV head 0) and v_store (its value row of KV head 0); KV head h's
  // lie one head stride further on per head (kv_head_stride, above). Null: the cache holds them
  // already.
  const float* new_k = nullptr;
  const float* new_v = nullptr;
  void* k_store = nullptr;
  void* v_store = nullptr;
};

// One position's key and value of one KV head into a paged cache of kv_type (F32 or F16, rounded
// to nearest even): the value row (d contiguous elements) as it is; the key into its column,
// element i at i * k_stride elements from k_column (keys are stored transposed).
void store_kv_head(DType kv_type, const float* key, const float* value, int64_t d, void* k_column,
                   int64_t k_stride, void* v_row);

// Activations quantized for the integer dot products: per token, cols/32 blocks of 32 int8 with an
// f32 scale (like q8_0 but the scale stays f32). q[t * cols + i] ≈ x[t, i] / d[t * n_blocks + b].
struct QuantizedActs {
  const int8_t* q = nullptr;  // [n_tokens, cols]
  const float* d = nullptr;   // [n_tokens, cols / 32]
  // [n_tokens, cols / 32] the -8 offset of q4_0, -8·Σq per block, split into two int16 halves:
  // the low half sums q[i] over i % 4 < 2, the high half over i % 4 >= 2. AVX2's 16-bit sums of
  // nibble products pair x that way, so they start from it (matmul_rows8_simd.h). Each half is at
  // most 8·16·127 = 16256 in magnitude.
  const int32_t* q4_offset = nullptr;
  // q, d and q4_offset as the Rows8Pairs q4_0 / q8_0 kernels read them (detail::arrange_acts);
  // q null: those kernels arrange them themselves. One token from quantize_acts_arranged comes
  // in this form alone (the plain q, d and q4_offset above are then null).
  struct Arranged {
    const int8_t* q = nullptr;
    const float* d = nullptr;
    const int32_t* q4_offset = nullptr;
  } arranged = {};
};

// What a softmax over n scores found: their largest value and the normalizer Σ e^(s - max). A
// chunk of a split attention context hands both on, by which the chunks merge into the softmax of
// the whole context. n = 0 gives sum = 0.
struct SoftmaxStats {
  float max = 0.0f, sum = 0.0f;
};

struct KernelTable {
  Isa isa = Isa::Scalar;
  // matmul_rows runs f32, f16, bf16, q4_0 and q8_0 in WeightLayout::Rows8 (8 rows per FMA or
  // integer dot product) faster than in Rows; pack_for_matmul repacks at load when the active table
  // says so.
  bool prefers_rows8 = false;
  // The interleaved layout its f16, bf16, q4_0 and q8_0 kernels read (f32: always Rows8): Rows8, or
  // Rows8Pairs (AVX-512). A table refuses (Error) the other one; the scalar reference reads both.
  WeightLayout packed_layout = WeightLayout::Rows8;

  // y[t, r] = Σ_c W[r, c] · x[t, c] for t < n_tokens, r in [r0, r1). x is [n_tokens, W.cols],
  // y is [n_tokens, ldy]. Quantized weights may quantize x to 8 bits per 32-block internally.
  // Runs on the calling thread; `matmul()` below splits rows over a pool. A Rows8 matrix takes
  // r0 and r1 on multiples of 8 (its row count is one).
  void (*matmul_rows)(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                      int64_t r0, int64_t r1) = nullptr;

  // The integer path of matmul_rows in two steps, so that a matmul split over threads quantizes x
  // once instead of once per chunk: quantize_acts writes x [n_tokens, cols] (cols % 32 == 0) as
  // QuantizedActs into the caller's q [n_tokens · cols], d and q4_offset [n_tokens · cols / 32];
  // matmul_rows_quantized then takes q8_0, q4_0 and q6_K weights (Rows or Rows8) and gives
  // exactly what matmul_rows gives. Null in the scalar table (it has no integer kernels).
  void (*quantize_acts)(const float* x, int64_t n_tokens, int64_t cols, int8_t* q, float* d,
                        int32_t* q4_offset) = nullptr;
  // Optional, where the table's kernels read the arrangement (QuantizedActs::arranged): one token
  // quantized straight into it, the same values quantize_acts gives then arranged, without the
  // plain copy (a decode matmul's quantizing on the calling thread wrote and read its lines twice
  // while the other threads waited). matmul() then hands the kernel the arrangement alone.
  void (*quantize_acts_arranged)(const float* x, int64_t cols, int8_t* q, float* d,
                                 int32_t* q4_offset) = nullptr;
  void (*matmul_rows_quantized)(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                float* y, int64_t ldy, int64_t r0, int64_t r1) = nullptr;

  // Optional (null: matmul() calls the two above): the same for a thread that runs the rows from
  // `next` right after [r0, r1) (next == w.rows: none follow), so that a several-token kernel
  // prefetches their first weights while it finishes these rows instead of starting them cold
  // (ThreadPool::parallel_for_ahead). The results are the plain entries' own.
  void (*matmul_rows_then)(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                           int64_t r0, int64_t r1, int64_t next) = nullptr;
  void (*matmul_rows_quantized_then)(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens,
                                     float* y, int64_t ldy, int64_t r0, int64_t r1,
                                     int64_t next) = nullptr;

  // y = x · rsqrt(mean(x²) + eps) ⊙ w over n elements (mean accumulated in f32 or wider).
  void (*rms_norm)(const float* x, const float* w, int64_t n, float eps, float* y) = nullptr;

  // One block of an online softmax: x[i] = e^(x[i] - m) with m = max(floor, max of x), floor the
  // running max of the blocks before (-inf for the first); returns m and Σ x[i] (not normalized).
  SoftmaxStats (*softmax_block)(float* x, int64_t n, float floor) = nullptr;
  // softmax_block over n_rows rows of n (row r at x + r · stride, with floor[r]; its stats into
  // stats[r]), each to the bit as softmax_block gives it. The SIMD variants run several rows'
  // chains side by side, so that one row's max and sum reductions overlap another's: attention's
  // rows are 32 positions long, where one row at a time waited on its reductions' latency.
  void (*softmax_rows)(float* x, int64_t stride, int64_t n_rows, int64_t n, const float* floor,
                       SoftmaxStats* stats) = nullptr;

  // out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n) = nullptr;

  // y[i] += x[i]
  void (*add)(float* y, const float* x, int64_t n) = nullptr;

  // Σ a[i]·b[i]
  float (*dot)(const float* a, const float* b, int64_t n) = nullptr;

  // y[i] += a · x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n) = nullptr;

  // Attention over a block of key or value rows for n_heads query heads at once (the heads that
  // share a KV head), so each row is loaded once per group and, in axpy_heads, each output once
  // per block:
  //   dot_heads:  out[h · out_stride + r] = scale · Σ_i q[h·n + i] · keys[r][i]
  //   axpy_heads: y[h·n + i] += Σ_r coef[h · coef_stride + r] · values[r][i]
  // for h < n_heads, r < n_rows, i < n. `ahead` (null, or n_rows rows of n elements of the same
  // type) names the rows the caller reads next: the SIMD variants prefetch them while they work,
  // so the next block's cache rows arrive from DRAM during this block's FMAs.
  void (*dot_heads)(const float* q, int64_t n_heads, const float* const* keys, int64_t n_rows,
                    int64_t n, float scale, float* out, int64_t out_stride,
                    const float* const* ahead) = nullptr;
  void (*axpy_heads)(const float* coef, int64_t coef_stride, int64_t n_heads,
                     const float* const* values, int64_t n_rows, float* y, int64_t n,
                     const float* const* ahead) = nullptr;
  // dot_heads over keys stored transposed (a paged cache's K block): element i of position p at
  // kt[i · stride + p], for p < n_pos:
  //   out[h · out_stride + p] = scale · Σ_i q[h·n + i] · kt[i·stride + p]
  // A vector of kt holds one element of consecutive positions, so the scores build up in vectors
  // of positions with no horizontal sums. `ahead` (null, or ahead_bytes from it) is what the
  // caller reads next; the SIMD variants prefetch it while they work.
  void (*dot_heads_t)(const float* q, int64_t n_heads, const float* kt, int64_t stride,
                      int64_t n_pos, int64_t n, float scale, float* out, int64_t out_stride,
                      const void* ahead, int64_t ahead_bytes) = nullptr;
  void (*dot_heads_t_f16)(const float* q, int64_t n_heads, const uint16_t* kt, int64_t stride,
                          int64_t n_pos, int64_t n, float scale, float* out, int64_t out_stride,
                          const void* ahead, int64_t ahead_bytes) = nullptr;
  // dot_heads_t_f16 over two cache blocks of pair_positions positions each (0: no such kernel),
  // kt0's scores into out's first pair_positions columns and kt1's after them; ahead0 and ahead1
  // (null, or ahead_bytes from each) are prefetched. Each broadcast of a query element serves
  // both blocks' FMAs, where a block at a time had one for every FMA.
  int64_t pair_positions = 0;
  void (*dot_heads_t_f16_pair)(const float* q, int64_t n_heads, const uint16_t* kt0,
                               const uint16_t* kt1, int64_t stride, int64_t n, float scale,
                               float* out, int64_t out_stride, const void* ahead0,
                               const void* ahead1, int64_t ahead_bytes) = nullptr;
  // The same over rows of IEEE half (an f16 KV cache), converted to f32 as they are loaded.
  void (*dot_heads_f16)(const float* q, int64_t n_heads, const uint16_t* const* keys,
                        int64_t n_rows, int64_t n, float scale, float* out, int64_t out_stride,
                        const uint16_t* const* ahead) = nullptr;
  void (*axpy_heads_f16)(const float* coef, int64_t coef_stride, int64_t n_heads,
                         const uint16_t* const* values, int64_t n_rows, float* y, int64_t n,
                         const uint16_t* const* ahead) = nullptr;

  // Rotates the first `rot_dims` dims of each of n_heads heads (head_dim apart) of one token.
  // cos/sin hold rot_dims/2 values for this token's position: cos[j] = cos(pos · θ^(-2j/rot_dims)).
  void (*rope)(float* x, int n_heads, int head_dim, int rot_dims, const float* cos,
               const float* sin, RopeStyle style) = nullptr;

  // Row conversion between f32 and any weight dtype (GGUF bit layouts; quantizers round exactly as
  // ggml's reference quantizers, so our q8_0/q4_0 bytes equal llama-quantize's).
  void (*quantize_row)(DType dst_type, const float* src, void* dst, int64_t n) = nullptr;
  void (*dequantize_row)(DType src_type, const void* src, float* dst, int64_t n) = nullptr;
};

const KernelTable& for_isa(Isa isa);  // throws Error if the CPU lacks it
const KernelTable& active();          // for_isa(selected_isa()), chosen once

// Where the AVX-512 kernels prefetch what they stream from memory: decode's weights, a little
// ahead of each stream, and attention's next KV block. Which is faster depends on the core:
// Zen 5 (48 KiB L1) read both faster from L1, Zen 4 (32 KiB L1) from L2, where L1 prefetches left
// one thread from DRAM at 14-21 GB/s of a 17-25 GB/s probe, against 20-28 with L2
// (docs/performance.md, nineteenth session). The results are the same bits either way.
enum class PrefetchLevel { L1, L2 };
// Chosen once: AUTOGLM_PREFETCH=l1|l2 if set (an unknown value throws Error), else L1 where a
// core's L1 data cache holds 48 KiB or more, else L2.
PrefetchLevel prefetch_level();
// Overrides it for the rest of the process (tests run both; not meant to change mid-matmul).
void set_prefetch_level(PrefetchLevel level);
const char* prefetch_level_name(PrefetchLevel level);  // "l1", "l2"

// Weight repacking, once at load, for the layout the active kernels run fastest (matrix.h):
// packed_bytes(w) is what the packed copy needs, 0 when there is nothing to gain (keep w as it is).
size_t packed_bytes(const Matrix& w);
// Writes w's packed copy for `kernels` into dst (rows x row_stride() bytes, any alignment) and
// returns it; those kernels and the scalar reference run the packed matrix (all but f32 take the
// table's packed_layout, which another SIMD table may refuse). Throws when w has no packed
// form. With a pool, the row groups are split over its threads (loading the 3.9 GB bf16 benchmark
// model took 2.6-3.1 s on 2 threads, 4.2-4.5 s on one).
Matrix pack_for_matmul(const Matrix& w, void* dst, ThreadPool* pool = nullptr,
                       const KernelTable& kernels = active());
// Whether pack_f16_as_bf16 takes w: an f16 matrix (Rows layout) that `kernels` can run packed as
// bf16, every value of which is also a bf16 value, as in an f16 file converted from a bf16 release
// (GLM's are bf16): each such f16 value has at most 8 significant bits, which bf16 holds exactly.
// The scan stops at the first value that is not. With a pool, the rows are split over its threads.
bool can_pack_f16_as_bf16(const Matrix& w, ThreadPool* pool = nullptr,
                          const KernelTable& kernels = active());
// pack_for_matmul for an f16 matrix that can_pack_f16_as_bf16 takes: the same values
// packed as bf16 (the returned matrix's dtype), for the bf16 kernels, which widen a weight with a
// shift where f16 takes a conversion (on Zen 4 the conversions share the FMAs' pipes; the f16
// tiles ran 0.89-0.92x the time without them). The products are the same; only the order of the
// sums may differ. Throws when w is not f16 or has no packed bf16 form.
Matrix pack_f16_as_bf16(const Matrix& w, void* dst, ThreadPool* pool = nullptr,
                        const KernelTable& kernels = active());

// Multithreaded y = x · Wᵀ (+ bias): rows split over the pool. y is [n_tokens, W.rows].
void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            const float* bias = nullptr);

// Multithreaded attention (heads and queries split over the pool).
void attention(const AttentionArgs& args, ThreadPool& pool);
// The same for several sequences at once (a batched step), in one parallel region: each
// sequence's output is the one attention(args) gives, bit for bit.
void attention(std::span<const AttentionArgs> batch, ThreadPool& pool);

// Angles for RoPE: cos/sin[j] for j < rot_dims/2 at position pos, f_j = theta^(-2j/rot_dims),
// computed in f32 like the HF reference (inv_freq in f32, then pos * inv_freq in f32).
void rope_angles(int64_t pos, int rot_dims, float theta, float* cos, float* sin);

// GLM-4.5 MoE router (GLM_ARCHITECTURES.md E.3): scores = sigmoid(logits); experts chosen by
// top-k of scores + correction bias (bias may be null); weights = unbiased scores of the chosen,
// optionally normalised to sum 1, times `scale`. Writes k expert ids and weights.
void moe_route(const float* logits, int n_experts, int k, const float* correction_bias,
               bool normalize, float scale, int* expert_ids, float* expert_weights);

}  // namespace autoglm::kernels
