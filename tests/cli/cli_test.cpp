// The real `autoglm` binary, as a user runs it: outputs, exit codes and error messages.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/fixtures.h"

namespace autoglm::testing {
namespace {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
  std::string stdout_only;
};

std::string binary() {
  const char* bin = std::getenv("AUTOGLM_BIN");
  return bin && *bin ? bin : AUTOGLM_BIN_DEFAULT;
}

Result run(const std::string& args) {
  Result r;
  const auto err_file = temp_dir("cli") / "stderr.txt";
  const std::string cmd = binary() + " " + args + " 2>" + err_file.string();
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    r.stdout_only.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_file);
  std::stringstream ss;
  ss << err.rdbuf();
  r.out = r.stdout_only + ss.str();
  return r;
}

std::vector<int> ids_of(const std::string& line) {
  std::vector<int> ids;
  std::istringstream in(line);
  int v;
  while (in >> v) ids.push_back(v);
  return ids;
}

std::string stories() {
  return (fixtures_dir() / "stories260K" / "stories260K.gguf").string();
}

// stories260K (a trained TinyStories model) greedy from BOS. These ids decode, with the GGUF's own
// vocabulary, to " Once upon a time, there was a little girl named Lily. She loved to play
// outside in the park." (checked by hand: every piece joins into grammatical English, which random
// or wrongly computed weights do not produce).
const std::vector<int> kStoryStart = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                                      421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408};

TEST(Cli, RunPrintsGreedyStoryIds) {
  const Result r = run("run --model " + stories() + " --tokens 1 -n 22 --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ids_of(r.stdout_only), kStoryStart);
}

// The KV cache in f16 (the default) or f32 tells the same story; any other type is refused.
TEST(Cli, KvTypeF16AndF32GiveTheSameGreedyStory) {
  for (const char* type : {"f16", "f32"}) {
    const Result r =
        run("run --model " + stories() + " --tokens 1 -n 22 --temperature 0 --kv-type " + type);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(ids_of(r.stdout_only), kStoryStart) << type;
  }
  const Result bad = run("run --model " + stories() + " --tokens 1 --kv-type bf16");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("bf16 not in {f16,f32}"), std::string::npos) << bad.out;
}

TEST(Cli, RunIsDeterministicForASeed) {
  const std::string args =
      "run --model " + stories() + " --tokens 1 -n 30 --temperature 0.8 --top-p 0.9 --seed 7";
  const Result a = run(args), b = run(args);
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.stdout_only, b.stdout_only);
  const Result c =
      run("run --model " + stories() + " --tokens 1 -n 30 --temperature 0.8 --top-p 0.9 --seed 8");
  EXPECT_NE(a.stdout_only, c.stdout_only);
}

// Issue 7: with no --model, `run` loads the embedded model (models/autoglm-mini, found next to the
// executable: build/../models) and answers in its chat format; AUTOGLM_MODEL comes before it.
TEST(Cli, RunWithoutModelUsesTheEmbeddedModel) {
  unsetenv("AUTOGLM_MODEL");
  const Result r = run("run -n 80 --temperature 0 'Quote John 3:16.'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("the embedded model, found "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chat format glm4-0414"), std::string::npos) << r.out;
  std::istringstream words(r.stdout_only);
  int n = 0;
  for (std::string w; words >> w;) n += 1;
  EXPECT_GE(n, 10) << r.stdout_only;
}

TEST(Cli, AutoglmModelEnvComesBeforeTheEmbeddedModel) {
  setenv("AUTOGLM_MODEL", stories().c_str(), 1);
  const Result r = run("run --tokens 1 -n 22 --temperature 0");
  unsetenv("AUTOGLM_MODEL");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("from AUTOGLM_MODEL"), std::string::npos) << r.out;
  EXPECT_EQ(ids_of(r.stdout_only), kStoryStart);
}

// AUTOGLM_PREFETCH overrides the CPU's prefetch level; a value that names no level is refused with
// the ones that do, before any work.
TEST(Cli, UnknownPrefetchLevelIsAClearError) {
  setenv("AUTOGLM_PREFETCH", "l3", 1);
  const Result r = run("run --model " + stories() + " --tokens 1 -n 2 --temperature 0");
  setenv("AUTOGLM_PREFETCH", "l2", 1);
  const Result ok = run("run --model " + stories() + " --tokens 1 -n 2 --temperature 0");
  unsetenv("AUTOGLM_PREFETCH");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("AUTOGLM_PREFETCH=l3 is not a cache level: use l1 or l2"), std::string::npos)
      << r.out;
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
}

