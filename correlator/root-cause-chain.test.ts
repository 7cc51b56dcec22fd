/**
 * An attack chain: a CI service account, allowed by ClusterRoleBinding ci-rbac-manager (ClusterRole
 * rbac-manager), creates ClusterRoleBinding ci-debug to cluster-admin, then execs into etcd and
 * reads kube-system's secrets through it, its token used from outside the cluster with kubectl.
 * The root cause names the enabler, then the escalation, and where the token was used from; the
 * plan removes ci-debug, tightens rbac-manager and rotates the account's tokens.
 */
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CorrelationEngine } from './correlation/engine.js';
import type { Actor } from './entities.js';
import type { Incident, Remediation } from './incident.js';
import { IncidentManager } from './incidents.js';
import type { SignalKind } from './signal-kinds.js';
import type { Outcome, Signal, Target } from './signal.js';
import type { Severity } from './severity.js';

const T0 = Date.UTC(2026, 10, 29, 3, 0, 0);
const CI: Actor = { key: 'sa:ci/ci-deployer', type: 'serviceaccount', name: 'system:serviceaccount:ci:ci-deployer', namespace: 'ci' };
const ENABLER = { binding: 'ClusterRoleBinding/ci-rbac-manager', role: 'ClusterRole/rbac-manager' };
const ESCALATION = { binding: 'ClusterRoleBinding/ci-debug', role: 'ClusterRole/cluster-admin' };
const OUTSIDE = { sourceIPs: ['203.0.113.7'], userAgent: 'kubectl/v1.31.0 (linux/amd64) kubernetes/9f6f4e4' };

let n = 0;
function signal(
  kind: SignalKind,
  severity: Severity,
  target: Target,
  attributes: Record<string, string> = {},
  opts: { outcome?: Outcome; excerpt?: Record<string, unknown>; actor?: Actor; entities?: string[]; title?: string } = {},
): Signal {
  n += 1;
  return {
    id: `chain-${n}`,
    source: 'k8s-audit',
    kind,
    severity,
    title: opts.title ?? `${kind} ${target.name ?? ''}`.trim(),
    eventTime: T0 + n * 10_000,
    observedTime: T0 + n * 10_000,
    actor: opts.actor ?? CI,
    target,
    outcome: opts.outcome ?? 'allowed',
    entities: opts.entities ?? (attributes.binding ? [`binding:${attributes.binding}`] : []),
    mitre: [],
    rule: { id: `rule-${kind}`, title: kind },
    matched: [],
    attributes,
    excerpt: opts.excerpt ?? {},
  };
}

const rbac = 'rbac.authorization.k8s.io';

/** The chain as audit signals, in order. */
function chain(enabler: Record<string, string> = ENABLER): Signal[] {
  return [
    signal(
      'auth.token_misuse',
      'high',
      { resource: 'selfsubjectrulesreviews', apiGroup: 'authorization.k8s.io', verb: 'create' },
      {},
      { excerpt: { ...OUTSIDE, requestURI: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews' } },
    ),
    signal('rbac.cluster_admin_binding', 'critical', { resource: 'clusterrolebindings', apiGroup: rbac, name: 'ci-debug', verb: 'create' }, enabler, {
      excerpt: OUTSIDE,
    }),
    signal('pod.exec', 'high', { namespace: 'kube-system', resource: 'pods', subresource: 'exec', name: 'etcd-control-plane', verb: 'create' }, ESCALATION, {
      entities: ['binding:ClusterRoleBinding/ci-debug', 'pod:kube-system/etcd-control-plane', 'ns:kube-system'],
    }),
    signal('secret.list', 'high', { namespace: 'kube-system', resource: 'secrets', verb: 'list' }, ESCALATION),
    signal('secret.read_cross_namespace', 'high', { namespace: 'kube-system', resource: 'secrets', name: 'etcd-client-certs', verb: 'get' }, ESCALATION, {
      entities: ['binding:ClusterRoleBinding/ci-debug', 'secret:kube-system/etcd-client-certs', 'ns:kube-system'],
    }),
  ];
}

function incidentOf(signals: Signal[]): Incident {
  const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 + 3_600_000 });
  const out = m.process(signals).incidents;
  expect(out).toHaveLength(1);
  return out[0]!;
}

