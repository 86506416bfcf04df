// Element-wise ops and reductions written once over a vector-traits type V (8 x f32 for AVX2,
// 16 x f32 for AVX-512), included by ops_avx2.cpp and ops_avx512.cpp. Anonymous namespace on
// purpose: each ISA's copy stays in its own object file. Tails (n not a multiple of V::W) run
// the scalar formula.
//
// V provides: T, W, load, load_f16 (W IEEE halves as f32), store, store_f16 (W floats as halves,
// f32_to_f16's bits), set1, zero, add, sub, mul, fmadd, max, hsum, hsum8 (the sums of 8 vectors,
// in order, into 8 floats), hmax, to_int/ldexp helpers (via exp), dup_pairs (c0 c0 c1 c1 ... from
// W/2 floats), swap_pairs, sign_even (-1, +1, -1, +1, ...).
#pragma once

#if !defined(__AVX2__)
#error "ops_simd.h is for the AVX2 / AVX-512 translation units only"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <immintrin.h>

#include "kernels/detail.h"
#include "kernels/prefetch_simd.h"

namespace autoglm::kernels::detail {
namespace {

// e^x, Cephes expf scheme: x = n·ln2 + r with |r| <= ln2/2, degree-6 polynomial, scale by 2^n
// through the exponent bits. Relative error ~2e-7 (a few ulp). Inputs are clamped to [-87, 88] so
// that 2^n stays a normal float (n in [-126, 127]); e^-87 ≈ 1.6e-38 stands in for smaller values,
// which is harmless for softmax (sum >= 1) and silu (g / (1 + e^-g)).
template <class V>
inline typename V::T vexp(typename V::T x) {
  x = V::max(V::min(x, V::set1(88.0f)), V::set1(-87.0f));
  const typename V::T n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  typename V::T r = V::fmadd(n, V::set1(-0.693359375f), x);
  r = V::fmadd(n, V::set1(2.12194440e-4f), r);
  typename V::T p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(V::mul(p, r), r, V::add(r, V::set1(1.0f)));
  return V::scale_pow2(p, n);
}

// Elements i.. of a row as f32: f32 rows as they are, IEEE-half rows (an f16 KV cache) converted
// on the load (F16C / AVX-512F), so an f16 row costs one conversion per vector and half the bytes.
// The single-element form uses F16C too (exact, like core/half.h's f16_to_f32, which stays out of
// the ISA translation units: see kernels/detail.h).
template <class V>
inline typename V::T load_row(const float* p) {
  return V::load(p);
}
template <class V>
inline typename V::T load_row(const uint16_t* p) {
  return V::load_f16(p);
}
inline float row_elem(const float* row, int64_t i) {
  return row[i];
}
inline float row_elem(const uint16_t* row, int64_t i) {
  return _cvtsh_ss(row[i]);
}

// Σ a[i]·b[i], b f32 or IEEE half.
template <class V, class E = float>
float simd_dot(const float* a, const E* b, int64_t n) {
  typename V::T acc0 = V::zero(), acc1 = V::zero();  // two chains hide the FMA latency
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    acc0 = V::fmadd(V::load(a + i), load_row<V>(b + i), acc0);
    acc1 = V::fmadd(V::load(a + i + V::W), load_row<V>(b + i + V::W), acc1);
  }
  for (; i + V::W <= n; i += V::W) acc0 = V::fmadd(V::load(a + i), load_row<V>(b + i), acc0);
  float sum = V::hsum(V::add(acc0, acc1));
  for (; i < n; ++i) sum += a[i] * row_elem(b, i);
  return sum;
}

template <class V>
void simd_rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float sum_sq = simd_dot<V>(x, x, n);
  const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(n) + eps);
  const typename V::T vinv = V::set1(inv);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W)
    V::store(y + i, V::mul(V::mul(V::load(x + i), vinv), V::load(w + i)));
  for (; i < n; ++i) y[i] = x[i] * inv * w[i];
}

