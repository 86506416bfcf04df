// The byte-level BPE tokenizer described by a Hugging Face `tokenizer.json` (GLM-4-0414, GLM-4.5,
// Qwen2/Qwen3, Llama 3): the normalizer, then the pre-tokenizer steps, then merges from the
// shared BPE core (bpe.h). Added and special tokens are matched by the base class before any of
// this, as HF's AddedVocabulary does. hf_tokenizer.cpp turns the JSON into an HfBpeData.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/hf_tokenizer_normalize.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {

// One step of an HF pre-tokenizer Sequence, applied to every piece the previous steps produced.
struct HfPreTokenStep {
  enum class Kind {
    Split,        // Split(pattern, Isolated) or ByteLevel(use_regex: GPT-2's pattern)
    PrefixSpace,  // ByteLevel(add_prefix_space): " " before a piece that does not start with one
  };
  Kind kind = Kind::Split;
  std::string regex;  // Split only
};

struct HfBpeData {
  std::vector<std::string> pieces;   // [n_vocab] vocab spelling (byte-level alphabet) or added text
  std::vector<TokenType> types;      // [n_vocab] Normal, Control (special), UserDefined, Unused
  std::vector<std::string> raw;      // [n_vocab] bytes a Normal token decodes to
  std::vector<bool> in_model_vocab;  // [n_vocab] spelled in the byte-level alphabet, so BPE and
                                     // `ignore_merges` may produce it
  std::vector<MergeTable::Entry> merges;
  std::vector<NormalForm> normalizers;  // applied in order
  std::vector<HfPreTokenStep> pre_tokenizer;
  bool ignore_merges = false;  // HF BPE `ignore_merges` (Llama 3): a piece that is a token is kept
  SpecialIds special;
  std::string description;
};

class HfBpeTokenizer final : public Tokenizer {
 public:
  // Throws Error when a byte has no token or a regex does not compile.
  explicit HfBpeTokenizer(HfBpeData data);

 protected:
  void encode_fragment(std::string_view text, bool after_special,
                       std::vector<int32_t>& out) const override;
  std::string normal_token_bytes(int32_t id) const override;

 private:
  struct Step {
    HfPreTokenStep::Kind kind;
    std::optional<RegexSplitter> splitter;  // Split only
  };
  void pre_tokenize(std::string_view text, std::vector<std::string_view>& pieces) const;

  std::vector<std::string> raw_;                             // [n_vocab]
  std::unordered_map<std::string_view, int32_t> raw_index_;  // views into raw_: model vocab only
  std::array<int32_t, 256> byte_ids_{};
  MergeTable merges_;
  std::vector<NormalForm> normalizers_;
  std::vector<Step> steps_;
  bool ignore_merges_ = false;
};

}  // namespace autoglm::tokenizer
