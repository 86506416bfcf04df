#include <fstream>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/log.h"
#include "kernels/kernels.h"
#include "models/model.h"
#include "models/store_binder.h"
#include "models/weight_packing.h"

namespace autoglm::models {
namespace fs = std::filesystem;

namespace {

bool has_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

struct ResolvedPath {
  fs::path weights;  // directory or file handed to formats::open_*
  fs::path config;   // config.json (safetensors only)
  bool gguf = false;
};

ResolvedPath resolve(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    fail(
        "model path '{}' does not exist: give a directory with config.json and *.safetensors, "
        "or a .gguf file",
        path.string());
  }
  if (fs::is_directory(path)) {
    if (fs::exists(path / "config.json")) return {path, path / "config.json", false};
    std::vector<fs::path> ggufs;
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.path().extension() == ".gguf") ggufs.push_back(entry.path());
    }
    if (ggufs.size() == 1) return {ggufs[0], {}, true};
    fail(
        "model directory '{}' has no config.json{}: a Hugging Face model needs config.json beside "
        "its *.safetensors; or pass the .gguf file itself",
        path.string(), ggufs.empty() ? "" : fmt::format(" and {} .gguf files", ggufs.size()));
  }
  if (has_gguf_magic(path)) return {path, {}, true};
  const fs::path config = path.parent_path() / "config.json";
  if (!fs::exists(config)) {
    fail(
        "'{}' is not a GGUF file and there is no config.json beside it; a safetensors model needs "
        "its config.json",
        path.string());
  }
  return {path, config, false};
}

nlohmann::json read_config(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read '{}'", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path.string(), e.what());
  }
}

// Facts a GGUF states through its tensors rather than its metadata (llama.cpp naming).
void complete_spec_from_gguf_tensors(ModelSpec& spec, const formats::TensorStore& store) {
  if (const TensorView* embd = store.find("token_embd.weight")) {
    if (embd->shape.size() == 2) spec.vocab_size = embd->shape[0];
  }
  spec.tie_embeddings = !store.contains("output.weight");
  spec.qkv_bias = store.contains("blk.0.attn_q.bias") || store.contains("blk.0.attn_qkv.bias");
  spec.qk_norm = store.contains("blk.0.attn_q_norm.weight");
}

// What the activations choice did to the matmuls. Said only where it changes something, or where
// an explicit bf16 asked for something this CPU or these weights cannot give.
std::string activations_summary(const PackResult& packed, Activations activations) {
  if (activations == Activations::kF32) return "";
  const bool asked = activations == Activations::kBf16;
  if (packed.bf16_rounding_x == 0 && packed.f16_as_bf16 == 0 && packed.f16_in_int16 == 0) {
    if (asked) {
      log::warn(
          "bf16 activations change nothing: no bf16 or f16 weight matrix was repacked (convert "
          "the weights with --dtype bf16, or leave the option off)");
    }
    return "";
  }
  if (kernels::active().isa != Isa::Avx512) {
    if (asked) {
      log::warn(
          "bf16 activations change nothing: the {} kernels multiply bf16 and f16 weights in f32 "
          "(the bf16 dot product needs AVX-512 BF16; this CPU has {})",
          isa_name(kernels::active().isa), cpu_features().describe());
    }
    return "";
  }
  std::string summary;
  if (packed.bf16_rounding_x > 0) {
    summary += fmt::format(
        "; {} bf16 matrices take activations rounded to bf16 (vdpbf16ps, as a bf16 run of the "
        "model does{})",
        packed.bf16_rounding_x, asked ? "" : "; --activations f32 multiplies in f32");
  }
  if (packed.f16_as_bf16 > 0) {
    summary += fmt::format(
        "; {} f16 matrices multiply in bf16 for 4 tokens or more (weights and activations "
        "rounded, vdpbf16ps); decode stays in f32",
        packed.f16_as_bf16);
  }
  if (packed.f16_in_int16 > 0) {
    summary += fmt::format(
        "; {} f16 matrices multiply 32 tokens or more in 16-bit integers per block of 32 "
        "(vpdpwssd: about an f16 run's rounding of the activations; --activations f32 keeps f32); "
        "decode stays in f32",
        packed.f16_in_int16);
  }
  return summary;
}

}  // namespace

