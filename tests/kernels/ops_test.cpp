// Element-wise ops and reductions of every SIMD variant against the scalar reference, on lengths
// that exercise full vectors, tails, and lengths shorter than one vector.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/half.h"
#include "test_util.h"

namespace autoglm::kernels::testing {
namespace {

const std::vector<int64_t> kLengths = {1, 7, 8, 16, 33, 100, 4099};

class Ops : public ::testing::TestWithParam<Isa> {
 protected:
  const KernelTable& ref = for_isa(Isa::Scalar);
  const KernelTable& simd = for_isa(GetParam());
};

TEST_P(Ops, DotWithinTwiceTheSummationBound) {
  for (int64_t n : kLengths) {
    const auto a = random_floats(static_cast<size_t>(n), 1),
               b = random_floats(static_cast<size_t>(n), 2);
    double sum_abs = 0.0;
    for (int64_t i = 0; i < n; ++i) sum_abs += std::fabs(static_cast<double>(a[i]) * b[i]);
    // Both are f32 sums of the same products in different orders: each within n·u·Σ|ab| of exact.
    EXPECT_NEAR(simd.dot(a.data(), b.data(), n), ref.dot(a.data(), b.data(), n),
                2.0 * n * kU * sum_abs)
        << n;
  }
}

TEST_P(Ops, RmsNormRelative) {
  for (int64_t n : kLengths) {
    const auto x = random_floats(static_cast<size_t>(n), 3, -3.0f, 3.0f),
               w = random_floats(static_cast<size_t>(n), 4);
    std::vector<float> a(static_cast<size_t>(n)), b(a);
    ref.rms_norm(x.data(), w.data(), n, 1e-6f, a.data());
    simd.rms_norm(x.data(), w.data(), n, 1e-6f, b.data());
    // The SIMD mean of squares is an f32 sum (relative error <= n·u); rsqrt halves it; plus a few
    // roundings in the products.
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(b[i], a[i], (0.5 * n + 8) * kU * std::fabs(a[i])) << n;
  }
}

// Several rows' softmax blocks side by side give each row what softmax_block gives it alone, to
// the bit, in the scalar table and the SIMD one: 1 to 9 rows (tiles of 4 and the rows left), each
// with its own floor, rows `stride` apart with a gap between them that must stay untouched.
TEST_P(Ops, SoftmaxRowsGiveEachRowItsSoftmaxBlockBits) {
  for (const KernelTable* t : {&ref, &simd}) {
    for (int64_t n_rows : {1, 3, 4, 5, 8, 9}) {
      for (int64_t n : {1, 7, 16, 32, 33, 100}) {
        const int64_t stride = n + 5;
        const auto x = random_floats(static_cast<size_t>(n_rows * stride), 12, -30.0f, 30.0f);
        std::vector<float> floor(static_cast<size_t>(n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
          const float options[] = {-INFINITY, -10.0f, 0.0f, 40.0f};
          floor[static_cast<size_t>(r)] = options[r % 4];
        }
        auto a = x;
        std::vector<SoftmaxStats> stats(static_cast<size_t>(n_rows));
        t->softmax_rows(a.data(), stride, n_rows, n, floor.data(), stats.data());
        for (int64_t r = 0; r < n_rows; ++r) {
          std::vector<float> b(x.begin() + r * stride, x.begin() + r * stride + n);
          const SoftmaxStats one = t->softmax_block(b.data(), n, floor[static_cast<size_t>(r)]);
          const std::string where = std::string(isa_name(t->isa)) + ", " + std::to_string(n_rows) +
                                    " rows of " + std::to_string(n) + ", row " + std::to_string(r);
          EXPECT_EQ(stats[static_cast<size_t>(r)].max, one.max) << where;
          EXPECT_EQ(stats[static_cast<size_t>(r)].sum, one.sum) << where;
          for (int64_t i = 0; i < n; ++i)
            ASSERT_EQ(a[static_cast<size_t>(r * stride + i)], b[static_cast<size_t>(i)]) << where;
          for (int64_t i = n; i < stride; ++i) {
            const auto at = static_cast<size_t>(r * stride + i);
            ASSERT_EQ(a[at], x[at]) << where << ": the gap after it was written";
          }
        }
      }
    }
  }
}

// A block of an online softmax: the max is the larger of the floor (the running max before the
// block) and the block's own; values are e^(x - max), not normalized. Floors below, equal to and
// above the block's max; in the range of 100, scores far below the max underflow towards 0.
TEST_P(Ops, SoftmaxBlockRelativeToTheLargerOfFloorAndMax) {
  for (int64_t n : kLengths) {
    for (float range : {1.0f, 30.0f, 100.0f}) {
      const auto x = random_floats(static_cast<size_t>(n), 8, -range, range);
      const float top = *std::max_element(x.begin(), x.end());
      for (float floor : {-INFINITY, top - 5.0f, top, top + 5.0f}) {
        auto a = x, b = x;
        const SoftmaxStats ra = ref.softmax_block(a.data(), n, floor);
        const SoftmaxStats sb = simd.softmax_block(b.data(), n, floor);
        EXPECT_EQ(ra.max, std::max(top, floor)) << n;
        EXPECT_EQ(sb.max, ra.max) << n;
        EXPECT_NEAR(sb.sum, ra.sum, (8 + 2.0 * n) * kU * ra.sum) << n << " floor " << floor;
        // Polynomial exp: relative error < 8u per element (Cephes bound ~2 ulp, measured on x in
        // [-87, 0]). Values whose true size is below e^-87 are clamped there (absolute 1.7e-38).
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_NEAR(b[i], a[i], 8 * kU * a[i] + 2e-38) << n << " floor " << floor;
          // The reference against exp in double: the f32 difference x - max is off by up to
          // u·|x - max|, which e^ turns into that relative error, plus a few ulp of std::exp;
          // below FLT_MIN the result is subnormal, within half its spacing (7e-46).
          const double shift = double{x[i]} - ra.max;
          EXPECT_NEAR(a[i], std::exp(shift), (4 + std::fabs(shift)) * kU * a[i] + 1e-45) << n;
        }
      }
    }
  }
}

TEST_P(Ops, SiluMulRelative) {
  for (int64_t n : kLengths) {
    const auto g = random_floats(static_cast<size_t>(n), 6, -20.0f, 20.0f),
               u = random_floats(static_cast<size_t>(n), 7);
    std::vector<float> a(static_cast<size_t>(n)), b(a);
    ref.silu_mul(g.data(), u.data(), a.data(), n);
    simd.silu_mul(g.data(), u.data(), b.data(), n);
    // exp within 8u relative; g/(1+e) then ·up adds 3 roundings.
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(b[i], a[i], 12 * kU * std::fabs(a[i]) + 1e-37) << n;
  }
}

TEST_P(Ops, SiluMulExtremeGates) {
  // Beyond the exp clamp: large positive g gives g·up, large negative gives ~0.
  const std::vector<float> g = {-200,   -90,     -88, 88,  90, 200, 0,  -0.0f,
                                1e-30f, -1e-30f, 50,  -50, 3,  -3,  87, -87};
  const std::vector<float> up(g.size(), 1.5f);
  std::vector<float> a(g.size()), b(g.size());
  ref.silu_mul(g.data(), up.data(), a.data(), static_cast<int64_t>(g.size()));
  simd.silu_mul(g.data(), up.data(), b.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(b[i], a[i], 12 * kU * std::fabs(a[i]) + 1e-30) << g[i];
}

TEST_P(Ops, AddExact) {
  for (int64_t n : kLengths) {
    auto a = random_floats(static_cast<size_t>(n), 8);
    auto b = a;
    const auto x = random_floats(static_cast<size_t>(n), 9);
    ref.add(a.data(), x.data(), n);
    simd.add(b.data(), x.data(), n);
    EXPECT_EQ(a, b) << n;  // one correctly rounded addition per element either way
  }
}

TEST_P(Ops, AxpyWithinFmaDifference) {
  for (int64_t n : kLengths) {
    auto a = random_floats(static_cast<size_t>(n), 10);
    auto b = a;
    const auto x = random_floats(static_cast<size_t>(n), 11);
    const auto y0 = a;
    ref.axpy(0.37f, x.data(), a.data(), n);
    simd.axpy(0.37f, x.data(), b.data(), n);
    // Fused vs separate multiply-add: differ by at most the rounding of a·x plus one of the sum.
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(b[i], a[i],
                  2 * kU * (std::fabs(0.37 * x[i]) + std::fabs(y0[i]) + std::fabs(a[i])))
          << n;
    }
  }
}

// Several heads against a block of rows: 2 heads x 4 rows per pass plus single-head and 1-3-row
// tails (1, 3, 4, 5, 8 heads; 1, 5 or 7 rows), outputs n_rows + 2 apart as in attention's
// [head][position] scores.
TEST_P(Ops, DotHeadsWithinTwiceTheSummationBound) {
  for (int64_t n_heads : {1, 3, 4, 5, 8}) {
    for (int64_t n_rows : {1, 5, 7}) {
      for (int64_t n : kLengths) {
        const auto q = random_floats(static_cast<size_t>(n_heads * n), 20);
        const auto keys = random_floats(static_cast<size_t>(n_rows * n), 21);
        std::vector<const float*> rows;
        for (int64_t r = 0; r < n_rows; ++r) rows.push_back(keys.data() + r * n);
        const int64_t stride = n_rows + 2;
        std::vector<float> a(static_cast<size_t>(n_heads * stride), -1.0f), b(a);
        ref.dot_heads(q.data(), n_heads, rows.data(), n_rows, n, 0.5f, a.data(), stride, nullptr);
        // The SIMD op prefetches `ahead` (here the rows again): valid pointers, no effect on y.
        simd.dot_heads(q.data(), n_heads, rows.data(), n_rows, n, 0.5f, b.data(), stride,
                       rows.data());
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t r = 0; r < n_rows; ++r) {
            double sum_abs = 0.0;
            for (int64_t i = 0; i < n; ++i) sum_abs += std::fabs(double{q[h * n + i]} * rows[r][i]);
            EXPECT_NEAR(b[h * stride + r], a[h * stride + r], (n + 1) * kU * sum_abs) << n;
          }
          EXPECT_EQ(b[h * stride + n_rows], -1.0f);  // nothing written between the heads' outputs
        }
      }
    }
  }
}

