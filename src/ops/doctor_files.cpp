// doctor: permissions (model files, root, cache/log directories, API key file) and the model
// (layout, config, shards, tensor names/shapes/dtypes against the architecture, tokenizer, GGUF).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "models/architecture.h"
#include "models/model.h"
#include "ops/doctor.h"

namespace autoglm::ops {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> model_files(const fs::path& model) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(model, ec)) {
    for (const auto& e : fs::directory_iterator(model, ec)) {
      if (e.is_regular_file(ec)) files.push_back(e.path());
    }
  } else if (fs::exists(model, ec)) {
    files.push_back(model);
  }
  return files;
}

fs::path default_cache_dir() {
  for (const char* var : {"AUTOGLM_CACHE_DIR", "HF_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) return v;
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "autoglm";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "autoglm";
}

void check_dir_writable(const std::string& what, const fs::path& dir,
                        std::vector<CheckResult>& out) {
  fs::path probe = dir;
  std::error_code ec;
  while (!probe.empty() && !fs::exists(probe, ec)) probe = probe.parent_path();  // created on use
  if (!probe.empty() && ::access(probe.c_str(), W_OK) == 0) {
    out.push_back(
        {"permissions", CheckStatus::Ok, fmt::format("{} {} is writable", what, dir.string()), ""});
  } else {
    out.push_back({"permissions", CheckStatus::Warn,
                   fmt::format("{} {} is not writable", what, dir.string()),
                   fmt::format("chown $USER {} (or choose another directory)", probe.string())});
  }
}

// Records every tensor the architecture asks for and checks it against the store, without
// loading or converting anything.
class CheckBinder final : public models::WeightBinder {
 public:
  explicit CheckBinder(const formats::TensorStore& store) : store_(store) {}
  formats::FileFormat format() const override { return store_.format(); }
  bool has(const std::string& name) const override { return store_.contains(name); }
  kernels::Matrix matrix(const std::string& name, int64_t rows, int64_t cols,
                         models::Convert) override {
    check(name, {rows, cols}, true);
    return {DType::F32, rows, cols, nullptr};
  }
  kernels::Matrix matrix_slice(const std::string& name, int64_t count, int64_t, int64_t rows,
                               int64_t cols) override {
    check(name, {count, rows, cols}, true);
    return {DType::F32, rows, cols, nullptr};
  }
  const float* vector(const std::string& name, int64_t n) override {
    check(name, {n}, false);
    return nullptr;
  }
  std::vector<std::string> problems;
  int64_t asked = 0;

 private:
  void check(const std::string& name, std::vector<int64_t> shape, bool matrix) {
    if (!asked_.insert(name).second) return;
    ++asked;
    const TensorView* t = store_.find(name);
    if (!t) {
      problems.push_back(fmt::format("'{}' missing", name));
    } else if (t->shape != shape) {
      problems.push_back(fmt::format("'{}' has shape [{}], the config implies [{}]", name,
                                     fmt::join(t->shape, ", "), fmt::join(shape, ", ")));
    } else if (!dtype_info(t->dtype).is_float && matrix) {
      problems.push_back(fmt::format("'{}' is {}, not a weight type", name, dtype_name(t->dtype)));
    }
  }
  const formats::TensorStore& store_;
  std::set<std::string> asked_;
};

bool has_tokenizer(const fs::path& model, const formats::TensorStore& store) {
  if (store.format() == formats::FileFormat::Gguf)
    return store.metadata().contains("tokenizer.ggml.model");
  const fs::path dir = fs::is_directory(model) ? model : model.parent_path();
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer.tiktoken"}) {
    if (fs::exists(dir / f)) return true;
  }
  return false;
}

// Every shard the index names must exist; opening the store then checks every size and offset.
bool check_shards(const fs::path& model, std::vector<CheckResult>& out) {
  const fs::path index = model / "model.safetensors.index.json";
  if (!fs::is_directory(model) || !fs::exists(index)) return true;
  nlohmann::json j;
  try {
    std::ifstream in(index);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    out.push_back({"model", CheckStatus::Fail,
                   fmt::format("{} is not valid JSON: {}", index.string(), e.what()),
                   "download the model again (autoglm pull)"});
    return false;
  }
  std::set<std::string> shards;
  const nlohmann::json map = j.value("weight_map", nlohmann::json::object());
  for (const auto& [tensor, file] : map.items()) {
    if (file.is_string()) shards.insert(file.get<std::string>());
  }
  std::vector<std::string> missing;
  for (const std::string& s : shards) {
    if (!fs::exists(model / s)) missing.push_back(s);
  }
  if (!missing.empty()) {
    out.push_back({"model", CheckStatus::Fail,
                   fmt::format("{} of {} shards named by the index are missing: {}", missing.size(),
                               shards.size(), fmt::join(missing, ", ")),
                   "download the missing shards (autoglm pull resumes and verifies them)"});
    return false;
  }
  out.push_back({"model", CheckStatus::Ok,
                 fmt::format("all {} shards of the index present", shards.size()), ""});
  return true;
}

}  // namespace

