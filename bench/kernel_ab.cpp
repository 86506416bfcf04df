// Two builds of the 512-bit Rows8Pairs matmul kernels, A and B (bench/CMakeLists.txt: B is the
// working tree's, A another revision's once bench/kernel_ab.sh has put it in place), timed call by
// call in turn on the same weights and activations. On a shared host the speed of a core and the
// memory bandwidth change from one second to the next (the read probe gave 27 to 57 GB/s within
// minutes on 2 threads of a Zen 4 host), so two benchmark runs a few seconds apart differ by more
// than most kernel changes do; two calls in a row see the same host. Each pair of samples gives one
// ratio, B's time over A's, and the median of those ratios (with its quartiles) is the figure. The
// pairs alternate which build goes first. Outputs are compared too: --expect-same fails when they
// differ (an A/A run, or a change meant to keep the same bits).
//   kernel_ab --type q4_0 --weights dram --tokens 1 --threads 2 --pairs 200
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/large_buffer.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "kernels/detail.h"
#include "kernels/kernels.h"
#include "ops/bandwidth.h"

namespace autoglm::kernels::detail {
// The two builds' entry points (bench/CMakeLists.txt renames them); the last argument is where
// the thread goes next (KernelTable::matmul_rows_then): w.rows, none, as each thread here runs one
// range.
void kernel_ab_a_q_rows8(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                         int64_t ldy, int64_t r0, int64_t r1, int64_t next);
void kernel_ab_b_q_rows8(const Matrix& w, const QuantizedActs& xa, int64_t n_tokens, float* y,
                         int64_t ldy, int64_t r0, int64_t r1, int64_t next);
void kernel_ab_a_float_rows8(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                             int64_t ldy, int64_t r0, int64_t r1, int64_t next);
void kernel_ab_b_float_rows8(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                             int64_t ldy, int64_t r0, int64_t r1, int64_t next);
}  // namespace autoglm::kernels::detail

namespace {

using autoglm::DType;
using autoglm::kernels::Matrix;
using autoglm::kernels::QuantizedActs;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string type = "q4_0";
  std::string weights = "cached";
  int64_t tokens = 1;
  int64_t rows = 0;  // of the DRAM matrix; 0: kDramRows
  int threads = 1;
  int pairs = 100;
  bool expect_same = false;
  bool b_int16 = false;  // f16: B multiplies in 16-bit integers (Matrix::x_as_int16)
};

constexpr int64_t kCols = 2048;
constexpr int kNoAvx512 = 77;        // CTest's skip code (bench/CMakeLists.txt)
constexpr int64_t kDramRows = 6144;  // the benchmark shape's FFN, as kernels_bench

DType parse_type(const std::string& name) {
  if (name == "q4_0") return DType::Q4_0;
  if (name == "q8_0") return DType::Q8_0;
  if (name == "f16") return DType::F16;
  return DType::BF16;  // CLI11 checked the name
}

// What a call multiplies: the packed weights (one copy in cache, or copies over 1 GiB read in
// turn, so that each call's weights come from DRAM) and the activations in both forms.
struct Workload {
  DType type;
  int64_t rows = 0, tokens = 0;
  size_t matrix_bytes = 0;
  autoglm::LargeBuffer storage;
  std::vector<Matrix> copies;
  std::vector<float> x;
  std::vector<int8_t> q, arranged_q;
  std::vector<float> d, arranged_d;
  std::vector<int32_t> q4_offset, arranged_offset;
  QuantizedActs acts() const {
    QuantizedActs xa{q.data(), d.data(), q4_offset.data()};
    xa.arranged = {arranged_q.data(), arranged_d.data(), arranged_offset.data()};
    return xa;
  }
};

