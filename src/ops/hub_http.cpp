#include "ops/hub_http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace autoglm::ops {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string env(const char* lower, const char* upper) {
  const char* v = std::getenv(lower);
  if (v && *v) return v;
  v = std::getenv(upper);
  return v && *v ? v : "";
}

std::string host_of(const std::string& url) {
  size_t begin = url.find("://");
  begin = begin == std::string::npos ? 0 : begin + 3;
  const size_t end = url.find_first_of(":/?", begin);
  std::string host = url.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.find(']') - 1);
  return host;
}

struct StallGuard {
  std::chrono::steady_clock::duration limit{};
  std::chrono::steady_clock::time_point last_change;
  curl_off_t last_bytes = -1;
  bool stalled = false;
};

int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* g = static_cast<StallGuard*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (dlnow + ulnow != g->last_bytes) {
    g->last_bytes = dlnow + ulnow;
    g->last_change = now;
    return 0;
  }
  if (now - g->last_change > g->limit) {
    g->stalled = true;
    return 1;  // -> CURLE_ABORTED_BY_CALLBACK, reported as a timeout
  }
  return 0;
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// One easy handle with the options every hub request shares.
struct Request {
  std::unique_ptr<CURL, EasyDeleter> easy;
  std::unique_ptr<curl_slist, ListDeleter> headers;
  char error[CURL_ERROR_SIZE] = {};
  ProxyChoice proxy;
  std::string host;
  StallGuard stall;

  Request(const std::string& url, const HttpOptions& options) {
    global_init();
    easy.reset(curl_easy_init());
    CURL* c = easy.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // resolve/ answers 302 to the LFS CDN
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
    // A stall is "no byte for stall_timeout_s". libcurl's LOW_SPEED_* average over a window of
    // several seconds, so a transfer that stops dead after a fast start is caught late; we
    // watch the byte count ourselves.
    stall.limit = std::chrono::seconds(options.stall_timeout_s);
    stall.last_change = std::chrono::steady_clock::now();
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &stall);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "autoglm/0.1 (pull)");
    proxy = proxy_for(url);
    curl_easy_setopt(c, CURLOPT_PROXY, proxy.proxy.c_str());  // "" disables env lookup: we did it
    if (!proxy.no_proxy.empty()) curl_easy_setopt(c, CURLOPT_NOPROXY, proxy.no_proxy.c_str());
    host = host_of(url);
    curl_slist* list = nullptr;
    // libcurl drops custom headers on a redirect to another host (>= 7.58), so the token never
    // leaks to the CDN that serves LFS blobs.
    if (!options.token.empty())
      list = curl_slist_append(list, ("Authorization: Bearer " + options.token).c_str());
    headers.reset(list);
    if (list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  }

  HttpOutcome perform() {
    HttpOutcome out;
    out.curl_code = static_cast<int>(curl_easy_perform(easy.get()));
    if (stall.stalled) {
      out.curl_code = CURLE_OPERATION_TIMEDOUT;
      std::snprintf(error, sizeof error, "no data for %lld s",
                    static_cast<long long>(
                        std::chrono::duration_cast<std::chrono::seconds>(stall.limit).count()));
    }
    curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &out.status);
    out.curl_message = error[0] ? error : curl_easy_strerror(static_cast<CURLcode>(out.curl_code));
    out.used_proxy = !proxy.proxy.empty() && !bypassed();
    out.proxy = proxy.proxy;
    out.proxy_variable = proxy.variable;
    return out;
  }

  // Whether NO_PROXY exempts this host. libcurl applies the list itself; this copy of its rule
  // (exact host, or a domain suffix; "*" for all) only decides what the messages say.
  bool bypassed() const {
    size_t start = 0;
    const std::string& list = proxy.no_proxy;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string entry = list.substr(start, end - start);
      entry.erase(0, entry.find_first_not_of(' '));
      entry.erase(entry.find_last_not_of(' ') + 1);
      if (!entry.empty() && entry[0] == '.') entry.erase(0, 1);
      if (entry == "*" || entry == host) return true;
      if (!entry.empty() && host.size() > entry.size() &&
          host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
          host[host.size() - entry.size() - 1] == '.')
        return true;
      start = end + 1;
    }
    return false;
  }
};

size_t append_text(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t capture_link(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  static const char kName[] = "link:";
  if (line.size() > 5 && strncasecmp(line.c_str(), kName, 5) == 0) {
    const auto rel = line.find("rel=\"next\"");
    const auto lt = line.find('<');
    const auto gt = line.find('>');
    if (rel != std::string::npos && lt != std::string::npos && gt != std::string::npos && lt < gt)
      *static_cast<std::string*>(user) = line.substr(lt + 1, gt - lt - 1);
  }
  return size * n;
}

struct StreamState {
  CURL* easy = nullptr;
  const std::function<void(long)>* on_status = nullptr;
  const std::function<bool(const char*, size_t)>* sink = nullptr;
  bool status_seen = false;
};

size_t stream_chunk(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<StreamState*>(user);
  if (!s->status_seen) {
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    (*s->on_status)(status);
    s->status_seen = true;
  }
  return (*s->sink)(data, size * n) ? size * n : 0;  // 0 -> CURLE_WRITE_ERROR
}

}  // namespace

ProxyChoice proxy_for(const std::string& url) {
  ProxyChoice p;
  const bool https = url.rfind("https://", 0) == 0;
  const char* lower = https ? "https_proxy" : "http_proxy";
  const char* upper = https ? "HTTPS_PROXY" : "HTTP_PROXY";
  p.proxy = env(lower, upper);
  if (!p.proxy.empty()) {
    p.variable = std::getenv(lower) && *std::getenv(lower) ? lower : upper;
  } else {
    p.proxy = env("all_proxy", "ALL_PROXY");
    if (!p.proxy.empty()) p.variable = "ALL_PROXY";
  }
  p.no_proxy = env("no_proxy", "NO_PROXY");
  return p;
}

