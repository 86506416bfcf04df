#include "server/port_owner.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <fmt/format.h>

namespace autoglm::server {
namespace {

namespace fs = std::filesystem;

// Socket inodes listening on `port`. Each line of /proc/net/tcp is
// "sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode ...", addresses as
// HEXIP:HEXPORT and st 0A = TCP_LISTEN (include/net/tcp_states.h).
std::set<std::string> listening_inodes(uint16_t port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local, remote, st, queues, timer, retransmits, uid, timeout, inode;
      if (!(fields >> sl >> local >> remote >> st >> queues >> timer >> retransmits >> uid >>
            timeout >> inode)) {
        continue;
      }
      const auto colon = local.rfind(':');
      if (colon == std::string::npos || st != "0A") continue;
      if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) inodes.insert(inode);
    }
  }
  return inodes;
}

std::string read_cmdline(const fs::path& dir) {
  std::ifstream in(dir / "cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) {
    if (c == '\0') c = ' ';
  }
  if (raw.empty()) {  // kernel threads and zombies: fall back to the short name
    std::ifstream comm(dir / "comm");
    std::getline(comm, raw);
  }
  return raw;
}

}  // namespace

std::optional<PortOwner> find_port_owner(uint16_t port) {
  const std::set<std::string> inodes = listening_inodes(port);
  if (inodes.empty()) return std::nullopt;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code fd_ec;
    for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      const std::string target = fs::read_symlink(fd.path(), link_ec).string();
      // "socket:[12345]"
      if (link_ec || target.rfind("socket:[", 0) != 0) continue;
      if (inodes.count(target.substr(8, target.size() - 9))) {
        return PortOwner{std::atoi(name.c_str()), read_cmdline(proc.path())};
      }
    }
  }
  return std::nullopt;
}

std::string describe_port_owner(uint16_t port) {
  const auto owner = find_port_owner(port);
  if (!owner) return {};
  return fmt::format("pid {} ({})", owner->pid, owner->command);
}

}  // namespace autoglm::server
