// Corrupt inputs (STYLE.md 15: untrusted bytes are fuzzed). Every truncation and mutation of a real
// file either loads (the change was harmless) or throws autoglm::Error naming the file; never a
// crash, never another exception. Run under the ASan preset to catch out-of-bounds reads too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "formats/tensor_store.h"
#include "formats/test_util.h"
#include "support/fixtures.h"

namespace autoglm::formats {
namespace {

namespace fs = std::filesystem;
using autoglm::testing::fixtures_dir;
using autoglm::testing::temp_dir;

struct Outcome {
  int loaded = 0;
  int rejected = 0;
};

// Opens `path`; on success reads every byte of every tensor (so a view past the mapping faults);
// on Error checks that the message names the file. Any other exception fails the test.
void open_and_check(const fs::path& path, Outcome& outcome, const std::string& what) {
  SCOPED_TRACE(what);
  try {
    const TensorStore s = open_weights(path);
    volatile unsigned sum = 0;  // volatile: the reads must happen
    for (const auto& name : s.names()) {
      const auto& t = s.get(name);
      for (size_t i = 0; i < t.nbytes; ++i) sum = sum + static_cast<unsigned>(t.data[i]);
      EXPECT_EQ(t.nbytes, tensor_bytes(t.dtype, t.numel())) << name;
    }
    (void)s.metadata().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ++outcome.loaded;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    if (std::getenv("AUTOGLM_PRINT_ERRORS")) std::printf("%s: %s\n", what.c_str(), e.what());
    ++outcome.rejected;
  }
}

// Patches one copy of a file in place and restores it after each mutation.
class Mutator {
 public:
  Mutator(const fs::path& original, const fs::path& copy)
      : bytes_(test::read_bytes(original)), path_(copy) {
    test::write_bytes(path_, bytes_);
  }
  const std::vector<char>& bytes() const { return bytes_; }
  // Writes bytes_ with `patch` applied at `at`, runs the check, restores.
  void with_patch(size_t at, const std::vector<char>& patch, Outcome& outcome,
                  const std::string& what) {
    poke(at, patch.data(), patch.size());
    open_and_check(path_, outcome, what);
    poke(at, bytes_.data() + at, patch.size());
  }
  void truncated(size_t size, Outcome& outcome) {
    const auto cut = path_.parent_path() / ("cut" + path_.extension().string());
    test::write_bytes(
        cut, std::vector<char>(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(size)));
    open_and_check(cut, outcome, "truncated to " + std::to_string(size));
  }

