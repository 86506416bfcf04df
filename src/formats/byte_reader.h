// A bounds-checked little-endian cursor over untrusted bytes (a mapped weight file). Every read
// checks the remaining length first, so a truncated or bit-flipped header becomes an Error that
// names the file, what was being read and at which byte, never an out-of-bounds read.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace autoglm::formats {

class ByteReader {
 public:
  ByteReader(const std::byte* data, size_t size, std::string file)
      : data_(data), size_(size), file_(std::move(file)) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& file() const { return file_; }

  // Throws "'file': cannot read <what> at byte N: the file ends at byte M (truncated?)".
  void need(size_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(
          "'{}' is truncated or corrupt: reading {} needs {} bytes at byte {}, but the file has "
          "only {} bytes; re-download or re-convert the file",
          file_, what, n, pos_, size_);
    }
  }

  // Plain integers and floats, little-endian (this reader only runs on little-endian hosts).
  template <typename T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string_view read_bytes(size_t n, std::string_view what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

  void skip(size_t n, std::string_view what) {
    need(n, what);
    pos_ += n;
  }

 private:
  const std::byte* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string file_;
};

static_assert(std::endian::native == std::endian::little,
              "weight files are little-endian; big-endian hosts need byte swapping here");

}  // namespace autoglm::formats
