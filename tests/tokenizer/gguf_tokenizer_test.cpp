// Tokenizers embedded in GGUF metadata against llama.cpp's vectors for its gpt-2 and llama-spm
// vocab files, and the GLM-4-style vocabulary of the tiny GGUF models.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/tensor_store.h"
#include "support/fixtures.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_support.h"

#include <nlohmann/json.hpp>

namespace autoglm::tokenizer {
namespace {

using testing::ids_to_string;

// True when a binary file was passed through a text conversion that replaced every ill-formed
// UTF-8 sequence by U+FFFD: the whole file is then valid UTF-8 and holds EF BF BD sequences, which
// a GGUF with binary numbers essentially never is.
size_t replacement_chars_if_text_converted(const std::filesystem::path& path) {
  const MappedFile file = MappedFile::open(path);
  const std::string_view bytes(reinterpret_cast<const char*>(file.data()), file.size());
  if (!utf8_is_valid(bytes)) return 0;
  size_t n = 0;
  for (size_t pos = bytes.find(kReplacementChar); pos != std::string::npos;
       pos = bytes.find(kReplacementChar, pos + 1)) {
    ++n;
  }
  return n;
}

// A shared fixture that arrived damaged is reported as SKIPPED with the reason (never as passed):
// the test cannot say anything about our code until the file is restored.
#define SKIP_IF_DAMAGED(path)                                                                     \
  if (const size_t n_damaged = replacement_chars_if_text_converted(path); n_damaged > 0)          \
  GTEST_SKIP() << (path) << " is damaged: it was stored through a text conversion that replaced " \
               << n_damaged                                                                       \
               << " binary byte sequences by U+FFFD (scores, counts, ids), so no GGUF reader "    \
                  "can load it. Restore the original from ggml-org/llama.cpp models/."

// Every vector equal, and decode(encode(s)) == s.
void check_vectors(const std::string& name) {
  const auto base = testing::llama_cpp_vectors_dir() / name;
  const auto tok = load_tokenizer(base);
  const auto cases = testing::read_vocab_cases(base);
  ASSERT_EQ(cases.size(), 46u);
  int equal = 0;
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = tok->encode(c.text, /*parse_special=*/false);
    EXPECT_EQ(ids, c.ids) << "text: '" << c.text << "'\n got " << ids_to_string(ids) << "\n want "
                          << ids_to_string(c.ids);
    equal += ids == c.ids;
    EXPECT_EQ(tok->decode(ids, false), c.text);
  }
  std::printf("%s (%s): %d of %zu llama.cpp vectors equal\n", name.c_str(),
              tok->description().c_str(), equal, cases.size());
}

TEST(GgufTokenizer, Gpt2MatchesLlamaCppVectors) {
  SKIP_IF_DAMAGED(testing::llama_cpp_vectors_dir() / "ggml-vocab-gpt-2.gguf");
  check_vectors("ggml-vocab-gpt-2.gguf");
}

TEST(GgufTokenizer, LlamaSpmMatchesLlamaCppVectors) {
  SKIP_IF_DAMAGED(testing::llama_cpp_vectors_dir() / "ggml-vocab-llama-spm.gguf");
  check_vectors("ggml-vocab-llama-spm.gguf");
}

TEST(GgufTokenizer, LlamaSpmSpecialTokensAndPrefix) {
  const auto path = testing::llama_cpp_vectors_dir() / "ggml-vocab-llama-spm.gguf";
  SKIP_IF_DAMAGED(path);
  const auto tok = load_tokenizer(path);
  ASSERT_TRUE(tok->special().bos.has_value());
  EXPECT_EQ(tok->token_piece(*tok->special().bos), "<s>");
  EXPECT_EQ(tok->token_piece(*tok->special().eos), "</s>");
  EXPECT_EQ(tok->special().prefix, std::vector<int32_t>{*tok->special().bos});  // add_bos
  const auto ids = tok->encode("<s>Hi</s>", /*parse_special=*/true);
  EXPECT_EQ(ids.front(), *tok->special().bos);
  EXPECT_EQ(ids.back(), *tok->special().eos);
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "Hi");
  // Byte fallback: a character outside the 32000 pieces comes back whole.
  const std::string rare = "\xF0\x9F\xA6\x99 llama";  // 🦙
  EXPECT_EQ(tok->decode(tok->encode(rare, false), false), rare);
}

