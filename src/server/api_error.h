// Errors at the HTTP edge, in OpenAI's JSON shape {"error": {"message", "type", "param", "code"}}
// (STYLE.md 12: typed errors inside, mapped once here). Everything a client can cause becomes one
// ApiError with a status and a message that names the field; nothing a client sends may crash the
// server.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace autoglm::server {

struct ApiError {
  int status = 400;
  std::string type =
      "invalid_request_error";  // OpenAI: invalid_request_error, authentication_error, ...
  std::string message;
  std::string param;  // the offending request field, empty when none
  std::string code;   // machine-readable, e.g. "model_not_found", empty when none
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. Retry-After

  nlohmann::json to_json() const;
};

class ApiException : public std::runtime_error {
 public:
  explicit ApiException(ApiError error)
      : std::runtime_error(error.message), error_(std::move(error)) {}
  const ApiError& error() const { return error_; }

 private:
  ApiError error_;
};

// 400 naming the parameter: "'temperature' must be ... (got ...)".
template <typename... Args>
[[noreturn]] void invalid_param(const std::string& param, fmt::format_string<Args...> format,
                                Args&&... args) {
  ApiError e;
  e.status = 400;
  e.param = param;
  e.code = "invalid_parameter";
  e.message = fmt::format(format, std::forward<Args>(args)...);
  throw ApiException(std::move(e));
}

ApiError not_found_error(std::string message, std::string code);
ApiError unauthorized_error(std::string message);
ApiError too_large_error(size_t limit_bytes);
ApiError queue_full_error(std::string message, int retry_after_s);
ApiError not_ready_error(std::string message, int retry_after_s);
ApiError internal_error(std::string message);

}  // namespace autoglm::server
