// Statistics and the three views of an online bench: JSON, a terminal table, an SVG chart.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ops/load_bench.h"
#include "ops/svg_chart.h"

namespace autoglm::ops {
namespace {

nlohmann::json summary_json(const LatencySummary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"p50", s.p50},
          {"p95", s.p95},     {"p99", s.p99},   {"max", s.max}};
}

std::vector<double> column(const LoadBenchResult& r, double (*get)(const LevelResult&)) {
  std::vector<double> v;
  for (const auto& l : r.levels) v.push_back(get(l));
  return v;
}

double or_nan(const LatencySummary& s, double v) {
  return s.count ? v : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = q * double(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (rank - double(lo)) * (sorted[hi] - sorted[lo]);
}

LatencySummary summarize(std::vector<double> v) {
  LatencySummary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  s.p50 = percentile(v, 0.50);
  s.p95 = percentile(v, 0.95);
  s.p99 = percentile(v, 0.99);
  s.max = v.back();
  return s;
}

nlohmann::json to_json(const LoadBenchResult& r) {
  const auto& o = r.options;
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& l : r.levels) {
    levels.push_back({{"concurrency", l.concurrency},
                      {"requests", l.requests},
                      {"ok", l.ok},
                      {"errors", l.errors},
                      {"error_rate", l.error_rate},
                      {"first_error", l.first_error},
                      {"duration_s", l.duration_s},
                      {"requests_per_s", l.requests_per_s},
                      {"output_tokens", l.output_tokens},
                      {"output_tokens_per_s", l.output_tokens_per_s},
                      {"prompt_tokens", l.prompt_tokens},
                      {"ttft_ms", summary_json(l.ttft_ms)},
                      {"itl_ms", summary_json(l.itl_ms)},
                      {"latency_ms", summary_json(l.latency_ms)}});
  }
  return {{"url", bench_url(o)},
          {"model", o.model},
          {"mode", o.ramp ? "ramp" : "concurrency"},
          {"requests_per_level", o.requests},
          {"duration_s_per_level", o.duration_s},
          {"prompt_tokens", o.prompt_tokens},
          {"max_tokens", o.max_tokens},
          {"levels", levels},
          {"stopped", r.stopped}};
}

std::string format_table(const LoadBenchResult& r) {
  std::string out = fmt::format("{:>6} {:>6} {:>6} {:>7} {:>9} {:>10} | {:>26} | {:>20}\n", "conc",
                                "reqs", "errors", "req/s", "out tok/s", "tok/s/user",
                                "TTFT ms p50 / p95 / p99", "ITL ms p50 / p95 / p99");
  for (const auto& l : r.levels) {
    const double per_user = l.latency_ms.count && l.itl_ms.count ? 1000.0 / l.itl_ms.mean : 0;
    out += fmt::format(
        "{:>6} {:>6} {:>6} {:>7.2f} {:>9.1f} {:>10.1f} | {:>8.0f} {:>8.0f} {:>8.0f} | {:>6.1f} "
        "{:>6.1f} {:>6.1f}\n",
        l.concurrency, l.requests, l.requests - l.ok, l.requests_per_s, l.output_tokens_per_s,
        per_user, l.ttft_ms.p50, l.ttft_ms.p95, l.ttft_ms.p99, l.itl_ms.p50, l.itl_ms.p95,
        l.itl_ms.p99);
  }
  for (const auto& l : r.levels)
    if (!l.errors.empty()) {
      std::string by;
      for (const auto& [k, n] : l.errors) by += fmt::format(" {}x{}", n, k);
      out += fmt::format("errors at {}:{} (first: {})\n", l.concurrency, by, l.first_error);
    }
  if (!r.stopped.empty()) out += r.stopped + "\n";
  return out;
}

std::string bench_chart_svg(const LoadBenchResult& r) {
  ChartSpec spec;
  const auto& o = r.options;
  spec.title = fmt::format("autoglm bench: {} ", o.model);
  spec.subtitle = fmt::format(
      "{}  ·  prompt ~{} tokens, {} output tokens, {} per level{}", bench_url(o), o.prompt_tokens,
      o.max_tokens,
      o.requests > 0 ? fmt::format("{} requests", o.requests) : fmt::format("{:g} s", o.duration_s),
      r.stopped.empty() ? "" : "   (" + r.stopped + ")");
  spec.x_title = "concurrent streams";
  for (const auto& l : r.levels) spec.x_labels.push_back(std::to_string(l.concurrency));

  auto pct_series = [&](const char* what, LatencySummary LevelResult::*m, const char* color) {
    std::vector<ChartSeries> s(3);
    const char* names[] = {"p50", "p95", "p99"};
    double LatencySummary::*fields[] = {&LatencySummary::p50, &LatencySummary::p95,
                                        &LatencySummary::p99};
    const char* dashes[] = {"", "6 3", "2 3"};
    const double widths[] = {2.5, 1.8, 1.5};
    for (int k = 0; k < 3; ++k) {
      s[k] = {fmt::format("{} {}", what, names[k]), {}, color, dashes[k], widths[k]};
      for (const auto& l : r.levels) s[k].y.push_back(or_nan(l.*m, (l.*m).*fields[k]));
    }
    return s;
  };
  ChartPanel ttft{"Time to first token",
                  "ms, lower is better",
                  pct_series("TTFT", &LevelResult::ttft_ms, "#d62728"),
                  false,
                  0,
                  2,
                  {}};
  ChartPanel itl{"Inter-token latency",
                 "ms, lower is better",
                 pct_series("ITL", &LevelResult::itl_ms, "#9467bd"),
                 false,
                 0,
                 2,
                 {}};
  ChartPanel tput{"Output throughput", "tokens/s, higher is better", {}, false, -1, -1, {}};
  tput.series.push_back({"output tokens/s",
                         column(r, [](const LevelResult& l) { return l.output_tokens_per_s; }),
                         "#1f77b4", "", 2.5});
  for (const auto& l : r.levels)
    tput.point_labels.push_back(fmt::format("{:.1f} req/s", l.requests_per_s));
  ChartPanel errors{"Errors", "% of requests", {}, true, -1, -1, {}};
  errors.series.push_back({"error rate %",
                           column(r, [](const LevelResult& l) { return 100 * l.error_rate; }),
                           "#ff7f0e", "", 2});
  for (const auto& l : r.levels) {
    std::string by;
    for (const auto& [k, n] : l.errors) by += fmt::format("{}{}x{}", by.empty() ? "" : " ", n, k);
    errors.point_labels.push_back(by.empty() ? "none" : by);
  }
  spec.panels = {tput, ttft, itl, errors};
  return render_svg(spec);
}

}  // namespace autoglm::ops
