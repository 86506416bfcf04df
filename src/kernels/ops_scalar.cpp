// The scalar reference of every op: plain loops, f32 accumulation, no tricks. The SIMD variants are
// tested against these.
#include <cmath>
#include <vector>

#include "core/half.h"
#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double sum_sq = 0.0;  // wider than f32 so the reference is not the limiting error
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(sum_sq / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
}

SoftmaxStats softmax_block(float* x, int64_t n, float floor) {
  float max = floor;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return {max, sum};
}

void softmax_rows(float* x, int64_t stride, int64_t n_rows, int64_t n, const float* floor,
                  SoftmaxStats* stats) {
  for (int64_t r = 0; r < n_rows; ++r) stats[r] = softmax_block(x + r * stride, n, floor[r]);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

float dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline float row_elem(const float* row, int64_t i) {
  return row[i];
}
inline float row_elem(const uint16_t* row, int64_t i) {
  return f16_to_f32(row[i]);
}

template <class E>
void dot_heads(const float* q, int64_t n_heads, const E* const* keys, int64_t n_rows, int64_t n,
               float scale, float* out, int64_t out_stride, const E* const* /*ahead*/) {
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t r = 0; r < n_rows; ++r) {
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) sum += q[h * n + i] * row_elem(keys[r], i);
      out[h * out_stride + r] = scale * sum;
    }
  }
}

template <class E>
void dot_heads_t(const float* q, int64_t n_heads, const E* kt, int64_t stride, int64_t n_pos,
                 int64_t n, float scale, float* out, int64_t out_stride, const void* /*ahead*/,
                 int64_t /*ahead_bytes*/) {
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t p = 0; p < n_pos; ++p) {
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) sum += q[h * n + i] * row_elem(kt + p, i * stride);
      out[h * out_stride + p] = scale * sum;
    }
  }
}

template <class E>
void axpy_heads(const float* coef, int64_t coef_stride, int64_t n_heads, const E* const* values,
                int64_t n_rows, float* y, int64_t n, const E* const* /*ahead*/) {
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const float a = coef[h * coef_stride + r];
      for (int64_t i = 0; i < n; ++i) y[h * n + i] += a * row_elem(values[r], i);
    }
  }
}

// GLM_ARCHITECTURES.md section 0: interleaved pairs (2j, 2j+1), half-split pairs (j, j + R/2).
void rope(float* x, int n_heads, int head_dim, int rot_dims, const float* cos, const float* sin,
          RopeStyle style) {
  const int half = rot_dims / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int j = 0; j < half; ++j) {
      const int i0 = style == RopeStyle::Interleaved ? 2 * j : j;
      const int i1 = style == RopeStyle::Interleaved ? 2 * j + 1 : j + half;
      const float a = v[i0];
      const float b = v[i1];
      v[i0] = a * cos[j] - b * sin[j];
      v[i1] = b * cos[j] + a * sin[j];
    }
  }
}

}  // namespace

float* scratch_f32(int64_t n, int slot) {
  thread_local std::vector<float> buffers[kScratchSlots];
  std::vector<float>& buf = buffers[slot];
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

ActBuffers act_buffers(int64_t n_tokens, int64_t cols) {
  thread_local std::vector<int8_t> q;
  thread_local std::vector<int32_t> q4_offset;
  const int64_t n_blocks = cols / 32;
  if (static_cast<int64_t>(q.size()) < n_tokens * cols)
    q.resize(static_cast<size_t>(n_tokens * cols));
  if (static_cast<int64_t>(q4_offset.size()) < n_tokens * n_blocks)
    q4_offset.resize(static_cast<size_t>(n_tokens * n_blocks));
  return {q.data(), scratch_f32(n_tokens * n_blocks, 3), q4_offset.data()};
}

QuantizedActs quantize_acts(const float* x, int64_t n_tokens, int64_t cols) {
  const ActBuffers buf = act_buffers(n_tokens, cols);
  int8_t* q = buf.q;
  float* d = buf.d;
  const int64_t n_blocks = cols / 32;
  for (int64_t b = 0; b < n_tokens * n_blocks; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    d[b] = db;
    int32_t sum[2] = {0, 0};
    for (int j = 0; j < 32; ++j) {
      q[b * 32 + j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));
      sum[(j % 4) / 2] += q[b * 32 + j];
    }
    buf.q4_offset[b] = q4_offset_halves(sum[0], sum[1]);
  }
  return {q, d, buf.q4_offset};
}

int32_t q4_offset_halves(int32_t sum_low, int32_t sum_high) {
  const auto low = static_cast<uint16_t>(-8 * sum_low);
  const auto high = static_cast<uint16_t>(-8 * sum_high);
  return static_cast<int32_t>(static_cast<uint32_t>(low) | (static_cast<uint32_t>(high) << 16));
}

void matmul_rows_scalar(const Matrix& w, const float* x, int64_t n_tokens, float* y, int64_t ldy,
                        int64_t r0, int64_t r1) {
  const bool converts = w.dtype != DType::F32 || is_interleaved(w.layout);
  float* row = converts ? scratch_f32(w.cols, 0) : nullptr;
  thread_local std::vector<std::byte> unpacked;
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = nullptr;
    if (is_interleaved(w.layout)) {
      unpacked.resize(w.row_stride());
      unpack_row_x8(w, r, unpacked.data());
      dequantize_row_scalar(w.dtype, unpacked.data(), row, w.cols);
      wr = row;
    } else if (row != nullptr) {
      dequantize_row_scalar(w.dtype, w.row(r), row, w.cols);
      wr = row;
    } else {
      wr = reinterpret_cast<const float*>(w.row(r));
    }
    for (int64_t t = 0; t < n_tokens; ++t) y[t * ldy + r] = dot(wr, x + t * w.cols, w.cols);
  }
}

KernelTable scalar_table() {
  KernelTable t;
  t.isa = Isa::Scalar;
  t.matmul_rows = matmul_rows_scalar;
  t.rms_norm = rms_norm;
  t.softmax_block = softmax_block;
  t.softmax_rows = softmax_rows;
  t.silu_mul = silu_mul;
  t.add = add;
  t.dot = dot;
  t.axpy = axpy;
  t.dot_heads = dot_heads<float>;
  t.axpy_heads = axpy_heads<float>;
  t.dot_heads_f16 = dot_heads<uint16_t>;
  t.dot_heads_t = dot_heads_t<float>;
  t.dot_heads_t_f16 = dot_heads_t<uint16_t>;
  t.axpy_heads_f16 = axpy_heads<uint16_t>;
  t.rope = rope;
  t.quantize_row = quantize_row_scalar;
  t.dequantize_row = dequantize_row_scalar;
  return t;
}

}  // namespace autoglm::kernels::detail