TEST(Cli, LogitsJsonHasEveryPosition) {
  const Result r = run("logits --model " + stories() + " --tokens 1,403,407 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.stdout_only);
  ASSERT_EQ(j["logits"].size(), 3u);
  EXPECT_EQ(j["logits"][0].size(), 512u);
  // Greedy after BOS is 403 (see kStoryStart): the argmax of the first row.
  const auto row = j["logits"][0].get<std::vector<float>>();
  EXPECT_EQ(std::max_element(row.begin(), row.end()) - row.begin(), 403);
}

TEST(Cli, SynthThenRunForEveryArchitecture) {
  const auto dir = temp_dir("synth");
  const std::vector<std::string> fixtures = {"glm", "glm4", "glm4_moe", "llama", "chatglm"};
  for (const std::string& fixture : fixtures) {
    const auto config = fixtures_dir() / "hf-tiny" / fixture / "config.json";
    for (const std::string& out :
         {(dir / (fixture + ".gguf")).string(), (dir / fixture).string()}) {
      const std::string dtype = out.ends_with(".gguf") ? "q8_0" : "bf16";
      const Result s =
          run("synth --config " + config.string() + " --dtype " + dtype + " --out " + out);
      ASSERT_EQ(s.exit_code, 0) << s.out;
      const Result g =
          run("run --model " + out + " --tokens 3,4,5 -n 4 --temperature 0 --ignore-eos");
      ASSERT_EQ(g.exit_code, 0) << fixture << ": " << g.out;
      EXPECT_EQ(ids_of(g.stdout_only).size(), 4u) << g.out;
    }
  }
}

// --byte-vocab: a tokenizer with one token per byte, so that text (and readers that insist on a
// vocabulary, such as llama.cpp) can use a synthetic model.
TEST(Cli, SynthByteVocabTokenizesBytes) {
  const auto dir = temp_dir("synth_vocab");
  auto config =
      nlohmann::json::parse(std::ifstream(fixtures_dir() / "hf-tiny" / "glm4" / "config.json"));
  const int eos = config["eos_token_id"].get<int>();  // 254: the bytes shift past it
  config["vocab_size"] = 300;
  std::ofstream(dir / "config.json") << config.dump();
  const std::string out = (dir / "m.gguf").string();
  const Result s = run("synth --byte-vocab --dtype q8_0 --config " +
                       (dir / "config.json").string() + " --out " + out);
  ASSERT_EQ(s.exit_code, 0) << s.out;
  EXPECT_NE(s.out.find("placeholder byte vocabulary"), std::string::npos) << s.out;

  // Byte b's id is b below the eos id and b + 1 from it on: "a" is 97, 0xff 256.
  const Result t = run("tokenize --model " + out + " \"$(printf 'a\\377')\"");
  ASSERT_EQ(t.exit_code, 0) << t.out;
  EXPECT_NE(t.stdout_only.find("2 tokens"), std::string::npos) << t.out;
  EXPECT_NE(t.stdout_only.find(" 97  \"a\""), std::string::npos) << t.out;
  EXPECT_NE(t.stdout_only.find(" 256  \""), std::string::npos) << t.out;
  ASSERT_LT(eos, 255);
  const Result g = run("run --model " + out + " --raw hello -n 3 --temperature 0 --ignore-eos");
  EXPECT_EQ(g.exit_code, 0) << g.out;

  // Too small a vocabulary for 256 bytes and the eos token: said, and nothing written.
  config["vocab_size"] = 256;
  std::ofstream(dir / "small.json") << config.dump();
  const std::string small = (dir / "small.gguf").string();
  const Result e = run("synth --byte-vocab --config " + (dir / "small.json").string() +
                       " --dtype q8_0 --out " + small);
  EXPECT_EQ(e.exit_code, 1) << e.out;
  EXPECT_NE(e.out.find("at least 257 tokens"), std::string::npos) << e.out;
  EXPECT_FALSE(std::filesystem::exists(small));
}

// --bf16-values: weights rounded to bf16 before they are stored in --dtype, as a file converted
// from a bf16 release holds them; f16 matrices of such values are packed and run as bf16 at load.
TEST(Cli, SynthBf16ValuesGivesF16ThatRunsAsBf16) {
  const auto dir = temp_dir("synth_bf16_values");
  const auto config = fixtures_dir() / "hf-tiny" / "glm4" / "config.json";
  for (const bool bf16_values : {true, false}) {
    const std::string out = (dir / (bf16_values ? "bf16_values.gguf" : "plain.gguf")).string();
    const Result s = run("synth --dtype f16 --config " + config.string() + " --out " + out +
                         (bf16_values ? " --bf16-values" : ""));
    ASSERT_EQ(s.exit_code, 0) << s.out;
    const Result g = run("--log-level info run --model " + out +
                         " --tokens 3,4,5 -n 2 --temperature 0 --ignore-eos");
    ASSERT_EQ(g.exit_code, 0) << g.out;
    if (g.out.find("repacked") == std::string::npos) continue;  // kernels that do not repack
    EXPECT_EQ(g.out.find("f16 matrices hold only bf16 values") != std::string::npos, bf16_values)
        << g.out;
  }
}

// bf16 weights take bf16 activations by default where the CPU has the bf16 dot product (AVX-512
// BF16), and the load line says so; --activations f32 keeps every matmul in f32; an unknown
// choice, or --bf16-activations beside --activations, is refused before any work.
TEST(Cli, ActivationsDefaultToBf16ForBf16WeightsAndF32IsAChoice) {
  const auto dir = temp_dir("activations");
  const auto config = fixtures_dir() / "hf-tiny" / "glm4" / "config.json";
  const std::string model = (dir / "bf16.gguf").string();
  const Result s = run("synth --dtype bf16 --config " + config.string() + " --out " + model);
  ASSERT_EQ(s.exit_code, 0) << s.out;
  const std::string generate = " --tokens 3,4,5 -n 2 --temperature 0 --ignore-eos";
  const Result automatic = run("--log-level info run --model " + model + generate);
  const Result f32 = run("--log-level info run --model " + model + " --activations f32" + generate);
  ASSERT_EQ(automatic.exit_code, 0) << automatic.out;
  ASSERT_EQ(f32.exit_code, 0) << f32.out;
  const bool bf16_kernels = automatic.out.find("using the avx512 variants") != std::string::npos;
  const std::string rounded = "bf16 matrices take activations rounded to bf16";
  EXPECT_EQ(automatic.out.find(rounded) != std::string::npos, bf16_kernels) << automatic.out;
  EXPECT_EQ(f32.out.find(rounded), std::string::npos) << f32.out;

  const Result unknown = run("run --model " + model + " --activations fp8" + generate);
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.out.find("fp8 not in {auto,f32,bf16}"), std::string::npos) << unknown.out;
  const Result both =
      run("run --model " + model + " --bf16-activations --activations f32" + generate);
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
}

