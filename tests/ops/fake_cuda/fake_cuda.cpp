// A stand-in for libcuda.so.1 with the driver API entry points ops/cuda_probe.cpp uses. It reports
// two devices and the CUDA version given by $FAKE_CUDA_VERSION (default 12020 = 12.2), so tests
// can provoke "driver too old" without a GPU. $FAKE_CUDA_INIT_ERROR makes cuInit fail with it.
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
int g_ctx = 0;
}  // namespace

extern "C" {
int cuInit(unsigned) {
  return env_int("FAKE_CUDA_INIT_ERROR", 0);
}
int cuDriverGetVersion(int* v) {
  *v = env_int("FAKE_CUDA_VERSION", 12020);
  return 0;
}
int cuDeviceGetCount(int* n) {
  *n = 2;
  return 0;
}
int cuDeviceGet(int* dev, int ordinal) {
  *dev = ordinal;
  return 0;
}
int cuDeviceGetName(char* name, int len, int dev) {
  std::strncpy(name, dev == 0 ? "Fake GPU A" : "Fake GPU B", static_cast<size_t>(len));
  return 0;
}
int cuDeviceTotalMem_v2(size_t* bytes, int) {
  *bytes = size_t{16} << 30;
  return 0;
}
int cuDeviceGetAttribute(int* v, int attr, int) {
  *v = attr == 75 ? 8 : attr == 76 ? 6 : 0;  // compute capability 8.6
  return 0;
}
int cuCtxCreate_v2(void** ctx, unsigned, int) {
  *ctx = &g_ctx;
  return 0;
}
int cuMemGetInfo_v2(size_t* free_b, size_t* total_b) {
  *free_b = static_cast<size_t>(env_int("FAKE_CUDA_FREE_MIB", 12288)) << 20;
  *total_b = size_t{16} << 30;
  return 0;
}
int cuCtxDestroy_v2(void*) {
  return 0;
}
}