// Keys stored transposed (a paged cache's K block: element i of position p at kt[i·stride + p]):
// the scalar op must equal the row op on the same keys (the same sums in the same order), f32 and
// f16, and the SIMD ops stay within twice the summation bound of it. Heads 1-13 take every tile
// size (8, 4, 2, 1); 1-24 positions take whole vectors and the positions past them.
// Two whole cache blocks in one call (dot_heads_t_f16_pair, blocks of the SIMD width) give each
// block's scores to the bit as a call per block does, each in its half of out; nothing past them
// is written. Heads 1 to 13 (tiles of 8 or 4, then 4, 2, 1), head sizes 1 to 128, the two
// blocks apart in memory.
TEST_P(Ops, DotHeadsTransposedPairMatchesABlockAtATime) {
  const int64_t bs = simd.pair_positions;
  ASSERT_GT(bs, 0) << "every SIMD table has the pair kernel";
  for (int64_t n_heads : {1, 3, 8, 13}) {
    for (int64_t n : {1, 7, 32, 128}) {
      const auto q = random_floats(static_cast<size_t>(n_heads * n), 50);
      const auto k0 = random_floats(static_cast<size_t>(n * bs), 51);
      const auto k1 = random_floats(static_cast<size_t>(n * bs), 52);
      std::vector<uint16_t> kt0(k0.size()), kt1(k1.size());
      for (size_t i = 0; i < k0.size(); ++i) kt0[i] = f32_to_f16(k0[i]), kt1[i] = f32_to_f16(k1[i]);
      const int64_t out_stride = 2 * bs + 3;
      std::vector<float> pair(static_cast<size_t>(n_heads * out_stride), -1.0f), single(pair);
      simd.dot_heads_t_f16_pair(q.data(), n_heads, kt0.data(), kt1.data(), bs, n, 0.5f, pair.data(),
                                out_stride, kt1.data(), kt0.data(), 64);
      simd.dot_heads_t_f16(q.data(), n_heads, kt0.data(), bs, bs, n, 0.5f, single.data(),
                           out_stride, nullptr, 0);
      simd.dot_heads_t_f16(q.data(), n_heads, kt1.data(), bs, bs, n, 0.5f, single.data() + bs,
                           out_stride, nullptr, 0);
      EXPECT_EQ(pair, single) << n_heads << " heads of " << n;
    }
  }
}

