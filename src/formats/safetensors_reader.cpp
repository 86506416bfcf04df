// Safetensors: [u64 LE header length N][N bytes of JSON][data]. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the data region, plus
// an optional "__metadata__" object of strings (huggingface/safetensors docs, "Format").
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "core/error.h"
#include "formats/dir_listing.h"
#include "formats/tensor_store.h"

namespace autoglm::formats {
namespace {

using nlohmann::json;

// The header of a real model is a few hundred kB (one entry per tensor); 100 MB leaves room for
// any plausible model and stops a flipped length from making us parse gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeName {
  std::string_view name;
  DType dtype;
};
constexpr std::array<DTypeName, 10> kDTypes = {{{"F32", DType::F32},
                                                {"F16", DType::F16},
                                                {"BF16", DType::BF16},
                                                {"F64", DType::F64},
                                                {"I8", DType::I8},
                                                {"U8", DType::U8},
                                                {"I16", DType::I16},
                                                {"I32", DType::I32},
                                                {"I64", DType::I64},
                                                {"BOOL", DType::BOOL}}};

std::optional<DType> parse_st_dtype(std::string_view name) {
  for (const auto& d : kDTypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

// A non-negative JSON integer that fits in int64, or nullopt.
std::optional<int64_t> as_count(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

struct FileContext {
  std::string file;
  [[noreturn]] void bad_tensor(const std::string& name, const std::string& why) const {
    fail("'{}' is corrupt: tensor '{}' {}; re-download or re-convert the file", file, name, why);
  }
};

TensorView parse_entry(const FileContext& ctx, const std::string& name, const json& entry,
                       const std::byte* data, uint64_t data_size) {
  if (!entry.is_object()) ctx.bad_tensor(name, "is not a JSON object in the header");
  const auto dt = entry.find("dtype");
  const auto sh = entry.find("shape");
  const auto off = entry.find("data_offsets");
  if (dt == entry.end() || !dt->is_string()) ctx.bad_tensor(name, "has no string 'dtype'");
  if (sh == entry.end() || !sh->is_array()) ctx.bad_tensor(name, "has no 'shape' array");
  if (off == entry.end() || !off->is_array() || off->size() != 2) {
    ctx.bad_tensor(name, "has no 'data_offsets' pair [begin, end]");
  }
  const auto& dtype_name = dt->get_ref<const std::string&>();
  const auto dtype = parse_st_dtype(dtype_name);
  if (!dtype) {
    fail(
        "'{}': tensor '{}' has dtype '{}', which autoglm does not read (supported: F32, F16, "
        "BF16, F64, I8, U8, I16, I32, I64, BOOL); convert the checkpoint to bf16 or f16 first",
        ctx.file, name, dtype_name);
  }
  TensorView view;
  view.name = name;
  view.dtype = *dtype;
  int64_t numel = 1;
  for (const auto& d : *sh) {
    const auto n = as_count(d);
    if (!n)
      ctx.bad_tensor(
          name, fmt::format("has a shape entry {} that is not a non-negative integer", d.dump()));
    if (__builtin_mul_overflow(numel, *n, &numel))
      ctx.bad_tensor(name, "has a shape whose product overflows 64 bits");
    view.shape.push_back(*n);
  }
  const auto begin = as_count((*off)[0]);
  const auto end = as_count((*off)[1]);
  if (!begin || !end || *begin > *end)
    ctx.bad_tensor(name, "has data_offsets that are not 0 <= begin <= end");
  if (static_cast<uint64_t>(*end) > data_size) {
    ctx.bad_tensor(name, fmt::format("ends at data byte {} but the data region holds only {} bytes "
                                     "(truncated download?)",
                                     *end, data_size));
  }
  const auto elem = static_cast<uint64_t>(dtype_info(*dtype).block_bytes);
  uint64_t expected = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(numel), elem, &expected) ||
      expected != static_cast<uint64_t>(*end - *begin)) {
    ctx.bad_tensor(
        name,
        fmt::format("has shape {} of {} ({} bytes) but data_offsets [{}, {}] span {} bytes",
                    shape_string(view.shape), dtype_name, expected, *begin, *end, *end - *begin));
  }
  view.data = data + *begin;
  view.nbytes = static_cast<size_t>(expected);
  return view;
}

// Reads one file's header and adds its tensors; returns their names.
std::vector<std::string> read_file(TensorStore& store, const std::filesystem::path& path,
                                   json* metadata) {
  MappedFile file = MappedFile::open(path);
  const FileContext ctx{path.string()};
  const size_t size = file.size();
  if (size < 8) {
    fail(
        "'{}' is not a safetensors file: it has {} bytes, fewer than the 8-byte header length "
        "(truncated download?)",
        ctx.file, size);
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);
  if (header_len > size - 8) {
    fail(
        "'{}' is truncated or not a safetensors file: its header claims {} bytes but only {} "
        "follow the length field; re-download the file",
        ctx.file, header_len, size - 8);
  }
  if (header_len > kMaxHeaderBytes) {
    fail("'{}' is corrupt: its header claims {} bytes (more than the {} MB any real model needs)",
         ctx.file, header_len, kMaxHeaderBytes >> 20);
  }
  const char* text = reinterpret_cast<const char*>(file.data()) + 8;
  json header;
  // nlohmann keeps the last of duplicate keys silently; the callback sees every top-level key.
  std::set<std::string> seen;
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& value) {
    if (event == json::parse_event_t::key && depth == 1 && value.is_string() && duplicate.empty() &&
        !seen.insert(value.get<std::string>()).second) {
      duplicate = value.get<std::string>();
    }
    return true;
  };
  try {
    header = json::parse(text, text + header_len, on_event);
  } catch (const json::parse_error& e) {
    fail(
        "'{}' is corrupt: its JSON header does not parse at byte {} of the header (file byte {}): "
        "{}; re-download the file",
        ctx.file, e.byte, e.byte + 8, e.what());
  }
  if (!header.is_object()) fail("'{}' is corrupt: its JSON header is not an object", ctx.file);
  if (!duplicate.empty()) {
    fail(
        "'{}' is corrupt: tensor '{}' appears twice in its header; re-download or re-convert the "
        "file",
        ctx.file, duplicate);
  }
  const std::byte* data = file.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<std::string> names;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("'{}' is corrupt: '__metadata__' is not an object", ctx.file);
      if (metadata) *metadata = value;
      continue;
    }
    TensorView view = parse_entry(ctx, key, value, data, data_size);
    names.push_back(key);
    store.add_tensor(std::move(view));
  }
  store.add_file(std::move(file));
  return names;
}

