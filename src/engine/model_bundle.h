// A model as a user points at it: weights, tokenizer and chat format, loaded together from one
// path (a Hugging Face directory or a GGUF file), with the chat-format choice explained.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/model.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::engine {

struct ModelBundle {
  std::unique_ptr<models::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<tokenizer::ChatFormat> chat;  // null: the model takes raw prompts
  std::string chat_why;                         // which chat format and why, for the start-up log

  // Every id that ends a reply: the model's eos ids and the tokenizer's stop ids.
  std::vector<int32_t> stop_ids() const;
  // Token ids of a chat conversation (rendered by the chat format) or, without a chat format, of
  // the text of the last message with the tokenizer's usual prefix (e.g. BOS).
  std::vector<int32_t> encode_chat(const std::vector<tokenizer::ChatMessage>& messages,
                                   const tokenizer::ChatOptions& options) const;
  // A raw completion prompt: the tokenizer's prefix (BOS, [gMASK]<sop>) then the text.
  std::vector<int32_t> encode_completion(const std::string& text) const;
};

// Throws Error when the weights, the tokenizer or the chat format cannot be loaded.
// `tokenizer_path` (optional) loads the tokenizer from elsewhere: a GGUF without a vocabulary
// (e.g. from `autoglm synth`) or a directory/tokenizer file of the same model family.
ModelBundle load_model_bundle(const std::filesystem::path& path, const models::LoadOptions& options,
                              ThreadPool& pool, const std::filesystem::path& tokenizer_path = {});

}  // namespace autoglm::engine
