// matmul_rows per weight dtype at the decode shape (1 token x [6144, 2048]) and the prefill shape
// (512 tokens) and a batched-decode step (16 tokens), single thread, active ISA (AUTOGLM_ISA
// selects another), in the file layout and repacked in 8-row groups as the loader does (rows8 1;
// every type but q6_K); bm_matmul_rows_default runs packed bf16 and f16 with the products the
// model uses by default (bf16 activations for bf16, 16-bit integers for f16 from 32 tokens).
// Reports weight GB/s (bytes_per_second: decode is memory-bound) and
// GFLOP/s (prefill is compute-bound). The decode shape's 6144 x 2048 weights fit in a 32 MiB L3;
// bm_matmul_dram cycles through copies of them over 1 GiB, so every weight comes from DRAM, on one
// thread or (packed layouts) split over 2 as the model splits them, and reports beside the
// kernel's weight GB/s the read bandwidth of as many threads, measured right after it
// (read_GB/s). bm_attention_decode and bm_attention_prefill time one layer's attention over a paged
// KV cache: one query after a context, or a prompt's queries over themselves. bm_silu_mul times
// the FFN's element-wise silu(gate) · up over a prompt.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "kernels/detail.h"
#include "kernels/kernels.h"
#include "ops/bandwidth.h"

