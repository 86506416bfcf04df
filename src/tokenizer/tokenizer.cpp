#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace autoglm::tokenizer {

void Tokenizer::finish_vocab() {
  AUTOGLM_ASSERT(pieces_.size() == types_.size());
  piece_index_.clear();
  piece_index_.reserve(pieces_.size());
  verbatim_.clear();
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    // The first spelling wins: some vocabularies repeat a piece among unused/padding rows.
    piece_index_.emplace(pieces_[i], id);
    const TokenType type = types_[i];
    const bool matched =
        type == TokenType::Control || type == TokenType::Unknown || type == TokenType::UserDefined;
    if (matched && !pieces_[i].empty()) {
      verbatim_.push_back({pieces_[i], id, type == TokenType::UserDefined});
    }
  }
  // Longest first, so that at one position the longest token wins (`<|end|>` vs `<|endoftext|>`).
  std::stable_sort(verbatim_.begin(), verbatim_.end(), [](const Verbatim& a, const Verbatim& b) {
    return a.text.size() > b.text.size();
  });
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= n_vocab()) {
    fail(
        "token id {} is out of range: the {} vocabulary has ids 0..{}; the ids do not belong to "
        "this model's tokenizer",
        id, description_, n_vocab() - 1);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<const Verbatim*> candidates;
  std::vector<size_t> next;  // next occurrence of each candidate at or after `pos`
  for (const Verbatim& v : verbatim_) {
    if (!v.always && !parse_special) continue;
    candidates.push_back(&v);
    next.push_back(text.find(v.text));
  }
  size_t pos = 0;
  bool after_special = true;
  while (pos < text.size()) {
    size_t best = std::string_view::npos;
    const Verbatim* found = nullptr;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (next[i] != std::string_view::npos && next[i] < pos) {
        next[i] = text.find(candidates[i]->text, pos);
      }
      // Candidates are longest first, so a tie keeps the longer token.
      if (next[i] < best) {
        best = next[i];
        found = candidates[i];
      }
    }
    if (found == nullptr) {
      encode_fragment(text.substr(pos), after_special, out);
      break;
    }
    if (best > pos) encode_fragment(text.substr(pos, best - pos), after_special, out);
    out.push_back(found->id);
    after_special = true;
    pos = best + found->text.size();
  }
  return out;
}

std::vector<int32_t> Tokenizer::encode_with_prefix(std::string_view text,
                                                   bool parse_special) const {
  std::vector<int32_t> out = special_.prefix;
  const std::vector<int32_t> body = encode(text, parse_special);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::string Tokenizer::token_bytes(int32_t id, bool skip_special) const {
  check_id(id);
  switch (types_[id]) {
    case TokenType::Normal:
    case TokenType::Byte:
      return normal_token_bytes(id);
    case TokenType::UserDefined:
      return pieces_[id];
    case TokenType::Control:
    case TokenType::Unknown:
    case TokenType::Unused:
      return skip_special ? std::string() : pieces_[id];
  }
  return {};
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  StreamDecoder decoder(*this, skip_special, /*at_text_start=*/true);
  std::string out;
  for (const int32_t id : ids) out += decoder.push(id);
  out += decoder.finish();
  return out;
}

const std::string& Tokenizer::token_piece(int32_t id) const {
  check_id(id);
  return pieces_[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const {
  const auto it = piece_index_.find(piece);
  if (it == piece_index_.end()) return std::nullopt;
  return it->second;
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return types_[id];
}

bool Tokenizer::is_special(int32_t id) const {
  const TokenType type = token_type(id);
  return type == TokenType::Control || type == TokenType::Unknown;
}

}  // namespace autoglm::tokenizer
