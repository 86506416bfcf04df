// Hugging Face `tokenizer.json` (the `tokenizers` library's serialized form) for the byte-level BPE
// files GLM-4-0414, GLM-4.5, Qwen2/Qwen3 and Llama 3 ship. Supported components, exactly:
//   normalizer      null, NFC, NFD, NFKC, NFKD, Sequence of these
//   pre_tokenizer   ByteLevel(add_prefix_space, use_regex), Split(Regex|String, Isolated),
//                   Sequence of these (a ByteLevel step is required: it is what makes BPE
//                   byte-level)
//   model           BPE: vocab, merges ("a b" strings or [a, b] pairs), ignore_merges
//   added_tokens    special (Control: matched only when parse_special) or not (UserDefined: always
//                   matched), never split; lstrip/rstrip/single_word are rejected (see .cpp)
//   post_processor  null, ByteLevel, TemplateProcessing (tokens before $A -> special().prefix),
//                   Sequence of these
//   decoder         null, ByteLevel, Sequence of ByteLevel
// Anything else is an Error naming the component, never a silent approximation.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {

// The files beside tokenizer.json that name bos/eos/pad and the ids that end a generation; either
// may be null.
struct HfSideFiles {
  const nlohmann::json* tokenizer_config = nullptr;   // tokenizer_config.json
  const nlohmann::json* generation_config = nullptr;  // generation_config.json (eos_token_id)
};

// A tokenizer.json file; reads tokenizer_config.json and generation_config.json from the same
// folder when they exist.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& tokenizer_json);

// The same from parsed JSON; `source` names the file in messages.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const nlohmann::json& root,
                                                  const std::string& source,
                                                  const HfSideFiles& side = {});

}  // namespace autoglm::tokenizer
