// Kubernetes assets: every overlay renders with kustomize (kubectl's built-in v5, offline), every
// rendered or shipped manifest validates against the Kubernetes / Prometheus Operator / KEDA schemas
// (npm kubernetes-models), and the settings the docs promise are really there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DEPLOY, ROOT, kustomize, read, tmpDir, yamlDocs } from './lib.mjs';

const OVERLAYS = ['dev', 'cpu', 'gpu'];

// apiVersion -> module prefix of the model classes (one class per kind, with a validate()).
function modelModule(apiVersion, kind) {
  if (apiVersion === 'monitoring.coreos.com/v1') return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('keda.sh/')) return `@kubernetes-models/keda/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

async function validateDoc(doc) {
  const mod = await import(modelModule(doc.apiVersion, doc.kind));
  const Model = mod[doc.kind] ?? mod.default;
  new Model(doc).validate(); // throws with the schema path of the first error
}

async function validateAll(docs, where) {
  for (const doc of docs) {
    try { await validateDoc(doc); } catch (e) {
      assert.fail(`${where}: ${doc.kind}/${doc.metadata?.name}: ${e.message}`);
    }
  }
}

const rendered = Object.fromEntries(OVERLAYS.map((o) => [o, kustomize(path.join(DEPLOY, 'k8s/overlays', o))]));
const byKind = (docs, kind) => docs.filter((d) => d.kind === kind);
const one = (docs, kind) => { const k = byKind(docs, kind); assert.equal(k.length, 1, `one ${kind}`); return k[0]; };

test('the schema validator rejects a wrong manifest (control)', async () => {
  const bad = structuredClone(one(rendered.cpu, 'Deployment'));
  bad.spec.replicas = 'two';
  await assert.rejects(validateDoc(bad), /replicas must be integer/);
  const badHpa = structuredClone(one(rendered.cpu, 'HorizontalPodAutoscaler'));
  delete badHpa.spec.scaleTargetRef; // required
  await assert.rejects(validateDoc(badHpa), /scaleTargetRef/);
});

for (const o of OVERLAYS) {
  test(`overlay ${o}: renders and every object validates`, async () => {
    const docs = rendered[o];
    assert.ok(docs.length >= 5, `${docs.length} objects`);
    await validateAll(docs, `overlays/${o}`);
    for (const d of docs) {
      assert.equal(d.metadata.namespace, o === 'dev' ? 'autoglm-dev' : 'autoglm');
      // The dev overlay's generated Secret is made after the base's labels are applied.
      if (d.kind !== 'Secret') assert.equal(d.metadata.labels?.['app.kubernetes.io/name'], 'autoglm', `${d.kind} labelled`);
    }
  });
}

test('base files and the KEDA ScaledObject validate as shipped', async () => {
  for (const dir of ['k8s/base', 'keda']) {
    for (const f of fs.readdirSync(path.join(DEPLOY, dir)).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
      await validateAll(yamlDocs(read(`deploy/${dir}/${f}`)), `deploy/${dir}/${f}`);
    }
  }
});

test('the KEDA component replaces the HPA in an overlay', async () => {
  const dir = tmpDir('keda');
  const rel = (p) => path.relative(dir, p);
  fs.writeFileSync(path.join(dir, 'kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'namespace: autoglm',
    `resources: [${rel(path.join(DEPLOY, 'k8s/overlays/cpu'))}]`, `components: [${rel(path.join(DEPLOY, 'keda'))}]`, ''].join('\n'));
  const docs = kustomize(dir);
  fs.rmSync(dir, { recursive: true });
  assert.equal(byKind(docs, 'HorizontalPodAutoscaler').length, 0);
  const so = one(docs, 'ScaledObject');
  await validateAll(docs, 'cpu + keda');
  assert.equal(so.spec.scaleTargetRef.name, one(docs, 'Deployment').metadata.name);
  assert.match(so.spec.triggers[0].metadata.query, /vllm:num_requests_waiting/);
});

test('pods: probes on /health and /ready, non-root, read-only root, model read-only', () => {
  for (const o of OVERLAYS) {
    const pod = one(rendered[o], 'Deployment').spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.startupProbe.httpGet.path, '/health');
    assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 600, 'startup allows 10 min of loading');
    assert.equal(c.livenessProbe.httpGet.path, '/health');
    assert.match(c.readinessProbe.exec.command.join(' '), /Authorization: Bearer \$\{AUTOGLM_API_KEY\}.*\/ready/);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.volumeMounts.find((m) => m.mountPath === '/models').readOnly, true);
    assert.ok(c.env.some((e) => e.name === 'AUTOGLM_API_KEY' && e.valueFrom.secretKeyRef), 'key from a Secret');
    assert.ok(c.args.includes('--host=0.0.0.0') && !c.args.some((a) => a.includes('insecure')));
    // Grace period covers the drain the server is told to do.
    const drain = Number(c.args.find((a) => a.startsWith('--drain-timeout=')).split('=')[1]);
    assert.ok(pod.terminationGracePeriodSeconds > drain);
    assert.equal(c.resources.requests.memory !== undefined && c.resources.limits.memory !== undefined, true);
  }
  const gpu = one(rendered.gpu, 'Deployment').spec.template.spec;
  assert.equal(gpu.containers[0].resources.limits['nvidia.com/gpu'], '1');
  assert.ok(gpu.tolerations.some((t) => t.key === 'nvidia.com/gpu'));
  assert.equal(gpu.nodeSelector['nvidia.com/gpu.present'], 'true');
});

test('HPA: the queue metric the adapter serves, CPU fallback except on CPU pods, damped scale-down', () => {
  const adapter = yamlDocs(read('deploy/prometheus/adapter-rules.yaml'))[0].rules.custom[0];
  for (const o of ['cpu', 'gpu']) {
    const hpa = one(rendered[o], 'HorizontalPodAutoscaler');
    const queue = hpa.spec.metrics.find((m) => m.type === 'Pods');
    assert.equal(queue.pods.metric.name, adapter.name.as, 'HPA asks for the metric the adapter serves');
    assert.equal(queue.pods.target.averageValue, '4');
    assert.equal(hpa.spec.scaleTargetRef.name, one(rendered[o], 'Deployment').metadata.name);
    assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 300);
    assert.deepEqual(hpa.spec.behavior.scaleDown.policies, [{ type: 'Pods', value: 1, periodSeconds: 120 }]);
    const cpu = hpa.spec.metrics.some((m) => m.type === 'Resource' && m.resource.name === 'cpu');
    assert.equal(cpu, o === 'gpu', `${o}: CPU fallback`);
  }
  assert.equal(byKind(rendered.dev, 'HorizontalPodAutoscaler').length, 0);
  assert.ok(new RegExp(`^\\^${adapter.seriesQuery.split('{')[0]}\\$$`).test(adapter.name.matches));
});

test('PrometheusRule in the base carries exactly deploy/prometheus/alerts.yaml', () => {
  const rule = yamlDocs(read('deploy/k8s/base/prometheusrule.yaml'))[0];
  assert.deepEqual(rule.spec, yamlDocs(read('deploy/prometheus/alerts.yaml'))[0]);
  const sm = one(rendered.cpu, 'ServiceMonitor');
  const svc = one(rendered.cpu, 'Service');
  assert.equal(sm.spec.endpoints[0].port, svc.spec.ports[0].name);
  assert.equal(sm.spec.endpoints[0].path, '/metrics');
});

test('docs/deployment.md explains the HPA with the numbers the manifests use', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deployment.md'), 'utf8');
  for (const needle of ['4.4', 'ceil', '300', '120', 'maxReplicas', 'autoglm_requests_waiting']) {
    assert.ok(doc.includes(needle), `docs/deployment.md mentions ${needle}`);
  }
});
