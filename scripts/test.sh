#!/usr/bin/env bash
# The whole test suite: builds (Release) and runs every test with CTest. The reference fixtures are
# read from ../shared/fixtures unless AUTOGLM_FIXTURES points elsewhere; tests fail when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j "$(nproc)"
