// Who holds a TCP port: the answer to "address already in use" (issue 4: report the process that
// holds the port). Linux only: /proc/net/tcp{,6} map the listening port to a socket inode and
// /proc/<pid>/fd/* map the inode to a process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace autoglm::server {

struct PortOwner {
  int pid = 0;
  std::string command;  // command line, arguments separated by spaces
};

// The process with a socket listening on `port` (any address, IPv4 or IPv6), when this user may see
// it; nullopt otherwise.
std::optional<PortOwner> find_port_owner(uint16_t port);
// "pid 1234 (python3 -m http.server 8000)", or "" when unknown.
std::string describe_port_owner(uint16_t port);

}  // namespace autoglm::server
