// doctor: GPU stack, isolation (linked libraries, no Python) and memory against the plan.
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "models/model.h"
#include "ops/doctor.h"
#include "ops/plan_report.h"

namespace autoglm::ops {
namespace {

std::string cpu_line() {
  std::string isa;
  try {
    isa = isa_name(selected_isa());
  } catch (const Error& e) {
    isa = std::string("scalar (") + e.what() + ")";
  }
  return fmt::format("CPU has {}; kernels: {}", cpu_features().describe(), isa);
}

bool wants_gpu(const std::string& device) {
  return device.rfind("cuda", 0) == 0;
}

// "cuda:0,2" -> {0, 2}; "cuda" -> every device.
std::vector<int> requested_gpus(const std::string& device, size_t n_devices) {
  std::vector<int> ids;
  const auto colon = device.find(':');
  if (colon == std::string::npos) {
    for (size_t i = 0; i < n_devices; ++i) ids.push_back(static_cast<int>(i));
    return ids;
  }
  std::string list = device.substr(colon + 1);
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    ids.push_back(std::atoi(list.substr(start, end - start).c_str()));
    start = end + 1;
  }
  return ids;
}

}  // namespace

std::string min_driver_for(int v) {
  // CUDA Toolkit release notes, table "CUDA Toolkit and Corresponding Driver Versions" (Linux).
  static const std::map<int, const char*> table = {
      {11000, "450.36.06"}, {11080, "520.61.05"}, {12000, "525.60.13"}, {12010, "530.30.02"},
      {12020, "535.54.03"}, {12030, "545.23.06"}, {12040, "550.54.14"}, {12050, "555.42.02"},
      {12060, "560.28.03"}, {12080, "570.26"},    {12090, "575.51.03"}, {13000, "580.65.06"}};
  auto it = table.upper_bound(v);
  if (it == table.begin()) return "?";
  return std::prev(it)->second;
}

void check_gpu(const CudaProbe& p, int built, const std::string& device,
               std::vector<CheckResult>& out) {
  const std::string build =
      built > 0 ? fmt::format("binary built for CUDA {}", cuda_version_string(built)) : "CPU build";
  if (!p.loaded) {
    const CheckStatus s = wants_gpu(device) ? CheckStatus::Fail : CheckStatus::Ok;
    out.push_back({"gpu", s,
                   fmt::format("no NVIDIA driver ({}: {}); CPU will be used. {}", p.library,
                               p.error, cpu_line()),
                   s == CheckStatus::Ok ? "" : "install the NVIDIA driver, or use --device cpu"});
    return;
  }
  if (!p.error.empty() || p.devices.empty()) {
    const CheckStatus s = wants_gpu(device) ? CheckStatus::Fail : CheckStatus::Warn;
    out.push_back(
        {"gpu", s,
         fmt::format("NVIDIA driver loaded ({}) but no usable GPU: {}; CPU will be used. {}",
                     p.library, p.error.empty() ? "0 devices" : p.error, cpu_line()),
         "check `nvidia-smi`; a driver/kernel-module version mismatch needs a reboot; in a "
         "container pass the GPU (--gpus all) and set NVIDIA_VISIBLE_DEVICES"});
    return;
  }
  for (const GpuDevice& g : p.devices) {
    if (!g.error.empty()) {
      out.push_back({"gpu", CheckStatus::Warn,
                     fmt::format("GPU {} {}: {}", g.index, g.name, g.error),
                     "another process may hold the device in exclusive mode: see `nvidia-smi`"});
      continue;
    }
    out.push_back({"gpu", CheckStatus::Ok,
                   fmt::format("GPU {} {}: compute capability {}.{}, {} free of {}", g.index,
                               g.name, g.cc_major, g.cc_minor, format_bytes(g.free_bytes),
                               format_bytes(g.total_bytes)),
                   ""});
  }
  const std::string driver = cuda_version_string(p.driver_version);
  if (built == 0) {
    out.push_back({"gpu", CheckStatus::Ok,
                   fmt::format("driver supports CUDA {}; CPU build: this binary computes on the "
                               "CPU. {}",
                               driver, cpu_line()),
                   ""});
  } else if (p.driver_version < built) {
    out.push_back({"gpu", CheckStatus::Fail,
                   fmt::format("driver supports CUDA {}, binary needs {}", driver,
                               cuda_version_string(built)),
                   fmt::format("update the NVIDIA driver to >= {} (CUDA {}) or use the CPU build",
                               min_driver_for(built), cuda_version_string(built))});
  } else {
    out.push_back(
        {"gpu", CheckStatus::Ok, fmt::format("driver supports CUDA {}, {}", driver, build), ""});
  }
}

