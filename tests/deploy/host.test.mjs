// The systemd unit passes `systemd-analyze verify` (in a throw-away root holding the unit, the
// built binary at the unit's path and the system's unit tree), and the Dockerfile passes the
// dockerfile-utils linter (npm; hadolint is not packaged for Debian) plus the image rules we promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { BIN, read, run, tmpDir } from './lib.mjs';

function verifyUnit(unitText) {
  const root = tmpDir('systemd');
  try {
    const exec = unitText.match(/^ExecStart=(\S+)/m)[1];
    fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
    fs.mkdirSync(path.join(root, path.dirname(exec)), { recursive: true });
    fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
    fs.cpSync('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    fs.copyFileSync(BIN, path.join(root, exec));
    fs.chmodSync(path.join(root, exec), 0o755);
    fs.writeFileSync(path.join(root, 'etc/systemd/system/autoglm.service'), unitText);
    return run('systemd-analyze', ['verify', `--root=${root}`, 'autoglm.service']);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

test('systemd-analyze verify accepts the unit, and reports a broken copy (control)', () => {
  const unit = read('deploy/systemd/autoglm.service');
  const ok = verifyUnit(unit);
  // verify exits 0 on unknown keys too: any message at all counts as a failure.
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr.trim(), '', ok.stderr);
  const bad = verifyUnit(unit.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  assert.match(bad.stderr, /Unknown key 'NoNewPrivilege'/);
});

test('the unit is hardened as promised', () => {
  const unit = read('deploy/systemd/autoglm.service');
  for (const line of ['DynamicUser=yes', 'ProtectSystem=strict', 'PrivateTmp=yes', 'NoNewPrivileges=yes',
    'CapabilityBoundingSet=', 'Restart=on-failure', 'EnvironmentFile=/etc/autoglm/autoglm.env']) {
    assert.ok(unit.split('\n').includes(line), line);
  }
  assert.ok(!/^ExecReload=/m.test(unit), 'no ExecReload: a reload would drop the loaded model');
  assert.match(unit, /--api-key-file \$\{CREDENTIALS_DIRECTORY\}\/api-key/);
  assert.ok(!/--api-key[ =](?!file)/.test(unit), 'the key never on the command line');
});

test('Dockerfile: no linter findings; a broken one has findings (control)', () => {
  const text = read('deploy/docker/Dockerfile');
  assert.deepEqual(lintDockerfile(text).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
  assert.ok(lintDockerfile(`${text}\nEXPOSE http\nMAINTAINER someone\n`).length >= 2);
});

test('Dockerfile: multi-stage Debian 12, numeric non-root user, HEALTHCHECK on /health', () => {
  const text = read('deploy/docker/Dockerfile');
  const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  assert.equal(froms.length, 2);
  assert.match(text, /^ARG DEBIAN_IMAGE=debian:12[.\d]*-slim$/m);
  assert.match(text, /^USER 10001:10001$/m);
  assert.match(text, /^HEALTHCHECK .*\n?.*http:\/\/127\.0\.0\.1:8000\/health/m);
  assert.match(text, /^ENTRYPOINT \["\/usr\/local\/bin\/autoglm"\]$/m);
  assert.match(text, /^ARG CUDA_VERSION=""$/m);
  // The last USER comes after the last RUN: nothing at run time happens as root.
  assert.ok(text.lastIndexOf('\nUSER ') > text.lastIndexOf('\nRUN '));
});
