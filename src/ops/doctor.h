// `autoglm doctor`: the failures a deployment meets, found before serving instead of by crashing
// into them. One line per check (ok / warn / fail), a fix beside every warn and fail; serving can
// work exactly when no check fails.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "ops/cuda_probe.h"
#include "ops/plan.h"

namespace autoglm::ops {

enum class CheckStatus { Ok, Warn, Fail };
const char* status_name(CheckStatus s);  // "ok", "warn", "fail"

struct CheckResult {
  std::string area;  // "gpu", "isolation", "memory", "permissions", "network", "model", "port"
  CheckStatus status = CheckStatus::Ok;
  std::string message;  // what was found
  std::string fix;      // what to do; empty only for ok
};

struct DoctorOptions {
  std::string model;  // empty: model checks are skipped (said so)
  std::string host = "127.0.0.1";
  int port = 8000;              // 0: not checked
  std::string device = "auto";  // auto, cpu, cuda, cuda:0,1 (several: a split across them)
  PlanOptions plan;             // dtype, context, batch for the memory check
  std::string api_key_file;     // empty: $AUTOGLM_API_KEY_FILE if set
  std::string cache_dir;        // empty: $AUTOGLM_CACHE_DIR, $HF_HOME, $XDG_CACHE_HOME or ~/.cache
  std::string log_dir;          // empty: not checked (logs go to stderr)
  std::string endpoint;         // empty: $HF_ENDPOINT, else https://huggingface.co
  int network_timeout_ms = 2000;
  bool network = true;  // false: no connection is attempted (--offline)
};

inline constexpr const char* kTransparentHugePagesEnabled =
    "/sys/kernel/mm/transparent_hugepage/enabled";

struct DoctorReport {
  std::vector<CheckResult> checks;
  bool can_serve() const;  // no check failed
};

DoctorReport run_doctor(const DoctorOptions& options);
std::string doctor_text(const DoctorReport& report);
nlohmann::json doctor_json(const DoctorReport& report);

// The checks one by one (each appends its lines), for tests and for `serve` start-up.
void check_gpu(const CudaProbe& probe, int built_version, const std::string& device,
               std::vector<CheckResult>& out);
void check_isolation(std::vector<CheckResult>& out);
void check_memory(const DoctorOptions& options, const CudaProbe& probe,
                  std::vector<CheckResult>& out);
void check_permissions(const DoctorOptions& options, std::vector<CheckResult>& out);
void check_network(const DoctorOptions& options, std::vector<CheckResult>& out);
void check_model(const std::string& path, std::vector<CheckResult>& out);
// Transparent huge pages, read from `sysfs_enabled` (the kernel's
// /sys/kernel/mm/transparent_hugepage/enabled by default): weights and KV caches ask for them.
void check_huge_pages(std::vector<CheckResult>& out,
                      const std::string& sysfs_enabled = kTransparentHugePagesEnabled);
void check_port(const std::string& host, int port, std::vector<CheckResult>& out);

// Oldest Linux driver of the CUDA release notes' table for a toolkit version (13000 ->
// "580.65.06").
std::string min_driver_for(int cuda_version);

}  // namespace autoglm::ops
