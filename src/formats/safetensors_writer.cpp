#include "formats/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include <cstdint>

#include "core/error.h"

namespace autoglm::formats {

std::string_view safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::F64:
      return "F64";
    case DType::I8:
      return "I8";
    case DType::U8:
      return "U8";
    case DType::I16:
      return "I16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::BOOL:
      return "BOOL";
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q6_K:
      break;
  }
  fail("safetensors cannot hold {} tensors (a GGUF block type); write a .gguf file instead",
       dtype_name(t));
}

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path,
                                     std::map<std::string, std::string> metadata)
    : TensorWriter(std::move(path), 1), metadata_(std::move(metadata)) {}

void SafetensorsWriter::validate(const TensorSpec& spec) const {
  if (spec.name == "__metadata__") {
    fail("writing '{}': '__metadata__' is reserved and cannot name a tensor", path().string());
  }
  (void)safetensors_dtype_name(spec.dtype);
}

void SafetensorsWriter::write_header() {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const Entry& e : entries_) {
    header[e.spec.name] = {{"dtype", safetensors_dtype_name(e.spec.dtype)},
                           {"shape", e.spec.shape},
                           {"data_offsets", {e.offset, e.offset + e.nbytes}}};
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail(
        "writing '{}': the header cannot be encoded as JSON ({}); tensor names and metadata "
        "must be valid UTF-8",
        path().string(), e.what());
  }
  text.resize((text.size() + 7) / 8 * 8, ' ');
  const uint64_t len = text.size();
  file_.write(&len, sizeof len);
  file_.write(text.data(), text.size());
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter writer(path, metadata);
  for (const auto& t : tensors) writer.declare({t.name, t.dtype, t.shape});
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t numel = 1;
    for (const int64_t d : tensors[i].shape) numel *= d;
    writer.write_tensor(tensors[i].name, tensors[i].data, tensor_bytes(tensors[i].dtype, numel));
  }
  writer.finish();
}

}  // namespace autoglm::formats
