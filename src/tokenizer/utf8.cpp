#include "tokenizer/utf8.h"

namespace autoglm::tokenizer {
namespace {

struct LeadInfo {
  int length;         // bytes of the character; 0 for a byte that cannot start one
  uint8_t second_lo;  // allowed range of the second byte (Unicode Table 3-7)
  uint8_t second_hi;
};

// Table 3-7 of the Unicode standard: E0 and F0 exclude overlong forms, ED excludes surrogates,
// F4 stops at U+10FFFF; C0, C1 and F5..FF never occur.
LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

Utf8Step utf8_step(std::string_view s) {
  const auto lead = static_cast<uint8_t>(s[0]);
  const LeadInfo info = lead_info(lead);
  if (info.length == 0) return {Utf8Kind::Invalid, 1};
  for (int i = 1; i < info.length; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return {Utf8Kind::Incomplete, static_cast<size_t>(i)};
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t lo = i == 1 ? info.second_lo : 0x80;
    const uint8_t hi = i == 1 ? info.second_hi : 0xBF;
    if (b < lo || b > hi) return {Utf8Kind::Invalid, static_cast<size_t>(i)};
  }
  return {Utf8Kind::Valid, static_cast<size_t>(info.length)};
}

size_t utf8_repair_append(std::string_view s, bool final, std::string& out) {
  size_t pos = 0;
  while (pos < s.size()) {
    // Fast path: runs of ASCII, the bulk of most text.
    size_t run = pos;
    while (run < s.size() && static_cast<uint8_t>(s[run]) < 0x80) ++run;
    out.append(s.substr(pos, run - pos));
    pos = run;
    if (pos == s.size()) break;
    const Utf8Step step = utf8_step(s.substr(pos));
    switch (step.kind) {
      case Utf8Kind::Valid:
        out.append(s.substr(pos, step.length));
        break;
      case Utf8Kind::Invalid:
        out.append(kReplacementChar);
        break;
      case Utf8Kind::Incomplete:
        if (!final) return s.size() - pos;
        out.append(kReplacementChar);
        break;
    }
    pos += step.length;
  }
  return 0;
}

std::string utf8_repair(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  utf8_repair_append(s, true, out);
  return out;
}

bool utf8_is_valid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Step step = utf8_step(s.substr(pos));
    if (step.kind != Utf8Kind::Valid) return false;
    pos += step.length;
  }
  return true;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace autoglm::tokenizer
