// attention(), rope_angles() and moe_route() against naive implementations of the equations
// (GLM_ARCHITECTURES.md sections 0 and E.3), in double precision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "test_util.h"

namespace autoglm::kernels::testing {
namespace {

// Naive causal GQA attention: query t of head h at position q_pos0 + t, KV head h / (nh / nkv).
std::vector<double> naive_attention(const AttentionArgs& a, const std::vector<float>& kc,
                                    const std::vector<float>& vc) {
  const int g = a.n_heads / a.n_kv_heads, d = a.head_dim;
  std::vector<double> out(static_cast<size_t>(a.n_q * a.n_heads * d), 0.0);
  for (int64_t t = 0; t < a.n_q; ++t) {
    for (int h = 0; h < a.n_heads; ++h) {
      const float* q = a.q + (t * a.n_heads + h) * d;
      const int64_t n_ctx = a.q_pos0 + t + 1;
      std::vector<double> s(static_cast<size_t>(n_ctx) + 1);  // +1: never empty (GCC null warning)
      for (int64_t j = 0; j < n_ctx; ++j) {
        const float* k = kc.data() + (j * a.n_kv_heads + h / g) * d;
        double dot = 0.0;
        for (int i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * k[i];
        s[j] = dot * a.scale;
      }
      double mx = s[0];
      for (int64_t j = 0; j < n_ctx; ++j) mx = std::fmax(mx, s[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < n_ctx; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t j = 0; j < n_ctx; ++j) {
        const float* v = vc.data() + (j * a.n_kv_heads + h / g) * d;
        for (int i = 0; i < d; ++i) out[(t * a.n_heads + h) * d + i] += s[j] / sum * v[i];
      }
    }
  }
  return out;
}

struct AttnCase {
  int64_t n_q, q_pos0;
  int n_heads, n_kv_heads, head_dim;
};

// The case's shape with q and out; the cache (flat or paged, f32 or f16) is the caller's to set.
AttentionArgs case_args(const AttnCase& c, const std::vector<float>& q, std::vector<float>& out) {
  AttentionArgs a;
  a.q = q.data(), a.out = out.data();
  a.n_q = c.n_q, a.q_pos0 = c.q_pos0, a.n_heads = c.n_heads, a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim, a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return a;
}

// Runs `a` (whose out is `out`) and compares with the naive loop over k and v as f32. Outputs are
// convex combinations of |v| <= 1: errors come from the f32 scores (head_dim-long dots of
// magnitude <= 4·d·scale), exp and the n_ctx-long sums; 1e-5 absolute covers (d + n_ctx)·u times
// these magnitudes with margin for d = 128.
void expect_naive_result(const AttentionArgs& a, const std::vector<float>& out,
                         const std::vector<float>& k, const std::vector<float>& v,
                         ThreadPool& pool) {
  attention(a, pool);
  const std::vector<double> expect = naive_attention(a, k, v);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], expect[i], 1e-5) << i;
}

// Query heads sharing a KV head run together. {9, 70, 4, 2, 32} and {6, 60, 2, 1, 16} read past
// the first 64-row block of the cache, with causal ends on both sides of its boundary; the
// one-token cases from 40 positions on past the first 32-row block, their step. With fewer
// (token, KV head) pairs than the pool's 3 threads and at least 512 positions, each pair's context
// is split into chunks whose softmaxes are merged: {1, 700, 8, 1, 64} into 2 chunks,
// {1, 1000, 8, 1, 64} and {1, 2047, 16, 1, 128} into 3 (of 333-683 positions), and
// {2, 600, 4, 1, 32} (2 pairs) into 2 per token, with different context lengths.
TEST(Attention, MatchesNaiveTripleLoop) {
  ThreadPool pool(3);
  for (const AttnCase& c :
       {AttnCase{1, 0, 2, 2, 16}, AttnCase{3, 5, 4, 2, 16}, AttnCase{5, 0, 8, 1, 128},
        AttnCase{4, 11, 6, 3, 24}, AttnCase{1, 40, 4, 4, 128}, AttnCase{1, 40, 8, 1, 64},
        AttnCase{1, 17, 8, 2, 32}, AttnCase{1, 9, 5, 1, 16}, AttnCase{9, 70, 4, 2, 32},
        AttnCase{6, 60, 2, 1, 16}, AttnCase{1, 700, 8, 1, 64}, AttnCase{1, 1000, 8, 1, 64},
        AttnCase{1, 2047, 16, 1, 128}, AttnCase{2, 600, 4, 1, 32}}) {
    const int64_t n_ctx = c.q_pos0 + c.n_q;
    const auto q = random_floats(static_cast<size_t>(c.n_q * c.n_heads * c.head_dim), 1, -2, 2);
    const auto k = random_floats(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim), 2, -2, 2);
    const auto v = random_floats(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim), 3);
    std::vector<float> out(q.size(), 123.0f);
    AttentionArgs a = case_args(c, q, out);
    a.k = k.data(), a.v = v.data();
    expect_naive_result(a, out, k, v, pool);
  }
}

