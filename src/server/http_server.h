// HTTP/1.1 on Boost.Asio/Beast: an acceptor and one Session per connection, all driven by a small
// pool of I/O threads (io_threads, default 2), so thousands of idle or streaming connections cost
// a socket and a few KiB each, never a thread (DESIGN.md, server/). Each connection runs on its own
// strand; a handler answers through a ResponseChannel whose methods may be called from any thread
// (they hop onto the strand), which is how engine events become bytes on the wire.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace autoglm::server {

struct HttpConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0: the OS picks a free port
  int io_threads = 2;
  size_t max_body_bytes = 8u << 20;  // larger bodies get 413
  int read_timeout_s = 60;           // a request (headers + body) or an idle keep-alive gap
  int write_timeout_s = 120;         // one write to a slow reader
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote;  // "ip:port"

  // Case-insensitive header lookup; empty when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// One request's reply. Exactly one of respond() or start_stream() ... end_stream() is honoured;
// calls after the response ended or the client left are ignored. Thread-safe.
class ResponseChannel {
 public:
  virtual ~ResponseChannel() = default;
  virtual void respond(HttpResponse response) = 0;
  // Headers of a chunked response (Server-Sent Events when content_type is text/event-stream).
  virtual void start_stream(int status, std::string content_type) = 0;
  virtual void write(std::string data) = 0;  // one chunk
  virtual void end_stream() = 0;
  // Called once, on the connection's strand, when the client goes away before the response ended.
  virtual void on_disconnect(std::function<void()> callback) = 0;
  // The connection's strand: post here to serialize work with this request's I/O.
  virtual boost::asio::any_io_executor executor() = 0;
};

using HttpHandler = std::function<void(HttpRequest&&, std::shared_ptr<ResponseChannel>)>;

class HttpServer {
 public:
  HttpServer(HttpConfig config, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port (the chosen one for port 0). Throws Error when the address
  // cannot be bound, naming the process that holds the port and the flag to change it.
  uint16_t bind();
  void start();           // starts accepting and the I/O threads
  void stop_accepting();  // closes the listening socket; open connections go on
  void stop();            // stops the I/O threads (pending connections are dropped); idempotent

  // Requests received whose response has not been fully written yet.
  int64_t active_exchanges() const { return active_.load(); }
  int64_t open_connections() const { return connections_.load(); }
  // While draining, every response carries Connection: close and no further request is read.
  void set_draining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  const HttpConfig& config() const { return config_; }
  boost::asio::io_context& io() { return io_; }

 private:
  friend class Session;
  void do_accept();

  // Counters first: sessions destroyed with io_ still decrement them.
  std::atomic<int64_t> active_{0};
  std::atomic<int64_t> connections_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  HttpConfig config_;
  HttpHandler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on its own strand
  std::vector<std::thread> threads_;
};

// "HTTP/1.1 404 Not Found" reason phrases and the like live in Beast; this is the whole response
// as bytes (exposed for tests of the framing).
std::string serialize_response(const HttpResponse& response, bool keep_alive);
// One HTTP/1.1 chunk: hex length, CRLF, data, CRLF.
std::string http_chunk(std::string_view data);

}  // namespace autoglm::server
