#include "tokenizer/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer_bpe.h"

namespace autoglm::tokenizer {
namespace {

using nlohmann::json;

// What the component parsers need to say where they are.
struct Context {
  const std::string& source;
};

std::string type_of(const json& node) {
  if (!node.is_object()) return "?";
  const auto it = node.find("type");
  return it != node.end() && it->is_string() ? it->get<std::string>() : "?";
}

bool bool_field(const json& node, const char* key, bool fallback) {
  const auto it = node.find(key);
  if (it == node.end() || it->is_null()) return fallback;
  return it->is_boolean() ? it->get<bool>() : fallback;
}

[[noreturn]] void unsupported(const Context& c, const std::string& component,
                              const std::string& detail) {
  fail(
      "{}: {} is not supported ({}); autoglm reads the byte-level BPE tokenizer.json files of "
      "GLM-4-0414, GLM-4.5, Qwen2/Qwen3 and Llama 3; use the model's GGUF file instead, or report "
      "this file",
      c.source, component, detail);
}

void parse_normalizer(const Context& c, const json& node, std::vector<NormalForm>& out) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& child : node.value("normalizers", json::array())) {
      parse_normalizer(c, child, out);
    }
  } else if (type == "NFC") {
    out.push_back(NormalForm::NFC);
  } else if (type == "NFD") {
    out.push_back(NormalForm::NFD);
  } else if (type == "NFKC") {
    out.push_back(NormalForm::NFKC);
  } else if (type == "NFKD") {
    out.push_back(NormalForm::NFKD);
  } else {
    unsupported(c, "normalizer '" + type + "'", "only NFC, NFD, NFKC, NFKD and Sequence are");
  }
}

// PCRE2 reads the pattern literally between \Q and \E.
std::string literal_regex(const Context& c, const std::string& text) {
  if (text.find("\\E") != std::string::npos) {
    unsupported(c, "a Split pattern string containing \\E", text);
  }
  return "\\Q" + text + "\\E";
}

void parse_split(const Context& c, const json& node, std::vector<HfPreTokenStep>& out) {
  const std::string behavior = node.value("behavior", std::string("?"));
  if (behavior != "Isolated") {
    unsupported(c, "pre_tokenizer Split with behavior '" + behavior + "'", "only Isolated is");
  }
  if (bool_field(node, "invert", false)) unsupported(c, "pre_tokenizer Split", "invert: true");
  const json& pattern = node.value("pattern", json::object());
  HfPreTokenStep step;
  if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
    // tokenizers compiles these with Oniguruma; the patterns these files use (\p{L}, (?i:...),
    // (?!\S)) mean the same in PCRE2.
    step.regex = pattern["Regex"].get<std::string>();
  } else if (pattern.contains("String") && pattern["String"].is_string()) {
    step.regex = literal_regex(c, pattern["String"].get<std::string>());
  } else {
    unsupported(c, "pre_tokenizer Split pattern", pattern.dump());
  }
  out.push_back(std::move(step));
}

// Returns whether a ByteLevel step was seen (it maps bytes to the vocabulary's alphabet).
bool parse_pre_tokenizer(const Context& c, const json& node, std::vector<HfPreTokenStep>& out) {
  if (node.is_null()) return false;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    bool byte_level = false;
    for (const json& child : node.value("pretokenizers", json::array())) {
      byte_level = parse_pre_tokenizer(c, child, out) || byte_level;
    }
    return byte_level;
  }
  if (type == "Split") {
    parse_split(c, node, out);
    return false;
  }
  if (type == "ByteLevel") {
    // tokenizers' ByteLevel: per piece, a prefix space first, then GPT-2's regex (use_regex
    // defaults to true in files written before the flag existed).
    if (bool_field(node, "add_prefix_space", false)) {
      out.push_back({HfPreTokenStep::Kind::PrefixSpace, {}});
    }
    if (bool_field(node, "use_regex", true)) {
      out.push_back({HfPreTokenStep::Kind::Split, std::string(*pretokenizer_regex("gpt2"))});
    }
    return true;
  }
  unsupported(c, "pre_tokenizer '" + type + "'", "only ByteLevel, Split and Sequence are");
}