// A paged copy of a flat f16 cache [n_ctx][n_kv_heads][head_dim]: blocks of `block` positions,
// each KV head's part of a block V [block][head_dim], K [head_dim][block] (transposed). The heads'
// parts lie side by side in each block, or (head_regions, as the KV pool stores them) each head's
// parts of every block side by side in a region of its own, kv_head_stride() bytes from the next
// head's. The unused positions of the last block hold NaN, so reading past the context would
// show.
struct PagedF16 {
  std::vector<uint16_t> k, v;
  std::vector<const void*> k_blocks, v_blocks;
  int64_t n_blocks, n_kv_heads, head_dim, block;
  bool head_regions;

  PagedF16(const std::vector<uint16_t>& kh, const std::vector<uint16_t>& vh, int64_t n_ctx,
           int64_t n_kv_heads_, int64_t head_dim_, int64_t block_, bool head_regions_ = false)
      : n_blocks((n_ctx + block_ - 1) / block_),
        n_kv_heads(n_kv_heads_),
        head_dim(head_dim_),
        block(block_),
        head_regions(head_regions_) {
    const int64_t row = n_kv_heads * head_dim;
    k.assign(static_cast<size_t>(n_blocks * block * row), 0x7e00);
    v = k;
    for (int64_t j = 0; j < n_ctx; ++j) {
      for (int64_t h = 0; h < n_kv_heads; ++h) {
        const int64_t head = part(j / block, h);
        for (int64_t i = 0; i < head_dim; ++i)
          k[static_cast<size_t>(head + i * block + j % block)] =
              kh[static_cast<size_t>(j * row + h * head_dim + i)];
        std::copy_n(vh.begin() + j * row + h * head_dim, head_dim,
                    v.begin() + head + (j % block) * head_dim);
      }
    }
    for (int64_t b = 0; b < n_blocks; ++b) {
      k_blocks.push_back(k.data() + part(b, 0));
      v_blocks.push_back(v.data() + part(b, 0));
    }
  }
  // Elements from the start of k (or v) to KV head h's part of block b.
  int64_t part(int64_t b, int64_t h) const {
    return (head_regions ? h * n_blocks + b : b * n_kv_heads + h) * block * head_dim;
  }
  int64_t kv_head_stride() const {
    return head_regions ? n_blocks * block * head_dim * int64_t{sizeof(uint16_t)} : 0;
  }
};

// A case's q and its cache in f16 (kh, vh) and as f32 (k, v: the f16 values, for the naive loop),
// random from seed, seed + 1 and seed + 2.
struct F16Data {
  std::vector<float> q, k, v;
  std::vector<uint16_t> kh, vh;

