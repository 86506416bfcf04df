// A file written to `<path>.tmp` and renamed to `<path>` only by commit(), so a failure half-way
// (disk full, a bad tensor, an exception in the caller) never leaves a truncated weight file that a
// later run would try to load. Without commit() the temporary file is removed.
#pragma once

#include <cstddef>
#include <filesystem>

namespace autoglm::formats {

class AtomicFile {
 public:
  // Creates (truncates) `<path>.tmp`; throws Error naming it and the reason.
  explicit AtomicFile(std::filesystem::path path);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Throws Error with the OS reason (e.g. "No space left on device").
  void write(const void* data, size_t n);
  void write_zeros(size_t n);
  size_t offset() const { return offset_; }
  // Flushes to disk, closes and renames over `path`; throws Error on any failure.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& tmp_path() const { return tmp_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  int fd_ = -1;
  size_t offset_ = 0;
};

}  // namespace autoglm::formats
