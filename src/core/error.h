// Errors in three tiers (STYLE.md 12): `Error` for anything a user can cause or meet (bad file, bad
// flag, bad request), carrying one message that says what failed, why and what to do; asserts
// (`AUTOGLM_ASSERT`) for programmer invariants only.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

namespace autoglm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws an Error whose message is formatted with fmt.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

[[noreturn]] inline void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
  std::abort();
}

}  // namespace autoglm

#define AUTOGLM_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::autoglm::assert_failed(#expr, __FILE__, __LINE__))
