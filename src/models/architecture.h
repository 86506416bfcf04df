// The architecture registry. Each architecture file fills one Architecture with the same three
// hooks (read hyper-parameters, bind tensors, forward a layer); nothing else in the code base
// switches on the architecture (STYLE.md 2).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "models/forward_state.h"
#include "models/model_spec.h"
#include "models/weight_binder.h"
#include "models/weights.h"

namespace autoglm::models {

struct Architecture {
  std::string_view name;                         // ModelSpec::arch
  std::vector<std::string_view> hf_model_types;  // config.json "model_type" values
  std::vector<std::string_view> gguf_archs;      // GGUF "general.architecture" values

  // Fills `spec` from HF config.json (for multimodal configs: the text part).
  void (*read_hf_config)(const nlohmann::json& config, ModelSpec& spec) = nullptr;
  // Fills `spec` from GGUF metadata; `prefix` is "<general.architecture>.".
  void (*read_gguf_metadata)(const nlohmann::json& meta, const std::string& prefix,
                             ModelSpec& spec) = nullptr;
  // Asks the binder for every tensor, with the names of the binder's file format.
  void (*bind)(const ModelSpec& spec, WeightBinder& binder, ModelWeights& weights) = nullptr;
  // One decoder layer over the residual stream state.x ([T, H]), in place.
  void (*forward_layer)(ForwardState& state, const LayerWeights& layer,
                        int64_t layer_index) = nullptr;
  // The GGUF architecture a GGUF of this model is written as (`autoglm synth`, `quantize`); its
  // bind hook gives the tensor names.
  std::string_view gguf_writer_arch;
};

const std::vector<const Architecture*>& architectures();
// By HF model_type or GGUF architecture; throws Error listing the supported ones.
const Architecture& architecture_for_hf(std::string_view model_type);
const Architecture& architecture_for_gguf(std::string_view gguf_arch);
const Architecture& architecture_named(std::string_view name);

}  // namespace autoglm::models
