#include "models/weight_packing.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

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

class Packer {
 public:
  Packer(std::vector<std::unique_ptr<std::byte[]>>& owned, ThreadPool& pool)
      : owned_(owned), pool_(pool) {}

  void pack(Linear& l) {
    if (!l.present()) return;
    const size_t bytes = kernels::packed_bytes(l.w);
    if (bytes == 0) return;
    auto buffer = std::make_unique_for_overwrite<std::byte[]>(bytes);  // pack writes every byte
    const kernels::Matrix source = l.w;
    l.w = kernels::pack_for_matmul(source, buffer.get(), &pool_);
    release(source);
    owned_.push_back(std::move(buffer));
    ++packed_;
  }

  int packed() const { return packed_; }

 private:
  void release(const kernels::Matrix& source) {
    const auto it = std::find_if(owned_.begin(), owned_.end(),
                                 [&](const auto& b) { return b.get() == source.data; });
    if (it != owned_.end()) {
      it->reset();
    } else {
      release_mapped_pages(source.data, static_cast<size_t>(source.rows) * source.row_stride());
    }
  }

  std::vector<std::unique_ptr<std::byte[]>>& owned_;
  ThreadPool& pool_;
  int packed_ = 0;
};

}  // namespace

int pack_weights(ModelWeights& weights, std::vector<std::unique_ptr<std::byte[]>>& owned,
                 ThreadPool& pool) {
  // AUTOGLM_REPACK=0 keeps the file layout: to measure what repacking gains, or to rule it out.
  if (const char* env = std::getenv("AUTOGLM_REPACK"); env != nullptr && std::string(env) == "0") {
    return 0;
  }
  Packer packer(owned, pool);
  for (LayerWeights& l : weights.layers) {
    for (Linear* m : {&l.qkv, &l.q, &l.k, &l.v, &l.o, &l.gate_up, &l.gate, &l.up, &l.down,
                      &l.shared_gate, &l.shared_up, &l.shared_down}) {
      packer.pack(*m);
    }
    for (auto* experts : {&l.expert_gate, &l.expert_up, &l.expert_down}) {
      for (Linear& e : *experts) packer.pack(e);
    }
  }
  if (weights.lm_head.w.data != weights.embed.data) packer.pack(weights.lm_head);
  std::erase_if(owned, [](const auto& b) { return b == nullptr; });
  return packer.packed();
}

}  // namespace autoglm::models
