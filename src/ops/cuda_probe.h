// The NVIDIA driver, looked up at run time with dlopen("libcuda.so.1"): the binary has no
// link-time dependency on CUDA, so one build runs on machines with and without a GPU, and
// `doctor` can say what the driver supports before anything needs it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace autoglm::ops {

struct GpuDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  uint64_t free_bytes = 0, total_bytes = 0;
  std::string error;  // non-empty when the device could not be queried (free memory unknown)
};

struct CudaProbe {
  std::string library;     // what was dlopen'ed
  bool loaded = false;     // the library was found and has the entry points used
  std::string error;       // why not loaded / why cuInit failed
  int driver_version = 0;  // CUDA version the driver supports, e.g. 12020 = 12.2
  std::vector<GpuDevice> devices;
};

// Loads $AUTOGLM_CUDA_LIBRARY (tests point it at a fake) or libcuda.so.1 and queries every device.
// Never throws: a machine without the driver is a normal answer.
CudaProbe probe_cuda();

// CUDA runtime version this binary was built for (CMake's CUDAToolkit_VERSION), e.g. 12040;
// 0 for a CPU build.
int built_cuda_version();
// 12020 -> "12.2".
std::string cuda_version_string(int version);

}  // namespace autoglm::ops
