// Dispatch (one table per ISA, chosen once) and the multithreaded drivers built on the tables.
#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/quant_blocks.h"
#include "kernels/detail.h"

namespace autoglm::kernels {

const KernelTable& for_isa(Isa isa) {
  if (!cpu_features().supports(isa)) {
    fail("this CPU cannot run the {} kernels (it has: {}); unset AUTOGLM_ISA or choose a lower one",
         isa_name(isa), cpu_features().describe());
  }
  static const KernelTable scalar = detail::scalar_table();
  switch (isa) {
    case Isa::Scalar:
      return scalar;
    case Isa::Avx2: {
      static const KernelTable avx2 = detail::avx2_table();
      return avx2;
    }
    case Isa::Avx512: {
      static const KernelTable avx512 = detail::avx512_table();
      return avx512;
    }
  }
  return scalar;
}

const KernelTable& active() {
  static const KernelTable& table = []() -> const KernelTable& {
    const KernelTable& t = for_isa(selected_isa());
    log::info("kernels: using the {} variants (CPU: {})", isa_name(t.isa),
              cpu_features().describe());
    return t;
  }();
  return table;
}

// Waking a worker costs microseconds (much more on a busy machine), so a chunk must carry enough
// work to pay for it: at least ~64K multiply-adds, which keeps tiny models single-threaded.
constexpr int64_t kMinChunkWork = 64 * 1024;

// Rows per chunk: a multiple of 16, so it is also one of 8 (Rows8 matrices split on row groups).
int64_t matmul_grain(int64_t cols, int64_t n_tokens) {
  const int64_t per_row = std::max<int64_t>(1, cols * n_tokens);
  const int64_t rows = std::max<int64_t>(16, (kMinChunkWork + per_row - 1) / per_row);
  return (rows + 15) / 16 * 16;
}

namespace {

bool has_integer_kernels(DType dt) {
  return dt == DType::Q4_0 || dt == DType::Q8_0 || dt == DType::Q6_K;
}

// x quantized for the integer kernels once per matmul, tokens split over the pool, into buffers
// of the calling thread (grown, never shrunk: no allocation once warm). Each chunk of rows used to
// quantize all of x itself: 4 chunks per thread meant 8 quantizations of x per matmul on 2 threads,
// about 5% of q4_0 prefill.
QuantizedActs quantize_once(const KernelTable& k, const float* x, int64_t n_tokens, int64_t cols,
                            ThreadPool& pool) {
  thread_local std::vector<int8_t> q;
  thread_local std::vector<float> d;
  thread_local std::vector<int32_t> q4_offset;
  const int64_t n_blocks = cols / kQK;
  if (static_cast<int64_t>(q.size()) < n_tokens * cols)
    q.resize(static_cast<size_t>(n_tokens * cols));
  if (static_cast<int64_t>(d.size()) < n_tokens * n_blocks) {
    d.resize(static_cast<size_t>(n_tokens * n_blocks));
    q4_offset.resize(static_cast<size_t>(n_tokens * n_blocks));
  }
  // The workers write through these pointers: named inside the lambda, the thread_locals would be
  // each worker's own.
  const QuantizedActs out{q.data(), d.data(), q4_offset.data()};
  int8_t* qp = q.data();
  float* dp = d.data();
  int32_t* op = q4_offset.data();
  // Quantizing costs a few operations per element, not a multiply-add per weight: a chunk needs
  // many tokens' worth to pay for waking a worker. One token (decode) stays on this thread.
  const int64_t grain = std::max<int64_t>(1, 4 * kMinChunkWork / cols);
  pool.parallel_for(
      n_tokens,
      [&](int64_t t0, int64_t t1) {
        k.quantize_acts(x + t0 * cols, t1 - t0, cols, qp + t0 * cols, dp + t0 * n_blocks,
                        op + t0 * n_blocks);
      },
      grain);
  return out;
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            const float* bias) {
  const KernelTable& k = active();
  const bool quantized = has_integer_kernels(w.dtype) && k.matmul_rows_quantized != nullptr;
  const QuantizedActs xa =
      quantized ? quantize_once(k, x, n_tokens, w.cols, pool) : QuantizedActs{};
  // Chunks of >= 16 rows: waking a thread for less work costs more than it gains.
  pool.parallel_for(
      w.rows,
      [&](int64_t r0, int64_t r1) {
        if (quantized) {
          k.matmul_rows_quantized(w, xa, n_tokens, y, w.rows, r0, r1);
        } else {
          k.matmul_rows(w, x, n_tokens, y, w.rows, r0, r1);
        }
        if (bias == nullptr) return;
        for (int64_t t = 0; t < n_tokens; ++t) k.add(y + t * w.rows + r0, bias + r0, r1 - r0);
      },
      matmul_grain(w.cols, n_tokens));
}

namespace {

// Cache rows per call of dot_heads / axpy_heads.
constexpr int64_t kRowBlock = 64;

// Where the rows of one KV head lie: a flat cache [n_ctx][n_kv_heads][head_dim], or a paged one
// whose blocks are [n_kv_heads][block_size][head_dim].
struct HeadRows {
  const std::byte* flat = nullptr;
  const void* const* blocks = nullptr;
  int64_t block_size = 0;
  int64_t row_stride = 0;   // bytes from one position's row to the next within a block or the cache
  int64_t head_offset = 0;  // bytes from a block's (or the flat cache's) start to this head's rows

