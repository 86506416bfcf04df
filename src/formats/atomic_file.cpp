#include "formats/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace autoglm::formats {

AtomicFile::AtomicFile(std::filesystem::path path) : path_(std::move(path)) {
  tmp_ = path_;
  tmp_ += ".tmp";
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    fail("cannot create '{}': {} (check that the directory exists and is writable)", tmp_.string(),
         std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);  // best effort: we are already failing
  }
}

void AtomicFile::write(const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t done = ::write(fd_, p, n);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      fail("cannot write '{}' at byte {}: {} (free some disk space or choose another --output)",
           tmp_.string(), offset_, done < 0 ? std::strerror(errno) : "no progress");
    }
    p += done;
    n -= static_cast<size_t>(done);
    offset_ += static_cast<size_t>(done);
  }
}

void AtomicFile::write_zeros(size_t n) {
  static constexpr std::array<char, 4096> kZeros{};
  while (n > 0) {
    const size_t k = std::min(n, kZeros.size());
    write(kZeros.data(), k);
    n -= k;
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) {
    fail("cannot flush '{}' to disk: {}", tmp_.string(), std::strerror(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
    fail("cannot close '{}': {}", tmp_.string(), std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp_, ignored);
    fail("cannot rename '{}' to '{}': {}", tmp_.string(), path_.string(), ec.message());
  }
}

}  // namespace autoglm::formats