TEST(GgufTokenizer, GlmTinyVocabularies) {
  for (const char* file : {"glm-tiny-f32.gguf", "glm-tiny-chatglm-f16.gguf"}) {
    SCOPED_TRACE(file);
    const auto tok = load_tokenizer(testing::fixtures_dir() / "gguf" / file);
    EXPECT_EQ(tok->n_vocab(), 1024);
    const auto user = tok->token_id("<|user|>");
    ASSERT_TRUE(user.has_value());
    EXPECT_TRUE(tok->is_special(*user));
    for (const auto& c :
         testing::read_vocab_cases(testing::llama_cpp_vectors_dir() / "ggml-vocab-glm4.gguf")) {
      const auto ids = tok->encode(c.text, false);
      EXPECT_EQ(tok->decode(ids, false), c.text);
    }
    const auto ids = tok->encode("<|user|>\nhi", /*parse_special=*/true);
    EXPECT_EQ(ids.front(), *user);
  }
}

TEST(GgufTokenizer, Stories260KRoundTrips) {
  const auto tok = load_tokenizer(testing::fixtures_dir() / "stories260K" / "stories260K.gguf");
  EXPECT_EQ(tok->n_vocab(), 512);
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const auto ids = tok->encode(text, false);
  EXPECT_LT(ids.size(), text.size());  // merges happened
  EXPECT_EQ(tok->decode(ids, false), text);
}

// SentencePiece BPE written the obvious O(n^2) way (llama2.c `encode`): merge the adjacent pair
// whose concatenation is a piece with the highest score, leftmost first; spell leftovers in bytes.
std::vector<int32_t> naive_spm(const Tokenizer& tok, const std::vector<float>& scores,
                               const std::string& text) {
  std::string s = "\xE2\x96\x81";
  for (const char c : text) s += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
  std::vector<std::string> parts;
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = utf8_step(std::string_view(s).substr(pos)).length;
    parts.push_back(s.substr(pos, n));
    pos += n;
  }
  const auto mergeable = [&](const std::string& piece) -> std::optional<int32_t> {
    const auto id = tok.token_id(piece);
    if (!id || (tok.token_type(*id) != TokenType::Normal &&
                tok.token_type(*id) != TokenType::UserDefined)) {
      return std::nullopt;
    }
    return id;
  };
  while (true) {
    std::optional<size_t> best;
    float best_score = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto id = mergeable(parts[i] + parts[i + 1]);
      if (!id) continue;
      const float score = scores.at(*id);
      if (!best || score > best_score) {
        best = i;
        best_score = score;
      }
    }
    if (!best) break;
    parts[*best] += parts[*best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(*best) + 1);
  }
  std::vector<int32_t> ids;
  for (const auto& p : parts) {
    if (const auto id = mergeable(p)) {
      ids.push_back(*id);
      continue;
    }
    for (const unsigned char c : p) ids.push_back(*tok.token_id(fmt::format("<0x{:02X}>", c)));
  }
  return ids;
}

TEST(GgufTokenizer, Stories260KHeapMergeEqualsNaiveMerge) {
  const auto path = testing::fixtures_dir() / "stories260K" / "stories260K.gguf";
  const auto tok = load_tokenizer(path);
  const auto meta = formats::open_gguf(path).metadata();
  const auto scores = meta.at("tokenizer.ggml.scores").get<std::vector<float>>();
  std::mt19937 rng(99);
  const std::vector<std::string> alphabet = {"a", "e", "o", "t", "h",        "n",
                                             "s", "r", "d", "l", " ",        " ",
                                             ".", ",", "O", "L", "\xC3\xA9", "\xE4\xB8\x96"};
  for (int n = 0; n < 300; ++n) {
    std::string text;
    const size_t length = 1 + rng() % (n < 280 ? 30 : 400);
    for (size_t i = 0; i < length; ++i) text += alphabet[rng() % alphabet.size()];
    ASSERT_EQ(tok->encode(text, false), naive_spm(*tok, scores, text)) << "'" << text << "'";
  }
}

TEST(GgufTokenizer, BadMetadataIsAnError) {
  nlohmann::json meta = {{"tokenizer.ggml.model", "bert"}};
  EXPECT_THROW(load_gguf_tokenizer(meta, "x.gguf"), Error);
  meta = {{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.pre", "nonesuch"}};
  EXPECT_THROW(load_gguf_tokenizer(meta, "x.gguf"), Error);
  meta = {{"tokenizer.ggml.model", "llama"},
          {"tokenizer.ggml.tokens", {"a", "b"}},
          {"tokenizer.ggml.scores", {0.0}}};
  EXPECT_THROW(load_gguf_tokenizer(meta, "x.gguf"), Error);
  meta = {{"tokenizer.ggml.model", "gpt2"},
          {"tokenizer.ggml.tokens", {"a", "b"}},
          {"tokenizer.ggml.merges", nlohmann::json::array()}};
  EXPECT_THROW(load_gguf_tokenizer(meta, "x.gguf"), Error);  // bytes without tokens
  EXPECT_THROW(load_tokenizer(testing::fixtures_dir() / "no-such-file.gguf"), Error);
}

}  // namespace
}  // namespace autoglm::tokenizer