// R rows of an online-softmax block side by side (R = 1: softmax_block itself), each row's
// operations in the same order whatever R is, so simd_softmax_rows gives softmax_block's bits.
template <class V, int R>
void softmax_rows_tile(float* x, int64_t stride, int64_t n, const float* floor,
                       SoftmaxStats* stats) {
  float max[R];
  for (int r = 0; r < R; ++r) max[r] = floor[r];
  int64_t i = 0;
  if (n >= V::W) {
    typename V::T vmax[R];
    for (int r = 0; r < R; ++r) vmax[r] = V::load(x + r * stride);
    for (i = V::W; i + V::W <= n; i += V::W) {
      for (int r = 0; r < R; ++r) vmax[r] = V::max(vmax[r], V::load(x + r * stride + i));
    }
    for (int r = 0; r < R; ++r) max[r] = std::fmax(max[r], V::hmax(vmax[r]));
  }
  for (int r = 0; r < R; ++r) {
    for (int64_t j = i; j < n; ++j) max[r] = std::fmax(max[r], x[r * stride + j]);
  }
  typename V::T vm[R], vsum[R];
  for (int r = 0; r < R; ++r) vm[r] = V::set1(max[r]), vsum[r] = V::zero();
  for (i = 0; i + V::W <= n; i += V::W) {
    for (int r = 0; r < R; ++r) {
      float* xr = x + r * stride + i;
      const typename V::T e = vexp<V>(V::sub(V::load(xr), vm[r]));
      V::store(xr, e);
      vsum[r] = V::add(vsum[r], e);
    }
  }
  for (int r = 0; r < R; ++r) {
    float sum = V::hsum(vsum[r]);
    for (int64_t j = i; j < n; ++j) {
      float* xj = x + r * stride + j;
      *xj = std::exp(*xj - max[r]);
      sum += *xj;
    }
    stats[r] = {max[r], sum};
  }
}

template <class V>
SoftmaxStats simd_softmax_block(float* x, int64_t n, float floor) {
  SoftmaxStats stats;
  softmax_rows_tile<V, 1>(x, 0, n, &floor, &stats);
  return stats;
}

template <class V>
void simd_softmax_rows(float* x, int64_t stride, int64_t n_rows, int64_t n, const float* floor,
                       SoftmaxStats* stats) {
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4)
    softmax_rows_tile<V, 4>(x + r * stride, stride, n, floor + r, stats + r);
  for (; r < n_rows; ++r) stats[r] = simd_softmax_block<V>(x + r * stride, n, floor[r]);
}

