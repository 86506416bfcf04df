#include "engine/generation_defaults.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace autoglm::engine {
namespace fs = std::filesystem;
namespace {

fs::path config_path(const fs::path& model_path) {
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return model_path / "generation_config.json";
  if (model_path.extension() == ".safetensors")
    return model_path.parent_path() / "generation_config.json";
  return {};
}

}  // namespace

GenerationDefaults read_generation_defaults(const fs::path& model_path) {
  GenerationDefaults out;
  const fs::path path = config_path(model_path);
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec)) return out;
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail("{}: not a JSON object; fix or remove the file (it only sets sampling defaults)",
         path.string());
  }
  out.source = path.string();
  SamplingParams& s = out.sampling;
  auto take = [&](const char* key, auto& field) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (!it->is_number()) {
      fail("{}: '{}' must be a number, got {}; fix the file or remove the key", path.string(), key,
           it->dump());
    }
    field = it->template get<std::remove_reference_t<decltype(field)>>();
    out.summary += fmt::format("{}{} {}", out.summary.empty() ? "" : ", ", key, it->dump());
  };
  take("temperature", s.temperature);
  take("top_p", s.top_p);
  take("top_k", s.top_k);
  take("min_p", s.min_p);
  take("repetition_penalty", s.repetition_penalty);
  try {
    s.validate();
  } catch (const Error& e) {
    fail("{}: {}; fix the file or remove the key", path.string(), e.what());
  }
  return out;
}

}  // namespace autoglm::engine
