// q4_0, q8_0, f32, f16 and bf16 repacked into 8-row groups (WeightLayout::Rows8, and Rows8Pairs for
// the AVX-512 q4_0 / q8_0 kernels): the SIMD kernels on the matrix packed for them against the
// scalar reference on the file layout, and the packing itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/detail.h"
#include "test_util.h"

namespace autoglm::kernels::testing {
namespace {

struct Shape {
  int64_t rows, cols, n_tokens;
};

const DType kPackedTypes[] = {DType::Q4_0, DType::Q8_0, DType::F32, DType::F16, DType::BF16};

// A table that only says which interleaved layout its kernels read.
KernelTable packing_for(WeightLayout layout) {
  KernelTable t;
  t.packed_layout = layout;
  return t;
}

TEST(PackRows8, UnpackGivesBackEveryRow) {
  for (WeightLayout layout : {WeightLayout::Rows8, WeightLayout::Rows8Pairs}) {
    for (DType dt : kPackedTypes) {
      const int64_t rows = 24, cols = 96;
      const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 5);
      const Matrix w{dt, rows, cols, bytes.data()};
      std::vector<std::byte> packed(bytes.size());
      const Matrix p = pack_for_matmul(w, packed.data(), nullptr, packing_for(layout));
      EXPECT_EQ(p.layout, dt == DType::F32 ? WeightLayout::Rows8 : layout) << dtype_name(dt);
      EXPECT_NE(std::memcmp(packed.data(), bytes.data(), bytes.size()), 0) << "nothing was moved";
      std::vector<std::byte> row(w.row_stride());
      for (int64_t r = 0; r < rows; ++r) {
        detail::unpack_row_x8(p, r, row.data());
        EXPECT_EQ(std::memcmp(row.data(), w.row(r), w.row_stride()), 0)
            << dtype_name(dt) << " row " << r;
      }
    }
  }
}

// Rows8Pairs byte by byte, as core/quant_blocks.h states it. Blocks 2p and 2p + 1 of a group form
// one unit: 16 scales (row r, block s at 2r + s), then pieces k with byte 64k + 8r + 4s + i = byte
// 4k + i of row r's quants in block 2p + s. An odd last block (96 columns: 3 blocks) keeps its
// scales first as in Rows8, then qs[64j + 8r + 4s + i] = byte 4(2j + s) + i of row r's quants.
TEST(PackRows8, QuantPairsLayoutIsAsDocumented) {
  const int64_t rows = 16, cols = 96, n_blocks = cols / 32;
  for (DType dt : {DType::Q4_0, DType::Q8_0}) {
    const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 8);
    const Matrix w{dt, rows, cols, bytes.data()};
    std::vector<std::byte> packed(bytes.size());
    pack_for_matmul(w, packed.data(), nullptr, packing_for(WeightLayout::Rows8Pairs));
    const size_t row_block = dt == DType::Q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
    const size_t quant_bytes = row_block - 2;
    for (int64_t r = 0; r < rows; ++r) {
      const std::byte* group =
          packed.data() + (r / 8) * n_blocks * static_cast<int64_t>(8 * row_block);
      const int64_t ri = r % 8;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* src = bytes.data() + r * w.row_stride() + b * row_block;
        const bool lone = b == n_blocks - 1;  // 3 blocks: one pair, then block 2 alone
        const int64_t s_ = b % 2;
        const std::byte* unit = group + (b - (lone ? 0 : s_)) * static_cast<int64_t>(8 * row_block);
        const int64_t scale_at = lone ? 2 * ri : 2 * (2 * ri + s_);
        EXPECT_EQ(std::memcmp(unit + scale_at, src, 2), 0)
            << "scale of row " << r << " block " << b;
        for (size_t e = 0; e < quant_bytes; ++e) {
          const size_t k = e / 4, i = e % 4;
          const size_t at = lone ? 16 + 64 * (k / 2) + 8 * ri + 4 * (k % 2) + i
                                 : 32 + 64 * k + 8 * ri + 4 * s_ + i;
          ASSERT_EQ(static_cast<uint8_t>(unit[at]), src[2 + e])
              << dtype_name(dt) << " row " << r << " block " << b << " byte " << e;
        }
      }
    }
  }
}

// Activations arranged as the Rows8Pairs kernels read them (detail::arrange_acts), at 6 tokens (a
// group of 4 and one of 2) and 3 blocks (a pair, then a lone block): in a group, the pair's step
// holds each token's 64 bytes in turn, byte 8m + 4s + i of a token's being byte 4m + i of its
// block s; then the lone block's step, 32 bytes a token as they are. d and q4_offset go the same
// way, one value per block. Arranged in two token ranges that split a group, the bytes are the
// same.
TEST(PackRows8, ArrangeActsGroupsTokensStepByStep) {
  const int64_t n_tokens = 6, cols = 96, nb = 3;
  std::vector<int8_t> q(n_tokens * cols), out_q(q.size()), split_q(q.size());
  std::vector<float> d(n_tokens * nb), out_d(d.size()), split_d(d.size());
  std::vector<int32_t> off(d.size()), out_off(d.size()), split_off(d.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(i * 7 + 3);
  for (size_t i = 0; i < d.size(); ++i) {
    d[i] = 0.5f + static_cast<float>(i);
    off[i] = static_cast<int32_t>(1000 + i);
  }
  const QuantizedActs xa{q.data(), d.data(), off.data()};
  detail::arrange_acts(xa, 0, n_tokens, n_tokens, cols, out_q.data(), out_d.data(), out_off.data());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t group = t < 4 ? 0 : 4, size = t < 4 ? 4 : 2, in = t - group;
    const int64_t pair = group * nb + 2 * in;         // the pair's step, in blocks
    const int64_t lone = group * nb + 2 * size + in;  // the lone block's
    for (int m = 0; m < 8; ++m) {
      for (int s = 0; s < 2; ++s) {
        for (int i = 0; i < 4; ++i)
          EXPECT_EQ(out_q[32 * pair + 8 * m + 4 * s + i], q[t * cols + 32 * s + 4 * m + i])
              << "token " << t;
      }
    }
    for (int e = 0; e < 32; ++e) EXPECT_EQ(out_q[32 * lone + e], q[t * cols + 64 + e]) << t;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t at = b < 2 ? pair + b : lone;
      EXPECT_EQ(out_d[at], d[t * nb + b]) << "token " << t << " block " << b;
      EXPECT_EQ(out_off[at], off[t * nb + b]) << "token " << t << " block " << b;
    }
  }
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 3}, {3, 6}})
    detail::arrange_acts(xa, t0, t1, n_tokens, cols, split_q.data(), split_d.data(),
                         split_off.data());
  EXPECT_EQ(split_q, out_q);
  EXPECT_EQ(split_d, out_d);
  EXPECT_EQ(split_off, out_off);
}