template <class V>
void simd_silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const typename V::T one = V::set1(1.0f);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    const typename V::T g = V::load(gate + i);
    const typename V::T e = vexp<V>(V::sub(V::zero(), g));
    V::store(out + i, V::mul(V::div(g, V::add(one, e)), V::load(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

template <class V>
void simd_add(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, V::add(V::load(y + i), V::load(x + i)));
  for (; i < n; ++i) y[i] += x[i];
}

// y[i] += a·x[i], x f32 or IEEE half.
template <class V, class E = float>
void simd_axpy(float a, const E* x, float* y, int64_t n) {
  const typename V::T va = V::set1(a);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W)
    V::store(y + i, V::fmadd(va, load_row<V>(x + i), V::load(y + i)));
  for (; i < n; ++i) y[i] += a * row_elem(x, i);
}

// KV-cache rows come from DRAM once per step, in 16-position blocks scattered over the pool, a
// pattern the hardware prefetcher follows poorly. The caller names the rows it reads next
// (`ahead`: the next block's keys while this block's keys are dotted, its values while these
// values are added), and the kernels spread their prefetches over the block's FMAs, into the
// level V::kKvPrefetch names. The AVX2 host took them into L2 (a block of keys and one of values,
// 32 KiB of f16 at head_dim 128, would crowd the rows in use out of its 32 KiB L1); the AVX-512
// table takes the level of kernels::prefetch_level: L1 on Zen 5, with a 48 KiB L1, and L2 on Zen 4,
// with 32 KiB (ops_avx512.cpp).

// Scores of two heads against four keys at once: each query vector is loaded once for 4 keys and
// each key vector (converted from f16 once) for 2 heads, 6 loads for 8 FMAs in 8 independent
// chains, and the 8 sums are reduced together (V::hsum8) rather than one horizontal sum each,
// which had cost about as many operations as the FMAs of a 128-wide head. Returns the sums in
// out[4 * head + key]. Against 4 heads x 2 keys (the same loads and FMAs, but 4 full-width query
// loads and 2 half-width f16 ones per step instead of 2 and 4), one thread, 8 heads x 64 f16 rows
// of 128 in L1: 2.4-2.6 against 3.0-3.5 us per block.
template <class V, class E>
inline void dot_2heads_4rows(const float* q0, const E* const* k, int64_t n, float* out) {
  typename V::T acc[8];
  for (auto& a : acc) a = V::zero();
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    typename V::T kv[4];
    for (int b = 0; b < 4; ++b) kv[b] = load_row<V>(k[b] + i);
    for (int j = 0; j < 2; ++j) {
      const typename V::T qv = V::load(q0 + j * n + i);
      for (int b = 0; b < 4; ++b) acc[4 * j + b] = V::fmadd(qv, kv[b], acc[4 * j + b]);
    }
  }
  V::hsum8(acc, out);
  for (; i < n; ++i) {
    for (int b = 0; b < 4; ++b) {
      const float e = row_elem(k[b], i);
      for (int j = 0; j < 2; ++j) out[4 * j + b] += q0[j * n + i] * e;
    }
  }
}

template <class V, class E>
void simd_dot_heads(const float* q, int64_t n_heads, const E* const* keys, int64_t n_rows,
                    int64_t n, float scale, float* out, int64_t out_stride, const E* const* ahead) {
  for (int64_t r = 0; r < n_rows; r += 4) {
    const int64_t nr = std::min<int64_t>(4, n_rows - r);
    // The last 1-3 rows take the 4-row tile with their last row repeated.
    const E* k[4];
    for (int b = 0; b < 4; ++b) k[b] = keys[r + std::min<int64_t>(b, nr - 1)];
    if (ahead != nullptr) {
      for (int b = 0; b < nr; ++b)
        prefetch_lines<V::kKvPrefetch>(ahead[r + b], n * int64_t{sizeof(E)});
    }
    int64_t h = 0;
    for (; h + 2 <= n_heads; h += 2) {
      float sums[8];
      dot_2heads_4rows<V>(q + h * n, k, n, sums);
      for (int j = 0; j < 2; ++j) {
        for (int b = 0; b < nr; ++b) out[(h + j) * out_stride + r + b] = scale * sums[4 * j + b];
      }
    }
    if (h < n_heads) {
      for (int b = 0; b < nr; ++b)
        out[h * out_stride + r + b] = scale * simd_dot<V>(q + h * n, k[b], n);
    }
  }
}

// Scores of NH heads against one vector of positions of transposed keys: per element i, one key
// vector (converted from f16 once) and NH FMAs by q's element broadcast. Line i of `ahead` (if
// below ahead_bytes) is prefetched at step i, so the next block's keys arrive during these FMAs.
template <class V, int NH, class E>
inline void dot_t_tile(const float* q, const E* kt, int64_t stride, int64_t n, float scale,
                       float* out, int64_t out_stride, const char* ahead, int64_t ahead_bytes) {
  typename V::T acc[NH];
  for (auto& a : acc) a = V::zero();
  for (int64_t i = 0; i < n; ++i) {
    if (ahead != nullptr && i * 64 < ahead_bytes) _mm_prefetch(ahead + i * 64, V::kKvPrefetch);
    const typename V::T kv = load_row<V>(kt + i * stride);
    for (int j = 0; j < NH; ++j) acc[j] = V::fmadd(V::set1(q[j * n + i]), kv, acc[j]);
  }
  const typename V::T s = V::set1(scale);
  for (int j = 0; j < NH; ++j) V::store(out + j * out_stride, V::mul(acc[j], s));
}