TEST_P(Ops, DotHeadsTransposedMatchRowKeys) {
  for (int64_t n_heads : {1, 3, 8, 13}) {
    for (int64_t n_pos : {1, 5, 16, 24}) {
      for (int64_t n : kLengths) {
        const int64_t stride = n_pos + 3;
        const auto q = random_floats(static_cast<size_t>(n_heads * n), 40);
        const auto kt = random_floats(static_cast<size_t>(n * stride), 41);
        std::vector<uint16_t> kt_h(kt.size());
        std::vector<float> kt_r(kt.size());  // kt rounded to f16
        for (size_t i = 0; i < kt.size(); ++i) {
          kt_h[i] = f32_to_f16(kt[i]);
          kt_r[i] = f16_to_f32(kt_h[i]);
        }
        std::vector<std::vector<float>> rows(static_cast<size_t>(n_pos)), rows_r(rows);
        std::vector<const float*> row_ptrs, row_r_ptrs;
        for (int64_t p = 0; p < n_pos; ++p) {
          for (int64_t i = 0; i < n; ++i) {
            rows[static_cast<size_t>(p)].push_back(kt[static_cast<size_t>(i * stride + p)]);
            rows_r[static_cast<size_t>(p)].push_back(kt_r[static_cast<size_t>(i * stride + p)]);
          }
          row_ptrs.push_back(rows[static_cast<size_t>(p)].data());
          row_r_ptrs.push_back(rows_r[static_cast<size_t>(p)].data());
        }
        const int64_t out_stride = n_pos + 2;
        const auto blank = std::vector<float>(static_cast<size_t>(n_heads * out_stride), -1.0f);
        auto by_rows = blank, by_rows_r = blank, ref_t = blank, ref_h = blank, simd_t = blank,
             simd_h = blank;
        ref.dot_heads(q.data(), n_heads, row_ptrs.data(), n_pos, n, 0.5f, by_rows.data(),
                      out_stride, nullptr);
        ref.dot_heads(q.data(), n_heads, row_r_ptrs.data(), n_pos, n, 0.5f, by_rows_r.data(),
                      out_stride, nullptr);
        ref.dot_heads_t(q.data(), n_heads, kt.data(), stride, n_pos, n, 0.5f, ref_t.data(),
                        out_stride, nullptr, 0);
        ref.dot_heads_t_f16(q.data(), n_heads, kt_h.data(), stride, n_pos, n, 0.5f, ref_h.data(),
                            out_stride, nullptr, 0);
        // The SIMD ops prefetch `ahead` (here the keys again): no effect on the scores.
        simd.dot_heads_t(q.data(), n_heads, kt.data(), stride, n_pos, n, 0.5f, simd_t.data(),
                         out_stride, kt.data(), static_cast<int64_t>(kt.size() * sizeof(float)));
        simd.dot_heads_t_f16(q.data(), n_heads, kt_h.data(), stride, n_pos, n, 0.5f, simd_h.data(),
                             out_stride, kt_h.data(), 64);
        EXPECT_EQ(ref_t, by_rows) << n;
        EXPECT_EQ(ref_h, by_rows_r) << n;
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t p = 0; p < n_pos; ++p) {
            double sum_abs = 0.0, sum_abs_r = 0.0;
            for (int64_t i = 0; i < n; ++i) {
              sum_abs += std::fabs(double{q[h * n + i]} * rows[p][i]);
              sum_abs_r += std::fabs(double{q[h * n + i]} * rows_r[p][i]);
            }
            const size_t o = static_cast<size_t>(h * out_stride + p);
            EXPECT_NEAR(simd_t[o], ref_t[o], (n + 1) * kU * sum_abs) << n;
            EXPECT_NEAR(simd_h[o], ref_h[o], (n + 1) * kU * sum_abs_r) << n;
          }
          // nothing written past a head's positions
          EXPECT_EQ(simd_t[static_cast<size_t>(h * out_stride + n_pos)], -1.0f);
          EXPECT_EQ(simd_h[static_cast<size_t>(h * out_stride + n_pos)], -1.0f);
        }
      }
    }
  }
}

