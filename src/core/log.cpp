#include "core/log.h"

#include <atomic>
#include <mutex>

namespace autoglm::log {
namespace {
std::atomic<Level> g_level{Level::Info};
std::mutex g_mutex;
const char* prefix(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warning";
    case Level::Error:
      return "error";
    case Level::Off:
      break;
  }
  return "";
}
}  // namespace

Level level() {
  return g_level.load(std::memory_order_relaxed);
}
void set_level(Level l) {
  g_level.store(l, std::memory_order_relaxed);
}

void write(Level l, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "autoglm %s: %s\n", prefix(l), message.c_str());
}

}  // namespace autoglm::log
