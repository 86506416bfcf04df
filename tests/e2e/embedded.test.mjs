// End-to-end: `autoglm serve` with no --model serves the embedded model (models/autoglm-mini, a
// small GLM-4 the project trained itself: tools/train_embedded.py) and answers a chat request with
// readable text, driven by the official `openai` SDK. Unlike server.test.mjs (random weights) this
// checks the text: enough words, the same answer twice at temperature 0, different answers for
// different prompts, and an answer that ends on its own (a stop token, not max_tokens); and
// `autoglm bench --url` against it.
// Env: AUTOGLM_BIN (default ../../build/autoglm). AUTOGLM_MODEL is removed so the default is used.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServer, stopServer } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.AUTOGLM_BIN || path.join(here, '../../build/autoglm');

let server;
let client;

before(async () => {
  const env = { ...process.env };
  delete env.AUTOGLM_MODEL;
  delete env.AUTOGLM_API_KEY;
  server = await startServer(BIN, ['--port', '0', '--threads', '2'], { env });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
});

after(async () => {
  if (!server || server.proc.exitCode !== null) return;
  assert.equal(await stopServer(server), 0);
});

// Greedy with a frequency_penalty: a 7.9M-parameter model left to plain greedy decoding
// falls into loops ("of the LORD of the LORD ..."); the penalty keeps the answer deterministic.
async function ask(content, maxTokens = 160) {
  const r = await client.chat.completions.create({
    model: 'autoglm-mini', messages: [{ role: 'user', content }], temperature: 0,
    frequency_penalty: 0.5, max_tokens: maxTokens,
  });
  return r.choices[0];
}

const words = (text) => text.split(/\s+/).filter((w) => /[A-Za-z]/.test(w));

test('with no --model, serve loads the embedded model and says where it found it', async (t) => {
  t.diagnostic(`start-up to /ready: ${server.startupMs} ms`);
  assert.match(server.stderr(), /the embedded model, found /);
  assert.match(server.stderr(), /chat format glm4-0414/);
  const list = await client.models.list();
  assert.equal(list.data[0].id, 'autoglm-mini');
  assert.equal(list.data[0].autoglm.architecture, 'glm4');
});

test('a chat question gets a readable answer of 20+ words that ends on a stop token', async (t) => {
  const c = await ask('What does the Bible say about love?');
  t.diagnostic(JSON.stringify(c.message.content));
  const w = words(c.message.content);
  assert.ok(w.length >= 20, `only ${w.length} words: ${c.message.content}`);
  // Mostly dictionary-looking words, not byte soup: letters only, apostrophes, punctuation.
  const clean = w.filter((x) => /^[A-Za-z'’]+[.,;:!?)"]*$/.test(x.replace(/^[("]/, '')));
  assert.ok(clean.length >= 0.8 * w.length, `garbled: ${c.message.content}`);
  assert.equal(c.finish_reason, 'stop', `no stop token within 160 tokens: ${c.message.content}`);
  assert.ok(!c.message.content.includes('<|'), 'a special token leaked into the text');
});

test('temperature 0 is deterministic; different prompts get different answers', async (t) => {
  const a1 = (await ask('Tell me a fortune about work.')).message.content;
  const a2 = (await ask('Tell me a fortune about work.')).message.content;
  assert.equal(a1, a2);
  const b = (await ask('Quote John 3:16.')).message.content;
  const zh = (await ask('写一首唐诗。')).message.content;
  t.diagnostic(JSON.stringify({ work: a1, john: b, tang: zh }));
  assert.notEqual(a1, b);
  assert.notEqual(b, zh);
  assert.ok(words(b).length >= 10, b);
  // The Chinese request gets Chinese text.
  const han = [...zh].filter((ch) => /\p{Script=Han}/u.test(ch)).length;
  assert.ok(han >= 10, `expected Chinese characters: ${zh}`);
});

// `autoglm bench --url` (the online load generator) against this running server: every request
// of every level succeeds, and the counts add up (ignore_eos: exactly --max-tokens each).
test('bench --url loads the running server: counts add up, no errors', async (t) => {
  const args = ['bench', '--url', server.url, '--model', 'autoglm-mini', '--concurrency', '1,4',
    '--requests', '8', '--prompt-tokens', '16', '--max-tokens', '16', '--json'];
  const { code, stdout, stderr } = await new Promise((resolve) => {
    const proc = spawn(BIN, args);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout);
  assert.equal(report.url, `${server.url}/v1/chat/completions`);
  assert.deepEqual(report.levels.map((l) => l.concurrency), [1, 4]);
  for (const l of report.levels) {
    t.diagnostic(`${l.concurrency} streams: ${l.output_tokens_per_s.toFixed(0)} tokens/s, ` +
      `TTFT p50 ${l.ttft_ms.p50.toFixed(1)} ms`);
    assert.equal(l.requests, 8);
    assert.equal(l.ok, 8, JSON.stringify(l.errors));
    assert.deepEqual(l.errors, {});
    assert.equal(l.output_tokens, 8 * 16);
    assert.equal(l.ttft_ms.count, 8);
    assert.ok(l.ttft_ms.p50 > 0 && l.ttft_ms.p50 <= l.ttft_ms.p99);
    assert.ok(l.output_tokens_per_s > 0);
  }
});
