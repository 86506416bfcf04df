// The tokenizer embedded in GGUF metadata (the `tokenizer.ggml.*` keys written by llama.cpp's
// gguf-py: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md "Tokenizer").
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {
namespace {

using nlohmann::json;

struct Reader {
  const json& meta;
  const std::string& source;

  const json* find(const char* key) const {
    const auto it = meta.find(key);
    return it == meta.end() ? nullptr : &*it;
  }

  const json& array(const char* key, size_t expected_size) const {
    const json* value = find(key);
    if (value == nullptr || !value->is_array()) {
      fail(
          "{}: metadata '{}' is missing or not an array, so the tokenizer cannot be built; the "
          "GGUF file carries no usable vocabulary (re-convert it with llama.cpp's converter)",
          source, key);
    }
    if (expected_size != 0 && value->size() != expected_size) {
      fail(
          "{}: metadata '{}' has {} entries but tokenizer.ggml.tokens has {}; the file is "
          "inconsistent",
          source, key, value->size(), expected_size);
    }
    return *value;
  }

  std::optional<int32_t> id(const char* key, size_t n_vocab) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    // llama.cpp's converters write -1 (as uint32 0xFFFFFFFF) for "no such token".
    if (value->is_number_integer() &&
        (value->get<int64_t>() == -1 || value->get<int64_t>() == 0xFFFFFFFF)) {
      return std::nullopt;
    }
    if (!value->is_number_integer() || value->get<int64_t>() < 0 ||
        value->get<int64_t>() >= static_cast<int64_t>(n_vocab)) {
      fail("{}: metadata '{}' = {} is not a token id below the vocabulary size {}", source, key,
           value->dump(), n_vocab);
    }
    return value->get<int32_t>();
  }

  bool flag(const char* key, bool fallback) const {
    const json* value = find(key);
    return value != nullptr && value->is_boolean() ? value->get<bool>() : fallback;
  }
};

std::vector<std::string> read_tokens(const Reader& r) {
  const json& tokens = r.array("tokenizer.ggml.tokens", 0);
  std::vector<std::string> out;
  out.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].is_string()) fail("{}: tokenizer.ggml.tokens[{}] is not a string", r.source, i);
    out.push_back(tokens[i].get<std::string>());
  }
  if (out.empty()) fail("{}: tokenizer.ggml.tokens is empty", r.source);
  return out;
}

std::vector<TokenType> read_types(const Reader& r, size_t n_vocab) {
  std::vector<TokenType> out(n_vocab, TokenType::Normal);
  if (r.find("tokenizer.ggml.token_type") == nullptr) return out;
  const json& types = r.array("tokenizer.ggml.token_type", n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) {
    const int64_t t = types[i].is_number_integer() ? types[i].get<int64_t>() : -1;
    if (t < 1 || t > 6) {
      fail("{}: tokenizer.ggml.token_type[{}] = {} is not a token type (1..6)", r.source, i,
           types[i].dump());
    }
    out[i] = static_cast<TokenType>(t);
  }
  return out;
}

// `add_bos_default`: what llama.cpp assumes when the file has no tokenizer.ggml.add_bos_token:
// true for SentencePiece ("llama") vocabularies, false for byte-level BPE.
SpecialIds read_special(const Reader& r, size_t n_vocab, bool add_bos_default) {
  SpecialIds s;
  s.bos = r.id("tokenizer.ggml.bos_token_id", n_vocab);
  s.eos = r.id("tokenizer.ggml.eos_token_id", n_vocab);
  s.unk = r.id("tokenizer.ggml.unknown_token_id", n_vocab);
  s.pad = r.id("tokenizer.ggml.padding_token_id", n_vocab);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    const auto id = r.id(key, n_vocab);
    if (id && std::find(s.stop.begin(), s.stop.end(), *id) == s.stop.end()) s.stop.push_back(*id);
  }
  if (r.flag("tokenizer.ggml.add_bos_token", add_bos_default) && s.bos) s.prefix.push_back(*s.bos);
  return s;
}

