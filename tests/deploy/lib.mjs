// Shared helpers for the deploy/ validation tests: repository paths, kustomize rendering, and
// child processes that always stop by themselves (each runs under coreutils `timeout`).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const DEPLOY = path.join(ROOT, 'deploy');
export const BIN = process.env.AUTOGLM_BIN || path.join(ROOT, 'build/autoglm');
export const FIXTURES = process.env.AUTOGLM_FIXTURES || path.join(ROOT, '../shared/fixtures');
// Longest life of any process a test starts: far above the ~10 s the tests need.
export const PROCESS_LIMIT_S = 90;

export function read(rel) { return fs.readFileSync(path.join(ROOT, rel), 'utf8'); }
export function yamlDocs(text) { return YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean); }
export function tmpDir(prefix) { return fs.mkdtempSync(path.join(os.tmpdir(), `autoglm-${prefix}-`)); }

// Runs a command to completion; returns {status, stdout, stderr}.
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (installed? scripts/setup.sh installs it)`);
  return r;
}

// `kubectl kustomize DIR` (kustomize v5 built into kubectl; offline). Returns the parsed documents.
// Components and `labels` need kustomize >= 4.1: Debian's kubernetes-client 1.20 has 2.0.3.
let kustomizeChecked = false;
export function kustomize(dir) {
  if (!kustomizeChecked) {
    const v = run('kubectl', ['version', '--client']).stdout.match(/Kustomize Version: v(\d+)\.(\d+)/);
    if (!v || Number(v[1]) < 4 || (Number(v[1]) === 4 && Number(v[2]) < 1)) {
      throw new Error(`kubectl's kustomize is ${v ? v[0] : 'missing'}; need >= v4.1 (scripts/setup.sh installs kubectl)`);
    }
    kustomizeChecked = true;
  }
  const r = run('kubectl', ['kustomize', dir]);
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return yamlDocs(r.stdout);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Starts `cmd args` under `timeout PROCESS_LIMIT_S`; `ready(out)` returns a value once the output
// (stdout + stderr) shows the process is up; with `ready` null it resolves once spawned.
export function startProcess(cmd, args, ready, opts = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn('timeout', ['-s', 'TERM', '-k', '5', String(PROCESS_LIMIT_S), cmd, ...args], opts);
    let out = '';
    let done = false;
    const onData = (d) => {
      out += d;
      const v = done ? undefined : ready(out);
      if (v !== undefined && v !== null) { done = true; resolve({ proc, value: v, output: () => out }); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    if (!ready) proc.on('spawn', () => { done = true; resolve({ proc, value: null, output: () => out }); });
    proc.on('exit', (code) => { if (!done) reject(new Error(`${cmd} exited (${code}) before ready:\n${out}`)); });
  });
}

export function stopProcess(p) {
  return new Promise((resolve) => {
    if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
    p.proc.on('exit', () => resolve());
    p.proc.kill('SIGTERM');
  });
}

export async function poll(fn, what, timeoutMs = 30_000, stepMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v !== undefined && v !== null && v !== false) return v; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}
