// API keys: `Authorization: Bearer KEY` on every route but /health. The comparison takes the same
// time whatever the first differing byte, so response timing does not leak the key.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace autoglm::server {

bool constant_time_equal(std::string_view a, std::string_view b);

// True when `authorization` is "Bearer <key>" (scheme case-insensitive, RFC 6750 2.1).
bool bearer_matches(std::string_view authorization, std::string_view key);

// The key in a file (first line, surrounding whitespace removed). Throws Error when the file is
// missing, empty, or readable by group or others (a key that any local user can read is no key).
std::string read_api_key_file(const std::filesystem::path& path);

}  // namespace autoglm::server
