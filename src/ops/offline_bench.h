// In-process speed of a model (the llama-bench of our engine): prefill of P tokens and decode of N
// tokens, repeated, with tokens/s, GB/s of weights read per decoded token and GFLOP/s of prefill.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "core/thread_pool.h"
#include "models/kv_cache.h"
#include "models/model.h"
#include "ops/bandwidth.h"

namespace autoglm::ops {

struct OfflineBenchOptions {
  int prompt_tokens = 512;
  int decode_tokens = 128;
  // Tokens already in the KV cache when decode starts (prefilled once, kept across repeats): decode
  // at a long context reads the cache as well as the weights.
  int context = 0;
  int repeats = 3;
  // Batched decode: this many sequences advance one token per forward (0 skips it), as the
  // server's batching engine runs them; the weights are read once per step for all of them.
  int batch = 16;
  DType kv_type = models::kDefaultKvType;  // the KV cache's element type (f16 or f32)
};

struct OfflineBenchResult {
  std::vector<double> prefill_tps;  // tokens/s of each repeat
  std::vector<double> decode_tps;
  double prefill_median_tps = 0;
  double decode_median_tps = 0;
  double decode_bytes_per_token = 0;  // weights (less the embedding table) + mean KV read (once)
  double decode_gbps = 0;             // decode_median_tps * bytes per token
  double prefill_gflops = 0;          // 2 x the prompt's matrix multiply-adds / time, no attention
  // The pool's compute peaks (ops/bandwidth.h), each the higher of a probe before the prefill and
  // one after the batches: f32 FMAs, 8-bit dot products (q4_0 / q8_0 kernels), bf16 dot products
  // and 16-bit dot products (512-bit only; zero without the AVX-512 table).
  ComputePeak fma_peak, int8_peak, bf16_peak, int16_peak;
  // f32 / f16 / bf16 matrices: prefill and batches run on the f32 FMAs, or on bf16 dot products
  // with bf16 activations (bf16_products), or, f16 with 16-bit integer activations
  // (int16_products), on 16-bit dot products for calls of kernels::kInt16MinTokens tokens or more;
  // the others on 8-bit integer dot products.
  bool float_weights = false;
  bool bf16_products = false;
  bool int16_products = false;
  std::vector<double> batch_tps;  // aggregate tokens/s of batched decode, each repeat
  double batch_median_tps = 0;
  // 2 x each token's matrix multiply-adds (its logits too) x batch_median_tps.
  double batch_gflops = 0;
  // Read bandwidth measured right before and right after each decode repeat: the host is shared
  // and its bandwidth moves by tens of percent within a minute, so the roofline is taken next to
  // the decode runs. The highest probe is the stricter roofline: a decode that outran the median
  // probe shows that the probes caught the host at a slow moment.
  std::vector<double> bandwidth_gbps;
  double bandwidth_median_gbps = 0;
  double bandwidth_max_gbps = 0;
  // Each decode segment's GB/s over the mean of the short probes just before and just after it
  // (offline_bench.cpp: kSegmentSeconds), every repeat's segments in order; and their median:
  // the roofline share with the probes taken where the bandwidth was the segment's.
  std::vector<double> decode_segment_fraction;
  double decode_segment_fraction_median = 0;
  // Resident memory after the decode runs, and the part in transparent huge pages (decode reads
  // the weights faster through them: core/large_buffer.h); 0 where /proc cannot tell.
  size_t resident_bytes = 0;
  size_t huge_page_bytes = 0;
};

// Multiply-adds of the matrices a prompt of n tokens goes through: every layer's for each token
// (for MoE layers only the experts a token uses, and the router), the output layer once (the
// prompt's logits are those of its last token). Norms and attention are left out.
double prefill_matmul_params(const models::ModelSpec& spec, int64_t n);

// Bytes a decode step reads: the weights (less the embedding table, of which it reads one row)
// and the KV cache at the run's mean context, each element once.
double decode_bytes_per_token(const models::Model& model, const OfflineBenchOptions& options);

OfflineBenchResult run_offline_bench(const models::Model& model, const OfflineBenchOptions& options,
                                     ThreadPool& pool);

}  // namespace autoglm::ops
