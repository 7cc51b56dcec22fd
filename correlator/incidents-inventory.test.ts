/**
 * The incident manager with a cluster inventory: root cause and plan read the cluster, and the plan
 * is made again when the answers it read change (not otherwise: re-asking its questions is a few
 * lookups, rendering YAML is not).
 */
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import type { Actor } from './entities.js';
import type { Incident } from './incident.js';
import { IncidentManager } from './incidents.js';
import { FakeInventory, type FakeCluster } from './remediation/test-inventory.js';
import type { Signal } from './signal.js';

const T0 = Date.UTC(2026, 10, 29, 16, 0, 0);
const FRONTEND: Actor = { key: 'sa:frontend/frontend', type: 'serviceaccount', name: 'system:serviceaccount:frontend:frontend', namespace: 'frontend' };
const READER = { actorPod: 'frontend/frontend-1', binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' };

let n = 0;
/** The same read, again: it changes nothing the plan depends on but the cluster. */
function read(): Signal {
  n += 1;
  return {
    id: `mgr-${n}`,
    source: 'k8s-audit',
    kind: 'secret.read_cross_namespace',
    severity: 'high',
    title: 'secret read',
    eventTime: T0 + n * 1000,
    observedTime: T0 + n * 1000,
    actor: FRONTEND,
    target: { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' },
    outcome: 'allowed',
    entities: ['pod:frontend/frontend-1', 'binding:ClusterRoleBinding/frontend-secrets-reader', 'secret:payments/db-credentials'],
    mitre: [],
    rule: { id: 'r-read', title: 'read' },
    matched: [],
    attributes: READER,
    excerpt: {},
  };
}

const cluster = (): FakeCluster => ({
  serviceAccounts: ['frontend/frontend'],
  pods: [{ namespace: 'frontend', name: 'frontend-1', serviceAccount: 'frontend', workload: { kind: 'Deployment', namespace: 'frontend', name: 'frontend' } }],
  workloads: [{ kind: 'Deployment', namespace: 'payments', name: 'payments-api', secrets: ['db-credentials'] }],
  roles: [{ kind: 'ClusterRole', name: 'secret-reader', rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] }],
  bindings: [
    {
      kind: 'ClusterRoleBinding',
      name: 'frontend-secrets-reader',
      roleRef: { kind: 'ClusterRole', name: 'secret-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' }],
    },
  ],
});

const commands = (inc: Incident) => inc.remediations.flatMap((r) => r.commands);

describe('IncidentManager with a cluster inventory', () => {
  it('reads the cluster for root cause and plan, and replans only when the answers change', () => {
    const inv = new FakeInventory(cluster());
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 + 60_000 });
    m.inventory = inv;
    // Four reads (the count the rationales quote stays in the same power of two for the next two).
    const [inc] = m.process([read(), read(), read(), read()]).incidents;
    expect(inc?.rootCause.enablingBindingInCluster?.grantingRules).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    expect(inc?.remediations.every((r) => r.basis === 'cluster-inventory')).toBe(true);
    expect(commands(inc!)).toContain('kubectl -n payments rollout restart deployment/payments-api');
    expect(commands(inc!)).toContain('kubectl delete clusterrolebinding frontend-secrets-reader');
    const first = inc!.remediations;

    // Same shape, same cluster: the plan is not made again.
    const [same] = m.process([read()]).incidents;
    expect(same?.remediations).toBe(first);

    // The binding was deleted meanwhile: the next change replans, and deletes nothing.
    inv.cluster.bindings = [];
    const [after] = m.process([read()]).incidents;
    expect(after?.remediations).not.toBe(first);
    expect(commands(after!)).not.toContain('kubectl delete clusterrolebinding frontend-secrets-reader');
    expect(after?.remediations.find((r) => r.kind === 'remove-binding')).toMatchObject({
      title: 'ClusterRoleBinding frontend-secrets-reader is already gone',
      commands: [],
    });
    expect(after?.rootCause.enablingBindingInCluster?.exists).toBe(false);
  });

  it('replans when the inventory finishes reading the cluster, or is set after the plan was made', () => {
    const inv = new FakeInventory({ ...cluster(), status: { synced: false, pending: [{ resource: 'pods' }] } });
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 + 60_000 });
    const [plain] = m.process([read(), read(), read(), read()]).incidents;
    const planned = plain!.remediations;
    expect(planned.every((r) => r.basis === 'audit-data')).toBe(true);
    m.inventory = inv;
    const [pending] = m.process([read()]).incidents;
    expect(pending?.remediations).not.toBe(planned);
    expect(pending?.remediations[0]?.rationale).toContain('Not checked against the cluster');
    inv.cluster.status = {};
    const [synced] = m.process([read()]).incidents;
    expect(synced?.remediations.every((r) => r.basis === 'cluster-inventory')).toBe(true);
  });

  it('asks again only the questions the last plan asked', () => {
    const inv = new FakeInventory(cluster());
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 + 60_000 });
    m.inventory = inv;
    m.process([read(), read(), read(), read()]);
    const before = new Map(inv.calls);
    m.process([read()]);
    // Root cause reads the binding, its role and the pod again; the plan key re-asks each question once.
    const asked = [...inv.calls].reduce((sum, [k, v]) => sum + v - (before.get(k) ?? 0), 0);
    expect(asked).toBeLessThan(30);
    expect(inv.calls.get('consumersOfSecret')! - before.get('consumersOfSecret')!).toBe(1);
  });
});