void check_bpe_options(const Context& c, const json& model) {
  const auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    unsupported(c, "BPE dropout", "it makes encoding random; set it to null");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && it->is_string() && !it->get<std::string>().empty()) {
      unsupported(c, std::string("BPE ") + key, it->get<std::string>());
    }
  }
  if (bool_field(model, "byte_fallback", false)) {
    unsupported(c, "BPE byte_fallback", "that is SentencePiece-style BPE, not byte-level");
  }
}

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;
};

std::vector<AddedToken> parse_added_tokens(const Context& c, const json& root,
                                           const std::vector<NormalForm>& normalizers) {
  std::vector<AddedToken> out;
  for (const json& t : root.value("added_tokens", json::array())) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string()) {
      fail("{}: an entry of added_tokens lacks an integer 'id' or a string 'content': {}", c.source,
           t.dump());
    }
    AddedToken a{t["id"].get<int32_t>(), t["content"].get<std::string>(),
                 bool_field(t, "special", false)};
    // lstrip/rstrip/single_word change what text a token swallows; none of the GLM, Qwen or
    // Llama 3 files sets them, and the shared matcher (Tokenizer::encode) has no hook for them.
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (bool_field(t, flag, false)) {
        unsupported(c, fmt::format("added token '{}' with {}: true", a.content, flag),
                    "tokens are matched verbatim only");
      }
    }
    // `normalized: true` means HF matches the token in normalized text. We match every added
    // token in the raw text, which is the same whenever normalizing the token's own text leaves
    // it unchanged (all ASCII tokens under NFC/NFD/NFKC/NFKD).
    if (bool_field(t, "normalized", false)) {
      std::string normal = a.content;
      for (const NormalForm f : normalizers) normal = normalize_unicode(normal, f);
      if (normal != a.content) {
        unsupported(c, "added token '" + a.content + "' with normalized: true",
                    "the normalizer changes its text");
      }
    }
    if (a.id < 0) fail("{}: added token '{}' has a negative id {}", c.source, a.content, a.id);
    out.push_back(std::move(a));
  }
  return out;
}

using PieceIndex = std::unordered_map<std::string, int32_t>;

PieceIndex parse_vocab(const Context& c, const json& model) {
  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object() || vocab->empty()) {
    fail("{}: model.vocab is missing or empty; the file is damaged or not a BPE tokenizer",
         c.source);
  }
  PieceIndex index;
  index.reserve(vocab->size());
  for (const auto& [piece, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail("{}: model.vocab['{}'] is {}, not a token id", c.source, piece, id.dump());
    }
    index.emplace(piece, id.get<int32_t>());
  }
  return index;
}

void fill_vocab(const Context& c, const PieceIndex& vocab, const std::vector<AddedToken>& added,
                HfBpeData& d) {
  int32_t max_id = -1;
  for (const auto& [piece, id] : vocab) max_id = std::max(max_id, id);
  for (const AddedToken& a : added) max_id = std::max(max_id, a.id);
  const auto n = static_cast<size_t>(max_id) + 1;
  d.pieces.assign(n, std::string());
  d.types.assign(n, TokenType::Unused);  // ids no entry names (gaps) stay Unused
  d.raw.assign(n, std::string());
  d.in_model_vocab.assign(n, false);
  for (const auto& [piece, id] : vocab) {
    if (d.types[id] != TokenType::Unused) {
      fail("{}: model.vocab gives id {} to both '{}' and '{}'", c.source, id, d.pieces[id], piece);
    }
    d.pieces[id] = piece;
    d.types[id] = TokenType::Normal;
    // tokenizers' ByteLevel decoder: a token with a character outside the byte alphabet decodes
    // to its own UTF-8 text.
    auto bytes = unicode_to_bytes(piece);
    d.in_model_vocab[id] = bytes.has_value();
    d.raw[id] = bytes ? std::move(*bytes) : piece;
  }
  for (const AddedToken& a : added) {
    d.pieces[a.id] = a.content;
    d.types[a.id] = a.special ? TokenType::Control : TokenType::UserDefined;
  }
}

