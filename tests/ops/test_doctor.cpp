// doctor: every check with its failure provoked (world-writable model file, taken port, missing
// shard, truncated GGUF, mismatched tensors, a fake driver reporting an old CUDA version, an API
// key file others can read, an unreachable endpoint, a proxy without NO_PROXY for localhost,
// transparent huge pages turned off).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ops/doctor.h"
#include "support/fixtures.h"

namespace autoglm::ops {
namespace {
namespace fs = std::filesystem;

// Status of the first line of `area` whose message contains `needle`; fails the test if none.
const CheckResult* find(const std::vector<CheckResult>& checks, const std::string& area,
                        const std::string& needle = "") {
  for (const CheckResult& c : checks) {
    if (c.area == area && c.message.find(needle) != std::string::npos) return &c;
  }
  ADD_FAILURE() << "no '" << area << "' line containing '" << needle << "'";
  return nullptr;
}

bool worst_is(const std::vector<CheckResult>& checks, CheckStatus s) {
  CheckStatus worst = CheckStatus::Ok;
  for (const CheckResult& c : checks) worst = std::max(worst, c.status);
  return worst == s;
}

fs::path copy_fixture(const std::string& name, const std::string& tag) {
  const fs::path dir = testing::temp_dir(tag) / name;
  fs::copy(testing::fixtures_dir() / "hf-tiny" / name, dir, fs::copy_options::recursive);
  for (const auto& e : fs::directory_iterator(dir))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(dir / "tokenizer.json") << "{}";  // presence is what the model check looks for
  return dir;
}

TEST(Doctor, HealthyModelPasses) {
  std::vector<CheckResult> out;
  check_model(copy_fixture("glm4", "doc_ok").string(), out);
  EXPECT_TRUE(worst_is(out, CheckStatus::Ok));
  const CheckResult* c = find(out, "model", "tensors of the glm4 architecture present");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Ok);
}

TEST(Doctor, WorldWritableModelFileWarns) {
  const fs::path dir = copy_fixture("glm4", "doc_ww");
  fs::permissions(dir / "model.safetensors", fs::perms::others_write, fs::perm_options::add);
  DoctorOptions o;
  o.model = dir.string();
  std::vector<CheckResult> out;
  check_permissions(o, out);
  const CheckResult* c = find(out, "permissions", "world-writable");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Warn);
  EXPECT_NE(c->fix.find("chmod o-w"), std::string::npos);
}

TEST(Doctor, ApiKeyFileReadableByOthersWarns) {
  const fs::path key = testing::temp_dir("doc_key") / "key";
  std::ofstream(key) << "sk-test\n";
  ::chmod(key.c_str(), 0644);
  DoctorOptions o;
  o.api_key_file = key.string();
  std::vector<CheckResult> out;
  check_permissions(o, out);
  const CheckResult* c = find(out, "permissions", "API key file");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Warn);
  EXPECT_NE(c->fix.find("chmod 600"), std::string::npos);
  ::chmod(key.c_str(), 0600);
  out.clear();
  check_permissions(o, out);
  EXPECT_EQ(find(out, "permissions", "API key file")->status, CheckStatus::Ok);
}

TEST(Doctor, TakenPortFailsAndNamesTheHolder) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  std::vector<CheckResult> out;
  check_port("127.0.0.1", port, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, CheckStatus::Fail);
  EXPECT_NE(out[0].message.find("pid " + std::to_string(::getpid())), std::string::npos)
      << out[0].message;
  EXPECT_NE(out[0].fix.find("--port"), std::string::npos);
  ::close(fd);
  out.clear();
  check_port("127.0.0.1", port, out);
  EXPECT_EQ(out[0].status, CheckStatus::Ok);
}

TEST(Doctor, MissingShardFails) {
  const fs::path dir = copy_fixture("glm4", "doc_shard");
  fs::rename(dir / "model.safetensors", dir / "model-00001-of-00002.safetensors");
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"metadata": {}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors"}})";
  std::vector<CheckResult> out;
  check_model(dir.string(), out);
  const CheckResult* c = find(out, "model", "shards");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Fail);
  EXPECT_NE(c->message.find("model-00002-of-00002.safetensors"), std::string::npos);
}

