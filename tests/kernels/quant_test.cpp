// Row conversions: hand-derived q8_0 / q4_0 bytes (ggml reference rounding), q6_K decoding against
// an independent packing, round-trip error bounds per dtype, and the scalar f16/bf16 conversions
// against the hardware instructions.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace autoglm::kernels::testing {
namespace {

const KernelTable& ref() {
  return for_isa(Isa::Scalar);
}

TEST(QuantQ8_0, RoundsHalfAwayFromZeroLikeRoundf) {
  // amax = 127 so d = 1 and id = 1 exactly: q = roundf(x). roundf(2.5) = 3, roundf(-2.5) = -3,
  // roundf(0.5) = 1 (nearest-even would give 2, -2, 0).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = -126.4f;
  BlockQ8_0 b{};
  ref().quantize_row(DType::Q8_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x3c00);  // f16 1.0
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 1);
  EXPECT_EQ(b.qs[4], -126);
  EXPECT_EQ(b.qs[5], 0);
}

TEST(QuantQ8_0, AllZeroBlockHasZeroScale) {
  std::vector<float> x(64, 0.0f);
  BlockQ8_0 b[2];
  ref().quantize_row(DType::Q8_0, x.data(), b, 64);
  for (const auto& blk : b) {
    EXPECT_EQ(blk.d, 0);
    for (int8_t q : blk.qs) EXPECT_EQ(q, 0);
  }
}

TEST(QuantQ4_0, SignedMaxScaleTruncationAndClamp) {
  // max = +8 (first of largest magnitude) -> d = 8 / -8 = -1, id = -1, q = min(15, (int8)(-x
  // + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = 8.0f;   // -8 + 8.5 = 0.5 -> 0      (value -1·(0-8) = 8)
  x[1] = -7.0f;  //  7 + 8.5 = 15.5 -> 15    (value -7)
  x[2] = 2.5f;   // -2.5 + 8.5 = 6 -> 6      (value 2)
  x[3] = -0.5f;  //  0.5 + 8.5 = 9 -> 9      (value -1)
  x[4] = -8.0f;  //  8 + 8.5 = 16.5 -> 16 -> clamped 15 (value -7: ggml's quirk)
  x[16] = 1.2f;  // -1.2 + 8.5 = 7.3 -> 7    (high nibble of qs[0])
  BlockQ4_0 b{};
  ref().quantize_row(DType::Q4_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0xbc00);  // f16 -1.0
  EXPECT_EQ(b.qs[0], 0x70);
  EXPECT_EQ(b.qs[1], 0x8f);  // x[1] -> 15, x[17] = 0 -> 8
  EXPECT_EQ(b.qs[2], 0x86);
  EXPECT_EQ(b.qs[3], 0x89);
  EXPECT_EQ(b.qs[4], 0x8f);
  std::vector<float> y(32);
  ref().dequantize_row(DType::Q4_0, &b, y.data(), 32);
  EXPECT_EQ(y[0], 8.0f);
  EXPECT_EQ(y[1], -7.0f);
  EXPECT_EQ(y[2], 2.0f);
  EXPECT_EQ(y[3], -1.0f);
  EXPECT_EQ(y[4], -7.0f);
  EXPECT_EQ(y[16], 1.0f);
}

TEST(QuantQ4_0, NegativeMaxGivesPositiveScale) {
  std::vector<float> x(32, 0.0f);
  x[5] = -4.0f;  // d = -4 / -8 = 0.5
  x[6] = 3.0f;   // 3·2 + 8.5 = 14.5 -> 14
  BlockQ4_0 b{};
  ref().quantize_row(DType::Q4_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x3800);  // f16 0.5
  EXPECT_EQ(b.qs[5] & 0xf, 0);
  EXPECT_EQ(b.qs[6] & 0xf, 14);
}

// Packs 6-bit values the way ggml's q6_K quantizer writes them (ql low/high nibbles, qh 2-bit
// fields), independently of the decoder under test.
BlockQ6_K pack_q6_k(const int* L, const int8_t* scales, float d) {
  BlockQ6_K b{};
  for (int half = 0; half < 2; ++half) {
    const int* q = L + 128 * half;
    for (int l = 0; l < 32; ++l) {
      b.ql[64 * half + l] = static_cast<uint8_t>((q[l] & 0xf) | ((q[l + 64] & 0xf) << 4));
      b.ql[64 * half + l + 32] = static_cast<uint8_t>((q[l + 32] & 0xf) | ((q[l + 96] & 0xf) << 4));
      b.qh[32 * half + l] = static_cast<uint8_t>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) |
                                                 ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
    }
  }
  std::memcpy(b.scales, scales, 16);
  b.d = f32_to_f16(d);
  return b;
}

TEST(QuantQ6_K, DequantizeMatchesLayout) {
  int L[256];
  int8_t scales[16];
  for (int e = 0; e < 256; ++e) L[e] = (e * 7 + 3) % 64;
  for (int g = 0; g < 16; ++g) scales[g] = static_cast<int8_t>(g * 9 - 70);
  const BlockQ6_K b[2] = {pack_q6_k(L, scales, 0.5f), pack_q6_k(L, scales, -0.25f)};
  std::vector<float> y(512);
  ref().dequantize_row(DType::Q6_K, b, y.data(), 512);
  for (int e = 0; e < 512; ++e) {
    const float d = e < 256 ? 0.5f : -0.25f;
    EXPECT_EQ(y[e], d * scales[(e % 256) / 16] * (L[e % 256] - 32)) << e;
  }
}