// The float Rows8Pairs (matrix.h): each 64-byte line of a group holds 4 columns of its 8 rows, row
// r's at bytes 8r..8r+7 (bf16: columns k..k+3) or, for f16, at 4r..4r+3 of each half (columns k,
// k + 1 | k + 2, k + 3).
TEST(PackRows8, FloatPairsLayoutIsAsDocumented) {
  const int64_t rows = 16, cols = 12;
  for (DType dt : {DType::F16, DType::BF16}) {
    const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 10);
    const Matrix w{dt, rows, cols, bytes.data()};
    std::vector<std::byte> packed(bytes.size());
    pack_for_matmul(w, packed.data(), nullptr, packing_for(WeightLayout::Rows8Pairs));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t line = c / 4, in_line = c % 4;
        const int64_t at = dt == DType::BF16 ? 8 * (r % 8) + 2 * in_line
                                             : 32 * (in_line / 2) + 4 * (r % 8) + 2 * (in_line % 2);
        const std::byte* p = packed.data() + (r / 8) * 8 * w.row_stride() + 64 * line + at;
        EXPECT_EQ(std::memcmp(p, w.row(r) + 2 * c, 2), 0)
            << dtype_name(dt) << " row " << r << " column " << c;
      }
    }
  }
}

// Each SIMD table reads only the layout it packs: given the other one, it refuses with an Error
// instead of misreading the weights.
TEST(PackRows8, TablesRefuseTheOtherLayout) {
  const int64_t rows = 8, cols = 64;
  for (DType dt : {DType::Q4_0, DType::Q8_0, DType::F16, DType::BF16}) {
    const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 9);
    const Matrix w{dt, rows, cols, bytes.data()};
    const std::vector<float> x(cols, 0.5f);
    std::vector<float> y(rows);
    for (Isa isa : simd_isas()) {
      const WeightLayout own = for_isa(isa).packed_layout;
      const WeightLayout other =
          own == WeightLayout::Rows8 ? WeightLayout::Rows8Pairs : WeightLayout::Rows8;
      std::vector<std::byte> packed(bytes.size());
      const Matrix p = pack_for_matmul(w, packed.data(), nullptr, packing_for(other));
      EXPECT_THROW(for_isa(isa).matmul_rows(p, x.data(), 1, y.data(), rows, 0, rows), Error)
          << isa_label(isa) << " " << dtype_name(dt);
      const Matrix mine = pack_for_matmul(w, packed.data(), nullptr, for_isa(isa));
      EXPECT_NO_THROW(for_isa(isa).matmul_rows(mine, x.data(), 1, y.data(), rows, 0, rows))
          << isa_label(isa) << " " << dtype_name(dt);
    }
  }
}

TEST(PackRows8, PoolGivesTheSameBytes) {
  ThreadPool pool(3);
  for (DType dt : kPackedTypes) {
    const int64_t rows = 8 * 37, cols = 64;  // 37 groups: uneven chunks over 3 threads
    const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 6);
    const Matrix w{dt, rows, cols, bytes.data()};
    std::vector<std::byte> alone(bytes.size()), split(bytes.size());
    pack_for_matmul(w, alone.data());
    pack_for_matmul(w, split.data(), &pool);
    EXPECT_EQ(alone, split) << dtype_name(dt);
  }
}

TEST(PackRows8, RefusesWhatItCannotPack) {
  const std::vector<uint8_t> bytes = make_weights(DType::Q4_0, 12, 64, 5);
  std::vector<std::byte> dst(bytes.size());
  EXPECT_THROW(pack_for_matmul(Matrix{DType::Q4_0, 12, 64, bytes.data()}, dst.data()), Error);
  const std::vector<uint8_t> f16 = make_weights(DType::F16, 12, 64, 5);
  std::vector<std::byte> dst16(f16.size());
  EXPECT_THROW(pack_for_matmul(Matrix{DType::F16, 12, 64, f16.data()}, dst16.data()), Error);
  // bf16 is packed in column pairs: an odd column count has no layout; Rows8Pairs packs 4 columns.
  const std::vector<uint8_t> bf16 = make_weights(DType::BF16, 8, 63, 5);
  std::vector<std::byte> dst_bf16(bf16.size());
  EXPECT_THROW(pack_for_matmul(Matrix{DType::BF16, 8, 63, bf16.data()}, dst_bf16.data()), Error);
  const std::vector<uint8_t> bf16_66 = make_weights(DType::BF16, 8, 66, 5);
  std::vector<std::byte> dst_66(bf16_66.size());
  EXPECT_THROW(pack_for_matmul(Matrix{DType::BF16, 8, 66, bf16_66.data()}, dst_66.data(), nullptr,
                               packing_for(WeightLayout::Rows8Pairs)),
               Error);
  EXPECT_NO_THROW(pack_for_matmul(Matrix{DType::BF16, 8, 66, bf16_66.data()}, dst_66.data(),
                                  nullptr, packing_for(WeightLayout::Rows8)));
  const std::vector<uint8_t> q6 = make_weights(DType::Q6_K, 8, 256, 5);
  std::vector<std::byte> dst_q6(q6.size());
  EXPECT_THROW(pack_for_matmul(Matrix{DType::Q6_K, 8, 256, q6.data()}, dst_q6.data()), Error);
}

// A table that packs for the SIMD kernels (prefers_rows8) in `layout`.
KernelTable rows8_packing_for(WeightLayout layout) {
  KernelTable t = packing_for(layout);
  t.prefers_rows8 = true;
  return t;
}