TEST(Cli, BenchReportsSpeedAndBandwidth) {
  const Result r = run("bench --model " + stories() +
                       " --prompt-tokens 16 --decode-tokens 8 --repeats 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.stdout_only);
  EXPECT_GT(j["decode"]["median_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["read_bandwidth_gbps"]["median"].get<double>(), 0);
  // One probe before and one after the decode run; the highest is at least the median.
  EXPECT_EQ(j["read_bandwidth_gbps"]["samples"].size(), 2u);
  EXPECT_GE(j["read_bandwidth_gbps"]["max"].get<double>(),
            j["read_bandwidth_gbps"]["median"].get<double>());
  EXPECT_LE(j["decode"]["roofline_fraction_of_max"].get<double>(),
            j["decode"]["roofline_fraction"].get<double>());
  // The decode also ran in segments between short probes: at least one, each with its share of
  // the bandwidth probed beside it, and their median among them.
  const auto& alongside = j["decode"]["roofline_fraction_alongside"];
  const auto segments = alongside["segments"].get<std::vector<double>>();
  ASSERT_FALSE(segments.empty());
  for (double f : segments) EXPECT_GT(f, 0.0);
  const double median = alongside["median"].get<double>();
  EXPECT_GE(median, *std::min_element(segments.begin(), segments.end()));
  EXPECT_LE(median, *std::max_element(segments.begin(), segments.end()));
  // Where the kernels prefetched their streams (kernels::prefetch_level): a CPU's choice, named.
  const std::string prefetch = j["prefetch"].get<std::string>();
  EXPECT_TRUE(prefetch == "l1" || prefetch == "l2") << prefetch;
  // The compute peak is probed in the float kernels' vectors, on every host whose kernels are not
  // scalar: 512-bit FMAs for the AVX-512 table, 256-bit for AVX2.
  if (j["isa"].get<std::string>() != "scalar") {
    EXPECT_GT(j["fma_peak_gflops"].get<double>(), 1.0);
    EXPECT_EQ(j["fma_peak_vector_bits"].get<int>(),
              j["isa"].get<std::string>() == "avx512" ? 512 : 256);
    // And the 8-bit dot-product peak, in the q4_0 / q8_0 kernels' instructions: 64 multiply-adds
    // per vpdpbusd, 32 per vpmaddubsw, above the FMAs' 16 or 8 per instruction.
    EXPECT_GT(j["int8_dot_peak_gflops"].get<double>(), j["fma_peak_gflops"].get<double>());
    EXPECT_EQ(j["int8_dot_peak_vector_bits"].get<int>(), j["fma_peak_vector_bits"].get<int>());
    // bf16 dot products (vdpbf16ps: two multiply-adds per f32 lane) only with the AVX-512 table.
    if (j["isa"].get<std::string>() == "avx512") {
      EXPECT_GT(j["bf16_dot_peak_gflops"].get<double>(), j["fma_peak_gflops"].get<double>());
    } else {
      EXPECT_EQ(j["bf16_dot_peak_gflops"].get<double>(), 0.0);
    }
  }
  // The batched run's GFLOP/s: 2 x each token's multiply-adds x tokens/s. Every sequence of a
  // batched step computes its logits, a 16-token prompt only once, so a batched token carries more
  // multiply-adds than a prompt token.
  const auto& batched = j["batched_decode"];
  const double batch_tps = batched["median_tokens_per_s"].get<double>();
  ASSERT_GT(batch_tps, 0);
  EXPECT_GT(
      batched["gflops"].get<double>() / batch_tps,
      j["prefill"]["gflops"].get<double>() / j["prefill"]["median_tokens_per_s"].get<double>());

  // --context: decode after 64 cached tokens also reads their K and V each step.
  const Result c = run("bench --model " + stories() +
                       " --prompt-tokens 16 --decode-tokens 8 --context 64 --repeats 1 --json");
  ASSERT_EQ(c.exit_code, 0) << c.out;
  const auto jc = nlohmann::json::parse(c.stdout_only);
  EXPECT_EQ(jc["decode"]["context"].get<int>(), 64);
  EXPECT_GT(jc["decode"]["median_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(jc["decode"]["bytes_per_token"].get<double>(),
            j["decode"]["bytes_per_token"].get<double>());
}

// Bad input: one clear message and exit code 1, never a crash.
TEST(Cli, ErrorsAreClear) {
  struct Bad {
    std::string args, expect;
  };
  const auto tmp = temp_dir("bad");
  const std::vector<Bad> cases = {
      {"run --model /nonexistent/model --tokens 1", "does not exist"},
      {"run --model " + stories() + " --tokens 1,x,3", "'x' is not a token id"},
      {"run --model " + stories() + " --tokens 1,99999", "outside the vocabulary"},
      {"run --model " + stories() + " --tokens 1 --dtype q3_k", "unknown weight type 'q3_k'"},
      {"run --model " + stories() + " --tokens 1 --temperature -1", "temperature"},
      {"run --model " + tmp.string() + " --tokens 1", "no config.json"},
      {"synth --config " + (fixtures_dir() / "hf-tiny/glm4/config.json").string() +
           " --dtype q4_0 --out " + (tmp / "dir").string(),
       "safetensors cannot hold q4_0"},
  };
  for (const Bad& c : cases) {
    const Result r = run(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find("autoglm: error:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace autoglm::testing
