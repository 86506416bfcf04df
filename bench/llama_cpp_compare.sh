#!/usr/bin/env bash
# autoglm against llama.cpp on the same host and the same weights: the benchmark-shaped synthetic
# model (bench/configs/glm4-edge-shape.json, 1.94B parameters) in each weight type, written with a
# placeholder byte vocabulary (`synth --byte-vocab`: llama.cpp loads no GGUF without one), then
# each engine's prefill (512 tokens), decode (128 tokens) and 16-sequence batched decode, the two
# engines alternated ROUNDS times per type so that both see the host's same moods. llama.cpp comes
# as the prebuilt CPU libraries of the npm package node-llama-cpp (bench/llama_cpp/package.json,
# installed here on first use; its CPU backend picks the variant for this CPU, e.g. zen4).
# Run it on an otherwise idle machine: about an hour for the 4 types and 2 rounds on the Zen 4
# benchmark host (f16 and bf16 the slowest, about 10 minutes a round each).
#   bench/llama_cpp_compare.sh [DTYPES...]     (default: q4_0 q8_0 f16 bf16)
# Environment: THREADS (2), ROUNDS (2), BENCH_DIR (/tmp/autoglm-bench), AUTOGLM_BIN, CONFIG (the
# HF config.json to imitate: bench/configs/glm4-edge-shape.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOGLM_BIN:-build/autoglm}
OUT=${BENCH_DIR:-/tmp/autoglm-bench}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
CONFIG=${CONFIG:-bench/configs/glm4-edge-shape.json}
shape=$(basename "$CONFIG" .json)
dtypes=("$@")
[ ${#dtypes[@]} -gt 0 ] || dtypes=(q4_0 q8_0 f16 bf16)
command -v node >/dev/null || { echo "llama_cpp_compare: needs Node.js 20+ (apt-get install nodejs npm)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "llama_cpp_compare: no $BIN; build first (README)" >&2; exit 1; }
# shellcheck source=bench/llama_cpp/common.sh
source bench/llama_cpp/common.sh
install_node_llama_cpp
synth_vocab_models "${dtypes[@]}"
results="$OUT/llama_cpp_compare.jsonl"
: >"$results"
for round in $(seq "$ROUNDS"); do
  for d in "${dtypes[@]}"; do
    model="$OUT/$shape-$d-vocab.gguf"
    echo "== round $round, $d: autoglm, then llama.cpp" >&2
    autoglm_row "$d" "$model" >>"$results"
    node bench/llama_cpp/bench.mjs --model "$model" --threads "$THREADS" --prompt-tokens 512 \
      --decode-tokens 128 --repeats 3 --batch 16 |
      node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(JSON.stringify({dtype: process.argv[1], engine: "llama.cpp",
          variant: j.cpu_variant, prefill: j.prefill.median_tokens_per_s,
          decode: j.decode.median_tokens_per_s, batch: j.batch.inside_llama_decode_tokens_per_s,
          batch_bindings: j.batch.median_tokens_per_s,
          step: j.prompt_of_batch_tokens.median_tokens_per_s}))' "$d" \
        >>"$results"
  done
done
# A long context for the first type: a 2048-token prompt, then decode after 2048 cached tokens
# (attention reads the KV cache as well as the weights).
d=${dtypes[0]}
model="$OUT/$shape-$d-vocab.gguf"
echo "== $d: 2048-token prompt, decode after 2048 cached tokens; autoglm, then llama.cpp" >&2
long_autoglm=$("$BIN" --log-level warn bench --model "$model" --threads "$THREADS" \
  --prompt-tokens 2048 --decode-tokens 32 --context 2048 --repeats 3 --batch 0 --json)
long_llama=$(node bench/llama_cpp/bench.mjs --model "$model" --threads "$THREADS" \
  --prompt-tokens 2048 --decode-tokens 32 --context 2048 --repeats 3 --batch 0)
# One row per type: each engine's median over the rounds, and autoglm's ratio to llama.cpp.
node - "$results" "$d" "$long_autoglm" "$long_llama" <<'JS'
const rows = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const median = a => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1;
                      return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pick = (d, e, k) => median(rows.filter(r => r.dtype === d && r.engine === e).map(r => r[k]));
const variant = rows.find(r => r.engine === "llama.cpp")?.variant;
console.log(`tokens/s, medians of ${process.env.ROUNDS ?? 2} alternated rounds (each the median of 3 runs); ` +
            `llama.cpp's CPU variant: ${variant}`);
console.log("llama.cpp's 16 sequences: the time inside llama_decode by its own counters (the " +
            "bindings' work between steps left out); its 16-token prompt: one sequence, one output row.");
console.log("| | prefill 512: autoglm | llama.cpp | ratio | decode 128: autoglm | llama.cpp | ratio " +
            "| 16 sequences: autoglm | llama.cpp | ratio | llama.cpp 16-token prompt | ratio |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
const cell = (a, l) => [a.toFixed(1), l.toFixed(1), (a / l).toFixed(2) + "x"];
for (const d of [...new Set(rows.map(r => r.dtype))]) {
  const a = k => pick(d, "autoglm", k), l = k => pick(d, "llama.cpp", k);
  const cells = [...cell(a("prefill"), l("prefill")), ...cell(a("decode"), l("decode")),
                 ...cell(a("batch"), l("batch")), l("step").toFixed(1),
                 (a("batch") / l("step")).toFixed(2) + "x"];
  console.log(`| ${d} | ${cells.join(" | ")} |`);
}
// Decode is memory-bound: both engines' GB/s from the bytes a token reads (autoglm's count, the
// same file for both), beside the read bandwidth autoglm's bench probed in the same rounds.
console.log("\ndecode GB/s (bytes per token x tokens/s) and the read bandwidth probed beside it:");
console.log("| | GB per token | autoglm GB/s | llama.cpp GB/s | probe median GB/s |");
console.log("|---|---|---|---|---|");
for (const d of [...new Set(rows.map(r => r.dtype))]) {
  const gb = pick(d, "autoglm", "bytes_per_token") / 1e9;
  console.log(`| ${d} | ${gb.toFixed(3)} | ${(gb * pick(d, "autoglm", "decode")).toFixed(1)} | ` +
              `${(gb * pick(d, "llama.cpp", "decode")).toFixed(1)} | ${pick(d, "autoglm", "bandwidth").toFixed(1)} |`);
}
const [longType, longA, longL] = [process.argv[3], JSON.parse(process.argv[4]), JSON.parse(process.argv[5])];
const ratio = (a, l) => `${a.toFixed(1)} against ${l.toFixed(1)} (${(a / l).toFixed(2)}x)`;
console.log(`${longType}, autoglm against llama.cpp (medians of 3 runs): 2048-token prefill ` +
            ratio(longA.prefill.median_tokens_per_s, longL.prefill.median_tokens_per_s) +
            " tokens/s; decode after 2048 cached tokens " +
            ratio(longA.decode.median_tokens_per_s, longL.decode.median_tokens_per_s) + " tokens/s");
JS