// f16 bits of random bf16 values, as an f16 file converted from a bf16 release holds, and the
// bf16 bits of those same values.
struct F16FromBf16 {
  std::vector<uint16_t> f16, bf16;
};
F16FromBf16 f16_from_bf16(int64_t n, uint32_t seed) {
  const std::vector<uint8_t> b = make_weights(DType::BF16, 1, n, seed);
  F16FromBf16 out;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, b.data() + 2 * i, 2);
    out.f16.push_back(f32_to_f16(bf16_to_f32(bits)));
    // The f16 value itself (rounding a tiny bf16 value to f16's subnormal grid leaves at most 8
    // significant bits, still a bf16 value).
    out.bf16.push_back(f32_to_bf16(f16_to_f32(out.f16.back())));
  }
  return out;
}

TEST(PackF16AsBf16, PacksTheBytesOfTheBf16MatrixOfTheSameValues) {
  ThreadPool pool(3);
  for (WeightLayout layout : {WeightLayout::Rows8, WeightLayout::Rows8Pairs}) {
    const KernelTable table = rows8_packing_for(layout);
    const int64_t rows = 8 * 5, cols = 96;
    const F16FromBf16 v = f16_from_bf16(rows * cols, 21);
    const Matrix w16{DType::F16, rows, cols, v.f16.data()};
    const Matrix w_bf16{DType::BF16, rows, cols, v.bf16.data()};
    ASSERT_TRUE(can_pack_f16_as_bf16(w16, nullptr, table));
    ASSERT_TRUE(can_pack_f16_as_bf16(w16, &pool, table));
    std::vector<std::byte> expected(v.bf16.size() * 2), got(expected.size());
    const Matrix pe = pack_for_matmul(w_bf16, expected.data(), nullptr, table);
    const Matrix pg = pack_f16_as_bf16(w16, got.data(), &pool, table);
    EXPECT_EQ(pg.dtype, DType::BF16);
    EXPECT_EQ(pg.layout, pe.layout);
    EXPECT_EQ(got, expected) << (layout == WeightLayout::Rows8 ? "Rows8" : "Rows8Pairs");
    // A table that does not repack (the scalar one) runs f16 as it is.
    EXPECT_FALSE(can_pack_f16_as_bf16(w16, nullptr, packing_for(layout)));
  }
}

TEST(PackF16AsBf16, TakesOnlyValuesBf16HoldsExactly) {
  const KernelTable table = rows8_packing_for(WeightLayout::Rows8Pairs);
  const int64_t rows = 8, cols = 64;
  const F16FromBf16 v = f16_from_bf16(rows * cols, 22);
  // f16 bits at the last place of row 7: whether the matrix still packs as bf16.
  const auto packs_with = [&](uint16_t bits) {
    std::vector<uint16_t> f16 = v.f16;
    f16.back() = bits;
    return can_pack_f16_as_bf16(Matrix{DType::F16, rows, cols, f16.data()}, nullptr, table);
  };
  EXPECT_TRUE(packs_with(0x0000));   // +0
  EXPECT_TRUE(packs_with(0x8000));   // -0
  EXPECT_TRUE(packs_with(0x3c00));   // 1
  EXPECT_TRUE(packs_with(0xbff8));   // -(2 - 2^-7): 8 significant bits
  EXPECT_FALSE(packs_with(0x3c01));  // 1 + 2^-10: 11 significant bits
  EXPECT_FALSE(packs_with(0x3c04));  // 1 + 2^-8: 9
  EXPECT_TRUE(packs_with(0x00ff));   // subnormal of 8 significant bits
  EXPECT_TRUE(packs_with(0x8300));   // negative subnormal of 2
  EXPECT_FALSE(packs_with(0x01ff));  // subnormal of 9
  EXPECT_TRUE(packs_with(0x7c00));   // infinity: bf16 has it too
  EXPECT_FALSE(packs_with(0x7e01));  // a NaN whose payload bf16 cannot keep
  // Random f16 weights (rounded from f32) have 11 significant bits.
  const std::vector<uint8_t> plain = make_weights(DType::F16, rows, cols, 23);
  EXPECT_FALSE(can_pack_f16_as_bf16(Matrix{DType::F16, rows, cols, plain.data()}, nullptr, table));
  // Other types, and shapes the bf16 layout has no form for (Rows8Pairs: columns a multiple of 4).
  const std::vector<uint8_t> bf16 = make_weights(DType::BF16, rows, cols, 24);
  EXPECT_FALSE(can_pack_f16_as_bf16(Matrix{DType::BF16, rows, cols, bf16.data()}, nullptr, table));
  const F16FromBf16 odd = f16_from_bf16(8 * 66, 25);
  const Matrix w66{DType::F16, 8, 66, odd.f16.data()};
  EXPECT_FALSE(can_pack_f16_as_bf16(w66, nullptr, table));
  std::vector<std::byte> dst(odd.f16.size() * 2);
  EXPECT_THROW(pack_f16_as_bf16(w66, dst.data(), nullptr, table), Error);
  EXPECT_TRUE(can_pack_f16_as_bf16(w66, nullptr, rows8_packing_for(WeightLayout::Rows8)));
}

// The last element: bf16 and f16 matrices that allow x (f16: and the weights) to be rounded to bf16
// (Matrix::x_as_bf16), which the AVX-512 table then multiplies with vdpbf16ps.
using Case = std::tuple<Isa, DType, Shape, bool>;

class PackedMatmul : public ::testing::TestWithParam<Case> {};

