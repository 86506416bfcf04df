#include "tokenizer/bpe.h"

#include <algorithm>
#include <bit>

#include "core/error.h"

namespace autoglm::tokenizer {
namespace {

size_t slot_of(int32_t left, int32_t right, size_t mask) {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  // Fibonacci hashing: the high bits of key * 2^64/phi spread consecutive ids.
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

struct Candidate {
  int32_t rank;
  int32_t left;     // symbol index of the left part
  int32_t left_id;  // ids at push time: a changed id means the pair is stale
  int32_t right_id;
  int32_t merged;
};

struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }
};

struct Scratch {
  std::vector<int32_t> ids;
  std::vector<int32_t> prev;
  std::vector<int32_t> next;
  std::vector<Candidate> heap;
};

}  // namespace

MergeTable::MergeTable(std::span<const Entry> entries) {
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, entries.size() * 2));
  slots_.assign(capacity, Entry{-1, -1, 0, 0});
  mask_ = capacity - 1;
  for (const Entry& e : entries) {
    AUTOGLM_ASSERT(e.left >= 0 && e.right >= 0);
    size_t s = slot_of(e.left, e.right, mask_);
    while (slots_[s].left >= 0 && (slots_[s].left != e.left || slots_[s].right != e.right)) {
      s = (s + 1) & mask_;
    }
    if (slots_[s].left < 0) {
      slots_[s] = e;
      ++count_;
    } else if (e.rank < slots_[s].rank) {
      slots_[s] = e;
    }
  }
}

const MergeTable::Entry* MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  size_t s = slot_of(left, right, mask_);
  while (slots_[s].left >= 0) {
    if (slots_[s].left == left && slots_[s].right == right) return &slots_[s];
    s = (s + 1) & mask_;
  }
  return nullptr;
}

void bpe_merge(std::span<const int32_t> symbols, const MergeTable& merges,
               std::vector<int32_t>& out) {
  const auto n = static_cast<int32_t>(symbols.size());
  if (n <= 1) {
    out.insert(out.end(), symbols.begin(), symbols.end());
    return;
  }
  thread_local Scratch scratch;
  auto& ids = scratch.ids;
  auto& prev = scratch.prev;
  auto& next = scratch.next;
  ids.assign(symbols.begin(), symbols.end());
  prev.resize(n);
  next.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1;  // n marks the end
  }
  // A binary heap over scratch.heap (reused across calls on this thread); top = lowest rank,
  // then leftmost.
  auto& heap = scratch.heap;
  heap.clear();
  const LaterCandidate later;
  const auto consider = [&](int32_t left) {
    const int32_t right = next[left];
    if (const MergeTable::Entry* m = merges.find(ids[left], ids[right])) {
      heap.push_back({m->rank, left, ids[left], ids[right], m->merged});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    const int32_t right = next[c.left];
    // Stale: the left symbol grew or died (its id changed), or its right neighbour grew.
    if (ids[c.left] != c.left_id || right >= n || ids[right] != c.right_id) continue;
    ids[c.left] = c.merged;
    ids[right] = -1;
    next[c.left] = next[right];
    if (next[right] < n) prev[next[right]] = c.left;
    if (prev[c.left] >= 0) consider(prev[c.left]);
    if (next[c.left] < n) consider(c.left);
  }
  for (int32_t i = 0; i < n; i = next[i]) out.push_back(ids[i]);
}

std::vector<MergeTable::Entry> merges_from_ranks(const std::vector<std::string>& raw) {
  std::unordered_map<std::string_view, int32_t> index;
  index.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (!raw[i].empty()) index.emplace(raw[i], static_cast<int32_t>(i));
  }
  std::vector<MergeTable::Entry> entries;
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::string_view token = raw[i];
    for (size_t k = 1; k < token.size(); ++k) {
      const auto left = index.find(token.substr(0, k));
      if (left == index.end()) continue;
      const auto right = index.find(token.substr(k));
      if (right == index.end()) continue;
      const auto id = static_cast<int32_t>(i);
      entries.push_back({left->second, right->second, id, id});
    }
  }
  return entries;
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeData data)
    : raw_(std::move(data.raw)),
      merges_(data.merges),
      splitter_(data.regex),
      whole_piece_lookup_(data.whole_piece_lookup) {
  pieces_ = std::move(data.pieces);
  types_ = std::move(data.types);
  special_ = std::move(data.special);
  description_ = std::move(data.description);
  AUTOGLM_ASSERT(raw_.size() == pieces_.size() && types_.size() == pieces_.size());
  byte_ids_.fill(-1);
  raw_index_.reserve(raw_.size());
  for (size_t i = 0; i < raw_.size(); ++i) {
    if (types_[i] != TokenType::Normal || raw_[i].empty()) continue;
    const auto id = static_cast<int32_t>(i);
    raw_index_.emplace(raw_[i], id);
    if (raw_[i].size() == 1) {
      int32_t& slot = byte_ids_[static_cast<uint8_t>(raw_[i][0])];
      if (slot < 0) slot = id;
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (byte_ids_[b] < 0) {
      fail(
          "{}: byte 0x{:02X} has no token, so some texts could not be encoded; a byte-level "
          "BPE vocabulary needs all 256 byte tokens (is the tokenizer file truncated?)",
          description_, b);
    }
  }
  finish_vocab();
}

void ByteLevelBpeTokenizer::encode_fragment(std::string_view text, bool /*after_special*/,
                                            std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  splitter_.split(text, pieces);
  encode_byte_level_pieces(pieces, whole_piece_lookup_ ? &raw_index_ : nullptr, byte_ids_, merges_,
                           out);
}

void encode_byte_level_pieces(std::span<const std::string_view> pieces,
                              const std::unordered_map<std::string_view, int32_t>* whole_index,
                              const std::array<int32_t, 256>& byte_ids, const MergeTable& merges,
                              std::vector<int32_t>& out) {
  thread_local std::vector<int32_t> symbols;
  for (const std::string_view piece : pieces) {
    if (piece.empty()) continue;
    if (whole_index) {
      const auto it = whole_index->find(piece);
      if (it != whole_index->end()) {
        out.push_back(it->second);
        continue;
      }
    }
    symbols.clear();
    for (const char c : piece) symbols.push_back(byte_ids[static_cast<uint8_t>(c)]);
    bpe_merge(symbols, merges, out);
  }
}

std::string ByteLevelBpeTokenizer::normal_token_bytes(int32_t id) const {
  return raw_[id];
}

}  // namespace autoglm::tokenizer
