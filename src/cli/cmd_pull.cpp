// autoglm pull REPO [--revision R] [--dir DIR] [--endpoint URL]... [--token T] [--include GLOB]...:
// download a model from a Hugging Face-compatible hub or mirror (ops/pull.h does the work).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "cli/common.h"
#include "ops/pull.h"

namespace autoglm::cli {
namespace {

struct PullFlags {
  ops::PullOptions options;
  std::vector<std::string> endpoints;
  std::string dir;
};

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// A progress bar on a terminal, a line per file otherwise (logs, CI).
class Progress {
 public:
  Progress() : tty_(isatty(STDERR_FILENO) != 0) {}

  ops::PullObserver observer() {
    ops::PullObserver o;
    o.note = [this](const std::string& line) {
      clear();
      std::fprintf(stderr, "pull: %s\n", line.c_str());
    };
    o.file_begin = [this](const ops::HubFile& f, uint64_t offset) {
      name_ = f.path;
      start_ = Clock::now();
      last_ = {};
      offset_ = offset;
      if (!tty_)
        std::fprintf(stderr, "pull: %s (%s)%s\n", f.path.c_str(), human(double(f.size)).c_str(),
                     offset ? fmt::format(", resuming at {}", human(double(offset))).c_str() : "");
    };
    o.bytes = [this](uint64_t done, uint64_t total) { draw(done, total); };
    o.file_end = [this](const ops::PulledFile& f) {
      clear();
      const char* state = f.state == ops::PullFileState::Present   ? "present"
                          : f.state == ops::PullFileState::Resumed ? "resumed"
                                                                   : "downloaded";
      std::fprintf(stderr, "pull: %-10s %s  %s  (%s verified)\n", state, f.path.c_str(),
                   human(double(f.size)).c_str(), f.checked.c_str());
    };
    return o;
  }

 private:
  using Clock = std::chrono::steady_clock;

  void draw(uint64_t done, uint64_t total) {
    if (!tty_ || Clock::now() - last_ < std::chrono::milliseconds(100)) return;
    last_ = Clock::now();
    const double secs = std::chrono::duration<double>(last_ - start_).count();
    const double rate = secs > 0 ? double(done - offset_) / secs : 0;
    const double frac = total ? double(done) / double(total) : 0;
    const int width = 30, filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r%-32.32s [%s%s] %3.0f%% %s / %s  %s/s   ", name_.c_str(),
                 std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                 100 * frac, human(double(done)).c_str(), human(double(total)).c_str(),
                 human(rate).c_str());
    drawn_ = true;
  }
  void clear() {
    if (drawn_) std::fprintf(stderr, "\r%90s\r", "");
    drawn_ = false;
  }

  bool tty_;
  bool drawn_ = false;
  std::string name_;
  Clock::time_point start_, last_;
  uint64_t offset_ = 0;
};

int run(PullFlags& f) {
  f.options.endpoints = ops::endpoint_list(f.endpoints);
  if (f.options.http.token.empty())
    if (const char* t = std::getenv("HF_TOKEN"); t && *t) f.options.http.token = t;
  const auto slash = f.options.repo.find('/');
  f.options.dir = f.dir.empty()
                      ? std::filesystem::path("models") /
                            f.options.repo.substr(slash == std::string::npos ? 0 : slash + 1)
                      : std::filesystem::path(f.dir);
  const ops::ProxyChoice proxy = ops::proxy_for(f.options.endpoints.front());
  std::fprintf(stderr, "pull: %s@%s -> %s; mirrors: %s; proxy: %s\n", f.options.repo.c_str(),
               f.options.revision.c_str(), f.options.dir.c_str(),
               fmt::format("{}", fmt::join(f.options.endpoints, ", ")).c_str(),
               proxy.proxy.empty()
                   ? "none"
                   : fmt::format("{} (from {}{})", proxy.proxy, proxy.variable,
                                 proxy.no_proxy.empty() ? "" : ", NO_PROXY " + proxy.no_proxy)
                         .c_str());
  Progress progress;
  const ops::PullResult r = ops::pull(f.options, progress.observer());
  uint64_t total = 0;
  for (const auto& file : r.files) total += file.size;
  std::printf("%s@%s (commit %s, from %s): %zu files, %s in %s\n", f.options.repo.c_str(),
              f.options.revision.c_str(), r.commit.empty() ? "?" : r.commit.c_str(),
              r.endpoint.c_str(), r.files.size(), human(double(total)).c_str(),
              f.options.dir.c_str());
  return 0;
}

}  // namespace

Action register_pull(CLI::App& app) {
  auto f = std::make_shared<PullFlags>();
  app.add_option("repo", f->options.repo, "Repository, owner/name (e.g. THUDM/glm-edge-1.5b-chat)")
      ->required();
  app.add_option("--revision", f->options.revision, "Branch, tag or commit (default main)");
  app.add_option("--dir", f->dir, "Destination directory (default models/<name>)");
  app.add_option("--endpoint", f->endpoints,
                 "Hub or mirror URL, repeatable; tried in order after $HF_ENDPOINT "
                 "(default https://huggingface.co)");
  app.add_option("--token", f->options.http.token, "Access token (default $HF_TOKEN)");
  app.add_option("--include", f->options.include, "Only files matching this glob, repeatable");
  app.add_option("--retries", f->options.retries, "Resumed retries per mirror (default 3)");
  app.add_option("--stall-timeout", f->options.http.stall_timeout_s,
                 "Seconds without a byte before a transfer is abandoned (default 30)");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
