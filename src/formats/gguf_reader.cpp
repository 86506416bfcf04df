// GGUF v2/v3 (ggml-org/ggml docs/gguf.md): "GGUF", u32 version, u64 tensor count, u64 kv count,
// kv pairs (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims]
// innermost first, u32 ggml type, u64 offset), padding to `general.alignment`, tensor data.
// Strings are u64 length + bytes (no terminator). Every count is checked against the bytes left
// before anything is allocated, so a flipped bit cannot ask for 2^60 bytes.
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <set>
#include <utility>

#include "core/error.h"
#include "formats/byte_reader.h"
#include "formats/gguf_types.h"
#include "formats/tensor_store.h"

namespace autoglm::formats {
namespace {

using nlohmann::json;

// The smallest encodings, for bounding counts by the bytes left: a kv pair is at least an empty
// key (8) + type (4) + a 1-byte value; a tensor info at least an empty name (8) + n_dims (4) +
// one ne (8) + type (4) + offset (8).
constexpr size_t kMinKvBytes = 13;
constexpr size_t kMinTensorInfoBytes = 32;
constexpr uint64_t kMaxAlignment = 1ull << 30;

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // innermost first, as ggml stores it
  uint32_t type = 0;
  uint64_t offset = 0;  // relative to the start of the data section
  size_t info_pos = 0;  // byte where the info starts, for messages
};

class GgufParser {
 public:
  GgufParser(const MappedFile& file, std::string name)
      : data_(file.data()), r_(file.data(), file.size(), std::move(name)) {}

  TensorStore parse(MappedFile file);

 private:
  [[noreturn]] void corrupt(size_t at, const std::string& why) const {
    fail("'{}' is not a valid GGUF file: {} (at byte {}); {}", r_.file(), why, at,
         mangled_as_text(at) ? "the bytes before it hold U+FFFD replacement characters (EF BF BD): "
                               "the file was saved as text somewhere; download it again in binary "
                               "form (git lfs, huggingface-cli, curl -L)"
                             : "re-download or re-convert it");
  }
  // A binary file that went through a lossy UTF-8 decode (a "raw" text download, an editor) has
  // its invalid bytes replaced by EF BF BD; look for that just before the point of failure.
  bool mangled_as_text(size_t at) const {
    constexpr size_t kWindow = 64;
    const size_t begin = at > kWindow ? at - kWindow : 0;
    const size_t end = std::min(at + 8, r_.size());
    const std::string_view bytes(reinterpret_cast<const char*>(data_) + begin, end - begin);
    return bytes.find("\xef\xbf\xbd") != std::string_view::npos;
  }
  void read_header();
  std::string read_string(std::string_view what);
  json read_value(GgufType type, const std::string& key);
  json read_array(const std::string& key);
  uint32_t read_alignment() const;
  TensorInfo read_tensor_info(uint64_t index);
  TensorView make_view(const TensorInfo& info, const std::byte* data, size_t data_size) const;

