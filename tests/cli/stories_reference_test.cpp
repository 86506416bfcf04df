// The TinyStories model end to end against an independent reference: tools/llama2c_reference.py
// runs the ORIGINAL llama2.c checkpoint (stories260K.bin + tok512.bin) in pure Python; we run the
// GGUF conversion of the same model through our tokenizer, engine and streaming detokenizer.
// Greedy: the tokens must be identical, and so must the text.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

std::string capture(const std::string& cmd, int* exit_code) {
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::vector<int> ints(const std::string& s) {
  std::vector<int> v;
  std::istringstream in(s);
  int x;
  while (in >> x) v.push_back(x);
  return v;
}

TEST(StoriesReference, GreedyStoryMatchesTheOriginalCheckpoint) {
  const auto dir = fixtures_dir() / "stories260K";
  const std::string prompt = "Once upon a time";
  const int steps = 200;
  int code = 0;
  const std::string ref =
      capture("python3 " + std::string(AUTOGLM_SOURCE_DIR) + "/tools/llama2c_reference.py " +
                  (dir / "stories260K.bin").string() + " " + (dir / "tok512.bin").string() + " '" +
                  prompt + "' " + std::to_string(steps),
              &code);
  ASSERT_EQ(code, 0) << ref;
  const size_t bar = ref.find(" | "), nl = ref.find('\n');
  ASSERT_NE(bar, std::string::npos);
  const std::vector<int> prompt_ids = ints(ref.substr(0, bar));
  const std::vector<int> ref_ids = ints(ref.substr(bar + 3, nl - bar - 3));
  std::string ref_text = ref.substr(nl + 1);
  if (!ref_text.empty() && ref_text.back() == '\n') ref_text.pop_back();
  ASSERT_GE(ref_ids.size(), 50u) << "the reference story is too short to test anything";

  // Our tokenizer must produce llama2.c's prompt ids; our engine the same continuation.
  std::string ids_arg;
  for (int id : prompt_ids) {
    if (!ids_arg.empty()) ids_arg += ',';
    ids_arg += std::to_string(id);
  }
  const std::string bin = AUTOGLM_BIN_DEFAULT;
  const std::string model = (dir / "stories260K.gguf").string();
  const std::string ours_ids =
      capture(bin + " --log-level warn run --model " + model + " --tokens " + ids_arg + " -n " +
                  std::to_string(ref_ids.size()) + " --temperature 0 --ignore-eos",
              &code);
  ASSERT_EQ(code, 0) << ours_ids;
  EXPECT_EQ(ints(ours_ids), ref_ids);

  const std::string ours_text =
      capture(bin + " --log-level warn run --model " + model + " -n " +
                  std::to_string(ref_ids.size()) + " --temperature 0 --ignore-eos '" + prompt + "'",
              &code);
  ASSERT_EQ(code, 0) << ours_text;
  std::string reply = ours_text;
  if (!reply.empty() && reply.back() == '\n') reply.pop_back();
  EXPECT_EQ(prompt + reply, ref_text);
  // Read by a person: the first sentences are grammatical English about a girl named Lily.
  const std::string opening =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park. "
      "One day,";
  EXPECT_EQ(ref_text.substr(0, opening.size()), opening);
}

}  // namespace
}  // namespace autoglm::testing
