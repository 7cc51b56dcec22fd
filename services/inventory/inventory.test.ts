import { afterEach, describe, expect, it } from 'vitest';
import { IdentityResolver } from '../../correlator/identity.js';
import { actorFromIp, actorFromPod } from '../../correlator/entities.js';
import { createLogger } from '../logging.js';
import { CORE_PATHS, KubeStandIn, standInKubeConfig } from '../../test/helpers/kube-standin.js';
import { KubeInventory } from './inventory.js';

/** Waits for a condition the inventory reaches asynchronously (no fixed sleeps). */
async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const deployment = (ns: string, name: string, sa: string, secrets: string[] = [], app = name) => ({
  metadata: { name, namespace: ns, labels: { app } },
  spec: {
    template: {
      metadata: { labels: { app } },
      spec: {
        serviceAccountName: sa,
        containers: [{ name: 'c', image: 'x', env: secrets.map((s) => ({ name: s, valueFrom: { secretKeyRef: { name: s, key: 'k' } } })) }],
      },
    },
  },
});
const replicaSet = (ns: string, name: string, owner: string) => ({
  metadata: { name, namespace: ns, ownerReferences: [{ kind: 'Deployment', name: owner, controller: true }] },
  spec: { template: { spec: { containers: [] } } },
});
const pod = (ns: string, name: string, ip: string, sa: string, rs?: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: ns, uid: `uid-${name}`, ...(rs ? { ownerReferences: [{ kind: 'ReplicaSet', name: rs, controller: true }] } : {}) },
  spec: { serviceAccountName: sa, nodeName: 'worker-1', containers: [{ name: 'c', image: 'x' }], ...extra },
  status: { podIP: ip, podIPs: [{ ip }] },
});

