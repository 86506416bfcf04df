// glm-4-9b-chat's `tokenizer.model`: one `base64(token bytes) rank` per line, ranks 0..N-1, then
// the GLM-4 special tokens appended from N = 151329 (GLM_ARCHITECTURES.md G.1; THUDM
// tokenization_chatglm.py).
#include <array>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::tokenizer {
namespace {

// In this order from id N (THUDM glm-4-9b-chat tokenization_chatglm.py `special_tokens`).
constexpr std::array<std::string_view, 14> kGlm4Specials = {"<|endoftext|>",
                                                            "[MASK]",
                                                            "[gMASK]",
                                                            "[sMASK]",
                                                            "<sop>",
                                                            "<eop>",
                                                            "<|system|>",
                                                            "<|user|>",
                                                            "<|assistant|>",
                                                            "<|observation|>",
                                                            "<|begin_of_image|>",
                                                            "<|end_of_image|>",
                                                            "<|begin_of_video|>",
                                                            "<|end_of_video|>"};

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 (RFC 4648 §4) with padding; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int pad = 0;  // '=' only at the end of the last quad
    if (i + 4 == text.size() && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    std::array<uint32_t, 4> v{};
    for (int k = 0; k < 4 - pad; ++k) {
      const int value = base64_value(text[i + k]);
      if (value < 0) return std::nullopt;
      v[k] = static_cast<uint32_t>(value);
    }
    const uint32_t bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out.push_back(static_cast<char>(bits >> 16));
    if (pad < 2) out.push_back(static_cast<char>((bits >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(bits & 0xFF));
  }
  return out;
}

}  // namespace

std::unique_ptr<Tokenizer> load_glm4_tiktoken(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot open tokenizer file '{}': it does not exist or is not readable", path.string());
  }
  ByteLevelBpeData data;
  data.description = "glm4 tiktoken (" + path.filename().string() + ")";
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const std::string_view rank_text =
        space == std::string::npos ? std::string_view() : std::string_view(line).substr(space + 1);
    int64_t rank = -1;
    const auto [end, ec] =
        std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    std::optional<std::string> bytes;
    if (space != std::string::npos) bytes = base64_decode(std::string_view(line).substr(0, space));
    if (!bytes || ec != std::errc() || end != rank_text.data() + rank_text.size()) {
      fail(
          "{} line {}: expected `<base64 token> <rank>`, found '{}'; is this a tiktoken "
          "tokenizer.model (glm-4-9b-chat) and not a SentencePiece one?",
          path.string(), line_no, line.substr(0, 80));
    }
    if (rank != static_cast<int64_t>(data.raw.size())) {
      fail("{} line {}: rank {} where {} was expected; ranks must run 0, 1, 2, ... in order",
           path.string(), line_no, rank, data.raw.size());
    }
    data.pieces.push_back(bytes_to_unicode(*bytes));
    data.raw.push_back(std::move(*bytes));
    data.types.push_back(TokenType::Normal);
  }
  if (data.raw.size() < 256) {
    fail(
        "{} holds {} ranks: too few for a byte-level vocabulary (glm-4-9b-chat has 151329); "
        "the file looks truncated",
        path.string(), data.raw.size());
  }
  data.merges = merges_from_ranks(data.raw);
  const auto first_special = static_cast<int32_t>(data.raw.size());
  for (const std::string_view s : kGlm4Specials) {
    data.pieces.emplace_back(s);
    data.raw.emplace_back();
    data.types.push_back(TokenType::Control);
  }
  const auto id_of = [&](size_t index) { return first_special + static_cast<int32_t>(index); };
  data.special.eos = id_of(0);  // <|endoftext|>
  data.special.pad = id_of(0);
  // Ends of a turn: <|endoftext|>, <|user|>, <|observation|> (zai-org/GLM-4 #398).
  data.special.stop = {id_of(0), id_of(7), id_of(9)};
  data.special.prefix = {id_of(2), id_of(4)};  // [gMASK]<sop>
  data.regex = std::string(kCl100kRegex);
  data.whole_piece_lookup = true;  // tiktoken looks a piece up whole before merging
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(data));
}

}  // namespace autoglm::tokenizer
