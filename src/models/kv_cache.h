// The key/value cache in fixed-size blocks (paged): a KvPool holds the blocks of every sequence,
// and a KvCache is one sequence's block table, so memory follows the tokens actually cached rather
// than a per-request maximum. Keys are stored after RoPE, in f16 by default (kDefaultKvType: half
// the memory and half the bytes attention reads; the activations stay f32) or in f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/large_buffer.h"
#include "models/model_spec.h"

namespace autoglm::models {

inline constexpr DType kDefaultKvType = DType::F16;

// Bytes of one cached element: 2 for f16, 4 for f32. Throws for any other type, with the choices.
int64_t kv_elem_bytes(DType kv_type);

class KvPool {
 public:
  KvPool(const ModelSpec& spec, int64_t n_blocks, int64_t block_size,
         DType kv_type = kDefaultKvType);

  DType kv_type() const { return kv_type_; }
  int64_t block_size() const { return block_size_; }
  int64_t kv_dim() const { return n_kv_heads_ * head_dim_; }  // nkv * d
  // Bytes of one position's row of one KV head of one layer (head_dim elements of kv_type).
  int64_t head_row_bytes() const { return head_part_bytes_ / block_size_; }
  // Bytes from one KV head's K (or V) in a block to the next head's
  // (AttentionArgs::kv_head_stride).
  int64_t kv_head_stride() const { return region_bytes_; }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return n_blocks_ - free_blocks(); }
  size_t bytes() const { return static_cast<size_t>(n_blocks_ * block_bytes_); }
  // Bytes of one block (every layer, K and V).
  size_t block_bytes() const { return static_cast<size_t>(block_bytes_); }

  // -1 when no block is free.
  int32_t allocate();
  void release(int32_t block);

  // KV head 0's K or V of one layer in one block: [block_size][d] elements of kv_type for V and
  // [d][block_size] for K (keys transposed: kernels::AttentionArgs); head h's lies h ·
  // kv_head_stride() bytes further on. Each (layer, KV head) has a region of its own holding its
  // blocks side by side, K then V of each, so attention, which reads one KV head on each thread,
  // reads a sequence's blocks (handed out in order by a fresh pool) as one stream. With every
  // layer's K and V in each block instead, one layer's blocks lay 448 KiB apart at the benchmark
  // shape: 4 KiB pieces the cores' prefetchers do not follow, and the decode-attention kernel
  // bench ran 1.2x slower at 8192 positions (docs/performance.md, thirtieth session).
  std::byte* k(int32_t block, int64_t layer) {
    return storage_.get() + layer * n_kv_heads_ * region_bytes_ + block * 2 * head_part_bytes_;
  }
  std::byte* v(int32_t block, int64_t layer) { return k(block, layer) + head_part_bytes_; }

 private:
  DType kv_type_;
  int64_t n_blocks_, block_size_, n_kv_heads_, head_dim_;
  int64_t head_part_bytes_;  // one KV head's K (or V) in one block of one layer
  int64_t region_bytes_;     // one (layer, KV head)'s blocks: n_blocks · K and V
  int64_t block_bytes_;      // one block in every layer and KV head, K and V
  // [L][nkv][n_blocks][K, V][block_size · d], never written before a block is used: the OS backs
  // pages only when a block is first written, so resident memory follows the tokens actually
  // cached (in steps of a 2 MiB huge page per region where the kernel gives them: allocate_large).
  LargeBuffer storage_;
  std::vector<int32_t> free_;
};

class KvCache {
 public:
  // A cache with a private pool just large enough for `capacity` tokens (single-sequence use).
  KvCache(const ModelSpec& spec, int64_t capacity, DType kv_type = kDefaultKvType);
  // A cache drawing blocks from a shared pool, holding at most `capacity` tokens.
  KvCache(KvPool& pool, int64_t capacity);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }  // tokens cached so far
  int64_t blocks_held() const { return static_cast<int64_t>(blocks_.size()); }
  // Blocks needed beyond those held to cache `n_tokens` more tokens.
  int64_t blocks_needed(int64_t n_tokens) const;
  // Makes room for n_tokens more; false (and nothing taken) when the pool has too few free blocks.
  bool reserve(int64_t n_tokens);
  void advance(int64_t n_tokens) { size_ += n_tokens; }
  // Forgets every token and returns the blocks to the pool.
  void clear();
  // Forgets the tokens after the first n_tokens (<= size()); their blocks stay held for reuse.
  void rewind(int64_t n_tokens);

  // Position pos's key of one KV head of one layer: head_dim elements of kv_type(), element i at
  // i · k_stride() elements from the returned one (keys are stored transposed in each block).
  std::byte* k_column(int64_t layer, int64_t pos, int64_t kv_head);
  int64_t k_stride() const { return pool_->block_size(); }
  // Position pos's value row of one KV head of one layer: head_dim contiguous elements.
  std::byte* v_row(int64_t layer, int64_t pos, int64_t kv_head);
  // Block pointers of one layer for the attention kernel.
  void layer_blocks(int64_t layer, std::vector<const void*>& k, std::vector<const void*>& v) const;
  DType kv_type() const { return pool_->kv_type(); }
  int64_t block_size() const { return pool_->block_size(); }
  int64_t row_width() const { return pool_->kv_dim(); }  // nkv * d
  int64_t kv_head_stride() const { return pool_->kv_head_stride(); }

 private:
  std::unique_ptr<KvPool> own_pool_;
  KvPool* pool_;
  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<int32_t> blocks_;
};

}  // namespace autoglm::models
