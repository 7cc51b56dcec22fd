/**
 * Identity across sources with the cluster inventory (issue #13): an Istio mTLS alert that names
 * only a workload (`source_workload="storefront-web"`) joins the attack incident of the service
 * account that workload's pods run as — kubevigil watching a stand-in of the Kubernetes API for
 * its inventory, the alert arriving through the real Alertmanager webhook. Without the inventory
 * the same alert stays apart (the failure the issue describes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { CORE_PATHS, KubeStandIn, standInKubeConfig } from './helpers/kube-standin.js';
import { waitFor } from './helpers/prometheus.js';

const API = 'api-token-for-inventory-tests-0123';
const INGEST = 'ingest-token-for-inventory-tests-01';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const T = Date.parse('2026-12-06T09:00:00Z');
const at = (s: number) => new Date(T + s * 1000).toISOString();

function attack(): unknown[] {
  const user = {
    username: 'system:serviceaccount:storefront:web',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:storefront', 'system:authenticated'],
  };
  const allow = {
    'authorization.k8s.io/decision': 'allow',
    'authorization.k8s.io/reason': 'RBAC: allowed by ClusterRoleBinding "web-secrets" of ClusterRole "secret-reader" to ServiceAccount "web/storefront"',
  };
  return [
    {
      auditID: 'inv-1',
      stage: 'ResponseComplete',
      verb: 'list',
      requestURI: '/api/v1/secrets',
      user,
      sourceIPs: ['10.0.3.17'],
      userAgent: 'curl/8.5.0',
      objectRef: { resource: 'secrets', apiVersion: 'v1' },
      responseStatus: { code: 200 },
      requestReceivedTimestamp: at(0),
      stageTimestamp: at(0),
      annotations: allow,
    },
    {
      auditID: 'inv-2',
      stage: 'ResponseComplete',
      verb: 'get',
      requestURI: '/api/v1/namespaces/payments/secrets/db-credentials',
      user,
      sourceIPs: ['10.0.3.17'],
      userAgent: 'curl/8.5.0',
      objectRef: { resource: 'secrets', namespace: 'payments', name: 'db-credentials', apiVersion: 'v1' },
      responseStatus: { code: 200 },
      requestReceivedTimestamp: at(10),
      stageTimestamp: at(10),
      annotations: allow,
    },
  ];
}

const mtlsAlert = {
  version: '4',
  groupKey: '{}:{alertname="IstioMTLSFailures"}',
  status: 'firing',
  receiver: 'kubevigil',
  groupLabels: { alertname: 'IstioMTLSFailures' },
  commonLabels: { alertname: 'IstioMTLSFailures' },
  commonAnnotations: {},
  externalURL: 'http://alertmanager:9093',
  truncatedAlerts: 0,
  alerts: [
    {
      status: 'firing',
      labels: {
        alertname: 'IstioMTLSFailures',
        severity: 'critical',
        source_workload: 'storefront-web',
        source_workload_namespace: 'storefront',
        destination_workload: 'postgres',
        destination_workload_namespace: 'payments',
      },
      annotations: { summary: 'Plaintext connections from storefront-web to postgres refused' },
      startsAt: at(30),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: 'a1b2c3d4e5f60718',
    },
  ],
};

async function cluster(): Promise<KubeStandIn> {
  const api = new KubeStandIn(CORE_PATHS);
  api.put('/api/v1/namespaces', { metadata: { name: 'storefront' } });
  api.put('/api/v1/serviceaccounts', { metadata: { name: 'web', namespace: 'storefront' } });
  api.put('/apis/apps/v1/deployments', {
    metadata: { name: 'storefront-web', namespace: 'storefront', labels: { app: 'storefront-web' } },
    spec: {
      template: { metadata: { labels: { app: 'storefront-web' } }, spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'shop/web:1' }] } },
    },
  });
  api.put('/apis/apps/v1/replicasets', {
    metadata: {
      name: 'storefront-web-7d9c4b5f6',
      namespace: 'storefront',
      ownerReferences: [{ kind: 'Deployment', name: 'storefront-web', controller: true }],
    },
    spec: {},
  });
  api.put('/api/v1/pods', {
    metadata: {
      name: 'storefront-web-7d9c4b5f6-xk2pq',
      namespace: 'storefront',
      uid: 'u1',
      ownerReferences: [{ kind: 'ReplicaSet', name: 'storefront-web-7d9c4b5f6', controller: true }],
    },
    spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'shop/web:1' }] },
    status: { podIP: '10.0.3.17', podIPs: [{ ip: '10.0.3.17' }] },
  });
  await api.start();
  return api;
}

async function start(kubeConfigOpt?: KubeConfig): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-inv-'));
  dirs.push(dir);
  const config = loadConfig({
    KUBEVIGIL_PORT: '0',
    KUBEVIGIL_DATA_DIR: dir,
    KUBEVIGIL_API_TOKEN: API,
    KUBEVIGIL_INGEST_TOKEN: INGEST,
    KUBEVIGIL_INVENTORY: 'off',
  });
  return serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false, ...(kubeConfigOpt ? { kubeConfig: kubeConfigOpt } : {}) });
}

async function post(kv: Running, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${kv.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await kv.drained();
}

async function incidents(kv: Running): Promise<Incident[]> {
  const h = { authorization: `Bearer ${API}` };
  const page = (await (await fetch(`${kv.url}/api/v1/incidents?severity=medium`, { headers: h })).json()) as { items: { id: string }[] };
  return Promise.all(page.items.map(async (i) => (await (await fetch(`${kv.url}/api/v1/incidents/${i.id}`, { headers: h })).json()) as Incident));
}

async function readyz(kv: Running): Promise<{ status: string; inventory?: { synced: boolean } }> {
  return (await (await fetch(`${kv.url}/readyz`)).json()) as { status: string; inventory?: { synced: boolean } };
}

describe('identity across sources with the cluster inventory', () => {
  let api: KubeStandIn | undefined;
  let kv: Running | undefined;
  afterEach(async () => {
    await kv?.stop();
    await api?.stop();
    kv = undefined;
    api = undefined;
  });

  it('an Istio alert naming only the workload joins the attack incident of the service account its pods run as', async () => {
    api = await cluster();
    kv = await start(standInKubeConfig(api.url));
    for (let i = 0; i < 200 && !(await readyz(kv)).inventory?.synced; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await readyz(kv)).inventory).toMatchObject({ enabled: true, synced: true, pending: [] });
    await post(kv, '/ingest/k8s-audit', { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: attack() });
    await post(kv, '/ingest/alertmanager', mtlsAlert);
    const found = await incidents(kv);
    expect(found.map((i) => i.actor.key)).toEqual(['sa:storefront/web']);
    const alert = found[0]!.timeline.find((e) => e.source === 'alertmanager');
    expect(alert, 'the alert is in the attack incident').toBeDefined();
    expect(alert!.attributes).toMatchObject({ identityFrom: 'inventory', identityWas: 'pod:storefront/storefront-web' });
    expect(found[0]!.entities).toContain('workload:storefront/Deployment/storefront-web');
    expect(found[0]!.blastRadius.workloads).toContain('storefront/Deployment/storefront-web');
    // /metrics counts what the inventory holds.
    const metrics = await (await fetch(`${kv.url}/metrics`, { headers: { authorization: `Bearer ${API}` } })).text();
    expect(metrics).toMatch(/kubevigil_inventory_objects\{resource="pods"\} 1/);
    expect(metrics).toMatch(/kubevigil_inventory_synced 1/);
  });

  it('without the inventory the same alert stays apart: the workload name is taken for a pod', async () => {
    kv = await start();
    expect((await readyz(kv)).inventory).toBeUndefined();
    await post(kv, '/ingest/k8s-audit', { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: attack() });
    await post(kv, '/ingest/alertmanager', mtlsAlert);
    const found = await incidents(kv);
    expect(found.map((i) => i.actor.key).sort()).toEqual(['pod:storefront/storefront-web', 'sa:storefront/web']);
  });
});

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;
const BIN = new URL('../bin/kubevigil.js', import.meta.url).pathname;

describe.skipIf(!KAFKA || !REDIS)('identity across sources with the inventory, distributed (needs KAFKA_BROKERS and REDIS_URL)', () => {
  const children = new Set<ChildProcess>();
  let api: KubeStandIn | undefined;
  afterEach(async () => {
    for (const c of children) c.kill('SIGKILL');
    children.clear();
    await api?.stop();
  });

  /** One `kubevigil serve` process with the given roles, watching the stand-in API for its inventory. */
  function proc(roles: string, prefix: string, kubeconfig: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'kv-inv-dist-'));
    dirs.push(dir);
    const child = spawn(process.execPath, [BIN, 'serve', '--role', roles], {
      env: {
        ...process.env,
        KAFKA_BROKERS: KAFKA,
        REDIS_URL: REDIS,
        KUBEVIGIL_TOPIC_PREFIX: prefix,
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: dir,
        KUBEVIGIL_PARTITIONS: '4',
        KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
        KUBEVIGIL_INVENTORY: `kubeconfig:${kubeconfig}`,
        KUBEVIGIL_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    return new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('kubevigil listening')) resolve((JSON.parse(line) as { url: string }).url);
      });
      child.on('exit', (code) => reject(new Error(`kubevigil ${roles} exited with ${code}`)));
    });
  }

  it('two ingest replicas each watch the cluster: the audit attack through one, the workload-named alert through the other, one incident', async () => {
    api = await cluster();
    const dir = mkdtempSync(join(tmpdir(), 'kv-kubeconfig-'));
    dirs.push(dir);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: kubevigil-inventory-token\ncontexts:\n- name: x\n  context: { cluster: c, user: u }\ncurrent-context: x\n`,
    );
    const prefix = `kvinv${Date.now().toString(36)}`;
    const [correlator, ingestA, ingestB, apiUrl] = await Promise.all([
      proc('correlator', prefix, kubeconfig),
      proc('ingest', prefix, kubeconfig),
      proc('ingest', prefix, kubeconfig),
      proc('api', prefix, kubeconfig),
    ]);
    void correlator;
    for (const url of [ingestA, ingestB])
      await waitFor(
        'the inventory to sync',
        async () => ((await (await fetch(`${url}/readyz`)).json()) as { inventory?: { synced: boolean } }).inventory?.synced || undefined,
        90_000,
        250,
      );
    const post = (url: string, path: string, body: unknown) =>
      waitFor(
        `${path} to accept`,
        async () => {
          const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          return r.status === 200 ? r : undefined;
        },
        90_000,
        250,
      );
    await post(ingestA, '/ingest/k8s-audit', { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: attack() });
    await post(ingestB, '/ingest/alertmanager', mtlsAlert);
    const inc = await waitFor(
      'one incident with the alert in it',
      async () => {
        const page = (await (await fetch(`${apiUrl}/api/v1/incidents?severity=medium`)).json()) as { items: { id: string }[] };
        const all = await Promise.all(page.items.map(async (i) => (await (await fetch(`${apiUrl}/api/v1/incidents/${i.id}`)).json()) as Incident));
        return all.length === 1 && all[0]!.timeline.some((e) => e.source === 'alertmanager') ? all : undefined;
      },
      90_000,
      250,
    );
    expect(inc.map((i) => i.actor.key)).toEqual(['sa:storefront/web']);
  }, 180_000);
});
