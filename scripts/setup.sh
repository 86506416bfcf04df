#!/usr/bin/env bash
# Installs every Debian package the build and the tests need, then builds (Release) into build/.
# Idempotent and non-interactive: safe to run again; skips apt when everything is installed.
set -euo pipefail

cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libfmt-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libpcre2-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsimde-dev  # scripts/test.sh: the AVX-512 kernels emulated on CPUs without AVX-512
  libcurl4-openssl-dev libssl-dev  # `pull` and the online `bench` (HTTP, proxies, sha256)
  librsvg2-bin  # rsvg-convert: renders the `bench --svg` chart to PNG for a look
  libboost-dev  # Asio/Beast (header-only in 1.74): the HTTP server
  clang-format nodejs  # node runs tests/js/tokenizer_corpus.mjs (npm: see below)
  python3 python3-jinja2  # tests/tokenizer/chat_render_jinja.py renders the official GLM-4.5 template
  python3-torch  # tools/check_glm4_torch.py: the embedded model's definition vs transformers and the engine
  prometheus systemd kubectl  # tests/deploy: promtool + a real scrape, systemd-analyze, kustomize >= 4.1
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian ships npm as its own package; NodeSource's nodejs bundles it and conflicts with it.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The JavaScript tokenizer reference for tests/js/tokenizer_corpus.mjs (exact versions, lockfile).
if [ ! -d tests/js/node_modules ]; then
  echo "setup: npm ci --prefix tests/js"
  npm ci --prefix tests/js --no-audit --no-fund
fi
# The official `openai` SDK for the server's end-to-end suite (tests/e2e).
if [ ! -d tests/e2e/node_modules ]; then
  echo "setup: npm ci --prefix tests/e2e"
  npm ci --prefix tests/e2e --no-audit --no-fund
fi

# Kubernetes / KEDA schemas, YAML and the Dockerfile linter for tests/deploy.
if [ ! -d tests/deploy/node_modules ]; then
  echo "setup: npm ci --prefix tests/deploy"
  npm ci --prefix tests/deploy --no-audit --no-fund
fi

cmake --preset release >/dev/null
cmake --build --preset release
echo "setup: built build/autoglm"
