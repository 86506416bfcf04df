// Sampling defaults a model ships in its generation_config.json (Hugging Face keys temperature,
// top_p, top_k, min_p, repetition_penalty), applied as vLLM applies them: to the fields a request
// (or the command line) leaves out. A small model that loops under plain greedy decoding ships a
// repetition_penalty there, so a first request without one still reads well.
#pragma once

#include <filesystem>
#include <string>

#include "engine/sampler.h"

namespace autoglm::engine {

struct GenerationDefaults {
  SamplingParams sampling;  // the OpenAI defaults, overridden by the file's values
  std::string source;       // the file read, empty when there was none
  std::string summary;      // "repetition_penalty 1.3, top_p 0.8", empty when nothing applied
};

// For a model directory (or a .safetensors file beside its config): its generation_config.json;
// a GGUF file has none. Throws Error naming the file and the key for a malformed or out-of-range
// value.
GenerationDefaults read_generation_defaults(const std::filesystem::path& model_path);

}  // namespace autoglm::engine