  F16Data(const AttnCase& c, uint32_t seed) {
    const int64_t n_ctx = c.q_pos0 + c.n_q;
    const int64_t row = int64_t{c.n_kv_heads} * c.head_dim;
    q = random_floats(static_cast<size_t>(c.n_q * c.n_heads * c.head_dim), seed, -2, 2);
    k = random_floats(static_cast<size_t>(n_ctx * row), seed + 1, -2, 2);
    v = random_floats(static_cast<size_t>(n_ctx * row), seed + 2);
    kh.resize(k.size()), vh.resize(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
      kh[i] = f32_to_f16(k[i]), vh[i] = f32_to_f16(v[i]);
      k[i] = f16_to_f32(kh[i]), v[i] = f16_to_f32(vh[i]);
    }
  }
};

// An f16 cache, flat and paged (blocks of 16 positions, so the 70-position case crosses several,
// and of 24, which divide neither the kernel's 64-row steps nor its 32-row steps for one query
// token, as in the 150-position case; 8 and 16 are AVX2's and AVX-512's widths, whose whole
// blocks the scores take two at a time (KernelTable::dot_heads_t_f16_pair); the KV heads' parts
// side by side in each block or in regions of their own): the kernel converts each row as it loads
// it, so it must match the naive loop run on the same values rounded to f16, within the f32
// tolerance above.
TEST(Attention, F16CacheMatchesNaiveOnRoundedValues) {
  ThreadPool pool(3);
  for (const AttnCase& c :
       {AttnCase{1, 0, 2, 2, 16}, AttnCase{3, 5, 4, 2, 16}, AttnCase{1, 40, 8, 1, 64},
        AttnCase{9, 70, 4, 2, 32}, AttnCase{2, 30, 8, 2, 128}, AttnCase{1, 150, 16, 2, 64}}) {
    const int64_t n_ctx = c.q_pos0 + c.n_q;
    const F16Data d(c, 1);
    for (int64_t layout : {0, 8, 16, 24, -16, -24}) {  // 0: flat; -block: head regions
      std::vector<float> out(d.q.size(), 123.0f);
      AttentionArgs a = case_args(c, d.q, out);
      a.kv_type = DType::F16;
      std::optional<PagedF16> paged;
      if (layout != 0) {
        const int64_t block = std::abs(layout);
        paged.emplace(d.kh, d.vh, n_ctx, c.n_kv_heads, c.head_dim, block, layout < 0);
        a.k_blocks = paged->k_blocks.data(), a.v_blocks = paged->v_blocks.data();
        a.block_size = block;
        a.kv_head_stride = paged->kv_head_stride();
      } else {
        a.k = d.kh.data(), a.v = d.vh.data();
      }
      expect_naive_result(a, out, d.k, d.v, pool);
    }
  }
}

// The KV-cache ops prefetch the next block into L1 or L2 by the CPU (kernels::prefetch_level):
// each level's instantiation runs here, on a paged f16 cache of 300 positions (19 blocks, 10 of the
// kernel's 32-row steps for one query token), and both give the same bits, within the naive loop's
// tolerance.
TEST(Attention, EitherPrefetchLevelGivesTheSameBits) {
  ThreadPool pool(2);
  const AttnCase c{1, 299, 8, 2, 128};
  const F16Data d(c, 7);
  const PagedF16 paged(d.kh, d.vh, c.q_pos0 + c.n_q, c.n_kv_heads, c.head_dim, 16);
  std::vector<float> out[2];
  at_each_prefetch_level([&](PrefetchLevel level) {
    auto& o = out[level == PrefetchLevel::L1 ? 0 : 1];
    o.assign(d.q.size(), 123.0f);
    AttentionArgs a = case_args(c, d.q, o);
    a.kv_type = DType::F16;
    a.k_blocks = paged.k_blocks.data(), a.v_blocks = paged.v_blocks.data();
    a.block_size = 16;
    expect_naive_result(a, o, d.k, d.v, pool);
  });
  EXPECT_EQ(out[0], out[1]);
}