// 1 and 70 rows, lengths below, at and past the 8-vector register block; 4 heads at a time
// and single-head tails.
TEST_P(Ops, AxpyHeadsWithinTheSummationBound) {
  for (int64_t n_heads : {1, 3, 5, 8, 13}) {
    for (int64_t n_rows : {1, 70}) {
      for (int64_t n : kLengths) {
        auto a = random_floats(static_cast<size_t>(n_heads * n), 22);
        auto b = a;
        const auto y0 = a;
        const auto values = random_floats(static_cast<size_t>(n_rows * n), 23);
        std::vector<const float*> rows;
        for (int64_t r = 0; r < n_rows; ++r) rows.push_back(values.data() + r * n);
        const int64_t stride = n_rows + 1;
        const auto coef = random_floats(static_cast<size_t>(n_heads * stride), 24);
        ref.axpy_heads(coef.data(), stride, n_heads, rows.data(), n_rows, a.data(), n, nullptr);
        simd.axpy_heads(coef.data(), stride, n_heads, rows.data(), n_rows, b.data(), n,
                        rows.data());
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t i = 0; i < n; ++i) {
            const size_t k = static_cast<size_t>(h * n + i);
            // The same n_rows + 1 terms summed in the same order, fused or not: each result is
            // within (n_rows + 1)·u·Σ|terms| of exact.
            double sum_abs = std::fabs(y0[k]);
            for (int64_t r = 0; r < n_rows; ++r)
              sum_abs += std::fabs(double{coef[static_cast<size_t>(h * stride + r)]} * rows[r][i]);
            EXPECT_NEAR(b[k], a[k], 2.0 * (n_rows + 1) * kU * sum_abs) << n;
          }
        }
      }
    }
  }
}