namespace {

using autoglm::DType;
using autoglm::kernels::Matrix;

constexpr int64_t kRows = 6144;
constexpr int64_t kCols = 2048;
// The in-cache variant (bm_matmul_cached) takes as many rows as fit in 256 KiB (a multiple of 16):
// the weights stay in L2, so it measures what the kernel computes per second when memory is not
// the limit. Decode can reach the bandwidth roofline only where this is well above it.
int64_t cached_rows(DType dt) {
  const int64_t rows = (int64_t{256} << 10) / static_cast<int64_t>(autoglm::row_bytes(dt, kCols));
  return rows < 16 ? 16 : rows / 16 * 16;
}

const DType kDtypes[] = {DType::F32,  DType::F16,  DType::BF16,
                         DType::Q8_0, DType::Q4_0, DType::Q6_K};

std::vector<uint8_t> make_weights(DType dt, int64_t rows) {
  std::vector<uint8_t> bytes(autoglm::row_bytes(dt, kCols) * rows);
  std::mt19937 rng(1);
  if (dt == DType::Q6_K) {  // random bits are valid q6_K blocks; values do not change the speed
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    return bytes;
  }
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> row(kCols);
  const auto& k = autoglm::kernels::active();
  for (int64_t r = 0; r < rows; ++r) {
    for (float& f : row) f = dist(rng);
    k.quantize_row(dt, row.data(), bytes.data() + r * autoglm::row_bytes(dt, kCols), kCols);
  }
  return bytes;
}

// A rows x kCols matmul of n_tokens tokens per iteration, as GFLOP/s (2 per multiply-add).
benchmark::Counter matmul_gflops(const benchmark::State& state, int64_t rows, int64_t n_tokens) {
  return benchmark::Counter(2.0 * static_cast<double>(rows * kCols * n_tokens) *
                                static_cast<double>(state.iterations()) * 1e-9,
                            benchmark::Counter::kIsRate);
}

// model_default: the packed matrix takes the products the loader gives it by default
// (models::Activations::kAuto): bf16 x rounded to bf16 (Matrix::x_as_bf16), f16 in 16-bit integers
// from kernels::kInt16MinTokens tokens (Matrix::x_as_int16); else every product in f32.
void run_matmul(benchmark::State& state, int64_t rows, bool model_default = false) {
  const DType dt = kDtypes[state.range(0)];
  const int64_t n_tokens = state.range(1);
  const bool packed = state.range(2) != 0;
  const std::vector<uint8_t> w_bytes = make_weights(dt, rows);
  Matrix w{dt, rows, kCols, w_bytes.data()};
  std::vector<uint8_t> packed_bytes(autoglm::kernels::packed_bytes(w));
  if (packed) {
    if (packed_bytes.empty()) {
      state.SkipWithError("no packed layout for this dtype on this ISA");
      return;
    }
    w = autoglm::kernels::pack_for_matmul(w, packed_bytes.data());
    w.x_as_bf16 = model_default && dt == DType::BF16;
    w.x_as_int16 = model_default && dt == DType::F16;
  }
  std::vector<float> x(static_cast<size_t>(n_tokens * kCols), 0.5f);
  std::vector<float> y(static_cast<size_t>(n_tokens * rows));
  const auto& k = autoglm::kernels::active();
  for (auto _ : state) {
    k.matmul_rows(w, x.data(), n_tokens, y.data(), rows, 0, rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(autoglm::dtype_name(dt)) + (packed ? " rows8 " : " ") +
                 (model_default ? "default products " : "") + autoglm::isa_name(k.isa));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(w_bytes.size()));
  state.counters["GFLOP/s"] = matmul_gflops(state, rows, n_tokens);
}

// n_tokens tokens against the weights of copies of the decode-shape matrix, 1 GiB in all, one
// copy per iteration, so none is in a cache when it is read. One thread runs the kernel itself;
// more split the rows over a pool as the model does (kernels::matmul), and the read probe uses as
// many.
void run_matmul_dram(benchmark::State& state, DType dt, bool packed, int threads,
                     int64_t n_tokens) {
  const std::vector<uint8_t> source = make_weights(dt, kRows);
  Matrix w{dt, kRows, kCols, source.data()};
  const size_t bytes = packed ? autoglm::kernels::packed_bytes(w) : source.size();
  if (bytes == 0) {
    state.SkipWithError("no packed layout for this dtype on this ISA");
    return;
  }
  const size_t copies = ((size_t{1} << 30) + bytes - 1) / bytes;
  // In huge pages where the kernel gives them, as the model's packed weights and the probe are.
  const autoglm::LargeBuffer all = autoglm::allocate_large(copies * bytes);
  std::vector<Matrix> mats;
  for (size_t c = 0; c < copies; ++c) {
    auto* dst = reinterpret_cast<uint8_t*>(all.get()) + c * bytes;
    if (packed) {
      mats.push_back(autoglm::kernels::pack_for_matmul(w, dst));
    } else {
      std::copy(source.begin(), source.end(), dst);
      mats.push_back(Matrix{dt, kRows, kCols, dst});
    }
  }
  std::vector<float> x(static_cast<size_t>(n_tokens * kCols), 0.5f);
  std::vector<float> y(static_cast<size_t>(n_tokens * kRows));
  const auto& k = autoglm::kernels::active();
  autoglm::ThreadPool pool(threads);
  size_t next = 0;
  for (auto _ : state) {
    if (threads == 1)
      k.matmul_rows(mats[next], x.data(), n_tokens, y.data(), kRows, 0, kRows);
    else
      autoglm::kernels::matmul(mats[next], x.data(), n_tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    next = (next + 1) % copies;
  }
  const double gbps = static_cast<double>(bytes) * static_cast<double>(state.iterations()) /
                      1e9;  // per second once kIsRate divides by the time
  state.counters["GB/s"] = benchmark::Counter(gbps, benchmark::Counter::kIsRate);
  const double read = autoglm::ops::measure_read_bandwidth(pool, size_t{512} << 20, 3).median_gbps;
  state.counters["read_GB/s"] = read;
  state.counters["GFLOP/s"] = matmul_gflops(state, kRows, n_tokens);
  state.SetLabel(std::string(autoglm::dtype_name(dt)) + (packed ? " rows8 " : " ") +
                 autoglm::isa_name(k.isa));
}

// Decode: one token.
void bm_matmul_dram(benchmark::State& state) {
  run_matmul_dram(state, kDtypes[state.range(0)], state.range(1) != 0,
                  static_cast<int>(state.range(2)), 1);
}

// A batched step of several tokens (the packed layout), where the weights still come from memory:
// against bm_matmul_rows at the same tokens (the matrix in cache), what memory costs the tiles.
void bm_matmul_dram_tokens(benchmark::State& state) {
  run_matmul_dram(state, kDtypes[state.range(0)], true, static_cast<int>(state.range(2)),
                  state.range(1));
}

void bm_matmul_rows(benchmark::State& state) {
  run_matmul(state, kRows);
}
// bf16 and f16 packed, with the products the model uses by default (run_matmul's model_default).
void bm_matmul_rows_default(benchmark::State& state) {
  run_matmul(state, kRows, true);
}
void bm_matmul_cached(benchmark::State& state) {
  run_matmul(state, cached_rows(kDtypes[state.range(0)]));
}

// Attention of the benchmark shape (16 query heads sharing KV heads of 128) over a paged f16 or
// f32 cache in blocks of 16 positions (the server's default) for 28 layers, in huge pages where the
// kernel grants them (allocate_large), in one of two layouts and two orders:
//   layout 1 (in order) and 2 (shuffled): as the model's KV pool lays it out since the thirtieth
//     session (models/kv_cache.h KvPool): each (layer, KV head) has a region holding its blocks
//     side by side, so a head's blocks in order are one stream;
//   layout 3 (in order) and 0 (shuffled): the pool's layout before, each block holding the keys
//     and values of every layer, so one layer's blocks lie 28 layers' worth apart.
// In order is how a fresh pool hands blocks to one sequence (autoglm bench); shuffled, how a
// long-running server's pool may. Each iteration runs the next layer, as a decode step or a
// prefill does. Queries are the last n_q of `context` positions (causal). Reports the cache GB/s (K
// and V bytes per second, each read once per iteration) and the multiply-adds as GFLOP/s (q·k and
// p·v for every head and every position a query sees).
void run_attention(benchmark::State& state, bool f16, int64_t context, int threads, int kv_heads,
                   int64_t n_q, int layout) {
  constexpr int kHeads = 16, kHeadDim = 128, kLayers = 28;
  constexpr int64_t kBlock = 16;
  const int64_t elem = f16 ? 2 : 4;
  const int64_t row_bytes = int64_t{kv_heads} * kHeadDim * elem;
  const int64_t n_blocks = (context + kBlock - 1) / kBlock;
  const int64_t part_bytes = kBlock * row_bytes;         // one layer's K (or V) in a block
  const int64_t head_part = kBlock * kHeadDim * elem;    // one KV head's
  const int64_t block_bytes = 2 * kLayers * part_bytes;  // every layer's K and V
  const bool regions = layout == 1 || layout == 2;
  const bool in_order = layout == 1 || layout == 3;
  const int64_t region_bytes = n_blocks * 2 * head_part;  // one (layer, KV head)'s blocks
  // Random finite values of either type: f16 halves of magnitude [0.5, 1), or f32 in [-1, 1).
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const size_t cache_bytes = static_cast<size_t>(n_blocks * block_bytes);
  const autoglm::LargeBuffer cache = autoglm::allocate_large(cache_bytes);
  std::byte* bytes = cache.get();
  const size_t kv_alternation = static_cast<size_t>(regions ? head_part : part_bytes);
  for (size_t i = 0; i < cache_bytes; i += static_cast<size_t>(elem)) {
    const bool is_v = (i / kv_alternation) % 2 == 1;
    if (f16) {
      const uint16_t h = static_cast<uint16_t>((is_v ? 0xb800 : 0x3800) + rng() % 0x400);
      std::memcpy(&bytes[i], &h, 2);
    } else {
      const float f = dist(rng);
      std::memcpy(&bytes[i], &f, 4);
    }
  }
  std::vector<int64_t> order(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) order[static_cast<size_t>(b)] = b;
  if (!in_order) std::shuffle(order.begin(), order.end(), rng);
  std::vector<const void*> k_blocks, v_blocks;  // [layer][block]
  for (int64_t l = 0; l < kLayers; ++l) {
    for (int64_t b : order) {
      std::byte* k = regions ? bytes + l * kv_heads * region_bytes + b * 2 * head_part
                             : bytes + b * block_bytes + l * 2 * part_bytes;
      k_blocks.push_back(k);
      v_blocks.push_back(k + (regions ? head_part : part_bytes));
    }
  }
  std::vector<float> q(static_cast<size_t>(n_q * kHeads * kHeadDim)), out(q.size());
  for (float& f : q) f = dist(rng);
  autoglm::kernels::AttentionArgs a;
  a.q = q.data();
  a.out = out.data();
  a.kv_type = f16 ? DType::F16 : DType::F32;
  a.block_size = kBlock;
  a.kv_head_stride = regions ? region_bytes : 0;
  a.n_q = n_q;
  a.q_pos0 = context - n_q;
  a.n_heads = kHeads;
  a.n_kv_heads = kv_heads;
  a.head_dim = kHeadDim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  autoglm::ThreadPool pool(threads);
  int64_t layer = 0;
  for (auto _ : state) {
    a.k_blocks = k_blocks.data() + layer * n_blocks;
    a.v_blocks = v_blocks.data() + layer * n_blocks;
    autoglm::kernels::attention(a, pool);
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % kLayers;
  }
  state.SetLabel(std::string(f16 ? "f16" : "f32") + " cache " +
                 autoglm::isa_name(autoglm::kernels::active().isa));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * context * row_bytes);
  // Positions seen: n_q·(context - n_q) + n_q·(n_q + 1)/2.
  const double seen = static_cast<double>(n_q) * static_cast<double>(context - n_q) +
                      0.5 * static_cast<double>(n_q) * static_cast<double>(n_q + 1);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * 2.0 * kHeads * kHeadDim * seen * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

// Decode: one query after `context` positions, on 1 or 2 threads (with 2 KV heads, one each, as in
// the model), in each layout; and with 1 KV head on 1 or 2 threads, as GLM-4-9B's 2 KV heads are on
// 4 or more threads: fewer KV heads than threads. At 2048 positions the 28 layers' f16 K and V take
// 56 MiB, more than the L3, so the rows come from DRAM as they do in the model.
void bm_attention_decode(benchmark::State& state) {
  run_attention(state, state.range(0) != 0, state.range(1), static_cast<int>(state.range(2)),
                static_cast<int>(state.range(3)), 1, static_cast<int>(state.range(4)));
}

// Prefill: `tokens` queries over themselves (causal), f16 cache in the model's layout, 2 KV heads:
// each layer's cache was just written, as in the model (at 512 tokens the 28 layers' K and V take
// 14 MiB).
void bm_attention_prefill(benchmark::State& state) {
  run_attention(state, true, state.range(0), static_cast<int>(state.range(1)), 2, state.range(0),
                1);
}

// silu(gate) · up over a 512-token prompt's FFN at the benchmark shape (intermediate 6144), one
// token's row at a time from the fused gate_up output, as dense_mlp_block runs it. Reports
// elements per second and the bytes read and written.
void bm_silu_mul(benchmark::State& state) {
  const auto& k = autoglm::kernels::active();
  constexpr int64_t kInter = 6144, kTokens = 512;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-6.0f, 6.0f);
  std::vector<float> gate_up(static_cast<size_t>(2 * kInter * kTokens));
  for (float& v : gate_up) v = dist(rng);
  std::vector<float> act(static_cast<size_t>(kInter * kTokens));
  for (auto _ : state) {
    for (int64_t t = 0; t < kTokens; ++t) {
      const float* row = gate_up.data() + t * 2 * kInter;
      k.silu_mul(row, row + kInter, act.data() + t * kInter, kInter);
    }
    benchmark::DoNotOptimize(act.data());
    benchmark::ClobberMemory();
  }
  state.counters["elements/s"] = benchmark::Counter(static_cast<double>(kInter * kTokens),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(state.iterations() * 3 * kInter * kTokens *
                          static_cast<int64_t>(sizeof(float)));
  state.SetLabel(autoglm::isa_name(k.isa));
}

// Quantizing a matmul's input for the integer kernels (q4_0, q8_0): quantize_acts, then the
// arrangement the AVX-512 kernels read (detail::arrange_acts), as kernels::matmul runs them on one
// thread for decode (1 token) and a 16-sequence step, at the FFN input's 2048 columns and the
// down projection's 6144. Reports input elements per second.
void bm_quantize_acts(benchmark::State& state) {
  const auto& k = autoglm::kernels::active();
  const int64_t n_tokens = state.range(0), cols = state.range(1);
  if (k.quantize_acts == nullptr) {
    state.SkipWithError("this kernel table has no integer kernels");
    return;
  }
  const bool paired = k.packed_layout == autoglm::kernels::WeightLayout::Rows8Pairs;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * cols));
  for (float& v : x) v = dist(rng);
  std::vector<int8_t> q(x.size()), arranged_q(x.size());
  std::vector<float> d(x.size() / 32), arranged_d(d.size());
  std::vector<int32_t> offsets(x.size() / 32), arranged_offsets(d.size());
  const autoglm::kernels::QuantizedActs xa{q.data(), d.data(), offsets.data()};
  for (auto _ : state) {
    k.quantize_acts(x.data(), n_tokens, cols, q.data(), d.data(), offsets.data());
    if (paired)
      autoglm::kernels::detail::arrange_acts(xa, 0, n_tokens, n_tokens, cols, arranged_q.data(),
                                             arranged_d.data(), arranged_offsets.data());
    benchmark::DoNotOptimize(arranged_q.data());
    benchmark::ClobberMemory();
  }
  state.counters["elements/s"] = benchmark::Counter(static_cast<double>(n_tokens * cols),
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(autoglm::isa_name(k.isa) + std::string(paired ? " + arrange_acts" : ""));
}

BENCHMARK(bm_silu_mul)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_quantize_acts)
    ->ArgNames({"tokens", "cols"})
    ->ArgsProduct({{1, 16}, {2048, 6144}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_matmul_cached)
    ->ArgNames({"dtype", "tokens", "rows8"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1}, {0}})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1}, {1}});
