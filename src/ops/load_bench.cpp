#include "ops/load_bench.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <random>

#include "core/error.h"
#include "ops/hub_http.h"

namespace autoglm::ops {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Common English words: in GLM's and most BPE vocabularies each " word" is one token, so N words
// make a prompt of about N tokens. A random start per request defeats prefix caches.
const char* const kWords[] = {"the",   "time",  "people", "way",    "day",    "man",   "thing",
                              "woman", "life",  "child",  "world",  "school", "state", "family",
                              "group", "house", "number", "night",  "point",  "water", "room",
                              "work",  "week",  "place",  "system", "story",  "city",  "money"};
constexpr int kWordCount = sizeof(kWords) / sizeof(kWords[0]);

std::string request_body(const LoadBenchOptions& o, std::mt19937& rng) {
  std::string prompt;
  int w = static_cast<int>(rng() % kWordCount);
  for (int i = 0; i < o.prompt_tokens; ++i) {
    if (i) prompt += ' ';
    prompt += kWords[(w + i * 7) % kWordCount];
  }
  nlohmann::json body = {{"model", o.model},
                         {"max_tokens", o.max_tokens},
                         {"temperature", 0},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
  if (o.chat) {
    body["messages"] = {{{"role", "user"}, {"content", prompt}}};
  } else {
    body["prompt"] = prompt;
  }
  if (o.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

// One streaming request in flight.
struct Stream {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string body;
  std::string buffer;  // SSE bytes not yet split into lines (or the error body)
  Clock::time_point start, last_token;
  bool got_token = false;
  bool done = false;  // saw [DONE]
  std::string stream_error;
  uint64_t chunks = 0, usage_completion = 0, usage_prompt = 0;
  bool has_usage = false;
  double ttft_ms = -1;
  std::vector<double> itl_ms;

  ~Stream() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }

  void on_event(const std::string& data) {
    if (data == "[DONE]") {
      done = true;
      return;
    }
    const auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded()) return;
    if (j.contains("error")) stream_error = j["error"].dump();
    if (j.contains("usage") && j["usage"].is_object()) {
      has_usage = true;
      usage_completion = j["usage"].value("completion_tokens", uint64_t{0});
      usage_prompt = j["usage"].value("prompt_tokens", uint64_t{0});
    }
    const auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    // A token is new text: choices[0].delta.content (chat) or choices[0].text (completions).
    const auto& choice = (*choices)[0];
    const auto delta = choice.find("delta");
    const nlohmann::json* text = nullptr;
    if (delta != choice.end() && delta->is_object() && delta->contains("content")) {
      text = &(*delta)["content"];
    } else if (choice.contains("text")) {
      text = &choice["text"];
    }
    if (text == nullptr || !text->is_string() || text->get_ref<const std::string&>().empty())
      return;
    const auto now = Clock::now();
    if (!got_token) {
      ttft_ms = ms_between(start, now);
    } else {
      itl_ms.push_back(ms_between(last_token, now));
    }
    got_token = true;
    last_token = now;
    ++chunks;
  }

  // SSE (WHATWG HTML 9.2): lines "data: <payload>", events end at a blank line.
  void feed(const char* p, size_t n, long status) {
    buffer.append(p, n);
    if (status != 200) return;  // keep the error body whole for the message
    size_t pos = 0;
    for (size_t nl; (nl = buffer.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      std::string line = buffer.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data:", 0) == 0) {
        size_t s = 5;
        if (s < line.size() && line[s] == ' ') ++s;
        on_event(line.substr(s));
      }
    }
    buffer.erase(0, pos);
  }
};

size_t on_bytes(char* p, size_t size, size_t n, void* user) {
  auto* s = static_cast<Stream*>(user);
  long status = 0;
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  s->feed(p, size * n, status);
  return size * n;
}

std::unique_ptr<Stream> make_stream(const LoadBenchOptions& o, const std::string& url,
                                    const ProxyChoice& proxy, std::mt19937& rng) {
  auto s = std::make_unique<Stream>();
  s->easy = curl_easy_init();
  s->body = request_body(o, rng);
  s->headers = curl_slist_append(s->headers, "Content-Type: application/json");
  s->headers = curl_slist_append(s->headers, "Accept: text/event-stream");
  if (!o.api_key.empty())
    s->headers = curl_slist_append(s->headers, ("Authorization: Bearer " + o.api_key).c_str());
  CURL* c = s->easy;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(s->body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_bytes);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, s.get());
  curl_easy_setopt(c, CURLOPT_PRIVATE, s.get());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(o.request_timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, proxy.proxy.c_str());
  if (!proxy.no_proxy.empty()) curl_easy_setopt(c, CURLOPT_NOPROXY, proxy.no_proxy.c_str());
  s->start = Clock::now();
  return s;
}

// Where one finished request goes in the level's tallies.
struct Tally {
  LevelResult level;
  std::vector<double> ttft, itl, latency;

  void add(const Stream& s, CURLcode code) {
    ++level.requests;
    long status = 0;
    curl_easy_getinfo(s.easy, CURLINFO_RESPONSE_CODE, &status);
    std::string key;
    if (code == CURLE_OPERATION_TIMEDOUT)
      key = "timeout";
    else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
      key = "connect";
    else if (code != CURLE_OK)
      key = "transfer";
    else if (status != 200)
      key = std::to_string(status);
    else if (!s.stream_error.empty() || !s.done)
      key = "stream";
    if (!key.empty()) {
      ++level.errors[key];
      if (level.first_error.empty()) {
        const std::string detail = code != CURLE_OK          ? curl_easy_strerror(code)
                                   : !s.stream_error.empty() ? s.stream_error
                                   : status != 200           ? s.buffer.substr(0, 200)
                                                             : "stream ended without data: [DONE]";
        level.first_error = fmt::format("{}: {}", key, detail);
      }
      return;
    }
    ++level.ok;
    level.output_tokens += s.has_usage ? s.usage_completion : s.chunks;
    level.prompt_tokens += s.usage_prompt;
    if (s.ttft_ms >= 0) ttft.push_back(s.ttft_ms);
    itl.insert(itl.end(), s.itl_ms.begin(), s.itl_ms.end());
    latency.push_back(ms_between(s.start, Clock::now()));
  }

