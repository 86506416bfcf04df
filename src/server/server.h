// The server as a whole: routes (auth first, then OpenAI, health, readiness, metrics), the HTTP
// layer, and the life cycle: listen, serve, and on SIGTERM/SIGINT (or request_stop) stop accepting,
// let in-flight requests finish for up to drain_timeout_s, cancel what is left, return 0.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "engine/service.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_api.h"

namespace autoglm::server {

struct ServerConfig {
  HttpConfig http;
  std::string api_key;            // empty: no authentication
  bool insecure_no_auth = false;  // allow a non-loopback host without a key
  double drain_timeout_s = 30;
  bool handle_signals = true;  // SIGTERM/SIGINT start the drain
  ApiOptions api;
};

// Throws Error when `config` would expose the model without a key on a non-loopback address.
void check_exposure(const ServerConfig& config);

class Server {
 public:
  Server(ServerConfig config, engine::InferenceService& service,
         const tokenizer::Tokenizer& tokenizer, const tokenizer::ChatFormat* chat_format,
         ServedModel model);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds; returns the port. Throws Error (port in use: who holds it and the flag to change).
  uint16_t listen();
  // Serves until a signal or request_stop(), drains, and returns the exit code (0).
  int run();
  // Thread-safe; what SIGTERM does.
  void request_stop();

 private:
  void handle(HttpRequest&& request, std::shared_ptr<ResponseChannel> channel);
  void drain();

  ServerConfig config_;
  engine::InferenceService& service_;
  ServerMetrics metrics_;
  OpenAiApi api_;
  HttpServer http_;
  std::atomic<bool> stop_requested_{false};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
};

}  // namespace autoglm::server
