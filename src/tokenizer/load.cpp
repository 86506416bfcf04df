#include <fstream>

#include "core/error.h"
#include "formats/tensor_store.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {
namespace {

std::string first_bytes(const std::filesystem::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    // tokenizer.json first: where both exist (Llama 2, some GLM repositories) tokenizer.model may
    // be a SentencePiece protobuf, which we do not read.
    const auto json = path / "tokenizer.json";
    if (std::filesystem::is_regular_file(json, ec)) return load_hf_tokenizer(json);
    const auto model = path / "tokenizer.model";
    if (std::filesystem::is_regular_file(model, ec)) return load_tokenizer(model);
    fail(
        "no tokenizer found in '{}': expected tokenizer.json (Hugging Face) or tokenizer.model "
        "(tiktoken format, glm-4-9b-chat); download it with the weights",
        path.string());
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail("tokenizer path '{}' does not exist or is not a file", path.string());
  }
  const std::string head = first_bytes(path, 64);
  if (head.starts_with("GGUF")) {
    const formats::TensorStore store = formats::open_gguf(path);
    return load_gguf_tokenizer(store.metadata(), path.string());
  }
  // tokenizer.json is a JSON object; nothing else we read starts with '{'.
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && head[first] == '{') return load_hf_tokenizer(path);
  // A tiktoken file is text: base64, a space, a number. SentencePiece's is a protobuf.
  const size_t space = head.find(' ');
  if (space != std::string::npos && head.find('\n') > space) return load_glm4_tiktoken(path);
  fail(
      "'{}' is neither a GGUF file, a tokenizer.json nor a tiktoken tokenizer.model; SentencePiece "
      "protobuf models "
      "are not supported: use the model's GGUF file instead",
      path.string());
}

}  // namespace autoglm::tokenizer
