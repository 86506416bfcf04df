#!/usr/bin/env bash
# A/B of the 512-bit Rows8Pairs matmul kernels (q4_0, q8_0: src/kernels/matmul_rows8_avx512.cpp;
# f16, bf16: matmul_float_avx512.cpp) against a git revision, call by call in turn in one process
# (bench/kernel_ab.cpp says why): REV's two files become build A, the working tree's build B.
#   bench/kernel_ab.sh [REV] [kernel_ab options...]        (REV: HEAD unless given)
#   bench/kernel_ab.sh HEAD~1 --type q4_0 --weights dram --threads 2 --pairs 300
# Both builds compile against the working tree's headers. Since the kernels learned where a
# thread goes next (their `next` argument, KernelTable::matmul_rows_then), a revision from before
# that no longer links as build A; nor, since the q4_0 / q8_0 kernels read their activations
# arranged (detail::arrange_acts, QuantizedActs::arranged), one from before that. Two builds of the
# same source do not time the same (their code lies at other addresses: an A/A run of HEAD gave
# B/A 0.962 for q4_0, 0.983 for q8_0, 16 tokens in cache): read a B/A ratio against an A/A run's.
# Run it with nothing else busy. On exit build A holds the working tree's files again (the next
# build recompiles it), so that the A/A tests (ctest -L bench) compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
FILES=(matmul_rows8_avx512.cpp matmul_float_avx512.cpp)
rev=HEAD
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
  rev=$1
  shift
fi
if ! commit=$(git rev-parse --verify --quiet "$rev^{commit}"); then
  echo "kernel_ab.sh: '$rev' is not a commit of this repository (try HEAD, HEAD~1, a hash)" >&2
  exit 2
fi
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  echo "kernel_ab.sh: no build in $BUILD: run scripts/setup.sh first, or set BUILD_DIR" >&2
  exit 2
fi
dir="$BUILD/kernel_ab/a"
mkdir -p "$dir"
# A file is replaced only when its text changes, so that an unchanged one is not recompiled.
put() {  # put SOURCE_FILE NAME
  if ! cmp -s "$1" "$dir/$2"; then cp "$1" "$dir/$2"; fi
}
restore() {
  for f in "${FILES[@]}"; do put "src/kernels/$f" "$f"; done
}
tmp=$(mktemp -d)
trap 'restore; rm -rf "$tmp"' EXIT
for f in "${FILES[@]}"; do
  if ! git show "$commit:src/kernels/$f" >"$tmp/$f" 2>/dev/null; then
    echo "kernel_ab.sh: $rev has no src/kernels/$f" >&2
    exit 2
  fi
  put "$tmp/$f" "$f"
done
echo "A: $rev ($(git rev-parse --short "$commit")); B: the working tree" >&2
cmake --build "$BUILD" --target kernel_ab >&2
"$BUILD/bench/kernel_ab" "$@"