 private:
  void poke(size_t at, const char* data, size_t n) {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(data, static_cast<std::streamsize>(n));
  }
  std::vector<char> bytes_;
  fs::path path_;
};

std::vector<char> flipped(char byte, int bit) {
  return {static_cast<char>(byte ^ (1 << bit))};
}

template <typename T>
std::vector<char> le(T v) {
  std::vector<char> out(sizeof v);
  std::memcpy(out.data(), &v, sizeof v);
  return out;
}

// Offset just past the length-prefixed string `s` in `bytes` (its first occurrence).
size_t after_string(const std::vector<char>& bytes, const std::string& s) {
  std::string needle(8, '\0');
  const uint64_t n = s.size();
  std::memcpy(needle.data(), &n, 8);
  needle += s;
  const auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << s;
  return static_cast<size_t>(it - bytes.begin()) + needle.size();
}

TEST(CorruptGguf, TruncatedAtManyPoints) {
  const auto src = fixtures_dir() / "gguf/glm-tiny-q4_0.gguf";
  Mutator m(src, temp_dir("gguf-cut") / "m.gguf");
  const size_t size = m.bytes().size();
  Outcome o;
  for (size_t cut = 0; cut < 64; ++cut) m.truncated(cut, o);                   // fixed header
  for (size_t cut = 64; cut < 40000; cut += 397) m.truncated(cut, o);          // kv pairs, infos
  for (size_t cut = 40000; cut < size; cut += size / 23) m.truncated(cut, o);  // tensor data
  m.truncated(size - 1, o);
  EXPECT_EQ(o.loaded, 0);  // every tensor is needed, so no truncation loads
  EXPECT_GT(o.rejected, 150);
}

TEST(CorruptGguf, BitFlipsInCountsTypesAndOffsets) {
  const auto src = fixtures_dir() / "gguf/glm-tiny-q4_0.gguf";
  Mutator m(src, temp_dir("gguf-flip") / "m.gguf");
  const auto& b = m.bytes();
  Outcome o;
  // version (4), tensor count (8), kv count (16), first key length (24): every bit.
  for (size_t at = 4; at < 32; ++at) {
    for (int bit = 0; bit < 8; ++bit) m.with_patch(at, flipped(b[at], bit), o, "header bit");
  }
  // Tensor infos of a q4_0 and a q6_K tensor: n_dims, ne[0..1], type, offset.
  for (const std::string name : {"blk.2.ffn_up.weight", "output.weight"}) {
    const size_t info = after_string(b, name);
    for (size_t at = info; at < info + 4 + 16 + 4 + 8; ++at) {
      for (int bit : {0, 3, 6, 7}) m.with_patch(at, flipped(b[at], bit), o, name + " info bit");
    }
    m.with_patch(info + 20, le<uint32_t>(3), o, name + " -> q4_1");
    m.with_patch(info + 20, le<uint32_t>(1000), o, name + " -> type 1000");
    m.with_patch(info + 24, le<uint64_t>(~0ull - 31), o, name + " offset near 2^64");
    m.with_patch(info, le<uint32_t>(0xffffffffu), o, name + " n_dims");
  }
  // An array count (tokenizer.ggml.tokens) and element type, and a value type.
  const size_t tokens = after_string(b, "tokenizer.ggml.tokens");
  m.with_patch(tokens + 4, le<uint64_t>(1ull << 60), o, "token count 2^60");
  m.with_patch(tokens + 4, le<uint64_t>(1ull << 20), o, "token count 2^20");
  m.with_patch(tokens, le<uint32_t>(9), o, "type array");
  m.with_patch(tokens + 4, le<uint64_t>(1025), o, "token count + 1");
  m.with_patch(tokens + 12, le<uint64_t>(~0ull), o, "first token length 2^64-1");
  m.with_patch(after_string(b, "general.architecture"), le<uint32_t>(13), o, "value type 13");
  EXPECT_GT(o.rejected, 200);
  std::printf("gguf targeted flips: %d loaded, %d rejected\n", o.loaded, o.rejected);
}

TEST(CorruptGguf, RandomByteMutationsAcrossTheHeader) {
  const auto src = fixtures_dir() / "gguf/glm-tiny-q4_0.gguf";
  const TensorStore original = open_gguf(src);
  size_t data_bytes = 0;
  for (const auto& n : original.names()) data_bytes += (original.get(n).nbytes + 31) / 32 * 32;
  Mutator m(src, temp_dir("gguf-rand") / "m.gguf");
  const size_t header = m.bytes().size() - data_bytes;
  ASSERT_GT(header, 1000u);
  std::mt19937_64 rng(20240601);
  Outcome o;
  for (int i = 0; i < 400; ++i) {
    const size_t at = rng() % header;
    const std::vector<char> patch = i % 2 ? flipped(m.bytes()[at], static_cast<int>(rng() % 8))
                                          : std::vector<char>{static_cast<char>(rng())};
    m.with_patch(at, patch, o, "random byte at " + std::to_string(at));
  }
  EXPECT_EQ(o.loaded + o.rejected, 400);
  EXPECT_GT(o.loaded, 0);  // most of the header is token text: changing it is harmless
  std::printf("gguf random: %d loaded, %d rejected\n", o.loaded, o.rejected);
}

TEST(CorruptSafetensors, TruncatedAtManyPoints) {
  const auto src = fixtures_dir() / "hf-tiny/glm4/model.safetensors";
  Mutator m(src, temp_dir("st-cut") / "m.safetensors");
  const size_t size = m.bytes().size();
  Outcome o;
  for (size_t cut = 0; cut < 40; ++cut) m.truncated(cut, o);
  for (size_t cut = 40; cut < 3000; cut += 61) m.truncated(cut, o);
  for (size_t cut = 3000; cut < size; cut += size / 17) m.truncated(cut, o);
  m.truncated(size - 1, o);
  EXPECT_EQ(o.loaded, 0);
  EXPECT_GT(o.rejected, 100);
}

TEST(CorruptSafetensors, LengthFieldAndRandomHeaderMutations) {
  const auto src = fixtures_dir() / "hf-tiny/glm4/model.safetensors";
  Mutator m(src, temp_dir("st-flip") / "m.safetensors");
  const auto& b = m.bytes();
  uint64_t header = 0;
  std::memcpy(&header, b.data(), 8);
  Outcome o;
  for (size_t at = 0; at < 8; ++at) {
    for (int bit = 0; bit < 8; ++bit) m.with_patch(at, flipped(b[at], bit), o, "length bit");
  }
  EXPECT_EQ(o.loaded, 0);  // any other length cuts the JSON or the data
  // Targeted: the first tensor's dtype and offsets.
  const std::string text(b.begin() + 8, b.begin() + 8 + static_cast<std::ptrdiff_t>(header));
  const size_t dtype = 8 + text.find("\"F32\"") + 1;
  m.with_patch(dtype, {'F', '1', '6'}, o, "F32 -> F16");
  m.with_patch(dtype, {'I', '3', '2'}, o, "F32 -> I32 (same size: harmless)");
  m.with_patch(dtype, {'Q', '4', '0'}, o, "F32 -> Q40");
  const size_t offsets = 8 + text.find("\"data_offsets\":[") + 16;
  m.with_patch(offsets, {'9'}, o, "first offset digit");
  m.with_patch(offsets, {'-'}, o, "negative offset");
  std::mt19937_64 rng(77);
  Outcome random;
  for (int i = 0; i < 300; ++i) {
    const size_t at = 8 + rng() % header;
    const std::vector<char> patch = i % 2 ? flipped(b[at], static_cast<int>(rng() % 8))
                                          : std::vector<char>{static_cast<char>(rng())};
    m.with_patch(at, patch, random, "random byte at " + std::to_string(at));
  }
  EXPECT_EQ(random.loaded + random.rejected, 300);
  EXPECT_GT(random.rejected, 0);
  std::printf("safetensors random: %d loaded, %d rejected\n", random.loaded, random.rejected);
}

TEST(CorruptSafetensors, BadIndexFiles) {
  const auto dir = temp_dir("bad-index");
  const auto index = dir / "model.safetensors.index.json";
  Outcome o;
  for (const std::string text :
       {"", "{", "[]", R"({"weight_map": 3})", R"({"weight_map": {}})",
        R"({"weight_map": {"a": 1}})", R"({"weight_map": {"a": "../../etc/passwd"}})",
        R"({"weight_map": {"a": "/abs.safetensors"}})",
        R"({"weight_map": {"a": "missing.safetensors"}})"}) {
    std::ofstream(index) << text;
    open_and_check(dir, o, text);
  }
  EXPECT_EQ(o.loaded, 0);
  EXPECT_EQ(o.rejected, 9);
}

}  // namespace
}  // namespace autoglm::formats
