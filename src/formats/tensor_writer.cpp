#include "formats/tensor_writer.h"

#include <algorithm>

#include "core/error.h"
#include "core/tensor.h"

namespace autoglm::formats {

TensorWriter::TensorWriter(std::filesystem::path path, size_t alignment)
    : file_(std::move(path)), alignment_(alignment) {}

void TensorWriter::check_not_started(std::string_view what) const {
  if (started_) {
    fail("writing '{}': cannot {} after tensor data has started; declare everything first",
         file_.path().string(), what);
  }
}

void TensorWriter::declare(TensorSpec spec) {
  check_not_started(fmt::format("declare tensor '{}'", spec.name));
  if (spec.name.empty()) fail("writing '{}': a tensor has an empty name", file_.path().string());
  if (names_.count(spec.name) != 0) {
    fail("writing '{}': tensor '{}' is declared twice", file_.path().string(), spec.name);
  }
  int64_t numel = 1;
  for (const int64_t d : spec.shape) {
    if (d < 0 || __builtin_mul_overflow(numel, d, &numel)) {
      fail("writing '{}': tensor '{}' has an invalid shape {}", file_.path().string(), spec.name,
           shape_string(spec.shape));
    }
  }
  validate(spec);
  Entry entry;
  entry.nbytes = tensor_bytes(spec.dtype, numel);
  entry.offset = (data_bytes_ + alignment_ - 1) / alignment_ * alignment_;
  data_bytes_ = entry.offset + entry.nbytes;
  names_.insert(spec.name);
  entry.spec = std::move(spec);
  entries_.push_back(std::move(entry));
}

void TensorWriter::start() {
  started_ = true;
  write_header();
  data_start_ = file_.offset();
  current_ = 0;
  current_done_ = 0;
}

void TensorWriter::write(const void* data, size_t nbytes) {
  if (finished_) fail("writing '{}': the file is already finished", file_.path().string());
  if (!started_) start();
  const auto* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    // Skip over finished tensors (and zero-size ones), padding to the next offset.
    while (current_ < entries_.size() && current_done_ == entries_[current_].nbytes) {
      ++current_;
      current_done_ = 0;
    }
    if (current_ == entries_.size()) {
      fail("writing '{}': {} bytes more than the declared tensors hold", file_.path().string(),
           nbytes);
    }
    const Entry& e = entries_[current_];
    if (current_done_ == 0) file_.write_zeros(data_start_ + e.offset - file_.offset());
    const size_t k = std::min(nbytes, e.nbytes - current_done_);
    file_.write(p, k);
    p += k;
    nbytes -= k;
    current_done_ += k;
  }
}

void TensorWriter::write_tensor(std::string_view name, const void* data, size_t nbytes) {
  if (!started_) start();
  while (current_ < entries_.size() && current_done_ == entries_[current_].nbytes &&
         entries_[current_].spec.name != name) {
    ++current_;
    current_done_ = 0;
  }
  if (current_ == entries_.size() || entries_[current_].spec.name != name || current_done_ != 0) {
    fail(
        "writing '{}': tensor '{}' is written out of order (tensors are written in the order "
        "they were declared)",
        file_.path().string(), name);
  }
  if (nbytes != entries_[current_].nbytes) {
    fail("writing '{}': tensor '{}' needs {} bytes but {} were given", file_.path().string(), name,
         entries_[current_].nbytes, nbytes);
  }
  if (nbytes == 0) {
    ++current_;
    return;
  }
  write(data, nbytes);
}

void TensorWriter::finish() {
  if (!started_) start();
  while (current_ < entries_.size() && current_done_ == entries_[current_].nbytes) {
    ++current_;
    current_done_ = 0;
  }
  if (current_ != entries_.size()) {
    fail("writing '{}': tensor '{}' is incomplete ({} of {} bytes); the file was not written",
         file_.path().string(), entries_[current_].spec.name, current_done_,
         entries_[current_].nbytes);
  }
  // Trailing padding keeps the file a whole number of alignment units, as gguf-py does.
  file_.write_zeros(data_start_ + (data_bytes_ + alignment_ - 1) / alignment_ * alignment_ -
                    file_.offset());
  finished_ = true;
  file_.commit();
}

}  // namespace autoglm::formats
