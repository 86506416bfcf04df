#include "cli/common.h"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/log.h"

namespace autoglm::cli {

void ModelFlags::add_to(CLI::App& app, bool model_required) {
  auto* option = app.add_option(
      "-m,--model", model,
      model_required ? "Model: a directory with config.json + *.safetensors, or a .gguf file"
                     : "Model: a directory with config.json + *.safetensors, or a .gguf file "
                       "(default: $AUTOGLM_MODEL, else the embedded models/autoglm-mini)");
  if (model_required) option->required();
  app.add_option("--dtype", dtype,
                 "Convert weight matrices when loading: f32, f16, bf16, q8_0, q4_0 (default: keep "
                 "the file's types)");
  app.add_option("-t,--threads", threads, "Worker threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
  add_activations_option(app, activations);
}

void add_activations_option(CLI::App& app, std::string& activations) {
  auto* option =
      app.add_option("--activations", activations,
                     "Matmul inputs for bf16 / f16 weights. auto (default): bf16 weights take "
                     "activations rounded to bf16 on AVX-512 BF16 CPUs (vdpbf16ps, as a bf16 run "
                     "of the model does; about 1.8x the prefill); f16 weights multiply prompts and "
                     "batches of 32 tokens or more in 16-bit integers per block of 32 on AVX-512 "
                     "(vpdpwssd, about the rounding of an f16 run; 1.3-1.7x the prefill), fewer "
                     "tokens in f32. "
                     "f32: every matmul in f32 (an f32 run's logits). bf16: f16 weights too are "
                     "rounded to bf16 in matmuls of 4 tokens or more (exact for f16 converted "
                     "from bf16)")
          ->check(CLI::IsMember({"auto", "f32", "bf16"}));
  app.add_flag_callback(
         "--bf16-activations", [&activations] { activations = "bf16"; },
         "Same as --activations bf16")
      ->excludes(option);
}

models::LoadOptions ModelFlags::load_options() const {
  models::LoadOptions options;
  if (!dtype.empty()) options.dtype = parse_dtype(dtype);
  options.activations = models::parse_activations(activations);
  return options;
}

int ModelFlags::thread_count() const {
  return threads > 0 ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::unique_ptr<models::Model> ModelFlags::load(ThreadPool& pool) const {
  return models::Model::load(model, load_options(), pool);
}

std::string resolve_model(const std::string& flag) {
  namespace fs = std::filesystem;
  if (!flag.empty()) {
    log::info("model: {} (--model)", flag);
    return flag;
  }
  if (const char* env = std::getenv("AUTOGLM_MODEL"); env != nullptr && *env != '\0') {
    log::info("model: {} (from AUTOGLM_MODEL; no --model given)", env);
    return env;
  }
  std::vector<std::pair<fs::path, std::string>> places;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    places.emplace_back(exe.parent_path().parent_path() / "models", "next to the executable");
#ifdef AUTOGLM_MODELS_DIR
  places.emplace_back(fs::path(AUTOGLM_MODELS_DIR), "in the source tree it was built from");
#endif
  places.emplace_back(fs::path("/usr/share/autoglm/models"), "in the system-wide install");
  std::vector<std::string> tried;
  for (const auto& [dir, where] : places) {
    const fs::path candidate = dir / kEmbeddedModel;
    if (fs::is_regular_file(candidate / "config.json", ec)) {
      const fs::path path = fs::weakly_canonical(candidate, ec);
      const std::string chosen = ec ? candidate.string() : path.string();
      log::info("model: {} (no --model and no AUTOGLM_MODEL: the embedded model, found {})", chosen,
                where);
      return chosen;
    }
    tried.push_back(candidate.string());
  }
  fail(
      "no model to load: no --model, AUTOGLM_MODEL is not set, and the embedded model is in none "
      "of {}; pass --model PATH (a model directory or a .gguf file), or run build/autoglm from a "
      "checkout that has models/{}",
      fmt::join(tried, ", "), kEmbeddedModel);
}

void add_kv_type_flag(CLI::App& app, DType& kv_type) {
  app.add_option_function<std::string>(
         "--kv-type",
         [&kv_type](const std::string& name) { kv_type = name == "f32" ? DType::F32 : DType::F16; },
         "KV-cache element type: f16 (default: half the memory) or f32 (exact)")
      ->check(CLI::IsMember({"f16", "f32"}));
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string_view item(text.data() + start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    int32_t value = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || value < 0) {
      fail(
          "--tokens '{}': '{}' is not a token id; give non-negative integers separated by commas, "
          "e.g. --tokens 1,2,3",
          text, item);
    }
    ids.push_back(value);
    start = end + 1;
  }
  return ids;
}

}  // namespace autoglm::cli
