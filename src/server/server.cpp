#include "server/server.h"

#include <csignal>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>

#include "core/error.h"
#include "core/log.h"
#include "server/api_error.h"
#include "server/auth.h"

namespace autoglm::server {
namespace {

using Clock = std::chrono::steady_clock;

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = e.to_json().dump();
  r.headers = e.headers;
  return r;
}

HttpResponse json_ok(const nlohmann::json& body, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

bool is_loopback(const std::string& host) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

}  // namespace

void check_exposure(const ServerConfig& config) {
  if (!is_loopback(config.http.host) && config.api_key.empty() && !config.insecure_no_auth) {
    fail(
        "--host {} makes the server reachable from other machines, and no API key is set; give "
        "one with --api-key-file FILE (or AUTOGLM_API_KEY), or pass --insecure-no-auth if the "
        "network is trusted",
        config.http.host);
  }
}

Server::Server(ServerConfig config, engine::InferenceService& service,
               const tokenizer::Tokenizer& tokenizer, const tokenizer::ChatFormat* chat_format,
               ServedModel model)
    : config_(std::move(config)),
      service_(service),
      metrics_(model.id),
      api_(service, tokenizer, chat_format, std::move(model), metrics_, config_.api),
      http_(config_.http, [this](HttpRequest&& r, std::shared_ptr<ResponseChannel> c) {
        handle(std::move(r), std::move(c));
      }) {
  check_exposure(config_);
}

Server::~Server() {
  api_.close_gate();
  http_.stop();
}

uint16_t Server::listen() {
  return http_.bind();
}

void Server::request_stop() {
  std::lock_guard lock(stop_mutex_);
  stop_requested_ = true;
  stop_cv_.notify_all();
}

int Server::run() {
  std::optional<boost::asio::signal_set> signals;
  if (config_.handle_signals) {
    signals.emplace(http_.io(), SIGINT, SIGTERM);
    signals->async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      log::info("received {}: draining (at most {} s)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                config_.drain_timeout_s);
      request_stop();
    });
  }
  http_.start();
  {
    std::unique_lock lock(stop_mutex_);
    stop_cv_.wait(lock, [this] { return stop_requested_.load(); });
  }
  drain();
  return 0;
}

void Server::drain() {
  http_.set_draining();
  http_.stop_accepting();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(config_.drain_timeout_s));
  // 20 ms polls: a drain is rare and short, and this keeps the I/O threads free of drain logic.
  while (http_.active_exchanges() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (http_.active_exchanges() > 0) {
    log::warn("drain timeout: cancelling {} requests still running", api_.in_flight());
    api_.cancel_all();
    const auto grace = Clock::now() + std::chrono::seconds(2);
    while (http_.active_exchanges() > 0 && Clock::now() < grace) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  api_.close_gate();
  http_.stop();
  log::info("server stopped");
}

void Server::handle(HttpRequest&& request, std::shared_ptr<ResponseChannel> channel) {
  const std::string& path = request.path;
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  auto reply = [&](const HttpResponse& r) {
    metrics_.observe_http(path.rfind("/v1/models/", 0) == 0 ? "/v1/models/{id}" : path, r.status);
    channel->respond(r);
  };
  auto reply_error = [&](const ApiError& e) { reply(error_response(e)); };

  if (path == "/health") {
    if (!get) return reply_error(not_found_error("GET /health only", "method_not_allowed"));
    return reply(json_ok({{"status", "ok"}}));
  }
  if (!config_.api_key.empty()) {
    const std::string auth = request.header("authorization");
    if (auth.empty()) {
      return reply_error(unauthorized_error(
          "no API key given: send the header `Authorization: Bearer <key>` with the key the "
          "server was started with (--api-key, --api-key-file or AUTOGLM_API_KEY)"));
    }
    if (!bearer_matches(auth, config_.api_key)) {
      return reply_error(unauthorized_error(
          "incorrect API key: the `Authorization: Bearer <key>` header does not match the "
          "server's key"));
    }
  }
  if (http_.draining()) {
    return reply_error(not_ready_error("the server is shutting down; retry on another replica", 5));
  }
  if (path == "/ready" && get) {
    if (service_.stats().ready) return reply(json_ok({{"status", "ready"}}));
    return reply_error(not_ready_error("the model is loading or warming up", 2));
  }
  if (path == "/metrics" && get) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(service_.stats(), http_.open_connections());
    return reply(r);
  }
  if (path == "/v1/models" && get) return reply(api_.list_models());
  if (path.rfind("/v1/models/", 0) == 0 && get) {
    return reply(api_.get_model(path.substr(std::string("/v1/models/").size())));
  }
  if (path == "/v1/chat/completions" && post) return api_.chat_completions(request, channel);
  if (path == "/v1/completions" && post) return api_.completions(request, channel);
  const bool known = path == "/ready" || path == "/metrics" || path == "/v1/models" ||
                     path == "/v1/chat/completions" || path == "/v1/completions";
  if (known) {
    ApiError e;
    e.status = 405;
    e.code = "method_not_allowed";
    e.message = fmt::format("{} does not accept {}", path, request.method);
    return reply_error(e);
  }
  reply_error(
      not_found_error(fmt::format("no route {} {}; this server has POST /v1/chat/completions, POST "
                                  "/v1/completions, GET /v1/models, /health, /ready, /metrics",
                                  request.method, path),
                      "not_found"));
}

}  // namespace autoglm::server
