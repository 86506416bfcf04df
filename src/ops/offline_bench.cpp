#include "ops/offline_bench.h"

#include <algorithm>
#include <chrono>
#include <deque>

#include "core/error.h"
#include "core/large_buffer.h"
#include "ops/bandwidth.h"

namespace autoglm::ops {
namespace {

// The compute peaks, each the higher of this probe and any earlier one of the run (taken before
// the prefill and after the batches). A neighbour on a shared host can slow a core by half for
// seconds (one run's FMA probe read 117 GFLOP/s, the next run's 230), and a peak is what the cores
// can do at best, so the highest probe is the nearest to it.
void probe_compute_peaks(ThreadPool& pool, OfflineBenchResult& r) {
  const auto higher = [](ComputePeak& kept, const ComputePeak& probe) {
    if (probe.gflops > kept.gflops) kept = probe;
  };
  higher(r.fma_peak, measure_fma_peak(pool));
  higher(r.int8_peak, measure_int8_dot_peak(pool));
  higher(r.bf16_peak, measure_bf16_dot_peak(pool));
  higher(r.int16_peak, measure_int16_dot_peak(pool));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Token ids spread over the vocabulary (the values do not change the cost).
std::vector<int32_t> bench_tokens(int n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    ids[static_cast<size_t>(i)] =
        static_cast<int32_t>((1000 + 7919 * static_cast<int64_t>(i)) % vocab);
  return ids;
}

// Aggregate tokens/s of `batch` sequences decoding together: each holds a one-token prompt, then
// every forward carries one new token of each (steps = decode_tokens / 4, at least 4).
double batched_decode_tps(const models::Model& model, const OfflineBenchOptions& o,
                          const std::vector<int32_t>& ids, models::ForwardScratch& scratch,
                          ThreadPool& pool, std::vector<float>& logits) {
  const int steps = std::max(4, o.decode_tokens / 4);
  const auto n = static_cast<size_t>(o.batch);
  std::deque<models::KvCache> caches;  // not movable: a deque builds them in place
  for (size_t s = 0; s < n; ++s) caches.emplace_back(model.spec(), steps + 1, o.kv_type);
  std::vector<int32_t> tokens(n);
  std::vector<models::SequenceChunk> chunks(n);
  auto step = [&](int i) {
    for (size_t s = 0; s < n; ++s) {
      tokens[s] = ids[(static_cast<size_t>(i) * n + s) % ids.size()];
      chunks[s] = models::SequenceChunk{&caches[s], std::span(&tokens[s], 1), false};
    }
    model.forward(chunks, scratch, pool, logits);
  };
  step(0);  // the one-token prompts
  const double t0 = now_seconds();
  for (int i = 1; i <= steps; ++i) step(i);
  return static_cast<double>(steps) * o.batch / (now_seconds() - t0);
}

// The decode runs in segments of at least this long, each between two short probes of the read
// bandwidth. The host's bandwidth flips between levels for 0.2-2.5 s at a time (a 2-thread read
// loop on the Zen 4 host, per 100 ms: 45-53 GB/s, then 29-32, and back), so a decode run of a
// few seconds and probes before and after it can fall in different levels; a segment and the
// probes on either side of it mostly fall in the same one.
constexpr double kSegmentSeconds = 0.1;
// Enough to read well past the last-level cache (32 MiB on the benchmark hosts) in a few ms.
constexpr size_t kShortProbeBytes = size_t{64} << 20;

}  // namespace

double prefill_matmul_params(const models::ModelSpec& spec, int64_t n) {
  const int64_t h = spec.hidden_size;
  const int64_t routed = spec.expert_params() * (spec.n_experts_used + spec.n_shared_experts) +
                         h * spec.n_experts;  // and the router
  double per_token = 0;
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    per_token += static_cast<double>(spec.attention_matrix_params() +
                                     (spec.is_moe_layer(l) ? routed : spec.dense_mlp_params()));
  }
  return per_token * static_cast<double>(n) + static_cast<double>(spec.vocab_size * h);
}

double decode_bytes_per_token(const models::Model& model, const OfflineBenchOptions& o) {
  const models::ModelWeights& w = model.weights();
  const models::ModelSpec& spec = model.spec();
  const double embed_bytes =
      static_cast<double>(w.embed.rows) * static_cast<double>(w.embed.row_stride());
  const bool tied = w.lm_head.w.data == w.embed.data;
  const double weights_read =
      static_cast<double>(model.weight_bytes()) - (tied ? 0.0 : embed_bytes);
  // Mean KV-cache read per decode step: K and V of every layer at the mean context length, each
  // element (f16 or f32) read once.
  const double kv_read = 2.0 * static_cast<double>(spec.n_layers * spec.kv_dim()) *
                         static_cast<double>(models::kv_elem_bytes(o.kv_type)) *
                         (o.context + o.decode_tokens / 2.0 + 1.0);
  return weights_read + kv_read;
}

OfflineBenchResult run_offline_bench(const models::Model& model, const OfflineBenchOptions& o,
                                     ThreadPool& pool) {
  if (o.prompt_tokens < 1 || o.decode_tokens < 1 || o.repeats < 1 || o.context < 0) {
    fail(
        "bench needs at least 1 prompt token, 1 decode token and 1 repeat, and a context of 0 or "
        "more");
  }
  const models::ModelSpec& spec = model.spec();
  const auto prompt = bench_tokens(o.prompt_tokens, spec.vocab_size);
  models::ForwardScratch scratch;
  std::vector<float> logits;
  OfflineBenchResult r;

  probe_compute_peaks(pool, r);
  for (int rep = 0; rep < o.repeats; ++rep) {
    models::KvCache cache(spec, o.prompt_tokens, o.kv_type);
    models::SequenceChunk chunk{&cache, prompt, false};
    const double t0 = now_seconds();
    model.forward(std::span(&chunk, 1), scratch, pool, logits);
    r.prefill_tps.push_back(o.prompt_tokens / (now_seconds() - t0));
  }
  // Decode starts after o.context cached tokens plus one (the first token is not timed).
  models::KvCache cache(spec, o.context + o.decode_tokens + 1, o.kv_type);
  const auto context = bench_tokens(o.context + 1, spec.vocab_size);
  models::SequenceChunk filled{&cache, context, false};
  model.forward(std::span(&filled, 1), scratch, pool, logits);
  const double bytes_per_token = decode_bytes_per_token(model, o);
  {
    // The probe's buffer is allocated and faulted in once, not at every probe, and freed before
    // the resident memory is read below, which it would otherwise add to. Read whole before and
    // after each decode run; between the segments, fresh slices of it (ReadProbe::measure_slice).
    ReadProbe probe(pool, size_t{512} << 20);
    const auto probe_now = [&] { return probe.measure_slice(pool, kShortProbeBytes).median_gbps; };
    for (int rep = 0; rep < o.repeats; ++rep) {
      r.bandwidth_gbps.push_back(probe.measure(pool, 3).median_gbps);
      cache.rewind(o.context + 1);
      int32_t token = prompt[0];
      double decode_seconds = 0;  // the segments' time, without the probes between them
      double probe_before = probe_now();
      for (int i = 0; i < o.decode_tokens;) {
        const double t0 = now_seconds();
        int n = 0;
        for (; i < o.decode_tokens && (n == 0 || now_seconds() - t0 < kSegmentSeconds); ++i, ++n) {
          token = prompt[static_cast<size_t>((i + 1) % o.prompt_tokens)];
          models::SequenceChunk step{&cache, std::span(&token, 1), false};
          model.forward(std::span(&step, 1), scratch, pool, logits);
        }
        const double seconds = now_seconds() - t0;
        decode_seconds += seconds;
        const double probe_after = probe_now();
        r.decode_segment_fraction.push_back(n * bytes_per_token / seconds / 1e9 /
                                            ((probe_before + probe_after) / 2));
        probe_before = probe_after;
      }
      r.decode_tps.push_back(o.decode_tokens / decode_seconds);
      r.bandwidth_gbps.push_back(probe.measure(pool, 3).median_gbps);
    }
  }
  r.decode_segment_fraction_median = median(r.decode_segment_fraction);
  const ResidentMemory resident = resident_memory();
  r.resident_bytes = resident.resident_bytes;
  r.huge_page_bytes = resident.huge_page_bytes;
  for (int rep = 0; rep < o.repeats && o.batch > 0; ++rep) {
    r.batch_tps.push_back(batched_decode_tps(model, o, prompt, scratch, pool, logits));
  }
  r.batch_median_tps = median(r.batch_tps);
  probe_compute_peaks(pool, r);
  r.prefill_median_tps = median(r.prefill_tps);
  r.decode_median_tps = median(r.decode_tps);
  r.bandwidth_median_gbps = median(r.bandwidth_gbps);
  r.bandwidth_max_gbps = *std::max_element(r.bandwidth_gbps.begin(), r.bandwidth_gbps.end());

  const models::ModelWeights& w = model.weights();
  r.decode_bytes_per_token = bytes_per_token;
  r.decode_gbps = r.decode_median_tps * r.decode_bytes_per_token / 1e9;
  r.prefill_gflops = 2.0 * prefill_matmul_params(spec, o.prompt_tokens) * r.prefill_median_tps /
                     o.prompt_tokens / 1e9;
  // A batched step computes every sequence's logits, as a one-token prompt does.
  r.batch_gflops = 2.0 * prefill_matmul_params(spec, 1) * r.batch_median_tps / 1e9;
  const DType matrix_type = w.layers.empty() ? DType::F32 : w.layers[0].o.w.dtype;
  r.float_weights =
      matrix_type == DType::F32 || matrix_type == DType::F16 || matrix_type == DType::BF16;
  r.bf16_products = !w.layers.empty() && w.layers[0].o.w.x_as_bf16 && r.bf16_peak.gflops > 0;
  r.int16_products = !w.layers.empty() && w.layers[0].o.w.x_as_int16 && r.int16_peak.gflops > 0;
  return r;
}

}  // namespace autoglm::ops