BENCHMARK(bm_matmul_dram)
    ->ArgNames({"dtype", "rows8", "threads"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {0}, {1}})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1}, {1, 2}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_matmul_dram_tokens)
    ->ArgNames({"dtype", "tokens", "threads"})
    ->ArgsProduct({{1, 2, 3, 4}, {16}, {1, 2}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_matmul_rows)
    ->ArgNames({"dtype", "tokens", "rows8"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 16, 512}, {0}})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 16, 512}, {1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_matmul_rows_default)
    ->ArgNames({"dtype", "tokens", "rows8"})
    ->ArgsProduct({{1, 2}, {1, 16, 512}, {1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_attention_decode)
    ->ArgNames({"f16", "context", "threads", "kv_heads", "layout"})
    ->ArgsProduct({{1, 0}, {512, 2048, 8192}, {1, 2}, {2}, {1, 2, 3, 0}})
    ->ArgsProduct({{1}, {2048, 8192}, {1, 2}, {1}, {1}})
    // A context that ends 8 positions into a cache block, as 15 of 16 decode steps' do.
    ->ArgsProduct({{1}, {2056}, {1, 2}, {2}, {1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(bm_attention_prefill)
    ->ArgNames({"tokens", "threads"})
    ->ArgsProduct({{512, 2048}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