std::pair<std::string, std::string> merge_parts(const Context& c, const json& m, size_t i) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  if (m.is_string()) {
    // "a b": byte-level pieces never hold a space (it is spelled 'Ġ'), so one space separates.
    const std::string& s = m.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space != std::string::npos && s.find(' ', space + 1) == std::string::npos) {
      return {s.substr(0, space), s.substr(space + 1)};
    }
  }
  fail("{}: model.merges[{}] is {}, expected \"left right\" or [\"left\", \"right\"]", c.source, i,
       m.dump());
}

std::vector<MergeTable::Entry> parse_merges(const Context& c, const json& model,
                                            const PieceIndex& vocab) {
  const json& merges = model.value("merges", json::array());
  std::vector<MergeTable::Entry> out;
  out.reserve(merges.size());
  const auto id_of = [&](const std::string& piece, size_t i) {
    const auto it = vocab.find(piece);
    if (it == vocab.end()) {
      fail("{}: model.merges[{}] uses '{}', which is not in model.vocab (damaged file?)", c.source,
           i, piece);
    }
    return it->second;
  };
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [left, right] = merge_parts(c, merges[i], i);
    // Rank = line in the merge list: lower merges first (tokenizers' BPE, word.rs).
    out.push_back(
        {id_of(left, i), id_of(right, i), static_cast<int32_t>(i), id_of(left + right, i)});
  }
  return out;
}

// The ids a TemplateProcessing item names: its entry in `special_tokens`, else the token itself.
std::vector<int32_t> template_token_ids(const Context& c, const json& node, const std::string& name,
                                        const PieceIndex& vocab,
                                        const std::vector<AddedToken>& added) {
  const json& table = node.value("special_tokens", json::object());
  if (table.contains(name) && table[name].contains("ids") && table[name]["ids"].is_array()) {
    return table[name]["ids"].get<std::vector<int32_t>>();
  }
  for (const AddedToken& a : added) {
    if (a.content == name) return {a.id};
  }
  if (const auto it = vocab.find(name); it != vocab.end()) return {it->second};
  fail("{}: post_processor TemplateProcessing names '{}', which is no token of this file", c.source,
       name);
}

void parse_post_processor(const Context& c, const json& node, const PieceIndex& vocab,
                          const std::vector<AddedToken>& added, std::vector<int32_t>& prefix) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& child : node.value("processors", json::array())) {
      parse_post_processor(c, child, vocab, added, prefix);
    }
  } else if (type == "TemplateProcessing") {
    bool seen_text = false;
    for (const json& item : node.value("single", json::array())) {
      if (item.contains("Sequence")) {
        seen_text = true;
      } else if (item.contains("SpecialToken") && !seen_text) {
        const std::string name = item["SpecialToken"].value("id", std::string());
        const auto ids = template_token_ids(c, node, name, vocab, added);
        prefix.insert(prefix.end(), ids.begin(), ids.end());
      } else {
        // SpecialIds has a prefix only; no GLM, Qwen or Llama 3 file appends tokens.
        unsupported(c, "post_processor TemplateProcessing with tokens after $A", item.dump());
      }
    }
  } else if (type != "ByteLevel") {  // ByteLevel only trims offsets: ids unchanged
    unsupported(c, "post_processor '" + type + "'",
                "only ByteLevel, TemplateProcessing and Sequence are");
  }
}

void check_decoder(const Context& c, const json& node) {
  if (node.is_null()) return;
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& child : node.value("decoders", json::array())) check_decoder(c, child);
  } else if (type != "ByteLevel") {
    unsupported(c, "decoder '" + type + "'", "only ByteLevel is");
  }
}

