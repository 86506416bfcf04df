// The streaming part shared by the safetensors and GGUF writers. A writer is used in two phases:
// declare every tensor (name, dtype, shape) and the metadata, then stream the bytes of each tensor
// in declaration order (whole with write_tensor(), or in pieces with write()). The header, which
// holds every offset, is written when the first bytes arrive, so a 20 GB model never has to sit in
// memory. finish() checks that every byte arrived and renames `<path>.tmp` to `<path>`; a writer
// destroyed before finish() leaves no file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "formats/atomic_file.h"

namespace autoglm::formats {

// One tensor to write. Shapes are in PyTorch order (outermost first).
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

// A tensor already in memory, for the one-call helpers write_safetensors() / write_gguf().
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // tensor_bytes(dtype, numel) bytes
};

class TensorWriter {
 public:
  TensorWriter(const TensorWriter&) = delete;
  TensorWriter& operator=(const TensorWriter&) = delete;
  virtual ~TensorWriter() = default;

  // Phase 1. Throws Error on a duplicate name, a negative dimension, a dtype the format cannot
  // hold, or after data has started.
  void declare(TensorSpec spec);
  // Phase 2. Appends bytes to the current tensor, moving to the next when one is complete.
  void write(const void* data, size_t nbytes);
  // Writes the whole of the next tensor, which must be `name` with exactly `nbytes` bytes.
  void write_tensor(std::string_view name, const void* data, size_t nbytes);
  // Throws Error if any declared tensor is incomplete; otherwise commits the file.
  void finish();

  const std::filesystem::path& path() const { return file_.path(); }
  size_t tensor_count() const { return entries_.size(); }

 protected:
  TensorWriter(std::filesystem::path path, size_t alignment);

  struct Entry {
    TensorSpec spec;
    size_t nbytes = 0;
    size_t offset = 0;  // from the start of the data section (aligned)
  };
  // Checks the dtype etc. for the format; called by declare().
  virtual void validate(const TensorSpec& spec) const = 0;
  // Writes everything before the data section, ending aligned to `alignment`.
  virtual void write_header() = 0;
  void check_not_started(std::string_view what) const;

  AtomicFile file_;
  std::vector<Entry> entries_;
  size_t alignment_;
  size_t data_bytes_ = 0;  // end of the last declared tensor

 private:
  void start();
  std::set<std::string, std::less<>> names_;
  bool started_ = false;
  bool finished_ = false;
  size_t data_start_ = 0;    // file offset of the data section
  size_t current_ = 0;       // index of the tensor being written
  size_t current_done_ = 0;  // bytes of it written
};

}  // namespace autoglm::formats
