// `pull` against tests/fake_hub/fake_hub.py on 127.0.0.1: listing, resume, verification, errors,
// mirrors and proxies. No internet: every URL is loopback.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "ops/pull.h"
#include "ops_net/child_server.h"
#include "support/fixtures.h"

namespace autoglm::ops {
namespace {

namespace fs = std::filesystem;
using testing::ChildServer;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Clears the proxy and hub variables for one test and restores nothing: tests set what they need.
void clear_env() {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                        "ALL_PROXY", "no_proxy", "NO_PROXY", "HF_ENDPOINT"})
    unsetenv(v);
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_env();
    root_ = autoglm::testing::temp_dir("fake-hub");
    repo_ = root_ / "org" / "tiny";
    // 3 MiB weights (LFS: sha256) spread over many TCP writes, a small config (git blob sha1).
    weights_ = random_bytes(3 << 20, 7);
    write_file(repo_ / "model.safetensors", weights_);
    write_file(repo_ / "config.json", R"({"model_type": "glm4", "hidden_size": 64})");
    write_file(repo_ / "sub" / "tokenizer.json", R"({"model": {"type": "BPE"}})");
    hub_ = std::make_unique<ChildServer>(std::vector<std::string>{
        "python3", (testing::fake_hub_dir() / "fake_hub.py").string(), "--root", root_.string()});
    dest_ = autoglm::testing::temp_dir("pull-dest");
  }
  void TearDown() override { clear_env(); }

  void configure(const nlohmann::json& cfg) { std::ofstream(root_ / "_hub.json") << cfg.dump(); }

  std::vector<nlohmann::json> log() {
    std::vector<nlohmann::json> out;
    std::ifstream in(root_ / "_log.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  PullOptions options() {
    PullOptions o;
    o.repo = "org/tiny";
    o.dir = dest_;
    o.endpoints = {hub_->url()};
    o.retries = 0;
    o.http.connect_timeout_s = 5;
    o.http.stall_timeout_s = 5;
    return o;
  }

  std::string pull_error(const PullOptions& o) {
    try {
      pull(o);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "pull succeeded where it should have failed";
    return "";
  }

  fs::path root_, repo_, dest_;
  std::string weights_;
  std::unique_ptr<ChildServer> hub_;
};

TEST_F(PullTest, FullPullVerifiesEveryFile) {
  const PullResult r = pull(options());
  EXPECT_EQ(r.endpoint, hub_->url());
  EXPECT_EQ(r.commit.size(), 40u);
  ASSERT_EQ(r.files.size(), 3u);
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
  EXPECT_EQ(read_file(dest_ / "sub" / "tokenizer.json"), read_file(repo_ / "sub/tokenizer.json"));
  for (const auto& f : r.files) {
    EXPECT_EQ(f.state, PullFileState::Downloaded) << f.path;
    EXPECT_EQ(f.checked, f.path == "model.safetensors" ? "sha256" : "git sha1") << f.path;
    EXPECT_FALSE(fs::exists(dest_ / (f.path + ".part"))) << f.path;
  }
  // A second pull downloads nothing.
  const size_t requests = log().size();
  const PullResult again = pull(options());
  for (const auto& f : again.files) EXPECT_EQ(f.state, PullFileState::Present) << f.path;
  EXPECT_EQ(log().size(), requests + 2);  // the listing (revision + tree) only
}

TEST_F(PullTest, IncludeGlobsAndPaginatedTree) {
  configure({{"page_size", 1}});  // three tree pages linked by Link: rel="next"
  PullOptions o = options();
  o.include = {"*.json"};
  const PullResult r = pull(o);
  ASSERT_EQ(r.files.size(), 2u);  // fnmatch without FNM_PATHNAME: "*" crosses '/'
  EXPECT_FALSE(fs::exists(dest_ / "model.safetensors"));
  EXPECT_EQ(r.files[1].checked, "git sha1");  // the size/hash came from the third page
  o.include = {"*.gguf"};
  EXPECT_NE(pull_error(o).find("matches --include"), std::string::npos);
}

TEST_F(PullTest, ResumesAfterACutWithRange) {
  const size_t cut = 1000003;
  configure({{"cut", {{"model.safetensors", cut}}}});
  PullOptions o = options();
  o.include = {"model.safetensors"};
  const std::string err = pull_error(o);
  EXPECT_NE(err.find("was cut"), std::string::npos) << err;
  EXPECT_NE(err.find("resumes"), std::string::npos) << err;
  const fs::path part = dest_ / "model.safetensors.part";
  ASSERT_TRUE(fs::exists(part));
  EXPECT_EQ(fs::file_size(part), cut);
  EXPECT_FALSE(fs::exists(dest_ / "model.safetensors"));

  const PullResult r = pull(o);  // the hub cuts once
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].state, PullFileState::Resumed);
  EXPECT_EQ(r.files[0].resumed_from, cut);
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
  EXPECT_EQ(log().back().value("range", ""), "bytes=" + std::to_string(cut) + "-");
}

TEST_F(PullTest, RetriesResumeWithinOnePull) {
  configure({{"cut", {{"model.safetensors", 4096}}}});
  PullOptions o = options();
  o.retries = 1;
  std::vector<std::string> notes;
  const PullResult r = pull(o, {[&](const std::string& n) { notes.push_back(n); }, {}, {}, {}});
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("was cut"), std::string::npos);
}

