#include "tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "tokenizer/utf8.h"

namespace autoglm::tokenizer {
namespace {

bool prints_as_itself(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

struct Alphabet {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // every code point used is below 256 + 68

  Alphabet() {
    cp_to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      byte_to_cp[b] = prints_as_itself(b) ? static_cast<uint32_t>(b) : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

std::string bytes_to_unicode(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) append_utf8(a.byte_to_cp[static_cast<uint8_t>(c)], out);
  return out;
}

std::vector<std::string> byte_level_alphabet() {
  std::vector<std::string> out;
  out.reserve(256);
  for (int b = 0; b < 256; ++b)
    out.push_back(bytes_to_unicode(std::string(1, static_cast<char>(b))));
  return out;
}

std::optional<std::string> unicode_to_bytes(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text.substr(pos));
    if (step.kind != Utf8Kind::Valid || step.length > 2) return std::nullopt;
    uint32_t cp = static_cast<uint8_t>(text[pos]);
    if (step.length == 2) cp = ((cp & 0x1F) << 6) | (static_cast<uint8_t>(text[pos + 1]) & 0x3F);
    if (cp >= a.cp_to_byte.size() || a.cp_to_byte[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(a.cp_to_byte[cp]));
    pos += step.length;
  }
  return out;
}

}  // namespace autoglm::tokenizer
