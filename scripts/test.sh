#!/usr/bin/env bash
# The whole test suite: builds (Release) and runs every test with CTest. The reference fixtures are
# read from ../shared/fixtures unless AUTOGLM_FIXTURES points elsewhere; tests fail when absent.
# Then the kernel and model tests once more with the AVX-512 kernels, built for AVX2 against SIMDe
# (preset avx512-emulated, src/kernels/avx512_intrinsics.h): most machines that run this suite have
# no AVX-512, and those kernels would otherwise never run before they reach one that has.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j "$(nproc)"
if ! grep -qw avx2 /proc/cpuinfo; then
  echo "test: no AVX2 on this CPU, so the emulated AVX-512 kernels (built for AVX2) cannot run here"
  exit 0
fi
cmake --preset avx512-emulated >/dev/null
cmake --build --preset avx512-emulated
ctest --preset avx512-emulated -j "$(nproc)"
