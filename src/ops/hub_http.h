// The libcurl plumbing shared by `pull` (hub listing, downloads): proxy choice from the
// environment, timeouts, a bearer token, and failures turned into one message that says what to do.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace autoglm::ops {

struct HttpOptions {
  std::string token;            // bearer token (--token / HF_TOKEN); empty: anonymous
  long connect_timeout_s = 10;  // a dead mirror costs at most this before the next is tried
  long stall_timeout_s = 30;    // abort a transfer that moves < 1 byte/s for this long
};

// The proxy libcurl will use for `url`, read from the environment the way curl(1) documents it
// (http_proxy / HTTP_PROXY, https_proxy / HTTPS_PROXY, all_proxy / ALL_PROXY, no_proxy / NO_PROXY).
// We pass it explicitly because libcurl ignores upper-case HTTP_PROXY (CGI "httpoxy" guard), which
// is the spelling most deployment docs use.
struct ProxyChoice {
  std::string proxy;     // empty: direct
  std::string variable;  // the environment variable it came from
  std::string no_proxy;  // the NO_PROXY list applied (hosts that bypass the proxy)
};
ProxyChoice proxy_for(const std::string& url);

// One HTTP exchange's outcome. `curl_code` != 0 means the transfer itself failed (no connection,
// timeout, write error); otherwise `status` is the final HTTP status after redirects.
struct HttpOutcome {
  int curl_code = 0;
  long status = 0;
  std::string curl_message;  // libcurl's error buffer
  bool used_proxy = false;
  std::string proxy;
  std::string proxy_variable;
};

// GET `url` into `body` (small JSON answers). `next_link` receives a `Link: <...>; rel="next"`
// target when the hub paginates (the tree API does past 1000 entries).
HttpOutcome http_get_text(const std::string& url, const HttpOptions& options, std::string& body,
                          std::string* next_link = nullptr);

// GET `url` from byte `offset` on (HTTP Range), each chunk handed to `sink` (false: stop, reported
// as a write error). `on_status` runs once the status is known, before the first byte reaches
// `sink`: a 200 to a ranged request means the server ignored the Range, and the caller restarts the
// file.
HttpOutcome http_get_stream(const std::string& url, const HttpOptions& options, uint64_t offset,
                            const std::function<void(long status)>& on_status,
                            const std::function<bool(const char*, size_t)>& sink);

// "connection refused by 127.0.0.1:9 (is the endpoint right? ...)". The reason and the fix for a
// transfer failure (curl_code != 0), naming the proxy when one was in the way.
std::string describe_transfer_failure(const HttpOutcome& outcome, const std::string& url);

// The reason and the fix for an HTTP error status; `what` names the object ("repository X",
// "file Y at revision Z").
std::string describe_http_status(long status, const std::string& what, const std::string& url);

}  // namespace autoglm::ops
