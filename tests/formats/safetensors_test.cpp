// Safetensors reading: every hf-tiny fixture against its config.json, a sharded copy, directory
// rules, and the error messages users see.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "formats/safetensors_writer.h"
#include "formats/tensor_store.h"
#include "formats/test_util.h"
#include "support/fixtures.h"

namespace autoglm::formats {
namespace {

namespace fs = std::filesystem;
using autoglm::testing::fixtures_dir;
using autoglm::testing::read_json;
using autoglm::testing::temp_dir;
using test::error_of;
using ::testing::HasSubstr;

std::vector<fs::path> hf_tiny_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(fixtures_dir() / "hf-tiny")) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(Safetensors, EveryHfTinyFixtureMatchesItsConfig) {
  const auto dirs = hf_tiny_dirs();
  ASSERT_GE(dirs.size(), 7u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.string());
    const auto config = read_json(dir / "config.json");
    const auto& text = config.contains("text_config") ? config["text_config"] : config;
    const int64_t hidden = text["hidden_size"];
    const int64_t layers = text.value("num_hidden_layers", text.value("num_layers", -1));
    const int64_t vocab = text.value("vocab_size", text.value("padded_vocab_size", int64_t{-1}));

    const TensorStore store = open_safetensors(dir);  // a directory: picks model.safetensors
    EXPECT_EQ(store.format(), FileFormat::Safetensors);
    EXPECT_EQ(store.source(), (dir / "model.safetensors").string());
    EXPECT_EQ(store.metadata().value("format", ""), "pt");

    // The token embedding is [vocab, hidden] whatever the naming scheme.
    int embeddings = 0;
    std::set<int> layer_ids;
    const std::regex layer_re(R"((^|\.)layers\.(\d+)\.)");
    const auto* file_begin = store.get(store.names().front()).data;
    for (const auto& name : store.names()) {
      const TensorView& t = store.get(name);
      EXPECT_EQ(t.nbytes, tensor_bytes(t.dtype, t.numel())) << name;
      if (t.data < file_begin) file_begin = t.data;
      if (name.find("embed_tokens.weight") != std::string::npos ||
          name.find("word_embeddings.weight") != std::string::npos) {
        ++embeddings;
        EXPECT_EQ(t.shape, (std::vector<int64_t>{vocab, hidden})) << name;
      }
      std::smatch m;
      if (name.find("visual") == std::string::npos && std::regex_search(name, m, layer_re)) {
        layer_ids.insert(std::stoi(m[2]));
      }
    }
    EXPECT_EQ(embeddings, 1);
    EXPECT_EQ(static_cast<int64_t>(layer_ids.size()), layers);
    EXPECT_EQ(*layer_ids.rbegin(), layers - 1);
  }
}

TEST(Safetensors, TensorCountAndShapesMatchAnIndependentHeaderRead) {
  // Re-read the header with nothing but the JSON library, as a check on the reader's plumbing.
  const auto path = fixtures_dir() / "hf-tiny/glm4/model.safetensors";
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  const auto j = nlohmann::json::parse(header);
  const TensorStore store = open_safetensors(path);
  EXPECT_EQ(store.size() + 1, j.size());  // + __metadata__
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(store.get(name).shape, entry["shape"].get<std::vector<int64_t>>()) << name;
  }
  const auto& q = store.get("model.layers.0.self_attn.q_proj.weight", {64, 64});
  EXPECT_EQ(q.dtype, DType::F32);
}

