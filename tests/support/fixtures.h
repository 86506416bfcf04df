// Where the shared reference fixtures are. Tests that need them call `fixtures_dir()`, which fails
// the test loudly (not a skip) when the directory is absent, because CI always has it.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace autoglm::testing {

// $AUTOGLM_FIXTURES, else the path CMake was configured with (AUTOGLM_FIXTURES_DIR).
// Throws std::runtime_error naming both places if neither exists.
std::filesystem::path fixtures_dir();

nlohmann::json read_json(const std::filesystem::path& path);

// A fresh empty directory under the system temp dir, removed at process exit.
std::filesystem::path temp_dir(const std::string& tag);

// max |a - b| over equal-length vectors.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace autoglm::testing
