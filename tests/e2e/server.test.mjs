// End-to-end: the real `autoglm serve` binary on the glm-tiny fixture (random weights: we compare
// behaviour, not text quality), driven by the official `openai` SDK.
// Env: AUTOGLM_BIN (default ../../build/autoglm), AUTOGLM_FIXTURES (default ../../../shared/fixtures).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServer as startServe, stopServer } from './serve.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.AUTOGLM_BIN || path.join(here, '../../build/autoglm');
const FIXTURES = process.env.AUTOGLM_FIXTURES || path.join(here, '../../../shared/fixtures');
const MODEL_FILE = path.join(FIXTURES, 'gguf/glm-tiny-q8_0.gguf');
const KEY = 'e2e-secret-key';

// Starts the server on a free port; resolves once /ready answers.
function startServer(extraArgs = []) {
  return startServe(BIN, ['--model', MODEL_FILE, '--port', '0', '--ctx', '512', '--threads', '2',
    ...extraArgs], { env: { ...process.env, AUTOGLM_API_KEY: KEY }, key: KEY, tries: 600 });
}

let server;
let client;
let model;
before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  model = (await client.models.list()).data[0].id;
});
after(async () => { if (server) assert.equal(await stopServer(server), 0); });

const messages = [{ role: 'user', content: 'Tell me about the weather in Paris.' }];

async function chatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish };
}

test('models lists the served model with its dtype choice', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].owned_by, 'autoglm');
  assert.ok(list.data[0].autoglm.dtype_reason.length > 0);
  assert.equal(list.data[0].max_model_len, 512);
});

test('chat: stream chunks concatenate to the non-stream answer at temperature 0', async () => {
  const params = { model, messages, temperature: 0, max_tokens: 16 };
  const full = await client.chat.completions.create(params);
  assert.equal(full.object, 'chat.completion');
  assert.equal(full.choices[0].message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(full.choices[0].finish_reason));
  assert.ok(full.usage.prompt_tokens > 0);
  assert.ok(full.usage.completion_tokens > 0 && full.usage.completion_tokens <= 16);
  assert.equal(full.usage.total_tokens, full.usage.prompt_tokens + full.usage.completion_tokens);
  const streamed = await chatStream(params);
  assert.equal(streamed.text, full.choices[0].message.content);
  assert.equal(streamed.finish, full.choices[0].finish_reason);
});

test('completions: stream equals non-stream; usage on request', async () => {
  const params = { model, prompt: 'Once upon a time', temperature: 0, max_tokens: 12 };
  const full = await client.completions.create(params);
  assert.equal(full.object, 'text_completion');
  const stream = await client.completions.create({ ...params, stream: true,
    stream_options: { include_usage: true } });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) text += c.text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, full.choices[0].text);
  assert.deepEqual(usage, full.usage);
});

test('tools: the request is rendered and the reply has the OpenAI shape', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const r = await client.chat.completions.create({ model, messages, tools, temperature: 0,
    max_tokens: 16 });
  const choice = r.choices[0];
  assert.ok(['stop', 'length', 'tool_calls'].includes(choice.finish_reason));
  if (choice.finish_reason === 'tool_calls') assert.ok(choice.message.tool_calls.length > 0);
  // Tools make the prompt longer than without them.
  const plain = await client.chat.completions.create({ model, messages, max_tokens: 1 });
  assert.ok(r.usage.prompt_tokens > plain.usage.prompt_tokens);
});

test('errors: bad JSON, unknown model, too many tokens, missing key', async () => {
  const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: '{"messages": [' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /not valid JSON.*line 1/);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages }),
    (e) => e.status === 404 && /gpt-9/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model, messages, max_tokens: 100000 }),
    (e) => e.status === 400 && e.param === 'max_tokens' && /512/.test(e.message));
  const anon = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(anon.models.list(), (e) => e.status === 401);
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
});