const ofKind = (plan: Remediation[], kind: string) => plan.filter((r) => r.kind === kind);

describe('root cause as a chain: a binding created with one binding and used', () => {
  const inc = incidentOf(chain());
  const rc = inc.rootCause;

  it('names the enabler, then the escalation, with their roles', () => {
    expect(rc.enablingBinding).toEqual({ kind: 'ClusterRoleBinding', name: 'ci-rbac-manager', roleKind: 'ClusterRole', roleName: 'rbac-manager' });
    expect(rc.escalation).toEqual({ kind: 'ClusterRoleBinding', name: 'ci-debug', roleKind: 'ClusterRole', roleName: 'cluster-admin' });
    const enablerAt = rc.summary.indexOf('ClusterRoleBinding ci-rbac-manager');
    const escalationAt = rc.summary.indexOf('ClusterRoleBinding ci-debug');
    expect(enablerAt).toBeGreaterThan(0);
    expect(escalationAt).toBeGreaterThan(enablerAt);
    expect(rc.summary).toContain('ClusterRole rbac-manager');
    expect(rc.summary).toContain('ClusterRoleBinding ci-debug (cluster-wide, ClusterRole cluster-admin)');
    expect(rc.summary).toContain('through it');
    expect(rc.summary).toContain('exec into pods');
    expect(rc.summary).toContain('read secrets in kube-system');
    expect(rc.summary).toMatch(/^Service account ci\/ci-deployer /);
    const types = rc.evidence.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['actor', 'credential', 'enabler', 'escalation']));
    expect(rc.evidence.find((e) => e.type === 'enabler')?.entity).toBe('binding:ClusterRoleBinding/ci-rbac-manager');
    expect(rc.evidence.find((e) => e.type === 'escalation')?.entity).toBe('binding:ClusterRoleBinding/ci-debug');
    expect(rc.confidence).toBeGreaterThanOrEqual(0.9);
  });

  it('says where the token was used from', () => {
    expect(rc.credentialSource).toEqual({ detail: 'token used from 203.0.113.7 with kubectl/v1.31.0', sourceIP: '203.0.113.7', userAgent: 'kubectl/v1.31.0' });
    expect(rc.summary).toContain('(token used from 203.0.113.7 with kubectl/v1.31.0)');
    // The timeline keeps what root cause read from the excerpt.
    expect(inc.timeline[0]!.attributes).toMatchObject({ sourceIP: '203.0.113.7', userAgent: OUTSIDE.userAgent });
  });

  it('removes the created binding, not the enabler, and tightens the role that allowed it', () => {
    const plan = inc.remediations;
    const kinds = [...new Set(plan.map((r) => r.kind))];
    expect(kinds.indexOf('remove-binding')).toBeLessThan(kinds.indexOf('tighten-role'));
    const commands = plan.flatMap((r) => r.commands);
    expect(ofKind(plan, 'remove-binding').map((r) => r.title)).toEqual(['Remove ClusterRoleBinding ci-debug']);
    expect(commands).toContain('kubectl delete clusterrolebinding ci-debug');
    expect(commands.some((c) => c.includes('delete clusterrolebinding ci-rbac-manager'))).toBe(false);

    const [tighten] = ofKind(plan, 'tighten-role');
    expect(tighten?.title).toBe('Tighten ClusterRole rbac-manager: no bind, escalate or wildcards');
    expect(tighten?.commands).toEqual([
      'kubectl get clusterrole rbac-manager -o yaml > clusterrole-rbac-manager.backup.yaml',
      `kubectl get clusterrole rbac-manager -o jsonpath='{.aggregationRule}{"\\n"}{range .rules[*]}{.apiGroups} {.resources} {.resourceNames} {.verbs}{"\\n"}{end}'`,
      'kubectl get clusterrolebindings,rolebindings -A -o wide | grep -wF ClusterRole/rbac-manager',
      'kubectl auth reconcile -f clusterrole-rbac-manager.tightened.yaml --remove-extra-permissions',
      'kubectl auth can-i bind clusterroles --as=system:serviceaccount:ci:ci-deployer',
      'kubectl auth can-i escalate clusterroles --as=system:serviceaccount:ci:ci-deployer',
    ]);
    const docs = tighten!.manifests.flatMap((m) => parseAllDocuments(m).map((d) => d.toJS() as Record<string, unknown>));
    expect(docs).toHaveLength(1);
    const role = docs[0] as {
      kind: string;
      metadata: { name: string; namespace?: string };
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    expect(role.kind).toBe('ClusterRole');
    expect(role.metadata.name).toBe('rbac-manager');
    expect(role.metadata.namespace).toBeUndefined();
    expect(role.rules.length).toBeGreaterThan(0);
    for (const r of role.rules) {
      for (const v of ['bind', 'escalate', 'impersonate', '*']) expect(r.verbs).not.toContain(v);
      expect(r.resources).not.toContain('*');
      expect(r.apiGroups).not.toContain('*');
    }
    expect(role.rules).toContainEqual(expect.objectContaining({ resources: ['rolebindings', 'clusterrolebindings'] }));
    // The enabler stays (tightened): no replacement role for it.
    expect(ofKind(plan, 'least-privilege-role')).toEqual([]);
  });

  it("rotates the service account's tokens and the secrets it read", () => {
    const rotate = ofKind(inc.remediations, 'rotate-credentials');
    expect(rotate.map((r) => r.title)).toEqual([
      'Treat every secret in namespace kube-system as exposed',
      'Rotate the credential in secret kube-system/etcd-client-certs',
      'Rotate the tokens of service account ci/ci-deployer',
    ]);
    const token = rotate.at(-1)!;
    expect(token.rationale).toContain('token used from 203.0.113.7 with kubectl/v1.31.0');
    expect(token.commands).toEqual([
      'kubectl -n ci get pods --field-selector spec.serviceAccountName=ci-deployer',
      'kubectl -n ci get secrets --field-selector type=kubernetes.io/service-account-token',
      'kubectl -n ci get serviceaccount ci-deployer -o yaml > serviceaccount-ci-ci-deployer.backup.yaml',
      'kubectl -n ci delete serviceaccount ci-deployer',
      'kubectl -n ci create serviceaccount ci-deployer',
    ]);
  });

  it('proposes no mesh policy and no pod quarantine: no mesh evidence and no pod of the actor', () => {
    const kinds = inc.remediations.map((r) => r.kind);
    for (const k of ['mesh-mtls-strict', 'mesh-authorization-policy', 'isolate-workload', 'delete-workload']) expect(kinds).not.toContain(k);
  });

  it('titles the incident after the actor', () => {
    expect(inc.title.startsWith('Service account ci/ci-deployer: ')).toBe(true);
  });
});

