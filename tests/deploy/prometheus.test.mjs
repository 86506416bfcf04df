// A real Prometheus (Debian `prometheus`) scrapes a real `autoglm serve` (stories260K fixture) with
// the shipped scrape config and API key, and its query API returns our metrics; the alert rules,
// the adapter's query and every dashboard query run against that data. Both processes run under
// `timeout` (lib.mjs) and are stopped in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BIN, DEPLOY, FIXTURES, freePort, poll, read, run, startProcess, stopProcess, tmpDir, yamlDocs } from './lib.mjs';

const KEY = 'deploy-test-key';
const dir = tmpDir('prom');
let server;
let prom;
let promUrl;

async function query(expr) {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await r.json();
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

before(async () => {
  const model = path.join(FIXTURES, 'stories260K/stories260K.gguf');
  server = await startProcess(BIN, ['serve', '--model', model, '--port', '0', '--threads', '1', '--ctx', '256'],
    (out) => out.match(/listening on http:\/\/([0-9.]+:\d+)/)?.[1],
    { env: { ...process.env, AUTOGLM_API_KEY: KEY } });
  // One completion so the counters and histograms have samples.
  const r = await fetch(`http://${server.value}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4 }) });
  assert.equal(r.status, 200);

  // The shipped config, with the test's port, key file and a 1 s interval; namespace/pod labels as
  // the Prometheus Operator would add them, for the adapter query.
  const cfg = YAML.parse(read('deploy/prometheus/prometheus.yml'));
  const keyFile = path.join(dir, 'api-key');
  fs.writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
  cfg.global.scrape_interval = '1s';
  cfg.global.evaluation_interval = '1s';
  cfg.rule_files = [path.join(DEPLOY, 'prometheus/alerts.yaml')];
  const job = cfg.scrape_configs[0];
  job.authorization.credentials_file = keyFile;
  job.static_configs = [{ targets: [server.value], labels: { namespace: 'autoglm', pod: 'autoglm-0' } }];
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(cfg));
  const check = run('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]);
  assert.equal(check.status, 0, check.stdout + check.stderr);

  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = await startProcess('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'], null);
  await poll(async () => (await query('up{job="autoglm"}'))[0]?.value[1] === '1', 'the first scrape');
});

after(async () => {
  await stopProcess(prom);
  await stopProcess(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('alert rules load (promtool check rules) and pass their unit tests (promtool test rules)', () => {
  const c = run('promtool', ['check', 'rules', path.join(DEPLOY, 'prometheus/alerts.yaml')]);
  assert.equal(c.status, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /SUCCESS: 7 rules found/);
  const t = run('promtool', ['test', 'rules', 'alerts_test.yaml']);
  assert.equal(t.status, 0, t.stdout + t.stderr);
});

test('Prometheus query API returns the server metrics, scraped with the API key', async () => {
  const names = ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:prompt_tokens_total',
    'vllm:generation_tokens_total', 'vllm:gpu_cache_usage_perc', 'autoglm_kv_cache_blocks_total',
    'process_resident_memory_bytes', 'autoglm_malloc_in_use_bytes', 'autoglm_ready'];
  for (const n of names) {
    const res = await query(n);
    assert.equal(res.length, 1, `${n}: ${JSON.stringify(res)}`);
  }
  assert.equal((await query('vllm:generation_tokens_total'))[0].value[1], '4');
  assert.equal((await query('vllm:e2e_request_latency_seconds_count'))[0].value[1], '1');
  const rules = await (await fetch(`${promUrl}/api/v1/rules`)).json();
  assert.equal(rules.data.groups[0].rules.length, 7);
  assert.ok(rules.data.groups[0].rules.every((r) => r.health !== 'err'), JSON.stringify(rules.data.groups[0].rules.map((r) => r.lastError)));
});

test('the adapter rule finds the series and its query gives one value per pod', async () => {
  const rule = yamlDocs(read('deploy/prometheus/adapter-rules.yaml'))[0].rules.custom[0];
  const series = await (await fetch(`${promUrl}/api/v1/series?match[]=${encodeURIComponent(rule.seriesQuery)}`)).json();
  assert.equal(series.data.length, 1);
  assert.ok(new RegExp(rule.name.matches).test(series.data[0].__name__));
  // As prometheus-adapter expands it for `kubectl get --raw .../pods/*/autoglm_requests_waiting`.
  const expr = rule.metricsQuery.replace('<<.Series>>', series.data[0].__name__)
    .replace('<<.LabelMatchers>>', 'namespace="autoglm",pod=~"autoglm-0"').replace('<<.GroupBy>>', 'pod');
  const res = await query(expr);
  assert.deepEqual(res.map((r) => [r.metric.pod, r.value[1]]), [['autoglm-0', '0']]);
});

test('every Grafana panel query runs and names only metrics the server exports', async () => {
  const dash = JSON.parse(read('deploy/grafana/autoglm.json'));
  const exported = new Set((await query('{job="autoglm"}')).map((r) => r.metric.__name__));
  let n = 0;
  for (const panel of dash.panels) {
    for (const t of panel.targets) {
      const expr = t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
      await query(expr); // throws on a parse error
      for (const m of expr.matchAll(/\b([a-z_:][a-z0-9_:]*)(?=\{)/g)) {
        const base = m[1].replace(/_bucket$/, '');
        assert.ok(exported.has(m[1]) || exported.has(`${base}_bucket`) || m[1] === 'up', `${panel.title}: ${m[1]} is not exported`);
      }
      n += 1;
    }
  }
  assert.ok(n >= 15, `${n} queries`);
});
