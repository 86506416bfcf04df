// GGUF reading: the llama.cpp-made fixtures (metadata, tensor counts, dtypes, f16 vs f32 bytes),
// and the clear errors for files we cannot read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>

#include "core/half.h"
#include "formats/gguf_types.h"
#include "formats/tensor_store.h"
#include "formats/test_util.h"
#include "support/fixtures.h"

namespace autoglm::formats {
namespace {

namespace fs = std::filesystem;
using autoglm::testing::fixtures_dir;
using autoglm::testing::temp_dir;
using test::Bytes;
using test::error_of;
using ::testing::HasSubstr;

fs::path gguf_dir() {
  return fixtures_dir() / "gguf";
}

TEST(Gguf, EveryFixtureHasTheReadmeHyperParameters) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(gguf_dir())) {
    if (e.path().extension() != ".gguf") continue;
    ++files;
    SCOPED_TRACE(e.path().string());
    const TensorStore s = open_weights(e.path());  // by content: GGUF magic
    EXPECT_EQ(s.format(), FileFormat::Gguf);
    const auto& m = s.metadata();
    const std::string arch = m.at("general.architecture");
    const bool chatglm = e.path().filename().string().find("chatglm") != std::string::npos;
    EXPECT_EQ(arch, chatglm ? "chatglm" : "glm4");
    // README: hidden 256, 4 layers, 8 heads, 2 KV heads, ffn 704, vocabulary of 1024.
    EXPECT_EQ(m.at(arch + ".block_count"), 4);
    EXPECT_EQ(m.at(arch + ".embedding_length"), 256);
    EXPECT_EQ(m.at(arch + ".attention.head_count"), 8);
    EXPECT_EQ(m.at(arch + ".attention.head_count_kv"), 2);
    EXPECT_EQ(m.at(arch + ".feed_forward_length"), 704);
    EXPECT_EQ(m.at("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(m.at("tokenizer.ggml.pre"), "glm4");
    EXPECT_EQ(m.at("tokenizer.ggml.tokens").size(), 1024u);
    EXPECT_EQ(m.at("tokenizer.ggml.token_type").size(), 1024u);
    EXPECT_EQ(m.at("tokenizer.ggml.merges").size(), 153u);
    EXPECT_TRUE(m.at(arch + ".attention.layer_norm_rms_epsilon").is_number_float());
    EXPECT_TRUE(m.at("tokenizer.ggml.add_bos_token").is_boolean());

    // Tensors: 3 outside the blocks, then the same set in each of the 4 blocks.
    std::map<int, int> per_block;
    const std::regex blk(R"(^blk\.(\d+)\.)");
    for (const auto& name : s.names()) {
      std::smatch match;
      if (std::regex_search(name, match, blk)) ++per_block[std::stoi(match[1])];
    }
    ASSERT_EQ(per_block.size(), 4u);
    EXPECT_EQ(per_block.begin()->second, per_block.rbegin()->second);
    EXPECT_EQ(s.size(), 3 + 4 * static_cast<size_t>(per_block[0]));
    EXPECT_EQ(s.get("token_embd.weight").shape, (std::vector<int64_t>{1024, 256}));
    EXPECT_EQ(s.get("output_norm.weight", {256}).dtype, DType::F32);
  }
  EXPECT_EQ(files, 5);
}

// Expected dtype of each tensor of the glm4 files, from the quantization each file's name says.
DType expected_dtype(const std::string& file, const TensorView& t) {
  if (t.shape.size() == 1) return DType::F32;  // norms and biases stay f32 in every file
  if (file == "glm-tiny-f32.gguf") return DType::F32;
  if (file == "glm-tiny-f16.gguf") return DType::F16;
  if (file == "glm-tiny-q8_0.gguf") return DType::Q8_0;
  // llama-quantize's Q4_0 mix: output.weight is q6_K (README); token_embd.weight is q4_0 in this
  // file (the README says q6_K for it too; the file is the authority).
  return t.name == "output.weight" ? DType::Q6_K : DType::Q4_0;
}

TEST(Gguf, DtypesFollowEachFilesQuantization) {
  for (const std::string file :
       {"glm-tiny-f32.gguf", "glm-tiny-f16.gguf", "glm-tiny-q8_0.gguf", "glm-tiny-q4_0.gguf"}) {
    SCOPED_TRACE(file);
    const TensorStore s = open_gguf(gguf_dir() / file);
    EXPECT_EQ(s.size(), 55u);
    for (const auto& name : s.names()) {
      const auto& t = s.get(name);
      EXPECT_EQ(t.dtype, expected_dtype(file, t)) << name;
      EXPECT_EQ(t.nbytes, row_bytes(t.dtype, t.cols()) * static_cast<size_t>(t.rows())) << name;
    }
  }
  const TensorStore q4 = open_gguf(gguf_dir() / "glm-tiny-q4_0.gguf");
  EXPECT_EQ(q4.get("output.weight").nbytes, 1024u / 256 * 210 * 256);  // 4 super-blocks per row
  EXPECT_EQ(q4.metadata().at("general.file_type"), 2);                 // LLAMA_FTYPE_MOSTLY_Q4_0
}

TEST(Gguf, F16FileHoldsTheRoundedF32Weights) {
  const TensorStore f32 = open_gguf(gguf_dir() / "glm-tiny-f32.gguf");
  const TensorStore f16 = open_gguf(gguf_dir() / "glm-tiny-f16.gguf");
  ASSERT_EQ(f32.names(), f16.names());
  size_t values = 0, mismatched = 0, f16_tensors = 0;
  for (const auto& name : f32.names()) {
    const auto& a = f32.get(name);
    const auto& b = f16.get(name);
    ASSERT_EQ(a.shape, b.shape) << name;
    if (b.dtype == DType::F32) {
      EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << name;
      continue;
    }
    ASSERT_EQ(b.dtype, DType::F16) << name;
    ++f16_tensors;
    for (int64_t i = 0; i < a.numel(); ++i) {
      float x;
      uint16_t h;
      std::memcpy(&x, a.data + 4 * i, 4);
      std::memcpy(&h, b.data + 2 * i, 2);
      mismatched += f32_to_f16(x) != h;
      ++values;
    }
  }
  EXPECT_EQ(f16_tensors, 2u + 4 * 6);  // token_embd, output + q, k, v, o, up, down per block
  EXPECT_GT(values, 1000000u);
  EXPECT_EQ(mismatched, 0u);
}

TEST(Gguf, ChatglmFileHasSeparateQkvAndNoPostNorms) {
  const TensorStore s = open_gguf(gguf_dir() / "glm-tiny-chatglm-f16.gguf");
  // 8 query heads and 2 KV heads of 256 / 8 = 32 dims: q 256 rows, k and v 64 rows each.
  EXPECT_EQ(s.get("blk.0.attn_q.weight", {256, 256}).dtype, DType::F16);
  EXPECT_EQ(s.get("blk.0.attn_k.weight", {64, 256}).dtype, DType::F16);
  EXPECT_EQ(s.get("blk.3.attn_v.bias", {64}).dtype, DType::F32);
  // ChatGLM blocks are pre-norm only, so 11 tensors per block instead of glm4's 13.
  EXPECT_FALSE(s.contains("blk.0.post_attention_norm.weight"));
  EXPECT_EQ(s.size(), 3u + 4 * 11);
}

TEST(Gguf, OtherLlamaCppFilesLoad) {
  // A real trained model converted by llama.cpp, and vocab-only files (no tensors at all: the
  // data section may be absent).
  const TensorStore stories = open_weights(fixtures_dir() / "stories260K/stories260K.gguf");
  EXPECT_EQ(stories.metadata().at("general.architecture"), "llama");
  EXPECT_EQ(stories.metadata().at("llama.block_count"), 5);  // README: 5 layers, dim 64
  EXPECT_EQ(stories.metadata().at("llama.embedding_length"), 64);
  EXPECT_EQ(stories.metadata().at("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(stories.get("token_embd.weight").shape, (std::vector<int64_t>{512, 64}));
  // The copies of these two in the fixtures were damaged by a lossy UTF-8 decode (float bytes
  // replaced by EF BF BD): then the error must say so; a good copy must load.
  for (const std::string vocab : {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-spm.gguf"}) {
    SCOPED_TRACE(vocab);
    try {
      const TensorStore v = open_gguf(fixtures_dir() / "tokenizers/llama.cpp" / vocab);
      EXPECT_EQ(v.size(), 0u);
      EXPECT_GT(v.metadata().at("tokenizer.ggml.tokens").size(), 1000u);
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("saved as text"));
      EXPECT_THAT(e.what(), HasSubstr(vocab));
    }
  }
}

TEST(Gguf, DirectoryWithOneGgufOpensIt) {
  const auto dir = temp_dir("gguf-dir");
  fs::create_symlink(gguf_dir() / "glm-tiny-q8_0.gguf", dir / "model.gguf");
  EXPECT_EQ(open_weights(dir).format(), FileFormat::Gguf);
  fs::create_symlink(gguf_dir() / "glm-tiny-q4_0.gguf", dir / "other.gguf");
  const auto msg = error_of([&] { open_weights(dir); });
  EXPECT_THAT(msg, HasSubstr("several .gguf files"));
  EXPECT_THAT(msg, HasSubstr("model.gguf, other.gguf"));
}

// A hand-made GGUF: header, one u32 kv, one tensor info of `type`, data.
std::vector<char> tiny_gguf(uint32_t version, uint32_t ggml_type, uint64_t ne0 = 32) {
  Bytes g;
  g.put(kGgufMagic).put(version).put<uint64_t>(1).put<uint64_t>(1);
  g.str("test.block_count").put(static_cast<uint32_t>(GgufType::U32)).put<uint32_t>(4);
  g.str("w").put<uint32_t>(1).put<uint64_t>(ne0).put(ggml_type).put<uint64_t>(0);
  g.pad(32);
  g.b.resize(g.b.size() + 256, 0);
  return g.b;
}

TEST(Gguf, HandMadeFileReads) {
  const auto path = temp_dir("gguf-ok") / "t.gguf";
  test::write_bytes(path, tiny_gguf(3, 0));
  const TensorStore s = open_gguf(path);
  EXPECT_EQ(s.get("w", {32}).nbytes, 128u);
  EXPECT_EQ(s.metadata().at("test.block_count"), 4);
  test::write_bytes(path, tiny_gguf(2, 8));  // v2 has the same layout
  EXPECT_EQ(open_gguf(path).get("w", {32}).dtype, DType::Q8_0);
}

TEST(Gguf, UnsupportedTensorTypeNamesTypeAndTensorAndSuggests) {
  const auto path = temp_dir("gguf-q4_1") / "t.gguf";
  test::write_bytes(path, tiny_gguf(3, 3));  // GGML_TYPE_Q4_1
  auto msg = error_of([&] { open_gguf(path); });
  EXPECT_THAT(msg, HasSubstr("'w' is stored as q4_1"));
  EXPECT_THAT(msg, HasSubstr("q4_0, q8_0 or f16"));
  EXPECT_THAT(msg, HasSubstr(path.string()));
  test::write_bytes(path, tiny_gguf(3, 13));  // GGML_TYPE_Q5_K
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("q5_K"));
  test::write_bytes(path, tiny_gguf(3, 16));  // GGML_TYPE_IQ2_XXS
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("iq2_xxs"));
}

TEST(Gguf, OldVersionsAndBigEndianAreClearErrors) {
  const auto path = temp_dir("gguf-ver") / "t.gguf";
  test::write_bytes(path, tiny_gguf(1, 0));
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("version 1"));
  test::write_bytes(path, tiny_gguf(0x03000000u, 0));  // version 3 written big-endian
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("big-endian"));
  test::write_bytes(path, tiny_gguf(7, 0));
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("version 7"));
}