Workload make_workload(const Options& o, const autoglm::kernels::KernelTable& avx512) {
  Workload wl;
  wl.type = parse_type(o.type);
  wl.tokens = o.tokens;
  const bool cached = o.weights == "cached";
  const int64_t row_size = static_cast<int64_t>(autoglm::row_bytes(wl.type, kCols));
  // In cache: as many rows as fit in 256 KiB (kernels_bench's bm_matmul_cached), a multiple of 16.
  wl.rows = cached ? std::max<int64_t>(16, (int64_t{256} << 10) / row_size / 16 * 16)
                   : (o.rows > 0 ? o.rows : kDramRows);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint8_t> source(static_cast<size_t>(row_size * wl.rows));
  std::vector<float> row(kCols);
  for (int64_t r = 0; r < wl.rows; ++r) {
    for (float& f : row) f = dist(rng);
    avx512.quantize_row(wl.type, row.data(), source.data() + r * row_size, kCols);
  }
  const Matrix w{wl.type, wl.rows, kCols, source.data()};
  wl.matrix_bytes = autoglm::kernels::packed_bytes(w);
  const size_t n_copies = cached ? 1 : ((size_t{1} << 30) + wl.matrix_bytes - 1) / wl.matrix_bytes;
  wl.storage = autoglm::allocate_large(n_copies * wl.matrix_bytes);
  for (size_t c = 0; c < n_copies; ++c) {
    auto* dst = reinterpret_cast<uint8_t*>(wl.storage.get()) + c * wl.matrix_bytes;
    wl.copies.push_back(autoglm::kernels::pack_for_matmul(w, dst, nullptr, avx512));
  }
  const auto n = static_cast<size_t>(wl.tokens * kCols);
  wl.x.resize(n);
  for (float& f : wl.x) f = dist(rng);
  wl.q.resize(n);
  wl.arranged_q.resize(n);
  wl.d.resize(n / 32);
  wl.arranged_d.resize(n / 32);
  wl.q4_offset.resize(n / 32);
  wl.arranged_offset.resize(n / 32);
  avx512.quantize_acts(wl.x.data(), wl.tokens, kCols, wl.q.data(), wl.d.data(),
                       wl.q4_offset.data());
  autoglm::kernels::detail::arrange_acts({wl.q.data(), wl.d.data(), wl.q4_offset.data()}, 0,
                                         wl.tokens, wl.tokens, kCols, wl.arranged_q.data(),
                                         wl.arranged_d.data(), wl.arranged_offset.data());
  return wl;
}

// Runs build A or B over the whole matrix (the next copy), its row groups split evenly over the
// pool's threads; returns the seconds it took.
class Runner {
 public:
  Runner(const Workload& wl, autoglm::ThreadPool& pool, bool b_int16)
      : wl_(wl), pool_(pool), b_int16_(b_int16) {}

