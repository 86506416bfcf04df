#include "ops/doctor.h"

#include <fmt/format.h>

#include <algorithm>

namespace autoglm::ops {

const char* status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::Ok:
      return "ok";
    case CheckStatus::Warn:
      return "warn";
    case CheckStatus::Fail:
      return "fail";
  }
  return "?";
}

bool DoctorReport::can_serve() const {
  return std::none_of(checks.begin(), checks.end(),
                      [](const CheckResult& c) { return c.status == CheckStatus::Fail; });
}

DoctorReport run_doctor(const DoctorOptions& options) {
  DoctorReport r;
  const CudaProbe probe = probe_cuda();
  check_gpu(probe, built_cuda_version(), options.device, r.checks);
  check_isolation(r.checks);
  check_memory(options, probe, r.checks);
  check_huge_pages(r.checks);
  check_permissions(options, r.checks);
  check_network(options, r.checks);
  if (options.model.empty()) {
    r.checks.push_back({"model", CheckStatus::Ok, "no --model given: model checks skipped", ""});
  } else {
    check_model(options.model, r.checks);
  }
  if (options.port > 0) check_port(options.host, options.port, r.checks);
  return r;
}

std::string doctor_text(const DoctorReport& report) {
  std::string out;
  for (const CheckResult& c : report.checks) {
    out += fmt::format("[{:<4}] {:<11} {}\n", status_name(c.status), c.area, c.message);
    if (!c.fix.empty()) out += fmt::format("{:20}fix: {}\n", "", c.fix);
  }
  const auto count = [&](CheckStatus s) {
    return std::count_if(report.checks.begin(), report.checks.end(),
                         [s](const CheckResult& c) { return c.status == s; });
  };
  out += fmt::format("{} ok, {} warn, {} fail: {}\n", count(CheckStatus::Ok),
                     count(CheckStatus::Warn), count(CheckStatus::Fail),
                     report.can_serve() ? "serving can work"
                                        : "serving will not work until the "
                                          "failures are fixed");
  return out;
}

nlohmann::json doctor_json(const DoctorReport& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& c : report.checks) {
    checks.push_back({{"area", c.area},
                      {"status", status_name(c.status)},
                      {"message", c.message},
                      {"fix", c.fix}});
  }
  return {{"can_serve", report.can_serve()}, {"checks", checks}};
}

}  // namespace autoglm::ops
