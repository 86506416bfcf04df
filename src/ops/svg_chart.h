// Small-multiple line/bar charts as standalone SVG text (no library: SVG is a text format, and the
// chart is a few dozen elements). Panels share one categorical x axis (the concurrency levels).
#pragma once

#include <string>
#include <vector>

namespace autoglm::ops {

struct ChartSeries {
  std::string name;
  std::vector<double> y;  // one value per x label; NaN: no point
  std::string color;      // "#1f77b4"
  std::string dash;       // SVG stroke-dasharray, "" for solid
  double width = 2.0;
};

struct ChartPanel {
  std::string title;
  std::string unit;                       // y axis unit, shown after the title
  std::vector<ChartSeries> series;        // lines (or bars when `bars`)
  bool bars = false;                      // one bar per x for series[0]
  int band_low = -1, band_high = -1;      // shade between these two series (e.g. p50..p99)
  std::vector<std::string> point_labels;  // optional text above series[0]'s points
};

struct ChartSpec {
  std::string title;
  std::string subtitle;
  std::string x_title;
  std::vector<std::string> x_labels;
  std::vector<ChartPanel> panels;
  int columns = 2;
};

std::string render_svg(const ChartSpec& spec);

// "a < b & c" -> "a &lt; b &amp; c" for SVG text and attributes.
std::string xml_escape(const std::string& text);

// Round axis maximum and step: nice_axis(87) -> {100, 20}.
struct NiceAxis {
  double max = 1, step = 1;
};
NiceAxis nice_axis(double data_max);

}  // namespace autoglm::ops
