// Named, validated tensors from weight files (safetensors, sharded safetensors, GGUF). Bytes in,
// checked views out: every offset, size, shape and dtype is validated when the file is opened, so
// a truncated or corrupt file is one clear Error (which file, which tensor, what was expected,
// what was found) and never a crash. Files are memory-mapped; views point into the mapping.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace autoglm::formats {

enum class FileFormat { Safetensors, Gguf };

class TensorStore {
 public:
  TensorStore() = default;
  TensorStore(TensorStore&&) noexcept = default;
  TensorStore& operator=(TensorStore&&) noexcept = default;

  FileFormat format() const { return format_; }
  // The file or directory the tensors came from, for messages.
  const std::string& source() const { return source_; }

  bool contains(std::string_view name) const;
  const TensorView* find(std::string_view name) const;
  // Throws Error "tensor 'x' not found in <source> (N tensors); closest names: a, b, c".
  const TensorView& get(std::string_view name) const;
  // Also checks the shape (PyTorch order); throws Error with expected and found shapes.
  const TensorView& get(std::string_view name, std::initializer_list<int64_t> shape) const;
  std::vector<std::string> names() const;  // sorted
  size_t size() const { return tensors_.size(); }

  // GGUF: every key/value of the header (arrays as JSON arrays, all integers as JSON integers).
  // Safetensors: the `__metadata__` object of the (first) file, or an empty object.
  const nlohmann::json& metadata() const { return metadata_; }

  // Used by the readers.
  void set_source(FileFormat format, std::string source);
  void add_file(MappedFile file);
  void add_tensor(TensorView view);  // throws Error on a duplicate name
  nlohmann::json& mutable_metadata() { return metadata_; }

 private:
  FileFormat format_ = FileFormat::Safetensors;
  std::string source_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView, std::less<>> tensors_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

// A `.safetensors` file, a directory holding `model.safetensors` or
// `model.safetensors.index.json` (+ shards), or an index file itself.
TensorStore open_safetensors(const std::filesystem::path& path);
// A GGUF v2 or v3 file.
TensorStore open_gguf(const std::filesystem::path& path);
// Chooses by content: a directory or `.safetensors`/`.json` -> safetensors, GGUF magic -> GGUF.
TensorStore open_weights(const std::filesystem::path& path);

}  // namespace autoglm::formats
