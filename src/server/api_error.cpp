#include "server/api_error.h"

namespace autoglm::server {

nlohmann::json ApiError::to_json() const {
  nlohmann::json inner = {{"message", message},
                          {"type", type},
                          {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
                          {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)}};
  return {{"error", std::move(inner)}};
}

ApiError not_found_error(std::string message, std::string code) {
  ApiError e;
  e.status = 404;
  e.type = "invalid_request_error";
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

ApiError unauthorized_error(std::string message) {
  ApiError e;
  e.status = 401;
  e.type = "authentication_error";
  e.message = std::move(message);
  e.code = "invalid_api_key";
  e.headers.emplace_back("WWW-Authenticate", "Bearer");
  return e;
}

ApiError too_large_error(size_t limit_bytes) {
  ApiError e;
  e.status = 413;
  e.message = fmt::format(
      "request body larger than the server's limit of {} bytes; send a shorter request or start "
      "the server with a larger --max-body-bytes",
      limit_bytes);
  e.code = "request_too_large";
  return e;
}

ApiError queue_full_error(std::string message, int retry_after_s) {
  ApiError e;
  e.status = 429;
  e.type = "rate_limit_error";  // what the openai SDKs retry on
  e.message = std::move(message);
  e.code = "queue_full";
  e.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return e;
}

ApiError not_ready_error(std::string message, int retry_after_s) {
  ApiError e;
  e.status = 503;
  e.type = "server_error";
  e.message = std::move(message);
  e.code = "not_ready";
  e.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return e;
}

ApiError internal_error(std::string message) {
  ApiError e;
  e.status = 500;
  e.type = "server_error";
  e.message = std::move(message);
  e.code = "internal_error";
  return e;
}

}  // namespace autoglm::server
