/**
 * Remediations checked against the cluster inventory (issue #13, part 4): every object a command
 * names exists, or the suggestion says it is gone and runs nothing destructive; pod advice follows
 * the owner workload (never `delete pod` for a name that is a Deployment); secret rotation restarts
 * exactly the workloads that use the secret; the least-privilege Role and the tightened role are
 * diffs against the role's actual rules; a binding shared with others is rewritten without the
 * actor; mesh advice only where the incident or the cluster shows a mesh. Without an inventory (or
 * before it has read the cluster) the plan is the audit data's, and says so.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Actor } from '../entities.js';
import type { Remediation, RemediationKind, TimelineEntry } from '../incident.js';
import type { BindingInfo } from '../inventory.js';
import { analyzeRootCause } from '../root-cause.js';
import type { SignalKind } from '../signal-kinds.js';
import type { Outcome, Target } from '../signal.js';
import { planRemediations, type PermissionUse, type PlanInput } from './planner.js';
import { FakeInventory, type FakeCluster } from './test-inventory.js';

const T0 = Date.UTC(2026, 10, 29, 14, 0, 0);
const rbac = 'rbac.authorization.k8s.io';
const saActor = (ns: string, name: string): Actor => ({
  key: `sa:${ns}/${name}`,
  type: 'serviceaccount',
  name: `system:serviceaccount:${ns}:${name}`,
  namespace: ns,
});
const FRONTEND = saActor('frontend', 'frontend');
const STOREFRONT = saActor('storefront', 'storefront');
const CI = saActor('ci', 'ci-deployer');

let n = 0;
function entry(kind: SignalKind, target: Target, attributes: Record<string, string> = {}, actor = FRONTEND.key, outcome: Outcome = 'allowed'): TimelineEntry {
  n += 1;
  return {
    signalId: `inv-${n}`,
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

/** An incident whose root cause is analyzed as the incident manager would, with the same inventory. */
function input(actor: Actor, timeline: TimelineEntry[], inventory: FakeInventory | undefined, usage: PermissionUse[] = [], entities: string[] = []): PlanInput {
  const rootCause = analyzeRootCause(actor, timeline, { correlations: 0, actorShare: 1, inventory });
  return {
    incident: {
      id: 'inc_inventory',
      title: 'test',
      status: 'open',
      severity: 'critical',
      actor,
      entities: [actor.key, ...entities],
      blastRadius: { namespaces: [], workloads: [], secrets: [], bindings: [], policies: [] },
      firstSeen: T0,
      lastSeen: T0 + 60_000,
      createdAt: T0,
      updatedAt: T0,
      version: 1,
      timeline,
      signalCount: timeline.length,
      countsByKind: {},
      sources: ['k8s-audit'],
      correlations: [],
      rules: [],
      mitre: [],
      rootCause,
      notes: [],
      maxSignalSeverity: 'critical',
    },
    usage,
    ...(inventory ? { inventory } : {}),
  };
}

const use = (verb: string, resource: string, namespace?: string, apiGroup = ''): PermissionUse => ({
  verb,
  resource,
  apiGroup,
  count: 3,
  ...(namespace ? { namespace } : {}),
});
const ofKind = (plan: Remediation[], kind: RemediationKind) => plan.filter((r) => r.kind === kind);
const commands = (plan: Remediation[]) => plan.flatMap((r) => r.commands);

type Doc = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> } };

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'ClusterPolicy', 'Namespace']);

/**
 * Every YAML document of every manifest, checked to be a Kubernetes object `kubectl apply` takes:
 * it parses, has apiVersion, kind and metadata (a namespace exactly when the kind is namespaced),
 * and, for RBAC, a roleRef with its apiGroup, subjects as the API wants them, rules with verbs and
 * API groups; no placeholder anywhere.
 */
function docsOf(plan: Remediation[]): Doc[] {
  return plan.flatMap((r) =>
    r.manifests.flatMap((m) =>
      parseAllDocuments(m).map((d) => {
        expect(d.errors, m).toEqual([]);
        expect(m).not.toMatch(/undefined|null|\?\?|<[a-z-]+>|TODO|REPLACE/);
        const doc = d.toJS() as Doc;
        expect(doc.apiVersion, m).toMatch(/^[a-z0-9.-]+\/v[0-9a-z]+$|^v1$/);
        expect(doc.kind, m).toMatch(/^[A-Z][A-Za-z0-9]+$/);
        expect(doc.metadata.name, m).toMatch(/^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/);
        if (!doc.apiVersion.startsWith('constraints.gatekeeper.sh') && !CLUSTER_SCOPED.has(doc.kind)) expect(doc.metadata.namespace, m).toBeTruthy();
        if (CLUSTER_SCOPED.has(doc.kind)) expect(doc.metadata.namespace, m).toBeUndefined();
        if (doc.kind === 'RoleBinding' || doc.kind === 'ClusterRoleBinding') {
          expect(doc.apiVersion).toBe(`${rbac}/v1`);
          expect(doc.roleRef).toEqual({ apiGroup: rbac, kind: expect.stringMatching(/^(Cluster)?Role$/), name: expect.any(String) });
          const subjects = doc.subjects as Record<string, string>[];
          expect(subjects.length).toBeGreaterThan(0);
          for (const s of subjects)
            if (s.kind === 'ServiceAccount') expect(s).toEqual({ kind: 'ServiceAccount', name: expect.any(String), namespace: expect.any(String) });
            else expect(s).toEqual({ apiGroup: rbac, kind: expect.stringMatching(/^(User|Group)$/), name: expect.any(String) });
        }
        if (doc.kind === 'Role' || doc.kind === 'ClusterRole') {
          expect(doc.apiVersion).toBe(`${rbac}/v1`);
          for (const rule of doc.rules as Record<string, string[]>[]) {
            expect(rule.verbs!.length).toBeGreaterThan(0);
            if (rule.resources) expect(rule.apiGroups, JSON.stringify(rule)).toBeDefined();
            else expect(rule.nonResourceURLs).toBeDefined();
          }
        }
        return doc;
      }),
    ),
  );
}

