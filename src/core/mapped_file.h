// A read-only memory map of a whole file. Weights are used in place where the dtype allows, so the
// page cache is the only copy.
#pragma once

#include <cstddef>
#include <filesystem>

namespace autoglm {

class MappedFile {
 public:
  // Throws Error naming the path and the reason (missing, unreadable, a directory, ...).
  static MappedFile open(const std::filesystem::path& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace autoglm
