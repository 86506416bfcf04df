#include "formats/gguf_writer.h"

#include <bit>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace autoglm::formats {
namespace {

using nlohmann::json;

template <typename T>
void append(std::vector<char>& out, T value) {
  // resize + memcpy rather than insert(): g++ 12 -O3 warns falsely (stringop-overflow) on the
  // latter.
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void append_string(std::vector<char>& out, const std::string& s) {
  append<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// An integer JSON value within [lo, hi], or Error naming the key.
template <typename T>
T checked_int(const std::string& key, GgufType type, const json& v) {
  bool ok = false;
  T out{};
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    out = static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    ok =
        i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
        (i < 0 || static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max()));
    out = static_cast<T>(i);
  }
  if (!ok) {
    fail("GGUF metadata '{}': {} does not fit type {}", key, v.dump(), gguf_type_name(type));
  }
  return out;
}

void encode_scalar(std::vector<char>& out, const std::string& key, GgufType type, const json& v) {
  switch (type) {
    case GgufType::U8:
      return append(out, checked_int<uint8_t>(key, type, v));
    case GgufType::I8:
      return append(out, checked_int<int8_t>(key, type, v));
    case GgufType::U16:
      return append(out, checked_int<uint16_t>(key, type, v));
    case GgufType::I16:
      return append(out, checked_int<int16_t>(key, type, v));
    case GgufType::U32:
      return append(out, checked_int<uint32_t>(key, type, v));
    case GgufType::I32:
      return append(out, checked_int<int32_t>(key, type, v));
    case GgufType::U64:
      return append(out, checked_int<uint64_t>(key, type, v));
    case GgufType::I64:
      return append(out, checked_int<int64_t>(key, type, v));
    case GgufType::F32:
    case GgufType::F64:
      if (!v.is_number()) break;
      if (type == GgufType::F32) return append(out, v.get<float>());
      return append(out, v.get<double>());
    case GgufType::Bool:
      if (!v.is_boolean()) break;
      return append<uint8_t>(out, v.get<bool>() ? 1 : 0);
    case GgufType::String:
      if (!v.is_string()) break;
      return append_string(out, v.get_ref<const std::string&>());
    case GgufType::Array:
      fail("GGUF metadata '{}': use set_array for arrays", key);
  }
  fail("GGUF metadata '{}': {} is not a {}", key, v.dump(), gguf_type_name(type));
}

}  // namespace

GgufWriter::GgufWriter(std::filesystem::path path, uint32_t alignment)
    : TensorWriter(std::move(path), alignment) {
  if (alignment == 0 || !std::has_single_bit(alignment)) {
    fail("GGUF alignment must be a power of two, not {}", alignment);
  }
  if (alignment != kGgufDefaultAlignment) set_u32("general.alignment", alignment);
}

void GgufWriter::put(const std::string& key, std::vector<char> encoded) {
  check_not_started(fmt::format("set metadata '{}'", key));
  if (key.empty()) fail("GGUF metadata keys cannot be empty");
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(encoded);
      return;
    }
  }
  kv_.emplace_back(key, std::move(encoded));
}

void GgufWriter::set(const std::string& key, GgufType type, const json& value) {
  std::vector<char> out;
  append(out, static_cast<uint32_t>(type));
  encode_scalar(out, key, type, value);
  put(key, std::move(out));
}

void GgufWriter::set_array(const std::string& key, GgufType elem_type, const json& values) {
  if (!values.is_array()) fail("GGUF metadata '{}': expected a JSON array", key);
  if (elem_type == GgufType::Array)
    fail("GGUF metadata '{}': arrays of arrays are not supported", key);
  std::vector<char> out;
  append(out, static_cast<uint32_t>(GgufType::Array));
  append(out, static_cast<uint32_t>(elem_type));
  append<uint64_t>(out, values.size());
  for (const auto& v : values) encode_scalar(out, key, elem_type, v);
  put(key, std::move(out));
}

void GgufWriter::validate(const TensorSpec& spec) const {
  (void)ggml_type_from_dtype(spec.dtype);
  if (spec.shape.empty() || spec.shape.size() > kGgufMaxDims) {
    fail("writing '{}': tensor '{}' has {} dimensions; GGUF holds 1 to {}", path().string(),
         spec.name, spec.shape.size(), kGgufMaxDims);
  }
  const DTypeInfo& info = dtype_info(spec.dtype);
  if (spec.shape.back() % info.block_elems != 0) {
    fail(
        "writing '{}': tensor '{}' has rows of {} elements, which {} cannot hold (it packs "
        "blocks of {}); keep this tensor in f16 or f32",
        path().string(), spec.name, spec.shape.back(), info.name, info.block_elems);
  }
}

void GgufWriter::write_header() {
  std::vector<char> out;
  append(out, kGgufMagic);
  append<uint32_t>(out, 3);
  append<uint64_t>(out, entries_.size());
  append<uint64_t>(out, kv_.size());
  for (const auto& [key, value] : kv_) {
    append_string(out, key);
    out.insert(out.end(), value.begin(), value.end());
  }
  for (const Entry& e : entries_) {
    append_string(out, e.spec.name);
    append<uint32_t>(out, static_cast<uint32_t>(e.spec.shape.size()));
    for (auto it = e.spec.shape.rbegin(); it != e.spec.shape.rend(); ++it) {
      append<uint64_t>(out, static_cast<uint64_t>(*it));  // ne[0] is the innermost dimension
    }
    append<uint32_t>(out, ggml_type_from_dtype(e.spec.dtype));
    append<uint64_t>(out, e.offset);
  }
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, 0);
  file_.write(out.data(), out.size());
}

void write_gguf(const std::filesystem::path& path, const std::vector<GgufEntry>& metadata,
                const std::vector<TensorData>& tensors, uint32_t alignment) {
  GgufWriter writer(path, alignment);
  for (const auto& m : metadata) {
    if (m.type == GgufType::Array) {
      writer.set_array(m.key, m.elem_type, m.value);
    } else {
      writer.set(m.key, m.type, m.value);
    }
  }
  for (const auto& t : tensors) writer.declare({t.name, t.dtype, t.shape});
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (const int64_t d : t.shape) numel *= d;
    writer.write_tensor(t.name, t.data, tensor_bytes(t.dtype, numel));
  }
  writer.finish();
}

}  // namespace autoglm::formats