/**
 * Checks that every object a command names exists in the cluster: pods labelled, deleted or whose
 * logs are read; workloads restarted; bindings, roles, service accounts and namespaces read,
 * changed or deleted. Secrets are not in the inventory and are not checked.
 */
function expectNamedObjectsExist(plan: Remediation[], inv: FakeInventory): void {
  for (const c of commands(plan)) {
    const ns = /(?:^|\s)-n ([a-z0-9.-]+)\s/.exec(c)?.[1];
    if (ns) expect(inv.namespaceExists(ns), `namespace ${ns} in: ${c}`).toBe(true);
    const deleted = /\sdelete pod ((?:[a-z0-9.-]+ ?)+)$/.exec(c)?.[1]?.trim().split(' ') ?? [];
    const labelled = /\slabel pod ([a-z0-9.-]+) /.exec(c)?.[1];
    for (const p of [...deleted, ...(labelled ? [labelled] : [])]) {
      expect(ns, c).toBeDefined();
      expect(inv.pod(ns!, p), `pod ${ns}/${p} in: ${c}`).toBeDefined();
      expect(inv.pod(ns!, p)?.deletedAt, `pod ${ns}/${p} in: ${c}`).toBeUndefined();
    }
    const logs = /\slogs ([a-z0-9.-]+)(?:\/([a-z0-9.-]+))?\s/.exec(c);
    if (logs && ns) {
      if (logs[2]) expect(inv.workload(ns, logs[2]), c).toBeDefined();
      else expect(inv.pod(ns, logs[1]!), c).toBeDefined();
    }
    const rollout = /\srollout (?:restart|status) (deployment|statefulset|daemonset)\/([a-z0-9.-]+)/.exec(c);
    if (rollout && ns) expect(inv.workload(ns, rollout[2]!)?.kind.toLowerCase(), c).toBe(rollout[1]);
    const rbacObject = /\s(?:get|delete|patch) (clusterrolebinding|rolebinding|clusterrole|role) ([a-z0-9.:-]+)/.exec(c);
    if (rbacObject) {
      const [, kind, name] = rbacObject as unknown as [string, string, string];
      if (kind === 'clusterrolebinding') expect(inv.binding('ClusterRoleBinding', name), c).toBeDefined();
      if (kind === 'rolebinding') expect(inv.binding('RoleBinding', name, ns), c).toBeDefined();
      if (kind === 'clusterrole') expect(inv.role('ClusterRole', name), c).toBeDefined();
      if (kind === 'role') expect(inv.role('Role', name, ns), c).toBeDefined();
    }
    const sa = /\s(?:get|delete) serviceaccount ([a-z0-9.-]+)/.exec(c);
    if (sa && ns) expect(inv.serviceAccountExists(ns, sa[1]!), c).toBe(true);
    const as = /--as=system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)/.exec(c);
    if (as) expect(inv.serviceAccountExists(as[1]!, as[2]!), c).toBe(true);
    const label = /\s(?:get|label) namespace ([a-z0-9.-]+)/.exec(c);
    if (label) expect(inv.namespaceExists(label[1]!), c).toBe(true);
  }
}

// With KUBEVIGIL_DUMP_MANIFESTS=<dir>, every manifest these plans emit is written there (one file
// each, named after its test and remediation), for `kubectl apply --dry-run=server -f <dir>`.
const DUMP = process.env.KUBEVIGIL_DUMP_MANIFESTS;
let dumped = 0;
function dump(plan: Remediation[]): void {
  if (!DUMP) return;
  mkdirSync(DUMP, { recursive: true });
  const test = (expect.getState().currentTestName ?? 'plan').replace(/[^a-z0-9]+/gi, '-').slice(0, 80);
  for (const r of plan) for (const m of r.manifests) writeFileSync(join(DUMP, `${String(++dumped).padStart(3, '0')}-${test}-${r.kind}.yaml`), m);
}

