#!/usr/bin/env bash
# Reproduces the CPU figures of docs/performance.md in one command: writes the benchmark-shaped
# synthetic model (GLM-Edge-1.5B width and depth with GLM-4's vocabulary, 1.94B parameters) in each
# weight type, then measures prefill (512 tokens) and decode (128 tokens) with 2 threads, with the
# machine's read bandwidth measured in the same run; bf16 once more with --activations f32 and f16
# once more with --bf16-activations.
# Run it on an otherwise idle machine.
#   bench/cpu_roofline.sh [DTYPES...]     (default: q4_0 q8_0 bf16 f16)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOGLM_BIN:-build/autoglm}
OUT=${BENCH_DIR:-/tmp/autoglm-bench}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
dtypes=("$@")
[ ${#dtypes[@]} -gt 0 ] || dtypes=(q4_0 q8_0 bf16 f16)
for d in "${dtypes[@]}"; do
  model="$OUT/glm4-edge-shape-$d.gguf"
  [ -f "$model" ] || "$BIN" synth --config bench/configs/glm4-edge-shape.json --dtype "$d" --out "$model"
done
sync
for d in "${dtypes[@]}"; do
  echo "== $d"
  "$BIN" --log-level warn bench --model "$OUT/glm4-edge-shape-$d.gguf" --threads "$THREADS" \
    --prompt-tokens 512 --decode-tokens 128 --repeats 3
done
# By default bf16 weights multiply activations rounded to bf16 (vdpbf16ps on AVX-512 BF16 CPUs);
# --activations f32 keeps their matmuls in f32. --bf16-activations rounds f16 weights and their
# activations to bf16 as well, in matmuls of 4 tokens or more: prefill and batches.
for d in "${dtypes[@]}"; do
  case $d in
    bf16) flag=(--activations f32) ;;
    f16) flag=(--bf16-activations) ;;
    *) continue ;;
  esac
  echo "== $d ${flag[*]}"
  "$BIN" --log-level warn bench --model "$OUT/glm4-edge-shape-$d.gguf" --threads "$THREADS" \
    --prompt-tokens 512 --decode-tokens 32 --repeats 3 "${flag[@]}"
done
# Decode at a long context reads the KV cache as well as the weights (attention), and a 2048-token
# prompt's prefill is dominated less by the matmuls: both for the first type.
d=${dtypes[0]}
echo "== $d, 2048-token prompt, decode after 2048 cached tokens"
"$BIN" --log-level warn bench --model "$OUT/glm4-edge-shape-$d.gguf" --threads "$THREADS" \
  --prompt-tokens 2048 --decode-tokens 32 --context 2048 --repeats 1 --batch 0
