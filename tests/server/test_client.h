// A blocking HTTP/1.1 client for server tests (Beast, synchronous), plus the in-process server
// harness: FakeService + the GGUF fixture's tokenizer + the glm4 chat format, on port 0.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fake_service.h"
#include "server/server.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::testing {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-case
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

ClientResponse http_call(uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = "", const Headers& headers = {});
ClientResponse post_json(uint16_t port, const std::string& target, const nlohmann::json& body,
                         const Headers& headers = {});

// The JSON payloads of "data: ..." events, without [DONE]; `done` tells whether [DONE] came last.
std::vector<nlohmann::json> sse_events(const std::string& body, bool* done);

// Sends raw bytes and returns what came back until the server closed or `timeout_ms` passed.
std::string raw_exchange(uint16_t port, const std::string& bytes, int timeout_ms = 2000);

const tokenizer::Tokenizer& fixture_tokenizer();

// Defaults for tests: no signal handling (the test process keeps its own), short drain.
server::ServerConfig test_config();

class Harness {
 public:
  explicit Harness(server::ServerConfig config = test_config(), bool start = true);
  ~Harness();
  void start();
  int stop();  // request_stop + join; returns run()'s exit code

  FakeService service;
  std::unique_ptr<tokenizer::ChatFormat> format;
  std::unique_ptr<server::Server> server;
  uint16_t port = 0;

 private:
  std::thread thread_;
  int exit_code_ = -1;
  bool running_ = false;
};

}  // namespace autoglm::testing