TEST(Doctor, TruncatedGgufFails) {
  const fs::path src = testing::fixtures_dir() / "gguf" / "glm-tiny-q8_0.gguf";
  const fs::path dst = testing::temp_dir("doc_gguf") / "cut.gguf";
  fs::copy_file(src, dst);
  fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(dst, fs::file_size(src) / 2);
  std::vector<CheckResult> out;
  check_model(dst.string(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, CheckStatus::Fail);
  EXPECT_NE(out[0].message.find("cut.gguf"), std::string::npos) << out[0].message;
  out.clear();
  check_model(src.string(), out);  // the whole file is fine, tokenizer included
  EXPECT_TRUE(worst_is(out, CheckStatus::Ok)) << out.back().message;
}

TEST(Doctor, TensorsNotMatchingTheConfigFail) {
  const fs::path dir = copy_fixture("glm4", "doc_names");
  nlohmann::json config = testing::read_json(dir / "config.json");
  config["num_hidden_layers"] = config["num_hidden_layers"].get<int>() + 1;
  std::ofstream(dir / "config.json") << config.dump();
  std::vector<CheckResult> out;
  check_model(dir.string(), out);
  const CheckResult* c = find(out, "model", "do not match");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Fail);
  EXPECT_NE(c->message.find("layers.2."), std::string::npos) << c->message;
}

TEST(Doctor, FakeDriverWithOldCudaFails) {
  ::setenv("AUTOGLM_CUDA_LIBRARY", AUTOGLM_FAKE_CUDA, 1);
  ::setenv("FAKE_CUDA_VERSION", "12020", 1);
  const CudaProbe p = probe_cuda();
  ASSERT_TRUE(p.loaded) << p.error;
  ASSERT_EQ(p.devices.size(), 2u);
  EXPECT_EQ(p.devices[1].name, "Fake GPU B");
  EXPECT_EQ(p.devices[0].cc_major, 8);
  EXPECT_EQ(p.devices[0].free_bytes, 12288ull << 20);
  std::vector<CheckResult> out;
  check_gpu(p, 12040, "auto", out);
  const CheckResult* c = find(out, "gpu", "driver supports CUDA 12.2, binary needs 12.4");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Fail);
  EXPECT_EQ(c->fix, "update the NVIDIA driver to >= 550.54.14 (CUDA 12.4) or use the CPU build");
  out.clear();
  check_gpu(p, 12020, "auto", out);  // a new enough driver
  EXPECT_TRUE(worst_is(out, CheckStatus::Ok));
  out.clear();
  check_gpu(p, 0, "auto", out);
  EXPECT_NE(find(out, "gpu", "CPU build")->message.find("driver supports CUDA 12.2"),
            std::string::npos);
  ::setenv("FAKE_CUDA_INIT_ERROR", "100", 1);  // CUDA_ERROR_NO_DEVICE
  const CudaProbe broken = probe_cuda();
  out.clear();
  check_gpu(broken, 12040, "cuda", out);
  EXPECT_EQ(find(out, "gpu", "no usable GPU")->status, CheckStatus::Fail);
  ::unsetenv("FAKE_CUDA_INIT_ERROR");
  ::unsetenv("FAKE_CUDA_VERSION");
  ::unsetenv("AUTOGLM_CUDA_LIBRARY");
}

