// UTF-8 repair and streaming detokenization: never half a character, U+FFFD only for bytes that
// can no longer complete, and streamed text equal to whole decode.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/utf8.h"
#include "tokenizer_test_support.h"

namespace autoglm::tokenizer {
namespace {

constexpr std::string_view kFffd = kReplacementChar;

TEST(Utf8, StepClassifiesSequences) {
  EXPECT_EQ(utf8_step("A").kind, Utf8Kind::Valid);
  EXPECT_EQ(utf8_step("\xC3\xA9").length, 2u);
  EXPECT_EQ(utf8_step("\xF0\x9F\x98\x80").length, 4u);
  EXPECT_EQ(utf8_step("\xF0\x9F").kind, Utf8Kind::Incomplete);
  EXPECT_EQ(utf8_step("\x80").kind, Utf8Kind::Invalid);              // lone continuation
  EXPECT_EQ(utf8_step("\xC0\x80").kind, Utf8Kind::Invalid);          // overlong lead
  EXPECT_EQ(utf8_step("\xE0\x80").kind, Utf8Kind::Invalid);          // overlong 3-byte form
  EXPECT_EQ(utf8_step("\xED\xA0\x80").kind, Utf8Kind::Invalid);      // surrogate
  EXPECT_EQ(utf8_step("\xF4\x90\x80\x80").kind, Utf8Kind::Invalid);  // above U+10FFFF
  const Utf8Step cut = utf8_step(
      "\xE4\xB8"
      "A");
  EXPECT_EQ(cut.kind, Utf8Kind::Invalid);
  EXPECT_EQ(cut.length, 2u);  // the maximal subpart E4 B8 is one U+FFFD
}

TEST(Utf8, RepairReplacesMaximalSubparts) {
  // Unicode §3.9 example (Table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a F F F b F c F F d
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string f(kFffd);
  EXPECT_EQ(utf8_repair(in), "a" + f + f + f + "b" + f + "c" + f + f + "d");
  std::string out;
  EXPECT_EQ(utf8_repair_append("ab\xE4\xB8", false, out), 2u);  // held back
  EXPECT_EQ(out, "ab");
}

// The raw ids of the bytes of `s` (GLM-4's byte tokens): forces characters across tokens.
std::vector<int32_t> byte_tokens(const Tokenizer& tok, std::string_view s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(tok.encode(std::string(1, c), false).at(0));
  return ids;
}

TEST(StreamDecoder, HoldsBackAnUnfinishedCharacter) {
  const Tokenizer& tok = testing::glm4_tokenizer();
  StreamDecoder d(tok, true, true);
  const auto ids = byte_tokens(tok, "\xF0\x9F\x98\x80!");  // 😀!
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(d.push(ids[0]), "");
  EXPECT_EQ(d.push(ids[1]), "");
  EXPECT_EQ(d.push(ids[2]), "");
  EXPECT_EQ(d.pending_bytes(), 3u);
  EXPECT_EQ(d.push(ids[3]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.push(ids[4]), "!");
  EXPECT_EQ(d.finish(), "");
}

TEST(StreamDecoder, ReplacesBytesThatCanNoLongerComplete) {
  const Tokenizer& tok = testing::glm4_tokenizer();
  StreamDecoder d(tok, true, true);
  const auto ids = byte_tokens(tok,
                               "\x80\xE4\xB8"
                               "A\xE4");
  EXPECT_EQ(d.push(ids[0]), kFffd);  // a lone continuation byte: invalid at once
  EXPECT_EQ(d.push(ids[1]), "");
  EXPECT_EQ(d.push(ids[2]), "");
  EXPECT_EQ(d.push(ids[3]), std::string(kFffd) + "A");  // 'A' ends the hope for E4 B8
  EXPECT_EQ(d.push(ids[4]), "");
  EXPECT_EQ(d.finish(), kFffd);  // the text ended inside a character
}

TEST(StreamDecoder, SkipsSpecialTokensUnlessAsked) {
  const Tokenizer& tok = testing::glm4_tokenizer();
  const auto ids = tok.encode("<|assistant|>\nHi<|user|>", true);
  std::string skipped;
  std::string kept;
  StreamDecoder a(tok, true, false);
  StreamDecoder b(tok, false, false);
  for (const int32_t id : ids) {
    skipped += a.push(id);
    kept += b.push(id);
  }
  EXPECT_EQ(skipped + a.finish(), "\nHi");
  EXPECT_EQ(kept + b.finish(), "<|assistant|>\nHi<|user|>");
}

TEST(StreamDecoder, StreamEqualsWholeDecode) {
  const Tokenizer& tok = testing::glm4_tokenizer();
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> sequences;
  for (const auto& c :
       testing::read_vocab_cases(testing::llama_cpp_vectors_dir() / "ggml-vocab-glm4.gguf")) {
    sequences.push_back(c.ids);
  }
  // Random ids, which often end or start inside a character, plus specials.
  for (int n = 0; n < 300; ++n) {
    std::vector<int32_t> ids(1 + rng() % 40);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % tok.n_vocab());
    sequences.push_back(ids);
  }
  for (const auto& ids : sequences) {
    for (const bool skip : {false, true}) {
      StreamDecoder d(tok, skip, true);
      std::string streamed;
      for (const int32_t id : ids) {
        const std::string part = d.push(id);
        EXPECT_TRUE(utf8_is_valid(part));
        streamed += part;
      }
      streamed += d.finish();
      EXPECT_EQ(streamed, tok.decode(ids, skip));
    }
  }
}

}  // namespace
}  // namespace autoglm::tokenizer