  LevelResult finish(double duration_s) {
    level.duration_s = duration_s;
    level.requests_per_s = duration_s > 0 ? level.ok / duration_s : 0;
    level.output_tokens_per_s = duration_s > 0 ? double(level.output_tokens) / duration_s : 0;
    level.error_rate = level.requests ? double(level.requests - level.ok) / level.requests : 0;
    level.ttft_ms = summarize(std::move(ttft));
    level.itl_ms = summarize(std::move(itl));
    level.latency_ms = summarize(std::move(latency));
    return level;
  }
};

struct MultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};

LevelResult run_level(const LoadBenchOptions& o, int concurrency, const LoadBenchObserver& obs,
                      std::mt19937& rng) {
  const std::string url = bench_url(o);
  const ProxyChoice proxy = proxy_for(url);
  std::unique_ptr<CURLM, MultiDeleter> multi(curl_multi_init());
  curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, long(concurrency));
  std::map<CURL*, std::unique_ptr<Stream>> live;
  Tally tally;
  tally.level.concurrency = concurrency;
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  int launched = 0;
  auto may_launch = [&] {
    return o.requests > 0 ? launched < o.requests : elapsed() < o.duration_s;
  };
  auto last_report = Clock::now();
  for (;;) {
    while (int(live.size()) < concurrency && may_launch()) {
      auto s = make_stream(o, url, proxy, rng);
      curl_multi_add_handle(multi.get(), s->easy);
      live[s->easy] = std::move(s);
      ++launched;
    }
    if (live.empty()) break;
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi.get(), &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      auto it = live.find(m->easy_handle);
      tally.add(*it->second, m->data.result);
      curl_multi_remove_handle(multi.get(), m->easy_handle);
      live.erase(it);
    }
    if (obs.progress && Clock::now() - last_report > std::chrono::milliseconds(100)) {
      obs.progress(concurrency, tally.level.requests, o.requests, elapsed());
      last_report = Clock::now();
    }
    if (!live.empty()) curl_multi_poll(multi.get(), nullptr, 0, 50, nullptr);
  }
  if (obs.progress) obs.progress(concurrency, tally.level.requests, o.requests, elapsed());
  return tally.finish(elapsed());
}

// 1000 streams need 1000 sockets; the usual soft limit is 1024 with a far higher hard limit.
void raise_fd_limit(int needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = rlim_t(needed) + 64;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = std::min(lim.rlim_max, want);
  setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < want)
    fail(
        "{} concurrent streams need {} file descriptors but the hard limit is {}; raise it "
        "(ulimit -Hn, LimitNOFILE= in systemd) or lower the concurrency",
        needed, want, lim.rlim_max);
}

}  // namespace

namespace {

// "http://h:8080" / "http://h:8080/" / "http://h:8080/v1" -> "http://h:8080/v1".
std::string api_base_url(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
    fail("--url '{}' is not an http:// or https:// URL; write it like http://127.0.0.1:8080", url);
  if (u.size() >= 3 && u.compare(u.size() - 3, 3, "/v1") == 0) return u;
  return u + "/v1";
}

}  // namespace

std::string chat_completions_url(const std::string& url) {
  return api_base_url(url) + "/chat/completions";
}

std::string bench_url(const LoadBenchOptions& o) {
  return api_base_url(o.url) + (o.chat ? "/chat/completions" : "/completions");
}

LoadBenchResult run_load_bench(const LoadBenchOptions& o, const LoadBenchObserver& obs) {
  if (o.levels.empty()) fail("no concurrency levels; pass --concurrency 1,4,16 or --ramp");
  for (int c : o.levels)
    if (c <= 0) fail("concurrency levels must be positive, got {}", c);
  if ((o.requests > 0) == (o.duration_s > 0))
    fail("pass exactly one of --requests N (per level) or --duration S (seconds per level)");
  if (o.model.empty()) fail("--model NAME is required: the server's model id (GET /v1/models)");
  if (o.max_tokens <= 0 || o.prompt_tokens <= 0)
    fail("--max-tokens and --prompt-tokens must be positive");
  chat_completions_url(o.url);  // validate before any level runs
  curl_global_init(CURL_GLOBAL_DEFAULT);
  raise_fd_limit(*std::max_element(o.levels.begin(), o.levels.end()));
  std::mt19937 rng(12345);
  LoadBenchResult result{o, {}, ""};
  for (int c : o.levels) {
    result.levels.push_back(run_level(o, c, obs, rng));
    if (obs.level_end) obs.level_end(result.levels.back());
    const LevelResult& l = result.levels.back();
    if (o.ramp && l.error_rate > o.max_error_rate) {
      if (&c != &o.levels.back())
        result.stopped = fmt::format(
            "stopped at {} concurrent streams: error rate {:.0f}% > {:.0f}% (first error: {})", c,
            100 * l.error_rate, 100 * o.max_error_rate, l.first_error);
      break;
    }
  }
  return result;
}

}  // namespace autoglm::ops