// A batched step's sequences in one call: each sequence's output must be the one a call of its own
// gives, to the bit (the same units, the same chunk splits). 8 heads and 2 KV heads with different
// query counts and contexts: one-token decodes, a prompt of 9 tokens, and contexts of 600 and 1100
// positions that split into chunks on 3 threads, mixed with ones that do not; the first chunked
// one has head_dim 64, the others 32, so their chunk buffers must not overlap.
TEST(Attention, BatchGivesEachSequenceItsOwnResult) {
  ThreadPool pool(3);
  const std::vector<AttnCase> cases = {AttnCase{1, 900, 8, 2, 64}, AttnCase{1, 40, 8, 2, 32},
                                       AttnCase{9, 70, 8, 2, 32},  AttnCase{1, 600, 8, 2, 32},
                                       AttnCase{1, 0, 8, 2, 32},   AttnCase{1, 1100, 8, 2, 32},
                                       AttnCase{3, 5, 8, 2, 32}};
  std::vector<std::vector<float>> qs, ks, vs, alone, together;
  std::vector<AttentionArgs> batch;
  for (size_t i = 0; i < cases.size(); ++i) {
    const AttnCase& c = cases[i];
    const int64_t n_ctx = c.q_pos0 + c.n_q;
    const auto seed = static_cast<uint32_t>(10 * i);
    qs.push_back(random_floats(static_cast<size_t>(c.n_q * c.n_heads * c.head_dim), seed + 1));
    ks.push_back(random_floats(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim), seed + 2));
    vs.push_back(random_floats(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim), seed + 3));
    alone.emplace_back(qs.back().size(), 123.0f);
    together.emplace_back(qs.back().size(), 456.0f);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    AttentionArgs a = case_args(cases[i], qs[i], alone[i]);
    a.k = ks[i].data(), a.v = vs[i].data();
    attention(a, pool);
    a.out = together[i].data();
    batch.push_back(a);
  }
  attention(std::span<const AttentionArgs>(batch), pool);
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(together[i], alone[i]) << "sequence " << i;
}

// Attends over `missing` (the full cache without the last position's key and value) with the
// kernel storing them, and over `full` without: the caches must end equal, the outputs to the bit.
void expect_kernel_stores(const AttnCase& c, const F16Data& d, const PagedF16& full,
                          PagedF16& missing, ThreadPool& pool) {
  const int64_t n_ctx = c.q_pos0 + 1, block = full.block;
  const int64_t row = int64_t{c.n_kv_heads} * c.head_dim;
  const int64_t last_block = (n_ctx - 1) / block, o = (n_ctx - 1) % block;
  for (int64_t h = 0; h < c.n_kv_heads; ++h) {
    const int64_t head = missing.part(last_block, h);
    for (int64_t i = 0; i < c.head_dim; ++i) {
      missing.k[static_cast<size_t>(head + i * block + o)] = 0x7e00;
      missing.v[static_cast<size_t>(head + o * c.head_dim + i)] = 0x7e00;
    }
  }
  std::vector<float> expect(d.q.size(), 123.0f), got(d.q.size(), 456.0f);
  AttentionArgs a = case_args(c, d.q, expect);
  a.kv_type = DType::F16;
  a.block_size = block;
  a.kv_head_stride = full.kv_head_stride();
  a.k_blocks = full.k_blocks.data(), a.v_blocks = full.v_blocks.data();
  attention(a, pool);
  a.out = got.data();
  a.k_blocks = missing.k_blocks.data(), a.v_blocks = missing.v_blocks.data();
  a.new_k = d.k.data() + (n_ctx - 1) * row;
  a.new_v = d.v.data() + (n_ctx - 1) * row;
  a.k_store = missing.k.data() + missing.part(last_block, 0) + o;
  a.v_store = missing.v.data() + missing.part(last_block, 0) + o * c.head_dim;
  attention(a, pool);
  const std::string where = "context " + std::to_string(n_ctx) + ", " +
                            std::to_string(pool.size()) + " threads, heads " +
                            (full.head_regions ? "in regions" : "side by side");
  EXPECT_EQ(missing.k, full.k) << where;
  EXPECT_EQ(missing.v, full.v) << where;
  EXPECT_EQ(got, expect) << where;
}

