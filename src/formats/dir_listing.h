// What a model directory holds, for choosing the weight file and for error messages that list
// what IS there when nothing usable is.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace autoglm::formats {

struct DirListing {
  std::filesystem::path dir;
  bool has_model_safetensors = false;                    // model.safetensors
  bool has_index = false;                                // model.safetensors.index.json
  std::vector<std::filesystem::path> safetensors_files;  // every *.safetensors, sorted
  std::vector<std::filesystem::path> gguf_files;         // every *.gguf, sorted
  std::vector<std::string> entries;  // every name, sorted (directories end in /)

  bool has_safetensors() const {
    return has_model_safetensors || has_index || !safetensors_files.empty();
  }
  // "config.json, tokenizer.json, weights/" (at most 20 names, then "... and N more"), or
  // "nothing (the directory is empty)".
  std::string listing() const;
};

// Throws Error naming the directory when it cannot be read.
DirListing list_weight_dir(const std::filesystem::path& dir);

}  // namespace autoglm::formats