test('16 concurrent streams each equal their single-request answer; steps batch', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => [{ role: 'user', content: `Question ${i}: why ${'?'.repeat(i)}` }]);
  const single = [];
  for (const m of prompts) {
    const r = await client.chat.completions.create({ model, messages: m, temperature: 0, max_tokens: 24 });
    single.push(r.choices[0].message.content);
  }
  const metric = async (name) => {
    const text = await (await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })).text();
    return Number(text.match(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm'))[1]);
  };
  const steps0 = await metric('autoglm_engine_steps_total');
  const seqs0 = await metric('autoglm_engine_batched_sequences_total');
  const streamed = await Promise.all(prompts.map((m) => chatStream({ model, messages: m, temperature: 0, max_tokens: 24 })));
  streamed.forEach((s, i) => assert.equal(s.text, single[i], `stream ${i}`));
  const steps = (await metric('autoglm_engine_steps_total')) - steps0;
  const seqs = (await metric('autoglm_engine_batched_sequences_total')) - seqs0;
  assert.ok(seqs / steps > 2, `mean batch ${seqs / steps} over ${steps} steps`);
  assert.ok((await metric('autoglm_engine_max_batch_seen')) > 1);
});

test('overload: beyond --max-queue + --max-batch gets 429 quickly, the rest complete, memory settles', async () => {
  const small = await startServer(['--max-batch', '2', '--max-queue', '2']);
  try {
    const c = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const gauge = async (name) => {
      const text = await (await fetch(`${small.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
      const line = text.split('\n').find((l) => l.startsWith(name));
      return Number(line.split(' ').pop());
    };
    const rss = [];
    for (let round = 0; round < 3; round++) {
      const t0 = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 40 }, () =>
        c.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0 })
          .then((r) => ({ ok: true, r }), (e) => { e.at = Date.now() - t0; throw e; })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      // The queue bound plus the free batch slots are accepted at once; the rest is refused.
      assert.ok(ok.length >= 4, `${ok.length} completed`);
      assert.equal(ok.length + refused.length, 40);
      assert.ok(refused.length > 0, 'no request was refused');
      for (const r of refused) {
        assert.equal(r.reason.status, 429);
        assert.ok(r.reason.at < 2000, `429 after ${r.reason.at} ms`);
      }
      assert.equal((await fetch(`${small.url}/health`)).status, 200);
      assert.equal(await gauge('autoglm_kv_cache_blocks_used'), 0);
      rss.push(await gauge('process_resident_memory_bytes'));
    }
    // Memory settles: a third round of the same overload does not grow the process past the first.
    assert.ok(rss[2] <= rss[0] * 1.1 + 1e6, `resident memory grew: ${rss.join(' -> ')}`);
  } finally {
    assert.equal(await stopServer(small), 0);
  }
});

test('--step-tokens: a prompt prefilled 4 tokens a step gives the same answer', async () => {
  const params = { model, messages, temperature: 0, max_tokens: 12 };
  const expected = await client.chat.completions.create(params);
  const chunked = await startServer(['--step-tokens', '4']);
  try {
    const c = new OpenAI({ baseURL: `${chunked.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const got = await c.chat.completions.create(params);
    assert.equal(got.choices[0].message.content, expected.choices[0].message.content);
    const text = await (await fetch(`${chunked.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    const steps = Number(text.split('\n').find((l) => l.startsWith('autoglm_engine_steps_total')).split(' ').pop());
    // ceil(prompt / 4) prefill steps, then one per token after the first (in one step, the
    // default budget would take completion_tokens steps).
    const { prompt_tokens: prompt, completion_tokens: completion } = got.usage;
    assert.ok(prompt > 8);
    assert.equal(steps, Math.ceil(prompt / 4) + completion - 1, `${steps} steps, ${prompt}-token prompt`);
  } finally {
    assert.equal(await stopServer(chunked), 0);
  }
});

test('port in use: the message names the holder and the flag', async () => {
  const port = new URL(server.url).port;
  const proc = spawn(BIN, ['serve', '--model', MODEL_FILE, '--port', port]);
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => proc.on('exit', resolve));
  assert.equal(code, 1);
  assert.match(err, new RegExp(`port ${port}.*in use by pid ${server.proc.pid}`));
  assert.match(err, /--port/);
});