// Decode may leave its own key and value to the kernel (AttentionArgs::new_k): the cache's entry
// for the token's position starts as NaN, the kernel stores the token's f32 key and value (already
// f16 values, so rounding keeps them) and attends. The cache must end as the full paged copy, and
// the output must be that of a call over the full copy, to the bit: contexts of 1 to 1101
// positions (crossing blocks; 1101 splits each KV head's context into 2 chunks on 3 threads, and
// only the last chunk's thread stores), one KV head per thread or both on one; the KV heads' parts
// side by side in each block or in regions of their own.
TEST(Attention, StoresTheTokensOwnKeyAndValueWhenAsked) {
  for (int threads : {1, 3}) {
    ThreadPool pool(threads);
    for (const AttnCase& c : {AttnCase{1, 0, 8, 2, 128}, AttnCase{1, 40, 8, 2, 32},
                              AttnCase{1, 300, 16, 2, 64}, AttnCase{1, 1100, 8, 2, 32}}) {
      for (bool regions : {false, true}) {
        const int64_t n_ctx = c.q_pos0 + 1, block = 16;
        const F16Data d(c, 21);
        const PagedF16 full(d.kh, d.vh, n_ctx, c.n_kv_heads, c.head_dim, block, regions);
        PagedF16 missing(d.kh, d.vh, n_ctx, c.n_kv_heads, c.head_dim, block, regions);
        expect_kernel_stores(c, d, full, missing, pool);
      }
    }
  }
}

// The kernel stores a new key and value for one query token over a paged cache only.
TEST(Attention, RejectsStoringForSeveralTokens) {
  ThreadPool pool(1);
  const AttnCase c{2, 5, 4, 2, 16};
  const F16Data d(c, 3);
  PagedF16 paged(d.kh, d.vh, c.q_pos0 + c.n_q, c.n_kv_heads, c.head_dim, 16);
  std::vector<float> out(d.q.size());
  AttentionArgs a = case_args(c, d.q, out);
  a.kv_type = DType::F16;
  a.block_size = 16;
  a.k_blocks = paged.k_blocks.data(), a.v_blocks = paged.v_blocks.data();
  a.new_k = d.k.data(), a.new_v = d.v.data();
  a.k_store = paged.k.data(), a.v_store = paged.v.data();
  EXPECT_THROW(attention(a, pool), Error);
}

TEST(Attention, RejectsKvTypesOtherThanF32AndF16) {
  ThreadPool pool(1);
  AttentionArgs a;
  a.kv_type = DType::BF16;
  a.n_heads = 4, a.n_kv_heads = 4, a.head_dim = 8, a.n_q = 1;
  EXPECT_THROW(attention(a, pool), Error);
}

TEST(Attention, RejectsHeadsNotAMultipleOfKvHeads) {
  ThreadPool pool(1);
  AttentionArgs a;
  a.n_heads = 6, a.n_kv_heads = 4, a.head_dim = 8, a.n_q = 1;
  EXPECT_THROW(attention(a, pool), Error);
}

TEST(RopeAngles, FollowHfF32Recipe) {
  for (int rot : {64, 128}) {
    for (int64_t pos : {0, 1, 17, 1000, 131071}) {
      std::vector<float> c(static_cast<size_t>(rot / 2)), s(c);
      rope_angles(pos, rot, 10000.0f, c.data(), s.data());
      for (int j = 0; j < rot / 2; ++j) {
        // a_j = p·θ^(-2j/R). f32 steps: inv_freq (<= 1 ulp from powf, 1 from the division) and
        // the product: the angle is within 3 ulp(a) of exact; cos/sin move by at most that.
        const double a = static_cast<double>(pos) * std::pow(10000.0, -2.0 * j / rot);
        const double tol = 3.0 * std::fabs(a) * 2.0 * kU + 2.0 * kU;
        ASSERT_NEAR(c[j], std::cos(a), tol) << pos << " " << j;
        ASSERT_NEAR(s[j], std::sin(a), tol) << pos << " " << j;
      }
    }
  }
}

