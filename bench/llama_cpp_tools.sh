#!/usr/bin/env bash
# autoglm against llama.cpp's own benchmark programs, built from source on this host: llama-bench
# (prefill 512 tokens, decode 128) and llama-batched-bench (16 sequences with a one-token prompt
# each, then 32 steps that carry one token of each: what `autoglm bench --batch 16` times). The
# engines alternate ROUNDS times per type on the same weights (the benchmark-shaped synthetic
# model with a placeholder byte vocabulary, as bench/llama_cpp_compare.sh writes it).
#
# Why beside llama_cpp_compare.sh: that script drives llama.cpp's prebuilt npm libraries through
# node-llama-cpp, whose 16-sequence context keeps one KV stream per sequence, and whose timing
# passes through JavaScript. These are the programs llama.cpp's own figures come from, compiled
# with -march=native (GGML_NATIVE) for this CPU.
#
# The source: the llama.cpp release that the npm package node-llama-cpp ships as a git bundle
# (bench/llama_cpp, `npm install` on first use, as llama_cpp_compare.sh does); no network is
# needed. The build (about 15 minutes on 2 cores) goes to $LLAMA_BUILD and is reused.
# Run it on an otherwise idle machine: about 40 minutes for the 4 types and 2 rounds.
#   bench/llama_cpp_tools.sh [DTYPES...]      (default: q4_0 q8_0 f16 bf16)
# Environment: THREADS (2), ROUNDS (2), BENCH_DIR (/tmp/autoglm-bench), AUTOGLM_BIN, CONFIG
# (bench/configs/glm4-edge-shape.json), LLAMA_BUILD ($BENCH_DIR/llama.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOGLM_BIN:-build/autoglm}
OUT=${BENCH_DIR:-/tmp/autoglm-bench}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
CONFIG=${CONFIG:-bench/configs/glm4-edge-shape.json}
LLAMA_BUILD=${LLAMA_BUILD:-$OUT/llama.cpp}
shape=$(basename "$CONFIG" .json)
dtypes=("$@")
[ ${#dtypes[@]} -gt 0 ] || dtypes=(q4_0 q8_0 f16 bf16)
need() { command -v "$1" >/dev/null || { echo "llama_cpp_tools: needs $1 ($2)" >&2; exit 1; }; }
need node "apt-get install nodejs npm"
need cmake "apt-get install cmake"
need ninja "apt-get install ninja-build"
need git "apt-get install git"
[ -x "$BIN" ] || { echo "llama_cpp_tools: no $BIN; build first (README)" >&2; exit 1; }

# llama.cpp's source and build.
# shellcheck source=bench/llama_cpp/common.sh
source bench/llama_cpp/common.sh
bundle=bench/llama_cpp/node_modules/node-llama-cpp/llama/gitRelease.bundle
install_node_llama_cpp
[ -f "$bundle" ] || { echo "llama_cpp_tools: no $bundle after npm install" >&2; exit 1; }
src="$LLAMA_BUILD/src"
if [ ! -f "$src/CMakeLists.txt" ]; then
  rm -rf "$src"
  mkdir -p "$LLAMA_BUILD"
  git clone --quiet "$bundle" "$src"
fi
tools="$LLAMA_BUILD/build/bin"
if [ ! -x "$tools/llama-bench" ] || [ ! -x "$tools/llama-batched-bench" ]; then
  echo "== building llama.cpp ($(git -C "$src" rev-parse --short HEAD)) in $LLAMA_BUILD/build" >&2
  cmake -S "$src" -B "$LLAMA_BUILD/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
  ninja -C "$LLAMA_BUILD/build" llama-bench llama-batched-bench >&2
fi

synth_vocab_models "${dtypes[@]}"
results="$OUT/llama_cpp_tools.jsonl"
: >"$results"
for round in $(seq "$ROUNDS"); do
  for d in "${dtypes[@]}"; do
    model="$OUT/$shape-$d-vocab.gguf"
    echo "== round $round, $d: autoglm, then llama-bench and llama-batched-bench" >&2
    autoglm_row "$d" "$model" >>"$results"
    # llama-bench: pp512 and tg128, 3 repetitions each; avg_ts is their mean tokens/s.
    lb=$("$tools/llama-bench" -m "$model" -t "$THREADS" -p 512 -n 128 -r 3 -o json 2>/dev/null)
    # llama-batched-bench: 16 sequences, each a one-token prompt, then 32 tokens each; S_TG is
    # 16 x 32 tokens over the time of those 32 steps.
    bb=$("$tools/llama-batched-bench" -m "$model" -t "$THREADS" -tb "$THREADS" -c 1024 -b 512 \
      -ub 512 -npp 1 -ntg 32 -npl 16 --output-format jsonl 2>/dev/null | grep '^{')
    node -e 'const lb = JSON.parse(process.argv[2]), bb = JSON.parse(process.argv[3]);
      const ts = (p, n) => lb.find(r => r.n_prompt === p && r.n_gen === n).avg_ts;
      console.log(JSON.stringify({dtype: process.argv[1], engine: "llama.cpp",
        prefill: ts(512, 0), decode: ts(0, 128), batch: bb.speed_tg,
        build: lb[0].build_commit, cpu: lb[0].cpu_info}))' "$d" "$lb" "$bb" >>"$results"
  done
done
node - "$results" "$ROUNDS" <<'JS'
const rows = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const median = a => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1;
                      return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pick = (d, e, k) => median(rows.filter(r => r.dtype === d && r.engine === e).map(r => r[k]));
const l = rows.find(r => r.engine === "llama.cpp");
console.log(`tokens/s, medians of ${process.argv[3]} alternated rounds; llama.cpp ${l.build} ` +
            `(llama-bench: mean of 3 repetitions; llama-batched-bench: one run), CPU ${l.cpu}`);
console.log("| | prefill 512: autoglm | llama.cpp | ratio | decode 128: autoglm | llama.cpp | ratio " +
            "| 16 sequences: autoglm | llama.cpp | ratio |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
const cell = k => (d => { const a = pick(d, "autoglm", k), b = pick(d, "llama.cpp", k);
                          return [a.toFixed(1), b.toFixed(1), (a / b).toFixed(2) + "x"]; });
for (const d of [...new Set(rows.map(r => r.dtype))]) {
  const cells = [...cell("prefill")(d), ...cell("decode")(d), ...cell("batch")(d)];
  console.log(`| ${d} | ${cells.join(" | ")} |`);
}
console.log("\ndecode GB/s (bytes per token x tokens/s) and autoglm's read-bandwidth probe, same rounds:");
console.log("| | GB per token | autoglm GB/s | llama.cpp GB/s | probe median GB/s |");
console.log("|---|---|---|---|---|");
for (const d of [...new Set(rows.map(r => r.dtype))]) {
  const gb = pick(d, "autoglm", "bytes_per_token") / 1e9;
  console.log(`| ${d} | ${gb.toFixed(3)} | ${(gb * pick(d, "autoglm", "decode")).toFixed(1)} | ` +
              `${(gb * pick(d, "llama.cpp", "decode")).toFixed(1)} | ` +
              `${pick(d, "autoglm", "bandwidth").toFixed(1)} |`);
}
JS
