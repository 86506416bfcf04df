#include "ops/cuda_probe.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace autoglm::ops {
namespace {

// The few driver API entry points used, with the driver's C signatures (cuda.h): CUresult is an
// int, CUdevice an int, CUcontext an opaque pointer.
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuCtxCreate = int (*)(void**, unsigned, int);
using CuMemGetInfo = int (*)(size_t*, size_t*);
using CuCtxDestroy = int (*)(void*);
using CuGetErrorName = int (*)(int, const char**);

constexpr int kAttrCcMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kAttrCcMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

struct Driver {
  void* handle = nullptr;
  CuInit init = nullptr;
  CuDriverGetVersion driver_version = nullptr;
  CuDeviceGetCount device_count = nullptr;
  CuDeviceGet device_get = nullptr;
  CuDeviceGetName device_name = nullptr;
  CuDeviceTotalMem total_mem = nullptr;
  CuDeviceGetAttribute attribute = nullptr;
  CuCtxCreate ctx_create = nullptr;
  CuMemGetInfo mem_info = nullptr;
  CuCtxDestroy ctx_destroy = nullptr;
  CuGetErrorName error_name = nullptr;

  template <typename F>
  bool bind(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(handle, name));
    return f != nullptr;
  }
  std::string describe(int code) const {
    const char* name = nullptr;
    if (error_name && error_name(code, &name) == 0 && name)
      return fmt::format("{} ({})", name, code);
    return fmt::format("CUresult {}", code);
  }
};

void query_device(const Driver& d, int index, GpuDevice& g) {
  g.index = index;
  int dev = 0;
  if (int rc = d.device_get(&dev, index); rc != 0) {
    g.error = "cuDeviceGet: " + d.describe(rc);
    return;
  }
  char name[256] = {};
  if (d.device_name(name, sizeof(name) - 1, dev) == 0) g.name = name;
  d.attribute(&g.cc_major, kAttrCcMajor, dev);
  d.attribute(&g.cc_minor, kAttrCcMinor, dev);
  size_t total = 0;
  if (d.total_mem(&total, dev) == 0) g.total_bytes = total;
  // Free memory needs a context (about 300 MB of the device while it lives; destroyed at once).
  void* ctx = nullptr;
  if (int rc = d.ctx_create(&ctx, 0, dev); rc != 0) {
    g.error = "cuCtxCreate: " + d.describe(rc);
    return;
  }
  size_t free_b = 0, total_b = 0;
  if (int rc = d.mem_info(&free_b, &total_b); rc != 0) {
    g.error = "cuMemGetInfo: " + d.describe(rc);
  } else {
    g.free_bytes = free_b;
    if (total_b) g.total_bytes = total_b;
  }
  d.ctx_destroy(ctx);
}

}  // namespace

CudaProbe probe_cuda() {
  CudaProbe p;
  const char* env = std::getenv("AUTOGLM_CUDA_LIBRARY");
  p.library = env && *env ? env : "libcuda.so.1";
  Driver d;
  d.handle = dlopen(p.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!d.handle) {
    const char* why = dlerror();
    p.error = why ? why : "not found";
    return p;
  }
  const bool ok =
      d.bind(d.init, "cuInit") && d.bind(d.driver_version, "cuDriverGetVersion") &&
      d.bind(d.device_count, "cuDeviceGetCount") && d.bind(d.device_get, "cuDeviceGet") &&
      d.bind(d.device_name, "cuDeviceGetName") && d.bind(d.total_mem, "cuDeviceTotalMem_v2") &&
      d.bind(d.attribute, "cuDeviceGetAttribute") && d.bind(d.ctx_create, "cuCtxCreate_v2") &&
      d.bind(d.mem_info, "cuMemGetInfo_v2") && d.bind(d.ctx_destroy, "cuCtxDestroy_v2");
  d.bind(d.error_name, "cuGetErrorName");  // optional: only for messages
  if (!ok) {
    p.error = fmt::format("{} lacks a driver API entry point ({})", p.library, dlerror());
    dlclose(d.handle);
    return p;
  }
  p.loaded = true;
  d.driver_version(&p.driver_version);  // answers even when cuInit fails
  if (int rc = d.init(0); rc != 0) {
    p.error = "cuInit: " + d.describe(rc);
  } else {
    int n = 0;
    if (int rc2 = d.device_count(&n); rc2 != 0) p.error = "cuDeviceGetCount: " + d.describe(rc2);
    for (int i = 0; i < n; ++i) {
      GpuDevice g;
      query_device(d, i, g);
      p.devices.push_back(std::move(g));
    }
  }
  // The handle is kept: unloading a driver that created contexts is not supported by NVIDIA.
  return p;
}

int built_cuda_version() {
#ifdef AUTOGLM_CUDA_RUNTIME_VERSION
  // "12.4.131" -> 12040
  int major = 0, minor = 0;
  std::sscanf(AUTOGLM_CUDA_RUNTIME_VERSION, "%d.%d", &major, &minor);
  return major * 1000 + minor * 10;
#else
  return 0;
#endif
}

std::string cuda_version_string(int version) {
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

}  // namespace autoglm::ops