  double call(bool b, float* y) {
    Matrix m = wl_.copies[next_];
    m.x_as_int16 = b && b_int16_;
    next_ = (next_ + 1) % wl_.copies.size();
    const QuantizedActs xa = wl_.acts();
    const bool quantized = wl_.type == DType::Q4_0 || wl_.type == DType::Q8_0;
    namespace d = autoglm::kernels::detail;
    const Clock::time_point start = Clock::now();
    pool_.run([&](int i, int n) {
      const int64_t groups = wl_.rows / 8;
      const int64_t r0 = groups * i / n * 8, r1 = groups * (i + 1) / n * 8;
      if (quantized) {
        (b ? d::kernel_ab_b_q_rows8 : d::kernel_ab_a_q_rows8)(m, xa, wl_.tokens, y, wl_.rows, r0,
                                                              r1, m.rows);
      } else {
        (b ? d::kernel_ab_b_float_rows8 : d::kernel_ab_a_float_rows8)(m, wl_.x.data(), wl_.tokens,
                                                                      y, wl_.rows, r0, r1, m.rows);
      }
    });
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

 private:
  const Workload& wl_;
  autoglm::ThreadPool& pool_;
  bool b_int16_;
  size_t next_ = 0;
};

double quantile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

// The largest |B - A| over the outputs, and the largest |A| for scale.
std::pair<double, double> output_difference(const std::vector<float>& a,
                                            const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(b[i] - a[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
  }
  return {diff, scale};
}

int run(const Options& o) {
  const auto& avx512 = autoglm::kernels::for_isa(autoglm::Isa::Avx512);  // throws without it
  const Workload wl = make_workload(o, avx512);
  autoglm::ThreadPool pool(o.threads);
  Runner runner(wl, pool, o.b_int16);
  std::vector<float> ya(static_cast<size_t>(wl.tokens * wl.rows));
  std::vector<float> yb(ya.size());
  // Outputs from the same copy, then the warm-up; a sample of cached weights repeats the call to
  // last about a millisecond.
  runner.call(false, ya.data());
  Runner(wl, pool, o.b_int16).call(true, yb.data());
  const auto [diff, scale] = output_difference(ya, yb);
  const double one = runner.call(false, ya.data());
  const int reps = o.weights == "cached" ? std::clamp(static_cast<int>(1e-3 / one), 1, 100) : 1;
  std::vector<double> ta, tb, ratio;
  for (int p = 0; p < o.pairs; ++p) {
    double a = 0, b = 0;
    for (int r = 0; r < reps; ++r) {
      if (p % 2 == 0) {
        a += runner.call(false, ya.data());
        b += runner.call(true, yb.data());
      } else {
        b += runner.call(true, yb.data());
        a += runner.call(false, ya.data());
      }
    }
    ta.push_back(a / reps);
    tb.push_back(b / reps);
    ratio.push_back(b / a);
  }
  const double gb = static_cast<double>(wl.matrix_bytes) * 1e-9;
  const double gflop = 2.0 * static_cast<double>(wl.rows * kCols * wl.tokens) * 1e-9;
  std::printf("%s, %ld x %ld, %ld token(s), %d thread(s), weights %s: %d pairs of %d call(s)\n",
              o.type.c_str(), static_cast<long>(wl.rows), static_cast<long>(kCols),
              static_cast<long>(wl.tokens), o.threads,
              o.weights == "cached" ? "in cache (256 KiB)" : "from DRAM (copies over 1 GiB)",
              o.pairs, reps);
  for (const auto& [name, t] : {std::pair{"A", &ta}, std::pair{"B", &tb}}) {
    const double med = quantile(*t, 0.5);
    std::printf("  %s  %8.1f us  %6.1f GB/s  %6.1f GFLOP/s   (median call)\n", name, med * 1e6,
                gb / med, gflop / med);
  }
  std::printf("  B/A time: median %.3f, quartiles %.3f-%.3f\n", quantile(ratio, 0.5),
              quantile(ratio, 0.25), quantile(ratio, 0.75));
  if (o.weights == "dram") {
    const auto probe = autoglm::ops::measure_read_bandwidth(pool, size_t{512} << 20, 3);
    std::printf("  read bandwidth right after (%d thread(s)): %.1f GB/s\n", o.threads,
                probe.median_gbps);
  }
  std::printf("  outputs: largest |B - A| %.3g (largest |A| %.3g)\n", diff, scale);
  if (o.expect_same && diff != 0) {
    std::fprintf(stderr, "kernel_ab: A and B give different outputs (--expect-same)\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Times two builds of the 512-bit q4_0/q8_0/f16/bf16 matmul kernels call by call in turn "
      "(bench/kernel_ab.sh builds A from a git revision)"};
  Options o;
  app.add_option("--type", o.type, "weight type")
      ->check(CLI::IsMember({"q4_0", "q8_0", "f16", "bf16"}));
  app.add_option("--weights", o.weights, "cached: 256 KiB of weights; dram: 1 GiB of copies")
      ->check(CLI::IsMember({"cached", "dram"}));
  app.add_option("--tokens", o.tokens, "tokens per call (1: decode)")->check(CLI::Range(1, 4096));
  app.add_option("--rows", o.rows,
                 "rows of the matrix read from DRAM (a multiple of 16; default 6144, the benchmark "
                 "shape's FFN; 2048 and 2560 are its o and fused q|k|v)")
      ->check(CLI::Range(16, 1 << 20));
  app.add_option("--threads", o.threads, "threads splitting the rows")->check(CLI::Range(1, 256));
  app.add_option("--pairs", o.pairs, "samples of each build")->check(CLI::Range(1, 1000000));
  app.add_flag("--expect-same", o.expect_same, "fail when A's and B's outputs differ");
  app.add_flag("--b-int16", o.b_int16,
               "f16: build B multiplies in 16-bit integers (Matrix::x_as_int16), from "
               "kernels::kInt16MinTokens (32) tokens");
  CLI11_PARSE(app, argc, argv);
  if (o.rows % 16 != 0) {
    std::fprintf(stderr, "kernel_ab: --rows %ld is not a multiple of 16 (two 8-row groups)\n",
                 static_cast<long>(o.rows));
    return 2;
  }
  if (o.rows != 0 && o.weights != "dram") {
    std::fprintf(stderr, "kernel_ab: --rows sizes the DRAM matrix; add --weights dram\n");
    return 2;
  }
  autoglm::log::set_level(autoglm::log::Level::Warn);  // not the kernel table's choice
  if (!autoglm::cpu_features().supports(autoglm::Isa::Avx512)) {
    std::fprintf(stderr, "kernel_ab: this CPU has no AVX-512 (with VNNI and BF16): %s\n",
                 autoglm::cpu_features().describe().c_str());
    return kNoAvx512;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_ab: %s\n", e.what());
    return 2;
  }
}
