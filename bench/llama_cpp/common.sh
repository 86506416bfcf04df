# Shared by bench/llama_cpp_compare.sh and bench/llama_cpp_tools.sh (sourced; they set BIN, OUT,
# THREADS, CONFIG and shape first).

# The npm package node-llama-cpp in bench/llama_cpp: its prebuilt libraries (llama_cpp_compare.sh)
# and the llama.cpp source it ships (llama_cpp_tools.sh). --ignore-scripts: no build of llama.cpp
# from source at install; --omit=optional: no CUDA or Vulkan variants (hundreds of MB). `npm
# install`, not `npm ci`: the lock file has the versions, but not the other platforms' optional
# packages, which npm ci refuses to go without.
install_node_llama_cpp() {
  if [ ! -d bench/llama_cpp/node_modules/node-llama-cpp ]; then
    (cd bench/llama_cpp && npm install --ignore-scripts --omit=optional --no-audit --no-fund)
  fi
}

# The benchmark-shaped model in each type given, with a placeholder byte vocabulary (llama.cpp
# loads no GGUF without one): $OUT/$shape-TYPE-vocab.gguf, written once.
synth_vocab_models() {
  mkdir -p "$OUT"
  local d model
  for d in "$@"; do
    model="$OUT/$shape-$d-vocab.gguf"
    [ -f "$model" ] || "$BIN" --log-level warn synth --byte-vocab \
      --config "$CONFIG" --dtype "$d" --out "$model"
  done
  sync
}

# autoglm's prefill 512, decode 128 and 16-sequence figures for one file, as one JSON line.
#   autoglm_row DTYPE MODEL
autoglm_row() {
  "$BIN" --log-level warn bench --model "$2" --threads "$THREADS" --prompt-tokens 512 \
    --decode-tokens 128 --repeats 3 --batch 16 --json |
    node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
      console.log(JSON.stringify({dtype: process.argv[1], engine: "autoglm",
        prefill: j.prefill.median_tokens_per_s, decode: j.decode.median_tokens_per_s,
        batch: j.batched_decode.median_tokens_per_s, bandwidth: j.read_bandwidth_gbps.median,
        bytes_per_token: j.decode.bytes_per_token}))' "$1"
}