TEST_P(PackedMatmul, MatchesScalarOnFileLayoutWithinDerivedBound) {
  const auto [isa, dt, s, x_as_bf16] = GetParam();
  const std::vector<uint8_t> bytes = make_weights(dt, s.rows, s.cols, 1234);
  const Matrix w{dt, s.rows, s.cols, bytes.data()};
  std::vector<std::byte> packed(bytes.size());
  Matrix p = pack_for_matmul(w, packed.data(), nullptr, for_isa(isa));
  p.x_as_bf16 = x_as_bf16;
  const std::vector<float> x =
      random_floats(static_cast<size_t>(s.n_tokens * s.cols), 99, -2.0f, 2.0f);
  const std::vector<float> wf = dequantized(w);

  const int64_t ldy = s.rows + 3;
  std::vector<float> ref(static_cast<size_t>(s.n_tokens * ldy), -7.0f);
  std::vector<float> got(ref), scalar_packed(ref);
  for_isa(Isa::Scalar).matmul_rows(w, x.data(), s.n_tokens, ref.data(), ldy, 0, s.rows);
  for_isa(Isa::Scalar).matmul_rows(p, x.data(), s.n_tokens, scalar_packed.data(), ldy, 0, s.rows);
  EXPECT_EQ(scalar_packed, ref) << "the scalar reference reads packed rows differently";
  const int64_t mid = s.rows / 3 / 8 * 8;  // two row ranges on group boundaries
  for_isa(isa).matmul_rows(p, x.data(), s.n_tokens, got.data(), ldy, 0, mid);
  for_isa(isa).matmul_rows(p, x.data(), s.n_tokens, got.data(), ldy, mid, s.rows);
  for (int64_t t = 0; t < s.n_tokens; ++t) {
    for (int64_t r = 0; r < ldy; ++r) {
      const size_t i = static_cast<size_t>(t * ldy + r);
      if (r >= s.rows) {
        ASSERT_EQ(got[i], -7.0f) << "wrote past the rows at t=" << t << " r=" << r;
        continue;
      }
      ASSERT_NEAR(
          got[i], ref[i],
          allowed_error(dt, wf.data() + r * s.cols, x.data() + t * s.cols, s.cols, x_as_bf16))
          << "t=" << t << " r=" << r;
    }
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  // 1 token (decode), 2-3 (remainders), 4-9 (token groups), rows past one 64-row chunk; for the
  // float kernels also decode over 4 groups and a remainder (56 rows), token tiles of 4 with every
  // remainder (5, 7, 9, 11), passes of 3 groups with 1 or 2 left in a row range (40, 136 rows),
  // long columns (1280, 2048), several token chunks (200), and columns that end inside a 64-byte
  // line of a group (70: the float tiles' last columns after their whole lines); q4_0 decode over
  // 8 groups, then 4 and 1 (232 rows: ranges of 72 and 160).
  const std::vector<Shape> shapes = {{8, 64, 1},    {24, 96, 3},    {64, 256, 5},  {8, 512, 17},
                                     {72, 768, 4},  {136, 2048, 9}, {16, 32, 2},   {56, 160, 1},
                                     {40, 1280, 7}, {24, 1280, 11}, {32, 96, 200}, {40, 70, 1},
                                     {40, 70, 6},   {232, 96, 1}};
  for (Isa isa : simd_isas()) {
    for (DType dt : kPackedTypes) {
      for (const Shape& s : shapes) {
        if (s.cols % dtype_info(dt).block_elems != 0) continue;
        // bf16 in Rows8Pairs packs 4 columns per row and line: 70 columns stay in the file layout
        // (PackRows8.RefusesWhatItCannotPack), and no line ends early.
        const bool pairs = for_isa(isa).packed_layout == WeightLayout::Rows8Pairs;
        if (dt == DType::BF16 && pairs && s.cols % 4 != 0) continue;
        out.emplace_back(isa, dt, s, false);
        if (dt == DType::BF16 || (dt == DType::F16 && s.cols % 4 == 0))
          out.emplace_back(isa, dt, s, true);
      }
    }
  }
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto& [isa, dt, s, x_as_bf16] = info.param;
  return isa_label(isa) + "_" + std::string(dtype_name(dt)) + (x_as_bf16 ? "_xbf16_" : "_") +
         std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_t" + std::to_string(s.n_tokens);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, PackedMatmul, ::testing::ValuesIn(cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PackedMatmul);

// x whose every element lies exactly halfway between two bf16 values: rounding to nearest even
// and rounding halves away from zero then differ on about half of them.
std::vector<float> bf16_ties(size_t n, uint32_t seed) {
  std::vector<float> x = random_floats(n, seed, -2.0f, 2.0f);
  for (float& v : x) v = bits_to_f32((f32_to_bits(v) & 0xffff0000u) | 0x8000u);
  return x;
}

// The AVX-512 bf16 kernel is exactly "round x to bf16 (nearest even), then sum exact products in
// f32": against the scalar reference given that rounded x, it stays within the f32 kernels' own
// bound (well inside the one that allows for the rounding), for random x and for x made of ties.
TEST(PackedMatmulBf16, Avx512RoundsXToNearestEvenBf16ThenSumsExactProducts) {
  if (!cpu_features().supports(Isa::Avx512)) {
    GTEST_SKIP() << "this CPU has no AVX-512 (scripts/test.sh runs it in the emulated build)";
  }
  for (const Shape s :
       {Shape{40, 2048, 1}, Shape{24, 96, 7}, Shape{40, 68, 3}, Shape{8, 64, 200}}) {
    const std::vector<uint8_t> bytes = make_weights(DType::BF16, s.rows, s.cols, 77);
    const Matrix w{DType::BF16, s.rows, s.cols, bytes.data()};
    std::vector<std::byte> packed(bytes.size());
    Matrix p = pack_for_matmul(w, packed.data(), nullptr, for_isa(Isa::Avx512));
    p.x_as_bf16 = true;
    const std::vector<float> wf = dequantized(w);
    const size_t n = static_cast<size_t>(s.n_tokens * s.cols);
    for (const std::vector<float>& x : {random_floats(n, 5, -2.0f, 2.0f), bf16_ties(n, 6)}) {
      std::vector<float> x_rounded(x);
      for (float& v : x_rounded) v = bf16_to_f32(f32_to_bf16(v));
      std::vector<float> ref(static_cast<size_t>(s.n_tokens * s.rows)), got(ref);
      for_isa(Isa::Scalar)
          .matmul_rows(w, x_rounded.data(), s.n_tokens, ref.data(), s.rows, 0, s.rows);
      for_isa(Isa::Avx512).matmul_rows(p, x.data(), s.n_tokens, got.data(), s.rows, 0, s.rows);
      for (int64_t t = 0; t < s.n_tokens; ++t) {
        for (int64_t r = 0; r < s.rows; ++r) {
          const size_t i = static_cast<size_t>(t * s.rows + r);
          ASSERT_NEAR(got[i], ref[i],
                      allowed_error(DType::BF16, wf.data() + r * s.cols,
                                    x_rounded.data() + t * s.cols, s.cols))
              << s.rows << "x" << s.cols << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

// f16 weights whose every element (f16 normals: 10 mantissa bits, of which bf16 keeps 7) lies
// exactly halfway between two bf16 values, and a few that need no rounding.
std::vector<uint8_t> f16_bf16_ties(int64_t rows, int64_t cols, uint32_t seed) {
  std::vector<uint8_t> bytes = make_weights(DType::F16, rows, cols, seed);
  auto* h = reinterpret_cast<uint16_t*>(bytes.data());
  for (size_t i = 0; i < bytes.size() / 2; ++i) h[i] = (h[i] & 0xfff8u) | (i % 7 == 0 ? 0 : 4u);
  return bytes;
}

// With Matrix::x_as_bf16, the AVX-512 f16 kernel is exactly "round the weights and x to bf16
// (nearest even), then sum exact products in f32" for 4 tokens or more (a prompt, a batch), on
// random weights and on weights made of rounding ties; below 4 tokens (decode) it keeps the weights
// and x as they are.
TEST(PackedMatmulF16AsBf16, Avx512RoundsWeightsAndXFromFourTokens) {
  if (!cpu_features().supports(Isa::Avx512)) {
    GTEST_SKIP() << "this CPU has no AVX-512 (scripts/test.sh runs it in the emulated build)";
  }
  for (const Shape s : {Shape{40, 2048, 4}, Shape{24, 96, 7}, Shape{40, 68, 5}, Shape{8, 64, 200},
                        Shape{40, 2048, 1}, Shape{24, 96, 3}}) {
    const bool rounds = s.n_tokens >= 4;
    for (const std::vector<uint8_t>& bytes :
         {make_weights(DType::F16, s.rows, s.cols, 78), f16_bf16_ties(s.rows, s.cols, 79)}) {
      const Matrix w{DType::F16, s.rows, s.cols, bytes.data()};
      std::vector<std::byte> packed(bytes.size());
      Matrix p = pack_for_matmul(w, packed.data(), nullptr, for_isa(Isa::Avx512));
      p.x_as_bf16 = true;
      std::vector<float> wf = dequantized(w);
      std::vector<float> x =
          random_floats(static_cast<size_t>(s.n_tokens * s.cols), 8, -2.0f, 2.0f);
      if (rounds) {
        for (float& v : wf) v = bf16_to_f32(f32_to_bf16(v));
        for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));
      }
      // The reference: the rounded (or not) weights as an f32 matrix, through the scalar kernel.
      const Matrix wr{DType::F32, s.rows, s.cols, wf.data()};
      std::vector<float> ref(static_cast<size_t>(s.n_tokens * s.rows)), got(ref);
      for_isa(Isa::Scalar).matmul_rows(wr, x.data(), s.n_tokens, ref.data(), s.rows, 0, s.rows);
      const std::vector<float> x_given =
          random_floats(static_cast<size_t>(s.n_tokens * s.cols), 8, -2.0f, 2.0f);
      for_isa(Isa::Avx512)
          .matmul_rows(p, x_given.data(), s.n_tokens, got.data(), s.rows, 0, s.rows);
      for (int64_t t = 0; t < s.n_tokens; ++t) {
        for (int64_t r = 0; r < s.rows; ++r) {
          const size_t i = static_cast<size_t>(t * s.rows + r);
          ASSERT_NEAR(
              got[i], ref[i],
              allowed_error(DType::F32, wf.data() + r * s.cols, x.data() + t * s.cols, s.cols))
              << s.rows << "x" << s.cols << " t=" << t << " r=" << r;
        }
      }
    }
  }
}

// matmul_f16_int16_avx512.cpp's arithmetic, element by element: x per token and block of 32 as
// integers of at most 8191 (d = amax / 8191), each row's block of weights as integers times
// 2^(E - 28) (E its largest biased f16 exponent, at least 1), exact integer sums over each row's
// two column pairs of every 4 (lane h: columns 4j + 2h, +1), one f32 FMA per block and lane with
// the scales' product, then the two lanes added. Blocks of x below 2^-60 count as zeros.
std::vector<float> f16_int16_reference(const std::vector<uint16_t>& w, const std::vector<float>& x,
                                       int64_t rows, int64_t cols, int64_t n_tokens) {
  const int64_t nb = cols / 32;
  std::vector<int32_t> xq(x.size());
  std::vector<float> xd(static_cast<size_t>(n_tokens * nb));
  for (int64_t b = 0; b < n_tokens * nb; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const bool zero = amax < 0x1p-60f;  // below it, a block counts as zeros
    const float inv = zero ? 0.0f : 8191.0f / amax;
    xd[b] = zero ? 0.0f : amax / 8191.0f;
    for (int i = 0; i < 32; ++i)
      xq[b * 32 + i] = static_cast<int32_t>(std::nearbyint(x[b * 32 + i] * inv));
  }
  std::vector<float> y(static_cast<size_t>(n_tokens * rows));
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> wq(static_cast<size_t>(cols));
    std::vector<float> dw(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      int e = 1;
      for (int i = 0; i < 32; ++i) e = std::max(e, (w[r * cols + b * 32 + i] & 0x7fff) >> 10);
      dw[b] = std::ldexp(1.0f, e - 28);
      for (int i = 0; i < 32; ++i) {
        const float v = f16_to_f32(w[r * cols + b * 32 + i]) * std::ldexp(1.0f, 28 - e);
        wq[b * 32 + i] = static_cast<int32_t>(std::nearbyint(v));
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      float acc[2] = {0.0f, 0.0f};
      for (int64_t b = 0; b < nb; ++b) {
        for (int h = 0; h < 2; ++h) {
          int32_t sum = 0;
          for (int j = 0; j < 8; ++j) {
            for (int i = 0; i < 2; ++i) {
              const int64_t c = b * 32 + 4 * j + 2 * h + i;
              sum += wq[c] * xq[t * cols + c];
            }
          }
          acc[h] = std::fma(static_cast<float>(sum), dw[b] * xd[t * nb + b], acc[h]);
        }
      }
      y[t * rows + r] = acc[0] + acc[1];
    }
  }
  return y;
}

// With Matrix::x_as_int16, the AVX-512 f16 kernel is, for kInt16MinTokens tokens or more, exactly
// the integer arithmetic above (the same bits), which stays within the rounding of x and of the
// weights' smaller elements it allows against exact products of the f16 weights and f32 x; below
// that it is the f32 kernel's own.
TEST(PackedMatmulF16AsInt16, Avx512IsTheIntegerArithmeticFromItsMinimumTokens) {
  if (!cpu_features().supports(Isa::Avx512)) {
    GTEST_SKIP() << "this CPU has no AVX-512 (scripts/test.sh runs it in the emulated build)";
  }
  // Passes of 6 groups and tiles of 3 with 1 or 2 groups left (40, 136 rows), token tiles of 4
  // with each remainder, several token chunks (200), and calls below kInt16MinTokens.
  constexpr int64_t kMin = kInt16MinTokens;
  for (const Shape s :
       {Shape{40, 2048, kMin + 1}, Shape{24, 96, kMin + 2}, Shape{136, 64, kMin + 3},
        Shape{8, 64, 200}, Shape{40, 2048, 1}, Shape{24, 96, kMin - 1}}) {
    const std::vector<uint8_t> bytes = make_weights(DType::F16, s.rows, s.cols, 81);
    std::vector<uint16_t> h(bytes.size() / 2);
    std::memcpy(h.data(), bytes.data(), bytes.size());
    // Blocks whose largest weight is subnormal, or zero, and x with a block of zeros and outliers.
    for (int64_t c = 0; c < 32; ++c) {
      h[static_cast<size_t>(c)] = static_cast<uint16_t>(c * 7 % 1024);
      h[static_cast<size_t>(s.cols + c)] = 0;
    }
    const Matrix w{DType::F16, s.rows, s.cols, h.data()};
    std::vector<std::byte> packed(bytes.size());
    Matrix p = pack_for_matmul(w, packed.data(), nullptr, for_isa(Isa::Avx512));
    p.x_as_int16 = true;
    std::vector<float> x = random_floats(static_cast<size_t>(s.n_tokens * s.cols), 9, -2.0f, 2.0f);
    for (int64_t c = 0; c < 32; ++c) {
      x[static_cast<size_t>(c)] = 0.0f;
      if (s.n_tokens > 1) x[static_cast<size_t>(s.cols + c)] *= 0x1p-62f;  // counts as zeros
    }
    for (size_t i = 40; i < x.size(); i += 97) x[i] *= 30.0f;
    std::vector<float> got(static_cast<size_t>(s.n_tokens * s.rows));
    for_isa(Isa::Avx512).matmul_rows(p, x.data(), s.n_tokens, got.data(), s.rows, 0, s.rows);
    if (s.n_tokens < kMin) {
      Matrix plain = p;
      plain.x_as_int16 = false;
      std::vector<float> f32(got.size());
      for_isa(Isa::Avx512).matmul_rows(plain, x.data(), s.n_tokens, f32.data(), s.rows, 0, s.rows);
      EXPECT_EQ(got, f32) << s.rows << "x" << s.cols << " t" << s.n_tokens;
      continue;
    }
    EXPECT_EQ(got, f16_int16_reference(h, x, s.rows, s.cols, s.n_tokens))
        << s.rows << "x" << s.cols << " t" << s.n_tokens;
    // Against exact products: each weight moves by at most 2^-15 of its block's largest (none
    // within 2^3 of it), each x by at most half its block's step amax / 8191.
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      for (int64_t r = 0; r < s.rows; ++r) {
        double exact = 0.0, bound = 0.0, magnitude = 0.0;
        for (int64_t b = 0; b < s.cols / 32; ++b) {
          double wmax = 0.0, xmax = 0.0;
          for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
            wmax = std::max(wmax, std::fabs(double{f16_to_f32(h[r * s.cols + c])}));
            xmax = std::max(xmax, std::fabs(double{x[t * s.cols + c]}));
          }
          for (int64_t c = b * 32; c < b * 32 + 32; ++c) {
            const double wv = f16_to_f32(h[r * s.cols + c]), xv = x[t * s.cols + c];
            exact += wv * xv;
            magnitude += std::fabs(wv * xv);
            bound += std::ldexp(wmax, -15) * std::fabs(xv) + std::fabs(wv) * xmax / 16382.0 +
                     std::ldexp(wmax, -15) * xmax / 16382.0;
          }
        }
        bound += 1e-6 * magnitude;  // f32 sums and scales
        ASSERT_NEAR(got[static_cast<size_t>(t * s.rows + r)], exact, bound)
            << s.rows << "x" << s.cols << " t=" << t << " r=" << r;
      }
    }
  }
}

// An infinity or a NaN in x sends the whole call to the f32 kernel, whose rows carry it (the
// integer path would round it away); one in the weights, its pass to the scalar reference.
TEST(PackedMatmulF16AsInt16, Avx512LeavesNonFiniteValuesToFloatKernels) {
  if (!cpu_features().supports(Isa::Avx512)) {
    GTEST_SKIP() << "this CPU has no AVX-512 (scripts/test.sh runs it in the emulated build)";
  }
  const int64_t rows = 16, cols = 64, n_tokens = kInt16MinTokens + 1;
  const std::vector<uint8_t> bytes = make_weights(DType::F16, rows, cols, 82);
  const Matrix w{DType::F16, rows, cols, bytes.data()};
  std::vector<std::byte> packed(bytes.size());
  Matrix p = pack_for_matmul(w, packed.data(), nullptr, for_isa(Isa::Avx512));
  Matrix f32 = p;
  p.x_as_int16 = true;
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * cols), 10, -2.0f, 2.0f);
    x[static_cast<size_t>(3 * cols + 5)] = bad;  // token 3
    std::vector<float> got(static_cast<size_t>(n_tokens * rows)), want(got.size());
    for_isa(Isa::Avx512).matmul_rows(p, x.data(), n_tokens, got.data(), rows, 0, rows);
    for_isa(Isa::Avx512).matmul_rows(f32, x.data(), n_tokens, want.data(), rows, 0, rows);
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << i;
      } else {
        EXPECT_EQ(got[i], want[i]) << i;
      }
    }
    for (int64_t r = 0; r < rows; ++r) EXPECT_FALSE(std::isfinite(got[3 * rows + r])) << r;
  }
  // An infinite or NaN weight (a broken file) reaches its row's outputs too: its pass runs through
  // the scalar reference.
  for (const uint16_t bad : {uint16_t{0x7c00}, uint16_t{0x7e00}}) {
    std::vector<uint8_t> broken = bytes;
    reinterpret_cast<uint16_t*>(broken.data())[5 * cols + 7] = bad;  // row 5
    const Matrix wb{DType::F16, rows, cols, broken.data()};
    std::vector<std::byte> packed_b(broken.size());
    Matrix pb = pack_for_matmul(wb, packed_b.data(), nullptr, for_isa(Isa::Avx512));
    pb.x_as_int16 = true;
    const std::vector<float> x =
        random_floats(static_cast<size_t>(n_tokens * cols), 11, -2.0f, 2.0f);
    std::vector<float> got(static_cast<size_t>(n_tokens * rows));
    for_isa(Isa::Avx512).matmul_rows(pb, x.data(), n_tokens, got.data(), rows, 0, rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r)
        EXPECT_EQ(std::isfinite(got[t * rows + r]), r != 5) << "t=" << t << " r=" << r;
    }
  }
}