  const std::byte* data_;
  ByteReader r_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  json metadata_ = json::object();
};

void GgufParser::read_header() {
  if (r_.size() < 4) {
    fail("'{}' is not a GGUF file: it has only {} bytes (an interrupted download?)", r_.file(),
         r_.size());
  }
  if (r_.read<uint32_t>("the magic") != kGgufMagic) {
    fail("'{}' is not a GGUF file: it does not start with the bytes 'GGUF'", r_.file());
  }
  const auto version = r_.read<uint32_t>("the version");
  if (version == 1) {
    fail(
        "'{}' is GGUF version 1 (32-bit counts), which llama.cpp dropped in 2023; re-convert the "
        "model with a current llama.cpp (convert_hf_to_gguf.py)",
        r_.file());
  }
  const uint32_t swapped = __builtin_bswap32(version);
  if ((version & 0xffffu) == 0 && swapped >= 1 && swapped <= 3) {
    fail(
        "'{}' is a big-endian GGUF file (version {} byte-swapped); autoglm reads little-endian "
        "GGUF only: convert it again without --bigendian",
        r_.file(), swapped);
  }
  if (version != 2 && version != 3) {
    fail(
        "'{}' has GGUF version {}; autoglm reads versions 2 and 3 (a newer llama.cpp may have "
        "written it; please report it)",
        r_.file(), version);
  }
  n_tensors_ = r_.read<uint64_t>("the tensor count");
  n_kv_ = r_.read<uint64_t>("the metadata count");
  const size_t left = r_.remaining();
  if (n_kv_ > left / kMinKvBytes || n_tensors_ > left / kMinTensorInfoBytes ||
      n_kv_ * kMinKvBytes + n_tensors_ * kMinTensorInfoBytes > left) {
    corrupt(8, fmt::format("it claims {} tensors and {} metadata entries, more than its {} bytes "
                           "can hold",
                           n_tensors_, n_kv_, r_.size()));
  }
}

std::string GgufParser::read_string(std::string_view what) {
  const size_t at = r_.pos();
  const auto len = r_.read<uint64_t>(what);
  if (len > r_.remaining()) {
    corrupt(at, fmt::format("{} claims {} bytes but only {} remain", what, len, r_.remaining()));
  }
  return std::string(r_.read_bytes(static_cast<size_t>(len), what));
}

json GgufParser::read_value(GgufType type, const std::string& key) {
  const auto what = fmt::format("the value of '{}'", key);
  switch (type) {
    case GgufType::U8:
      return r_.read<uint8_t>(what);
    case GgufType::I8:
      return r_.read<int8_t>(what);
    case GgufType::U16:
      return r_.read<uint16_t>(what);
    case GgufType::I16:
      return r_.read<int16_t>(what);
    case GgufType::U32:
      return r_.read<uint32_t>(what);
    case GgufType::I32:
      return r_.read<int32_t>(what);
    case GgufType::F32:
      return r_.read<float>(what);
    case GgufType::Bool:
      return r_.read<uint8_t>(what) != 0;
    case GgufType::String:
      return read_string(what);
    case GgufType::U64:
      return r_.read<uint64_t>(what);
    case GgufType::I64:
      return r_.read<int64_t>(what);
    case GgufType::F64:
      return r_.read<double>(what);
    case GgufType::Array:
      return read_array(key);
  }
  corrupt(r_.pos(), fmt::format("metadata '{}' has an invalid type", key));
}

json GgufParser::read_array(const std::string& key) {
  const size_t at = r_.pos();
  const auto elem = r_.read<uint32_t>("an array element type");
  // Arrays of arrays are not produced by llama.cpp's writers and its reader rejects them too.
  if (!is_valid_gguf_type(elem) || elem == static_cast<uint32_t>(GgufType::Array)) {
    corrupt(at, fmt::format("metadata '{}' is an array of invalid element type {}", key, elem));
  }
  const auto type = static_cast<GgufType>(elem);
  const auto count = r_.read<uint64_t>("an array length");
  const size_t min_size = type == GgufType::String ? 8 : gguf_scalar_size(type);
  if (count > r_.remaining() / min_size) {
    corrupt(at, fmt::format("metadata '{}' claims {} {} elements, more than the {} bytes left", key,
                            count, gguf_type_name(type), r_.remaining()));
  }
  json out = json::array();
  out.get_ref<json::array_t&>().reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) out.push_back(read_value(type, key));
  return out;
}

uint32_t GgufParser::read_alignment() const {
  const auto it = metadata_.find("general.alignment");
  if (it == metadata_.end()) return kGgufDefaultAlignment;
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 ||
      static_cast<uint64_t>(it->get<int64_t>()) > kMaxAlignment ||
      !std::has_single_bit(static_cast<uint64_t>(it->get<int64_t>()))) {
    fail("'{}' is not a valid GGUF file: general.alignment is {}, not a power of two up to 2^30",
         r_.file(), it->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  return static_cast<uint32_t>(it->get<int64_t>());
}

TensorInfo GgufParser::read_tensor_info(uint64_t index) {
  TensorInfo info;
  info.info_pos = r_.pos();
  info.name = read_string(fmt::format("the name of tensor #{}", index));
  const auto n_dims = r_.read<uint32_t>("a tensor's dimension count");
  if (n_dims == 0 || n_dims > kGgufMaxDims) {
    corrupt(info.info_pos, fmt::format("tensor '{}' has {} dimensions (ggml allows 1 to {})",
                                       info.name, n_dims, kGgufMaxDims));
  }
  int64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const auto ne = r_.read<uint64_t>("a tensor dimension");
    if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, static_cast<int64_t>(ne), &numel)) {
      corrupt(info.info_pos, fmt::format("tensor '{}' has dimensions whose product overflows "
                                         "64 bits",
                                         info.name));
    }
    info.ne.push_back(static_cast<int64_t>(ne));
  }
  info.type = r_.read<uint32_t>("a tensor type");
  info.offset = r_.read<uint64_t>("a tensor offset");
  return info;
}