/** Plans with the inventory, and checks what every such plan must satisfy. */
function planWith(i: PlanInput): Remediation[] {
  const plan = planRemediations(i);
  docsOf(plan);
  dump(plan);
  for (const r of plan) {
    expect(r.basis).toBe('cluster-inventory');
    expect(r.title).not.toMatch(/undefined|\?/);
    expect(r.rationale).not.toMatch(/undefined/);
  }
  expectNamedObjectsExist(plan, i.inventory as FakeInventory);
  return plan;
}

// ---------------------------------------------------------------------------------------------

describe('pod-level advice follows the owner workload', () => {
  const deployment = { kind: 'Deployment' as const, namespace: 'storefront', name: 'storefront-web' };
  const cluster = (): FakeCluster => ({
    serviceAccounts: ['storefront/storefront'],
    workloads: [{ ...deployment, serviceAccount: 'storefront' }],
    pods: [
      { namespace: 'storefront', name: 'storefront-web-6f7d8-abcde', serviceAccount: 'storefront', workload: deployment },
      { namespace: 'storefront', name: 'storefront-web-6f7d8-fghij', serviceAccount: 'storefront', workload: deployment },
    ],
  });
  // A mesh log or trace named the workload where the audit data names pods.
  const timeline = () => [
    entry(
      'pod.exec',
      { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' },
      { actorPod: 'storefront/storefront-web' },
      STOREFRONT.key,
    ),
  ];

  it('restarts a Deployment instead of deleting a pod of its name, and isolates its live pods', () => {
    const inv = new FakeInventory(cluster());
    const plan = planWith(input(STOREFRONT, timeline(), inv));
    expect(commands(plan)).not.toContain('kubectl -n storefront delete pod storefront-web');
    expect(commands(plan).some((c) => / delete pod storefront-web(\s|$)/.test(c))).toBe(false);
    const [del] = ofKind(plan, 'delete-workload');
    expect(del?.title).toBe('Restart Deployment storefront/storefront-web');
    expect(del?.commands).toEqual([
      'kubectl -n storefront logs deployment/storefront-web --all-containers --timestamps > storefront-storefront-web.log',
      'kubectl -n storefront rollout restart deployment/storefront-web',
      'kubectl -n storefront rollout status deployment/storefront-web',
    ]);
    expect(del?.rationale).toContain('that name is Deployment storefront/storefront-web, not a pod');
    expect(del?.rationale).toContain('kubectl -n storefront scale deployment/storefront-web --replicas=0');
    const [iso] = ofKind(plan, 'isolate-workload');
    expect(iso?.commands).toContain('kubectl -n storefront label pod storefront-web-6f7d8-abcde kubevigil.io/quarantine=true --overwrite');
    expect(iso?.commands).toContain('kubectl -n storefront label pod storefront-web-6f7d8-fghij kubevigil.io/quarantine=true --overwrite');
    expect(iso?.rationale).toContain('storefront/storefront-web is not a pod but Deployment storefront/storefront-web');
  });

  it("names the pod's owner, and saves a bare pod's manifest before deleting it", () => {
    const c = cluster();
    const owned = planWith(
      input(
        STOREFRONT,
        [
          entry(
            'pod.exec',
            { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' },
            { actorPod: 'storefront/storefront-web-6f7d8-abcde' },
            STOREFRONT.key,
          ),
        ],
        new FakeInventory(c),
      ),
    );
    const [del] = ofKind(owned, 'delete-workload');
    expect(del?.title).toBe('Delete pod storefront/storefront-web-6f7d8-abcde of Deployment storefront/storefront-web');
    expect(del?.rationale).toContain('Deployment storefront/storefront-web starts a replacement with the same image and service account');
    expect(del?.commands).toContain('kubectl -n storefront delete pod storefront-web-6f7d8-abcde');
    expect(ofKind(owned, 'isolate-workload')[0]?.title).toBe('Isolate pod storefront/storefront-web-6f7d8-abcde (Deployment storefront/storefront-web)');

    c.pods!.push({ namespace: 'storefront', name: 'debug-shell', serviceAccount: 'storefront' });
    const bare = planWith(
      input(
        STOREFRONT,
        [
          entry(
            'pod.exec',
            { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' },
            { actorPod: 'storefront/debug-shell' },
            STOREFRONT.key,
          ),
        ],
        new FakeInventory(c),
      ),
    );
    expect(ofKind(bare, 'delete-workload')[0]?.commands).toEqual([
      'kubectl -n storefront get pod debug-shell -o yaml > pod-storefront-debug-shell.backup.yaml',
      'kubectl -n storefront logs debug-shell --all-containers --timestamps > storefront-debug-shell.log',
      'kubectl -n storefront delete pod debug-shell',
    ]);
  });

  it('says a pod is gone instead of deleting or isolating it', () => {
    const c = cluster();
    c.pods!.push({ namespace: 'storefront', name: 'storefront-web-6f7d8-zzzzz', serviceAccount: 'storefront', workload: deployment, deletedAt: T0 });
    const plan = planWith(
      input(
        STOREFRONT,
        [
          entry(
            'pod.exec',
            { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' },
            { actorPod: 'storefront/storefront-web-6f7d8-zzzzz' },
            STOREFRONT.key,
          ),
        ],
        new FakeInventory(c),
      ),
    );
    expect(ofKind(plan, 'isolate-workload')).toEqual([]);
    expect(ofKind(plan, 'delete-workload')).toEqual([
      expect.objectContaining({
        title: 'Pod storefront/storefront-web-6f7d8-zzzzz is already gone',
        commands: [],
        risk: 'None: no command is given.',
        rationale: expect.stringContaining('its bound service-account token ended with it'),
      }),
    ]);
    expect(commands(plan).join('\n')).not.toContain('storefront-web-6f7d8-zzzzz');
  });

  it('keeps only inferred pods that run as the actor, without asking the reader to check', () => {
    const c = cluster();
    c.pods!.push({ namespace: 'storefront', name: 'cart-0', serviceAccount: 'cart' });
    const plan = planWith(
      input(
        STOREFRONT,
        [entry('pod.exec', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, {}, STOREFRONT.key)],
        new FakeInventory(c),
        [],
        ['pod:storefront/storefront-web-6f7d8-abcde', 'pod:storefront/cart-0'],
      ),
    );
    const [iso] = ofKind(plan, 'isolate-workload');
    expect(iso?.commands).toEqual([
      'kubectl -n storefront get networkpolicy',
      'kubectl apply -f quarantine-storefront.yaml',
      'kubectl -n storefront label pod storefront-web-6f7d8-abcde kubevigil.io/quarantine=true --overwrite',
    ]);
    expect(iso?.rationale).toContain('Left out: storefront/cart-0, which the cluster shows running as another service account');
  });
});

describe('secret rotation restarts exactly the workloads that use the secret', () => {
  const read = () => [
    entry(
      'secret.read_cross_namespace',
      { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' },
      { actorPod: 'frontend/frontend-1', binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' },
    ),
  ];
  const base = (): FakeCluster => ({
    serviceAccounts: ['frontend/frontend'],
    pods: [
      { namespace: 'frontend', name: 'frontend-1', serviceAccount: 'frontend', workload: { kind: 'Deployment', namespace: 'frontend', name: 'frontend' } },
    ],
    workloads: [
      { kind: 'Deployment', namespace: 'payments', name: 'payments-api', secrets: ['db-credentials'] },
      { kind: 'StatefulSet', namespace: 'payments', name: 'ledger', secrets: ['db-credentials', 'ledger-tls'] },
      { kind: 'CronJob', namespace: 'payments', name: 'nightly-report', secrets: ['db-credentials'] },
      { kind: 'Deployment', namespace: 'payments', name: 'checkout', secrets: ['stripe-key'] },
    ],
  });

  it('names each consumer instead of restarting every Deployment', () => {
    const plan = planWith(input(FRONTEND, read(), new FakeInventory(base())));
    const [rotate] = ofKind(plan, 'rotate-credentials');
    expect(rotate?.title).toBe('Rotate the credential in secret payments/db-credentials');
    expect(rotate?.commands.slice(1)).toEqual([
      'kubectl -n payments rollout restart deployment/payments-api',
      'kubectl -n payments rollout restart statefulset/ledger',
    ]);
    expect(commands(plan)).not.toContain('kubectl -n payments rollout restart deployment');
    expect(commands(plan).join('\n')).not.toContain('checkout');
    expect(rotate?.rationale).toContain(
      'Deployment payments/payments-api, StatefulSet payments/ledger, CronJob payments/nightly-report mount it or read it from the environment',
    );
    expect(rotate?.rationale).toContain('CronJob payments/nightly-report picks the new value up on its next run');
  });

  it('restarts nothing when no workload uses it, and says a gone namespace took the secret with it', () => {
    const none = planWith(input(FRONTEND, read(), new FakeInventory({ ...base(), workloads: [], namespaces: ['payments'] })));
    const [rotate] = ofKind(none, 'rotate-credentials');
    expect(rotate?.commands).toHaveLength(1);
    expect(rotate?.rationale).toContain('no workload mounts it or reads it from the environment');
    const gone = planWith(input(FRONTEND, read(), new FakeInventory({ ...base(), workloads: [] })));
    expect(ofKind(gone, 'rotate-credentials')[0]).toMatchObject({
      commands: [],
      rationale: expect.stringContaining('no longer has namespace payments'),
    });
  });

  it('says a service account that is gone has no token left to revoke', () => {
    const c = base();
    c.serviceAccounts = [];
    c.pods = [];
    const plan = planWith(input(FRONTEND, read(), new FakeInventory(c)));
    const last = ofKind(plan, 'rotate-credentials').at(-1);
    expect(last).toMatchObject({ title: 'Service account frontend/frontend is already gone', commands: [] });
    expect(commands(plan).join('\n')).not.toContain('serviceaccount frontend');
  });

  it("after a stolen token, restarts the actor's workloads once the account is re-created", () => {
    const timeline = [
      entry('auth.token_misuse', { resource: 'pods', verb: 'list', namespace: 'frontend' }, { sourceIP: '203.0.113.7', userAgent: 'kubectl/v1.31.0' }),
      ...read(),
    ];
    const plan = planWith(input(FRONTEND, timeline, new FakeInventory(base())));
    const token = ofKind(plan, 'rotate-credentials').find((r) => r.title.startsWith('Rotate the tokens'));
    expect(token?.commands.slice(-3)).toEqual([
      'kubectl -n frontend delete serviceaccount frontend',
      'kubectl -n frontend create serviceaccount frontend',
      'kubectl -n frontend rollout restart deployment/frontend',
    ]);
  });
});

describe('removing a binding the cluster shows', () => {
  const READER = { actorPod: 'frontend/frontend-1', binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' };
  const theft = () => [
    entry('secret.list_cluster_wide', { resource: 'secrets', verb: 'list' }, READER),
    entry('secret.read_cross_namespace', { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' }, READER),
  ];
  const cluster = (subjects: BindingInfo['subjects']): FakeCluster => ({
    serviceAccounts: ['frontend/frontend', 'monitoring/scraper'],
    namespaces: ['payments'],
    pods: [
      { namespace: 'frontend', name: 'frontend-1', serviceAccount: 'frontend', workload: { kind: 'Deployment', namespace: 'frontend', name: 'frontend' } },
    ],
    roles: [
      {
        kind: 'ClusterRole',
        name: 'secret-reader',
        rules: [
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
        ],
      },
    ],
    bindings: [{ kind: 'ClusterRoleBinding', name: 'frontend-secrets-reader', roleRef: { kind: 'ClusterRole', name: 'secret-reader' }, subjects }],
  });
  const FRONT = { kind: 'ServiceAccount' as const, name: 'frontend', namespace: 'frontend' };
  const SCRAPER = { kind: 'ServiceAccount' as const, name: 'scraper', namespace: 'monitoring' };

  it('rewrites a shared binding without the actor instead of deleting it', () => {
    const plan = planWith(input(FRONTEND, theft(), new FakeInventory(cluster([FRONT, SCRAPER, { kind: 'User', name: 'alice@example.com' }]))));
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.title).toBe('Remove ServiceAccount frontend/frontend from ClusterRoleBinding frontend-secrets-reader');
    expect(remove?.commands).toEqual([
      'kubectl get clusterrolebinding frontend-secrets-reader -o wide',
      'kubectl get clusterrolebinding frontend-secrets-reader -o yaml > clusterrolebinding-frontend-secrets-reader.backup.yaml',
      `kubectl patch clusterrolebinding frontend-secrets-reader --type=json -p '[{"op":"test","path":"/subjects/0/kind","value":"ServiceAccount"},{"op":"test","path":"/subjects/0/name","value":"frontend"},{"op":"test","path":"/subjects/0/namespace","value":"frontend"},{"op":"remove","path":"/subjects/0"}]'`,
      'kubectl get clusterrolebinding frontend-secrets-reader -o wide',
    ]);
    expect(remove?.rationale).toContain('it refuses to run if the subjects have changed since the cluster was read');
    expect(commands(plan).some((c) => c.includes('delete clusterrolebinding'))).toBe(false);
    const [doc] = docsOf([remove!]);
    expect(doc).toEqual({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'frontend-secrets-reader', annotations: { 'kubevigil.io/incident': 'inc_inventory' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'secret-reader' },
      subjects: [
        { kind: 'ServiceAccount', name: 'scraper', namespace: 'monitoring' },
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice@example.com' },
      ],
    });
    expect(remove?.risk).toContain('ServiceAccount monitoring/scraper, User alice@example.com keep ClusterRole secret-reader');
  });

  it('falls back to applying the manifest when a subject name is not safe in a command', () => {
    const bob: Actor = { key: "user:bob'; id #", type: 'user', name: "bob'; id #" };
    const timeline = theft().map((e) => ({ ...e, actor: bob.key, attributes: { binding: READER.binding, role: READER.role } }));
    const plan = planWith(input(bob, timeline, new FakeInventory(cluster([{ kind: 'User', name: "bob'; id #" }, SCRAPER]))));
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.commands).toContain('kubectl apply -f clusterrolebinding-frontend-secrets-reader.without-actor.yaml');
    expect(commands(plan).join('\n')).not.toContain("'; id");
  });

  it('deletes a binding whose only subject is the actor, and says so', () => {
    const plan = planWith(input(FRONTEND, theft(), new FakeInventory(cluster([FRONT]))));
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.commands.at(-1)).toBe('kubectl delete clusterrolebinding frontend-secrets-reader');
    expect(remove?.rationale).toContain('shows ServiceAccount frontend/frontend as its only subject, so no one else loses ClusterRole secret-reader');
    expect(remove?.risk).not.toContain('cannot see the others');
  });

  it('says a binding is gone, or no longer binds the actor, and runs nothing', () => {
    const gone = planWith(input(FRONTEND, theft(), new FakeInventory({ ...cluster([FRONT]), bindings: [] })));
    expect(ofKind(gone, 'remove-binding')).toEqual([
      expect.objectContaining({ title: 'ClusterRoleBinding frontend-secrets-reader is already gone', commands: [], manifests: [] }),
    ]);
    const changed = planWith(input(FRONTEND, theft(), new FakeInventory(cluster([SCRAPER]))));
    expect(ofKind(changed, 'remove-binding')).toEqual([
      expect.objectContaining({ title: 'ClusterRoleBinding frontend-secrets-reader no longer binds Service account frontend/frontend', commands: [] }),
    ]);
  });

  it('proposes the least-privilege Role as a diff against the role the binding grants', () => {
    const usage = [
      use('get', 'configmaps', 'frontend'),
      use('list', 'configmaps', 'frontend'),
      use('get', 'services', 'frontend'),
      use('get', 'secrets', 'frontend'),
    ];
    const plan = planWith(input(FRONTEND, theft(), new FakeInventory(cluster([FRONT])), usage));
    const [lp] = ofKind(plan, 'least-privilege-role');
    expect(lp?.roleDiff).toEqual({
      kind: 'ClusterRole',
      name: 'secret-reader',
      rules: [
        { rule: { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }, stays: [], removed: 'the attack used it' },
        {
          rule: { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          stays: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
          removed: 'narrowed to what was used legitimately',
        },
        { rule: { apiGroups: [''], resources: ['pods'], verbs: ['list'] }, stays: [], removed: 'not used legitimately' },
      ],
    });
    // services: another binding grants them, and it stays; secrets: left out as ever.
    const role = docsOf([lp!]).find((d) => d.kind === 'Role');
    expect(role?.rules).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }]);
    expect(lp?.rationale).toContain(
      'Against ClusterRole secret-reader as the cluster has it (inventory): `secrets get,list` goes (the attack used it); `configmaps get,list,watch` becomes `configmaps get,list` (narrowed to what was used legitimately); `pods list` goes (not used legitimately).',
    );
    expect(lp?.rationale).toContain(
      '1 kind of request is left out because ClusterRole secret-reader does not grant it (cluster inventory): another binding does, and it stays.',
    );
  });
});

describe('removing a binding: whose subject is the identity that used it', () => {
  const BOB: Actor = { key: 'user:bob@example.com', type: 'user', name: 'bob@example.com' };
  const exec = (attributes: Record<string, string>, actor: string) => [
    entry('pod.exec', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, attributes, actor),
  ];
  const cluster = (binding: BindingInfo): FakeCluster => ({
    serviceAccounts: ['ci/deployer', 'ci/other'],
    pods: [{ namespace: 'payments', name: 'db-0', serviceAccount: 'db' }],
    roles: [{ kind: 'ClusterRole', name: 'pod-exec', rules: [{ apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] }] }],
    bindings: [binding],
  });

  it('with impersonation, removes the impersonated account from the binding, not the impersonator', () => {
    const binding: BindingInfo = {
      kind: 'RoleBinding',
      namespace: 'payments',
      name: 'deployer-exec',
      roleRef: { kind: 'ClusterRole', name: 'pod-exec' },
      subjects: [
        { kind: 'ServiceAccount', name: 'deployer', namespace: 'ci' },
        { kind: 'ServiceAccount', name: 'other', namespace: 'ci' },
      ],
    };
    const timeline = exec(
      { binding: 'RoleBinding/payments/deployer-exec', role: 'ClusterRole/pod-exec', impersonated: 'system:serviceaccount:ci:deployer' },
      BOB.key,
    );
    const plan = planWith(input(BOB, timeline, new FakeInventory(cluster(binding))));
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.title).toBe('Remove ServiceAccount ci/deployer from RoleBinding payments/deployer-exec');
    expect(remove?.rationale).toContain('withdrawing the impersonate permission from User bob@example.com is the narrower fix');
    const [doc] = docsOf([remove!]);
    expect(doc?.metadata.namespace).toBe('payments');
    expect(doc?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'other', namespace: 'ci' }]);
  });

  it('for a user the binding does not name, asks which group gives it the role before anything changes', () => {
    const binding: BindingInfo = {
      kind: 'ClusterRoleBinding',
      name: 'developers-exec',
      roleRef: { kind: 'ClusterRole', name: 'pod-exec' },
      subjects: [
        { kind: 'Group', name: 'developers' },
        { kind: 'User', name: 'carol@example.com' },
      ],
    };
    const plan = planWith(
      input(BOB, exec({ binding: 'ClusterRoleBinding/developers-exec', role: 'ClusterRole/pod-exec' }, BOB.key), new FakeInventory(cluster(binding))),
    );
    expect(ofKind(plan, 'remove-binding')).toEqual([
      expect.objectContaining({
        title: 'Check how User bob@example.com holds ClusterRoleBinding developers-exec',
        commands: ['kubectl get clusterrolebinding developers-exec -o wide'],
        manifests: [],
        rationale: expect.stringContaining('it binds Group developers, and User bob@example.com may be a member'),
      }),
    ]);
  });

  it('rewrites a binding the actor changed (added itself to) without it, keeping the others', () => {
    const ESC = { binding: 'ClusterRoleBinding/ops-admin', role: 'ClusterRole/cluster-admin' };
    const timeline = [
      entry('rbac.cluster_admin_binding', { resource: 'clusterrolebindings', apiGroup: rbac, name: 'ops-admin', verb: 'patch' }, {}, CI.key),
      entry('secret.read_cross_namespace', { namespace: 'kube-system', resource: 'secrets', name: 'etcd-client-certs', verb: 'get' }, ESC, CI.key),
    ];
    const inv = new FakeInventory({
      serviceAccounts: ['ci/ci-deployer'],
      namespaces: ['kube-system'],
      roles: [{ kind: 'ClusterRole', name: 'cluster-admin', rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] }],
      bindings: [
        {
          kind: 'ClusterRoleBinding',
          name: 'ops-admin',
          roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [
            { kind: 'Group', name: 'ops' },
            { kind: 'ServiceAccount', name: 'ci-deployer', namespace: 'ci' },
          ],
        },
      ],
    });
    const plan = planWith(input(CI, timeline, inv));
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.title).toBe('Remove ServiceAccount ci/ci-deployer from ClusterRoleBinding ops-admin');
    expect(remove?.rationale).toContain('changed ClusterRoleBinding ops-admin during the incident');
    expect(docsOf([remove!])[0]?.subjects).toEqual([{ apiGroup: rbac, kind: 'Group', name: 'ops' }]);
    expect(commands(plan)).not.toContain('kubectl delete clusterrolebinding ops-admin');
  });
});

