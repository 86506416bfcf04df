// Writers: write -> open gives identical bytes and metadata; failures leave no file behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "formats/gguf_writer.h"
#include "formats/safetensors_writer.h"
#include "formats/tensor_store.h"
#include "formats/test_util.h"
#include "support/fixtures.h"

namespace autoglm::formats {
namespace {

namespace fs = std::filesystem;
using autoglm::testing::fixtures_dir;
using autoglm::testing::temp_dir;
using nlohmann::json;
using test::error_of;
using ::testing::HasSubstr;

std::vector<TensorData> tensors_of(const TensorStore& s) {
  std::vector<TensorData> out;
  for (const auto& name : s.names()) {
    const auto& t = s.get(name);
    out.push_back({t.name, t.dtype, t.shape, t.data});
  }
  return out;
}

void expect_same(const std::vector<TensorData>& expected, const TensorStore& got) {
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& e : expected) {
    const TensorView* t = got.find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype) << e.name;
    EXPECT_EQ(t->shape, e.shape) << e.name;
    int64_t numel = 1;
    for (auto d : e.shape) numel *= d;
    ASSERT_EQ(t->nbytes, tensor_bytes(e.dtype, numel)) << e.name;
    EXPECT_EQ(std::memcmp(t->data, e.data, t->nbytes), 0) << e.name;
  }
}

// Bytes of every plain dtype, with odd sizes so that offsets are not all multiples of 4.
struct MixedTensors {
  std::vector<std::byte> buf = std::vector<std::byte>(4096);
  std::vector<TensorData> tensors;
  explicit MixedTensors(bool gguf) {
    std::mt19937 rng(7);
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    const auto* p = buf.data();
    tensors = {{"f64", DType::F64, {3}, p},
               {"i8", DType::I8, {5}, p + 100},
               {"i16", DType::I16, {3, 1}, p + 200},
               {"i32", DType::I32, {2, 3}, p + 300},
               {"i64", DType::I64, {1}, p + 400},
               {"f16", DType::F16, {7}, p + 500},
               {"bf16", DType::BF16, {2, 2, 2}, p + 600},
               {"f32", DType::F32, {2, 2, 2, 2}, p + 700},
               {"empty", DType::F32, {0, 4}, p}};
    if (!gguf) {
      tensors.push_back({"u8", DType::U8, {9}, p + 800});
      tensors.push_back({"bool", DType::BOOL, {3}, p + 900});
      tensors.push_back({"scalar", DType::F32, {}, p + 1000});
    }
  }
};