// Every SIMD table quantizes activations exactly as the scalar quantize_acts does, including the
// q4_0 offset's two int16 halves (-8·Σq over i % 4 < 2 and over i % 4 >= 2).
TEST(QuantizedActs, SimdMatchesScalar) {
  const int64_t n_tokens = 3, cols = 256, n_blocks = n_tokens * cols / 32;
  std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * cols), 21, -3.0f, 3.0f);
  for (int j = 0; j < 32; ++j) x[32 + j] = 0.0f;           // an all-zero block: d = 0
  for (int j = 0; j < 32; ++j) x[64 + j] = -1.0f - j % 2;  // every q at -64 or -127
  const QuantizedActs ref = detail::quantize_acts(x.data(), n_tokens, cols);
  const std::vector<int8_t> ref_q(ref.q, ref.q + n_tokens * cols);
  const std::vector<float> ref_d(ref.d, ref.d + n_blocks);
  const std::vector<int32_t> ref_off(ref.q4_offset, ref.q4_offset + n_blocks);
  // Block 2: q alternates -64 (even i) and -127 (odd i); each half holds 8 of each.
  const int32_t half = -8 * 8 * (-64 - 127);
  EXPECT_EQ(ref_off[2], half | (half << 16));
  EXPECT_EQ(ref_off[1], 0);
  for (Isa isa : simd_isas()) {
    std::vector<int8_t> q(ref_q.size());
    std::vector<float> d(ref_d.size());
    std::vector<int32_t> off(ref_off.size());
    for_isa(isa).quantize_acts(x.data(), n_tokens, cols, q.data(), d.data(), off.data());
    EXPECT_EQ(q, ref_q) << isa_label(isa);
    EXPECT_EQ(d, ref_d) << isa_label(isa);
    EXPECT_EQ(off, ref_off) << isa_label(isa);
  }
}