// Rows of an f16 KV cache: the same ops over rows of IEEE halves. The scalar f16 op must equal the
// scalar f32 op run on the rows rounded to f16 (exact conversions, the same arithmetic), and the
// SIMD f16 op must stay within the f32 bounds above of it.
struct HalfRows {
  std::vector<uint16_t> h;
  std::vector<float> f;  // h as f32
  std::vector<const uint16_t*> h_rows;
  std::vector<const float*> f_rows;
  HalfRows(int64_t n_rows, int64_t n, uint32_t seed) {
    for (float x : random_floats(static_cast<size_t>(n_rows * n), seed)) {
      h.push_back(f32_to_f16(x));
      f.push_back(f16_to_f32(h.back()));
    }
    for (int64_t r = 0; r < n_rows; ++r) {
      h_rows.push_back(h.data() + r * n);
      f_rows.push_back(f.data() + r * n);
    }
  }
};

TEST_P(Ops, DotHeadsF16RowsMatchTheF32OpOnRoundedRows) {
  for (int64_t n_heads : {1, 3, 4, 5, 8}) {
    for (int64_t n_rows : {1, 6, 7}) {
      for (int64_t n : kLengths) {
        const auto q = random_floats(static_cast<size_t>(n_heads * n), 30);
        const HalfRows keys(n_rows, n, 31);
        const int64_t stride = n_rows + 2;
        std::vector<float> f32(static_cast<size_t>(n_heads * stride), -1.0f), a(f32), b(f32);
        ref.dot_heads(q.data(), n_heads, keys.f_rows.data(), n_rows, n, 0.5f, f32.data(), stride,
                      nullptr);
        ref.dot_heads_f16(q.data(), n_heads, keys.h_rows.data(), n_rows, n, 0.5f, a.data(), stride,
                          nullptr);
        simd.dot_heads_f16(q.data(), n_heads, keys.h_rows.data(), n_rows, n, 0.5f, b.data(), stride,
                           keys.h_rows.data());
        EXPECT_EQ(a, f32) << n;
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t r = 0; r < n_rows; ++r) {
            double sum_abs = 0.0;
            for (int64_t i = 0; i < n; ++i)
              sum_abs += std::fabs(double{q[h * n + i]} * keys.f_rows[r][i]);
            EXPECT_NEAR(b[h * stride + r], a[h * stride + r], (n + 1) * kU * sum_abs) << n;
          }
          EXPECT_EQ(b[h * stride + n_rows], -1.0f);
        }
      }
    }
  }
}

