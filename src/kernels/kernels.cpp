// Dispatch (one table per ISA, chosen once) and the multithreaded drivers built on the tables
// (attention: attention.cpp).
#include "kernels/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <span>
#include <string_view>
#include <unordered_map>
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

namespace {

PrefetchLevel default_prefetch_level() {
  if (const char* forced = std::getenv("AUTOGLM_PREFETCH"); forced && *forced) {
    const std::string_view name(forced);
    for (PrefetchLevel level : {PrefetchLevel::L1, PrefetchLevel::L2}) {
      if (name == prefetch_level_name(level)) return level;
    }
    fail(
        "AUTOGLM_PREFETCH={} is not a cache level: use l1 or l2 (or unset it to let the CPU's "
        "L1 size decide)",
        name);
  }
  constexpr int64_t kL1Streaming = 48 * 1024;
  return cpu_features().l1d_bytes >= kL1Streaming ? PrefetchLevel::L1 : PrefetchLevel::L2;
}

// Read by the kernels once per call (relaxed: a plain flag, set before any matmul runs).
std::atomic<PrefetchLevel>& prefetch_setting() {
  static std::atomic<PrefetchLevel> level{default_prefetch_level()};
  return level;
}

}  // namespace

PrefetchLevel prefetch_level() {
  return prefetch_setting().load(std::memory_order_relaxed);
}

void set_prefetch_level(PrefetchLevel level) {
  prefetch_setting().store(level, std::memory_order_relaxed);
}

const char* prefetch_level_name(PrefetchLevel level) {
  return level == PrefetchLevel::L1 ? "l1" : "l2";
}

const KernelTable& active() {
  static const KernelTable& table = []() -> const KernelTable& {
    const KernelTable& t = for_isa(selected_isa());
    log::info("kernels: using the {} variants (CPU: {}; streams prefetched into {})",
              isa_name(t.isa), cpu_features().describe(), prefetch_level_name(prefetch_level()));
    return t;
  }();
  return table;
}

// Rows per chunk: a multiple of 16, so it is also one of 8 (Rows8 matrices split on row groups),
// and at least 64, so that even the last, smallest chunks of parallel_for decode 8 row groups in
// 4 weight streams of 2 (kernels/rows8_avx512.h for_decode_streams).
int64_t matmul_grain(int64_t cols, int64_t n_tokens) {
  const int64_t per_row = std::max<int64_t>(1, cols * n_tokens);
  const int64_t rows = std::max<int64_t>(64, (detail::kMinChunkWork + per_row - 1) / per_row);
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
QuantizedActs quantize_once(const KernelTable& k, const float* x, int64_t n_tokens, const Matrix& w,
                            ThreadPool& pool) {
  // The buffers: q, d and q4_offset, then their arrangement for the Rows8Pairs kernels.
  thread_local std::vector<int8_t> q[2];
  thread_local std::vector<float> d[2];
  thread_local std::vector<int32_t> q4_offset[2];
  const int64_t cols = w.cols;
  const int64_t n_blocks = cols / kQK;
  // The 512-bit q4_0 / q8_0 kernels read x in their own arrangement (detail::arrange_acts).
  const bool arranged = w.layout == WeightLayout::Rows8Pairs;
  for (int i = 0; i < (arranged ? 2 : 1); ++i) {
    if (static_cast<int64_t>(q[i].size()) < n_tokens * cols)
      q[i].resize(static_cast<size_t>(n_tokens * cols));
    if (static_cast<int64_t>(d[i].size()) < n_tokens * n_blocks) {
      d[i].resize(static_cast<size_t>(n_tokens * n_blocks));
      q4_offset[i].resize(static_cast<size_t>(n_tokens * n_blocks));
    }
  }
  if (n_tokens == 1 && arranged && k.quantize_acts_arranged != nullptr) {
    k.quantize_acts_arranged(x, cols, q[1].data(), d[1].data(), q4_offset[1].data());
    QuantizedActs one;
    one.arranged = {q[1].data(), d[1].data(), q4_offset[1].data()};
    return one;
  }
  // The workers write through these pointers: named inside the lambda, the thread_locals would be
  // each worker's own.
  QuantizedActs out{q[0].data(), d[0].data(), q4_offset[0].data()};
  if (arranged) out.arranged = {q[1].data(), d[1].data(), q4_offset[1].data()};
  int8_t* qp = q[0].data();
  float* dp = d[0].data();
  int32_t* op = q4_offset[0].data();
  int8_t* qa = q[1].data();
  float* da = d[1].data();
  int32_t* oa = q4_offset[1].data();
  // Quantizing costs a few operations per element, not a multiply-add per weight: a chunk needs
  // several tokens' worth (16K elements, as the model's row-wise steps: models/blocks.cpp) to pay
  // for waking a worker, which spins between the matmuls of a step. One token (decode) stays on
  // this thread; a 16-sequence step splits in two.
  constexpr int64_t kMinQuantizeChunk = 16 * 1024;
  const int64_t grain = std::max<int64_t>(1, kMinQuantizeChunk / cols);
  pool.parallel_for(
      n_tokens,
      [&](int64_t t0, int64_t t1) {
        k.quantize_acts(x + t0 * cols, t1 - t0, cols, qp + t0 * cols, dp + t0 * n_blocks,
                        op + t0 * n_blocks);
        if (arranged) detail::arrange_acts(out, t0, t1, n_tokens, cols, qa, da, oa);
      },
      grain);
  return out;
}

// Decode reads every matrix once a step, in the same order each step, and its threads wait at the
// end of each matmul: for the other threads, and for the calling thread's work before the next
// one (norms, attention, quantizing x). Meanwhile each can fetch into its L2 the first weights it
// will read in the next matmul (ThreadPool::WarmPlan): the first lines of the streams of its first
// chunk (kernels/rows8_avx512.h for_decode_streams). The next matrix is the one that followed
// this one in the step before, as this calling thread saw it.
class DecodeSuccessors {
 public:
  // Records that w follows the matrix of the call before; returns the matrix that followed w
  // last time, or null.
  const Matrix* follow(const Matrix& w) {
    if (last_ != nullptr) next_[last_] = w;
    last_ = w.data;
    const auto it = next_.find(w.data);
    return it == next_.end() ? nullptr : &it->second;
  }

 private:
  const void* last_ = nullptr;
  std::unordered_map<const void*, Matrix> next_;  // a matrix's data -> the matrix after it
};

// Bytes a thread warms for its first chunk of the next matrix, over all its streams: well within
// an L2, and about what one wait at the end of a decode matmul lets it fetch.
constexpr int64_t kWarmBytes = 384 * 1024;

// What thread `index` reads first of w in a decode matmul: its first chunk's streams.
WarmPlan decode_warm_plan(const Matrix& w, const ThreadPool& pool, int index) {
  WarmPlan plan;
  if (w.layout == WeightLayout::Rows) return plan;
  const auto [r0, r1] = pool.first_chunk(w.rows, matmul_grain(w.cols, 1), index);
  const int64_t group_bytes = 8 * static_cast<int64_t>(w.row_stride());
  const int64_t n_groups = (r1 - r0) / 8;
  static_assert(detail::kDecodeStreams <= WarmPlan::kMaxStreams);
  const int64_t per_stream = n_groups / detail::kDecodeStreams;
  plan.n_streams = per_stream > 0 ? detail::kDecodeStreams : 1;
  const int64_t stream_groups = per_stream > 0 ? per_stream : n_groups;
  plan.bytes = std::min(stream_groups * group_bytes, kWarmBytes / plan.n_streams);
  const auto base = reinterpret_cast<uintptr_t>(w.data);
  for (int s = 0; s < plan.n_streams; ++s)
    plan.start[s] = base + static_cast<uintptr_t>((r0 / 8 + s * stream_groups) * group_bytes);
  return plan;
}

// The plans of a decode matmul of w: one per thread of the pool, or none.
std::span<const WarmPlan> decode_warm_plans(const Matrix& w, const ThreadPool& pool) {
  if (pool.size() == 1) return {};  // no thread waits
  thread_local DecodeSuccessors successors;
  thread_local std::vector<WarmPlan> plans;
  const Matrix* next = successors.follow(w);
  if (next == nullptr) return {};
  plans.resize(static_cast<size_t>(pool.size()));
  for (int i = 0; i < pool.size(); ++i)
    plans[static_cast<size_t>(i)] = decode_warm_plan(*next, pool, i);
  return plans;
}

}  // namespace

