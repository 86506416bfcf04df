#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <array>
#include <memory>
#include <utility>

#include "core/error.h"

namespace autoglm::tokenizer {
namespace {

std::string pcre2_message(int code) {
  std::array<PCRE2_UCHAR, 256> buffer{};
  pcre2_get_error_message(code, buffer.data(), buffer.size());
  return std::string(reinterpret_cast<const char*>(buffer.data()));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};

// GPT-2 (openai/gpt-2 encoder.py; HF ByteLevel pre-tokenizer with use_regex).
constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 (its tokenizer.json): cl100k with the contractions spelled case by case.
constexpr std::string_view kLlama3Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2/3 (its tokenizer.json): cl100k with single digits.
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

RegexSplitter::RegexSplitter(std::string_view pattern) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MATCH_INVALID_UTF (PCRE2 >= 10.34): ill-formed UTF-8 in the subject is allowed and never
  // matches, instead of failing the whole match.
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (code_ == nullptr) {
    fail("pre-tokenizer regex does not compile at offset {}: {} (pattern: {})", offset,
         pcre2_message(error), pattern_);
  }
  // JIT is an optimisation only: without it (unsupported CPU, no executable memory) the
  // interpreter gives the same matches.
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

RegexSplitter::RegexSplitter(RegexSplitter&& other) noexcept
    : pattern_(std::move(other.pattern_)), code_(std::exchange(other.code_, nullptr)) {}

RegexSplitter& RegexSplitter::operator=(RegexSplitter&& other) noexcept {
  if (this != &other) {
    pcre2_code_free(code_);
    pattern_ = std::move(other.pattern_);
    code_ = std::exchange(other.code_, nullptr);
  }
  return *this;
}

RegexSplitter::~RegexSplitter() {
  pcre2_code_free(code_);
}

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  // Per call, so that one compiled pattern serves many threads.
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code_, nullptr));
  if (!md) fail("out of memory allocating PCRE2 match data for a {}-byte text", text.size());
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap_start = 0;
  size_t offset = 0;
  while (offset < text.size()) {
    const int rc = pcre2_match(code_, subject, text.size(), offset, 0, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      fail("pre-tokenizer regex failed on a {}-byte text at byte {}: {}", text.size(), offset,
           pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t start = ov[0];
    size_t end = ov[1];
    if (end == start) end = start + 1;  // an empty match (none of our patterns has one): move on
    if (start > gap_start) out.push_back(text.substr(gap_start, start - gap_start));
    out.push_back(text.substr(start, end - start));
    gap_start = offset = end;
  }
  if (gap_start < text.size()) out.push_back(text.substr(gap_start));
}

std::optional<std::string_view> pretokenizer_regex(std::string_view name) {
  if (name == "gpt-2" || name == "gpt2") return kGpt2Regex;
  if (name == "glm4" || name == "chatglm-bpe" || name == "cl100k") return kCl100kRegex;
  if (name == "llama-bpe" || name == "llama3") return kLlama3Regex;
  if (name == "qwen2") return kQwen2Regex;
  return std::nullopt;
}

}  // namespace autoglm::tokenizer
