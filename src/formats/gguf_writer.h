// Writes GGUF v3 files that llama.cpp reads: every metadata entry carries its GGUF value type
// explicitly (llama.cpp checks types: `<arch>.block_count` must be u32, `tokenizer.ggml.tokens` an
// array of strings, `general.alignment` u32, ...), tensors are declared first and streamed after,
// each tensor starts on the alignment (32 unless changed), ne[] is written innermost first.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "formats/gguf_types.h"
#include "formats/tensor_writer.h"

namespace autoglm::formats {

class GgufWriter : public TensorWriter {
 public:
  // `alignment` must be a power of two; when not 32 it is recorded as `general.alignment` (u32).
  explicit GgufWriter(std::filesystem::path path, uint32_t alignment = kGgufDefaultAlignment);

  // Sets (or replaces) a scalar entry; `value` must fit `type` (e.g. a JSON integer in [0, 2^32)
  // for U32, a string for String), otherwise Error naming the key.
  void set(const std::string& key, GgufType type, const nlohmann::json& value);
  // Sets an array entry whose elements all have type `elem_type` (not Array).
  void set_array(const std::string& key, GgufType elem_type, const nlohmann::json& values);

  void set_u32(const std::string& key, uint32_t v) { set(key, GgufType::U32, v); }
  void set_i32(const std::string& key, int32_t v) { set(key, GgufType::I32, v); }
  void set_u64(const std::string& key, uint64_t v) { set(key, GgufType::U64, v); }
  void set_f32(const std::string& key, float v) { set(key, GgufType::F32, v); }
  void set_bool(const std::string& key, bool v) { set(key, GgufType::Bool, v); }
  void set_string(const std::string& key, const std::string& v) { set(key, GgufType::String, v); }
  void set_string_array(const std::string& key, const std::vector<std::string>& v) {
    set_array(key, GgufType::String, v);
  }

 private:
  void validate(const TensorSpec& spec) const override;
  void write_header() override;
  void put(const std::string& key, std::vector<char> encoded);

  // Insertion order is kept (llama.cpp writes general.architecture first; readers do not care).
  std::vector<std::pair<std::string, std::vector<char>>> kv_;  // key -> type + value bytes
};

// One metadata entry for write_gguf(): a scalar (elem_type unused) or an array.
struct GgufEntry {
  std::string key;
  GgufType type = GgufType::U32;
  nlohmann::json value;
  GgufType elem_type = GgufType::U32;  // for type == Array
};

void write_gguf(const std::filesystem::path& path, const std::vector<GgufEntry>& metadata,
                const std::vector<TensorData>& tensors, uint32_t alignment = kGgufDefaultAlignment);

}  // namespace autoglm::formats
