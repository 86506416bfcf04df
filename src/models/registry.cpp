#include <algorithm>
#include <string>

#include "core/error.h"
#include "models/architecture.h"

namespace autoglm::models {

// Each architecture file defines one of these; adding an architecture adds one line here.
const Architecture& chatglm_architecture();
const Architecture& glm_architecture();
const Architecture& glm4_architecture();
const Architecture& glm4_moe_architecture();
const Architecture& llama_architecture();

const std::vector<const Architecture*>& architectures() {
  static const std::vector<const Architecture*> all = {
      &chatglm_architecture(), &glm_architecture(), &glm4_architecture(), &glm4_moe_architecture(),
      &llama_architecture()};
  return all;
}

namespace {

std::string supported_list(bool gguf) {
  std::string s;
  for (const Architecture* a : architectures()) {
    for (std::string_view n : gguf ? a->gguf_archs : a->hf_model_types) {
      if (!s.empty()) s += ", ";
      s += n;
    }
  }
  return s;
}

}  // namespace

const Architecture& architecture_for_hf(std::string_view model_type) {
  for (const Architecture* a : architectures()) {
    if (std::find(a->hf_model_types.begin(), a->hf_model_types.end(), model_type) !=
        a->hf_model_types.end()) {
      return *a;
    }
  }
  fail("config.json: model_type '{}' is not supported; supported: {}", model_type,
       supported_list(false));
}

const Architecture& architecture_for_gguf(std::string_view gguf_arch) {
  for (const Architecture* a : architectures()) {
    if (std::find(a->gguf_archs.begin(), a->gguf_archs.end(), gguf_arch) != a->gguf_archs.end()) {
      return *a;
    }
  }
  fail("GGUF general.architecture '{}' is not supported; supported: {}", gguf_arch,
       supported_list(true));
}

const Architecture& architecture_named(std::string_view name) {
  for (const Architecture* a : architectures()) {
    if (a->name == name) return *a;
  }
  fail("unknown architecture '{}'", name);
}

}  // namespace autoglm::models
