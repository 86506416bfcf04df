// Starting and stopping the real `autoglm serve` for the end-to-end tests.
import { spawn } from 'node:child_process';

// Spawns `bin serve ...args` and resolves once it prints its address and /ready answers 200
// (listening comes before the warm-up, so a client waits for /ready, as this does), polling every
// 50 ms `tries` times. `key`, when given, is sent to /ready. Resolves { proc, url, stderr(),
// startupMs }.
export function startServer(bin, args, { env = process.env, key, tries = 1200 } = {}) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ['serve', ...args], { env });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (!m) return;
      out = '';
      const server = { proc, url: m[1], stderr: () => err };
      const headers = key ? { authorization: `Bearer ${key}` } : {};
      (async () => {
        for (let i = 0; i < tries; i++) {
          const r = await fetch(`${server.url}/ready`, { headers }).catch(() => null);
          if (r && r.status === 200) return resolve({ ...server, startupMs: Date.now() - t0 });
          await new Promise((ok) => setTimeout(ok, 50));
        }
        reject(new Error(`server never became ready:\n${err}`));
      })();
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
}

// SIGTERM (the server drains), resolving the exit code.
export function stopServer(server) {
  return new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve(server.proc.exitCode);
    server.proc.on('exit', (code) => resolve(code));
    server.proc.kill('SIGTERM');
  });
}
