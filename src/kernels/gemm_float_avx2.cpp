// Float-weight matmul for several tokens at once (prefill, batched decode) on AVX2: f32, f16 and
// bf16 weights, y[t, r] = Σ_k w[r, k] · x[t, k].
//
// The dot-product kernel of matmul_avx2.cpp (2 rows x 4 tokens) spends 6 loads and 2 weight
// conversions on 8 FMAs and ends every row with horizontal sums; it ran at about half the FMA
// peak. Here panels of 16 rows are converted to f32 and transposed to [k][16], a chunk of
// columns at a time (see float_gemm_avx2 for the blocking). A kernel of 16 rows x 6 tokens then
// keeps 12 accumulators: per k, 2 panel loads and 6 broadcasts of x feed 12 FMAs, and each token's
// 16 results are consecutive outputs, so they are stored (or added, after the first column chunk)
// as they are: no horizontal sums.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/detail.h"
#include "kernels/float_load_avx2.h"

namespace autoglm::kernels::detail {
namespace {

constexpr int kPanelRows = 16;
constexpr int kTokenBlock = 6;  // 12 accumulators + 2 weight vectors + 1 broadcast: 15 of 16 ymm

// In-register 8x8 transpose: r[i] holds row i (8 columns); afterwards r[j] holds column j.
inline void transpose8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Columns k0..k0+kc-1 of rows r..r+nr-1 (nr <= 16) as f32 in panel[k * 16 + j]; rows j >= nr
// are zero.
template <DType DT>
void load_panel(const Matrix& w, int64_t r, int nr, int64_t k0, int64_t kc, float* panel) {
  const int64_t n = w.cols;
  const int64_t elem = DT == DType::F32 ? 4 : 2;
  const auto* base = static_cast<const uint8_t*>(w.data) + r * n * elem;
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int half = 0; half < 2; ++half) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) {
        const int j = 8 * half + i;
        v[i] = j < nr ? load8<DT>(base + j * n * elem, k0 + k) : _mm256_setzero_ps();
      }
      transpose8(v);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(panel + (k + i) * kPanelRows + 8 * half, v[i]);
    }
  }
  for (; k < kc; ++k) {
    for (int j = 0; j < kPanelRows; ++j) {
      panel[k * kPanelRows + j] = j < nr ? load1<DT>(base + j * n * elem, k0 + k) : 0.0f;
    }
  }
}

// 6 tokens against columns [0, kc) of one panel chunk: tile[t][j] += Σ_k panel[k][j] · xt[t][k].
// Twelve named accumulators: with an accumulator array, GCC 12 stores the whole array back to the
// stack on every step of the column loop (12 stores per 12 FMAs), which halved the speed.
void panel_tokens6(const float* panel, int64_t kc, const float* const xt[kTokenBlock],
                   float (*tile)[kPanelRows]) {
  __m256 l0 = _mm256_load_ps(tile[0]), h0 = _mm256_load_ps(tile[0] + 8);
  __m256 l1 = _mm256_load_ps(tile[1]), h1 = _mm256_load_ps(tile[1] + 8);
  __m256 l2 = _mm256_load_ps(tile[2]), h2 = _mm256_load_ps(tile[2] + 8);
  __m256 l3 = _mm256_load_ps(tile[3]), h3 = _mm256_load_ps(tile[3] + 8);
  __m256 l4 = _mm256_load_ps(tile[4]), h4 = _mm256_load_ps(tile[4] + 8);
  __m256 l5 = _mm256_load_ps(tile[5]), h5 = _mm256_load_ps(tile[5] + 8);
  const float *x0 = xt[0], *x1 = xt[1], *x2 = xt[2], *x3 = xt[3], *x4 = xt[4], *x5 = xt[5];
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_loadu_ps(panel + k * kPanelRows);
    const __m256 w1 = _mm256_loadu_ps(panel + k * kPanelRows + 8);
    __m256 xb = _mm256_broadcast_ss(x0 + k);
    l0 = _mm256_fmadd_ps(w0, xb, l0);
    h0 = _mm256_fmadd_ps(w1, xb, h0);
    xb = _mm256_broadcast_ss(x1 + k);
    l1 = _mm256_fmadd_ps(w0, xb, l1);
    h1 = _mm256_fmadd_ps(w1, xb, h1);
    xb = _mm256_broadcast_ss(x2 + k);
    l2 = _mm256_fmadd_ps(w0, xb, l2);
    h2 = _mm256_fmadd_ps(w1, xb, h2);
    xb = _mm256_broadcast_ss(x3 + k);
    l3 = _mm256_fmadd_ps(w0, xb, l3);
    h3 = _mm256_fmadd_ps(w1, xb, h3);
    xb = _mm256_broadcast_ss(x4 + k);
    l4 = _mm256_fmadd_ps(w0, xb, l4);
    h4 = _mm256_fmadd_ps(w1, xb, h4);
    xb = _mm256_broadcast_ss(x5 + k);
    l5 = _mm256_fmadd_ps(w0, xb, l5);
    h5 = _mm256_fmadd_ps(w1, xb, h5);
  }
  _mm256_store_ps(tile[0], l0), _mm256_store_ps(tile[0] + 8, h0);
  _mm256_store_ps(tile[1], l1), _mm256_store_ps(tile[1] + 8, h1);
  _mm256_store_ps(tile[2], l2), _mm256_store_ps(tile[2] + 8, h2);
  _mm256_store_ps(tile[3], l3), _mm256_store_ps(tile[3] + 8, h3);
  _mm256_store_ps(tile[4], l4), _mm256_store_ps(tile[4] + 8, h4);
  _mm256_store_ps(tile[5], l5), _mm256_store_ps(tile[5] + 8, h5);
}

