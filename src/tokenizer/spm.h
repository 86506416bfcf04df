// SentencePiece BPE as llama.cpp runs GGUF `llama` vocabularies (llm_tokenizer_spm): spaces become
// U+2581 "▁" (with one added in front of the text and after each special token when
// add_space_prefix), the text is cut into UTF-8 characters, and adjacent symbols are merged while
// their concatenation is a token, highest score first (leftmost among equal scores). A symbol left
// that is not a token is spelled with byte-fallback tokens <0xXX>, else <unk>.
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {

struct SpmData {
  std::vector<std::string> pieces;  // [n_vocab]
  std::vector<TokenType> types;     // [n_vocab]
  std::vector<float> scores;        // [n_vocab] merge priority: higher merges first
  SpecialIds special;
  bool add_space_prefix = true;
  std::string description;
};

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(SpmData data);

 protected:
  void encode_fragment(std::string_view text, bool after_special,
                       std::vector<int32_t>& out) const override;
  std::string normal_token_bytes(int32_t id) const override;

 private:
  void emit_symbol(std::string_view symbol, std::vector<int32_t>& out) const;

  std::vector<float> scores_;
  std::unordered_map<std::string_view, int32_t> mergeable_;  // Normal and UserDefined pieces
  std::array<int32_t, 256> byte_ids_{};                      // <0xXX> tokens, -1 where absent
  std::vector<int16_t> byte_of_;                             // [n_vocab] byte of a Byte token
  bool add_space_prefix_;
};

}  // namespace autoglm::tokenizer