describe('root cause as a chain: variants', () => {
  it('removes the enabler too when its role is built in and cannot be rewritten', () => {
    const inc = incidentOf(chain({ binding: 'ClusterRoleBinding/ci-admin', role: 'ClusterRole/cluster-admin' }));
    expect(inc.rootCause.enablingBinding).toMatchObject({ name: 'ci-admin', roleName: 'cluster-admin' });
    expect(ofKind(inc.remediations, 'remove-binding').map((r) => r.title)).toEqual([
      'Remove ClusterRoleBinding ci-debug',
      'Remove ClusterRoleBinding ci-admin',
    ]);
    expect(ofKind(inc.remediations, 'tighten-role')).toEqual([]);
  });

  it('says so when the audit data does not name what allowed the write, and names no other enabler', () => {
    const inc = incidentOf(chain({}));
    expect(inc.rootCause.enablingBinding).toBeUndefined();
    expect(inc.rootCause.escalation).toMatchObject({ name: 'ci-debug' });
    expect(inc.rootCause.evidence.find((e) => e.type === 'escalation')?.detail).toContain('the audit data does not name the binding that allowed it');
    expect(ofKind(inc.remediations, 'remove-binding').map((r) => r.title)).toEqual(['Remove ClusterRoleBinding ci-debug']);
  });

  it('follows a RoleBinding patched in a namespace and used there', () => {
    const deployer = { binding: 'RoleBinding/shop/deployer', role: 'Role/binding-manager' };
    const inc = incidentOf([
      signal('rbac.binding_change', 'medium', { namespace: 'shop', resource: 'rolebindings', apiGroup: rbac, name: 'viewers', verb: 'patch' }, deployer),
      signal(
        'secret.read',
        'high',
        { namespace: 'shop', resource: 'secrets', name: 'stripe', verb: 'get' },
        { binding: 'RoleBinding/shop/viewers', role: 'ClusterRole/admin' },
      ),
    ]);
    expect(inc.rootCause.enablingBinding).toEqual({ kind: 'RoleBinding', namespace: 'shop', name: 'deployer', roleKind: 'Role', roleName: 'binding-manager' });
    expect(inc.rootCause.escalation).toEqual({ kind: 'RoleBinding', namespace: 'shop', name: 'viewers', roleKind: 'ClusterRole', roleName: 'admin' });
    expect(inc.rootCause.summary).toContain('changed RoleBinding viewers in namespace shop');
    expect(inc.remediations.flatMap((r) => r.commands)).toContain('kubectl -n shop delete rolebinding viewers');
    const [tighten] = ofKind(inc.remediations, 'tighten-role');
    expect(tighten?.commands).toContain('kubectl -n shop get role binding-manager -o yaml > role-shop-binding-manager.backup.yaml');
    expect(tighten?.manifests[0]).toContain('namespace: shop');
    expect(ofKind(inc.remediations, 'remove-binding')[0]?.risk).toContain('existed before the incident');
  });

  it('counts a write, and a request, once however many rules flag them', () => {
    const [misuse, create, exec, list, read] = chain();
    const again = (s: Signal, kind: SignalKind): Signal => ({ ...s, id: `${s.id}-${kind}`, kind });
    const inc = incidentOf([misuse!, create!, again(create!, 'rbac.escalation_attempt'), exec!, again(exec!, 'auth.token_misuse'), list!, read!]);
    expect(inc.rootCause.summary).not.toContain('it also');
    expect(inc.rootCause.summary).not.toContain('RBAC escalation');
    const remove = inc.remediations.find((r) => r.kind === 'remove-binding');
    expect(remove?.rationale).toContain('allowed 3 requests of the incident');
    expect(inc.rootCause.evidence.find((e) => e.type === 'escalation')?.detail).toContain('allowed 3 later requests through it');
  });

  it('reads the credential source from attributes when the excerpt is gone (distributed correlator)', () => {
    const signals = chain().map((s, i) =>
      i === 0 ? { ...s, excerpt: {}, attributes: { ...s.attributes, sourceIP: '198.51.100.9', userAgent: 'curl/8.5.0' } } : { ...s, excerpt: {} },
    );
    const inc = incidentOf(signals);
    expect(inc.rootCause.credentialSource).toEqual({
      detail: 'token used from 198.51.100.9 with curl/8.5.0',
      sourceIP: '198.51.100.9',
      userAgent: 'curl/8.5.0',
    });
  });

  it('is no chain when the binding write was denied: the usual enabler stands', () => {
    const inc = incidentOf([
      signal(
        'rbac.escalation_attempt',
        'high',
        { resource: 'clusterrolebindings', apiGroup: rbac, name: 'ci-debug', verb: 'create' },
        {},
        { outcome: 'denied' },
      ),
      signal('secret.read_cross_namespace', 'high', { namespace: 'kube-system', resource: 'secrets', name: 'x', verb: 'get' }, ENABLER),
    ]);
    expect(inc.rootCause.escalation).toBeUndefined();
    expect(inc.rootCause.enablingBinding).toMatchObject({ name: 'ci-rbac-manager' });
    expect(inc.rootCause.summary).toContain('through ClusterRoleBinding ci-rbac-manager (ClusterRole rbac-manager)');
    expect(ofKind(inc.remediations, 'tighten-role')).toEqual([]);
  });
});