// A table that quantizes one token straight into its kernels' arrangement gives the bits the
// scalar quantize_acts and arrange_acts give together: pairs of blocks with their 4-byte groups
// interleaved, an odd last block as it is (cols 32, 96, 2080), d and q4_offset in block order.
TEST(QuantizedActs, OneTokenArrangedMatchesScalarThenArranged) {
  for (const int64_t cols : {32, 64, 96, 2048, 2080}) {
    const int64_t n_blocks = cols / 32;
    std::vector<float> x = random_floats(static_cast<size_t>(cols), 22, -3.0f, 3.0f);
    for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = 0.0f;  // an all-zero block: d = 0
    const QuantizedActs ref = detail::quantize_acts(x.data(), 1, cols);
    std::vector<int8_t> ref_q(static_cast<size_t>(cols));
    std::vector<float> ref_d(static_cast<size_t>(n_blocks));
    std::vector<int32_t> ref_off(ref_d.size());
    detail::arrange_acts(ref, 0, 1, 1, cols, ref_q.data(), ref_d.data(), ref_off.data());
    int tables = 0;
    for (Isa isa : simd_isas()) {
      const KernelTable& k = for_isa(isa);
      if (k.quantize_acts_arranged == nullptr) continue;
      ++tables;
      std::vector<int8_t> q(ref_q.size());
      std::vector<float> d(ref_d.size());
      std::vector<int32_t> off(ref_off.size());
      k.quantize_acts_arranged(x.data(), cols, q.data(), d.data(), off.data());
      EXPECT_EQ(q, ref_q) << isa_label(isa) << ", " << cols << " columns";
      EXPECT_EQ(d, ref_d) << isa_label(isa) << ", " << cols << " columns";
      EXPECT_EQ(off, ref_off) << isa_label(isa) << ", " << cols << " columns";
    }
    if (tables == 0) GTEST_SKIP() << "no table of this CPU quantizes into an arrangement";
  }
}

