/**
 * Root cause with the cluster's facts (issue #13, part 3): with a cluster inventory, the enabler's
 * evidence names the rule of its role that granted the sensitive verb used, and every other subject
 * the binding grants the role to (who loses it if the binding is deleted); after an escalation, the
 * rules that let the actor write the binding (the write, and bind/escalate/wildcards); pods carry
 * their owner workload. Without an inventory, or before it has read the cluster, nothing changes.
 */
import { describe, expect, it } from 'vitest';
import type { Actor } from './entities.js';
import type { RootCause, TimelineEntry } from './incident.js';
import type { BindingInfo } from './inventory.js';
import { FakeInventory, type FakeCluster } from './remediation/test-inventory.js';
import { analyzeRootCause } from './root-cause.js';
import type { SignalKind } from './signal-kinds.js';
import type { Outcome, Target } from './signal.js';

const T0 = Date.UTC(2026, 10, 29, 9, 0, 0);
const FRONTEND: Actor = { key: 'sa:frontend/frontend', type: 'serviceaccount', name: 'system:serviceaccount:frontend:frontend', namespace: 'frontend' };
const CI: Actor = { key: 'sa:ci/ci-deployer', type: 'serviceaccount', name: 'system:serviceaccount:ci:ci-deployer', namespace: 'ci' };
const POD = 'frontend/frontend-7d9c-xk2p';
const READER = { actorPod: POD, binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' };
const rbac = 'rbac.authorization.k8s.io';

let n = 0;
function entry(kind: SignalKind, target: Target, attributes: Record<string, string>, actor = FRONTEND.key, outcome: Outcome = 'allowed'): TimelineEntry {
  n += 1;
  return {
    signalId: `rc-${n}`,
    time: T0 + n * 1000,
    actor,
    source: 'k8s-audit',
    kind,
    severity: 'high',
    title: kind,
    outcome,
    ruleId: `r-${kind}`,
    target,
    attributes,
  };
}

/** The frontend attack: secrets listed cluster-wide and read in payments through an over-broad ClusterRoleBinding, and an exec into the database. */
function secretTheft(): TimelineEntry[] {
  return [
    entry('secret.list_cluster_wide', { resource: 'secrets', verb: 'list' }, READER),
    entry('secret.read_cross_namespace', { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' }, READER),
    entry(
      'pod.exec',
      { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' },
      { actorPod: POD, binding: 'RoleBinding/payments/debuggers', role: 'ClusterRole/edit' },
    ),
  ];
}

const readerBinding = (subjects: BindingInfo['subjects']): BindingInfo => ({
  kind: 'ClusterRoleBinding',
  name: 'frontend-secrets-reader',
  roleRef: { kind: 'ClusterRole', name: 'secret-reader' },
  subjects,
});

function frontendCluster(subjects: BindingInfo['subjects'] = [{ kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' }]): FakeCluster {
  return {
    pods: [
      {
        namespace: 'frontend',
        name: 'frontend-7d9c-xk2p',
        serviceAccount: 'frontend',
        workload: { kind: 'Deployment', namespace: 'frontend', name: 'frontend' },
      },
      { namespace: 'payments', name: 'db-0', serviceAccount: 'db', workload: { kind: 'StatefulSet', namespace: 'payments', name: 'db' } },
    ],
    roles: [
      {
        kind: 'ClusterRole',
        name: 'secret-reader',
        rules: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] },
        ],
      },
    ],
    bindings: [readerBinding(subjects)],
  };
}

const analyze = (actor: Actor, timeline: TimelineEntry[], inventory?: FakeInventory): RootCause =>
  analyzeRootCause(actor, timeline, { correlations: 0, actorShare: 1, ...(inventory ? { inventory } : {}) });
const enablerOf = (rc: RootCause) => rc.evidence.find((e) => e.type === 'enabler')!;

describe('root cause with the cluster inventory: the enabler', () => {
  it('names the rule that granted the secret reads, and every other subject of the binding', () => {
    const inv = new FakeInventory(
      frontendCluster([
        { kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' },
        { kind: 'ServiceAccount', name: 'scraper', namespace: 'monitoring' },
        { kind: 'Group', name: 'oncall' },
      ]),
    );
    const rc = analyze(FRONTEND, secretTheft(), inv);
    expect(rc.enablingBinding).toEqual({ kind: 'ClusterRoleBinding', name: 'frontend-secrets-reader', roleKind: 'ClusterRole', roleName: 'secret-reader' });
    expect(rc.enablingBindingInCluster).toEqual({
      exists: true,
      roleKind: 'ClusterRole',
      roleName: 'secret-reader',
      roleExists: true,
      grantingRules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }],
      actorSubjects: [{ kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' }],
      otherSubjects: [
        { kind: 'ServiceAccount', name: 'scraper', namespace: 'monitoring' },
        { kind: 'Group', name: 'oncall' },
      ],
    });
    const detail = enablerOf(rc).detail;
    expect(detail).toContain('In the cluster (inventory), ClusterRole secret-reader grants it through `secrets get,list`');
    expect(detail).toContain('it also binds ServiceAccount monitoring/scraper and Group oncall, who would lose the role too if it were deleted');
    expect(rc.summary).toContain('through ClusterRoleBinding frontend-secrets-reader (ClusterRole secret-reader, which grants `secrets get,list`)');
  });

  it('says when the actor is the only subject, or holds the role through a group', () => {
    const only = analyze(FRONTEND, secretTheft(), new FakeInventory(frontendCluster()));
    expect(enablerOf(only).detail).toContain('the actor is its only subject');
    const group = analyze(FRONTEND, secretTheft(), new FakeInventory(frontendCluster([{ kind: 'Group', name: 'system:serviceaccounts:frontend' }])));
    expect(group.enablingBindingInCluster?.actorSubjects).toEqual([{ kind: 'Group', name: 'system:serviceaccounts:frontend' }]);
    expect(enablerOf(group).detail).toContain('the actor holds it through Group system:serviceaccounts:frontend');
  });

  it('says a user may hold the role through a group, which the cluster cannot confirm', () => {
    const bob: Actor = { key: 'user:bob@example.com', type: 'user', name: 'bob@example.com' };
    const timeline = secretTheft()
      .slice(0, 2)
      .map((e) => ({ ...e, actor: bob.key, attributes: { binding: READER.binding, role: READER.role } }));
    const rc = analyze(bob, timeline, new FakeInventory(frontendCluster([{ kind: 'Group', name: 'developers' }])));
    expect(rc.enablingBindingInCluster?.actorSubjects).toEqual([]);
    expect(enablerOf(rc).detail).toContain(
      'it does not name the actor itself, which may hold it through Group developers (its authenticator decides group membership); it binds Group developers.',
    );
  });

  it('says when the binding is gone, its role is gone, or no rule grants what was done any more', () => {
    const gone = analyze(FRONTEND, secretTheft(), new FakeInventory({ ...frontendCluster(), bindings: [] }));
    expect(gone.enablingBindingInCluster).toEqual({ exists: false, grantingRules: [], actorSubjects: [], otherSubjects: [] });
    expect(enablerOf(gone).detail).toContain('The cluster no longer has ClusterRoleBinding frontend-secrets-reader (cluster inventory)');
    const noRole = analyze(FRONTEND, secretTheft(), new FakeInventory({ ...frontendCluster(), roles: [] }));
    expect(noRole.enablingBindingInCluster?.roleExists).toBe(false);
    expect(enablerOf(noRole).detail).toContain('ClusterRole secret-reader, which it names, no longer exists');
    const changed = analyze(
      FRONTEND,
      secretTheft(),
      new FakeInventory({
        ...frontendCluster(),
        roles: [{ kind: 'ClusterRole', name: 'secret-reader', rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] }],
      }),
    );
    expect(changed.enablingBindingInCluster?.grantingRules).toEqual([]);
    expect(enablerOf(changed).detail).toContain('no rule of ClusterRole secret-reader grants it now (the role has changed since)');
  });

  it('fills in the role from the binding when the audit data did not name it', () => {
    const timeline = secretTheft().map((e) => ({ ...e, attributes: { actorPod: POD, binding: e.attributes.binding! } }));
    const rc = analyze(FRONTEND, timeline, new FakeInventory(frontendCluster()));
    expect(rc.enablingBinding).toMatchObject({ roleKind: 'ClusterRole', roleName: 'secret-reader' });
  });

  it('matches subresources and wildcards as RBAC does', () => {
    const inv = new FakeInventory({
      ...frontendCluster(),
      roles: [{ kind: 'ClusterRole', name: 'edit', rules: [{ apiGroups: [''], resources: ['pods/exec', 'pods/attach'], verbs: ['create', 'get'] }] }],
      bindings: [
        {
          kind: 'RoleBinding',
          namespace: 'payments',
          name: 'debuggers',
          roleRef: { kind: 'ClusterRole', name: 'edit' },
          subjects: [{ kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' }],
        },
      ],
    });
    // Only the exec went through RoleBinding payments/debuggers.
    const rc = analyze(FRONTEND, secretTheft().slice(2), inv);
    expect(rc.enablingBindingInCluster?.grantingRules).toEqual([{ apiGroups: [''], resources: ['pods/exec', 'pods/attach'], verbs: ['create', 'get'] }]);
    expect(enablerOf(rc).detail).toContain('`pods/exec,pods/attach create,get`');
  });
});

describe('root cause with the cluster inventory: an escalation chain', () => {
  const ENABLER = { binding: 'ClusterRoleBinding/ci-rbac-manager', role: 'ClusterRole/rbac-manager' };
  const ESCALATION = { binding: 'ClusterRoleBinding/ci-debug', role: 'ClusterRole/cluster-admin' };
  const chain = () => [
    entry('rbac.cluster_admin_binding', { resource: 'clusterrolebindings', apiGroup: rbac, name: 'ci-debug', verb: 'create' }, ENABLER, CI.key),
    entry('secret.read_cross_namespace', { namespace: 'kube-system', resource: 'secrets', name: 'etcd-client-certs', verb: 'get' }, ESCALATION, CI.key),
  ];
  const cluster = (): FakeCluster => ({
    serviceAccounts: ['ci/ci-deployer'],
    roles: [
      {
        kind: 'ClusterRole',
        name: 'rbac-manager',
        rules: [
          { apiGroups: [rbac], resources: ['clusterrolebindings', 'rolebindings'], verbs: ['get', 'list', 'create', 'update'] },
          { apiGroups: [rbac], resources: ['clusterroles'], verbs: ['bind'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
        ],
      },
      {
        kind: 'ClusterRole',
        name: 'cluster-admin',
        rules: [
          { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
          { nonResourceURLs: ['*'], verbs: ['*'] },
        ],
      },
    ],
    bindings: [
      {
        kind: 'ClusterRoleBinding',
        name: 'ci-rbac-manager',
        roleRef: { kind: 'ClusterRole', name: 'rbac-manager' },
        subjects: [
          { kind: 'ServiceAccount', name: 'ci-deployer', namespace: 'ci' },
          { kind: 'ServiceAccount', name: 'argocd-server', namespace: 'argocd' },
        ],
      },
      {
        kind: 'ClusterRoleBinding',
        name: 'ci-debug',
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'ci-deployer', namespace: 'ci' }],
      },
    ],
  });

  it('names the binding and role that allowed the creation, with the rules that write bindings and grant bind', () => {
    const rc = analyze(CI, chain(), new FakeInventory(cluster()));
    expect(rc.escalation).toMatchObject({ name: 'ci-debug', roleName: 'cluster-admin' });
    expect(rc.enablingBindingInCluster?.grantingRules).toEqual([
      { apiGroups: [rbac], resources: ['clusterrolebindings', 'rolebindings'], verbs: ['get', 'list', 'create', 'update'] },
      { apiGroups: [rbac], resources: ['clusterroles'], verbs: ['bind'] },
    ]);
    expect(rc.enablingBindingInCluster?.otherSubjects).toEqual([{ kind: 'ServiceAccount', name: 'argocd-server', namespace: 'argocd' }]);
    const detail = enablerOf(rc).detail;
    expect(detail).toContain(
      'ClusterRole rbac-manager grants the write with `rbac.authorization.k8s.io/clusterrolebindings,rolebindings get,list,create,update`',
    );
    expect(detail).toContain('and `rbac.authorization.k8s.io/clusterroles bind`, which lets its holders bind roles with more power than they have');
    expect(detail).toContain('it also binds ServiceAccount argocd/argocd-server');
    // The escalation: whom it binds, and the rule of cluster-admin that granted the secret read.
    expect(rc.escalationInCluster).toMatchObject({ exists: true, grantingRules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] });
    const esc = rc.evidence.find((e) => e.type === 'escalation')!.detail;
    expect(esc).toContain(
      'In the cluster (inventory), it binds ServiceAccount ci/ci-deployer; ClusterRole cluster-admin granted what went through it with `*/* *`',
    );
  });

  it('says when the role grants no bind, escalate or wildcard, and when the written binding is gone', () => {
    const c = cluster();
    c.roles![0]!.rules = [c.roles![0]!.rules[0]!];
    c.bindings = c.bindings!.filter((b) => b.name !== 'ci-debug');
    const rc = analyze(CI, chain(), new FakeInventory(c));
    expect(enablerOf(rc).detail).toContain('no rule of it grants bind, escalate or a wildcard on roles');
    expect(rc.escalationInCluster).toEqual({ exists: false, grantingRules: [], actorSubjects: [], otherSubjects: [] });
    expect(rc.evidence.find((e) => e.type === 'escalation')!.detail).toContain('The cluster no longer has ClusterRoleBinding ci-debug (cluster inventory)');
  });
});

describe('root cause with the cluster inventory: workloads', () => {
  it('carries the owner workload of the actor pod and of the pods it acted on', () => {
    const rc = analyze(FRONTEND, secretTheft(), new FakeInventory(frontendCluster()));
    expect(rc.workloads).toEqual([
      { pod: POD, workload: { kind: 'Deployment', namespace: 'frontend', name: 'frontend' }, actorPod: true },
      { pod: 'payments/db-0', workload: { kind: 'StatefulSet', namespace: 'payments', name: 'db' }, actorPod: false },
    ]);
    expect(rc.summary).toMatch(/^Service account frontend\/frontend \(pod frontend\/frontend-7d9c-xk2p of Deployment frontend\/frontend\)/);
    expect(rc.evidence[0]!.detail).toContain('its pods belong to Deployment frontend/frontend (cluster inventory)');
  });
});

describe('root cause without a usable inventory', () => {
  it('is what the audit data alone says: no inventory, or one that has not read the cluster yet', () => {
    const timeline = secretTheft();
    const plain = analyze(FRONTEND, timeline);
    const pending = analyze(FRONTEND, timeline, new FakeInventory({ ...frontendCluster(), status: { synced: false, pending: [{ resource: 'pods' }] } }));
    expect(pending).toEqual(plain);
    for (const rc of [plain, pending]) {
      expect(rc).not.toHaveProperty('enablingBindingInCluster');
      expect(rc).not.toHaveProperty('workloads');
      expect(JSON.stringify(rc)).not.toContain('inventory');
    }
  });
});