TEST(SafetensorsWriter, RoundTripsFixtureAndEveryDtype) {
  const TensorStore glm4 = open_safetensors(fixtures_dir() / "hf-tiny/glm4");
  MixedTensors mixed(false);
  auto tensors = tensors_of(glm4);
  tensors.insert(tensors.end(), mixed.tensors.begin(), mixed.tensors.end());
  const auto path = temp_dir("st-rt") / "model.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "héllo"}});
  const TensorStore back = open_safetensors(path);
  expect_same(tensors, back);
  EXPECT_EQ(back.metadata(), (json{{"format", "pt"}, {"note", "héllo"}}));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  // The header is padded so the data section starts 8-byte aligned.
  uint64_t header_len = 0;
  std::memcpy(&header_len, test::read_bytes(path).data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST(SafetensorsWriter, RefusesQuantizedTensors) {
  const auto path = temp_dir("st-q") / "m.safetensors";
  SafetensorsWriter w(path);
  EXPECT_THAT(error_of([&] { w.declare({"q", DType::Q4_0, {32}}); }), HasSubstr("write a .gguf"));
}

// Metadata of every GGUF value type, the way llama.cpp's converters type them.
std::vector<GgufEntry> all_types_metadata() {
  using T = GgufType;
  return {{"general.architecture", T::String, "glm4"},
          {"glm4.block_count", T::U32, 4},
          {"glm4.rope.freq_base", T::F32, 10000.0},
          {"t.u8", T::U8, 255},
          {"t.i8", T::I8, -128},
          {"t.u16", T::U16, 65535},
          {"t.i16", T::I16, -32768},
          {"t.i32", T::I32, -2147483647 - 1},
          {"t.u64", T::U64, 18446744073709551615ull},
          {"t.i64", T::I64, -9223372036854775807ll - 1},
          {"t.f64", T::F64, 0.1},
          {"t.bool", T::Bool, true},
          {"t.empty_string", T::String, ""},
          {"tokenizer.ggml.tokens", T::Array, {"a", "Ġb", "<|user|>", ""}, T::String},
          {"tokenizer.ggml.token_type", T::Array, {1, 1, 3, 6}, T::I32},
          {"t.f32s", T::Array, {0.5, -2.25}, T::F32},
          {"t.bools", T::Array, {true, false}, T::Bool},
          {"t.empty_array", T::Array, json::array(), T::U8}};
}

TEST(GgufWriter, RoundTripsMetadataOfEveryTypeAndQuantizedFixtureTensors) {
  const TensorStore q4 = open_gguf(fixtures_dir() / "gguf/glm-tiny-q4_0.gguf");
  MixedTensors mixed(true);
  auto tensors = tensors_of(q4);  // q4_0, q6_K and f32 tensors
  tensors.insert(tensors.end(), mixed.tensors.begin(), mixed.tensors.end());
  for (const uint32_t alignment : {32u, 64u}) {
    SCOPED_TRACE(alignment);
    const auto path = temp_dir("gguf-rt") / "m.gguf";
    write_gguf(path, all_types_metadata(), tensors, alignment);
    const TensorStore back = open_gguf(path);
    expect_same(tensors, back);
    json expected = json::object();
    for (const auto& e : all_types_metadata()) expected[e.key] = e.value;
    if (alignment != 32) expected["general.alignment"] = alignment;
    expected["glm4.rope.freq_base"] = 10000.0f;  // stored as f32
    EXPECT_EQ(back.metadata(), expected);
    for (const auto& name : back.names()) {
      const auto offset = back.get(name).data - back.get(back.names().front()).data;
      EXPECT_EQ(offset % alignment, 0u) << name;
    }
    EXPECT_EQ(fs::file_size(path) % alignment, 0u);
  }
}

TEST(GgufWriter, CopyOfTheQ8FixtureKeepsMetadataAndTensors) {
  // Re-type each value the way the fixture has it (integers that fit u32 -> u32, floats -> f32,
  // int arrays -> i32), write, read: the same JSON metadata and the same tensor bytes.
  const TensorStore q8 = open_gguf(fixtures_dir() / "gguf/glm-tiny-q8_0.gguf");
  auto type_of = [](const json& v) {
    if (v.is_boolean()) return GgufType::Bool;
    if (v.is_string()) return GgufType::String;
    if (v.is_number_float()) return GgufType::F32;
    return GgufType::U32;
  };
  std::vector<GgufEntry> metadata;
  for (const auto& [key, value] : q8.metadata().items()) {
    if (value.is_array()) {
      metadata.push_back(
          {key, GgufType::Array, value,
           value.empty() ? GgufType::U8
                         : (value[0].is_number_integer() ? GgufType::I32 : type_of(value[0]))});
    } else {
      metadata.push_back({key, type_of(value), value});
    }
  }
  const auto path = temp_dir("gguf-copy") / "copy.gguf";
  write_gguf(path, metadata, tensors_of(q8));
  const TensorStore back = open_gguf(path);
  EXPECT_EQ(back.metadata(), q8.metadata());
  expect_same(tensors_of(q8), back);
  // Every value has the width llama.cpp gave it, so only the key order differs from the fixture:
  // the header, the padding and the data section have the same lengths, hence the same file size.
  EXPECT_EQ(fs::file_size(path), fs::file_size(fixtures_dir() / "gguf/glm-tiny-q8_0.gguf"));
}

// Position of the length-prefixed string `s` in `bytes`.
size_t position_of(const std::vector<char>& bytes, const std::string& s) {
  std::string needle(8, '\0');
  const uint64_t n = s.size();
  std::memcpy(needle.data(), &n, 8);
  needle += s;
  const auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  EXPECT_NE(it, bytes.end()) << s;
  return static_cast<size_t>(it - bytes.begin());
}

TEST(GgufWriter, RewritingTheQ4FixtureInItsOrderGivesLlamaCppsBytes) {
  // With the keys and tensors in the fixture's order and llama.cpp's value types (integers u32,
  // token_type i32, floats f32), our file must equal the one gguf-py + llama-quantize wrote.
  const auto src = fixtures_dir() / "gguf/glm-tiny-q4_0.gguf";
  const auto original = test::read_bytes(src);
  const TensorStore q4 = open_gguf(src);
  std::vector<std::pair<size_t, GgufEntry>> keyed;
  for (const auto& [key, v] : q4.metadata().items()) {
    GgufEntry e{key, GgufType::U32, v};
    if (v.is_string()) e.type = GgufType::String;
    if (v.is_boolean()) e.type = GgufType::Bool;
    if (v.is_number_float()) e.type = GgufType::F32;
    if (v.is_array()) {
      e.type = GgufType::Array;
      e.elem_type = v[0].is_string() ? GgufType::String : GgufType::I32;
    }
    keyed.emplace_back(position_of(original, key), e);
  }
  std::sort(keyed.begin(), keyed.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<GgufEntry> metadata;
  for (auto& [pos, e] : keyed) metadata.push_back(e);
  auto tensors = tensors_of(q4);
  std::sort(tensors.begin(), tensors.end(), [&](const TensorData& a, const TensorData& b) {
    return position_of(original, a.name) < position_of(original, b.name);
  });
  const auto path = temp_dir("gguf-exact") / "m.gguf";
  write_gguf(path, metadata, tensors);
  EXPECT_TRUE(test::read_bytes(path) == original);
}

TEST(GgufWriter, MetadataMustFitItsType) {
  GgufWriter w(temp_dir("gguf-types") / "m.gguf");
  EXPECT_THAT(error_of([&] { w.set("k", GgufType::U32, -1); }), HasSubstr("'k'"));
  EXPECT_THAT(error_of([&] { w.set("k", GgufType::U8, 256); }), HasSubstr("does not fit type u8"));
  EXPECT_THAT(error_of([&] { w.set("k", GgufType::String, 3); }), HasSubstr("is not a string"));
  EXPECT_THAT(error_of([&] { w.set_array("k", GgufType::String, {"a", 1}); }), HasSubstr("'k'"));
  EXPECT_THAT(error_of([&] { w.declare({"b", DType::BOOL, {3}}); }), HasSubstr("bool"));
  EXPECT_THAT(error_of([&] {
                w.declare({"q", DType::Q8_0, {2, 48}});
              }),
              HasSubstr("packs blocks of 32"));
  EXPECT_THAT(error_of([&] { GgufWriter bad(temp_dir("gguf-al") / "m.gguf", 48); }),
              HasSubstr("power of two"));
}

TEST(TensorWriter, ChunkedWritesEqualWholeTensorWrites) {
  const TensorStore glm = open_safetensors(fixtures_dir() / "hf-tiny/glm");
  const auto tensors = tensors_of(glm);
  const auto dir = temp_dir("chunks");
  write_gguf(dir / "whole.gguf", {{"general.architecture", GgufType::String, "glm"}}, tensors);

  GgufWriter w(dir / "chunked.gguf");
  w.set_string("general.architecture", "glm");
  for (const auto& t : tensors) w.declare({t.name, t.dtype, t.shape});
  // Stream all data as one byte sequence cut at random points, ignoring tensor boundaries.
  std::vector<std::byte> all;
  for (const auto& t : tensors) {
    const auto& v = glm.get(t.name);
    all.insert(all.end(), v.data, v.data + v.nbytes);
  }
  std::mt19937 rng(1);
  for (size_t at = 0; at < all.size();) {
    const size_t n = std::min<size_t>(all.size() - at, rng() % 5000);
    w.write(all.data() + at, n);
    at += n;
  }
  w.finish();
  EXPECT_EQ(test::read_bytes(dir / "whole.gguf"), test::read_bytes(dir / "chunked.gguf"));
}

TEST(TensorWriter, FailuresLeaveNoFileAndKeepTheOldOne) {
  const auto dir = temp_dir("atomic");
  const auto path = dir / "m.safetensors";
  const std::vector<char> old = {'o', 'l', 'd'};
  test::write_bytes(path, old);
  const float data[4] = {1, 2, 3, 4};
  {
    SafetensorsWriter w(path);
    w.declare({"a", DType::F32, {4}});
    w.declare({"b", DType::F32, {4}});
    w.write_tensor("a", data, sizeof data);
    EXPECT_THAT(error_of([&] { w.finish(); }), HasSubstr("'b' is incomplete"));
    EXPECT_THAT(error_of([&] { w.write_tensor("a", data, sizeof data); }),
                HasSubstr("out of order"));
    EXPECT_THAT(error_of([&] { w.write(data, 100); }), HasSubstr("more than the declared"));
  }
  EXPECT_EQ(test::read_bytes(path), old);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  {
    SafetensorsWriter w(path);
    w.declare({"a", DType::F32, {4}});
    EXPECT_THAT(error_of([&] { w.write_tensor("a", data, 8); }), HasSubstr("needs 16 bytes"));
    EXPECT_THAT(error_of([&] {
                  w.declare({"c", DType::F32, {1}});
                }),
                HasSubstr("after tensor data"));
  }
  EXPECT_EQ(test::read_bytes(path), old);
  EXPECT_THAT(error_of([&] { SafetensorsWriter w(dir / "no/such/dir/m.safetensors"); }),
              HasSubstr("no/such/dir/m.safetensors.tmp"));
}

TEST(TensorWriter, DiskFullIsAnError) {
  // /dev/full accepts the open and fails every write with ENOSPC, like a full disk.
  const auto dir = temp_dir("full");
  fs::create_symlink("/dev/full", dir / "m.gguf.tmp");
  GgufWriter w(dir / "m.gguf");
  const float data[8] = {};
  w.declare({"a", DType::F32, {8}});
  EXPECT_THAT(error_of([&] { w.write_tensor("a", data, sizeof data); }),
              HasSubstr("No space left on device"));
  EXPECT_FALSE(fs::exists(dir / "m.gguf"));
}

}  // namespace
}  // namespace autoglm::formats