void check_permissions(const DoctorOptions& o, std::vector<CheckResult>& out) {
  if (::geteuid() == 0) {
    out.push_back({"permissions", CheckStatus::Warn, "running as root",
                   "run the server as an unprivileged user (a bug in a network-facing process "
                   "should not own the machine)"});
  }
  if (!o.model.empty()) {
    int unreadable = 0, world_writable = 0;
    std::string first_bad;
    for (const fs::path& f : model_files(o.model)) {
      struct stat st {};
      if (::stat(f.c_str(), &st) != 0) continue;
      if (::access(f.c_str(), R_OK) != 0) {
        ++unreadable;
        if (first_bad.empty()) first_bad = f.string();
      } else if (st.st_mode & S_IWOTH) {
        ++world_writable;
        if (first_bad.empty()) first_bad = f.string();
      }
    }
    if (unreadable > 0) {
      out.push_back({"permissions", CheckStatus::Fail,
                     fmt::format("{} model files are not readable by this user, e.g. {}",
                                 unreadable, first_bad),
                     fmt::format("chmod a+r {0}/* (or chown $USER)", o.model)});
    } else if (world_writable > 0) {
      out.push_back(
          {"permissions", CheckStatus::Warn,
           fmt::format(
               "{} model files are world-writable (anyone can replace the weights), e.g. {}",
               world_writable, first_bad),
           fmt::format("chmod o-w {}", first_bad)});
    } else {
      out.push_back(
          {"permissions", CheckStatus::Ok, "model files readable, not world-writable", ""});
    }
  }
  check_dir_writable("cache directory",
                     o.cache_dir.empty() ? default_cache_dir() : fs::path(o.cache_dir), out);
  if (!o.log_dir.empty()) check_dir_writable("log directory", o.log_dir, out);
  std::string key = o.api_key_file;
  if (key.empty()) {
    if (const char* v = std::getenv("AUTOGLM_API_KEY_FILE"); v) key = v;
  }
  if (key.empty()) return;
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0 || ::access(key.c_str(), R_OK) != 0) {
    out.push_back({"permissions", CheckStatus::Fail,
                   fmt::format("API key file {} cannot be read", key),
                   "create it (one key per line) readable by the server's user"});
  } else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    out.push_back({"permissions", CheckStatus::Warn,
                   fmt::format("API key file {} is accessible to other users (mode {:o})", key,
                               st.st_mode & 0777),
                   fmt::format("chmod 600 {}", key)});
  } else {
    out.push_back(
        {"permissions", CheckStatus::Ok, fmt::format("API key file {} is private", key), ""});
  }
}

void check_model(const std::string& path, std::vector<CheckResult>& out) {
  const fs::path model(path);
  if (!check_shards(model, out)) return;
  models::ModelSpec spec;
  formats::TensorStore store;
  try {
    spec = models::read_spec(model);       // layout + config.json (or GGUF metadata) understood
    store = formats::open_weights(model);  // every header, size and offset validated
  } catch (const Error& e) {
    out.push_back({"model", CheckStatus::Fail, e.what(),
                   "fix or re-download the file named above (autoglm pull verifies sizes and "
                   "checksums)"});
    return;
  }
  out.push_back({"model", CheckStatus::Ok,
                 fmt::format("{} {}: {}",
                             store.format() == formats::FileFormat::Gguf ? "GGUF" : "safetensors",
                             path, spec.describe()),
                 ""});
  CheckBinder binder(store);
  models::ModelWeights weights;
  models::architecture_named(spec.arch).bind(spec, binder, weights);
  if (!binder.problems.empty()) {
    out.push_back({"model", CheckStatus::Fail,
                   fmt::format("{} of {} tensors the {} architecture needs do not match: {}",
                               binder.problems.size(), binder.asked, spec.arch,
                               fmt::join(binder.problems.begin(),
                                         binder.problems.begin() +
                                             std::min<size_t>(3, binder.problems.size()),
                                         "; ")),
                   "the weights do not belong to this config.json (mixed downloads?): download "
                   "the model again"});
  } else {
    out.push_back(
        {"model", CheckStatus::Ok,
         fmt::format("all {} tensors of the {} architecture present with the right shapes and "
                     "weight dtypes ({} in the file)",
                     binder.asked, spec.arch, store.size()),
         ""});
  }
  if (has_tokenizer(model, store)) {
    out.push_back({"model", CheckStatus::Ok, "tokenizer present", ""});
  } else {
    out.push_back(
        {"model", CheckStatus::Fail,
         "no tokenizer (tokenizer.json, tokenizer.model or GGUF tokenizer.ggml.*)",
         "download tokenizer.json and tokenizer_config.json from the model's repository"});
  }
}

}  // namespace autoglm::ops
