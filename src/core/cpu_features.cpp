#include "core/cpu_features.h"

#include <cpuid.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "core/error.h"

namespace autoglm {
namespace {

bool os_saves_zmm() {
  // XGETBV: bits 1,2 (SSE, AVX) and 5,6,7 (opmask, ZMM upper halves) must be enabled by the OS.
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (eax & 0xe6u) == 0xe6u;
}

bool os_saves_ymm() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (eax & 0x6u) == 0x6u;
}

CpuFeatures detect() {
  CpuFeatures f;
  f.l1d_bytes = std::max<long>(0, sysconf(_SC_LEVEL1_DCACHE_SIZE));  // glibc asks CPUID
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1u;
  const bool ymm = osxsave && os_saves_ymm();
  const bool zmm = osxsave && os_saves_zmm();
  f.fma = ymm && ((c >> 12) & 1u);
  f.f16c = ymm && ((c >> 29) & 1u);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm && ((b >> 5) & 1u);
    f.avx512f = zmm && ((b >> 16) & 1u);
    f.avx512dq = zmm && ((b >> 17) & 1u);
    f.avx512bw = zmm && ((b >> 30) & 1u);
    f.avx512vl = zmm && ((b >> 31) & 1u);
    f.avx512vnni = zmm && ((c >> 11) & 1u);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = zmm && ((a >> 5) & 1u);
  return f;
}

}  // namespace

bool CpuFeatures::supports(Isa isa) const {
  switch (isa) {
    case Isa::Scalar:
      return true;
    case Isa::Avx2:
      return avx2 && fma && f16c;
    case Isa::Avx512:
#if defined(AUTOGLM_EMULATE_AVX512)
      return supports(Isa::Avx2);  // the AVX-512 kernels were built for AVX2, through SIMDe
#else
      return supports(Isa::Avx2) && avx512f && avx512bw && avx512vl && avx512dq && avx512vnni &&
             avx512bf16;
#endif
  }
  return false;
}

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&s](bool on, std::string_view name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vl, "AVX512VL");
  add(avx512dq, "AVX512DQ");
  add(avx512vnni, "AVX512-VNNI");
  add(avx512bf16, "AVX512-BF16");
#if defined(AUTOGLM_EMULATE_AVX512)
  add(true, "(AVX-512 kernels emulated through SIMDe)");
#endif
  return s.empty() ? "no AVX" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

Isa selected_isa() {
  const CpuFeatures& f = cpu_features();
  const char* forced = std::getenv("AUTOGLM_ISA");
  if (forced && *forced) {
    const std::string_view name(forced);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (name != isa_name(isa)) continue;
      if (!f.supports(isa)) {
        fail(
            "AUTOGLM_ISA={} but this CPU lacks it (it has: {}); unset AUTOGLM_ISA or choose "
            "scalar",
            name, f.describe());
      }
      return isa;
    }
    fail("AUTOGLM_ISA={} is not a known instruction set: use scalar, avx2 or avx512", name);
  }
  if (f.supports(Isa::Avx512)) return Isa::Avx512;
  if (f.supports(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

}  // namespace autoglm
