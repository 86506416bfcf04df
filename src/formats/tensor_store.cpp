#include "formats/tensor_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <utility>

#include "core/error.h"
#include "formats/dir_listing.h"

namespace autoglm::formats {
namespace {

// Levenshtein distance, two rows. Names are short (< ~100 chars) and stores hold at most a few
// thousand tensors, so the O(n·m) cost per name is irrelevant on an error path.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> closest_names(const std::vector<std::string>& candidates,
                                       std::string_view name, size_t count) {
  std::vector<std::pair<size_t, std::string>> scored;
  scored.reserve(candidates.size());
  for (const auto& c : candidates) scored.emplace_back(edit_distance(name, c), c);
  const size_t n = std::min(count, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(std::move(scored[i].second));
  return out;
}

}  // namespace

void TensorStore::set_source(FileFormat format, std::string source) {
  format_ = format;
  source_ = std::move(source);
}

void TensorStore::add_file(MappedFile file) {
  files_.push_back(std::make_unique<MappedFile>(std::move(file)));
}

void TensorStore::add_tensor(TensorView view) {
  if (tensors_.count(view.name) != 0) {
    fail(
        "tensor '{}' appears twice in {}: the file is corrupt or two shards overlap; "
        "re-download or re-convert the model",
        view.name, source_);
  }
  std::string key = view.name;
  tensors_.emplace(std::move(key), std::move(view));
}

bool TensorStore::contains(std::string_view name) const {
  return find(name) != nullptr;
}

const TensorView* TensorStore::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& TensorStore::get(std::string_view name) const {
  if (const TensorView* view = find(name)) return *view;
  const auto close = closest_names(names(), name, 3);
  fail(
      "tensor '{}' not found in {} ({} tensors); closest names: {}. The file may be for another "
      "architecture or incomplete; `autoglm doctor --model PATH` lists its tensors",
      name, source_, tensors_.size(),
      close.empty() ? "(none)" : fmt::format("{}", fmt::join(close, ", ")));
}

const TensorView& TensorStore::get(std::string_view name,
                                   std::initializer_list<int64_t> shape) const {
  const TensorView& view = get(name);
  if (!std::equal(view.shape.begin(), view.shape.end(), shape.begin(), shape.end())) {
    fail(
        "tensor '{}' in {} has shape {} but the model configuration expects {}; the weights do "
        "not match config.json / the GGUF metadata (wrong model size or a mixed-up file)",
        name, source_, shape_string(view.shape), shape_string(std::vector<int64_t>(shape)));
  }
  return view;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;  // std::map keeps them sorted
}

TensorStore open_weights(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const DirListing dir = list_weight_dir(path);
    if (dir.has_safetensors()) return open_safetensors(path);
    if (dir.gguf_files.size() == 1) return open_gguf(dir.gguf_files.front());
    fail("'{}' holds no weights autoglm can choose: {}; it contains: {}", path.string(),
         dir.gguf_files.empty() ? "expected model.safetensors, model.safetensors.index.json, "
                                  "*.safetensors or one *.gguf"
                                : "several .gguf files; pass the one to use",
         dir.listing());
  }
  if (!std::filesystem::exists(path, ec)) {
    fail(
        "cannot open '{}': no such file or directory (check the path; `autoglm doctor --model "
        "PATH` lists what it expects)",
        path.string());
  }
  std::array<char, 4> magic{};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(magic.data(), magic.size());
    if (in.gcount() == 4 && std::memcmp(magic.data(), "GGUF", 4) == 0) return open_gguf(path);
  }
  const auto ext = path.extension().string();
  if (ext == ".gguf") return open_gguf(path);  // not GGUF magic: open_gguf says why
  if (ext == ".safetensors" || ext == ".json") return open_safetensors(path);
  // Unknown extension: a safetensors file starts with an 8-byte header length, then '{'.
  std::ifstream in(path, std::ios::binary);
  std::array<char, 9> head{};
  in.read(head.data(), head.size());
  if (in.gcount() == 9 && head[8] == '{') return open_safetensors(path);
  fail(
      "'{}' is neither a GGUF file (no 'GGUF' magic) nor a safetensors file (no JSON header); "
      "pass a .gguf, a .safetensors, an index .json or a Hugging Face model directory",
      path.string());
}

}  // namespace autoglm::formats