TensorView GgufParser::make_view(const TensorInfo& info, const std::byte* data,
                                 size_t data_size) const {
  const auto dtype = dtype_from_ggml(info.type);
  if (!dtype) {
    fail(
        "'{}': tensor '{}' is stored as {}, which autoglm does not run yet (supported: f32, f16, "
        "bf16, q8_0, q4_0, q6_K); use a q4_0, q8_0 or f16 GGUF of this model, or make one with "
        "`autoglm quantize`",
        r_.file(), info.name, ggml_type_name(info.type));
  }
  const DTypeInfo& dt = dtype_info(*dtype);
  const int64_t ne0 = info.ne.front();
  if (ne0 % dt.block_elems != 0) {
    corrupt(info.info_pos, fmt::format("tensor '{}' has rows of {} elements, not a multiple of the "
                                       "{}-element {} block",
                                       info.name, ne0, dt.block_elems, dt.name));
  }
  int64_t rows = 1;
  for (size_t d = 1; d < info.ne.size(); ++d) rows *= info.ne[d];  // no overflow: checked above
  uint64_t nbytes = 0;
  const uint64_t row =
      static_cast<uint64_t>(ne0 / dt.block_elems) * static_cast<uint64_t>(dt.block_bytes);
  if (__builtin_mul_overflow(row, static_cast<uint64_t>(rows), &nbytes) ||
      info.offset > data_size || nbytes > data_size - info.offset) {
    fail(
        "'{}' is truncated or corrupt: tensor '{}' ({} bytes at data offset {}) runs past the end "
        "of the file's {} data bytes; re-download the file",
        r_.file(), info.name, nbytes, info.offset, data_size);
  }
  TensorView view;
  view.name = info.name;
  view.dtype = *dtype;
  view.shape.assign(info.ne.rbegin(), info.ne.rend());  // PyTorch order: outermost first
  view.data = data + info.offset;
  view.nbytes = static_cast<size_t>(nbytes);
  return view;
}

TensorStore GgufParser::parse(MappedFile file) {
  read_header();
  for (uint64_t i = 0; i < n_kv_; ++i) {
    const size_t at = r_.pos();
    std::string key = read_string(fmt::format("the key of metadata entry #{}", i));
    const auto type = r_.read<uint32_t>("a metadata type");
    if (!is_valid_gguf_type(type)) {
      corrupt(at, fmt::format("metadata '{}' has invalid type {}", key, type));
    }
    json value = read_value(static_cast<GgufType>(type), key);
    if (metadata_.contains(key)) corrupt(at, fmt::format("metadata key '{}' appears twice", key));
    metadata_[std::move(key)] = std::move(value);
  }
  const uint32_t alignment = read_alignment();
  std::vector<TensorInfo> infos;
  infos.reserve(static_cast<size_t>(n_tensors_));  // bounded by the file size in read_header
  for (uint64_t i = 0; i < n_tensors_; ++i) infos.push_back(read_tensor_info(i));

  const size_t header_end = r_.pos();
  const size_t data_start = (header_end + alignment - 1) / alignment * alignment;
  if (data_start > r_.size() && !infos.empty()) {
    fail(
        "'{}' is truncated: the tensor data should start at byte {} but the file has {} bytes; "
        "re-download the file",
        r_.file(), data_start, r_.size());
  }
  const size_t data_size = data_start > r_.size() ? 0 : r_.size() - data_start;
  TensorStore store;
  store.set_source(FileFormat::Gguf, r_.file());
  for (const auto& info : infos) {
    if (info.offset % alignment != 0) {
      corrupt(info.info_pos, fmt::format("tensor '{}' starts at data offset {}, not a multiple of "
                                         "the alignment {}",
                                         info.name, info.offset, alignment));
    }
    store.add_tensor(make_view(info, file.data() + std::min(data_start, r_.size()), data_size));
  }
  store.mutable_metadata() = std::move(metadata_);
  store.add_file(std::move(file));
  return store;
}

}  // namespace

TensorStore open_gguf(const std::filesystem::path& path) {
  MappedFile file = MappedFile::open(path);
  GgufParser parser(file, path.string());
  return parser.parse(std::move(file));
}

}  // namespace autoglm::formats
