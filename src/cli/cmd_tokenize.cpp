// autoglm tokenize (--model PATH | --tokenizer FILE) [--no-special] [--split-special] [--json] TEXT
// autoglm tokenize ... --input-file F [--jsonl]: one JSON array of ids per line of F, so that a
// test can tokenize 10,000 lines in one process (tests/js/tokenizer_corpus.mjs).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::cli {
namespace {

struct TokenizeFlags {
  std::string model;
  std::string tokenizer;
  std::string text;
  std::string input_file;
  bool no_special = false;
  bool split_special = false;
  bool json = false;
  bool jsonl = false;
};

std::vector<int32_t> encode(const tokenizer::Tokenizer& tok, const TokenizeFlags& f,
                            std::string_view text) {
  // HF semantics: special tokens written in the text are tokens (split_special_tokens=False),
  // and the post-processor's tokens are added (add_special_tokens=True).
  const bool parse_special = !f.split_special;
  return f.no_special ? tok.encode(text, parse_special)
                      : tok.encode_with_prefix(text, parse_special);
}

// Lines of `path` without their '\n'. With `jsonl` every line is a JSON string (so a text may
// hold newlines); otherwise the line's bytes are the text.
int run_file(const tokenizer::Tokenizer& tok, const TokenizeFlags& f) {
  std::ifstream in(f.input_file, std::ios::binary);
  if (!in) fail("cannot open --input-file '{}': check the path and its permissions", f.input_file);
  std::string line;
  std::string out;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string text = line;
    if (f.jsonl) {
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        fail("--input-file '{}' line {}: not JSON ({}); with --jsonl each line is a JSON string",
             f.input_file, line_no, e.what());
      }
      if (!value.is_string()) {
        fail("--input-file '{}' line {}: a JSON {}, expected a string", f.input_file, line_no,
             value.type_name());
      }
      text = value.get<std::string>();
    }
    out += nlohmann::json(encode(tok, f, text)).dump();
    out += '\n';
    if (out.size() > (1u << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run(const TokenizeFlags& f) {
  if (f.model.empty() == f.tokenizer.empty()) {
    fail("give exactly one of --model PATH (model folder or GGUF) and --tokenizer FILE");
  }
  if (!f.input_file.empty() && !f.text.empty()) fail("give either TEXT or --input-file, not both");
  if (f.jsonl && f.input_file.empty()) fail("--jsonl reads its texts from --input-file F");
  const auto tok = tokenizer::load_tokenizer(f.model.empty() ? f.tokenizer : f.model);
  if (!f.input_file.empty()) return run_file(*tok, f);

  const std::vector<int32_t> ids = encode(*tok, f, f.text);
  if (f.json) {
    nlohmann::json out;
    out["ids"] = ids;
    auto& pieces = out["pieces"] = nlohmann::json::array();
    // Pieces are the vocabulary's spelling (valid UTF-8 by construction of the byte alphabet).
    for (const int32_t id : ids) pieces.push_back(tok->token_piece(id));
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("%zu tokens (%s)\n", ids.size(), tok->description().c_str());
  for (const int32_t id : ids) {
    const std::string piece = nlohmann::json(tok->token_piece(id))
                                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::printf("%8d  %s\n", id, piece.c_str());
  }
  return 0;
}

}  // namespace

Action register_tokenize(CLI::App& app) {
  auto f = std::make_shared<TokenizeFlags>();
  app.add_option("--model", f->model, "Model folder (tokenizer.json or tokenizer.model) or GGUF");
  app.add_option("--tokenizer", f->tokenizer, "A tokenizer file: tokenizer.json, tokenizer.model");
  app.add_option("text", f->text, "Text to tokenize");
  app.add_option("--input-file", f->input_file,
                 "Tokenize every line of this file; prints one JSON array of ids per line");
  app.add_flag("--jsonl", f->jsonl, "With --input-file: every line is a JSON string");
  app.add_flag("--no-special", f->no_special,
               "Do not add the tokens the tokenizer puts before a text (e.g. [gMASK]<sop>)");
  app.add_flag("--split-special", f->split_special,
               "Treat special tokens written in the text (<|user|>) as ordinary text");
  app.add_flag("--json", f->json, "Print {\"ids\": [...], \"pieces\": [...]}");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