HttpOutcome http_get_text(const std::string& url, const HttpOptions& options, std::string& body,
                          std::string* next_link) {
  Request r(url, options);
  body.clear();
  std::string link;
  curl_easy_setopt(r.easy.get(), CURLOPT_WRITEFUNCTION, append_text);
  curl_easy_setopt(r.easy.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(r.easy.get(), CURLOPT_HEADERFUNCTION, capture_link);
  curl_easy_setopt(r.easy.get(), CURLOPT_HEADERDATA, &link);
  curl_easy_setopt(r.easy.get(), CURLOPT_ACCEPT_ENCODING, "");  // gzip listings of large repos
  HttpOutcome out = r.perform();
  if (next_link) *next_link = link;
  return out;
}

HttpOutcome http_get_stream(const std::string& url, const HttpOptions& options, uint64_t offset,
                            const std::function<void(long status)>& on_status,
                            const std::function<bool(const char*, size_t)>& sink) {
  Request r(url, options);
  StreamState state{r.easy.get(), &on_status, &sink, false};
  curl_easy_setopt(r.easy.get(), CURLOPT_WRITEFUNCTION, stream_chunk);
  curl_easy_setopt(r.easy.get(), CURLOPT_WRITEDATA, &state);
  // Error bodies (401/404 pages) must not land in the file: fail before the body on >= 400.
  curl_easy_setopt(r.easy.get(), CURLOPT_FAILONERROR, 1L);
  // CURLOPT_RANGE rather than RESUME_FROM: a server that ignores Range (200) is then handled by
  // on_status instead of failing with "doesn't support byte ranges".
  const std::string range = std::to_string(offset) + "-";
  if (offset > 0) curl_easy_setopt(r.easy.get(), CURLOPT_RANGE, range.c_str());
  HttpOutcome out = r.perform();
  if (out.curl_code == CURLE_HTTP_RETURNED_ERROR) out.curl_code = 0;  // reported by status
  return out;
}

std::string describe_transfer_failure(const HttpOutcome& o, const std::string& url) {
  const std::string via =
      o.used_proxy ? fmt::format(" via the proxy {} (from {})", o.proxy, o.proxy_variable) : "";
  switch (static_cast<CURLcode>(o.curl_code)) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
      return fmt::format(
          "the proxy {} (from {}) could not be used for {}: {}; fix or unset {}, or add the "
          "host to NO_PROXY",
          o.proxy, o.proxy_variable, url, o.curl_message, o.proxy_variable);
    case CURLE_COULDNT_CONNECT:
      if (o.used_proxy)
        return fmt::format(
            "could not connect to the proxy {} (from {}) for {}: {}; fix or unset {}, or add "
            "the host to NO_PROXY",
            o.proxy, o.proxy_variable, url, o.curl_message, o.proxy_variable);
      return fmt::format(
          "could not connect to {}: {}; check the endpoint (--endpoint, HF_ENDPOINT) or add a "
          "mirror with --endpoint",
          url, o.curl_message);
    case CURLE_COULDNT_RESOLVE_HOST:
      return fmt::format(
          "could not resolve the host of {}: {}; check DNS or set HTTPS_PROXY if this network "
          "needs a proxy, or use a mirror with --endpoint",
          url, o.curl_message);
    case CURLE_OPERATION_TIMEDOUT:
      return fmt::format(
          "timed out fetching {}{}: {}; the network or the mirror stalled. Run pull again to "
          "resume where it stopped, or try another mirror with --endpoint",
          url, via, o.curl_message);
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return fmt::format(
          "the connection to {}{} was cut: {}; run pull again: it resumes from the bytes kept", url,
          via, o.curl_message);
    case CURLE_PEER_FAILED_VERIFICATION:
      return fmt::format(
          "TLS certificate check failed for {}{}: {}; install ca-certificates, or point "
          "CURL_CA_BUNDLE at your proxy's CA",
          url, via, o.curl_message);
    default:
      return fmt::format("fetching {}{} failed: {}", url, via, o.curl_message);
  }
}

std::string describe_http_status(long status, const std::string& what, const std::string& url) {
  switch (status) {
    case 401:
      return fmt::format(
          "{}: the hub answered 401 Unauthorized ({}): the repository is private or gated, or "
          "the token is wrong. Pass --token or set HF_TOKEN to a token with read access",
          what, url);
    case 403:
      return fmt::format(
          "{}: the hub answered 403 Forbidden ({}): the repository is gated and this token's "
          "account has not accepted its licence. Accept it on the model page, then retry with "
          "that account's --token",
          what, url);
    case 404:
      return fmt::format(
          "{}: not found (404 at {}). Check the repository name (owner/name, case matters), "
          "the --revision, and that the mirror has it",
          what, url);
    case 416:
      return fmt::format(
          "{}: the server refused the resume range (416 at {}); delete the "
          ".part file and run pull again",
          what, url);
    case 429:
      return fmt::format(
          "{}: rate limited (429 at {}); wait a minute, pass --token, or use a "
          "mirror with --endpoint",
          what, url);
    default:
      if (status >= 500)
        return fmt::format(
            "{}: the hub failed with HTTP {} ({}); retry later or use a mirror "
            "with --endpoint",
            what, status, url);
      return fmt::format("{}: unexpected HTTP {} from {}", what, status, url);
  }
}

}  // namespace autoglm::ops
