// doctor: proxy variables, the hub endpoint and whether it answers (bounded in time: offline is a
// warning, never a hang), and whether the serving port is free.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "ops/doctor.h"
#include "server/port_owner.h"

namespace autoglm::ops {
namespace {

std::string env(const char* upper, const char* lower) {
  if (const char* v = std::getenv(upper); v && *v) return v;
  if (const char* v = std::getenv(lower); v && *v) return v;
  return "";
}

struct HostPort {
  std::string host, port;
};

// "https://user@host:8080/path" -> {host, 8080}; the scheme's port when none is given.
HostPort parse_url(const std::string& url) {
  std::string rest = url;
  std::string port = "443";
  if (auto p = rest.find("://"); p != std::string::npos) {
    if (rest.compare(0, p, "http") == 0) port = "80";
    rest = rest.substr(p + 3);
  }
  rest = rest.substr(0, rest.find('/'));
  if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest[0] == '[') {  // [::1]:8080
    const auto close = rest.find(']');
    std::string host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    return {host, port};
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    return {rest.substr(0, colon), rest.substr(colon + 1)};
  }
  return {rest, port};
}

// TCP connect within `timeout_ms` including name resolution (getaddrinfo has no timeout, so it
// runs on a detached thread that may outlive the call). "" on success, else why not.
std::string try_connect(const HostPort& hp, int timeout_ms) {
  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::string result;
  };
  auto shared = std::make_shared<Shared>();
  std::thread([shared, hp, timeout_ms] {
    std::string result;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res); rc != 0) {
      result = fmt::format("cannot resolve {}: {}", hp.host, gai_strerror(rc));
    } else {
      result = "no address";
      for (addrinfo* a = res; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        int rc2 = ::connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc2 != 0 && errno == EINPROGRESS) {
          pollfd p{fd, POLLOUT, 0};
          rc2 = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
          int err = 0;
          socklen_t len = sizeof(err);
          if (rc2 == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (rc2 != 0) err = ETIMEDOUT;
          errno = err;
          rc2 = err == 0 ? 0 : -1;
        }
        const int saved = errno;
        ::close(fd);
        if (rc2 == 0) {
          result.clear();
          break;
        }
        result = std::strerror(saved);
      }
      freeaddrinfo(res);
    }
    std::lock_guard lock(shared->m);
    shared->done = true;
    shared->result = result;
    shared->cv.notify_all();
  }).detach();
  std::unique_lock lock(shared->m);
  if (!shared->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms + 500),
                           [&] { return shared->done; })) {
    return fmt::format("no answer within {} ms", timeout_ms);
  }
  return shared->result;
}

bool no_proxy_covers_localhost(const std::string& no_proxy) {
  if (no_proxy == "*") return true;
  bool localhost = false, loopback = false;
  size_t start = 0;
  while (start <= no_proxy.size()) {
    size_t end = no_proxy.find(',', start);
    if (end == std::string::npos) end = no_proxy.size();
    std::string item = no_proxy.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item == "localhost" || item == ".localhost") localhost = true;
    if (item == "127.0.0.1" || item == "127.0.0.0/8" || item == "127.0.0.1/8") loopback = true;
    start = end + 1;
  }
  return localhost && loopback;
}

}  // namespace

void check_network(const DoctorOptions& o, std::vector<CheckResult>& out) {
  const std::string http = env("HTTP_PROXY", "http_proxy");
  const std::string https = env("HTTPS_PROXY", "https_proxy");
  const std::string no_proxy = env("NO_PROXY", "no_proxy");
  if (http.empty() && https.empty()) {
    out.push_back({"network", CheckStatus::Ok, "no HTTP(S)_PROXY set: direct connections", ""});
  } else if (!no_proxy_covers_localhost(no_proxy)) {
    out.push_back(
        {"network", CheckStatus::Warn,
         fmt::format("proxy set (HTTP_PROXY={}, HTTPS_PROXY={}) but NO_PROXY='{}' does not "
                     "cover localhost and 127.0.0.1: local clients would go through the proxy",
                     http.empty() ? "-" : http, https.empty() ? "-" : https, no_proxy),
         "export NO_PROXY=localhost,127.0.0.1,::1" +
             (no_proxy.empty() ? std::string() : "," + no_proxy)});
  } else {
    out.push_back(
        {"network", CheckStatus::Ok,
         fmt::format("proxy {} with NO_PROXY covering localhost", https.empty() ? http : https),
         ""});
  }
  std::string endpoint = o.endpoint;
  const char* hf = std::getenv("HF_ENDPOINT");
  if (endpoint.empty()) endpoint = hf && *hf ? hf : "https://huggingface.co";
  if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0) {
    out.push_back(
        {"network", CheckStatus::Warn,
         fmt::format("hub endpoint '{}' is not an http(s) URL", endpoint),
         "set HF_ENDPOINT=https://huggingface.co or a mirror such as https://hf-mirror.com"});
    return;
  }
  out.push_back(
      {"network", CheckStatus::Ok,
       fmt::format(
           "hub endpoint {}{}", endpoint,
           o.endpoint.empty() && !(hf && *hf) ? " (default; HF_ENDPOINT selects a mirror)" : ""),
       ""});
  if (!o.network) return;
  // Through the proxy when one is set: that is the connection `pull` will make first.
  const std::string proxy = endpoint.rfind("https", 0) == 0 ? https : http;
  const std::string target = proxy.empty() ? endpoint : proxy;
  const std::string why = try_connect(parse_url(target), o.network_timeout_ms);
  if (why.empty()) {
    out.push_back({"network", CheckStatus::Ok, fmt::format("{} reachable", target), ""});
  } else {
    out.push_back({"network", CheckStatus::Warn, fmt::format("{} not reachable: {}", target, why),
                   "offline: models already on disk serve fine; for `pull` set HTTPS_PROXY or "
                   "HF_ENDPOINT to a reachable mirror"});
  }
}

void check_port(const std::string& host, int port, std::vector<CheckResult>& out) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    out.push_back({"port", CheckStatus::Fail,
                   fmt::format("cannot resolve --host {}: {}", host, gai_strerror(rc)),
                   "use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"});
    return;
  }
  int err = 0;
  const int fd = ::socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  const int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as the server does
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0) err = errno;
  if (fd >= 0) ::close(fd);
  freeaddrinfo(res);
  if (err == 0) {
    out.push_back({"port", CheckStatus::Ok, fmt::format("{}:{} is free", host, port), ""});
  } else if (err == EADDRINUSE) {
    const std::string owner = server::describe_port_owner(static_cast<uint16_t>(port));
    out.push_back(
        {"port", CheckStatus::Fail,
         fmt::format("{}:{} is in use{}", host, port,
                     owner.empty() ? " (by a process this user cannot see)" : " by " + owner),
         fmt::format("serve with --port {} (or 0 for any free port), or stop that process",
                     port + 1)});
  } else {
    out.push_back({"port", CheckStatus::Fail,
                   fmt::format("cannot bind {}:{}: {}", host, port, std::strerror(err)),
                   port < 1024 ? "ports below 1024 need root: use --port 8000"
                               : "use another --host or --port"});
  }
}

}  // namespace autoglm::ops
