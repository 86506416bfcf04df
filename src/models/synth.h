// `autoglm synth`: a random-weight model of any real configuration, written with exactly the
// tensors the loader asks for, so speed and memory can be measured before downloading anything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace autoglm::models {

struct SynthOptions {
  std::filesystem::path config;  // HF config.json
  std::filesystem::path out;     // FILE.gguf, or a directory for config.json + model.safetensors
  DType dtype = DType::BF16;     // weight matrices; norms and biases are f32
  uint64_t seed = 0;
  // When set (GGUF only): the spellings of the 256 byte tokens (tokenizer::byte_level_alphabet()),
  // and the file carries a placeholder vocabulary built on them (see set_byte_vocab in synth.cpp).
  std::vector<std::string> byte_tokens;
  // Every weight rounded to bf16 before it is stored in dtype: the values an f16 (or q8_0, ...)
  // file converted from a bf16 release holds, as GLM's releases are bf16.
  bool bf16_values = false;
};

struct SynthResult {
  int64_t parameters = 0;
  uint64_t bytes = 0;
  std::filesystem::path weights_file;
};

// Throws Error (bad config, a dtype the output format cannot hold, an unwritable path); never
// leaves a half-written file.
SynthResult synthesize(const SynthOptions& options, ThreadPool& pool);

}  // namespace autoglm::models
