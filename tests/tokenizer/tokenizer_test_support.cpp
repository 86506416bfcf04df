#include "tokenizer_test_support.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<VocabCase> read_vocab_cases(const std::filesystem::path& base) {
  const std::string inp = read_file(base.string() + ".inp");
  const std::string out = read_file(base.string() + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> ids;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream numbers(line);
    std::vector<int32_t> row;
    for (int32_t id = 0; numbers >> id;) row.push_back(id);
    ids.push_back(std::move(row));
  }
  if (texts.size() != ids.size()) {
    throw std::runtime_error(
        fmt::format("{}: {} strings but {} id lines", base.string(), texts.size(), ids.size()));
  }
  std::vector<VocabCase> cases;
  for (size_t i = 0; i < texts.size(); ++i) cases.push_back({texts[i], ids[i]});
  return cases;
}

std::filesystem::path llama_cpp_vectors_dir() {
  return fixtures_dir() / "tokenizers" / "llama.cpp";
}

const tokenizer::Tokenizer& glm4_tokenizer() {
  static const std::unique_ptr<tokenizer::Tokenizer> tok = tokenizer::load_glm4_tiktoken(
      fixtures_dir() / "tokenizers" / "glm4-9b-chat" / "tokenizer.model");
  return *tok;
}

std::string ids_to_string(const std::vector<int32_t>& ids) {
  return fmt::format("{}", ids);
}

}  // namespace autoglm::testing