// tile.template operator()<NH>(h) over heads [0, n_heads) in tiles of Big heads, then of 4 (if
// Big is more), 2 and 1: the score kernels' head tiles.
template <int Big, class Tile>
inline void for_head_tiles(int64_t n_heads, Tile&& tile) {
  int64_t h = 0;
  for (; h + Big <= n_heads; h += Big) tile.template operator()<Big>(h);
  if constexpr (Big > 4) {
    if (h + 4 <= n_heads) {
      tile.template operator()<4>(h);
      h += 4;
    }
  }
  if (h + 2 <= n_heads) {
    tile.template operator()<2>(h);
    h += 2;
  }
  if (h < n_heads) tile.template operator()<1>(h);
}

// dot_t_tile over two vectors of positions from two blocks (kt0, kt1) at once: each broadcast of
// q's element serves two FMAs. In L1 on Zen 5 (a throwaway loop, 8 heads, f16 keys): 5.7 FMAs a
// ns one vector at a time, 6.9 two at a time, against a peak of 7.2. Line i of ahead0 and of
// ahead1 (if below ahead_bytes) is prefetched at step i.
template <class V, int NH, class E>
inline void dot_t_tile_pair(const float* q, const E* kt0, const E* kt1, int64_t stride, int64_t n,
                            float scale, float* out, int64_t out_stride, const char* ahead0,
                            const char* ahead1, int64_t ahead_bytes) {
  typename V::T acc[NH][2];
  for (auto& a : acc) a[0] = a[1] = V::zero();
  for (int64_t i = 0; i < n; ++i) {
    if (i * 64 < ahead_bytes) {
      if (ahead0 != nullptr) _mm_prefetch(ahead0 + i * 64, V::kKvPrefetch);
      if (ahead1 != nullptr) _mm_prefetch(ahead1 + i * 64, V::kKvPrefetch);
    }
    const typename V::T k0 = load_row<V>(kt0 + i * stride);
    const typename V::T k1 = load_row<V>(kt1 + i * stride);
    for (int j = 0; j < NH; ++j) {
      const typename V::T qj = V::set1(q[j * n + i]);
      acc[j][0] = V::fmadd(qj, k0, acc[j][0]);
      acc[j][1] = V::fmadd(qj, k1, acc[j][1]);
    }
  }
  const typename V::T s = V::set1(scale);
  for (int j = 0; j < NH; ++j) {
    V::store(out + j * out_stride, V::mul(acc[j][0], s));
    V::store(out + j * out_stride + V::W, V::mul(acc[j][1], s));
  }
}

// Two blocks of V::W positions each (KernelTable::dot_heads_t_f16_pair): heads in tiles of
// kAxpyHeads (two vectors of as many heads' accumulators fit V's registers), then 4, 2, 1; only
// the first tiles prefetch, n lines of each ahead region a tile, until ahead_bytes are taken.
template <class V, class E>
void simd_dot_heads_t_pair(const float* q, int64_t n_heads, const E* kt0, const E* kt1,
                           int64_t stride, int64_t n, float scale, float* out, int64_t out_stride,
                           const void* ahead0, const void* ahead1, int64_t ahead_bytes) {
  int64_t pf_done = 0;
  for_head_tiles<V::kAxpyHeads>(n_heads, [&]<int NH>(int64_t h) {
    const bool prefetching = pf_done < ahead_bytes;
    const char* a0 = prefetching && ahead0 ? static_cast<const char*>(ahead0) + pf_done : nullptr;
    const char* a1 = prefetching && ahead1 ? static_cast<const char*>(ahead1) + pf_done : nullptr;
    dot_t_tile_pair<V, NH>(q + h * n, kt0, kt1, stride, n, scale, out + h * out_stride, out_stride,
                           a0, a1, ahead_bytes - pf_done);
    pf_done += n * 64;
  });
}

