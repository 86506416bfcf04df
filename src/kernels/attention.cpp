// kernels::attention: causal GQA attention over a flat or paged KV cache (f32 or f16), in one
// pass over the cache's blocks with an online softmax, for one sequence or a batched step's.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/detail.h"
#include "kernels/kernels.h"

namespace autoglm::kernels {
namespace {

// Cache rows per call of dot_heads / axpy_heads (row_block): kRowBlock, or kOneTokenRowBlock where
// a unit has one query token. Its rows are used by few multiply-adds each, so the pass waits on
// the cache rows, and a block and the next one's prefetched rows must share the L1: at 64
// positions of an f16 cache they take 64 KiB for one KV head (keys and values, this block and the
// next), more than Zen 5's 48 KiB, and the value rows missed (half of the samples of a decode's
// attention, on their loads). kernels_bench bm_attention_decode (f16, 2 KV heads, KV in huge
// pages), 3 alternated rounds, us: 2048 positions, one thread 225-243 -> 175-199 (32), two
// 138-155 -> 102-131; 8192, one thread 864-973 -> 736-799, two 640-682 -> 594-617. 16 positions:
// 190-199, 123-135, 766-801, 684-709; 48: 217-222, 115-138, 862-908, 493-625. With the KV pool's
// layout (every layer's keys and values in each block, as the benchmark lays them out since),
// 64 -> 32: one thread 215-251 -> 170-193 and 859-1024 -> 745-783, two 122-130 -> 97-127 and
// 564-642 -> 568-691 (two threads, each on its own KV head, read 18 GB/s together, one alone 10.5).
// Prompts' tiles (8 tokens) keep 64: their rows are used 8 times as often, and 32 cost them 5-10%
// (bm_attention_prefill, 512 and 2048 tokens, one and two threads).
constexpr int64_t kRowBlock = 64;
constexpr int64_t kOneTokenRowBlock = 32;

static_assert(kOneTokenRowBlock <= kRowBlock, "attend's row arrays hold kRowBlock rows");

int64_t row_block(int64_t n_rows, int64_t group) {
  return n_rows <= group ? kOneTokenRowBlock : kRowBlock;
}

// Where the rows of one KV head lie: a flat cache [n_ctx][n_kv_heads][head_dim], or a paged one
// whose V blocks are [n_kv_heads][block_size][head_dim] (fill) and K blocks
// [n_kv_heads][head_dim][block_size] (dot_transposed reads those; fill is for rows only).
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

// The scores of positions [j, j + nr) against a paged cache's keys, stored transposed in each
// block ([head_dim][block_size] per KV head): one dot_heads_t call per cache block the range
// touches (an f16 cache's whole blocks of the SIMD width two to a call: dot_heads_t_f16_pair),
// each prefetching the blocks rb positions further on (if before j_end) while it computes;
// scores are rb apart from one row to the next.
template <class E>
void dot_transposed(const KernelTable& k, const float* q, int64_t n_rows, const HeadRows& keys,
                    int64_t j, int64_t nr, int64_t j_end, int head_dim, float scale, int64_t rb,
                    float* scores) {
  const int64_t bs = keys.block_size;
  const auto block_keys = [&](int64_t pos) {
    return static_cast<const std::byte*>(keys.blocks[pos / bs]) + keys.head_offset;
  };
  const int64_t region = int64_t{head_dim} * bs * int64_t{sizeof(E)};
  for (int64_t done = 0; done < nr;) {
    const int64_t o = (j + done) % bs;
    if constexpr (std::is_same_v<E, uint16_t>) {
      // Two whole blocks of one vector each: one call, each query broadcast serving both.
      if (k.pair_positions == bs && o == 0 && nr - done >= 2 * bs) {
        const int64_t next = j + done + rb;
        k.dot_heads_t_f16_pair(q, n_rows, reinterpret_cast<const E*>(block_keys(j + done)),
                               reinterpret_cast<const E*>(block_keys(j + done + bs)), bs, head_dim,
                               scale, scores + done, rb, next < j_end ? block_keys(next) : nullptr,
                               next + bs < j_end ? block_keys(next + bs) : nullptr, region);
        done += 2 * bs;
        continue;
      }
    }
    const int64_t n_pos = std::min(bs - o, nr - done);
    const E* kt = reinterpret_cast<const E*>(block_keys(j + done)) + o;
    const int64_t next = j + done + rb;
    const void* ahead = next < j_end ? block_keys(next) : nullptr;
    if constexpr (std::is_same_v<E, float>) {
      k.dot_heads_t(q, n_rows, kt, bs, n_pos, head_dim, scale, scores + done, rb, ahead, region);
    } else {
      k.dot_heads_t_f16(q, n_rows, kt, bs, n_pos, head_dim, scale, scores + done, rb, ahead,
                        region);
    }
    done += n_pos;
  }
}

// Rows whose softmax statistics one softmax_rows call returns (attend's stack array).
constexpr int64_t kSoftmaxRows = 16;

// Query rows that share one KV head (the group's heads of one or more consecutive tokens: row i
// belongs to token i / group), over cache positions [j_begin, j_end); row i sees positions below
// first_end + i / group (causal). E is the cache's element type. out [n_rows, head_dim] gets
// Σ p·v with p the softmax of the row's scores in the range. With `partial`, the range is one
// chunk of the context, and partial[i] gets row i's SoftmaxStats, by which merge_chunks weighs
// the chunks (sum 0: the row sees none of the range, and its output is 0).
//
// One pass over blocks of row_block positions, each block's keys and then its values, with the
// softmax carried from block to block (running max and sum per row; out is rescaled when the max
// grows), instead of a pass over all keys and then one over all values: the next block's rows are
// known while this one is computed, so they are prefetched meanwhile (the pass over all values
// had met every value row cold). Each key and value row is read once for all the rows.
template <class E>
void attend(const KernelTable& k, const float* q, int64_t n_rows, int64_t group, int64_t first_end,
            int64_t j_begin, int64_t j_end, int head_dim, float scale, const HeadRows& keys,
            const HeadRows& values, float* out, SoftmaxStats* partial) {
  const int64_t n = j_end - j_begin;
  const int64_t rb = row_block(n_rows, group);
  // [n_rows, rb] scores of a block, then the running max and sum of each row.
  float* scores = detail::scratch_f32(n_rows * (rb + 2), 1);
  float* run_max = scores + n_rows * rb;
  float* run_sum = run_max + n_rows;
  SoftmaxStats stats[kSoftmaxRows];
  std::fill(run_max, run_max + n_rows, -INFINITY);
  std::fill(run_sum, run_sum + n_rows, 0.0f);
  std::fill(out, out + n_rows * head_dim, 0.0f);
  // The key and value rows of the block and of the next one. A block's rows are prefetched while
  // the block before it is computed: its keys during the dot products, its values during the
  // value sums, so each has a whole phase to arrive (the value sums' first pass touches every
  // value row of the block at once).
  const E* rows[2][2][kRowBlock];  // [current, next][keys, values]; keys of a flat cache only
  const bool paged_keys = keys.blocks != nullptr;
  if (!paged_keys) keys.fill(j_begin, std::min(rb, n), rows[0][0]);
  values.fill(j_begin, std::min(rb, n), rows[0][1]);
  int cur = 0;
  for (int64_t j0 = 0; j0 < n; j0 += rb, cur ^= 1) {
    const int64_t nr = std::min(rb, n - j0);
    const E* const* key_rows = rows[cur][0];
    const E* const* value_rows = rows[cur][1];
    // The next block: a full one, or the rows of the last one repeated up to nr (prefetching a
    // line twice costs nothing); null after the last.
    const int64_t next_nr = std::min(rb, n - j0 - nr);
    const E* const* next_keys = nullptr;
    const E* const* next_values = nullptr;
    if (next_nr > 0) {
      const E** nk = rows[cur ^ 1][0];
      const E** nv = rows[cur ^ 1][1];
      if (!paged_keys) {
        keys.fill(j_begin + j0 + nr, next_nr, nk);
        std::fill(nk + next_nr, nk + nr, nk[next_nr - 1]);
      }
      values.fill(j_begin + j0 + nr, next_nr, nv);
      std::fill(nv + next_nr, nv + nr, nv[next_nr - 1]);
      next_keys = nk, next_values = nv;
    }
    if (paged_keys) {
      dot_transposed<E>(k, q, n_rows, keys, j_begin + j0, nr, j_end, head_dim, scale, rb, scores);
    } else if constexpr (std::is_same_v<E, float>) {
      k.dot_heads(q, n_rows, key_rows, nr, head_dim, scale, scores, rb, next_keys);
    } else {
      k.dot_heads_f16(q, n_rows, key_rows, nr, head_dim, scale, scores, rb, next_keys);
    }
    // Each token's rows (group of them: row i is token i / group's) see the block's first `seen`
    // positions (all but near the causal end); up to kSoftmaxRows of them at a time run their
    // softmaxes side by side.
    for (int64_t t = 0; t < n_rows; t += group) {
      const int64_t seen = std::clamp<int64_t>(first_end + t / group - (j_begin + j0), 0, nr);
      for (int64_t i = t; i < t + group; ++i)
        std::fill(scores + i * rb + seen, scores + i * rb + nr, 0.0f);
      if (seen == 0) continue;
      for (int64_t r0 = t; r0 < t + group; r0 += kSoftmaxRows) {
        const int64_t m = std::min(kSoftmaxRows, t + group - r0);
        k.softmax_rows(scores + r0 * rb, rb, m, seen, run_max + r0, stats);  // p = e^(s - max)
        for (int64_t i = r0; i < r0 + m; ++i) {
          const SoftmaxStats block = stats[i - r0];
          // 0 for the first block (-inf - max). Past the first blocks the max seldom grows, and
          // then e^0 = 1 needs no call.
          const float keep = run_max[i] == block.max ? 1.0f : std::exp(run_max[i] - block.max);
          if (keep != 1.0f) {
            float* o = out + i * head_dim;
            for (int d = 0; d < head_dim; ++d) o[d] *= keep;
          }
          run_max[i] = block.max;
          run_sum[i] = run_sum[i] * keep + block.sum;
        }
      }
    }
    if constexpr (std::is_same_v<E, float>) {
      k.axpy_heads(scores, rb, n_rows, value_rows, nr, out, head_dim, next_values);
    } else {
      k.axpy_heads_f16(scores, rb, n_rows, value_rows, nr, out, head_dim, next_values);
    }
  }
  for (int64_t i = 0; i < n_rows; ++i) {
    const float inv = run_sum[i] > 0.0f ? 1.0f / run_sum[i] : 0.0f;
    float* o = out + i * head_dim;
    for (int d = 0; d < head_dim; ++d) o[d] *= inv;
    if (partial != nullptr) partial[i] = {run_max[i], run_sum[i]};
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

// Query tokens per unit of attention work: their rows share every key and value row read.
constexpr int64_t kTileTokens = 8;

void check_attention_args(const AttentionArgs& a) {
  if (a.n_heads <= 0 || a.n_kv_heads <= 0 || a.n_heads % a.n_kv_heads != 0 || a.head_dim <= 0) {
    fail("attention: {} query heads cannot share {} KV heads (need a positive multiple)", a.n_heads,
         a.n_kv_heads);
  }
  if (a.kv_type != DType::F32 && a.kv_type != DType::F16) {
    fail("attention: a KV cache of {} is not supported (f32 or f16)", dtype_name(a.kv_type));
  }
  if (a.new_k != nullptr && (a.n_q != 1 || a.k_blocks == nullptr || a.new_v == nullptr ||
                             a.k_store == nullptr || a.v_store == nullptr)) {
    fail(
        "attention: a new key and value are stored by the kernel only for one query token over a "
        "paged cache, with new_v, k_store and v_store given ({} query tokens)",
        a.n_q);
  }
}

// How one sequence's attention splits into units of work. One unit is a tile of up to
// kTileTokens consecutive query tokens and one KV head: the tile's query heads of that group are
// computed together, so each K and V row is read once for all of them (group x tokens rows)
// instead of once per token and head. With fewer units than threads (decode on many cores: 1
// token x 2 KV heads for GLM-4), each unit's context is split into chunks that are merged
// afterwards, so every thread has work and each row is still read once (splitting the group's
// heads instead had each thread read the whole context).
struct AttentionPlan {
  int group = 0;              // query heads per KV head
  int64_t pairs = 0;          // tiles x KV heads
  int64_t chunks = 1;         // context chunks per pair
  int64_t units = 0;          // pairs x chunks
  int64_t tile_rows = 0;      // query rows of a full tile
  int64_t work_per_unit = 0;  // multiply-adds of a unit, about
  int64_t first_unit = 0;     // this sequence's first unit among a batch's
  // Where its chunks' statistics and outputs start in the batch's chunk buffers (chunks > 1):
  // rows of statistics, and floats of outputs (sequences may differ in head_dim).
  int64_t chunk_row0 = 0;
  int64_t chunk_float0 = 0;
};

AttentionPlan plan_attention(const AttentionArgs& a, int threads) {
  AttentionPlan p;
  p.group = a.n_heads / a.n_kv_heads;
  const int64_t tiles = (a.n_q + kTileTokens - 1) / kTileTokens;
  p.pairs = tiles * a.n_kv_heads;
  const int64_t n_ctx_max = a.q_pos0 + a.n_q;
  p.chunks = p.pairs >= threads ? 1
                                : std::clamp<int64_t>(n_ctx_max / kMinChunkPositions, 1,
                                                      (threads + p.pairs - 1) / p.pairs);
  p.units = p.pairs * p.chunks;
  p.tile_rows = std::min(a.n_q, kTileTokens) * p.group;
  p.work_per_unit = 2 * (n_ctx_max / p.chunks + 1) * a.head_dim * p.tile_rows;
  return p;
}

// Position j of KV head h: flat, at j * (n_kv_heads rows) + h; paged, in block j / block_size,
// whose head h starts h * kv_head_stride bytes in (a value row at j % block_size rows from there; a
// key at element j % block_size of each of the head's head_dim columns: dot_transposed).
HeadRows head_rows(const AttentionArgs& a, const void* flat, const void* const* blocks, int64_t h) {
  const int64_t head_bytes = int64_t{a.head_dim} * dtype_info(a.kv_type).block_bytes;
  HeadRows r;
  r.flat = static_cast<const std::byte*>(flat);
  r.blocks = blocks;
  r.block_size = a.block_size;
  r.row_stride = blocks ? head_bytes : a.n_kv_heads * head_bytes;
  const int64_t block_head_stride = a.kv_head_stride ? a.kv_head_stride : a.block_size * head_bytes;
  r.head_offset = h * (blocks ? block_head_stride : head_bytes);
  return r;
}

// KV head h's key and value of the query token into the cache (AttentionArgs::new_k), at the
// head's offset in its blocks as head_rows reads them.
void store_new_position(const AttentionArgs& a, int64_t h) {
  const int64_t head_offset = head_rows(a, nullptr, a.k_blocks, h).head_offset;
  store_kv_head(a.kv_type, a.new_k + h * a.head_dim, a.new_v + h * a.head_dim, a.head_dim,
                static_cast<std::byte*>(a.k_store) + head_offset, a.block_size,
                static_cast<std::byte*>(a.v_store) + head_offset);
}

// Unit i of sequence a. With chunks, its output and statistics go to chunk_out / chunk_stats
// ([units][tile_rows][head_dim] from the plan's chunk_float0 and [units][tile_rows] from its
// chunk_row0), merged later.
void attention_unit(const KernelTable& k, const AttentionArgs& a, const AttentionPlan& p, int64_t i,
                    float* chunk_out, SoftmaxStats* chunk_stats) {
  const int64_t q_stride = static_cast<int64_t>(a.n_heads) * a.head_dim;  // per query token
  const int64_t pair = i / p.chunks, c = i % p.chunks;
  const int64_t t0 = (pair / a.n_kv_heads) * kTileTokens;
  const int64_t nt = std::min(kTileTokens, a.n_q - t0);
  const int64_t kv_head = pair % a.n_kv_heads;
  const int64_t h0 = kv_head * p.group;
  const int64_t rows = nt * p.group;
  // Causal: token t sees positions [0, q_pos0 + t]; the tile's last token sees the most.
  const int64_t first_end = a.q_pos0 + t0 + 1, last_end = a.q_pos0 + t0 + nt;
  const int64_t j_begin = last_end * c / p.chunks, j_end = last_end * (c + 1) / p.chunks;
  const int64_t row0 = i * p.tile_rows;  // the unit's first row among the sequence's chunk rows
  SoftmaxStats* stats = p.chunks > 1 ? chunk_stats + p.chunk_row0 + row0 : nullptr;
  // The token's own position lies in the last chunk only; no other unit reads it.
  if (a.new_k != nullptr && c == p.chunks - 1) store_new_position(a, kv_head);
  if (j_begin == j_end) {  // a chunk of a context shorter than the chunk count
    for (int64_t r = 0; r < rows; ++r) stats[r] = {};
    return;
  }
  // One token's group rows lie together in q and out; a tile's are gathered into contiguous
  // scratch [token][head][head_dim] and its outputs scattered back.
  const float* q = a.q + t0 * q_stride + h0 * a.head_dim;
  float* out = p.chunks > 1 ? chunk_out + p.chunk_float0 + row0 * a.head_dim
                            : a.out + t0 * q_stride + h0 * a.head_dim;
  const int64_t group_floats = p.group * a.head_dim;
  if (nt > 1) {
    float* qt = detail::scratch_f32(rows * a.head_dim, 6);
    for (int64_t t = 0; t < nt; ++t)
      std::copy_n(q + t * q_stride, group_floats, qt + t * group_floats);
    q = qt;
    if (p.chunks == 1) out = detail::scratch_f32(rows * a.head_dim, 7);
  }
  const HeadRows keys = head_rows(a, a.k, a.k_blocks, kv_head);
  const HeadRows values = head_rows(a, a.v, a.v_blocks, kv_head);
  if (a.kv_type == DType::F16) {
    attend<uint16_t>(k, q, rows, p.group, first_end, j_begin, j_end, a.head_dim, a.scale, keys,
                     values, out, stats);
  } else {
    attend<float>(k, q, rows, p.group, first_end, j_begin, j_end, a.head_dim, a.scale, keys, values,
                  out, stats);
  }
  if (nt > 1 && p.chunks == 1) {
    float* dst = a.out + t0 * q_stride + h0 * a.head_dim;
    for (int64_t t = 0; t < nt; ++t)
      std::copy_n(out + t * group_floats, group_floats, dst + t * q_stride);
  }
}

// The chunks of each of sequence a's pairs merged into its output.
void merge_sequence_chunks(const AttentionArgs& a, const AttentionPlan& p, const float* chunk_out,
                           const SoftmaxStats* chunk_stats) {
  const int64_t q_stride = static_cast<int64_t>(a.n_heads) * a.head_dim;
  for (int64_t pair = 0; pair < p.pairs; ++pair) {
    const int64_t t0 = (pair / a.n_kv_heads) * kTileTokens, h0 = (pair % a.n_kv_heads) * p.group;
    const int64_t nt = std::min(kTileTokens, a.n_q - t0);
    for (int64_t r = 0; r < nt * p.group; ++r) {
      // chunk 0's entry for row r
      const int64_t first = pair * p.chunks * p.tile_rows + r;
      const int64_t t = t0 + r / p.group, h = h0 + r % p.group;
      merge_chunks(chunk_out + p.chunk_float0 + first * a.head_dim,
                   chunk_stats + p.chunk_row0 + first, p.chunks, p.tile_rows, a.head_dim,
                   a.out + t * q_stride + h * a.head_dim);
    }
  }
}

}  // namespace

void store_kv_head(DType kv_type, const float* key, const float* value, int64_t d, void* k_column,
                   int64_t k_stride, void* v_row) {
  const KernelTable& k = active();
  const int64_t elem = dtype_info(kv_type).block_bytes;
  thread_local std::vector<std::byte> row;  // the key in kv_type, before it goes to its column
  row.resize(static_cast<size_t>(d * elem));
  k.quantize_row(kv_type, key, row.data(), d);
  auto* column = static_cast<std::byte*>(k_column);
  for (int64_t i = 0; i < d; ++i)
    std::memcpy(column + i * k_stride * elem, row.data() + i * elem, static_cast<size_t>(elem));
  k.quantize_row(kv_type, value, v_row, d);
}

void attention(const AttentionArgs& a, ThreadPool& pool) {
  attention(std::span(&a, 1), pool);
}

// Every sequence's units in one parallel region: a step of many sequences, each with too little
// context to keep the threads busy for long, waits once at the end of the region instead of once
// per sequence (a q4_0 decode's attention regions, one per token and layer, spent 17% of their
// time waiting at the end). The benchmark model's 16-sequence q4_0 steps (2 threads, contexts
// under 40 positions, alternated): 222.9 -> 222.8, 231.0 -> 236.9, 230.3 -> 235.6 tokens/s.
void attention(std::span<const AttentionArgs> batch, ThreadPool& pool) {
  if (batch.empty()) return;
  for (const AttentionArgs& a : batch) check_attention_args(a);
  const KernelTable& k = active();
  thread_local std::vector<AttentionPlan> plans;
  plans.clear();
  int64_t units = 0, chunk_rows = 0, chunk_floats = 0, work = 0;
  for (const AttentionArgs& a : batch) {
    AttentionPlan p = plan_attention(a, pool.size());
    p.first_unit = units;
    p.chunk_row0 = chunk_rows;
    p.chunk_float0 = chunk_floats;
    units += p.units;
    if (p.chunks > 1) {
      chunk_rows += p.units * p.tile_rows;
      chunk_floats += p.units * p.tile_rows * a.head_dim;
    }
    work += p.units * p.work_per_unit;
    plans.push_back(p);
  }
  // The chunks' outputs and statistics, for the sequences split over the context.
  thread_local std::vector<float> chunk_out;
  thread_local std::vector<SoftmaxStats> chunk_stats;
  if (chunk_rows > 0) {
    chunk_out.resize(static_cast<size_t>(chunk_floats));
    chunk_stats.resize(static_cast<size_t>(chunk_rows));
  }
  float* chunk_out_p = chunk_out.data();
  SoftmaxStats* chunk_stats_p = chunk_stats.data();
  const AttentionPlan* plans_p = plans.data();
  const int64_t work_per_unit = work / std::max<int64_t>(1, units);
  const int64_t grain =
      std::max<int64_t>(1, detail::kMinChunkWork / std::max<int64_t>(1, work_per_unit));
  pool.parallel_for(
      units,
      [&](int64_t i0, int64_t i1) {
        // Last units first (the last sequence's, and in each its last tiles): their contexts are
        // the longest, and a thread that ends the region on a short unit waits less for the others.
        size_t s = batch.size() - 1;
        for (int64_t step = i0; step < i1; ++step) {
          const int64_t i = units - 1 - step;
          while (plans_p[s].first_unit > i) --s;
          attention_unit(k, batch[s], plans_p[s], i - plans_p[s].first_unit, chunk_out_p,
                         chunk_stats_p);
        }
      },
      grain);
  for (size_t s = 0; s < batch.size(); ++s) {
    if (plans[s].chunks > 1) merge_sequence_chunks(batch[s], plans[s], chunk_out_p, chunk_stats_p);
  }
}

}  // namespace autoglm::kernels