TEST(Safetensors, Bf16FixtureHoldsTheRoundedF32Weights) {
  // glm4_bf16 is "the same weights as glm4 stored in BF16": each value is bf16(f32 value).
  const TensorStore f32 = open_safetensors(fixtures_dir() / "hf-tiny/glm4");
  const TensorStore bf16 = open_safetensors(fixtures_dir() / "hf-tiny/glm4_bf16");
  ASSERT_EQ(f32.names(), bf16.names());
  size_t checked = 0, mismatched = 0;
  for (const auto& name : f32.names()) {
    const auto& a = f32.get(name);
    const auto& b = bf16.get(name);
    ASSERT_EQ(b.dtype, DType::BF16) << name;
    ASSERT_EQ(a.shape, b.shape) << name;
    for (int64_t i = 0; i < a.numel(); ++i) {
      float x;
      uint16_t h;
      std::memcpy(&x, a.data + 4 * i, 4);
      std::memcpy(&h, b.data + 2 * i, 2);
      mismatched += f32_to_bf16(x) != h;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50000u);
  EXPECT_EQ(mismatched, 0u);
}

TEST(Safetensors, ReadsI64Tensors) {
  const TensorStore s = open_safetensors(fixtures_dir() / "hf-tiny/glm4v/pixel_values.safetensors");
  const auto& thw = s.get("image_grid_thw", {1, 3});
  ASSERT_EQ(thw.dtype, DType::I64);
  int64_t v[3];
  std::memcpy(v, thw.data, sizeof v);
  EXPECT_EQ(v[0], 1);  // README: image_grid_thw [[1,4,8]]
  EXPECT_EQ(v[1], 4);
  EXPECT_EQ(v[2], 8);
  EXPECT_EQ(s.get("pixel_values", {32, 1176}).dtype, DType::F32);
}

// Splits a store into two shard files + index in `dir`; returns the index path.
fs::path write_sharded_copy(const TensorStore& store, const fs::path& dir) {
  const auto names = store.names();
  std::vector<TensorData> parts[2];
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& t = store.get(names[i]);
    const int shard = i < names.size() / 2 ? 0 : 1;
    parts[shard].push_back({t.name, t.dtype, t.shape, t.data});
    weight_map[t.name] = fmt::format("model-0000{}-of-00002.safetensors", shard + 1);
  }
  write_safetensors(dir / "model-00001-of-00002.safetensors", parts[0], {{"format", "pt"}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", parts[1], {{"format", "pt"}});
  const auto index = dir / "model.safetensors.index.json";
  std::ofstream(index)
      << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(1);
  return index;
}

void expect_same_tensors(const TensorStore& a, const TensorStore& b) {
  ASSERT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    const auto& x = a.get(name);
    const auto& y = b.get(name);
    EXPECT_EQ(x.dtype, y.dtype) << name;
    EXPECT_EQ(x.shape, y.shape) << name;
    ASSERT_EQ(x.nbytes, y.nbytes) << name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << name;
  }
}

TEST(Safetensors, ShardedCopyLoadsTheSameTensors) {
  const TensorStore original = open_safetensors(fixtures_dir() / "hf-tiny/glm4");
  const auto dir = temp_dir("sharded");
  const auto index = write_sharded_copy(original, dir);
  const TensorStore from_dir = open_safetensors(dir);  // no model.safetensors: uses the index
  EXPECT_EQ(from_dir.source(), index.string());
  expect_same_tensors(original, from_dir);
  expect_same_tensors(original, open_safetensors(index));
  expect_same_tensors(original, open_weights(dir));
  EXPECT_EQ(from_dir.metadata().value("format", ""), "pt");
}

TEST(Safetensors, MissingShardNamesShardAndIndex) {
  const auto dir = temp_dir("missing-shard");
  write_sharded_copy(open_safetensors(fixtures_dir() / "hf-tiny/glm"), dir);
  fs::remove(dir / "model-00002-of-00002.safetensors");
  const auto msg = error_of([&] { open_safetensors(dir); });
  EXPECT_THAT(msg, HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(msg, HasSubstr("model.safetensors.index.json"));
  EXPECT_THAT(msg, HasSubstr("missing"));
}

TEST(Safetensors, TensorListedInIndexButAbsentFromShard) {
  const auto dir = temp_dir("absent-tensor");
  const auto index = write_sharded_copy(open_safetensors(fixtures_dir() / "hf-tiny/glm"), dir);
  auto j = read_json(index);
  j["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(index) << j.dump();
  const auto msg = error_of([&] { open_safetensors(dir); });
  EXPECT_THAT(msg, HasSubstr("'model.extra.weight'"));
  EXPECT_THAT(msg, HasSubstr("model-00001-of-00002.safetensors"));
  EXPECT_THAT(msg, HasSubstr("index.json"));
}

TEST(Safetensors, DirectoryRules) {
  const TensorStore glm = open_safetensors(fixtures_dir() / "hf-tiny/glm");
  std::vector<TensorData> one = {{"w", DType::F32, {2}, glm.get("model.norm.weight").data}};

  const auto single = temp_dir("single");  // one oddly named file: used
  write_safetensors(single / "weights.safetensors", one);
  EXPECT_EQ(open_safetensors(single).source(), (single / "weights.safetensors").string());

  const auto both = temp_dir("both");  // model.safetensors wins over anything else
  write_safetensors(both / "model.safetensors", one);
  write_safetensors(both / "other.safetensors", one);
  EXPECT_EQ(open_safetensors(both).source(), (both / "model.safetensors").string());

  const auto two = temp_dir("two");  // two files, no index: ambiguous
  write_safetensors(two / "a.safetensors", one);
  write_safetensors(two / "b.safetensors", one);
  EXPECT_THAT(error_of([&] { open_safetensors(two); }), HasSubstr("a.safetensors, b.safetensors"));

  const auto none = temp_dir("none");  // nothing usable: say what is there
  std::ofstream(none / "config.json") << "{}";
  fs::create_directory(none / "sub");
  const auto msg = error_of([&] { open_weights(none); });
  EXPECT_THAT(msg, HasSubstr("config.json, sub/"));
  EXPECT_THAT(msg, HasSubstr(none.string()));
}

TEST(TensorStore, MissingNameListsClosestNamesAndCount) {
  const TensorStore s = open_safetensors(fixtures_dir() / "hf-tiny/glm4");
  const auto msg = error_of([&] { s.get("model.layers.0.self_attn.q_proj.weigth"); });
  EXPECT_THAT(msg, HasSubstr("'model.layers.0.self_attn.q_proj.weigth' not found"));
  EXPECT_THAT(msg, HasSubstr(fmt::format("({} tensors)", s.size())));
  EXPECT_THAT(msg, HasSubstr("closest names: model.layers.0.self_attn.q_proj.weight, "));
  EXPECT_THAT(msg, HasSubstr("model.safetensors"));
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_FALSE(s.contains("nope"));
  EXPECT_TRUE(s.contains("lm_head.weight"));
}

TEST(TensorStore, WrongShapeReportsExpectedAndFound) {
  const TensorStore s = open_safetensors(fixtures_dir() / "hf-tiny/glm4");
  const auto msg = error_of([&] { s.get("lm_head.weight", {64, 256}); });
  EXPECT_THAT(msg, HasSubstr("shape [256, 64]"));
  EXPECT_THAT(msg, HasSubstr("expects [64, 256]"));
  EXPECT_THAT(msg, HasSubstr("model.safetensors"));
}

TEST(Safetensors, UnsupportedDtypeIsAClearError) {
  const auto dir = temp_dir("fp8");
  const std::string header = R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})";
  std::ofstream out(dir / "m.safetensors", std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << "ab";
  out.close();
  const auto msg = error_of([&] { open_safetensors(dir / "m.safetensors"); });
  EXPECT_THAT(msg, HasSubstr("'F8_E4M3'"));
  EXPECT_THAT(msg, HasSubstr("'w'"));
  EXPECT_THAT(msg, HasSubstr("m.safetensors"));
}

TEST(Safetensors, DuplicateNameInHeaderIsAnError) {
  const auto dir = temp_dir("dup");
  const std::string header = R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  std::ofstream out(dir / "m.safetensors", std::ios::binary);
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << "ab";
  out.close();
  EXPECT_THAT(error_of([&] { open_safetensors(dir / "m.safetensors"); }),
              HasSubstr("'w' appears twice"));
}

}  // namespace
}  // namespace autoglm::formats