// q4_0 at the ends of its integer range: nibbles 0 and 15 against activations of ±127 (d = 1, so
// they quantize exactly), weight scales 1. Every product is then an integer, the float sums are
// exact, and the SIMD kernels must give the scalar result bit for bit: a 16-bit sum that
// overflowed or saturated would show. Shapes: decode over 4 groups and one, the 2-group x 4-token
// tile, and 1-3 token remainders.
TEST(PackedMatmul, Q4ExtremesAreExact) {
  const int64_t rows = 48, cols = 128;
  const uint16_t one = f32_to_f16(1.0f);
  // pattern(r, i) picks weight nibble 15 or 0, sign(t, i) picks x = +127 or -127.
  const auto nibble = [](int p, int64_t r, int64_t i) -> uint8_t {
    switch (p) {
      case 0:
        return 15;
      case 1:
        return 0;
      default:
        return ((r + i / 2) % 3 == 0) ? 0 : 15;
    }
  };
  for (int p = 0; p < 3; ++p) {
    std::vector<BlockQ4_0> blocks(static_cast<size_t>(rows * cols / 32));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < cols / 32; ++b) {
        BlockQ4_0& blk = blocks[static_cast<size_t>(r * (cols / 32) + b)];
        blk.d = one;
        for (int j = 0; j < 16; ++j) {
          const int64_t i = b * 32 + j;
          blk.qs[j] = static_cast<uint8_t>(nibble(p, r, i) | (nibble(p, r, i + 16) << 4));
        }
      }
    }
    const Matrix w{DType::Q4_0, rows, cols, blocks.data()};
    std::vector<std::byte> packed(blocks.size() * sizeof(BlockQ4_0));
    for (int64_t n_tokens : {1, 4, 7}) {
      for (int xs = 0; xs < 3; ++xs) {
        std::vector<float> x(static_cast<size_t>(n_tokens * cols));
        for (size_t i = 0; i < x.size(); ++i) {
          const bool negative = xs == 0 || (xs == 2 && (i / 3) % 2 == 0);
          x[i] = negative ? -127.0f : 127.0f;
        }
        std::vector<float> ref(static_cast<size_t>(n_tokens * rows));
        for_isa(Isa::Scalar).matmul_rows(w, x.data(), n_tokens, ref.data(), rows, 0, rows);
        for (Isa isa : simd_isas()) {
          const Matrix pw = pack_for_matmul(w, packed.data(), nullptr, for_isa(isa));
          for (const Matrix& m : {w, pw}) {
            std::vector<float> got(ref.size());
            for_isa(isa).matmul_rows(m, x.data(), n_tokens, got.data(), rows, 0, rows);
            EXPECT_EQ(got, ref) << isa_label(isa) << " pattern " << p << " x " << xs << ", "
                                << n_tokens << " tokens, "
                                << (is_interleaved(m.layout) ? "packed" : "rows");
          }
        }
      }
    }
  }
}