TEST_P(Ops, AxpyHeadsF16RowsMatchTheF32OpOnRoundedRows) {
  for (int64_t n_heads : {1, 3, 5, 8}) {
    for (int64_t n_rows : {1, 70}) {
      for (int64_t n : kLengths) {
        const auto y0 = random_floats(static_cast<size_t>(n_heads * n), 32);
        auto f32 = y0, a = y0, b = y0;
        const HalfRows values(n_rows, n, 33);
        const int64_t stride = n_rows + 1;
        const auto coef = random_floats(static_cast<size_t>(n_heads * stride), 34);
        ref.axpy_heads(coef.data(), stride, n_heads, values.f_rows.data(), n_rows, f32.data(), n,
                       nullptr);
        ref.axpy_heads_f16(coef.data(), stride, n_heads, values.h_rows.data(), n_rows, a.data(), n,
                           nullptr);
        simd.axpy_heads_f16(coef.data(), stride, n_heads, values.h_rows.data(), n_rows, b.data(), n,
                            nullptr);
        EXPECT_EQ(a, f32) << n;
        for (int64_t h = 0; h < n_heads; ++h) {
          for (int64_t i = 0; i < n; ++i) {
            const size_t k = static_cast<size_t>(h * n + i);
            double sum_abs = std::fabs(y0[k]);
            for (int64_t r = 0; r < n_rows; ++r)
              sum_abs += std::fabs(double{coef[static_cast<size_t>(h * stride + r)]} *
                                   values.f_rows[r][i]);
            EXPECT_NEAR(b[k], a[k], 2.0 * (n_rows + 1) * kU * sum_abs) << n;
          }
        }
      }
    }
  }
}

TEST_P(Ops, RopeBothStylesAndPartialRotation) {
  for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::HalfSplit}) {
    for (auto [head_dim, rot] :
         {std::pair{128, 64}, std::pair{128, 128}, std::pair{16, 8}, std::pair{64, 36}}) {
      const int n_heads = 3;
      std::vector<float> cs(static_cast<size_t>(rot / 2)), sn(cs);
      rope_angles(17, rot, 10000.0f, cs.data(), sn.data());
      auto a = random_floats(static_cast<size_t>(n_heads * head_dim), 12);
      auto b = a;
      ref.rope(a.data(), n_heads, head_dim, rot, cs.data(), sn.data(), style);
      simd.rope(b.data(), n_heads, head_dim, rot, cs.data(), sn.data(), style);
      // Two products and a sum, fused or not: within 3 roundings of values bounded by |a|+|b| <= 2.
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(b[i], a[i], 6 * kU) << head_dim << "/" << rot;
    }
  }
}

TEST_P(Ops, RowConversionsAreTheScalarOnes) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const auto x = random_floats(256, 13);
    std::vector<uint8_t> qa(row_bytes(dt, 256)), qb(qa.size());
    ref.quantize_row(dt, x.data(), qa.data(), 256);
    simd.quantize_row(dt, x.data(), qb.data(), 256);
    EXPECT_EQ(qa, qb) << dtype_name(dt);
    std::vector<float> da(256), db(256);
    ref.dequantize_row(dt, qa.data(), da.data(), 256);
    simd.dequantize_row(dt, qa.data(), db.data(), 256);
    EXPECT_EQ(da, db) << dtype_name(dt);
  }
}