json read_index(const std::filesystem::path& index) {
  MappedFile file = MappedFile::open(index);
  const char* text = reinterpret_cast<const char*>(file.data());
  json j;
  try {
    j = json::parse(text, text + file.size());
  } catch (const json::parse_error& e) {
    fail("'{}' is not a valid safetensors index: JSON error at byte {}: {}", index.string(), e.byte,
         e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    fail("'{}' is not a valid safetensors index: it has no \"weight_map\" object", index.string());
  }
  return j["weight_map"];
}

TensorStore open_sharded(const std::filesystem::path& index) {
  const json weight_map = read_index(index);
  const auto dir = index.parent_path();
  // shard file name -> tensors the index places there, shards in first-mention order sorted.
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string()) {
      fail("'{}': the weight_map entry of '{}' is not a file name", index.string(), tensor);
    }
    const auto& s = shard.get_ref<const std::string&>();
    const std::filesystem::path p(s);
    if (s.empty() || p.is_absolute() ||
        std::any_of(p.begin(), p.end(), [](const auto& part) { return part == ".."; })) {
      fail("'{}': the weight_map entry of '{}' names '{}', which is not a file beside the index",
           index.string(), tensor, s);
    }
    by_shard[s].push_back(tensor);
  }
  if (by_shard.empty())
    fail("'{}': the weight_map is empty, so there are no tensors to load", index.string());
  TensorStore store;
  store.set_source(FileFormat::Safetensors, index.string());
  json metadata = json::object();
  bool first = true;
  for (const auto& [shard, tensors] : by_shard) {
    const auto path = dir / shard;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      fail(
          "shard '{}' listed in '{}' (for {} tensors, e.g. '{}') is missing; download every "
          "shard the index lists",
          path.string(), index.string(), tensors.size(), tensors.front());
    }
    const auto names = read_file(store, path, first ? &metadata : nullptr);
    first = false;
    const std::set<std::string> present(names.begin(), names.end());
    for (const auto& t : tensors) {
      if (present.count(t) == 0) {
        fail(
            "tensor '{}' is listed in '{}' under shard '{}' but that shard does not contain it; "
            "the index and the shards come from different versions of the model: re-download both",
            t, index.string(), path.string());
      }
    }
  }
  store.mutable_metadata() = std::move(metadata);
  return store;
}

TensorStore open_single(const std::filesystem::path& path) {
  TensorStore store;
  store.set_source(FileFormat::Safetensors, path.string());
  json metadata = json::object();
  read_file(store, path, &metadata);
  store.mutable_metadata() = std::move(metadata);
  return store;
}

}  // namespace

TensorStore open_safetensors(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const DirListing dir = list_weight_dir(path);
    if (dir.has_model_safetensors) return open_single(path / "model.safetensors");
    if (dir.has_index) return open_sharded(path / "model.safetensors.index.json");
    if (dir.safetensors_files.size() == 1) return open_single(dir.safetensors_files.front());
    if (dir.safetensors_files.size() > 1) {
      fail(
          "'{}' holds {} .safetensors files but no model.safetensors.index.json saying which "
          "tensor is in which; download the index too (it contains: {})",
          path.string(), dir.safetensors_files.size(), dir.listing());
    }
    fail(
        "'{}' holds no safetensors weights (no model.safetensors, model.safetensors.index.json "
        "or *.safetensors); it contains: {}",
        path.string(), dir.listing());
  }
  if (path.extension() == ".json") return open_sharded(path);
  return open_single(path);
}

}  // namespace autoglm::formats
