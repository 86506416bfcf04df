#include "tokenizer/chat_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "tokenizer/chat_text.h"

namespace autoglm::tokenizer {
namespace {

using chat::make_chatglm3;
using chat::make_glm4;
using chat::make_glm41v;
using chat::make_glm45;
using chat::make_glm4_0414;
using chat::make_glm_edge;

bool contains(std::string_view text, std::string_view marker) {
  return text.find(marker) != std::string_view::npos;
}

// The Jinja text of tokenizer_config["chat_template"]: a string, or a list of {name, template}
// (the "default" one, else the first).
std::string template_text(const nlohmann::json* tokenizer_config) {
  if (!tokenizer_config || !tokenizer_config->is_object()) return "";
  const auto it = tokenizer_config->find("chat_template");
  if (it == tokenizer_config->end()) return "";
  if (it->is_string()) return it->get<std::string>();
  std::string first;
  if (it->is_array()) {
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string())
        continue;
      if (entry.value("name", "") == "default") return entry["template"].get<std::string>();
      if (first.empty()) first = entry["template"].get<std::string>();
    }
  }
  return first;
}

// The format a template's text asks for, from markers each official GLM template has and the
// others lack; "" when none matches.
std::string format_of_template(std::string_view t) {
  if (contains(t, "<arg_key>")) return "glm4.5";  // GLM-4.5/4.6 (and 4.5V) XML tool calls
  if (contains(t, "[gMASK]sop")) return "chatglm3";
  if (!contains(t, "[gMASK]")) return contains(t, "<|user|>") ? "glm-edge" : "";
  if (contains(t, "<|begin_of_image|>")) return "glm4.1v";
  if (contains(t, "message.get(\"metadata\"")) {  // GLM-4-0414 family
    return contains(t, "<think>") ? "glm-z1" : "glm4-0414";
  }
  if (contains(t, "item['metadata']")) return "glm4";  // glm-4-9b-chat
  return "";
}

// The format `model_type` implies, or "" for a model that is not a GLM chat model.
std::string format_of_config(const nlohmann::json& config, std::string* detail) {
  const std::string type = config.value("model_type", "");
  const auto vocab = config.contains("padded_vocab_size")
                         ? config["padded_vocab_size"]
                         : config.value("vocab_size", nlohmann::json());
  const int64_t n_vocab = vocab.is_number_integer() ? vocab.get<int64_t>() : 0;
  *detail = fmt::format("model_type {}", type.empty() ? "(none)" : type);
  // GLM-4 vocabularies have 151552 rows, ChatGLM3's 65024, GLM-Edge's 59264 (G.1-G.3).
  if (type == "chatglm") return n_vocab > 0 && n_vocab < 100000 ? "chatglm3" : "glm4";
  if (type == "glm") return n_vocab > 0 && n_vocab < 100000 ? "glm-edge" : "glm4";
  if (type == "glm4") return "glm4-0414";  // GLM-Z1 differs only by its template
  if (type == "glm4v") return "glm4.1v";
  if (type == "glm4_moe" || type == "glm4v_moe") return "glm4.5";
  return "";
}

}  // namespace

std::vector<std::string> chat_format_names() {
  return {"glm4", "glm4-0414", "glm-z1", "glm4.1v", "glm4.5", "glm-edge", "chatglm3"};
}

std::unique_ptr<ChatFormat> chat_format_named(std::string_view name) {
  if (name == "glm4") return make_glm4();
  if (name == "glm4-0414") return make_glm4_0414(false);
  if (name == "glm-z1") return make_glm4_0414(true);
  if (name == "glm4.1v") return make_glm41v();
  if (name == "glm4.5") return make_glm45();
  if (name == "glm-edge") return make_glm_edge();
  if (name == "chatglm3") return make_chatglm3();
  fail("unknown chat format '{}'; the built-in formats are: {}", name,
       fmt::join(chat_format_names(), ", "));
}

std::unique_ptr<ChatFormat> chat_format_for_model(const nlohmann::json& config,
                                                  const nlohmann::json* tokenizer_config,
                                                  std::string* why) {
  std::string detail;
  const std::string by_config = config.is_object() ? format_of_config(config, &detail) : "";
  const std::string jinja = template_text(tokenizer_config);
  const std::string by_template = format_of_template(jinja);
  std::string chosen = by_template.empty() ? by_config : by_template;
  std::string reason;
  if (chosen.empty()) {
    reason = fmt::format(
        "no GLM chat format for this model ({}){}: chat requests need a GLM "
        "model; plain completions take the prompt as it is",
        detail.empty() ? "no config" : detail,
        jinja.empty() ? "" : " and its chat_template has no GLM markers");
  } else if (jinja.empty()) {
    reason = fmt::format("chat format {} (from {}; no chat_template in the model directory)",
                         chosen, detail);
  } else {
    reason = fmt::format(
        "chat format {} (from {}{}); the model's Jinja chat_template is not executed: the "
        "built-in {} format is used instead{}",
        chosen, by_template.empty() ? detail : "the markers of its chat_template",
        by_template.empty() || by_config.empty() || by_config == by_template
            ? ""
            : fmt::format(", which overrides {} from {}", by_config, detail),
        chosen,
        by_template.empty() ? ", because the template matches none of the GLM templates we know"
                            : "");
  }
  if (why) *why = reason;
  return chosen.empty() ? nullptr : chat_format_named(chosen);
}

}  // namespace autoglm::tokenizer