TEST(Gguf, RowsMustBeWholeBlocks) {
  const auto path = temp_dir("gguf-block") / "t.gguf";
  test::write_bytes(path, tiny_gguf(3, 2, 48));  // q4_0 rows of 48 elements
  const auto msg = error_of([&] { open_gguf(path); });
  EXPECT_THAT(msg, HasSubstr("not a multiple of the 32-element q4_0 block"));
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocating) {
  const auto path = temp_dir("gguf-huge") / "t.gguf";
  auto bytes = tiny_gguf(3, 0);
  const uint64_t huge = 1ull << 60;
  std::memcpy(bytes.data() + 8, &huge, 8);  // tensor count
  test::write_bytes(path, bytes);
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("claims 1152921504606846976 tensors"));
}

TEST(Gguf, ReadsAlignmentFromMetadata) {
  Bytes g;
  g.put(kGgufMagic).put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(1);
  g.str("general.alignment").put(static_cast<uint32_t>(GgufType::U32)).put<uint32_t>(64);
  g.str("a").put<uint32_t>(1).put<uint64_t>(3).put<uint32_t>(0).put<uint64_t>(0);
  g.str("b").put<uint32_t>(1).put<uint64_t>(2).put<uint32_t>(0);
  const size_t b_offset_at = g.b.size();
  g.put<uint64_t>(64);
  g.pad(64);
  const size_t data = g.b.size();
  g.b.resize(data + 72, 0);
  g.b[data + 64] = 1;  // first byte of b
  const auto path = temp_dir("gguf-align") / "t.gguf";
  test::write_bytes(path, g.b);
  const TensorStore s = open_gguf(path);
  EXPECT_EQ(s.get("b").data - s.get("a").data, 64);
  EXPECT_EQ(static_cast<int>(s.get("b").data[0]), 1);
  // An offset that is a multiple of 32 but not of 64 is rejected.
  const uint64_t bad = 32;
  std::memcpy(g.b.data() + b_offset_at, &bad, 8);
  test::write_bytes(path, g.b);
  EXPECT_THAT(error_of([&] { open_gguf(path); }), HasSubstr("not a multiple of the alignment 64"));
}

}  // namespace
}  // namespace autoglm::formats
