// Encoding speed of the Qwen3 tokenizer.json on ~1 MB of the JS corpus (code, CJK, emoji, numbers,
// whitespace, mixed scripts). Prints MB/s and tokens/s (DESIGN.md: performance is reported, never
// asserted); asserts only that the ids decode back to the NFC text.
#include <gtest/gtest.h>

#include <chrono>

#include "hf_test_support.h"
#include "tokenizer/hf_tokenizer_normalize.h"

namespace autoglm::tokenizer {
namespace {

TEST(HfTokenizerSpeed, Qwen3EncodeOneMegabyte) {
  std::string text;
  for (const std::string& line : testing::js_corpus()) {
    if (text.size() >= (1u << 20)) break;
    text += line;
    text += '\n';
  }
  const Tokenizer& tok = testing::qwen3_tokenizer();
  tok.encode(text.substr(0, 4096), true);  // warm the thread-local scratch
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(tok.decode(ids, false), normalize_unicode(text, NormalForm::NFC));
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf(
      "qwen3 tokenizer.json encode: %.2f MB in %.1f ms = %.2f MB/s, %zu tokens = %.2f M "
      "tokens/s (one thread)\n",
      mb, s * 1e3, mb / s, ids.size(), static_cast<double>(ids.size()) / s / 1e6);
}

}  // namespace
}  // namespace autoglm::tokenizer
