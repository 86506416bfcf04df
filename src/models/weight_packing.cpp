#include "models/weight_packing.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace autoglm::models {
namespace {

// The whole pages inside [p, p + n) of the read-only file mapping are dropped from this process
// (clean file pages: touching them again reads the file, so nothing is lost).
void release_mapped_pages(const void* p, size_t n) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const auto end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Every matrix that gains from packing, in the order it is packed, with its packed size.
struct PackPlan {
  std::vector<Linear*> matrices;
  std::vector<size_t> offsets;  // into the one buffer that holds them all
  size_t total = 0;

  void add(Linear& l) {
    if (!l.present()) return;
    const size_t bytes = kernels::packed_bytes(l.w);
    if (bytes == 0) return;
    matrices.push_back(&l);
    offsets.push_back(total);
    total += (bytes + kAlign - 1) / kAlign * kAlign;
  }

  // Each matrix starts on a cache line, so its first row group does too (the blocks inside a
  // group are not line-sized: loads within them can straddle two lines, as before).
  static constexpr size_t kAlign = 64;
};

// A layer's separate q, k and v (glm4, llama files) are packed back to back and then run as one
// fused matrix (LayerWeights::qkv, split after the matmul as chatglm's is): one matmul where there
// were three. k and v are small (2 KV heads x 128 rows at GLM-4's shapes), and a small matmul
// pays a whole matmul's costs for little work: quantizing x, the threads' start and final wait, its
// weight streams starting cold. On the benchmark model (2 threads, q4_0 decode) k and v took 8.6
// us each for 295 KB (34 GB/s, where the large matrices read 46-50 GB/s), and their regions spent
// 17% of that waiting at the end. Fused against separate, alternated (4 pairs): q4_0 decode 72 ->
// 80%, 80 -> 80%, 78 -> 81%, 74 -> 74% of the probe next to each run, 16-sequence steps 203 ->
// 207, 221 -> 233, 217 -> 237, 235 -> 241 tokens/s, 64-token prompts 296 -> 297, 323 -> 335,
// 303 -> 325, 330 -> 347 tokens/s; q8_0 (3 pairs) from within the noise to 1.1x. Packed copies
// are whole row groups, so they lie back to back when each one's size is a multiple of the plan's
// alignment.
bool fusable_qkv(const LayerWeights& l) {
  if (l.qkv.present() || !l.q.present() || !l.k.present() || !l.v.present()) return false;
  const bool with_bias = l.q.bias != nullptr;
  for (const Linear* m : {&l.q, &l.k, &l.v}) {
    const size_t bytes = kernels::packed_bytes(m->w);
    if (m->w.dtype != l.q.w.dtype || m->w.cols != l.q.w.cols || m->w.layout != l.q.w.layout ||
        (m->bias != nullptr) != with_bias || bytes == 0 || bytes % PackPlan::kAlign != 0) {
      return false;
    }
  }
  return true;
}

PackPlan plan_packing(ModelWeights& weights) {
  PackPlan plan;
  for (LayerWeights& l : weights.layers) {
    for (Linear* m : {&l.qkv, &l.q, &l.k, &l.v, &l.o, &l.gate_up, &l.gate, &l.up, &l.down,
                      &l.shared_gate, &l.shared_up, &l.shared_down}) {
      plan.add(*m);
    }
    for (auto* experts : {&l.expert_gate, &l.expert_up, &l.expert_down}) {
      for (Linear& e : *experts) plan.add(e);
    }
  }
  if (weights.lm_head.w.data != weights.embed.data) plan.add(weights.lm_head);
  return plan;
}

// Frees a packed matrix's source: a buffer the model owns, or the file mapping's pages.
void release_source(const kernels::Matrix& source, std::vector<LargeBuffer>& owned) {
  const auto it = std::find_if(owned.begin(), owned.end(),
                               [&](const auto& b) { return b.get() == source.data; });
  if (it != owned.end()) {
    it->reset();
  } else {
    release_mapped_pages(source.data, static_cast<size_t>(source.rows) * source.row_stride());
  }
}

// Turns each fusable layer's packed q, k and v into its qkv: the three lie back to back in the
// packed buffer (plan_packing adds them in that order, and fusable_qkv asked for sizes that leave
// no gap), and their biases are copied side by side into one buffer for all layers. Returns the
// number of layers fused.
int fuse_qkv(ModelWeights& weights, const std::vector<bool>& fusable,
             std::vector<LargeBuffer>& owned) {
  size_t bias_floats = 0;
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    const LayerWeights& l = weights.layers[i];
    if (fusable[i] && l.q.bias != nullptr)
      bias_floats += static_cast<size_t>(l.q.w.rows + l.k.w.rows + l.v.w.rows);
  }
  LargeBuffer biases = bias_floats > 0 ? allocate_large(bias_floats * sizeof(float)) : nullptr;
  auto* next_bias = reinterpret_cast<float*>(biases.get());
  int fused = 0;
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    LayerWeights& l = weights.layers[i];
    if (!fusable[i]) continue;
    const auto* q = static_cast<const std::byte*>(l.q.w.data);
    const size_t q_bytes = static_cast<size_t>(l.q.w.rows) * l.q.w.row_stride();
    const size_t k_bytes = static_cast<size_t>(l.k.w.rows) * l.k.w.row_stride();
    if (l.k.w.data != q + q_bytes || l.v.w.data != q + q_bytes + k_bytes) continue;
    // An f16 q, k or v may have been packed as bf16 (pack_f16_as_bf16) and the others not.
    if (l.k.w.dtype != l.q.w.dtype || l.v.w.dtype != l.q.w.dtype) continue;
    Linear qkv;
    qkv.w = l.q.w;
    qkv.w.rows = l.q.w.rows + l.k.w.rows + l.v.w.rows;
    if (l.q.bias != nullptr) {
      float* out = next_bias;
      for (const Linear* m : {&l.q, &l.k, &l.v})
        next_bias = std::copy_n(m->bias, m->w.rows, next_bias);
      qkv.bias = out;
    }
    l.qkv = qkv;
    l.q = l.k = l.v = Linear{};
    ++fused;
  }
  if (biases != nullptr) owned.push_back(std::move(biases));
  return fused;
}

