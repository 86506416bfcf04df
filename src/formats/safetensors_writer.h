// Writes a `.safetensors` file (huggingface/safetensors "Format"): u64 header length, JSON header,
// then the tensors back to back in declaration order (the format forbids holes). The header is
// padded with spaces to a multiple of 8 bytes, as the reference implementation does, so the data
// section starts 8-byte aligned.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/tensor_writer.h"

namespace autoglm::formats {

class SafetensorsWriter : public TensorWriter {
 public:
  // `metadata` becomes the header's "__metadata__" (string values only, by the format's rule).
  explicit SafetensorsWriter(std::filesystem::path path,
                             std::map<std::string, std::string> metadata = {});

 private:
  void validate(const TensorSpec& spec) const override;
  void write_header() override;

  std::map<std::string, std::string> metadata_;
};

// One call: declares and writes `tensors` in order.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// "F32", "BF16", ... for the plain dtypes; throws Error for the quantized ones.
std::string_view safetensors_dtype_name(DType t);

}  // namespace autoglm::formats
