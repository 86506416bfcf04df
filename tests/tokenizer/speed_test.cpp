// Encoding speed of the GLM-4 tokenizer on ~1 MB of mixed text. Prints MB/s and tokens/s
// (DESIGN.md: performance is reported, never asserted); asserts only that the text round-trips.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "tokenizer_test_support.h"

namespace autoglm::tokenizer {
namespace {

// Deterministic mixed text: English prose, code, Chinese, numbers, emoji, whitespace runs, and
// llama.cpp's vector strings, in random order.
std::string mixed_text(size_t target_bytes) {
  const std::vector<std::string> words = {
      "the",   "model",  "serves", "requests", "quickly", "GLM-4",      "tokens",
      "batch", "memory", "Hello",  "world",    "it's",    "they'll",    "我们",
      "模型",  "推理",   "服务器", "北京",     "的",      "こんにちは", "Привет",
      "мир",   "😀",      "🦙",   "12345",    "3.14159", "2024-06-05", "$1,000"};
  const std::vector<std::string> code = {
      "for (int i = 0; i < n; ++i) {\n    sum += x[i] * w[i];\n}\n",
      "def f(x):\n\treturn {'a': [1, 2, 3], \"b\": None}\n",
      "    if (!ok) return Error(\"failed\");\n\n\n"};
  std::vector<std::string> pieces = words;
  for (const auto& c :
       testing::read_vocab_cases(testing::llama_cpp_vectors_dir() / "ggml-vocab-glm4.gguf")) {
    pieces.push_back(c.text);
  }
  std::mt19937 rng(42);
  std::string text;
  text.reserve(target_bytes + 256);
  while (text.size() < target_bytes) {
    const unsigned r = rng() % 100;
    if (r < 80) {
      text += pieces[rng() % pieces.size()];
      text += (rng() % 12 == 0) ? ".\n" : " ";
    } else if (r < 95) {
      text += code[rng() % code.size()];
    } else {
      text += std::string(1 + rng() % 16, " \t\n"[rng() % 3]);
    }
  }
  return text;
}

TEST(TokenizerSpeed, Glm4EncodesOneMegabyte) {
  const Tokenizer& tok = testing::glm4_tokenizer();
  const std::string text = mixed_text(1 << 20);
  tok.encode("warm up the regex JIT", false);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, false);
  const auto t1 = std::chrono::steady_clock::now();
  const std::string back = tok.decode(ids, false);
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(back, text);
  const double enc_s = std::chrono::duration<double>(t1 - t0).count();
  const double dec_s = std::chrono::duration<double>(t2 - t1).count();
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf(
      "glm4 encode: %.2f MB in %.1f ms = %.1f MB/s, %zu tokens = %.2f M tokens/s; "
      "decode %.1f MB/s (one thread)\n",
      mb, enc_s * 1e3, mb / enc_s, ids.size(), static_cast<double>(ids.size()) / enc_s / 1e6,
      mb / dec_s);
}

TEST(TokenizerSpeed, LongPiecesStayLinear) {
  // One pre-tokenizer piece of 140 KB (no letters, digits or spaces): the heap merge is
  // O(n log n) where a naive loop would be O(n^2) ~ 2e10 steps.
  const Tokenizer& tok = testing::glm4_tokenizer();
  std::string text;
  for (int i = 0; i < 40000; ++i) text += "!?#$%"[i % 5];
  text += std::string(100000, '=');
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(tok.decode(ids, false), text);
  std::printf("glm4 one %zu-byte piece: %.1f ms, %zu tokens\n", text.size(), s * 1e3, ids.size());
}

}  // namespace
}  // namespace autoglm::tokenizer
