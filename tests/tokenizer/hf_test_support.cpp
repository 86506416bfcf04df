#include "hf_test_support.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "support/fixtures.h"

namespace autoglm::testing {

std::filesystem::path js_dir() {
  // This file is tests/tokenizer/hf_test_support.cpp; CMake compiles it by absolute path.
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "js";
}

std::filesystem::path npm_tokenizer_json(const std::string& name) {
  const auto path =
      js_dir() / "node_modules" / "@lenml" / ("tokenizer-" + name) / "models" / "tokenizer.json";
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error(fmt::format(
        "{} is missing: the npm test packages are not installed; run `npm ci --prefix {}` "
        "(scripts/setup.sh does)",
        path.string(), js_dir().string()));
  }
  return path;
}

const tokenizer::Tokenizer& qwen3_tokenizer() {
  static const auto tok = tokenizer::load_tokenizer(npm_tokenizer_json("qwen3"));
  return *tok;
}

const tokenizer::Tokenizer& llama3_tokenizer() {
  static const auto tok = tokenizer::load_tokenizer(npm_tokenizer_json("llama3"));
  return *tok;
}

const std::vector<std::string>& js_corpus() {
  static const std::vector<std::string> lines = [] {
    npm_tokenizer_json("qwen3");  // the script imports the packages: say so if they are absent
    const auto file = temp_dir("hf-corpus") / "corpus.jsonl";
    const std::string command =
        fmt::format("node '{}' --write-corpus '{}'", (js_dir() / "tokenizer_corpus.mjs").string(),
                    file.string());
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("`" + command +
                               "` failed: is Node.js installed (scripts/setup.sh)?");
    }
    std::ifstream in(file, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      out.push_back(nlohmann::json::parse(line).get<std::string>());
    }
    return out;
  }();
  return lines;
}

}  // namespace autoglm::testing
