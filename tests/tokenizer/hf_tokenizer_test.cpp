// tokenizer.json: component semantics on small synthetic files (expected ids follow from the
// vocabulary by reasoning), the real Qwen3 and Llama 3 files (special and added tokens, NFC,
// llama.cpp's vectors for the same vocabularies), invalid UTF-8, and the round trip on the corpus
// that tests/js/tokenizer_corpus.mjs also compares with the JS runtime.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

#include "core/error.h"
#include "hf_test_support.h"
#include "support/fixtures.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/hf_tokenizer_normalize.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_support.h"

namespace autoglm::tokenizer {
namespace {

using nlohmann::json;

// A byte-level BPE file whose ids 0..255 are the bytes in byte order; `extra` tokens follow.
json tiny_tokenizer_json(const std::vector<std::string>& extra, const json& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_unicode(std::string(1, static_cast<char>(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + static_cast<int>(i);
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 300}, {"content", "[gMASK]"}, {"special", true}},
                                        {{"id", 301}, {"content", "<sop>"}, {"special", true}},
                                        {{"id", 302}, {"content", "<tool>"}, {"special", false}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             json::array(
                 {{{"type", "Split"},
                   {"pattern", {{"Regex", R"( ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+)"}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
                  {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

std::unique_ptr<Tokenizer> tiny(const json& root) {
  return load_hf_tokenizer_json(root, "tiny.json");
}

std::vector<int32_t> bytes_of(std::string_view s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TEST(HfTokenizerJson, MergesInRankOrderInBothSpellings) {
  // 256 = "ab", 257 = "abc", 258 = "bc". Rank 0 merges a+b before b+c could, so "abc" becomes
  // ab + c -> abc; "bcd" only has b+c.
  const std::vector<std::string> extra = {"ab", "abc", "bc"};
  const auto as_strings = tiny(tiny_tokenizer_json(extra, {"a b", "ab c", "b c"}));
  const auto as_pairs = tiny(tiny_tokenizer_json(
      extra,
      json::array({json::array({"a", "b"}), json::array({"ab", "c"}), json::array({"b", "c"})})));
  for (const auto* tok : {as_strings.get(), as_pairs.get()}) {
    EXPECT_EQ(tok->encode("abc", true), std::vector<int32_t>{257});
    EXPECT_EQ(tok->encode("bcd", true), (std::vector<int32_t>{258, 'd'}));
    EXPECT_EQ(tok->encode("abab", true), (std::vector<int32_t>{256, 256}));
  }
}

TEST(HfTokenizerJson, IgnoreMergesKeepsAPieceThatIsAToken) {
  // "abc" is a token but no merge makes it (only a+b): merges give ab + c, ignore_merges abc.
  json root = tiny_tokenizer_json({"ab", "abc"}, {"a b"});
  EXPECT_EQ(tiny(root)->encode("abc", true), (std::vector<int32_t>{256, 'c'}));
  root["model"]["ignore_merges"] = true;
  EXPECT_EQ(tiny(root)->encode("abc", true), std::vector<int32_t>{257});
}

TEST(HfTokenizerJson, AddedTokensAndTemplatePrefix) {
  json root = tiny_tokenizer_json({}, json::array());
  root["post_processor"] = {
      {"type", "Sequence"},
      {"processors", json::array({{{"type", "ByteLevel"}, {"trim_offsets", false}},
                                  {{"type", "TemplateProcessing"},
                                   {"single", json::array({{{"SpecialToken", {{"id", "[gMASK]"}}}},
                                                           {{"SpecialToken", {{"id", "<sop>"}}}},
                                                           {{"Sequence", {{"id", "A"}}}}})},
                                   {"special_tokens",
                                    {{"[gMASK]", {{"id", "[gMASK]"}, {"ids", {300}}}},
                                     {"<sop>", {{"id", "<sop>"}, {"ids", {301}}}}}}}})}};
  const auto tok = tiny(root);
  EXPECT_EQ(tok->special().prefix, (std::vector<int32_t>{300, 301}));
  EXPECT_EQ(tok->encode_with_prefix("x", true), (std::vector<int32_t>{300, 301, 'x'}));
  // Special tokens only with parse_special; a non-special added token always, never split.
  EXPECT_EQ(tok->encode("a<sop>", true), (std::vector<int32_t>{'a', 301}));
  std::vector<int32_t> plain = bytes_of("a");
  const auto sop_bytes = tok->encode("<sop>", false);
  plain.insert(plain.end(), sop_bytes.begin(), sop_bytes.end());
  EXPECT_EQ(tok->encode("a<sop>", false), plain);
  EXPECT_EQ(tok->encode("a<tool>", false), (std::vector<int32_t>{'a', 302}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{300, 'h', 302}, /*skip_special=*/true), "h<tool>");
}

TEST(HfTokenizerJson, PrefixSpacePerPiece) {
  // ByteLevel(add_prefix_space) after a Split: tokenizers adds the space to every piece that
  // lacks one ("a" "," -> " a" " ,").
  json root = tiny_tokenizer_json({}, json::array());
  root["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  EXPECT_EQ(tiny(root)->encode("a,", true), (std::vector<int32_t>{' ', 'a', ' ', ','}));
}

TEST(HfTokenizerJson, UnsupportedComponentsAreNamed) {
  const json base = tiny_tokenizer_json({}, json::array());
  const auto expect_error = [&](json root, const std::string& needle) {
    try {
      tiny(root);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json r = base;
  r["normalizer"] = {{"type", "Lowercase"}};
  expect_error(r, "normalizer 'Lowercase'");
  r = base;
  r["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(r, "pre_tokenizer 'Metaspace'");
  r = base;
  r["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  expect_error(r, "behavior 'Removed'");
  r = base;
  r["model"]["type"] = "Unigram";
  expect_error(r, "model type 'Unigram'");
  r = base;
  r["added_tokens"][0]["lstrip"] = true;
  expect_error(r, "'[gMASK]' with lstrip");
  r = base;
  r["post_processor"] = {{"type", "BertProcessing"}};
  expect_error(r, "post_processor 'BertProcessing'");
  r = base;
  r["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"Sequence", {{"id", "A"}}}},
                                                 {{"SpecialToken", {{"id", "<sop>"}}}}})}};
  expect_error(r, "tokens after $A");
  r = base;
  r["decoder"] = {{"type", "WordPiece"}};
  expect_error(r, "decoder 'WordPiece'");
  r = base;
  r["model"]["merges"] = {"a zz"};
  expect_error(r, "'zz', which is not in model.vocab");
}

TEST(HfTokenizerJson, ModelDirectoryWithConfigs) {
  const auto dir = testing::temp_dir("hf-dir");
  json root = tiny_tokenizer_json({}, json::array());
  std::ofstream(dir / "tokenizer.json") << root.dump();
  std::ofstream(dir / "tokenizer_config.json")
      << json{{"bos_token", "[gMASK]"}, {"eos_token", {{"content", "<sop>"}}}}.dump();
  std::ofstream(dir / "generation_config.json") << json{{"eos_token_id", {301, 302}}}.dump();
  const auto tok = load_tokenizer(dir);  // the folder, as `--model DIR` passes it
  EXPECT_EQ(tok->special().bos, 300);
  EXPECT_EQ(tok->special().eos, 301);
  EXPECT_EQ(tok->special().stop, (std::vector<int32_t>{301, 302}));
  EXPECT_EQ(load_tokenizer(dir / "tokenizer.json")->n_vocab(), 303);
  std::ofstream(dir / "broken.json") << R"({"model": {"type": "BPE", "vocab": )";
  EXPECT_THROW(load_tokenizer(dir / "broken.json"), Error);
}

// The id the file itself gives an added token.
int32_t added_id(const std::string& npm_name, const std::string& content) {
  const json root = testing::read_json(testing::npm_tokenizer_json(npm_name));
  for (const json& t : root["added_tokens"]) {
    if (t["content"] == content) return t["id"].get<int32_t>();
  }
  ADD_FAILURE() << content << " is not an added token of " << npm_name;
  return -1;
}

TEST(HfTokenizerQwen3, SpecialAndAddedTokens) {
  const Tokenizer& tok = testing::qwen3_tokenizer();
  const int32_t im_start = added_id("qwen3", "<|im_start|>");
  const int32_t think = added_id("qwen3", "<think>");  // special: false in the file
  const auto ids = tok.encode("<|im_start|>user\n<think>", true);
  ASSERT_EQ(ids.size(), 4u);  // <|im_start|>, user, \n, <think>
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_EQ(ids.back(), think);
  EXPECT_TRUE(tok.is_special(im_start));
  EXPECT_FALSE(tok.is_special(think));
  const auto as_text = tok.encode("<|im_start|><think>", false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), im_start), 0);
  EXPECT_EQ(as_text.back(), think);  // not special: matched even without parse_special
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "user\n<think>");
  EXPECT_TRUE(tok.special().prefix.empty());  // post_processor ByteLevel: adds nothing
}

TEST(HfTokenizerQwen3, NfcNormalizer) {
  // Qwen's normalizer is NFC: e + U+0301 is é before BPE; Llama 3 has none and keeps both.
  const std::string decomposed =
      "caf"
      "e\xCC\x81";
  const std::string composed = "caf\xC3\xA9";
  EXPECT_EQ(testing::qwen3_tokenizer().encode(decomposed, true),
            testing::qwen3_tokenizer().encode(composed, true));
  EXPECT_NE(testing::llama3_tokenizer().encode(decomposed, true),
            testing::llama3_tokenizer().encode(composed, true));
  EXPECT_EQ(testing::llama3_tokenizer().decode(testing::llama3_tokenizer().encode(decomposed, true),
                                               false),
            decomposed);
}

// llama.cpp's vectors for the same vocabularies (its qwen2 and llama-bpe files were made from the
// Qwen2 and Llama 3 tokenizer.json; Qwen3 keeps Qwen2's 151,643 BPE tokens).
void check_llama_cpp_vectors(const Tokenizer& tok, const std::string& name) {
  const auto cases = testing::read_vocab_cases(testing::llama_cpp_vectors_dir() / name);
  ASSERT_GT(cases.size(), 40u);
  int equal = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, /*parse_special=*/false);
    EXPECT_EQ(ids, c.ids) << "text: '" << c.text << "'";
    equal += ids == c.ids;
  }
  std::printf("%s vectors vs tokenizer.json: %d of %zu equal\n", name.c_str(), equal, cases.size());
}

TEST(HfTokenizerQwen3, LlamaCppQwen2Vectors) {
  check_llama_cpp_vectors(testing::qwen3_tokenizer(), "ggml-vocab-qwen2.gguf");
}

TEST(HfTokenizerLlama3, LlamaCppLlamaBpeVectors) {
  check_llama_cpp_vectors(testing::llama3_tokenizer(), "ggml-vocab-llama-bpe.gguf");
}

TEST(HfTokenizerLlama3, BeginOfTextIsSpecial) {
  const Tokenizer& tok = testing::llama3_tokenizer();
  const int32_t bot = added_id("llama3", "<|begin_of_text|>");
  EXPECT_EQ(tok.encode("<|begin_of_text|>Hi", true).front(), bot);
  EXPECT_EQ(tok.decode(tok.encode("<|begin_of_text|>Hi", true), true), "Hi");
}

// Invalid UTF-8 cannot be held in a JavaScript string, so tokenizer_corpus.mjs cannot compare it
// with the JS runtime; here: every byte survives encoding (the tokens' bytes concatenate to the
// input), and decode() gives the input with each ill-formed subpart replaced by U+FFFD.
TEST(HfTokenizerJson, InvalidUtf8BytesSurvive) {
  std::mt19937 rng(7);
  const std::vector<std::string> parts = {
      "\xFF",         "\xC3",     "\x80\x80",   "\xE4\xB8", "\xF0\x9F\x98",
      "\xED\xA0\x80", "\xC0\xAF", "abc",        " ",        "中文",
      "e\xCC\x81",    "\n",       "<|im_end|>", "😀",        "123"};
  for (const bool qwen : {true, false}) {
    const Tokenizer& tok = qwen ? testing::qwen3_tokenizer() : testing::llama3_tokenizer();
    int invalid = 0;
    for (int trial = 0; trial < 1000; ++trial) {
      std::string s;
      for (unsigned k = rng() % 8 + 1; k > 0; --k) s += parts[rng() % parts.size()];
      invalid += !utf8_is_valid(s);
      // Qwen3 normalizes the valid runs to NFC (e + U+0301 -> é) and keeps the other bytes.
      const std::string expected = qwen ? normalize_unicode(s, NormalForm::NFC) : s;
      const auto ids = tok.encode(s, true);
      std::string bytes;
      for (const int32_t id : ids) bytes += tok.token_bytes(id, false);
      ASSERT_EQ(bytes, expected) << testing::ids_to_string(ids);
      EXPECT_EQ(tok.decode(ids, false), utf8_repair(expected));
    }
    EXPECT_GT(invalid, 500);  // most draws hold ill-formed bytes
  }
}

// decode(encode(s)) == s and streamed decode == whole decode, on every line of the JS corpus. NFC
// changes text that is not NFC, so for Qwen3 the round trip returns NFC(s) (HF does the same).
void check_round_trip(const Tokenizer& tok, const char* name) {
  const auto& corpus = testing::js_corpus();
  ASSERT_GE(corpus.size(), 10000u);
  size_t equal = 0;
  size_t streamed = 0;
  for (const std::string& line : corpus) {
    const auto ids = tok.encode(line, true);
    const std::string whole = tok.decode(ids, false);
    const auto again = tok.encode(whole, true);
    // The decoded text is what the tokenizer saw after normalization: it encodes to the same ids.
    EXPECT_EQ(again, ids) << line;
    equal += whole == line;
    StreamDecoder stream(tok, false, true);
    std::string text;
    for (const int32_t id : ids) text += stream.push(id);
    text += stream.finish();
    EXPECT_EQ(text, whole) << line;
    streamed += text == whole;
  }
  std::printf("%s: %zu of %zu corpus lines decode to themselves, %zu stream == whole\n", name,
              equal, corpus.size(), streamed);
}

TEST(HfTokenizerLlama3, CorpusRoundTrip) {
  const Tokenizer& tok = testing::llama3_tokenizer();
  check_round_trip(tok, "llama3");
  for (const std::string& line : testing::js_corpus()) {
    ASSERT_EQ(tok.decode(tok.encode(line, true), false), line);  // no normalizer: exact
  }
}

TEST(HfTokenizerQwen3, CorpusRoundTrip) {
  const Tokenizer& tok = testing::qwen3_tokenizer();
  check_round_trip(tok, "qwen3");
  for (const std::string& line : testing::js_corpus()) {
    ASSERT_EQ(tok.decode(tok.encode(line, true), false), normalize_unicode(line, NormalForm::NFC));
  }
}

}  // namespace
}  // namespace autoglm::tokenizer
