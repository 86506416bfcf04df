#include "models/synth.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors_writer.h"
#include "kernels/kernels.h"
#include "models/architecture.h"
#include "models/model.h"

namespace autoglm::models {
namespace fs = std::filesystem;

namespace {

enum class Fill { Matrix, Norm, Bias };

struct Planned {
  std::string name;
  std::vector<int64_t> shape;
  Fill fill = Fill::Matrix;
  bool keep_f32 = false;
};

// Records what an architecture's bind hook asks for instead of loading it.
class RecordingBinder final : public WeightBinder {
 public:
  explicit RecordingBinder(formats::FileFormat format) : format_(format) {}
  formats::FileFormat format() const override { return format_; }
  bool has(const std::string&) const override { return false; }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols,
                         Convert convert) override {
    add({name, {rows, cols}, Fill::Matrix, convert == Convert::KeepF32});
    return {DType::F32, rows, cols, nullptr};
  }
  kernels::Matrix matrix_slice(const std::string& name, int64_t count, int64_t, int64_t rows,
                               int64_t cols) override {
    add({name, {count, rows, cols}, Fill::Matrix, false});
    return {DType::F32, rows, cols, nullptr};
  }
  const float* vector(const std::string& name, int64_t n) override {
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    add({name, {n}, is_bias ? Fill::Bias : Fill::Norm, true});
    return nullptr;
  }
  const std::vector<Planned>& planned() const { return planned_; }

 private:
  void add(Planned p) {
    if (seen_.emplace(p.name, planned_.size()).second) planned_.push_back(std::move(p));
  }
  formats::FileFormat format_;
  std::vector<Planned> planned_;
  std::map<std::string, size_t> seen_;
};

// splitmix64: a fast, well-mixed generator; one stream per tensor, seeded by its name.
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform_pm1() {
    return static_cast<float>(static_cast<int64_t>(next() >> 11) - (1ll << 52)) /
           static_cast<float>(1ll << 52);
  }
};

DType stored_type(const Planned& p, DType requested) {
  if (p.keep_f32 || p.shape.size() == 1) return DType::F32;
  return p.shape.back() % dtype_info(requested).block_elems == 0 ? requested : DType::F32;
}

// Streams one tensor: rows of random values (uniform, std 0.02 like common initialisers; norms 1,
// biases small), converted to the stored type, in chunks so no tensor is held whole in memory.
void stream_tensor(formats::TensorWriter& writer, const Planned& p, DType type, uint64_t seed,
                   bool bf16_values, ThreadPool& pool) {
  const int64_t cols = p.shape.back();
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < p.shape.size(); ++i) rows *= p.shape[i];
  const size_t row_size = row_bytes(type, cols);
  const int64_t chunk_rows =
      std::max<int64_t>(1, (int64_t{8} << 20) / static_cast<int64_t>(row_size));
  std::vector<std::byte> buffer(static_cast<size_t>(chunk_rows) * row_size);
  const uint64_t name_hash = std::hash<std::string>{}(p.name) ^ seed;
  const float amplitude = p.fill == Fill::Matrix ? 0.02f * std::sqrt(3.0f) : 0.01f;
  const auto& kt = kernels::active();
  for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
    const int64_t n = std::min(chunk_rows, rows - r0);
    pool.parallel_for(n, [&](int64_t a, int64_t b) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = a; r < b; ++r) {
        Random rng{name_hash * 0x100000001b3ull + static_cast<uint64_t>(r0 + r)};
        for (auto& v : row) {
          v = amplitude * rng.uniform_pm1() + (p.fill == Fill::Norm ? 1.0f : 0.0f);
          if (bf16_values) v = bf16_to_f32(f32_to_bf16(v));
        }
        kt.quantize_row(type, row.data(), buffer.data() + static_cast<size_t>(r) * row_size, cols);
      }
    });
    writer.write(buffer.data(), static_cast<size_t>(n) * row_size);
  }
}

void set_gguf_metadata(formats::GgufWriter& w, const ModelSpec& s, std::string_view arch) {
  using formats::GgufType;
  const std::string a(arch);
  auto u32 = [&](const std::string& key, int64_t v) {
    w.set_u32(a + "." + key, static_cast<uint32_t>(v));
  };
  w.set_string("general.architecture", a);
  w.set_string("general.name", "autoglm-synth-" + s.arch);
  u32("block_count", s.n_layers);
  u32("context_length", s.max_positions);
  u32("embedding_length", s.hidden_size);
  u32("feed_forward_length", s.intermediate_size);
  u32("attention.head_count", s.n_heads);
  u32("attention.head_count_kv", s.n_kv_heads);
  u32("attention.key_length", s.head_dim);
  u32("attention.value_length", s.head_dim);
  u32("rope.dimension_count", s.rotary_dims);
  u32("vocab_size", s.vocab_size);
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_f32(a + ".rope.freq_base", s.rope_theta);
  if (s.n_experts > 0) {
    u32("expert_count", s.n_experts);
    u32("expert_used_count", s.n_experts_used);
    u32("expert_shared_count", s.n_shared_experts);
    u32("expert_feed_forward_length", s.moe_intermediate_size);
    u32("leading_dense_block_count", s.first_dense_layers);
    w.set_f32(a + ".expert_weights_scale", s.routed_scaling_factor);
    w.set_bool(a + ".expert_weights_norm", s.norm_topk_prob);
  }
  if (!s.eos_ids.empty())
    w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(s.eos_ids[0]));
}

