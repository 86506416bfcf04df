#include "support/fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace autoglm::testing {
namespace {

std::mutex g_temp_mutex;
std::vector<std::filesystem::path>& temp_dirs() {
  static std::vector<std::filesystem::path> dirs;
  static const bool registered = [] {
    std::atexit([] {
      std::error_code ec;
      for (const auto& d : temp_dirs()) std::filesystem::remove_all(d, ec);
    });
    return true;
  }();
  (void)registered;
  return dirs;
}

}  // namespace

std::filesystem::path fixtures_dir() {
  const char* env = std::getenv("AUTOGLM_FIXTURES");
  if (env && *env && std::filesystem::is_directory(env)) return env;
  const std::filesystem::path configured = AUTOGLM_FIXTURES_DEFAULT;
  if (std::filesystem::is_directory(configured)) return configured;
  throw std::runtime_error(
      "reference fixtures not found: set AUTOGLM_FIXTURES or configure with "
      "-DAUTOGLM_FIXTURES_DIR=PATH (looked at '" +
      std::string(env ? env : "") + "' and '" + configured.string() +
      "'); they live in ../shared/fixtures beside the repository");
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return nlohmann::json::parse(in);
}

std::filesystem::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("autoglm-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::lock_guard<std::mutex> lock(g_temp_mutex);
  temp_dirs().push_back(dir);
  return dir;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) throw std::runtime_error("max_abs_diff: sizes differ");
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace autoglm::testing