void check_isolation(std::vector<CheckResult>& out) {
  struct Seen {
    std::vector<std::string> libs, missing;
    bool python = false;
  } seen;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& s = *static_cast<Seen*>(data);
        const std::string path = info->dlpi_name ? info->dlpi_name : "";
        if (path.empty() || path.find("linux-vdso") != std::string::npos) return 0;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) s.missing.push_back(path);
        const std::string file = std::filesystem::path(path).filename().string();
        if (file.rfind("libpython", 0) == 0) s.python = true;
        s.libs.push_back(file);
        return 0;
      },
      &seen);
  if (!seen.missing.empty()) {
    out.push_back(
        {"isolation", CheckStatus::Warn,
         fmt::format("{} loaded libraries are gone from disk (upgraded while running?): {}",
                     seen.missing.size(), seen.missing.front()),
         "restart the process after package upgrades"});
  }
  out.push_back({"isolation", CheckStatus::Ok,
                 fmt::format("{} shared libraries resolved ({}); no Python needed{}",
                             seen.libs.size(), fmt::join(seen.libs, " "),
                             seen.python ? " (but libpython is loaded: LD_PRELOAD?)" : ""),
                 ""});
  if (const char* pre = std::getenv("LD_PRELOAD"); pre && *pre) {
    out.push_back({"isolation", CheckStatus::Warn, fmt::format("LD_PRELOAD={}", pre),
                   "unset LD_PRELOAD unless you mean to inject that library"});
  }
}

void check_memory(const DoctorOptions& o, const CudaProbe& probe, std::vector<CheckResult>& out) {
  std::vector<DeviceMemory> devices = plan_devices(probe);
  if (o.model.empty()) {
    out.push_back({"memory", CheckStatus::Ok,
                   fmt::format("{} of RAM available; give --model to check a plan against it",
                               format_bytes(devices[0].available)),
                   ""});
    return;
  }
  models::ModelSpec spec;
  formats::TensorStore store;
  try {
    spec = models::read_spec(o.model);
    store = formats::open_weights(o.model);
  } catch (const Error&) {
    return;  // the model check says why
  }
  if (!wants_gpu(o.device)) devices.resize(1);  // the CPU engine only needs RAM
  for (const DeviceMemory& d : devices) {
    const FitReport f = fit_on(spec, o.plan, d, &store);
    CheckResult r{"memory", CheckStatus::Ok, fit_line(f), ""};
    if (f.verdict == Verdict::FitsWithQ8 || f.verdict == Verdict::FitsWithQ4) {
      r.status = CheckStatus::Warn;
      r.fix =
          fmt::format("serve with --dtype {}", f.verdict == Verdict::FitsWithQ8 ? "q8_0" : "q4_0");
    } else if (f.verdict == Verdict::DoesNotFit) {
      r.status = CheckStatus::Fail;
      r.fix = f.max_context > 0
                  ? fmt::format("serve with --ctx {} --max-batch {} or less", f.max_context,
                                std::max<int64_t>(1, f.max_batch))
                  : "free memory, or use a smaller model: even q4_0 weights do not fit";
    }
    out.push_back(r);
  }
  // Multi-GPU: a split by layers puts about 1/n of the plan on each device.
  const std::vector<int> ids = requested_gpus(o.device, probe.devices.size());
  if (!wants_gpu(o.device) || ids.size() < 2) return;
  const MemoryPlan plan = plan_memory(spec, o.plan, &store);
  const uint64_t share = plan.total_bytes / ids.size();
  for (int id : ids) {
    if (id < 0 || id >= static_cast<int>(probe.devices.size())) {
      out.push_back({"devices", CheckStatus::Fail, fmt::format("GPU {} does not exist", id),
                     fmt::format("list devices 0..{}", probe.devices.size() - 1)});
      continue;
    }
    const GpuDevice& g = probe.devices[static_cast<size_t>(id)];
    const bool ok = share <= g.free_bytes;
    out.push_back({"devices", ok ? CheckStatus::Ok : CheckStatus::Fail,
                   fmt::format("GPU {}: its share {} of the split, {} free", id,
                               format_bytes(share), format_bytes(g.free_bytes)),
                   ok ? "" : "add devices to the split, or lower --ctx / --batch / --dtype"});
  }
}

void check_huge_pages(std::vector<CheckResult>& out, const std::string& sysfs_enabled) {
  std::ifstream f(sysfs_enabled);
  std::string modes;  // e.g. "always [madvise] never": the bracketed mode is the one in force
  std::getline(f, modes);
  const size_t open = modes.find('[');
  const size_t close = modes.find(']', open);
  if (open == std::string::npos || close == std::string::npos) {
    out.push_back(
        {"memory", CheckStatus::Ok,
         fmt::format("transparent huge pages: not offered by this kernel ({} unreadable); "
                     "weights use 4 KiB pages",
                     sysfs_enabled),
         ""});
    return;
  }
  const std::string mode = modes.substr(open + 1, close - open - 1);
  if (mode == "never") {
    out.push_back({"memory", CheckStatus::Warn,
                   "transparent huge pages are off (never): decode streams the weights through "
                   "4 KiB pages, measured 3-17% slower than with 2 MiB pages",
                   fmt::format("echo madvise | sudo tee {} (or boot with "
                               "transparent_hugepage=madvise)",
                               sysfs_enabled)});
    return;
  }
  out.push_back(
      {"memory", CheckStatus::Ok,
       fmt::format("transparent huge pages: {}; weights and KV cache ask for 2 MiB pages", mode),
       ""});
}

}  // namespace autoglm::ops