// Tokens [t0, t1) against columns k0..k0+kc-1 of one panel: y[t, r + j] for j < nr, starting
// from zero on the first column chunk and from what earlier chunks left in y after that. A last
// group of fewer than 6 tokens is padded with a row of zeros whose results are dropped.
void panel_token_range(const float* panel, int64_t kc, const float* x, int64_t n, int64_t k0,
                       int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t r, int nr, bool first,
                       const float* zeros) {
  for (int64_t t = t0; t < t1; t += kTokenBlock) {
    const int nt = static_cast<int>(std::min<int64_t>(kTokenBlock, t1 - t));
    alignas(32) float tile[kTokenBlock][kPanelRows];
    const float* xt[kTokenBlock];
    for (int i = 0; i < kTokenBlock; ++i) {
      xt[i] = i < nt ? x + (t + i) * n + k0 : zeros;
      const float* out = y + (t + i) * ldy + r;
      if (first || i >= nt) {
        _mm256_store_ps(tile[i], _mm256_setzero_ps());
        _mm256_store_ps(tile[i] + 8, _mm256_setzero_ps());
      } else if (nr == kPanelRows) {
        _mm256_store_ps(tile[i], _mm256_loadu_ps(out));
        _mm256_store_ps(tile[i] + 8, _mm256_loadu_ps(out + 8));
      } else {
        for (int j = 0; j < kPanelRows; ++j) tile[i][j] = j < nr ? out[j] : 0.0f;
      }
    }
    panel_tokens6(panel, kc, xt, tile);
    for (int i = 0; i < nt; ++i) {
      float* out = y + (t + i) * ldy + r;
      if (nr == kPanelRows) {
        _mm256_storeu_ps(out, _mm256_load_ps(tile[i]));
        _mm256_storeu_ps(out + 8, _mm256_load_ps(tile[i] + 8));
      } else {
        for (int j = 0; j < nr; ++j) out[j] = tile[i][j];
      }
    }
  }
}

// Blocking: the x of up to kTokenChunk tokens x kColChunk columns (256 KiB) stays in L2 while
// every panel of the row range passes over it, and so does each panel chunk (16 x 512 x 4 B =
// 32 KiB). A weight is converted once per token chunk; the outputs are read and written once per
// column chunk.
constexpr int64_t kColChunk = 512;
constexpr int64_t kTokenChunk = 128;

}  // namespace

template <DType DT>
void float_gemm_avx2(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                     int64_t r0, int64_t r1) {
  float* panel = scratch_f32(kPanelRows * kColChunk + kColChunk, 5);
  float* zeros = panel + kPanelRows * kColChunk;  // the x of padding tokens
  std::fill(zeros, zeros + kColChunk, 0.0f);
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
    const int64_t t1 = std::min(n_tokens, t0 + kTokenChunk);
    for (int64_t k0 = 0; k0 < w.cols; k0 += kColChunk) {
      const int64_t kc = std::min(kColChunk, w.cols - k0);
      for (int64_t r = r0; r < r1; r += kPanelRows) {
        const int nr = static_cast<int>(std::min<int64_t>(kPanelRows, r1 - r));
        load_panel<DT>(w, r, nr, k0, kc, panel);
        panel_token_range(panel, kc, x, w.cols, k0, t0, t1, y, ldy, r, nr, k0 == 0, zeros);
      }
    }
  }
}

template void float_gemm_avx2<DType::F32>(const Matrix&, const float*, int64_t, float*, int64_t,
                                          int64_t, int64_t);
template void float_gemm_avx2<DType::F16>(const Matrix&, const float*, int64_t, float*, int64_t,
                                          int64_t, int64_t);
template void float_gemm_avx2<DType::BF16>(const Matrix&, const float*, int64_t, float*, int64_t,
                                           int64_t, int64_t);

}  // namespace autoglm::kernels::detail
