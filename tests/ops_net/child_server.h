// Starts one of the Python fixture servers in tests/fake_hub/ on 127.0.0.1 with a port the kernel
// picks (the script prints "PORT <n>"), and kills it when the object goes out of scope.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace autoglm::testing {

std::filesystem::path fake_hub_dir();  // tests/fake_hub, found from this source file's path

class ChildServer {
 public:
  explicit ChildServer(const std::vector<std::string>& argv);
  ~ChildServer();
  ChildServer(const ChildServer&) = delete;
  ChildServer& operator=(const ChildServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A port nothing listens on (bound, then closed): connecting to it is refused at once.
int dead_port();

}  // namespace autoglm::testing