TEST(QuantRoundTrip, ErrorWithinPerDtypeBound) {
  const int64_t n = 4096;
  const auto x = random_floats(n, 42, -3.0f, 3.0f);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> q(row_bytes(dt, n));
    std::vector<float> y(n);
    ref().quantize_row(dt, x.data(), q.data(), n);
    ref().dequantize_row(dt, q.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      double bound = 0.0;
      const double ax = std::fabs(x[i]);
      if (dt == DType::F16)
        bound = ax * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);  // half ulp (+subnormal)
      if (dt == DType::BF16) bound = ax * std::ldexp(1.0, -8);
      if (dt == DType::Q8_0 || dt == DType::Q4_0) {
        const int64_t b = i / 32;
        const auto* bytes = q.data() + b * dtype_info(dt).block_bytes;
        uint16_t dbits;
        std::memcpy(&dbits, bytes, 2);
        const double d16 = std::fabs(f16_to_f32(dbits));
        // Half a step, plus the f16 rounding of d (2^-11 relative) times the largest |q|; q4_0's
        // clamp at 15 can cost a full step on the element equal to -max.
        bound = dt == DType::Q8_0 ? d16 / 2 + 127 * d16 * std::ldexp(1.0, -10)
                                  : d16 + 8 * d16 * std::ldexp(1.0, -10);
      }
      ASSERT_LE(std::fabs(y[i] - x[i]), bound) << dtype_name(dt) << " i=" << i;
    }
  }
}

TEST(QuantErrors, BadLengthAndTypeAreErrors) {
  std::vector<float> x(48);
  std::vector<uint8_t> q(256);
  EXPECT_THROW(ref().quantize_row(DType::Q8_0, x.data(), q.data(), 48), Error);
  EXPECT_THROW(ref().quantize_row(DType::Q6_K, x.data(), q.data(), 256), Error);
  EXPECT_THROW(ref().dequantize_row(DType::I32, q.data(), x.data(), 8), Error);
}

// --- scalar half conversions vs the hardware ---

__attribute__((target("f16c"))) uint16_t hw_f32_to_f16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}
__attribute__((target("avx512f,avx512bf16"))) void hw_f32_to_bf16(const float* in16,
                                                                  uint16_t* out16) {
  const __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(in16));
  std::memcpy(out16, &r, 32);
}

std::vector<uint32_t> interesting_bits() {
  std::vector<uint32_t> v = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                             0x7f800001u, 0x00000001u, 0x807fffffu, 0x38800000u, 0x387fe000u,
                             0x33000000u, 0x33000001u, 0x477fe000u, 0x477ff000u, 0x477fefffu,
                             0x7f7fffffu, 0x3f800000u, 0x3f801000u, 0x3f803000u, 0x3f808000u};
  std::mt19937 rng(5);
  for (int i = 0; i < 1000000; ++i) v.push_back(static_cast<uint32_t>(rng()));
  // Values near the f16 range (exponents 2^-26 .. 2^16) where rounding decides most bits.
  for (int i = 0; i < 300000; ++i)
    v.push_back(0x32800000u + static_cast<uint32_t>(rng() % 0x15800000u));
  return v;
}

TEST(HalfConversions, F32ToF16MatchesF16c) {
  if (!cpu_features().f16c) GTEST_SKIP() << "no F16C on this CPU";
  for (uint32_t bits : interesting_bits()) {
    const float f = bits_to_f32(bits);
    const uint16_t mine = f32_to_f16(f), hw = hw_f32_to_f16(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(f16_to_f32(mine))) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(mine, hw) << std::hex << bits;
  }
}

TEST(HalfConversions, F16ToF32MatchesF16cOnAllValues) {
  if (!cpu_features().f16c) GTEST_SKIP() << "no F16C on this CPU";
  for (uint32_t h = 0; h < 65536; ++h) {
    const float mine = f16_to_f32(static_cast<uint16_t>(h)),
                hw = hw_f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(hw)) {
      ASSERT_TRUE(std::isnan(mine)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(f32_to_bits(mine), f32_to_bits(hw)) << std::hex << h;  // subnormals included
  }
}

TEST(HalfConversions, F32ToBf16MatchesAvx512Bf16) {
  if (!cpu_features().avx512bf16) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::vector<uint32_t> bits = interesting_bits();
  bits.resize(bits.size() / 16 * 16);
  for (size_t i = 0; i < bits.size(); i += 16) {
    float in[16];
    uint16_t hw[16];
    for (int j = 0; j < 16; ++j) in[j] = bits_to_f32(bits[i + j]);
    hw_f32_to_bf16(in, hw);
    for (int j = 0; j < 16; ++j) {
      const float f = in[j];
      const uint16_t mine = f32_to_bf16(f);
      if (std::isnan(f)) {
        ASSERT_TRUE(std::isnan(bf16_to_f32(mine))) << std::hex << bits[i + j];
        continue;
      }
      // vcvtneps2bf16 flushes subnormal inputs to zero (keeping the sign); ours rounds them.
      if (std::fpclassify(f) == FP_SUBNORMAL) {
        ASSERT_EQ(hw[j], static_cast<uint16_t>((bits[i + j] >> 16) & 0x8000u));
        continue;
      }
      ASSERT_EQ(mine, hw[j]) << std::hex << bits[i + j];
    }
  }
}

TEST(HalfConversions, Bf16ToF32IsExactShift) {
  for (uint32_t h = 0; h < 65536; ++h) {
    ASSERT_EQ(f32_to_bits(bf16_to_f32(static_cast<uint16_t>(h))), h << 16);
  }
}

}  // namespace
}  // namespace autoglm::kernels::testing