TEST_F(PullTest, ServerIgnoringRangeRestartsTheFile) {
  write_file(dest_ / "model.safetensors.part", weights_.substr(0, 5000));
  configure({{"ignore_range", true}});
  PullOptions o = options();
  o.include = {"model.safetensors"};
  const PullResult r = pull(o);
  EXPECT_EQ(r.files[0].resumed_from, 0u);
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
}

TEST_F(PullTest, CorruptedByteLeavesNoFile) {
  configure({{"corrupt", {{"model.safetensors", 123457}, {"config.json", 3}}}});
  PullOptions o = options();
  o.include = {"model.safetensors"};
  std::string err = pull_error(o);
  EXPECT_NE(err.find("sha256 mismatch"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dest_ / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dest_ / "model.safetensors.part"));
  o.include = {"config.json"};  // plain git file: checked by its blob sha1
  err = pull_error(o);
  EXPECT_NE(err.find("git blob sha1 mismatch"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dest_ / "config.json"));
}

TEST_F(PullTest, UnauthorizedAndForbiddenSayWhatToDo) {
  configure({{"token", "secret"}});
  PullOptions o = options();
  std::string err = pull_error(o);
  EXPECT_NE(err.find("401"), std::string::npos) << err;
  EXPECT_NE(err.find("--token"), std::string::npos) << err;
  o.http.token = "wrong";
  err = pull_error(o);
  EXPECT_NE(err.find("403"), std::string::npos) << err;
  EXPECT_NE(err.find("licence"), std::string::npos) << err;
  o.http.token = "secret";
  pull(o);
  EXPECT_EQ(log().back().value("auth", ""), "Bearer secret");
}

TEST_F(PullTest, NotFoundNamesRepositoryOrRevision) {
  PullOptions o = options();
  o.repo = "org/missing";
  std::string err = pull_error(o);
  EXPECT_NE(err.find("repository org/missing"), std::string::npos) << err;
  EXPECT_NE(err.find("404"), std::string::npos) << err;
  o.repo = "org/tiny";
  o.revision = "v9";
  err = pull_error(o);
  EXPECT_NE(err.find("revision v9"), std::string::npos) << err;
  EXPECT_NE(pull_error([&] {
              PullOptions bad = options();
              bad.repo = "tiny";
              return bad;
            }())
                .find("owner/name"),
            std::string::npos);
}

TEST_F(PullTest, MirrorListSkipsADeadEndpoint) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::dead_port());
  setenv("HF_ENDPOINT", dead.c_str(), 1);
  const std::vector<std::string> endpoints = endpoint_list({hub_->url() + "/"});
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0], dead);  // HF_ENDPOINT first, then --endpoint (slash trimmed)
  PullOptions o = options();
  o.endpoints = endpoints;
  std::vector<std::string> notes;
  const PullResult r = pull(o, {[&](const std::string& n) { notes.push_back(n); }, {}, {}, {}});
  EXPECT_EQ(r.endpoint, hub_->url());
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes[0].find("could not connect"), std::string::npos) << notes[0];
}

TEST_F(PullTest, DeadProxyIsNamedAndNoProxyBypassesIt) {
  const std::string proxy = "http://127.0.0.1:" + std::to_string(testing::dead_port());
  setenv("HTTP_PROXY", proxy.c_str(), 1);  // upper case: libcurl alone would ignore it
  PullOptions o = options();
  const std::string err = pull_error(o);
  EXPECT_NE(err.find("proxy " + proxy), std::string::npos) << err;
  EXPECT_NE(err.find("HTTP_PROXY"), std::string::npos) << err;
  EXPECT_NE(err.find("NO_PROXY"), std::string::npos) << err;
  setenv("NO_PROXY", "127.0.0.1", 1);
  pull(o);
  EXPECT_EQ(read_file(dest_ / "model.safetensors"), weights_);
}

TEST_F(PullTest, StallTimesOutWithTheFixAndKeepsTheBytes) {
  configure({{"stall", {{"model.safetensors", 3}}}});
  PullOptions o = options();
  o.include = {"model.safetensors"};
  o.http.stall_timeout_s = 1;
  const std::string err = pull_error(o);
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
  EXPECT_GT(fs::file_size(dest_ / "model.safetensors.part"), 0u);
}

TEST(PullUnits, EndpointsMustBeHttp) {
  EXPECT_THROW(normalize_endpoint("hf-mirror.com"), Error);
  EXPECT_EQ(normalize_endpoint("https://hf-mirror.com//"), "https://hf-mirror.com");
  EXPECT_EQ(url_path_escape("a b/c#d.json"), "a%20b/c%23d.json");
}

TEST(PullUnits, GitBlobSha1MatchesGitsDefinition) {
  // `printf 'hello\n' | git hash-object --stdin` is ce013625030ba8dba906f756967f9e9ca394464a.
  const fs::path p = autoglm::testing::temp_dir("sha") / "hello.txt";
  std::ofstream(p) << "hello\n";
  EXPECT_EQ(file_git_blob_sha1(p), "ce013625030ba8dba906f756967f9e9ca394464a");
  // sha256("hello\n"), as printed by sha256sum.
  EXPECT_EQ(file_sha256(p), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
}

}  // namespace
}  // namespace autoglm::ops