std::unique_ptr<Tokenizer> load_gpt2(const Reader& r, const std::string& pre) {
  ByteLevelBpeData data;
  data.description = fmt::format("gguf gpt2 (pre {}) from {}", pre, r.source);
  const auto regex = pretokenizer_regex(pre);
  if (!regex) {
    fail(
        "{}: pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported; known: gpt-2, glm4, "
        "chatglm-bpe, llama-bpe, qwen2",
        r.source, pre);
  }
  data.regex = std::string(*regex);
  data.pieces = read_tokens(r);
  const size_t n = data.pieces.size();
  data.types = read_types(r, n);
  data.special = read_special(r, n, false);
  data.raw.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (data.types[i] != TokenType::Normal) continue;
    auto bytes = unicode_to_bytes(data.pieces[i]);
    // A piece outside the byte alphabet cannot come out of merges; it decodes as written.
    data.raw[i] = bytes ? std::move(*bytes) : data.pieces[i];
  }
  std::unordered_map<std::string_view, int32_t> index;
  for (size_t i = 0; i < n; ++i) index.emplace(data.pieces[i], static_cast<int32_t>(i));
  const json& merges = r.array("tokenizer.ggml.merges", 0);
  data.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string* line = merges[rank].get_ptr<const std::string*>();
    const size_t space = line ? line->find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      fail("{}: tokenizer.ggml.merges[{}] is not a string of the form 'left right'", r.source,
           rank);
    }
    const std::string_view left = std::string_view(*line).substr(0, space);
    const std::string_view right = std::string_view(*line).substr(space + 1);
    const auto l = index.find(left);
    const auto rt = index.find(right);
    const auto m = index.find(std::string(left) + std::string(right));
    // HF tokenizers rejects such a merge at load; llama.cpp never applies it. Skip it the same way.
    if (l == index.end() || rt == index.end() || m == index.end()) continue;
    data.merges.push_back({l->second, rt->second, static_cast<int32_t>(rank), m->second});
  }
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(data));
}

std::unique_ptr<Tokenizer> load_llama(const Reader& r) {
  SpmData data;
  data.description = fmt::format("gguf llama sentencepiece from {}", r.source);
  data.pieces = read_tokens(r);
  const size_t n = data.pieces.size();
  data.types = read_types(r, n);
  data.special = read_special(r, n, true);
  data.scores.assign(n, 0.0f);
  if (r.find("tokenizer.ggml.scores") != nullptr) {
    const json& scores = r.array("tokenizer.ggml.scores", n);
    for (size_t i = 0; i < n; ++i) {
      if (!scores[i].is_number())
        fail("{}: tokenizer.ggml.scores[{}] is not a number", r.source, i);
      data.scores[i] = scores[i].get<float>();
    }
  }
  data.add_space_prefix = r.flag("tokenizer.ggml.add_space_prefix", true);
  return std::make_unique<SpmTokenizer>(std::move(data));
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const nlohmann::json& metadata,
                                               const std::string& source) {
  const Reader r{metadata, source};
  const json* model = r.find("tokenizer.ggml.model");
  if (model == nullptr || !model->is_string()) {
    fail(
        "{}: no tokenizer.ggml.model in the GGUF metadata, so it carries no tokenizer; use a "
        "GGUF converted with its vocabulary",
        source);
  }
  const std::string name = model->get<std::string>();
  if (name == "gpt2") {
    const json* pre = r.find("tokenizer.ggml.pre");
    return load_gpt2(r, pre != nullptr && pre->is_string() ? pre->get<std::string>() : "gpt-2");
  }
  if (name == "llama") return load_llama(r);
  fail(
      "{}: tokenizer model '{}' (tokenizer.ggml.model) is not supported; supported: gpt2 "
      "(byte-level BPE), llama (SentencePiece BPE)",
      source, name);
}

}  // namespace autoglm::tokenizer
