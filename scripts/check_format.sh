#!/usr/bin/env bash
# Fails when a C++ source differs from clang-format's output (.clang-format at the root); lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
checked=0
while IFS= read -r f; do
  checked=$((checked + 1))
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: $f (run: clang-format -i $f)"
    bad=$((bad + 1))
  fi
done < <(git ls-files -co --exclude-standard 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp')
echo "$((checked - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