void matmul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            const float* bias) {
  const KernelTable& k = active();
  const bool quantized = has_integer_kernels(w.dtype) && k.matmul_rows_quantized != nullptr;
  const QuantizedActs xa = quantized ? quantize_once(k, x, n_tokens, w, pool) : QuantizedActs{};
  // Where the table can (KernelTable::matmul_rows_then), the kernel learns which rows this thread
  // runs after [r0, r1): w.rows when none (or not known).
  const bool has_then =
      quantized ? k.matmul_rows_quantized_then != nullptr : k.matmul_rows_then != nullptr;
  const auto rows = [&](int64_t r0, int64_t r1, int64_t next) {
    if (quantized && has_then) {
      k.matmul_rows_quantized_then(w, xa, n_tokens, y, w.rows, r0, r1, next);
    } else if (quantized) {
      k.matmul_rows_quantized(w, xa, n_tokens, y, w.rows, r0, r1);
    } else if (has_then) {
      k.matmul_rows_then(w, x, n_tokens, y, w.rows, r0, r1, next);
    } else {
      k.matmul_rows(w, x, n_tokens, y, w.rows, r0, r1);
    }
    if (bias == nullptr) return;
    for (int64_t t = 0; t < n_tokens; ++t) k.add(y + t * w.rows + r0, bias + r0, r1 - r0);
  };
  // Chunks of >= 16 rows: waking a thread for less work costs more than it gains.
  const int64_t grain = matmul_grain(w.cols, n_tokens);
  // A batch of a few tokens: each chunk of a thread prefetches the first weights of its next one,
  // where the table can, since a chunk's first pass started cold
  // and takes little time to compute. The model, 2 threads, alternated with the plain split:
  // 16-sequence steps q4_0 1.04x (median of 12 pairs, 11 faster), f16 1.01x (4 pairs), bf16 1.00x
  // (3 pairs); q8_0's kernel leaves it out where its tiles already start warm. Not for
  // prompts: a thread that has claimed its next chunk can keep the others waiting for it at the
  // end, and at 512 tokens a chunk is 64 rows x 512 tokens of work (q4_0 prefill 0.99x, 6 pairs).
  // Not for decode: its chunks read 4 streams each, prefetched ahead within the chunk.
  constexpr int64_t kMaxTokensToClaimAhead = 64;
  if (has_then && n_tokens > 1 && n_tokens <= kMaxTokensToClaimAhead)
    return pool.parallel_for_ahead(w.rows, rows, grain);
  pool.parallel_for(
      w.rows, [&](int64_t r0, int64_t r1) { rows(r0, r1, w.rows); }, grain,
      n_tokens == 1 ? decode_warm_plans(w, pool) : std::span<const WarmPlan>{});
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
