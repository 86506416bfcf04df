#include "tokenizer/spm.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace autoglm::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

struct Bigram {
  float score;
  int32_t left;   // symbol index
  int32_t right;  // symbol index
  size_t size;    // bytes of the concatenation: a changed symbol length makes the pair stale
};

// Max-heap order: higher score first, then the leftmost (llama.cpp llm_bigram_spm::comparator).
struct BigramBefore {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

struct Symbol {
  size_t start;
  size_t length;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;  // -1 at the end
};

// "<0x41>" -> 0x41.
int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  const auto [end, ec] = std::from_chars(piece.data() + 3, piece.data() + 5, value, 16);
  return ec == std::errc() && end == piece.data() + 5 ? value : -1;
}

}  // namespace

SpmTokenizer::SpmTokenizer(SpmData data)
    : scores_(std::move(data.scores)), add_space_prefix_(data.add_space_prefix) {
  pieces_ = std::move(data.pieces);
  types_ = std::move(data.types);
  special_ = std::move(data.special);
  description_ = std::move(data.description);
  strips_leading_space_ = add_space_prefix_;
  AUTOGLM_ASSERT(scores_.size() == pieces_.size() && types_.size() == pieces_.size());
  byte_ids_.fill(-1);
  byte_of_.assign(pieces_.size(), -1);
  mergeable_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (types_[i] == TokenType::Normal || types_[i] == TokenType::UserDefined) {
      mergeable_.emplace(pieces_[i], id);
    } else if (types_[i] == TokenType::Byte) {
      const int b = parse_byte_piece(pieces_[i]);
      if (b < 0) {
        fail(
            "{}: token {} has type byte but its piece '{}' is not of the form <0xXX>; the "
            "vocabulary is malformed",
            description_, id, pieces_[i]);
      }
      byte_of_[i] = static_cast<int16_t>(b);
      if (byte_ids_[b] < 0) byte_ids_[b] = id;
    }
  }
  finish_vocab();
}

void SpmTokenizer::encode_fragment(std::string_view text, bool after_special,
                                   std::vector<int32_t>& out) const {
  std::string s;
  s.reserve(text.size() * 2 + 3);
  if (add_space_prefix_ && after_special) s += kSpace;
  for (const char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s.push_back(c);
    }
  }
  // One symbol per UTF-8 character; an ill-formed byte is a symbol of its own.
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Step step = utf8_step(std::string_view(s).substr(pos));
    const size_t length = step.kind == Utf8Kind::Valid ? step.length : 1;
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({pos, length, index - 1, index + 1});
    pos += length;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<Bigram> heap;
  const BigramBefore before;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const auto it = mergeable_.find(std::string_view(s).substr(l.start, l.length + r.length));
    if (it == mergeable_.end()) return;
    heap.push_back({scores_[it->second], left, right, l.length + r.length});
    std::push_heap(heap.begin(), heap.end(), before);
  };
  for (size_t i = 1; i < symbols.size(); ++i) {
    consider(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), before);
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    // Lengths only grow, so a pair whose lengths no longer add up was overtaken by another merge.
    if (l.length == 0 || r.length == 0 || l.length + r.length != b.size) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    consider(l.prev, b.left);
    consider(b.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    emit_symbol(std::string_view(s).substr(symbols[i].start, symbols[i].length), out);
  }
}

void SpmTokenizer::emit_symbol(std::string_view symbol, std::vector<int32_t>& out) const {
  const auto it = mergeable_.find(symbol);
  if (it != mergeable_.end()) {
    out.push_back(it->second);
    return;
  }
  const bool all_bytes = std::all_of(symbol.begin(), symbol.end(), [&](char c) {
    return byte_ids_[static_cast<uint8_t>(c)] >= 0;
  });
  if (all_bytes) {
    for (const char c : symbol) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  } else if (special_.unk) {
    out.push_back(*special_.unk);  // one <unk> for the whole character, as sentencepiece does
  } else {
    fail(
        "{}: cannot encode the character '{}': it is not in the vocabulary, which has neither "
        "byte-fallback tokens nor an unknown token",
        description_, utf8_repair(symbol));
  }
}

std::string SpmTokenizer::normal_token_bytes(int32_t id) const {
  if (byte_of_[id] >= 0) return std::string(1, static_cast<char>(byte_of_[id]));
  const std::string& piece = pieces_[id];
  std::string out;
  out.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.compare(pos, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      pos += kSpace.size();
    } else {
      out.push_back(piece[pos++]);
    }
  }
  return out;
}

}  // namespace autoglm::tokenizer
