#include "server/auth.h"

#include <sys/stat.h>

#include <fstream>

#include "core/error.h"

namespace autoglm::server {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // The length of the key is not a secret worth hiding; its bytes are.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  // Read through a volatile so the compiler cannot stop at the first difference.
  volatile unsigned char result = diff;
  return result == 0;
}

bool bearer_matches(std::string_view authorization, std::string_view key) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() < scheme.size()) return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != scheme[i]) return false;
  }
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return constant_time_equal(token, key);
}

std::string read_api_key_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    fail(
        "--api-key-file {}: cannot read it (missing or no permission); create it with "
        "`umask 077; echo KEY > {}`",
        path.string(), path.string());
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    fail(
        "--api-key-file {} is readable by other users (mode {:o}); run `chmod 600 {}` so only its "
        "owner can read the key",
        path.string(), st.st_mode & 0777, path.string());
  }
  std::ifstream in(path);
  std::string key;
  std::getline(in, key);
  const auto first = key.find_first_not_of(" \t\r\n");
  const auto last = key.find_last_not_of(" \t\r\n");
  key = first == std::string::npos ? std::string() : key.substr(first, last - first + 1);
  if (key.empty()) fail("--api-key-file {} holds no key on its first line", path.string());
  return key;
}

}  // namespace autoglm::server