  // rows[r] = position j0 + r, for r < n: one division per call, not one per row.
  template <class E>
  void fill(int64_t j0, int64_t n, const E** rows) const {
    if (blocks == nullptr) {
      for (int64_t r = 0; r < n; ++r)
        rows[r] = reinterpret_cast<const E*>(flat + head_offset + (j0 + r) * row_stride);
      return;
    }
    int64_t b = j0 / block_size, o = j0 % block_size;
    for (int64_t r = 0; r < n; ++r) {
      rows[r] = reinterpret_cast<const E*>(static_cast<const std::byte*>(blocks[b]) + head_offset +
                                           o * row_stride);
      if (++o == block_size) o = 0, ++b;
    }
  }
};

// The query heads of one token that share one KV head (the group: 8 per KV head in GLM-4), over
// cache positions [j_begin, j_end). E is the cache's element type. out [nh, head_dim] gets
// Σ p·v with p the softmax of the range's scores. With `partial`, the range is one chunk of the
// context, and partial[h] gets head h's SoftmaxStats, by which merge_chunks weighs the chunks.
template <class E>
void attend(const KernelTable& k, const float* q, int64_t nh, int64_t j_begin, int64_t j_end,
            int head_dim, float scale, const HeadRows& keys, const HeadRows& values, float* out,
            SoftmaxStats* partial) {
  const int64_t n = j_end - j_begin;
  float* scores = detail::scratch_f32(nh * n, 1);  // [nh, n]
  // Blocks of kRowBlock cache rows: 32 KiB of a 128-wide f32 head, L1-sized.
  const E* rows[kRowBlock];
  for (int64_t j0 = 0; j0 < n; j0 += kRowBlock) {
    const int64_t nr = std::min(kRowBlock, n - j0);
    keys.fill(j_begin + j0, nr, rows);
    if constexpr (std::is_same_v<E, float>) {
      k.dot_heads(q, nh, rows, nr, head_dim, scale, scores + j0, n);
    } else {
      k.dot_heads_f16(q, nh, rows, nr, head_dim, scale, scores + j0, n);
    }
  }
  for (int64_t h = 0; h < nh; ++h) {
    const SoftmaxStats stats = k.softmax(scores + h * n, n);
    if (partial != nullptr) partial[h] = stats;
  }
  std::fill(out, out + nh * head_dim, 0.0f);
  for (int64_t j0 = 0; j0 < n; j0 += kRowBlock) {
    const int64_t nr = std::min(kRowBlock, n - j0);
    values.fill(j_begin + j0, nr, rows);
    if constexpr (std::is_same_v<E, float>) {
      k.axpy_heads(scores + j0, n, nh, rows, nr, out, head_dim);
    } else {
      k.axpy_heads_f16(scores + j0, n, nh, rows, nr, out, head_dim);
    }
  }
}

// out = Σ_c w_c·o_c / Σ_c w_c with w_c = sum_c·e^(max_c - max of all): the softmax over the whole
// context from the chunks' softmaxes (o_c = Σ p·v within chunk c). Empty chunks have sum = 0.
void merge_chunks(const float* chunk_out, const SoftmaxStats* stats, int64_t n_chunks,
                  int64_t chunk_stride, int head_dim, float* out) {
  float top = -INFINITY;
  for (int64_t c = 0; c < n_chunks; ++c) {
    if (stats[c * chunk_stride].sum > 0.0f) top = std::max(top, stats[c * chunk_stride].max);
  }
  std::fill(out, out + head_dim, 0.0f);
  float total = 0.0f;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const SoftmaxStats st = stats[c * chunk_stride];
    if (st.sum <= 0.0f) continue;
    const float w = st.sum * std::exp(st.max - top);
    total += w;
    const float* o = chunk_out + c * chunk_stride * head_dim;
    for (int i = 0; i < head_dim; ++i) out[i] += w * o[i];
  }
  for (int i = 0; i < head_dim; ++i) out[i] /= total;
}

// A chunk of the context must carry this many positions before a split pays for its merge.
constexpr int64_t kMinChunkPositions = 256;

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0 || a.head_dim <= 0) {
    fail("attention: {} query heads cannot share {} KV heads (need a positive multiple)", a.n_heads,
         a.n_kv_heads);
  }
  if (a.kv_type != DType::F32 && a.kv_type != DType::F16) {
    fail("attention: a KV cache of {} is not supported (f32 or f16)", dtype_name(a.kv_type));
  }
  const KernelTable& k = active();
  const int group = a.n_heads / a.n_kv_heads;
  const int64_t head_bytes = int64_t{a.head_dim} * dtype_info(a.kv_type).block_bytes;
  // Position j of KV head h: flat, at j * (n_kv_heads rows) + h; paged, at (h * block_size +
  // j % block_size) rows into block j / block_size.
  auto head_rows = [&](const void* flat, const void* const* blocks, int64_t h) {
    HeadRows r;
    r.flat = static_cast<const std::byte*>(flat);
    r.blocks = blocks;
    r.block_size = a.block_size;
    r.row_stride = blocks ? head_bytes : a.n_kv_heads * head_bytes;
    r.head_offset = h * (blocks ? a.block_size * head_bytes : head_bytes);
    return r;
  };
  const int64_t q_stride = static_cast<int64_t>(a.n_heads) * a.head_dim;  // per query token
  // One unit of work is a (token, KV head) pair: the group's query heads are computed together, so
  // each K and V row is read once for all of them instead of once per head. With fewer pairs than
  // threads (decode on many cores: 1 token x 2 KV heads for GLM-4), each pair's context is split
  // into chunks that are merged afterwards, so every thread has work and each row is still read
  // once (splitting the group's heads instead had each thread read the whole context).
  const int64_t pairs = a.n_q * a.n_kv_heads;
  const int64_t n_ctx_max = a.q_pos0 + a.n_q;
  const int64_t chunks = pairs >= pool.size()
                             ? 1
                             : std::clamp<int64_t>(n_ctx_max / kMinChunkPositions, 1,
                                                   (pool.size() + pairs - 1) / pairs);
  const int64_t units = pairs * chunks;
  // The chunks' outputs and statistics, [units][group][head_dim] and [units][group].
  thread_local std::vector<float> chunk_out;
  thread_local std::vector<SoftmaxStats> chunk_stats;
  if (chunks > 1) {
    chunk_out.resize(static_cast<size_t>(units * group * a.head_dim));
    chunk_stats.resize(static_cast<size_t>(units * group));
  }
  float* chunk_out_p = chunk_out.data();
  SoftmaxStats* chunk_stats_p = chunk_stats.data();
  const int64_t work_per_unit = 2 * (n_ctx_max / chunks + 1) * a.head_dim * group;
  const int64_t grain = std::max<int64_t>(1, kMinChunkWork / std::max<int64_t>(1, work_per_unit));
  pool.parallel_for(
      units,
      [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t pair = i / chunks, c = i % chunks;
          const int64_t t = pair / a.n_kv_heads;
          const int64_t kv_head = pair % a.n_kv_heads;
          const int64_t h0 = kv_head * group;
          const int64_t n_ctx = a.q_pos0 + t + 1;  // causal: positions [0, q_pos0 + t]
          const int64_t j_begin = n_ctx * c / chunks, j_end = n_ctx * (c + 1) / chunks;
          const float* q = a.q + t * q_stride + h0 * a.head_dim;
          float* out = chunks > 1 ? chunk_out_p + i * group * a.head_dim
                                  : a.out + t * q_stride + h0 * a.head_dim;
          SoftmaxStats* stats = chunks > 1 ? chunk_stats_p + i * group : nullptr;
          if (j_begin == j_end) {  // a chunk of a context shorter than the chunk count
            for (int h = 0; h < group; ++h) stats[h] = {};
            continue;
          }
          const HeadRows keys = head_rows(a.k, a.k_blocks, kv_head);
          const HeadRows values = head_rows(a.v, a.v_blocks, kv_head);
          if (a.kv_type == DType::F16) {
            attend<uint16_t>(k, q, group, j_begin, j_end, a.head_dim, a.scale, keys, values, out,
                             stats);
          } else {
            attend<float>(k, q, group, j_begin, j_end, a.head_dim, a.scale, keys, values, out,
                          stats);
          }
        }
      },
      grain);
  if (chunks == 1) return;
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const int64_t t = pair / a.n_kv_heads, h0 = (pair % a.n_kv_heads) * group;
    for (int h = 0; h < group; ++h) {
      const int64_t first = pair * chunks * group + h;  // chunk 0's entry for head h
      merge_chunks(chunk_out_p + first * a.head_dim, chunk_stats_p + first, chunks, group,
                   a.head_dim, a.out + t * q_stride + (h0 + h) * a.head_dim);
    }
  }
}

