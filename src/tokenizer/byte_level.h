// GPT-2's reversible byte <-> unicode alphabet (openai/gpt-2 `encoder.py` bytes_to_unicode, used by
// every HF byte-level BPE and by GGUF `gpt2` vocabularies): printable bytes 33..126, 161..172 and
// 174..255 stand for themselves; the other 68 bytes map, in byte order, to U+0100, U+0101, ...
// (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace autoglm::tokenizer {

// The unicode spelling of raw bytes.
std::string bytes_to_unicode(std::string_view bytes);
// Raw bytes of a unicode spelling; nullopt when it holds a character outside the alphabet.
std::optional<std::string> unicode_to_bytes(std::string_view text);
// The spelling of each byte 0..255 alone: a byte-level vocabulary's 256 byte tokens.
std::vector<std::string> byte_level_alphabet();

}  // namespace autoglm::tokenizer