bool rounds_x_to_bf16(DType packed, Activations activations) {
  switch (activations) {
    case Activations::kAuto:
      return packed == DType::BF16;
    case Activations::kF32:
      return false;
    case Activations::kBf16:
      return packed == DType::BF16 || packed == DType::F16;
  }
  return false;
}

// Whether a packed f16 matrix multiplies several tokens in 16-bit integers
// (kernels::Matrix::x_as_int16): by default, where the AVX-512 kernels run it (Rows8Pairs) in
// whole blocks of 32 columns and it does not already round to bf16.
bool multiplies_in_int16(const kernels::Matrix& w, Activations activations) {
  return activations == Activations::kAuto && w.dtype == DType::F16 && !w.x_as_bf16 &&
         w.layout == kernels::WeightLayout::Rows8Pairs && w.cols % 32 == 0;
}

}  // namespace

PackResult pack_weights(ModelWeights& weights, std::vector<LargeBuffer>& owned, ThreadPool& pool,
                        Activations activations) {
  // AUTOGLM_REPACK=0 keeps the file layout: to measure what repacking gains, or to rule it out.
  if (const char* env = std::getenv("AUTOGLM_REPACK"); env != nullptr && std::string(env) == "0") {
    return {};
  }
  // Decided before packing: packed_bytes reads the source matrices.
  std::vector<bool> fusable;
  for (const LayerWeights& l : weights.layers) fusable.push_back(fusable_qkv(l));
  PackPlan plan = plan_packing(weights);
  if (plan.matrices.empty()) return {};
  // One buffer for every packed matrix, so that huge pages (allocate_large) cover all of it but
  // the last 2 MiB. Its pages are backed as the matrices are written, while each source is freed
  // once packed: the peak stays about one matrix above the final size.
  LargeBuffer packed = allocate_large(plan.total);
  PackResult result;
  for (size_t i = 0; i < plan.matrices.size(); ++i) {
    Linear& l = *plan.matrices[i];
    const kernels::Matrix source = l.w;
    std::byte* dst = packed.get() + plan.offsets[i];
    const bool as_bf16 = kernels::can_pack_f16_as_bf16(source, &pool);
    l.w = as_bf16 ? kernels::pack_f16_as_bf16(source, dst, &pool)
                  : kernels::pack_for_matmul(source, dst, &pool);
    result.f16_packed_as_bf16 += as_bf16 ? 1 : 0;
    l.w.x_as_bf16 = rounds_x_to_bf16(l.w.dtype, activations);
    result.bf16_rounding_x += l.w.x_as_bf16 && l.w.dtype == DType::BF16 ? 1 : 0;
    result.f16_as_bf16 += l.w.x_as_bf16 && l.w.dtype == DType::F16 ? 1 : 0;
    l.w.x_as_int16 = multiplies_in_int16(l.w, activations);
    result.f16_in_int16 += l.w.x_as_int16 ? 1 : 0;
    release_source(source, owned);
  }
  std::erase_if(owned, [](const auto& b) { return b == nullptr; });
  owned.push_back(std::move(packed));
  result.packed = static_cast<int>(plan.matrices.size());
  result.fused_qkv = fuse_qkv(weights, fusable, owned);
  return result;
}

}  // namespace autoglm::models
