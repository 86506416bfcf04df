#include "engine/model_bundle.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/log.h"

namespace autoglm::engine {
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_if_present(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path.string(), e.what());
  }
}

std::string read_text_if_present(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// What chat_format_for_model needs, from a GGUF's metadata or an HF directory's JSON files.
void describe_for_chat(const fs::path& path, const models::Model& model, nlohmann::json& config,
                       nlohmann::json& tokenizer_config) {
  const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
  if (model.store().format() == formats::FileFormat::Gguf) {
    config = {{"model_type", model.spec().arch}, {"vocab_size", model.spec().vocab_size}};
    const auto& meta = model.store().metadata();
    tokenizer_config = nlohmann::json::object();
    if (meta.contains("tokenizer.chat_template")) {
      tokenizer_config["chat_template"] = meta["tokenizer.chat_template"];
    }
    return;
  }
  config = read_json_if_present(dir / "config.json");
  tokenizer_config = read_json_if_present(dir / "tokenizer_config.json");
  if (tokenizer_config.is_null()) tokenizer_config = nlohmann::json::object();
  if (!tokenizer_config.contains("chat_template")) {
    const std::string jinja = read_text_if_present(dir / "chat_template.jinja");
    if (!jinja.empty()) tokenizer_config["chat_template"] = jinja;
  }
}

}  // namespace

std::vector<int32_t> ModelBundle::stop_ids() const {
  std::vector<int32_t> ids = model->spec().eos_ids;
  for (int32_t id : tokenizer->special().stop) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  if (tokenizer->special().eos &&
      std::find(ids.begin(), ids.end(), *tokenizer->special().eos) == ids.end()) {
    ids.push_back(*tokenizer->special().eos);
  }
  return ids;
}

std::vector<int32_t> ModelBundle::encode_chat(const std::vector<tokenizer::ChatMessage>& messages,
                                              const tokenizer::ChatOptions& options) const {
  if (chat) return tokenizer->encode(chat->render(messages, options), true);
  if (messages.empty()) fail("no messages to encode");
  return encode_completion(messages.back().content);
}

std::vector<int32_t> ModelBundle::encode_completion(const std::string& text) const {
  return tokenizer->encode_with_prefix(text, false);
}

ModelBundle load_model_bundle(const fs::path& path, const models::LoadOptions& options,
                              ThreadPool& pool, const fs::path& tokenizer_path) {
  ModelBundle b;
  b.model = models::Model::load(path, options, pool);
  b.tokenizer = tokenizer::load_tokenizer(tokenizer_path.empty() ? path : tokenizer_path);
  if (b.tokenizer->n_vocab() > b.model->spec().vocab_size) {
    fail(
        "{}: the tokenizer has {} tokens but the model only {} embedding rows; the tokenizer "
        "does not belong to these weights",
        path.string(), b.tokenizer->n_vocab(), b.model->spec().vocab_size);
  }
  nlohmann::json config, tokenizer_config;
  describe_for_chat(path, *b.model, config, tokenizer_config);
  b.chat = tokenizer::chat_format_for_model(config, &tokenizer_config, &b.chat_why);
  log::info("tokenizer: {}; chat: {}", b.tokenizer->description(), b.chat_why);
  return b;
}

}  // namespace autoglm::engine
