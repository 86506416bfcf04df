#include "ops/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace autoglm::ops {
namespace {

constexpr double kPanelW = 470, kPanelH = 300, kHeader = 70;
constexpr double kLeft = 64, kRight = 16, kTop = 58, kBottom = 46;  // plot margins in a panel

std::string number(double v) {
  if (v == std::round(v) && std::fabs(v) < 10000) return fmt::format("{:.0f}", v);
  const double a = std::fabs(v);
  if (a >= 10000) return fmt::format("{:.0f}k", v / 1000);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2g}", v);
}

struct Frame {
  double x0, y0, w, h;  // plot area in page coordinates
  NiceAxis axis;
  size_t n;
  double x(size_t i) const { return x0 + (n == 1 ? w / 2 : w * (0.06 + 0.88 * i / (n - 1))); }
  double y(double v) const { return y0 + h - h * std::clamp(v / axis.max, 0.0, 1.05); }
};

void axes(std::string& out, const Frame& f, const ChartSpec& spec) {
  for (double t = 0; t <= f.axis.max + f.axis.step * 1e-9; t += f.axis.step) {
    out += fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#e3e3e3"/>)"
                       R"(<text x="{:.1f}" y="{:.1f}" class="tick" text-anchor="end">{}</text>)"
                       "\n",
                       f.x0, f.y(t), f.x0 + f.w, f.y(t), f.x0 - 6, f.y(t) + 4, number(t));
  }
  out += fmt::format(R"(<line x1="{0:.1f}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#888"/>)",
                     f.x0, f.y0 + f.h, f.x0 + f.w);
  for (size_t i = 0; i < f.n; ++i)
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" class="tick" text-anchor="middle">{}</text>)",
                       f.x(i), f.y0 + f.h + 16, xml_escape(spec.x_labels[i]));
  out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" class="axis" text-anchor="middle">{}</text>)",
                     f.x0 + f.w / 2, f.y0 + f.h + 34, xml_escape(spec.x_title));
  out += "\n";
}

std::string points(const Frame& f, const std::vector<double>& y, bool reverse) {
  std::string p;
  for (size_t k = 0; k < y.size(); ++k) {
    const size_t i = reverse ? y.size() - 1 - k : k;
    if (std::isfinite(y[i])) p += fmt::format("{:.1f},{:.1f} ", f.x(i), f.y(y[i]));
  }
  return p;
}