// A vocabulary with no words, so that readers which insist on one load the file: llama.cpp refuses
// a GGUF without tokenizer.ggml.* (comparing its speed on the same weights needs that), and
// `autoglm run --raw` can then take text. GPT-2's byte-level BPE with no merges: one token per byte
// (256 ids, so any text has an encoding), the end-of-sequence ids control tokens, every other id a
// placeholder named [tN]. Pre-tokenizer "gpt-2", which llama.cpp and our reader both know.
void set_byte_vocab(formats::GgufWriter& w, const ModelSpec& s,
                    const std::vector<std::string>& byte_tokens) {
  const auto n_special = static_cast<int64_t>(s.eos_ids.size());
  if (byte_tokens.size() != 256) fail("a byte vocabulary needs 256 byte tokens");
  if (s.vocab_size < 256 + n_special) {
    fail(
        "--byte-vocab needs a vocabulary of at least {} tokens (256 bytes and {} end-of-sequence "
        "ids); this config has {}",
        256 + n_special, n_special, s.vocab_size);
  }
  constexpr int kNormal = 1, kControl = 3;  // llama.cpp's token types
  std::vector<std::string> tokens(static_cast<size_t>(s.vocab_size));
  std::vector<int> types(tokens.size(), kNormal);
  for (int32_t id : s.eos_ids) {
    if (id < 0 || id >= s.vocab_size)
      fail("end-of-sequence id {} is outside the vocabulary of {} tokens", id, s.vocab_size);
    // The first one's name is GPT-2's, which llama.cpp recognizes as an end of generation.
    tokens[static_cast<size_t>(id)] =
        id == s.eos_ids.front() ? "<|endoftext|>" : "<|endoftext_" + std::to_string(id) + "|>";
    types[static_cast<size_t>(id)] = kControl;
  }
  size_t next_byte = 0;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == kControl) continue;
    tokens[id] = next_byte < 256 ? byte_tokens[next_byte++] : "[t" + std::to_string(id) + "]";
  }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_array("tokenizer.ggml.token_type", formats::GgufType::I32, types);
  w.set_string_array("tokenizer.ggml.merges", {});
  w.set_bool("tokenizer.ggml.add_bos_token", false);
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read the config '{}'", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path.string(), e.what());
  }
}

}  // namespace

SynthResult synthesize(const SynthOptions& options, ThreadPool& pool) {
  const nlohmann::json config = read_json_file(options.config);
  const ModelSpec spec = spec_from_hf_config(config, options.config.string());
  const bool gguf = options.out.extension() == ".gguf";
  const DType dtype = options.dtype;
  if (!gguf && !options.byte_tokens.empty()) {
    fail(
        "--byte-vocab writes GGUF tokenizer metadata: write a .gguf file (--out model.gguf); a "
        "directory of safetensors takes a tokenizer.json beside it instead");
  }
  if (!gguf && is_quantized(dtype)) {
    fail(
        "safetensors cannot hold {} weights: write a .gguf file (--out model.gguf), or write "
        "f16/bf16 and convert when loading (--dtype {})",
        dtype_name(dtype), dtype_name(dtype));
  }

  const Architecture& arch =
      gguf ? architecture_for_gguf(architecture_named(spec.arch).gguf_writer_arch)
           : architecture_named(spec.arch);
  RecordingBinder recorder(gguf ? formats::FileFormat::Gguf : formats::FileFormat::Safetensors);
  ModelWeights unused;
  arch.bind(spec, recorder, unused);

  SynthResult result;
  std::unique_ptr<formats::TensorWriter> writer;
  if (gguf) {
    result.weights_file = options.out;
    auto g = std::make_unique<formats::GgufWriter>(options.out);
    set_gguf_metadata(*g, spec, arch.gguf_archs.front());
    if (!options.byte_tokens.empty()) set_byte_vocab(*g, spec, options.byte_tokens);
    writer = std::move(g);
  } else {
    fs::create_directories(options.out);
    result.weights_file = options.out / "model.safetensors";
    writer = std::make_unique<formats::SafetensorsWriter>(
        result.weights_file,
        std::map<std::string, std::string>{{"format", "pt"}, {"generator", "autoglm synth"}});
  }
  for (const Planned& p : recorder.planned()) {
    writer->declare({p.name, stored_type(p, dtype), p.shape});
  }
  for (const Planned& p : recorder.planned()) {
    const DType type = stored_type(p, dtype);
    stream_tensor(*writer, p, type, options.seed, options.bf16_values, pool);
    int64_t numel = 1;
    for (int64_t d : p.shape) numel *= d;
    result.parameters += numel;
    result.bytes += tensor_bytes(type, numel);
  }
  writer->finish();
  if (!gguf) {
    nlohmann::json out_config = config;
    out_config["torch_dtype"] = dtype == DType::F32   ? "float32"
                                : dtype == DType::F16 ? "float16"
                                                      : "bfloat16";
    std::ofstream(options.out / "config.json") << out_config.dump(2) << "\n";
  }
  return result;
}

}  // namespace autoglm::models
