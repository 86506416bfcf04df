#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace autoglm::tokenizer {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special, bool at_text_start)
    : tokenizer_(&tokenizer),
      skip_special_(skip_special),
      strip_space_(at_text_start && tokenizer.strips_leading_space()) {}

std::string StreamDecoder::push(int32_t id) {
  const std::string bytes = tokenizer_->token_bytes(id, skip_special_);
  if (bytes.empty()) return {};
  if (pending_.empty()) return emit(bytes, false);
  std::string joined = std::move(pending_);
  pending_.clear();
  joined += bytes;
  return emit(joined, false);
}

std::string StreamDecoder::finish() {
  std::string joined = std::move(pending_);
  pending_.clear();
  std::string out = emit(joined, true);
  strip_space_ = false;
  return out;
}

std::string StreamDecoder::emit(std::string_view bytes, bool final) {
  if (strip_space_ && !bytes.empty()) {
    // SentencePiece's decoder strips one space from the start of the whole text (HF `Strip`
    // decoder, llama.cpp `llama_detokenize`): it is the space the encoder added.
    if (bytes.front() == ' ') bytes.remove_prefix(1);
    strip_space_ = false;
  }
  std::string out;
  const size_t held = utf8_repair_append(bytes, final, out);
  pending_.assign(bytes.substr(bytes.size() - held));
  return out;
}

}  // namespace autoglm::tokenizer
