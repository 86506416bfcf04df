#include "tokenizer/hf_tokenizer_bpe.h"

#include <deque>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace autoglm::tokenizer {

HfBpeTokenizer::HfBpeTokenizer(HfBpeData data)
    : raw_(std::move(data.raw)),
      merges_(data.merges),
      normalizers_(std::move(data.normalizers)),
      ignore_merges_(data.ignore_merges) {
  pieces_ = std::move(data.pieces);
  types_ = std::move(data.types);
  special_ = std::move(data.special);
  description_ = std::move(data.description);
  AUTOGLM_ASSERT(raw_.size() == pieces_.size() && types_.size() == pieces_.size());
  AUTOGLM_ASSERT(data.in_model_vocab.size() == pieces_.size());
  for (HfPreTokenStep& step : data.pre_tokenizer) {
    Step s{step.kind, std::nullopt};
    if (step.kind == HfPreTokenStep::Kind::Split) s.splitter.emplace(step.regex);
    steps_.push_back(std::move(s));
  }
  byte_ids_.fill(-1);
  raw_index_.reserve(raw_.size());
  for (size_t i = 0; i < raw_.size(); ++i) {
    // Only vocab entries spelled in the byte-level alphabet can come out of BPE; an entry such
    // as a literal "中" would otherwise shadow the bytes of 中 under `ignore_merges`.
    if (!data.in_model_vocab[i] || raw_[i].empty()) continue;
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
          "{}: byte 0x{:02X} (spelled '{}') has no token in model.vocab, so some texts could not "
          "be encoded; a byte-level BPE vocabulary needs all 256 byte tokens (is the file "
          "truncated?)",
          description_, b, bytes_to_unicode(std::string(1, static_cast<char>(b))));
    }
  }
  finish_vocab();
}

void HfBpeTokenizer::pre_tokenize(std::string_view text,
                                  std::vector<std::string_view>& pieces) const {
  // Pieces made by PrefixSpace live here until the fragment is encoded (a deque keeps them put).
  thread_local std::deque<std::string> made;
  thread_local std::vector<std::string_view> next;
  made.clear();
  pieces.assign(1, text);
  for (const Step& step : steps_) {
    next.clear();
    for (const std::string_view piece : pieces) {
      if (step.kind == HfPreTokenStep::Kind::Split) {
        step.splitter->split(piece, next);
      } else if (piece.starts_with(' ')) {
        next.push_back(piece);
      } else {
        std::string& spaced = made.emplace_back(1, ' ');
        spaced.append(piece);
        next.push_back(spaced);
      }
    }
    pieces.swap(next);
  }
}

void HfBpeTokenizer::encode_fragment(std::string_view text, bool /*after_special*/,
                                     std::vector<int32_t>& out) const {
  // HF normalizes each fragment between added tokens, then pre-tokenizes the normalized text.
  std::string normalized;
  if (!normalizers_.empty()) {
    normalized = text;
    for (const NormalForm form : normalizers_) normalized = normalize_unicode(normalized, form);
    text = normalized;
  }
  thread_local std::vector<std::string_view> pieces;
  pre_tokenize(text, pieces);
  encode_byte_level_pieces(pieces, ignore_merges_ ? &raw_index_ : nullptr, byte_ids_, merges_, out);
}

std::string HfBpeTokenizer::normal_token_bytes(int32_t id) const {
  return raw_[id];
}

}  // namespace autoglm::tokenizer