TEST(Doctor, NoDriverMeansCpuWithIsaList) {
  ::setenv("AUTOGLM_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
  const CudaProbe p = probe_cuda();
  ::unsetenv("AUTOGLM_CUDA_LIBRARY");
  EXPECT_FALSE(p.loaded);
  std::vector<CheckResult> out;
  check_gpu(p, 0, "auto", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, CheckStatus::Ok);
  EXPECT_NE(out[0].message.find("CPU will be used"), std::string::npos);
  EXPECT_NE(out[0].message.find("kernels:"), std::string::npos);
  out.clear();
  check_gpu(p, 0, "cuda", out);  // a GPU was asked for
  EXPECT_EQ(out[0].status, CheckStatus::Fail);
}

TEST(Doctor, HugePagesOffWarnsWithTheFix) {
  const fs::path dir = testing::temp_dir("thp");
  const auto check = [&](const std::string& content) {
    const fs::path f = dir / "enabled";
    std::ofstream(f) << content;
    std::vector<CheckResult> out;
    check_huge_pages(out, f.string());
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? CheckResult{} : out[0];
  };
  const CheckResult never = check("always madvise [never]\n");
  EXPECT_EQ(never.status, CheckStatus::Warn);
  EXPECT_NE(never.message.find("off"), std::string::npos);
  EXPECT_NE(never.fix.find("echo madvise"), std::string::npos);
  const CheckResult madvise = check("always [madvise] never\n");
  EXPECT_EQ(madvise.status, CheckStatus::Ok);
  EXPECT_NE(madvise.message.find("madvise"), std::string::npos);
  EXPECT_EQ(check("[always] madvise never\n").status, CheckStatus::Ok);
  std::vector<CheckResult> out;
  check_huge_pages(out, (dir / "missing").string());  // a kernel without THP
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, CheckStatus::Ok);
  EXPECT_NE(out[0].message.find("not offered"), std::string::npos);
}

TEST(Doctor, MultiGpuSplitMustFitEachDevice) {
  ::setenv("AUTOGLM_CUDA_LIBRARY", AUTOGLM_FAKE_CUDA, 1);
  ::setenv("FAKE_CUDA_FREE_MIB", "1", 1);  // 1 MiB free: the 3.4 MiB tiny model's half cannot fit
  DoctorOptions o;
  o.model = (testing::fixtures_dir() / "gguf" / "glm-tiny-q8_0.gguf").string();
  o.device = "cuda:0,1";
  o.plan.context = 64;
  std::vector<CheckResult> out;
  check_memory(o, probe_cuda(), out);
  EXPECT_EQ(find(out, "devices", "GPU 1")->status, CheckStatus::Fail);
  ::setenv("FAKE_CUDA_FREE_MIB", "4096", 1);
  out.clear();
  check_memory(o, probe_cuda(), out);
  EXPECT_EQ(find(out, "devices", "GPU 0")->status, CheckStatus::Ok);
  ::unsetenv("FAKE_CUDA_FREE_MIB");
  ::unsetenv("AUTOGLM_CUDA_LIBRARY");
}

TEST(Doctor, UnreachableEndpointWarnsQuickly) {
  // A port just released on 127.0.0.1: connection refused, nothing leaves this machine.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::listen(fd, 1);
  DoctorOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port);
  o.network_timeout_ms = 500;
  for (const char* v : {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"}) ::unsetenv(v);
  std::vector<CheckResult> out;
  check_network(o, out);
  EXPECT_EQ(find(out, "network", "reachable")->status, CheckStatus::Ok);
  ::close(fd);
  out.clear();
  const auto t0 = std::chrono::steady_clock::now();
  check_network(o, out);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  const CheckResult* c = find(out, "network", "not reachable");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Warn);
}

TEST(Doctor, ProxyWithoutNoProxyForLocalhostWarns) {
  ::setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
  ::setenv("NO_PROXY", "example.com", 1);
  DoctorOptions o;
  o.network = false;
  std::vector<CheckResult> out;
  check_network(o, out);
  const CheckResult* c = find(out, "network", "NO_PROXY");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CheckStatus::Warn);
  EXPECT_EQ(c->fix, "export NO_PROXY=localhost,127.0.0.1,::1,example.com");
  ::setenv("NO_PROXY", "localhost,127.0.0.1", 1);
  out.clear();
  check_network(o, out);
  EXPECT_TRUE(worst_is(out, CheckStatus::Ok));
  ::unsetenv("HTTPS_PROXY");
  ::unsetenv("NO_PROXY");
}

TEST(Doctor, ReportExitCodeFollowsFailures) {
  DoctorReport r;
  r.checks.push_back({"a", CheckStatus::Warn, "w", "f"});
  EXPECT_TRUE(r.can_serve());
  r.checks.push_back({"b", CheckStatus::Fail, "x", "y"});
  EXPECT_FALSE(r.can_serve());
  EXPECT_EQ(doctor_json(r)["checks"][1]["status"], "fail");
  EXPECT_NE(doctor_text(r).find("fix: y"), std::string::npos);
}

}  // namespace
}  // namespace autoglm::ops
