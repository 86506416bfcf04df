// CPU instruction sets, detected once. The kernel variant is chosen once at start-up from these;
// AUTOGLM_ISA=scalar|avx2|avx512 forces a path (tests and CI use it to run every variant).
#pragma once

#include <cstdint>
#include <string>

namespace autoglm {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  int64_t l1d_bytes = 0;  // one core's L1 data cache; 0 where the C library cannot tell

  bool supports(Isa isa) const;
  std::string describe() const;  // "AVX2 FMA F16C AVX-512(F BW VL DQ VNNI BF16)"
};

const CpuFeatures& cpu_features();
const char* isa_name(Isa isa);
// The best ISA this CPU supports, or the one AUTOGLM_ISA names. Throws Error if AUTOGLM_ISA names
// an unknown ISA or one this CPU lacks.
Isa selected_isa();

}  // namespace autoglm