// The vector f16 conversion (the KV cache's stores) against the scalar one, bit for bit, where
// they could part: ties between two halves (nearest even), results that are subnormal halves or
// round up into the normal range, the largest finite half and the overflow threshold 65520,
// infinities, zeros, f32 subnormals and NaNs with payloads (sign | 0x7e00 either way); lengths
// that leave tails.
TEST_P(Ops, F16RowConversionMatchesScalarBits) {
  std::vector<float> x;
  for (uint32_t mant : {0x1000u, 0x3000u, 0x0fffu, 0x1001u, 0x2000u, 0x7fffffu})
    for (uint32_t exp : {100u, 102u, 103u, 110u, 112u, 113u, 120u, 127u, 142u})
      for (uint32_t sign : {0u, 0x80000000u}) x.push_back(bits_to_f32(sign | exp << 23 | mant));
  for (float f : {65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e30f, 6.1035156e-5f, 6.097555e-5f,
                  5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 0.0f, -0.0f, 1e-40f, -1e-40f})
    for (float sign : {1.0f, -1.0f}) x.push_back(sign * f);
  for (uint32_t bits : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u, 0x7f800001u,
                        0x7fffffffu, 0xffa00000u, 0x7fc0abcdu})
    x.push_back(bits_to_f32(bits));
  const auto wide = random_floats(300, 41, -70000.0f, 70000.0f);
  x.insert(x.end(), wide.begin(), wide.end());
  const auto small = random_floats(300, 42, -1e-4f, 1e-4f);
  x.insert(x.end(), small.begin(), small.end());
  for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{17}, static_cast<int64_t>(x.size())}) {
    std::vector<uint16_t> a(static_cast<size_t>(n)), b(a.size());
    ref.quantize_row(DType::F16, x.data(), a.data(), n);
    simd.quantize_row(DType::F16, x.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(b[static_cast<size_t>(i)], a[static_cast<size_t>(i)])
          << "x = " << x[static_cast<size_t>(i)] << " (bits " << std::hex
          << f32_to_bits(x[static_cast<size_t>(i)]) << "), n = " << std::dec << n;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, Ops, ::testing::ValuesIn(simd_isas()),
                         [](const ::testing::TestParamInfo<Isa>& p) { return isa_label(p.param); });

// The scalar references against the equations in double precision.
TEST(OpsScalar, MatchEquations) {
  const KernelTable& ref = for_isa(Isa::Scalar);
  const int64_t n = 77;
  const auto x = random_floats(n, 20, -3.0f, 3.0f), w = random_floats(n, 21);
  std::vector<float> y(n);
  ref.rms_norm(x.data(), w.data(), n, 1e-5f, y.data());
  double ms = 0.0;
  for (float v : x) ms += static_cast<double>(v) * v;
  const double inv = 1.0 / std::sqrt(ms / n + 1e-5);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(y[i], x[i] * inv * w[i], 8 * kU * std::fabs(x[i] * inv * w[i]));

  auto s = x;
  const SoftmaxStats stats = ref.softmax_block(s.data(), n, -INFINITY);
  double mx = -1e30, sum = 0.0;
  for (float v : x) mx = std::fmax(mx, v);
  for (float v : x) sum += std::exp(v - mx);
  EXPECT_EQ(stats.max, mx);
  EXPECT_NEAR(stats.sum, sum, (4 + n) * kU * sum);
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp(x[i] - mx);
    EXPECT_NEAR(s[i], e, (4 + n) * kU * e);
  }

  ref.silu_mul(x.data(), w.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double e = x[i] / (1.0 + std::exp(-static_cast<double>(x[i]))) * w[i];
    EXPECT_NEAR(y[i], e, 8 * kU * std::fabs(e));
  }
}

}  // namespace
}  // namespace autoglm::kernels::testing
