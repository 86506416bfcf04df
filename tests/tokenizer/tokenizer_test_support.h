// Shared helpers of the tokenizer tests: llama.cpp's `.inp`/`.out` vectors and tokenizers loaded
// once per test binary (the GLM-4 vocabulary takes a moment to index).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace autoglm::testing {

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads `<base>.inp` (strings separated by "\n__ggml_vocab_test__\n") and `<base>.out` (one line of
// space-separated ids per string), exactly as llama.cpp's tests/test-tokenizer-0.cpp does.
std::vector<VocabCase> read_vocab_cases(const std::filesystem::path& base);

std::filesystem::path llama_cpp_vectors_dir();
const tokenizer::Tokenizer& glm4_tokenizer();  // fixtures/tokenizers/glm4-9b-chat/tokenizer.model

std::string ids_to_string(const std::vector<int32_t>& ids);

}  // namespace autoglm::testing