// Heads in tiles of 8 (a GLM-4 group, or a prompt tile's 8 tokens x group), then 4, 2, 1; a
// vector of positions at a time, the last positions below a vector one by one.
template <class V, class E>
void simd_dot_heads_t(const float* q, int64_t n_heads, const E* kt, int64_t stride, int64_t n_pos,
                      int64_t n, float scale, float* out, int64_t out_stride, const void* ahead,
                      int64_t ahead_bytes) {
  // Each tile prefetches the next n lines of `ahead` that no tile before it took (from byte
  // pf_done on), until all ahead_bytes are taken.
  const char* pf = static_cast<const char*>(ahead);
  int64_t pf_done = ahead != nullptr ? 0 : ahead_bytes;
  // One vector of positions from keys (kt_at, kt_stride) for every head, into o (o_stride).
  const auto vector_of_positions = [&](const E* kt_at, int64_t kt_stride, float* o,
                                       int64_t o_stride) {
    for_head_tiles<8>(n_heads, [&]<int NH>(int64_t h) {
      const bool prefetching = pf_done < ahead_bytes;
      dot_t_tile<V, NH>(q + h * n, kt_at, kt_stride, n, scale, o + h * o_stride, o_stride,
                        prefetching ? pf + pf_done : nullptr, ahead_bytes - pf_done);
      if (prefetching) pf_done += n * 64;
    });
  };
  int64_t p = 0;
  for (; p + V::W <= n_pos; p += V::W) vector_of_positions(kt + p, stride, out + p, out_stride);
  if (p == n_pos) return;
  // The positions below a vector (the block a range ends or starts in) take the vector tiles too,
  // through a copy of their keys padded with zeros to a whole vector, and scores held aside for
  // the copy into out, which has no room past them. One scalar chain per head and position had
  // cost as much as the dot products of the whole block at 16 positions, and a prompt's every
  // other 8-token tile ends 8 positions into a block: one layer's prefill attention over 512
  // tokens (kernels_bench, one thread, Zen 4, 3 alternated pairs) 18.1-18.7 -> 14.9-16.5 ms.
  const int64_t left = n_pos - p;
  float* padded_scores = scratch_f32(n_heads * V::W + (n * V::W * int64_t{sizeof(E)} + 3) / 4, 11);
  E* padded_keys = reinterpret_cast<E*>(padded_scores + n_heads * V::W);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < V::W; ++c)
      padded_keys[i * V::W + c] = c < left ? kt[i * stride + p + c] : E{};
  }
  vector_of_positions(padded_keys, V::W, padded_scores, V::W);
  for (int64_t h = 0; h < n_heads; ++h)
    std::copy_n(padded_scores + h * V::W, left, out + h * out_stride + p);
}

// NH heads x two vectors of the output (y's columns i.. of each head) stay in registers while every
// row of the block is added in: each value vector is loaded (and, from an f16 cache, converted)
// once for NH heads, where one head at a time converted every value row once per head. The output
// is loaded and stored once per block.
template <class V, int NH, class E>
inline void axpy_tile(const float* coef, int64_t coef_stride, const E* const* values,
                      int64_t n_rows, float* y, int64_t n, int64_t i) {
  typename V::T acc[NH][2];
  for (int j = 0; j < NH; ++j) {
    acc[j][0] = V::load(y + j * n + i);
    acc[j][1] = V::load(y + j * n + i + V::W);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const typename V::T v0 = load_row<V>(values[r] + i);
    const typename V::T v1 = load_row<V>(values[r] + i + V::W);
    for (int j = 0; j < NH; ++j) {
      const typename V::T c = V::set1(coef[j * coef_stride + r]);
      acc[j][0] = V::fmadd(c, v0, acc[j][0]);
      acc[j][1] = V::fmadd(c, v1, acc[j][1]);
    }
  }
  for (int j = 0; j < NH; ++j) {
    V::store(y + j * n + i, acc[j][0]);
    V::store(y + j * n + i + V::W, acc[j][1]);
  }
}