void rope_angles(int64_t pos, int rot_dims, float theta, float* cos, float* sin) {
  for (int j = 0; j < rot_dims / 2; ++j) {
    // HF: inv_freq = 1 / theta^(arange(0, R, 2) / R) in f32; angle = pos · inv_freq in f32.
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(rot_dims);
    const float inv_freq = 1.0f / std::pow(theta, exponent);
    const float angle = static_cast<float>(pos) * inv_freq;
    cos[j] = std::cos(angle);
    sin[j] = std::sin(angle);
  }
}

void moe_route(const float* logits, int n_experts, int k, const float* correction_bias,
               bool normalize, float scale, int* expert_ids, float* expert_weights) {
  if (k <= 0 || k > n_experts) {
    fail("MoE routing: cannot choose {} experts out of {}; check num_experts_per_tok", k,
         n_experts);
  }
  float* s = detail::scratch_f32(2 * static_cast<int64_t>(n_experts), 2);
  float* sel = s + n_experts;  // selection score s + bias; chosen entries become -inf
  for (int e = 0; e < n_experts; ++e) {
    s[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    sel[e] = s[e] + (correction_bias != nullptr ? correction_bias[e] : 0.0f);
  }
  float sum = 0.0f;
  for (int i = 0; i < k; ++i) {
    int best = -1;  // first index among equals, as a stable top-k would
    for (int e = 0; e < n_experts; ++e) {
      if (sel[e] != -INFINITY && (best < 0 || sel[e] > sel[best])) best = e;
    }
    if (best < 0) best = 0;  // all remaining were -inf or NaN: cannot happen with finite logits
    expert_ids[i] = best;
    expert_weights[i] = s[best];
    sum += s[best];
    sel[best] = -INFINITY;
  }
  // E.3: divide by (sum + 1e-20) when norm_topk_prob, then multiply by routed_scaling_factor.
  const float norm = normalize ? 1.0f / (sum + 1e-20f) : 1.0f;
  for (int i = 0; i < k; ++i) expert_weights[i] *= norm * scale;
}

}  // namespace autoglm::kernels