void panel(std::string& out, const ChartPanel& p, const ChartSpec& spec, double px, double py) {
  double data_max = 0;
  for (const auto& s : p.series)
    for (double v : s.y)
      if (std::isfinite(v)) data_max = std::max(data_max, v);
  const Frame f{
      px + kLeft,          py + kTop,           kPanelW - kLeft - kRight, kPanelH - kTop - kBottom,
      nice_axis(data_max), spec.x_labels.size()};
  out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" class="panel">{})", px + kLeft, py + 22,
                     xml_escape(p.title));
  if (!p.unit.empty())
    out += fmt::format(R"( <tspan class="unit">({})</tspan>)", xml_escape(p.unit));
  out += "</text>\n";
  axes(out, f, spec);
  if (p.band_low >= 0 && p.band_high >= 0) {
    out += fmt::format(R"(<polygon points="{}{}" fill="{}" fill-opacity="0.12" stroke="none"/>)",
                       points(f, p.series[p.band_low].y, false),
                       points(f, p.series[p.band_high].y, true), p.series[p.band_low].color);
    out += "\n";
  }
  if (p.bars && !p.series.empty()) {
    const double bw = std::min(40.0, f.w / (2.0 * f.n));
    for (size_t i = 0; i < f.n; ++i) {
      const double v = p.series[0].y[i];
      if (!std::isfinite(v)) continue;
      out += fmt::format(
          R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"><title>{}</title></rect>)",
          f.x(i) - bw / 2, f.y(v), bw, f.y0 + f.h - f.y(v), p.series[0].color, number(v));
    }
  } else {
    for (const auto& s : p.series) {
      out += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="{}")",
                         points(f, s.y, false), s.color, s.width);
      if (!s.dash.empty()) out += fmt::format(R"( stroke-dasharray="{}")", s.dash);
      out += "/>\n";
      for (size_t i = 0; i < s.y.size(); ++i)
        if (std::isfinite(s.y[i]))
          out += fmt::format(
              R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{} {}: {}</title></circle>)",
              f.x(i), f.y(s.y[i]), s.color, xml_escape(s.name), xml_escape(spec.x_labels[i]),
              number(s.y[i]));
      out += "\n";
    }
  }
  if (!p.series.empty())
    for (size_t i = 0; i < p.point_labels.size() && i < f.n; ++i) {
      const double v = p.series[0].y[i];
      // Above its point, unless that is within 12 px of the frame's top (where the legend row
      // sits): then just under it, inside a bar.
      double y = (std::isfinite(v) ? f.y(v) : f.y0 + f.h) - 8;
      if (y < f.y0 - 4) y += 22;
      out +=
          fmt::format(R"(<text x="{:.1f}" y="{:.1f}" class="label" text-anchor="middle">{}</text>)",
                      f.x(i), y, xml_escape(p.point_labels[i]));
    }
  // Legend: one row under the title, so it never covers data or the title.
  const double ly = py + 40;
  double lx = px + kLeft;
  for (const auto& s : p.series) {
    out += fmt::format(
        R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="{}" stroke-width="{}" stroke-dasharray="{}"/>)"
        R"(<text x="{:.1f}" y="{:.1f}" class="legend">{}</text>)"
        "\n",
        lx, ly, lx + 22, ly, s.color, p.bars ? 8.0 : s.width, s.dash.empty() ? "none" : s.dash,
        lx + 28, ly + 4, xml_escape(s.name));
    lx += 40 + 6.5 * double(s.name.size());  // ~6.5 px per character at 11 px
  }
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

NiceAxis nice_axis(double data_max) {
  if (!(data_max > 0) || !std::isfinite(data_max)) return {1, 0.25};
  // Steps of 1, 2 or 5 x 10^k giving 4 to 10 grid lines (Heckbert, "Nice numbers for graph
  // labels", Graphics Gems 1990).
  const double raw = data_max / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
  return {std::ceil(data_max / step - 1e-9) * step, step};
}

std::string render_svg(const ChartSpec& spec) {
  const int cols = std::max(1, spec.columns);
  const int rows = (static_cast<int>(spec.panels.size()) + cols - 1) / cols;
  const double width = cols * kPanelW + 20, height = kHeader + rows * kPanelH + 10;
  std::string out = fmt::format(
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      "\n"
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0:.0f}" height="{1:.0f}" viewBox="0 0 {0:.0f} {1:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">)"
      "\n<style>.title{{font-size:20px;font-weight:bold;fill:#222}} "
      ".sub{{font-size:12px;fill:#555}} "
      ".panel{{font-size:14px;font-weight:bold;fill:#222}} .unit{{font-weight:normal;fill:#666}} "
      ".tick{{font-size:11px;fill:#555}} .axis{{font-size:11px;fill:#333}} "
      ".legend{{font-size:11px;fill:#333}} .label{{font-size:10px;fill:#333}}</style>\n"
      R"(<rect width="100%" height="100%" fill="white"/>)"
      "\n"
      R"(<text x="20" y="30" class="title">{2}</text><text x="20" y="52" class="sub">{3}</text>)"
      "\n",
      width, height, xml_escape(spec.title), xml_escape(spec.subtitle));
  for (size_t i = 0; i < spec.panels.size(); ++i)
    panel(out, spec.panels[i], spec, 10 + (i % cols) * kPanelW, kHeader + (i / cols) * kPanelH);
  out += "</svg>\n";
  return out;
}

}  // namespace autoglm::ops