// Heads in tiles of kAxpyHeads (V's registers hold that many heads' accumulators), then of 4,
// then one at a time, 8 vectors of its output. AVX-512 takes 8 (the value rows loaded half as
// often as with 4): one layer's prefill attention over 2048 tokens (one thread, Zen 4, 3
// alternated pairs) 244 -> 240, 247 -> 242, 266 -> 244 ms; decode within the noise.
template <class V, class E>
void simd_axpy_heads(const float* coef, int64_t coef_stride, int64_t n_heads,
                     const E* const* values, int64_t n_rows, float* y, int64_t n,
                     const E* const* ahead) {
  constexpr int kBig = V::kAxpyHeads;
  // Each pass of a tile over the rows prefetches every passes-th row of `ahead` (rows pass,
  // pass + passes, ...), so the prefetches are spread over the whole call.
  const int64_t tiles = n_heads / kBig + (kBig > 4 ? (n_heads % kBig) / 4 : 0);
  const int64_t passes = tiles * (n / (2 * V::W));
  int64_t pass = 0;
  if (ahead != nullptr && passes == 0) {
    for (int64_t r = 0; r < n_rows; ++r)
      prefetch_lines<V::kKvPrefetch>(ahead[r], n * int64_t{sizeof(E)});
  }
  int64_t h = 0;
  const auto tile = [&]<int NH>() {
    int64_t i = 0;
    for (; i + 2 * V::W <= n; i += 2 * V::W, ++pass) {
      if (ahead != nullptr) {
        for (int64_t r = pass; r < n_rows; r += passes)
          prefetch_lines<V::kKvPrefetch>(ahead[r], n * int64_t{sizeof(E)});
      }
      axpy_tile<V, NH>(coef + h * coef_stride, coef_stride, values, n_rows, y + h * n, n, i);
    }
    for (int j = 0; i < n && j < NH; ++j) {
      for (int64_t r = 0; r < n_rows; ++r)
        simd_axpy<V>(coef[(h + j) * coef_stride + r], values[r] + i, y + (h + j) * n + i, n - i);
    }
    h += NH;
  };
  while (h + kBig <= n_heads) tile.template operator()<kBig>();
  if constexpr (kBig > 4) {
    if (h + 4 <= n_heads) tile.template operator()<4>();
  }
  constexpr int kVecs = 8;
  for (; h < n_heads; ++h) {
    const float* c = coef + h * coef_stride;
    float* yh = y + h * n;
    int64_t i = 0;
    for (; i + kVecs * V::W <= n; i += kVecs * V::W) {
      typename V::T acc[kVecs];
      for (int k = 0; k < kVecs; ++k) acc[k] = V::load(yh + i + k * V::W);
      for (int64_t r = 0; r < n_rows; ++r) {
        const typename V::T cr = V::set1(c[r]);
        const E* v = values[r] + i;
        for (int k = 0; k < kVecs; ++k) acc[k] = V::fmadd(cr, load_row<V>(v + k * V::W), acc[k]);
      }
      for (int k = 0; k < kVecs; ++k) V::store(yh + i + k * V::W, acc[k]);
    }
    if (i < n) {
      for (int64_t r = 0; r < n_rows; ++r) simd_axpy<V>(c[r], values[r] + i, yh + i, n - i);
    }
  }
}

