// Byte-level BPE: pre-tokenizer regex, then per piece the merges applied lowest rank first
// (leftmost among equal ranks), as tiktoken's `_byte_pair_merge` and HF tokenizers' BPE do. One
// implementation serves tiktoken vocabularies (rank of a pair = rank of the merged token) and
// merge-list vocabularies (rank of a pair = its line in `merges`).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {

// (left id, right id) -> (rank, merged id): a flat open-addressing table, since the lookup sits
// in the inner loop (GLM-4's ranks yield 318,088 mergeable pairs).
class MergeTable {
 public:
  struct Entry {
    int32_t left;
    int32_t right;
    int32_t rank;
    int32_t merged;
  };
  MergeTable() = default;
  // A pair listed twice keeps its lowest rank.
  explicit MergeTable(std::span<const Entry> entries);

  // The merge of (left, right), or nullptr.
  const Entry* find(int32_t left, int32_t right) const;
  size_t size() const { return count_; }

 private:
  std::vector<Entry> slots_;  // [capacity], left < 0 marks an empty slot
  size_t mask_ = 0;
  size_t count_ = 0;
};

// Applies `merges` to `symbols` (token ids, normally one per byte) and appends the result to out.
// O(n log n) in the number of symbols: a linked list of symbols and a heap of candidate pairs.
void bpe_merge(std::span<const int32_t> symbols, const MergeTable& merges,
               std::vector<int32_t>& out);

// Every (a, b) whose concatenation is a token of `raw` (raw bytes per id, "" where not a mergeable
// token), with rank = id of the concatenation: tiktoken's ranks as a merge table.
std::vector<MergeTable::Entry> merges_from_ranks(const std::vector<std::string>& raw);

// Byte-level BPE of pre-tokenized pieces, appended to `out`: a piece found whole in `whole_index`
// (when given) is one token; otherwise its bytes (`byte_ids`) are merged by `merges`.
void encode_byte_level_pieces(std::span<const std::string_view> pieces,
                              const std::unordered_map<std::string_view, int32_t>* whole_index,
                              const std::array<int32_t, 256>& byte_ids, const MergeTable& merges,
                              std::vector<int32_t>& out);

struct ByteLevelBpeData {
  std::vector<std::string> pieces;  // [n_vocab] spelling (byte-to-unicode for Normal tokens)
  std::vector<TokenType> types;     // [n_vocab]
  std::vector<std::string> raw;     // [n_vocab] raw bytes of Normal tokens, "" for the others
  std::vector<MergeTable::Entry> merges;
  SpecialIds special;
  std::string regex;
  // A piece that is a whole token becomes that token without merging (tiktoken; HF
  // `ignore_merges`, Llama 3). Off for GPT-2-style merge lists, where merges alone decide.
  bool whole_piece_lookup = false;
  std::string description;
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // Throws Error when a byte has no token (byte-level BPE must be able to spell every byte).
  explicit ByteLevelBpeTokenizer(ByteLevelBpeData data);

 protected:
  void encode_fragment(std::string_view text, bool after_special,
                       std::vector<int32_t>& out) const override;
  std::string normal_token_bytes(int32_t id) const override;

 private:
  std::vector<std::string> raw_;                             // [n_vocab]
  std::unordered_map<std::string_view, int32_t> raw_index_;  // views into raw_, Normal tokens
  std::array<int32_t, 256> byte_ids_{};
  MergeTable merges_;
  RegexSplitter splitter_;
  bool whole_piece_lookup_;
};

}  // namespace autoglm::tokenizer
