// Unicode normalization for HF `tokenizer.json` normalizers (NFC: Qwen2/Qwen3; NFD, NFKC, NFKD for
// completeness), through utf8proc (a maintained implementation of UAX #15). Our encoder accepts
// any bytes, Hugging Face only valid UTF-8: bytes that are not valid UTF-8 pass through unchanged,
// and only the valid runs between them are normalized.
#pragma once

#include <string>
#include <string_view>

namespace autoglm::tokenizer {

enum class NormalForm { NFC, NFD, NFKC, NFKD };

// `text` in normal form `form`. Throws Error only if utf8proc fails (out of memory).
std::string normalize_unicode(std::string_view text, NormalForm form);

}  // namespace autoglm::tokenizer
