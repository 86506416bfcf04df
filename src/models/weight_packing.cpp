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

}  // namespace

PackResult pack_weights(ModelWeights& weights, std::vector<LargeBuffer>& owned, ThreadPool& pool,
                        bool bf16_activations) {
  // AUTOGLM_REPACK=0 keeps the file layout: to measure what repacking gains, or to rule it out.
  if (const char* env = std::getenv("AUTOGLM_REPACK"); env != nullptr && std::string(env) == "0") {
    return {};
  }
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
    l.w = kernels::pack_for_matmul(source, packed.get() + plan.offsets[i], &pool);
    l.w.x_as_bf16 = bf16_activations && (l.w.dtype == DType::BF16 || l.w.dtype == DType::F16);
    result.bf16_rounding_x += l.w.x_as_bf16 && l.w.dtype == DType::BF16 ? 1 : 0;
    result.f16_as_bf16 += l.w.x_as_bf16 && l.w.dtype == DType::F16 ? 1 : 0;
    release_source(source, owned);
  }
  std::erase_if(owned, [](const auto& b) { return b == nullptr; });
  owned.push_back(std::move(packed));
  result.packed = static_cast<int>(plan.matrices.size());
  return result;
}

}  // namespace autoglm::models