// matmul() splits a packed matrix over the pool on 8-row group boundaries. 2048 rows of 128
// columns at 16 tokens make 32 chunks of 64 rows for 3 threads, so they are claimed, each
// prefetching the first weights of its thread's next chunk (KernelTable::matmul_rows_then).
TEST(PackedMatmul, PoolSplitMatchesSingleThread) {
  struct Split {
    int64_t n, rows, cols;
  };
  for (const Split s :
       {Split{1, 200, 128}, Split{5, 200, 128}, Split{600, 200, 1024}, Split{16, 2048, 128}})
    for (DType dt : kPackedTypes) {
      ThreadPool pool(3);
      const std::vector<uint8_t> bytes = make_weights(dt, s.rows, s.cols, 3);
      std::vector<std::byte> packed(bytes.size());
      const Matrix p = pack_for_matmul(Matrix{dt, s.rows, s.cols, bytes.data()}, packed.data());
      const std::vector<float> x = random_floats(static_cast<size_t>(s.n * s.cols), 4);
      std::vector<float> expect(static_cast<size_t>(s.n * s.rows)), got(expect.size());
      active().matmul_rows(p, x.data(), s.n, expect.data(), s.rows, 0, s.rows);
      matmul(p, x.data(), s.n, got.data(), pool);
      EXPECT_EQ(got, expect) << dtype_name(dt) << ", " << s.n << " tokens, " << s.rows << " rows";
    }
}

// The tables' `then` entries give the plain entries' bits whatever rows follow: a later range, one
// too close to the end to prefetch a whole pass of, or none (w.rows).
TEST(PackedMatmul, ThenEntriesGiveThePlainBitsWhateverFollows) {
  const int64_t rows = 256, cols = 256;
  const int64_t ranges[][3] = {{0, 64, 192}, {64, 192, 248}, {192, 256, rows}};
  int checked = 0;
  for (Isa isa : simd_isas()) {
    const KernelTable& k = for_isa(isa);
    if (k.matmul_rows_then == nullptr) continue;
    for (DType dt : kPackedTypes) {
      const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 9);
      std::vector<std::byte> packed(bytes.size());
      const Matrix p =
          pack_for_matmul(Matrix{dt, rows, cols, bytes.data()}, packed.data(), nullptr, k);
      for (int64_t n : {1, 4, 16}) {
        const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), 10);
        std::vector<float> expect(static_cast<size_t>(n * rows)), got(expect.size());
        std::vector<float> got_q(expect.size());
        const bool quantized = dt == DType::Q4_0 || dt == DType::Q8_0;
        std::vector<int8_t> q(static_cast<size_t>(n * cols));
        std::vector<float> d(static_cast<size_t>(n * cols / 32));
        std::vector<int32_t> offsets(d.size());
        if (quantized) k.quantize_acts(x.data(), n, cols, q.data(), d.data(), offsets.data());
        const QuantizedActs xa{q.data(), d.data(), offsets.data()};
        for (const auto& [r0, r1, next] : ranges) {
          k.matmul_rows(p, x.data(), n, expect.data(), rows, r0, r1);
          k.matmul_rows_then(p, x.data(), n, got.data(), rows, r0, r1, next);
          if (quantized) k.matmul_rows_quantized_then(p, xa, n, got_q.data(), rows, r0, r1, next);
        }
        EXPECT_EQ(got, expect) << isa_label(isa) << " " << dtype_name(dt) << ", " << n << " tokens";
        if (quantized) {
          EXPECT_EQ(got_q, expect) << isa_label(isa) << " " << dtype_name(dt);
        }
        ++checked;
      }
    }
  }
  if (cpu_features().supports(Isa::Avx512)) {
    EXPECT_GT(checked, 0) << "the AVX-512 table has the then entries";
  }
}

// Decode prefetches its weight streams into L1 or L2 by the CPU (kernels::prefetch_level): both
// instantiations run here, whatever this CPU picks, and give the same bits (the hint changes
// where lines wait, not what is summed). 200 rows: 25 groups, so 4 streams of 6 and one left over.
TEST(PackedMatmul, DecodeGivesTheSameBitsAtEitherPrefetchLevel) {
  for (DType dt : kPackedTypes) {
    const int64_t rows = 200, cols = 2048;
    const std::vector<uint8_t> bytes = make_weights(dt, rows, cols, 5);
    std::vector<std::byte> packed(bytes.size());
    const Matrix p = pack_for_matmul(Matrix{dt, rows, cols, bytes.data()}, packed.data());
    const std::vector<float> x = random_floats(static_cast<size_t>(cols), 6);
    std::vector<float> y[2];
    at_each_prefetch_level([&](PrefetchLevel level) {
      auto& out = y[level == PrefetchLevel::L1 ? 0 : 1];
      out.assign(static_cast<size_t>(rows), 123.0f);
      active().matmul_rows(p, x.data(), 1, out.data(), rows, 0, rows);
    });
    EXPECT_EQ(y[0], y[1]) << dtype_name(dt);
    EXPECT_EQ(std::count(y[0].begin(), y[0].end(), 123.0f), 0) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace autoglm::kernels::testing
