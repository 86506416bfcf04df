// UTF-8 validation and repair for detokenization. A token can end in the middle of a character
// (byte-level BPE splits multi-byte characters; SentencePiece falls back to <0xXX> byte tokens), so
// streamed text must hold such bytes back until the character completes, and bytes that can never
// form a character become U+FFFD, one per "maximal subpart" (Unicode 15 §3.9, U+FFFD substitution
// of maximal subparts: the practice of Python's `errors="replace"`, ICU and the WHATWG encoder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace autoglm::tokenizer {

enum class Utf8Kind { Valid, Incomplete, Invalid };

struct Utf8Step {
  Utf8Kind kind;
  size_t length;  // bytes of the character (Valid), of the prefix seen (Incomplete), or of the
                  // maximal ill-formed subpart to replace by one U+FFFD (Invalid); always >= 1
};

// Examines the character starting at s[0] (s must not be empty). Incomplete means s ends while the
// bytes so far are still a valid prefix of some character.
Utf8Step utf8_step(std::string_view s);

// Appends s to out with every ill-formed subpart replaced by U+FFFD. Unless `final`, stops before a
// trailing Incomplete sequence and returns its length (the caller keeps those bytes for later);
// with `final` an incomplete tail is ill-formed too and the return value is 0.
size_t utf8_repair_append(std::string_view s, bool final, std::string& out);

// s with every ill-formed subpart replaced by U+FFFD.
std::string utf8_repair(std::string_view s);

bool utf8_is_valid(std::string_view s);

void append_utf8(uint32_t code_point, std::string& out);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace autoglm::tokenizer
