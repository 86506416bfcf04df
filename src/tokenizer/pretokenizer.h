// Pre-tokenization: the regex that cuts text into pieces before BPE (HF `Split(Regex, Isolated)`,
// tiktoken's `pat_str`). Unicode classes (\p{L}, \p{N}) and the look-ahead in `\s+(?!\S)` run in
// PCRE2 (UTF + UCP), JIT-compiled. Text that is not valid UTF-8 never matches; the bytes between
// matches become pieces of their own, so every byte of the input lands in exactly one piece.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace autoglm::tokenizer {

class RegexSplitter {
 public:
  // Throws Error naming the pattern and PCRE2's message when it does not compile.
  explicit RegexSplitter(std::string_view pattern);
  RegexSplitter(RegexSplitter&& other) noexcept;
  RegexSplitter& operator=(RegexSplitter&& other) noexcept;
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;
  ~RegexSplitter();

  // Appends the pieces of `text` (views into it, in order, covering it exactly) to `out`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

// The regexes of the pre-tokenizers we know, by GGUF `tokenizer.ggml.pre` name (llama.cpp
// `llama-vocab.cpp` names): "gpt-2", "glm4"/"chatglm-bpe", "llama-bpe", "qwen2". nullopt if
// unknown.
std::optional<std::string_view> pretokenizer_regex(std::string_view name);

// OpenAI cl100k_base's pattern, the one glm-4-9b-chat's tokenizer uses (GLM_ARCHITECTURES.md G.1).
inline constexpr std::string_view kCl100kRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace autoglm::tokenizer
