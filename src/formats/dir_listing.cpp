#include "formats/dir_listing.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"

namespace autoglm::formats {

std::string DirListing::listing() const {
  if (entries.empty()) return "nothing (the directory is empty)";
  constexpr size_t kMaxShown = 20;
  const size_t shown = std::min(entries.size(), kMaxShown);
  std::string out = fmt::format(
      "{}", fmt::join(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(shown), ", "));
  if (entries.size() > shown) out += fmt::format(" ... and {} more", entries.size() - shown);
  return out;
}

DirListing list_weight_dir(const std::filesystem::path& dir) {
  DirListing out;
  out.dir = dir;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) fail("cannot list the model directory '{}': {}", dir.string(), ec.message());
  for (const auto& entry : it) {
    const auto name = entry.path().filename().string();
    const bool is_dir = entry.is_directory(ec);
    out.entries.push_back(is_dir ? name + "/" : name);
    if (is_dir) continue;
    if (name == "model.safetensors") out.has_model_safetensors = true;
    if (name == "model.safetensors.index.json") out.has_index = true;
    const auto ext = entry.path().extension().string();
    if (ext == ".safetensors") out.safetensors_files.push_back(entry.path());
    if (ext == ".gguf") out.gguf_files.push_back(entry.path());
  }
  std::sort(out.entries.begin(), out.entries.end());
  std::sort(out.safetensors_files.begin(), out.safetensors_files.end());
  std::sort(out.gguf_files.begin(), out.gguf_files.end());
  return out;
}

}  // namespace autoglm::formats
