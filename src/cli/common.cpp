#include "cli/common.h"

#include <charconv>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace autoglm::cli {

void ModelFlags::add_to(CLI::App& app) {
  app.add_option("-m,--model", model,
                 "Model: a directory with config.json + *.safetensors, or a .gguf file")
      ->required();
  app.add_option("--dtype", dtype,
                 "Convert weight matrices when loading: f32, f16, bf16, q8_0, q4_0 (default: keep "
                 "the file's types)");
  app.add_option("-t,--threads", threads, "Worker threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
}

int ModelFlags::thread_count() const {
  return threads > 0 ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::unique_ptr<models::Model> ModelFlags::load(ThreadPool& pool) const {
  models::LoadOptions options;
  if (!dtype.empty()) options.dtype = parse_dtype(dtype);
  return models::Model::load(model, options, pool);
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