ModelSpec spec_from_hf_config(const nlohmann::json& config, const std::string& source) {
  try {
    const std::string model_type = config.value("model_type", std::string());
    if (model_type.empty()) fail("config.json has no model_type");
    const Architecture& arch = architecture_for_hf(model_type);
    ModelSpec spec;
    spec.arch = std::string(arch.name);
    arch.read_hf_config(config, spec);
    spec.validate(source);
    return spec;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: a config value has the wrong type: {}", source, e.what());
  }
}

ModelSpec spec_from_gguf(const nlohmann::json& meta, const std::string& source) {
  const std::string gguf_arch = meta.value("general.architecture", std::string());
  if (gguf_arch.empty()) fail("{}: GGUF metadata has no general.architecture", source);
  const Architecture& arch = architecture_for_gguf(gguf_arch);
  if (!arch.read_gguf_metadata)
    fail("{}: architecture '{}' cannot be read from GGUF", source, gguf_arch);
  ModelSpec spec;
  spec.arch = std::string(arch.name);
  try {
    arch.read_gguf_metadata(meta, gguf_arch + ".", spec);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: a GGUF metadata value has the wrong type: {}", source, e.what());
  }
  return spec;
}

ModelSpec read_spec(const fs::path& path) {
  const ResolvedPath r = resolve(path);
  if (!r.gguf) return spec_from_hf_config(read_config(r.config), r.config.string());
  formats::TensorStore store = formats::open_gguf(r.weights);
  ModelSpec spec = spec_from_gguf(store.metadata(), r.weights.string());
  complete_spec_from_gguf_tensors(spec, store);
  spec.validate(r.weights.string());
  return spec;
}

Activations parse_activations(std::string_view text) {
  if (text == "auto") return Activations::kAuto;
  if (text == "f32") return Activations::kF32;
  if (text == "bf16") return Activations::kBf16;
  fail(
      "unknown activations '{}': choose auto (bf16 weights multiply in bf16, f16 in 16-bit "
      "integers from 32 tokens, else f32), f32 (every matmul in f32) or bf16 (f16 weights too, "
      "rounded to bf16)",
      text);
}

std::unique_ptr<Model> Model::load(const fs::path& path, const LoadOptions& options,
                                   ThreadPool& pool) {
  const ResolvedPath r = resolve(path);
  auto model = std::make_unique<Model>();
  if (r.gguf) {
    model->store_ = formats::open_gguf(r.weights);
    model->spec_ = spec_from_gguf(model->store_.metadata(), r.weights.string());
    complete_spec_from_gguf_tensors(model->spec_, model->store_);
    model->spec_.validate(r.weights.string());
  } else {
    model->spec_ = spec_from_hf_config(read_config(r.config), r.config.string());
    model->store_ = formats::open_safetensors(r.weights);
  }
  model->arch_ = &architecture_named(model->spec_.arch);
  StoreBinder binder(model->store_, options.dtype, pool, model->owned_);
  model->arch_->bind(model->spec_, binder, model->weights_);
  model->weight_summary_ = binder.summary();
  const PackResult packed = pack_weights(model->weights_, model->owned_, pool, options.activations);
  if (packed.packed > 0) {
    model->weight_summary_ +=
        fmt::format("; {} matrices repacked in 8-row groups for the {} kernels", packed.packed,
                    isa_name(kernels::active().isa));
  }
  if (packed.fused_qkv > 0) {
    model->weight_summary_ +=
        fmt::format("; q, k and v fused into one matrix in {} layers", packed.fused_qkv);
  }
  if (packed.f16_packed_as_bf16 > 0) {
    model->weight_summary_ += fmt::format(
        "; {} f16 matrices hold only bf16 values (as when converted from a bf16 release): packed "
        "and run as bf16, the same values",
        packed.f16_packed_as_bf16);
  }
  model->weight_summary_ += activations_summary(packed, options.activations);
  model->weight_bytes_ = binder.weight_bytes();
  log::info("model {}: {}", path.string(), model->spec_.describe());
  log::info("weights: {}, {:.1f} MiB", model->weight_summary_,
            static_cast<double>(model->weight_bytes_) / (1024.0 * 1024.0));
  return model;
}

}  // namespace autoglm::models