// GLM_ARCHITECTURES.md section 0. Interleaved: x' = x·(c0 c0 c1 c1 ..) + swap_pairs(x)·(-s0 s0
// -s1 s1 ..). Half-split: the two halves are plain vectors.
template <class V>
void simd_rope(float* x, int n_heads, int head_dim, int rot_dims, const float* cos,
               const float* sin, RopeStyle style) {
  const int half = rot_dims / 2;
  constexpr int kPairs = V::W / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    int j = 0;
    if (style == RopeStyle::Interleaved) {
      for (; j + kPairs <= half; j += kPairs) {
        const typename V::T c = V::dup_pairs(cos + j);
        const typename V::T s = V::mul(V::dup_pairs(sin + j), V::sign_even());
        const typename V::T a = V::load(v + 2 * j);
        V::store(v + 2 * j, V::fmadd(V::swap_pairs(a), s, V::mul(a, c)));
      }
    } else {
      for (; j + V::W <= half; j += V::W) {
        const typename V::T c = V::load(cos + j);
        const typename V::T s = V::load(sin + j);
        const typename V::T a = V::load(v + j);
        const typename V::T b = V::load(v + j + half);
        V::store(v + j, V::sub(V::mul(a, c), V::mul(b, s)));
        V::store(v + j + half, V::fmadd(a, s, V::mul(b, c)));
      }
    }
    for (; j < half; ++j) {
      const int i0 = style == RopeStyle::Interleaved ? 2 * j : j;
      const int i1 = style == RopeStyle::Interleaved ? 2 * j + 1 : j + half;
      const float a = v[i0];
      const float b = v[i1];
      v[i0] = a * cos[j] - b * sin[j];
      v[i1] = b * cos[j] + a * sin[j];
    }
  }
}

// Rows to f16 in vectors, the rest through the scalar conversions (bit for bit the same). The KV
// cache stores each new token's keys and values this way (models/blocks.cpp store_kv), on the
// calling thread while the others wait: 16 sequences x 28 layers x 512 values a step for the
// benchmark model.
template <class V>
void simd_quantize_row(DType dst_type, const float* src, void* dst, int64_t n) {
  if (dst_type != DType::F16) return quantize_row_scalar(dst_type, src, dst, n);
  auto* out = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store_f16(out + i, V::load(src + i));
  if (i < n) quantize_row_scalar(DType::F16, src + i, out + i, n - i);  // the tail
}

template <class V>
KernelTable simd_table(Isa isa, decltype(KernelTable::matmul_rows) matmul_rows,
                       decltype(KernelTable::quantize_acts) quantize_acts,
                       decltype(KernelTable::matmul_rows_quantized) matmul_rows_quantized) {
  KernelTable t;
  t.isa = isa;
  t.prefers_rows8 = true;
  t.matmul_rows = matmul_rows;
  t.quantize_acts = quantize_acts;
  t.matmul_rows_quantized = matmul_rows_quantized;
  t.rms_norm = simd_rms_norm<V>;
  t.softmax_block = simd_softmax_block<V>;
  t.softmax_rows = simd_softmax_rows<V>;
  t.silu_mul = simd_silu_mul<V>;
  t.add = simd_add<V>;
  t.dot = simd_dot<V>;
  t.axpy = simd_axpy<V>;
  t.dot_heads = simd_dot_heads<V, float>;
  t.axpy_heads = simd_axpy_heads<V, float>;
  t.dot_heads_f16 = simd_dot_heads<V, uint16_t>;
  t.dot_heads_t = simd_dot_heads_t<V, float>;
  t.dot_heads_t_f16 = simd_dot_heads_t<V, uint16_t>;
  t.pair_positions = V::W;
  t.dot_heads_t_f16_pair = simd_dot_heads_t_pair<V, uint16_t>;
  t.axpy_heads_f16 = simd_axpy_heads<V, uint16_t>;
  t.rope = simd_rope<V>;
  // The other row conversions run at load time, not per token: the scalar ones are kept (bit-exact
  // by construction, and fast enough for converting weights once).
  t.quantize_row = simd_quantize_row<V>;
  t.dequantize_row = dequantize_row_scalar;
  return t;
}

}  // namespace
}  // namespace autoglm::kernels::detail