describe('the cluster inventory (against a stand-in of the list/watch API)', () => {
  let api: KubeStandIn;
  let inv: KubeInventory | undefined;
  afterEach(async () => {
    await inv?.stop();
    await api.stop();
  });

  async function start(seed: (api: KubeStandIn) => void): Promise<KubeInventory> {
    api = new KubeStandIn(CORE_PATHS);
    seed(api);
    await api.start();
    inv = new KubeInventory(standInKubeConfig(api.url), { logger: createLogger('silent') });
    await until('the first sync', () => inv!.status().synced);
    return inv;
  }

  it('lists every resource, resolves a pod to its Deployment and service account, and reports optional CRDs as synced when absent', async () => {
    const inv = await start((a) => {
      a.put('/api/v1/namespaces', { metadata: { name: 'storefront', labels: { 'istio-injection': 'enabled' } } });
      a.put('/apis/apps/v1/deployments', deployment('storefront', 'storefront-web', 'web'));
      a.put('/apis/apps/v1/replicasets', replicaSet('storefront', 'storefront-web-7d9c4b5f6', 'storefront-web'));
      a.put('/api/v1/pods', pod('storefront', 'storefront-web-7d9c4b5f6-xk2pq', '10.0.3.17', 'web', 'storefront-web-7d9c4b5f6'));
      a.put('/api/v1/serviceaccounts', { metadata: { name: 'web', namespace: 'storefront' } });
    });
    expect(inv.status()).toEqual({ enabled: true, synced: true, pending: [] });
    expect(inv.podByIP('10.0.3.17')).toMatchObject({
      name: 'storefront-web-7d9c4b5f6-xk2pq',
      serviceAccount: 'web',
      workload: { kind: 'Deployment', namespace: 'storefront', name: 'storefront-web' },
    });
    expect(inv.workloadByLabel('storefront', 'storefront-web')).toMatchObject({ kind: 'Deployment', serviceAccount: 'web' });
    expect(inv.serviceAccountExists('storefront', 'web')).toBe(true);
    expect(inv.namespaceExists('storefront')).toBe(true);
    expect(inv.meshNamespaces()).toEqual(['storefront']);
    expect(inv.podsOf({ kind: 'Deployment', namespace: 'storefront', name: 'storefront-web' }).map((p) => p.name)).toEqual(['storefront-web-7d9c4b5f6-xk2pq']);
  });

  it('resolves an Istio workload label and a pod IP to the service account, the inventory first and the audit facts as fallback', async () => {
    const inv = await start((a) => {
      a.put('/apis/apps/v1/deployments', deployment('storefront', 'storefront-web', 'web'));
      a.put('/apis/apps/v1/replicasets', replicaSet('storefront', 'rs-1', 'storefront-web'));
      a.put('/api/v1/pods', pod('storefront', 'storefront-web-abc', '10.0.3.17', 'web', 'rs-1'));
    });
    const resolver = new IdentityResolver({ now: () => Date.now() }, {}, inv);
    const byWorkload = resolver.resolve(actorFromPod('storefront', 'storefront-web'));
    expect(byWorkload).toMatchObject({ actor: { key: 'sa:storefront/web' }, resolvedBy: 'inventory' });
    expect(byWorkload!.via).toContain('workload:storefront/Deployment/storefront-web');
    expect(resolver.resolve(actorFromIp('10.0.3.17'))).toMatchObject({ actor: { key: 'sa:storefront/web' }, resolvedBy: 'inventory' });
    // An address the cluster does not know: what the audit stream taught answers.
    resolver.learn({ ip: '10.9.9.9', pod: { namespace: 'old', name: 'p' }, serviceAccount: { namespace: 'old', name: 'legacy' }, time: Date.now() });
    expect(resolver.resolve(actorFromIp('10.9.9.9'))).toMatchObject({ actor: { key: 'sa:old/legacy' }, resolvedBy: 'audit' });
  });

  it('follows watch events, keeps a deleted pod resolvable by its IP, and resumes a dropped watch from its resourceVersion without relisting', async () => {
    const inv = await start((a) => a.put('/api/v1/pods', pod('web', 'a', '10.0.0.1', 'frontend')));
    api.put('/api/v1/pods', pod('web', 'b', '10.0.0.2', 'frontend'));
    await until('the added pod', () => inv.pod('web', 'b') !== undefined);
    api.delete('/api/v1/pods', 'web', 'a');
    await until('the deletion', () => inv.pod('web', 'a') === undefined);
    expect(inv.podByIP('10.0.0.1')).toMatchObject({ name: 'a', deletedAt: expect.any(Number) });
    const lists = () => api.requests.filter((r) => r === 'LIST /api/v1/pods').length;
    expect(lists()).toBe(1);
    api.dropWatches();
    api.put('/api/v1/pods', pod('web', 'c', '10.0.0.3', 'frontend'));
    await until('the pod added while the watch was down', () => inv.pod('web', 'c') !== undefined);
    expect(lists()).toBe(1);
    expect(api.requests.filter((r) => r.startsWith('WATCH /api/v1/pods@')).length).toBeGreaterThanOrEqual(2);
  });

  it('relists on 410 Gone, and drops what was deleted while it could not watch', async () => {
    const inv = await start((a) => {
      a.put('/api/v1/pods', pod('web', 'a', '10.0.0.1', 'frontend'));
      a.put('/api/v1/pods', pod('web', 'b', '10.0.0.2', 'frontend'));
    });
    api.silently(() => {
      api.delete('/api/v1/pods', 'web', 'a');
      api.put('/api/v1/pods', pod('web', 'd', '10.0.0.4', 'frontend'));
    });
    api.compact();
    api.dropWatches();
    await until('the relist', () => inv.pod('web', 'd') !== undefined && inv.pod('web', 'a') === undefined);
    expect(api.requests.filter((r) => r === 'LIST /api/v1/pods').length).toBe(2);
    expect(inv.pod('web', 'b')).toBeDefined();
  });

  it('resolves a mesh app label to the workload that carries it, and follows label changes', async () => {
    const inv = await start((a) => {
      a.put('/apis/apps/v1/deployments', deployment('shop', 'web-v2', 'web', [], 'storefront'));
      a.put('/apis/apps/v1/replicasets', replicaSet('shop', 'worker-rs', 'worker'));
      a.put('/apis/apps/v1/deployments', deployment('shop', 'worker', 'queue'));
      a.put('/api/v1/pods', {
        ...pod('shop', 'worker-1', '10.0.0.9', 'queue', 'worker-rs'),
        metadata: { ...pod('shop', 'worker-1', '10.0.0.9', 'queue', 'worker-rs').metadata, labels: { 'app.kubernetes.io/name': 'jobs' } },
      });
    });
    expect(inv.workloadByLabel('shop', 'storefront')).toMatchObject({ kind: 'Deployment', name: 'web-v2', serviceAccount: 'web' });
    // Only the pod carries this label: its owner answers.
    expect(inv.workloadByLabel('shop', 'jobs')).toMatchObject({ kind: 'Deployment', name: 'worker', serviceAccount: 'queue' });
    expect(inv.workloadByLabel('other', 'storefront')).toBeUndefined();
    api.put('/apis/apps/v1/deployments', deployment('shop', 'web-v2', 'web', [], 'storefront-next'));
    await until('the relabel', () => inv.workloadByLabel('shop', 'storefront-next') !== undefined);
    expect(inv.workloadByLabel('shop', 'storefront')).toBeUndefined();
  });

  it('knows roles, who is bound to them, and which workloads read a secret', async () => {
    const inv = await start((a) => {
      a.put('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
        metadata: { name: 'all-secrets-reader' },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }],
      });
      a.put('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        metadata: { name: 'checkout-read-secrets' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'all-secrets-reader' },
        subjects: [
          { kind: 'ServiceAccount', name: 'checkout', namespace: 'web' },
          { kind: 'ServiceAccount', name: 'reporting', namespace: 'finance' },
        ],
      });
      a.put('/apis/apps/v1/deployments', deployment('ledger', 'ledger-api', 'ledger-worker', ['ledger-db-password']));
      a.put('/apis/batch/v1/cronjobs', {
        metadata: { name: 'nightly', namespace: 'ledger' },
        spec: { jobTemplate: { spec: { template: { spec: { volumes: [{ name: 'v', secret: { secretName: 'ledger-db-password' } }], containers: [] } } } } },
      });
    });
    expect(inv.role('ClusterRole', 'all-secrets-reader')?.rules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }]);
    expect(inv.bindingsOf('ClusterRole', 'all-secrets-reader').map((b) => b.subjects.map((s) => s.name))).toEqual([['checkout', 'reporting']]);
    expect(
      inv
        .consumersOfSecret('ledger', 'ledger-db-password')
        .map((w) => `${w.kind}/${w.name}`)
        .sort(),
    ).toEqual(['CronJob/nightly', 'Deployment/ledger-api']);
    expect(inv.counts()).toMatchObject({ clusterroles: 1, clusterrolebindings: 1, deployments: 1, cronjobs: 1 });
  });
});
