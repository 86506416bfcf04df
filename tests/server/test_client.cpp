#include "test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "support/fixtures.h"

namespace autoglm::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

ClientResponse http_call(uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body, const Headers& headers) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(20));
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1u << 30);
  http::read(stream, buffer, parser);
  ClientResponse out;
  const auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

ClientResponse post_json(uint16_t port, const std::string& target, const nlohmann::json& body,
                         const Headers& headers) {
  return http_call(port, "POST", target, body.dump(), headers);
}

std::vector<nlohmann::json> sse_events(const std::string& body, bool* done) {
  std::vector<nlohmann::json> events;
  *done = false;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind("data: ", 0) != 0) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      *done = pos >= body.size();
      continue;
    }
    events.push_back(nlohmann::json::parse(data));
  }
  return events;
}

std::string raw_exchange(uint16_t port, const std::string& bytes, int timeout_ms) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(stream.socket(), net::buffer(bytes));
  std::string out;
  char buf[4096];
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  for (;;) {
    beast::error_code ec;
    const size_t n = stream.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

const tokenizer::Tokenizer& fixture_tokenizer() {
  static const auto tok = tokenizer::load_tokenizer(fixtures_dir() / "gguf" / "glm-tiny-q8_0.gguf");
  return *tok;
}

server::ServerConfig test_config() {
  server::ServerConfig c;
  c.handle_signals = false;
  c.drain_timeout_s = 5;
  return c;
}

Harness::Harness(server::ServerConfig config, bool start_now) {
  format = tokenizer::chat_format_named("glm4");
  config.http.port = 0;
  server::ServedModel model;
  model.id = "glm-tiny";
  model.metadata = {{"dtype", "q8_0"}, {"dtype_reason", "test"}};
  server =
      std::make_unique<server::Server>(config, service, fixture_tokenizer(), format.get(), model);
  port = server->listen();
  if (start_now) start();
}

Harness::~Harness() {
  stop();
}

void Harness::start() {
  running_ = true;
  thread_ = std::thread([this] { exit_code_ = server->run(); });
}

int Harness::stop() {
  if (running_) {
    server->request_stop();
    thread_.join();
    running_ = false;
  }
  return exit_code_;
}

}  // namespace autoglm::testing
