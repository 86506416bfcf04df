// Text <-> token ids. One abstract `Tokenizer` with the behaviour every vocabulary shares (added
// and special tokens matched verbatim before the model's own algorithm, decoding that skips special
// tokens, UTF-8-safe output) and one subclass per algorithm: byte-level BPE (tiktoken
// `tokenizer.model` of glm-4-9b-chat, GGUF `gpt2`) and SentencePiece BPE (GGUF `llama`). A
// Tokenizer is immutable after loading and safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace autoglm::tokenizer {

// The values of GGUF `tokenizer.ggml.token_type` (llama.cpp LLAMA_TOKEN_TYPE_*).
enum class TokenType : uint8_t {
  Normal = 1,
  Unknown = 2,
  Control = 3,      // special: matched in text only with parse_special, skipped by skip_special
  UserDefined = 4,  // added: always matched verbatim in text, never split, decoded verbatim
  Unused = 5,
  Byte = 6,  // SentencePiece byte fallback <0xXX>
};

struct SpecialIds {
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::optional<int32_t> unk;
  std::optional<int32_t> pad;
  std::vector<int32_t> stop;    // every id that ends a generation (GLM-4: <|endoftext|>,
                                // <|user|>, <|observation|>; GLM_ARCHITECTURES.md G.1)
  std::vector<int32_t> prefix;  // what a plain HF `encode()` prepends (GLM-4: [gMASK]<sop>)
};

class Tokenizer {
 public:
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  virtual ~Tokenizer() = default;

  // Ids of `text`, no prefix. UserDefined tokens are always matched verbatim; Control/Unknown
  // tokens (`<|user|>`, `[gMASK]`, ...) only when `parse_special`, else their text is ordinary
  // text. Bytes that are not valid UTF-8 are encoded as bytes (byte-level BPE) or byte fallback
  // (SPM).
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  // special().prefix followed by encode(text, parse_special).
  std::vector<int32_t> encode_with_prefix(std::string_view text, bool parse_special) const;

  // The text of `ids`, always valid UTF-8 (ill-formed bytes become U+FFFD, see utf8.h); equal to
  // what a StreamDecoder started at the beginning of the text produces. Throws Error on an id
  // outside [0, n_vocab()).
  std::string decode(std::span<const int32_t> ids, bool skip_special) const;

  // The raw bytes one token contributes to decoded text ("" for skipped special tokens); may be
  // part of a UTF-8 character. Throws Error on an id out of range.
  std::string token_bytes(int32_t id, bool skip_special) const;
  // The vocabulary's own spelling of a token: byte-level BPE in the GPT-2 byte-to-unicode alphabet
  // ("Ġhello", as in HF tokenizer.json), SentencePiece with "▁"; special tokens as they are.
  const std::string& token_piece(int32_t id) const;
  std::optional<int32_t> token_id(std::string_view piece) const;
  TokenType token_type(int32_t id) const;
  bool is_special(int32_t id) const;  // Control or Unknown
  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const SpecialIds& special() const { return special_; }
  // Decoding strips one leading space of the whole text (SentencePiece's add_space_prefix).
  bool strips_leading_space() const { return strips_leading_space_; }
  // What this is, for messages and `autoglm tokenize`: "glm4 tiktoken", "gguf gpt2 (pre glm4)", ...
  const std::string& description() const { return description_; }

 protected:
  Tokenizer() = default;

  // Encodes one fragment of ordinary text (between added/special tokens). `after_special` is true
  // for the first fragment and for one that follows an added/special token (SentencePiece adds
  // its space prefix there, as llama.cpp does).
  virtual void encode_fragment(std::string_view text, bool after_special,
                               std::vector<int32_t>& out) const = 0;
  // Raw bytes of a Normal or Byte token.
  virtual std::string normal_token_bytes(int32_t id) const = 0;

  // Called by loaders once pieces_/types_ are final: builds the piece index and the list of
  // tokens matched verbatim in text. Throws Error on a duplicate piece that matters.
  void finish_vocab();
  void check_id(int32_t id) const;

  std::vector<std::string> pieces_;  // [n_vocab]
  std::vector<TokenType> types_;     // [n_vocab]
  SpecialIds special_;
  bool strips_leading_space_ = false;
  std::string description_;

 private:
  struct Verbatim {
    std::string_view text;
    int32_t id;
    bool always;  // UserDefined: matched even without parse_special
  };
  std::unordered_map<std::string_view, int32_t> piece_index_;  // views into pieces_
  std::vector<Verbatim> verbatim_;                             // longest first
};

// glm-4-9b-chat's tiktoken-style `tokenizer.model` (GLM_ARCHITECTURES.md G.1).
std::unique_ptr<Tokenizer> load_glm4_tiktoken(const std::filesystem::path& path);
// The tokenizer embedded in GGUF metadata (`tokenizer.ggml.model` = "gpt2" or "llama").
// `source` names the file in messages.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const nlohmann::json& metadata,
                                               const std::string& source);
// By content: a GGUF file, a model directory holding `tokenizer.model` in tiktoken format, or such
// a file itself.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// Incremental detokenization for streaming: push ids one at a time, get text that is always whole
// UTF-8 characters. Bytes of an unfinished character are held back; bytes that can no longer become
// a character are emitted as U+FFFD as soon as that is certain. The concatenation of every push()
// and finish() equals Tokenizer::decode of the same ids when `at_text_start`.
class StreamDecoder {
 public:
  // `at_text_start`: the ids begin the text (SentencePiece then strips the prefix space; leave it
  // false for a reply that continues a prompt).
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special, bool at_text_start);

  std::string push(int32_t id);
  // Text still held back, with an unfinished character replaced by U+FFFD. Resets the decoder.
  std::string finish();
  // Bytes currently held back (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string emit(std::string_view bytes, bool final);

  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool strip_space_;  // the next emitted byte is dropped if it is a space
  std::string pending_;
};

}  // namespace autoglm::tokenizer
