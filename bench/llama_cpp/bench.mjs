// llama.cpp's speed on a GGUF file, measured the way `autoglm bench` measures ours, so that both
// engines run the same weights on the same host in one script (bench/llama_cpp_compare.sh).
// llama.cpp comes as the prebuilt libraries of the npm package node-llama-cpp (its CPU backend
// picks the variant for this CPU at load, e.g. zen4 or sapphirerapids).
//   node bench.mjs --model M.gguf [--threads 2] [--prompt-tokens 512] [--decode-tokens 128]
//                  [--repeats 3] [--batch 16] [--context 0]
// Prompt tokens are ids (1000 + 7919 i) mod vocabulary, as autoglm's bench uses. The file needs a
// vocabulary: `autoglm synth --byte-vocab` writes one.
import {readFileSync} from "node:fs";
import {parseArgs} from "node:util";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const {values: opt} = parseArgs({
  options: {
    model: {type: "string"},
    threads: {type: "string", default: "2"},
    "prompt-tokens": {type: "string", default: "512"},
    "decode-tokens": {type: "string", default: "128"},
    repeats: {type: "string", default: "3"},
    batch: {type: "string", default: "16"},
    context: {type: "string", default: "0"},
  },
});
if (!opt.model) {
  console.error("usage: node bench.mjs --model FILE.gguf [--threads N] [--prompt-tokens N] " +
                "[--decode-tokens N] [--repeats N] [--batch N] [--context N]");
  process.exit(2);
}
const threads = Number(opt.threads), promptN = Number(opt["prompt-tokens"]);
const decodeN = Number(opt["decode-tokens"]), repeats = Number(opt.repeats);
const batch = Number(opt.batch), context = Number(opt.context);

let cpuVariant = "unknown";
let perfLines = [];  // llama.cpp's own counters, printed by printTimings()
const llama = await getLlama({
  gpu: false, build: "never", logLevel: LlamaLogLevel.debug,
  logger: (level, message) => {
    const m = /loaded CPU backend from .*libggml-cpu-(\w+)\.so/.exec(message);
    if (m) cpuVariant = m[1];
    if (/llama_perf_context_print/.test(message)) perfLines.push(message);
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal || process.env.LLAMA_DEBUG) console.error(message);
  },
});
const model = await llama.loadModel({modelPath: opt.model});
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const ids = n => Array.from({length: n}, (_, i) => (1000 + 7919 * i) % vocab);
const packageVersion = name =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
const median = a => [...a].sort((x, y) => x - y)[a.length >> 1];
const now = () => performance.now() / 1000;

// Greedy tokens after `prompt` until `count` have come; returns the seconds after the first one.
async function decode(sequence, prompt, count) {
  let n = 0, t0 = 0;
  for await (const _ of sequence.evaluate(prompt, {temperature: 0})) {
    if (++n === 1) t0 = now();
    if (n >= count) break;
  }
  return now() - t0;
}

// n_ctx 2048 at least: with n_ctx equal to the prompt (512), its prefill ran at half the rate.
const single = await model.createContext({
  contextSize: Math.max(2048, promptN + 2, context + decodeN + 2, batch),
  batchSize: Math.max(promptN, batch),
  threads, sequences: 1,
});
const seq = single.getSequence();
const prompt = ids(promptN);
const prefill = [], decodeTps = [], stepTps = [];
for (let r = 0; r <= repeats; ++r) {  // round 0 warms up (pages, repacking)
  await seq.clearHistory();
  const t0 = now();
  await seq.evaluateWithoutGeneratingNewTokens(prompt);
  const seconds = now() - t0;
  await seq.clearHistory();
  // Decode after context + 1 prompt tokens, as autoglm's bench does (--context): decodeN tokens
  // timed after the first.
  const decodeSeconds = await decode(seq, ids(context + 1), decodeN + 1);
  // A prompt of `batch` tokens: one forward over as many tokens as a batched step has, but with
  // the output layer for the last token only and one sequence's attention, so its rate is more
  // than a batched step of llama.cpp's own can reach (an upper bound, measured without the
  // bindings' batching between sequences).
  let stepSeconds = 0;
  if (batch > 0) {
    await seq.clearHistory();
    const t1 = now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, batch));
    stepSeconds = now() - t1;
  }
  if (r > 0) {
    prefill.push(promptN / seconds);
    decodeTps.push(decodeN / decodeSeconds);
    if (batch > 0) stepTps.push(batch / stepSeconds);
  }
}
await single.dispose();

// `batch` sequences decoding together, one token each per step (node-llama-cpp puts the tokens
// that the sequences ask for in the same tick into one llama_decode); steps = decodeN / 4, at
// least 4, each sequence from a one-token prompt, as in autoglm's bench. Timed two ways: around the
// bindings (their work between steps included), and by llama.cpp's own counters, which count
// the time inside llama_decode: every call here carries `batch` tokens, which llama.cpp counts as
// prompt evaluation ("prompt eval time = T ms / N tokens"; one total over all the runs).
const batched = [];
let batchedInside = null;
if (batch > 0) {
  const steps = Math.max(4, Math.floor(decodeN / 4));
  const ctx = await model.createContext({
    contextSize: Math.max(2048, batch * (steps + 2)), batchSize: Math.max(batch, 32), threads,
    sequences: batch, performanceTracking: true,
  });
  const sequences = Array.from({length: batch}, () => ctx.getSequence());
  for (let r = 0; r <= repeats; ++r) {
    await Promise.all(sequences.map(s => s.clearHistory()));
    const seconds = await Promise.all(sequences.map((s, i) => decode(s, ids(i + 1).slice(i), steps + 1)));
    if (r > 0) batched.push(batch * steps / Math.max(...seconds));
  }
  perfLines = [];
  await ctx.printTimings();
  const m = perfLines.map(l => /prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/.exec(l)).find(Boolean);
  if (m) batchedInside = Number(m[2]) / (Number(m[1]) / 1000);
  await ctx.dispose();
}

const result = {
  engine: "llama.cpp (node-llama-cpp " + packageVersion("node-llama-cpp") + ")",
  cpu_variant: cpuVariant, model: opt.model, threads,
  prefill: {tokens: promptN, median_tokens_per_s: median(prefill), runs: prefill},
  decode: {tokens: decodeN, context, median_tokens_per_s: median(decodeTps), runs: decodeTps},
  batch: batch > 0 ? {sequences: batch, median_tokens_per_s: median(batched), runs: batched,
                      inside_llama_decode_tokens_per_s: batchedInside} : null,
  prompt_of_batch_tokens: batch > 0 ? {tokens: batch, median_tokens_per_s: median(stepTps), runs: stepTps} : null,
};
console.log(JSON.stringify(result));
