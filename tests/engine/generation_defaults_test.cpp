// generation_config.json as sampling defaults: the Hugging Face keys taken, others ignored, a bad
// value a clear error, no file the OpenAI defaults.
#include "engine/generation_defaults.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace autoglm::engine {
namespace {
namespace fs = std::filesystem;

fs::path model_dir_with(const std::string& generation_config) {
  const fs::path dir =
      fs::temp_directory_path() /
      ("autoglm-gen-" +
       std::to_string(::testing::UnitTest::GetInstance()->current_test_info()->line()));
  fs::create_directories(dir);
  std::ofstream(dir / "generation_config.json") << generation_config;
  return dir;
}

TEST(GenerationDefaults, TakesTheHuggingFaceSamplingKeys) {
  const fs::path dir = model_dir_with(
      R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 40,
          "repetition_penalty": 1.2, "eos_token_id": [1, 2], "max_length": 128})");
  const GenerationDefaults g = read_generation_defaults(dir);
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(g.sampling.top_p, 0.95f);
  EXPECT_EQ(g.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(g.sampling.repetition_penalty, 1.2f);
  EXPECT_FLOAT_EQ(g.sampling.min_p, 0.0f);
  EXPECT_EQ(g.summary, "temperature 0.6, top_p 0.95, top_k 40, repetition_penalty 1.2");
  fs::remove_all(dir);
}

TEST(GenerationDefaults, NoFileMeansOpenAiDefaults) {
  const GenerationDefaults g = read_generation_defaults("/nonexistent/model.gguf");
  EXPECT_TRUE(g.source.empty());
  EXPECT_TRUE(g.summary.empty());
  EXPECT_FLOAT_EQ(g.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(g.sampling.repetition_penalty, 1.0f);
}

TEST(GenerationDefaults, BadValuesAreClearErrors) {
  const fs::path text = model_dir_with(R"({"temperature": "hot"})");
  try {
    read_generation_defaults(text);
    FAIL() << "a string temperature was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'temperature' must be a number"), std::string::npos)
        << e.what();
  }
  fs::remove_all(text);
  const fs::path range = model_dir_with(R"({"repetition_penalty": -1})");
  EXPECT_THROW(read_generation_defaults(range), Error);
  fs::remove_all(range);
  const fs::path broken = model_dir_with("{not json");
  EXPECT_THROW(read_generation_defaults(broken), Error);
  fs::remove_all(broken);
}

}  // namespace
}  // namespace autoglm::engine
