#include "server/http_server.h"

#include <sys/socket.h>

#include <deque>
#include <optional>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.h"
#include "core/log.h"
#include "server/api_error.h"
#include "server/port_owner.h"

namespace autoglm::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()),
                        beast::string_view(b.data(), b.size()));
}

std::string status_line(int status) {
  const beast::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
  return fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(reason.data(), reason.size()));
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = e.to_json().dump();
  r.headers = e.headers;
  return r;
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

std::string serialize_response(const HttpResponse& response, bool keep_alive) {
  std::string out = status_line(response.status);
  out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", response.content_type,
                     response.body.size());
  for (const auto& [k, v] : response.headers) out += fmt::format("{}: {}\r\n", k, v);
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += response.body;
  return out;
}

std::string http_chunk(std::string_view data) {
  return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

// One connection. Lives as long as an operation or a ResponseChannel refers to it.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer& server, tcp::socket&& socket) : server_(server), stream_(std::move(socket)) {
    ++server_.connections_;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
    // Streamed tokens are small writes: with Nagle's algorithm each waits for the ACK of the one
    // before, which a client's delayed ACK holds back ~40 ms, so tokens would arrive in bursts.
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Session() { --server_.connections_; }

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  // The ResponseChannel calls, on the strand; `exchange` identifies the request they answer.
  void respond(uint64_t exchange, HttpResponse response) {
    if (!current(exchange) || state_ != State::Waiting) return;
    state_ = State::Done;
    enqueue(serialize_response(response, keep_alive()));
  }
  void start_stream(uint64_t exchange, int status, const std::string& content_type) {
    if (!current(exchange) || state_ != State::Waiting) return;
    state_ = State::Streaming;
    enqueue(status_line(status) +
            fmt::format("Content-Type: {}\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: {}\r\n\r\n",
                        content_type, keep_alive() ? "keep-alive" : "close"));
  }
  void write(uint64_t exchange, const std::string& data) {
    if (!current(exchange) || state_ != State::Streaming || data.empty()) return;
    enqueue(http_chunk(data));
  }
  void end_stream(uint64_t exchange) {
    if (!current(exchange) || state_ != State::Streaming) return;
    state_ = State::Done;
    enqueue("0\r\n\r\n");
  }
  void set_disconnect(uint64_t exchange, std::function<void()> cb) {
    if (!current(exchange)) return;
    if (closed_) {
      if (cb) cb();
      return;
    }
    on_disconnect_ = std::move(cb);
  }

 private:
  enum class State { Reading, Waiting, Streaming, Done };

  bool current(uint64_t exchange) const { return !closed_ && exchange == exchange_; }
  bool keep_alive() const { return keep_alive_ && !server_.draining(); }

  void do_read() {
    if (closed_) return;
    state_ = State::Reading;
    parser_.emplace();
    parser_->body_limit(server_.config_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(server_.config_.read_timeout_s));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      reply_and_close(too_large_error(server_.config_.max_body_bytes));
      return;
    }
    if (ec == http::error::header_limit) {
      ApiError e;
      e.status = 431;
      e.message = "request headers larger than 64 KiB";
      reply_and_close(e);
      return;
    }
    if (ec) {
      // Timeouts, resets and end of stream end the connection quietly; malformed HTTP gets a 400.
      if (ec.category() == beast::error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        ApiError e;
        e.message = fmt::format("malformed HTTP request: {}", ec.message());
        reply_and_close(e);
        return;
      }
      close();
      return;
    }
    stream_.expires_never();
    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    HttpRequest request;
    request.method = std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    request.path = std::string(target.substr(0, target.find('?')));
    request.body = std::move(message.body());
    for (const auto& f : message) {
      request.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    request.remote = remote_;
    ++exchange_;
    state_ = State::Waiting;
    exchange_active_ = true;
    ++server_.active_;
    watch_for_disconnect(exchange_);
    auto channel = make_channel(exchange_);
    try {
      server_.handler_(std::move(request), channel);
    } catch (const std::exception& e) {
      log::warn("http: handler failed: {}", e.what());
      respond(exchange_, error_response(internal_error(e.what())));
    }
  }

  // A client that closes its socket while we compute is seen here: the socket turns readable and
  // a peek returns end-of-file. Bytes instead (a pipelined request) end the watch. The peek must
  // not block: a readiness with nothing to read left it waiting in poll() forever, on the I/O
  // thread, so no response of any session on that thread went out (seen once in
  // Server.RequestTimeoutEndsTheRequest). Then it re-arms the watch instead.
  void watch_for_disconnect(uint64_t exchange) {
    stream_.socket().async_wait(
        tcp::socket::wait_read,
        net::bind_executor(
            stream_.get_executor(), [self = shared_from_this(), exchange](beast::error_code ec) {
              if (ec || !self->current(exchange) || !self->exchange_active_) return;
              tcp::socket& socket = self->stream_.socket();
              char byte;
              beast::error_code peek_ec;
              socket.non_blocking(true, peek_ec);
              if (!peek_ec)
                socket.receive(net::buffer(&byte, 1), tcp::socket::message_peek, peek_ec);
              if (peek_ec == net::error::would_block) return self->watch_for_disconnect(exchange);
              if (peek_ec) self->close();
            }));
  }

  void reply_and_close(const ApiError& e) {
    keep_alive_ = false;
    ++exchange_;
    exchange_active_ = true;
    ++server_.active_;
    state_ = State::Done;
    enqueue(serialize_response(error_response(e), false));
  }

  void enqueue(std::string bytes) {
    pending_ += bytes;
    if (!writing_) do_write();
  }

  void do_write() {
    if (pending_.empty() || closed_) return;
    writing_ = true;
    out_.swap(pending_);
    pending_.clear();
    stream_.expires_after(std::chrono::seconds(server_.config_.write_timeout_s));
    net::async_write(
        stream_, net::buffer(out_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    out_.clear();
    if (ec) {
      close();
      return;
    }
    if (!pending_.empty()) {
      do_write();
      return;
    }
    stream_.expires_never();
    if (state_ == State::Done && exchange_active_) {
      exchange_active_ = false;
      on_disconnect_ = nullptr;
      --server_.active_;
      if (keep_alive()) {
        do_read();
      } else {
        close();
      }
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (exchange_active_) {
      exchange_active_ = false;
      --server_.active_;
      if (state_ != State::Done && on_disconnect_) {
        auto cb = std::move(on_disconnect_);
        cb();
      }
    }
    on_disconnect_ = nullptr;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  std::shared_ptr<ResponseChannel> make_channel(uint64_t exchange);

  HttpServer& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  uint64_t exchange_ = 0;
  State state_ = State::Reading;
  bool exchange_active_ = false;  // counted in server_.active_
  bool keep_alive_ = true;
  bool closed_ = false;
  bool writing_ = false;
  std::string pending_;  // bytes queued behind the write in flight
  std::string out_;      // bytes of the write in flight
  std::function<void()> on_disconnect_;
};

namespace {

class Channel final : public ResponseChannel {
 public:
  Channel(std::shared_ptr<Session> session, uint64_t exchange)
      : session_(std::move(session)), exchange_(exchange) {}

  void respond(HttpResponse response) override {
    net::dispatch(session_->executor(),
                  [s = session_, x = exchange_, r = std::move(response)]() mutable {
                    s->respond(x, std::move(r));
                  });
  }
  void start_stream(int status, std::string content_type) override {
    net::dispatch(session_->executor(),
                  [s = session_, x = exchange_, status, ct = std::move(content_type)] {
                    s->start_stream(x, status, ct);
                  });
  }
  void write(std::string data) override {
    net::dispatch(session_->executor(),
                  [s = session_, x = exchange_, d = std::move(data)] { s->write(x, d); });
  }
  void end_stream() override {
    net::dispatch(session_->executor(), [s = session_, x = exchange_] { s->end_stream(x); });
  }
  void on_disconnect(std::function<void()> callback) override {
    net::dispatch(session_->executor(),
                  [s = session_, x = exchange_, cb = std::move(callback)]() mutable {
                    s->set_disconnect(x, std::move(cb));
                  });
  }
  net::any_io_executor executor() override { return session_->executor(); }

 private:
  std::shared_ptr<Session> session_;
  uint64_t exchange_;
};

}  // namespace

std::shared_ptr<ResponseChannel> Session::make_channel(uint64_t exchange) {
  return std::make_shared<Channel>(shared_from_this(), exchange);
}

HttpServer::HttpServer(HttpConfig config, HttpHandler handler)
    : config_(std::move(config)), handler_(std::move(handler)), acceptor_(net::make_strand(io_)) {}

HttpServer::~HttpServer() {
  stop();
}

uint16_t HttpServer::bind() {
  beast::error_code ec;
  const auto address = net::ip::make_address(config_.host, ec);
  if (ec) {
    fail(
        "--host '{}' is not an IP address ({}); give one such as 127.0.0.1 (this machine only) or "
        "0.0.0.0 (every interface)",
        config_.host, ec.message());
  }
  const tcp::endpoint endpoint(address, config_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) fail("cannot open a TCP socket: {}", ec.message());
  // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT; on Linux it
  // does not allow two listeners on one port, so a real conflict is still reported below.
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec == net::error::address_in_use) {
    const std::string owner = describe_port_owner(config_.port);
    fail(
        "port {} on {} is already in use{}; stop that process or choose another port with --port "
        "(--port 0 picks a free one)",
        config_.port, config_.host,
        owner.empty() ? " (by a process this user cannot see)" : " by " + owner);
  }
  if (ec == net::error::access_denied) {
    fail(
        "binding {}:{} was refused ({}); ports below 1024 need privileges: choose --port 8000 or "
        "another port above 1023",
        config_.host, config_.port, ec.message());
  }
  if (ec) fail("cannot bind {}:{}: {}", config_.host, config_.port, ec.message());
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on {}:{}: {}", config_.host, config_.port, ec.message());
  return acceptor_.local_endpoint().port();
}

void HttpServer::start() {
  do_accept();
  const int n = std::max(1, config_.io_threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      auto guard = net::make_work_guard(io_);
      io_.run();
    });
  }
}

void HttpServer::do_accept() {
  acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      // EMFILE and friends: log and keep accepting (the connection that failed is lost, not the
      // server).
      log::warn("http: accept failed: {}", ec.message());
    } else {
      std::make_shared<Session>(*this, std::move(socket))->run();
    }
    if (acceptor_.is_open()) do_accept();
  });
}

void HttpServer::stop_accepting() {
  net::dispatch(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
}

void HttpServer::stop() {
  if (stopped_.exchange(true)) return;
  io_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace autoglm::server