// tokenizer_config.json names tokens as "<s>" or {"content": "<s>", ...}.
std::optional<int32_t> config_token(const json* config, const char* key, const PieceIndex& vocab,
                                    const std::vector<AddedToken>& added) {
  if (config == nullptr || !config->contains(key)) return std::nullopt;
  const json& v = (*config)[key];
  std::string name;
  if (v.is_string()) name = v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    name = v["content"].get<std::string>();
  }
  for (const AddedToken& a : added) {
    if (a.content == name) return a.id;
  }
  if (const auto it = vocab.find(name); it != vocab.end()) return it->second;
  return std::nullopt;
}

SpecialIds special_ids(const HfSideFiles& side, const PieceIndex& vocab,
                       const std::vector<AddedToken>& added) {
  SpecialIds s;
  s.bos = config_token(side.tokenizer_config, "bos_token", vocab, added);
  s.eos = config_token(side.tokenizer_config, "eos_token", vocab, added);
  s.unk = config_token(side.tokenizer_config, "unk_token", vocab, added);
  s.pad = config_token(side.tokenizer_config, "pad_token", vocab, added);
  if (s.eos) s.stop.push_back(*s.eos);
  // generation_config.json's eos_token_id (a number or a list: GLM-4-0414 lists three) is what
  // transformers' generate() stops on.
  if (side.generation_config != nullptr && side.generation_config->contains("eos_token_id")) {
    const json& e = (*side.generation_config)["eos_token_id"];
    const json list = e.is_array() ? e : json::array({e});
    for (const json& id : list) {
      if (!id.is_number_integer()) continue;
      const auto v = id.get<int32_t>();
      if (std::find(s.stop.begin(), s.stop.end(), v) == s.stop.end()) s.stop.push_back(v);
    }
  }
  return s;
}

json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '{}' for reading: check the path and its permissions", path.string());
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail("'{}' is not valid JSON ({}); the download may be truncated: fetch it again",
         path.string(), e.what());
  }
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const json& root, const std::string& source,
                                                  const HfSideFiles& side) {
  const Context c{source};
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    fail("{}: no 'model' object; this is not a Hugging Face tokenizer.json", source);
  }
  const json& model = root["model"];
  const std::string model_type = model.value("type", std::string("BPE"));
  if (model_type != "BPE") unsupported(c, "model type '" + model_type + "'", "only BPE is");
  check_bpe_options(c, model);

  HfBpeData d;
  parse_normalizer(c, root.value("normalizer", json()), d.normalizers);
  if (!parse_pre_tokenizer(c, root.value("pre_tokenizer", json()), d.pre_tokenizer)) {
    unsupported(c, "a pre_tokenizer without a ByteLevel step", "the vocabulary must be byte-level");
  }
  check_decoder(c, root.value("decoder", json()));
  const PieceIndex vocab = parse_vocab(c, model);
  const std::vector<AddedToken> added = parse_added_tokens(c, root, d.normalizers);
  fill_vocab(c, vocab, added, d);
  d.merges = parse_merges(c, model, vocab);
  d.ignore_merges = bool_field(model, "ignore_merges", false);
  d.special = special_ids(side, vocab, added);
  parse_post_processor(c, root.value("post_processor", json()), vocab, added, d.special.prefix);
  d.description = fmt::format("tokenizer.json byte-level BPE ({} tokens, {} merges)",
                              d.pieces.size(), d.merges.size());
  return std::make_unique<HfBpeTokenizer>(std::move(d));
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& tokenizer_json) {
  const json root = read_json_file(tokenizer_json);
  const auto dir = tokenizer_json.parent_path();
  std::error_code ec;
  json tokenizer_config;
  json generation_config;
  HfSideFiles side;
  if (std::filesystem::is_regular_file(dir / "tokenizer_config.json", ec)) {
    tokenizer_config = read_json_file(dir / "tokenizer_config.json");
    side.tokenizer_config = &tokenizer_config;
  }
  if (std::filesystem::is_regular_file(dir / "generation_config.json", ec)) {
    generation_config = read_json_file(dir / "generation_config.json");
    side.generation_config = &generation_config;
  }
  return load_hf_tokenizer_json(root, tokenizer_json.string(), side);
}

}  // namespace autoglm::tokenizer
