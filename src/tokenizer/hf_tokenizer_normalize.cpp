#include "tokenizer/hf_tokenizer_normalize.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace autoglm::tokenizer {
namespace {

utf8proc_option_t options_of(NormalForm form) {
  // UTF8PROC_STABLE: no composition of unassigned code points (UAX #15 stability).
  const int base = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::NFC:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_COMPOSE);
    case NormalForm::NFD:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_DECOMPOSE);
    case NormalForm::NFKC:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case NormalForm::NFKD:
      return static_cast<utf8proc_option_t>(base | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return static_cast<utf8proc_option_t>(base);
}

void normalize_valid_run(std::string_view run, utf8proc_option_t options, std::string& out) {
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                   static_cast<utf8proc_ssize_t>(run.size()), &mapped, options);
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (n < 0) {
    fail("Unicode normalization of a {}-byte text failed: {}", run.size(), utf8proc_errmsg(n));
  }
  out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
}

bool is_ascii(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string normalize_unicode(std::string_view text, NormalForm form) {
  // ASCII is invariant under all four forms (the common case: code, English).
  if (is_ascii(text)) return std::string(text);
  const utf8proc_option_t options = options_of(form);
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t run_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text.substr(pos));
    if (step.kind == Utf8Kind::Valid) {
      pos += step.length;
      continue;
    }
    // Ill-formed (or truncated) bytes end the run and are kept as they are.
    if (pos > run_start) normalize_valid_run(text.substr(run_start, pos - run_start), options, out);
    out.append(text.substr(pos, step.length));
    pos += step.length;
    run_start = pos;
  }
  if (pos > run_start) normalize_valid_run(text.substr(run_start, pos - run_start), options, out);
  return out;
}

}  // namespace autoglm::tokenizer