describe('tightening the role behind an escalation, from its actual rules', () => {
  const ENABLER = { binding: 'ClusterRoleBinding/ci-rbac-manager', role: 'ClusterRole/rbac-manager' };
  const ESCALATION = { binding: 'ClusterRoleBinding/ci-debug', role: 'ClusterRole/cluster-admin' };
  const chain = () => [
    entry('rbac.cluster_admin_binding', { resource: 'clusterrolebindings', apiGroup: rbac, name: 'ci-debug', verb: 'create' }, ENABLER, CI.key),
    entry('secret.read_cross_namespace', { namespace: 'kube-system', resource: 'secrets', name: 'etcd-client-certs', verb: 'get' }, ESCALATION, CI.key),
  ];
  const cluster = (rules: FakeCluster['roles'] extends (infer R)[] | undefined ? (R extends { rules: infer X } ? X : never) : never): FakeCluster => ({
    serviceAccounts: ['ci/ci-deployer'],
    namespaces: ['kube-system'],
    roles: [
      { kind: 'ClusterRole', name: 'rbac-manager', rules },
      { kind: 'ClusterRole', name: 'cluster-admin', rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
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

  it('keeps the rules it needs, drops bind, and names every binding affected', () => {
    const inv = new FakeInventory(
      cluster([
        { apiGroups: [rbac], resources: ['clusterrolebindings', 'rolebindings'], verbs: ['get', 'list', 'create', 'update'] },
        { apiGroups: [rbac], resources: ['clusterroles'], verbs: ['bind', 'get'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
      ]),
    );
    const plan = planWith(input(CI, chain(), inv));
    // The binding the actor created is deleted (nothing legitimate depends on it); the enabler stays and its role is tightened.
    expect(ofKind(plan, 'remove-binding').map((r) => r.title)).toEqual(['Remove ClusterRoleBinding ci-debug']);
    expect(ofKind(plan, 'remove-binding')[0]?.commands.at(-1)).toBe('kubectl delete clusterrolebinding ci-debug');
    const [tighten] = ofKind(plan, 'tighten-role');
    expect(tighten?.roleDiff?.rules.map((d) => [d.stays, d.removed])).toEqual([
      [[{ apiGroups: [rbac], resources: ['clusterrolebindings', 'rolebindings'], verbs: ['get', 'list', 'create', 'update'] }], undefined],
      [[{ apiGroups: [rbac], resources: ['clusterroles'], verbs: ['get'] }], 'bind removed'],
      [[{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }], undefined],
    ]);
    const [role] = docsOf([tighten!]);
    expect(role).toMatchObject({ kind: 'ClusterRole', metadata: { name: 'rbac-manager' } });
    expect(JSON.stringify(role)).not.toContain('bind"');
    expect(tighten?.commands).toEqual([
      'kubectl get clusterrole rbac-manager -o yaml > clusterrole-rbac-manager.backup.yaml',
      'kubectl auth reconcile -f clusterrole-rbac-manager.tightened.yaml --remove-extra-permissions',
      'kubectl auth can-i bind clusterroles --as=system:serviceaccount:ci:ci-deployer',
      'kubectl auth can-i escalate clusterroles --as=system:serviceaccount:ci:ci-deployer',
    ]);
    expect(tighten?.risk).toContain(
      'Every subject bound to ClusterRole rbac-manager loses what goes: ClusterRoleBinding ci-rbac-manager (ServiceAccount ci/ci-deployer, ServiceAccount argocd/argocd-server).',
    );
  });

  it('spells out wildcards in the RBAC group, and drops wildcards elsewhere', () => {
    const inv = new FakeInventory(
      cluster([
        { apiGroups: [rbac], resources: ['*'], verbs: ['*'] },
        { apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list'] },
      ]),
    );
    const [tighten] = ofKind(planWith(input(CI, chain(), inv)), 'tighten-role');
    expect(tighten?.roleDiff?.rules).toEqual([
      {
        rule: { apiGroups: [rbac], resources: ['*'], verbs: ['*'] },
        stays: [
          {
            apiGroups: [rbac],
            resources: ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'],
            verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
          },
        ],
        removed: '`*` verbs spelled out without bind, escalate and impersonate; `*` resources spelled out',
      },
      {
        rule: { apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list'] },
        stays: [],
        removed: 'wildcard API groups or resources grant everything, bind and escalate included: name the resources needed instead',
      },
    ]);
    expect(JSON.stringify(docsOf([tighten!]))).not.toContain('"*"');
  });

  it('says when the role is gone or aggregated, with no destructive command', () => {
    const gone = new FakeInventory(cluster([]));
    gone.cluster.roles = gone.cluster.roles!.filter((r) => r.name !== 'rbac-manager');
    expect(ofKind(planWith(input(CI, chain(), gone)), 'tighten-role')).toEqual([
      expect.objectContaining({ title: 'ClusterRole rbac-manager is already gone', commands: [] }),
    ]);
    const aggregated = new FakeInventory(cluster([{ apiGroups: [rbac], resources: ['clusterroles'], verbs: ['bind'] }]));
    aggregated.cluster.roles![0]!.aggregated = true;
    const [t] = ofKind(planWith(input(CI, chain(), aggregated)), 'tighten-role');
    expect(t?.commands).toEqual([`kubectl get clusterrole rbac-manager -o jsonpath='{.aggregationRule}{"\\n"}'`]);
    expect(t?.manifests).toEqual([]);
  });
});

describe('mesh advice follows mesh evidence: the incident, or the cluster', () => {
  const read = (ns: string) => [
    entry(
      'secret.read_cross_namespace',
      { namespace: ns, resource: 'secrets', name: 'db-credentials', verb: 'get' },
      { binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' },
    ),
  ];

  it('shields a namespace the cluster shows in the mesh, and no other', () => {
    const inv = new FakeInventory({ serviceAccounts: ['frontend/frontend'], namespaces: ['payments', 'billing'], meshNamespaces: ['payments'] });
    const inMesh = planWith(input(FRONTEND, read('payments'), inv));
    expect(ofKind(inMesh, 'mesh-mtls-strict').map((r) => r.title)).toEqual(['Require mutual TLS in namespace payments']);
    expect(ofKind(inMesh, 'mesh-mtls-strict')[0]?.rationale).toContain('the cluster (inventory) shows payments is in the mesh');
    expect(ofKind(inMesh, 'mesh-authorization-policy').map((r) => r.title)).toEqual(['Deny frontend/frontend in namespace payments']);
    const outside = planWith(input(FRONTEND, read('billing'), inv));
    expect(ofKind(outside, 'mesh-mtls-strict')).toEqual([]);
    expect(ofKind(outside, 'mesh-authorization-policy')).toEqual([]);
    // Without the inventory, no mesh evidence in the incident: no mesh advice.
    expect(ofKind(planRemediations(input(FRONTEND, read('payments'), undefined)), 'mesh-mtls-strict')).toEqual([]);
  });

  it('drops a mesh namespace the cluster no longer has', () => {
    const timeline = [
      ...read('payments'),
      { ...entry('mtls.failed', { namespace: 'payments', name: 'db' }, {}, FRONTEND.key, 'denied'), source: 'loki' as const },
    ];
    const inv = new FakeInventory({ serviceAccounts: ['frontend/frontend'] });
    expect(ofKind(planWith(input(FRONTEND, timeline, inv)), 'mesh-mtls-strict')).toEqual([]);
  });
});

describe('which source a plan rests on', () => {
  const timeline = () => [
    entry(
      'secret.read_cross_namespace',
      { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' },
      { actorPod: 'frontend/frontend-1', binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' },
    ),
  ];

  it('without an inventory, is the audit data: the same commands as ever', () => {
    const plan = planRemediations(input(FRONTEND, timeline(), undefined));
    expect(plan.every((r) => r.basis === 'audit-data')).toBe(true);
    expect(commands(plan)).toContain('kubectl -n frontend delete pod frontend-1');
    expect(commands(plan)).toContain('kubectl -n payments rollout restart deployment');
    expect(commands(plan)).toContain('kubectl delete clusterrolebinding frontend-secrets-reader');
  });

  it('before the inventory has read the cluster, is the audit data, and says the names were not checked', () => {
    const t = timeline();
    const plain = planRemediations(input(FRONTEND, t, undefined));
    const pending = planRemediations(input(FRONTEND, t, new FakeInventory({ status: { synced: false, pending: [{ resource: 'pods' }] } })));
    expect(pending.map((r) => r.commands)).toEqual(plain.map((r) => r.commands));
    for (const r of pending) {
      expect(r.basis).toBe('audit-data');
      expect(r.rationale).toContain('Not checked against the cluster: its inventory has not finished reading it');
    }
  });
});