// Both pairings against the equations of GLM_ARCHITECTURES.md section 0, with partial rotation.
TEST(Rope, MatchesEquationsForEveryVariant) {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (!cpu_features().supports(isa)) continue;  // the variants this CPU runs, as simd_isas()
    for (RopeStyle style : {RopeStyle::Interleaved, RopeStyle::HalfSplit}) {
      const int n_heads = 2, d = 128, rot = 64;
      std::vector<float> c(rot / 2), s(rot / 2);
      rope_angles(23, rot, 1e6f, c.data(), s.data());
      const auto x0 = random_floats(n_heads * d, 9);
      auto x = x0;
      for_isa(isa).rope(x.data(), n_heads, d, rot, c.data(), s.data(), style);
      for (int h = 0; h < n_heads; ++h) {
        const float* in = x0.data() + h * d;
        const float* out = x.data() + h * d;
        for (int j = 0; j < rot / 2; ++j) {
          const int i0 = style == RopeStyle::Interleaved ? 2 * j : j;
          const int i1 = style == RopeStyle::Interleaved ? 2 * j + 1 : j + rot / 2;
          ASSERT_NEAR(out[i0],
                      static_cast<double>(in[i0]) * c[j] - static_cast<double>(in[i1]) * s[j],
                      4 * kU);
          ASSERT_NEAR(out[i1],
                      static_cast<double>(in[i1]) * c[j] + static_cast<double>(in[i0]) * s[j],
                      4 * kU);
        }
        for (int i = rot; i < d; ++i)
          ASSERT_EQ(out[i], in[i]) << "dims past rot_dims must pass through";
      }
    }
  }
}

TEST(MoeRoute, BiasSelectsButDoesNotWeigh) {
  // s = sigmoid([2, 1, 0, -1]); bias lifts expert 2 into the top 2 by s + bias; weights are the
  // unbiased s of experts {2, 0}, normalised to 1, times 2.5.
  const float logits[4] = {2, 1, 0, -1}, bias[4] = {0, 0, 5, 0};
  int ids[2];
  float w[2];
  moe_route(logits, 4, 2, bias, true, 2.5f, ids, w);
  const double s0 = 1 / (1 + std::exp(-2.0)), s2 = 0.5;
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 0);
  EXPECT_NEAR(w[0], 2.5 * s2 / (s0 + s2), 1e-6);
  EXPECT_NEAR(w[1], 2.5 * s0 / (s0 + s2), 1e-6);
}

TEST(MoeRoute, MatchesSortBasedReference) {
  const int n_experts = 128, k = 8;
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_floats(n_experts, seed, -4, 4);
    const auto bias = random_floats(n_experts, seed + 100, -0.5f, 0.5f);
    for (bool normalize : {false, true}) {
      int ids[k];
      float w[k];
      moe_route(logits.data(), n_experts, k, bias.data(), normalize, 1.5f, ids, w);
      std::vector<double> s(n_experts), sel(n_experts);
      for (int e = 0; e < n_experts; ++e) {
        s[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
        sel[e] = s[e] + bias[e];
      }
      std::vector<int> order(n_experts);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sel[a] > sel[b]; });
      double sum = 0.0;
      for (int i = 0; i < k; ++i) sum += s[order[i]];
      for (int i = 0; i < k; ++i) {
        ASSERT_EQ(ids[i], order[i]) << "seed " << seed;
        const double expect = s[order[i]] * (normalize ? 1.0 / (sum + 1e-20) : 1.0) * 1.5;
        ASSERT_NEAR(w[i], expect, 1e-6 * expect) << "seed " << seed;
      }
    }
  }
}

TEST(MoeRoute, RejectsKLargerThanExperts) {
  const float logits[2] = {0, 0};
  int ids[3];
  float w[3];
  EXPECT_THROW(moe_route(logits, 2, 3, nullptr, true, 1.0f, ids, w), Error);
}

}  // namespace
}  // namespace autoglm::kernels::testing
