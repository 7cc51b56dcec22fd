import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Remediation, RemediationKind, RootCause, TimelineEntry } from '../incident.js';
import type { SignalKind } from '../signal-kinds.js';
import type { Outcome, Target } from '../signal.js';
import { planRemediations, type PermissionUse, type PlanInput } from './planner.js';

const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);
const SEED_POD = { actorPod: 'frontend/frontend-7d9c-xk2p' };
const SEED_BINDING = { ...SEED_POD, binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' };

let seq = 0;
function entry(kind: SignalKind, outcome: Outcome, target: Target, attributes: Record<string, string> = {}, actor = 'sa:frontend/frontend'): TimelineEntry {
  seq += 1;
  return {
    signalId: `sig-${seq}`,
    time: T0 + seq * 1000,
    actor,
    source: 'k8s-audit',
    kind,
    severity: 'high',
    title: kind,
    outcome,
    ruleId: `rule-${kind}`,
    target,
    attributes,
  };
}

function incident(opts: {
  actor?: string;
  timeline: TimelineEntry[];
  rootCause?: Partial<RootCause>;
  entities?: string[];
  secrets?: string[];
}): PlanInput['incident'] {
  const actorKey = opts.actor ?? 'sa:frontend/frontend';
  const [ns = '', name = ''] = actorKey.slice(3).split('/');
  return {
    id: 'inc-1',
    title: 'Compromised workload',
    status: 'open',
    severity: 'critical',
    actor: { key: actorKey, type: 'serviceaccount', name: `system:serviceaccount:${ns}:${name}`, namespace: ns },
    entities: opts.entities ?? [actorKey],
    blastRadius: { namespaces: [], workloads: [], secrets: opts.secrets ?? [], bindings: [], policies: [] },
    firstSeen: T0,
    lastSeen: T0 + 60_000,
    createdAt: T0,
    updatedAt: T0,
    version: 1,
    timeline: opts.timeline,
    signalCount: opts.timeline.length,
    countsByKind: {},
    sources: ['k8s-audit'],
    correlations: [],
    rules: [],
    mitre: [],
    rootCause: { summary: 'test', evidence: [], confidence: 0.9, actor: actorKey, ...opts.rootCause },
    notes: [],
    maxSignalSeverity: 'critical',
  };
}

const use = (verb: string, resource: string, namespace?: string, apiGroup = ''): PermissionUse => ({
  verb,
  resource,
  apiGroup,
  count: 3,
  ...(namespace ? { namespace } : {}),
});

/** The seed attack: a compromised frontend pod reads payments' database credentials through an over-broad binding. */
function seed(): PlanInput {
  const timeline = [
    entry('secret.read_cross_namespace', 'allowed', { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' }, SEED_BINDING),
    entry('secret.read_cross_namespace', 'allowed', { namespace: 'payments', resource: 'secrets', name: 'db-credentials', verb: 'get' }, SEED_BINDING),
    entry('pod.exec', 'denied', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, SEED_POD),
    entry('rbac.escalation_attempt', 'denied', { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', verb: 'create' }, SEED_POD),
    entry(
      'pod.privileged',
      'denied',
      { namespace: 'frontend', resource: 'pods', verb: 'create' },
      { ...SEED_POD, admissionEngine: 'gatekeeper', admissionPolicies: 'privileged' },
    ),
    { ...entry('mtls.failed', 'denied', { namespace: 'payments', name: 'db' }), source: 'loki' as const },
    { ...entry('mtls.failed', 'denied', { namespace: 'payments', name: 'db' }), source: 'loki' as const },
  ];
  return {
    incident: incident({
      timeline,
      entities: [
        'sa:frontend/frontend',
        'pod:frontend/frontend-7d9c-xk2p',
        'pod:payments/db-0',
        'secret:payments/db-credentials',
        'ns:payments',
        'binding:ClusterRoleBinding/frontend-secrets-reader',
      ],
      secrets: ['secret:payments/db-credentials'],
      rootCause: { enablingBinding: { kind: 'ClusterRoleBinding', name: 'frontend-secrets-reader', roleKind: 'ClusterRole', roleName: 'secret-reader' } },
    }),
    usage: [
      use('get', 'configmaps', 'frontend'),
      use('list', 'configmaps', 'frontend'),
      use('get', 'services', 'frontend'),
      use('create', 'events', 'frontend'),
      use('get', 'secrets', 'frontend'),
    ],
  };
}

type Doc = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/** Every YAML document of every manifest, checked to parse cleanly and to carry the basic fields. */
function docsOf(plan: Remediation[]): Doc[] {
  return plan.flatMap((r) =>
    r.manifests.flatMap((m) =>
      parseAllDocuments(m).map((d) => {
        expect(d.errors, m).toEqual([]);
        const doc = d.toJS() as Doc;
        expect(typeof doc.apiVersion).toBe('string');
        expect(typeof doc.kind).toBe('string');
        expect(typeof doc.metadata?.name).toBe('string');
        return doc;
      }),
    ),
  );
}

const ofKind = (plan: Remediation[], kind: RemediationKind) => plan.filter((r) => r.kind === kind);
const kindsOf = (plan: Remediation[]) => [...new Set(plan.map((r) => r.kind))];
const commands = (plan: Remediation[]) => plan.flatMap((r) => r.commands);
const docsByKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);

/** Kind-specific required fields of each manifest kubevigil emits. */
function expectValid(doc: Doc): void {
  const spec = doc.spec as Record<string, unknown> | undefined;
  switch (doc.kind) {
    case 'NetworkPolicy':
      expect(spec?.podSelector).toEqual({ matchLabels: { 'kubevigil.io/quarantine': 'true' } });
      expect(spec?.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(spec).not.toHaveProperty('ingress');
      expect(spec).not.toHaveProperty('egress');
      break;
    case 'Role':
    case 'ClusterRole': {
      const rules = doc.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      expect(rules.length).toBeGreaterThan(0);
      for (const r of rules) for (const k of ['apiGroups', 'resources', 'verbs'] as const) expect(r[k].length).toBeGreaterThan(0);
      break;
    }
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      expect(doc.roleRef).toMatchObject({ apiGroup: 'rbac.authorization.k8s.io', kind: doc.kind.replace('Binding', ''), name: expect.any(String) });
      expect((doc.subjects as unknown[]).length).toBeGreaterThan(0);
      break;
    case 'PeerAuthentication':
      expect(spec?.mtls).toEqual({ mode: 'STRICT' });
      break;
    case 'AuthorizationPolicy':
      expect(spec?.action).toBe('DENY');
      expect(JSON.stringify(spec?.rules)).toContain('cluster.local/ns/');
      break;
    case 'ClusterPolicy':
      expect(spec?.validationFailureAction).toBe('Enforce');
      for (const r of spec?.rules as { validate?: { pattern?: unknown } }[]) expect(r.validate?.pattern).toBeDefined();
      break;
    default:
      expect(doc.apiVersion).toBe('constraints.gatekeeper.sh/v1beta1');
      expect(spec?.match).toMatchObject({ kinds: [{ apiGroups: [''], kinds: ['Pod'] }], excludedNamespaces: ['kube-system'] });
  }
}

describe('planRemediations: the seed attack', () => {
  const plan = planRemediations(seed());
  const docs = docsOf(plan);

  it('orders the plan: contain, remove access, harden', () => {
    expect(kindsOf(plan)).toEqual([
      'isolate-workload',
      'mesh-mtls-strict',
      'mesh-authorization-policy',
      'remove-binding',
      'least-privilege-role',
      'delete-workload',
      'rotate-credentials',
      'admission-policy',
    ]);
    for (const r of plan) {
      expect(r.title.length).toBeGreaterThan(0);
      expect(r.rationale.length).toBeGreaterThan(0);
      expect(r.risk.length).toBeGreaterThan(0);
    }
  });

  it('emits only manifests that parse and carry their required fields', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['AuthorizationPolicy', 'NetworkPolicy', 'PeerAuthentication', 'Role', 'RoleBinding']);
    docs.forEach(expectValid);
  });

  it('quarantines the pod the audit events name', () => {
    const [isolate] = ofKind(plan, 'isolate-workload');
    expect(isolate?.commands).toContain('kubectl -n frontend label pod frontend-7d9c-xk2p kubevigil.io/quarantine=true --overwrite');
    expect(docsByKind(docs, 'NetworkPolicy')[0]?.metadata.namespace).toBe('frontend');
    expect(commands(ofKind(plan, 'delete-workload'))).toContain('kubectl -n frontend delete pod frontend-7d9c-xk2p');
  });

  it('backs up and deletes the enabling ClusterRoleBinding', () => {
    const [remove] = ofKind(plan, 'remove-binding');
    expect(remove?.commands).toEqual([
      'kubectl get clusterrolebinding frontend-secrets-reader -o wide',
      'kubectl get clusterrolebinding frontend-secrets-reader -o yaml > clusterrolebinding-frontend-secrets-reader.backup.yaml',
      'kubectl delete clusterrolebinding frontend-secrets-reader',
    ]);
    expect(remove?.rationale).toContain('2 requests');
  });

  it('replaces it with exactly the permissions used legitimately, without secrets', () => {
    const [role] = docsByKind(docs, 'Role');
    expect(role?.metadata).toMatchObject({ name: 'kubevigil-least-privilege-frontend', namespace: 'frontend' });
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['services'], verbs: ['get'] },
    ]);
    const [binding] = docsByKind(docs, 'RoleBinding');
    expect(binding?.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubevigil-least-privilege-frontend' });
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: 'frontend', namespace: 'frontend' }]);
    const [lp] = ofKind(plan, 'least-privilege-role');
    expect(lp?.commands).toContain('kubectl auth can-i --list --as=system:serviceaccount:frontend:frontend -n frontend');
    expect(lp?.rationale).toContain('secrets are left out');
  });

  it('shields the database namespace in the mesh', () => {
    expect(docsByKind(docs, 'PeerAuthentication').map((d) => d.metadata.namespace)).toEqual(['payments']);
    const [deny] = docsByKind(docs, 'AuthorizationPolicy');
    expect(deny?.metadata.namespace).toBe('payments');
    expect(deny?.spec).toEqual({ action: 'DENY', rules: [{ from: [{ source: { principals: ['cluster.local/ns/frontend/sa/frontend'] } }] }] });
  });

  it('rotates the stolen database credentials and revokes the actor token', () => {
    const rotate = ofKind(plan, 'rotate-credentials');
    expect(rotate.map((r) => r.title)).toEqual([
      'Rotate the credential in secret payments/db-credentials',
      'Revoke the tokens of service account frontend/frontend',
    ]);
    expect(rotate[0]?.commands).toContain('kubectl -n payments rollout restart deployment');
    expect(rotate[0]?.rationale).toContain('at its source');
    expect(rotate[1]?.commands).toContain('kubectl -n frontend get secrets --field-selector type=kubernetes.io/service-account-token');
  });

  it('proposes only Pod Security labels when the Gatekeeper policy held', () => {
    const admission = ofKind(plan, 'admission-policy');
    expect(admission).toHaveLength(1);
    expect(admission[0]?.manifests).toEqual([]);
    expect(admission[0]?.rationale).toContain('the existing Gatekeeper constraint "privileged" held');
    expect(admission[0]?.commands).toContain(
      'kubectl label namespace frontend pod-security.kubernetes.io/enforce=baseline pod-security.kubernetes.io/warn=restricted --overwrite',
    );
  });
});

describe('planRemediations: other scenarios', () => {
  it('proposes Gatekeeper and Kyverno policies for an admitted privileged pod, and handles a RoleBinding', () => {
    const pod = { actorPod: 'shop/cart-5f6b-abcde' };
    const plan = planRemediations({
      incident: incident({
        actor: 'sa:shop/cart',
        timeline: [
          entry(
            'pod.privileged',
            'allowed',
            { namespace: 'shop', resource: 'pods', name: 'debugger', verb: 'create' },
            { ...pod, binding: 'RoleBinding/shop/cart-admin', role: 'ClusterRole/admin' },
            'sa:shop/cart',
          ),
          entry('pod.hostpath', 'allowed', { namespace: 'shop', resource: 'pods', name: 'debugger', verb: 'create' }, pod, 'sa:shop/cart'),
        ],
        rootCause: { enablingBinding: { kind: 'RoleBinding', name: 'cart-admin', namespace: 'shop', roleKind: 'ClusterRole', roleName: 'admin' } },
      }),
      usage: [use('get', 'pods', 'shop'), use('list', 'nodes')],
    });
    const docs = docsOf(plan);
    docs.forEach(expectValid);
    expect(commands(ofKind(plan, 'remove-binding'))).toContain('kubectl -n shop delete rolebinding cart-admin');

    const admission = ofKind(plan, 'admission-policy');
    expect(admission.map((r) => r.title)).toEqual([
      'Gatekeeper: deny privileged containers, hostPath volumes',
      'Kyverno: deny privileged containers, hostPath volumes',
      'Pod Security Admission: enforce baseline in shop',
    ]);
    expect(docs.filter((d) => d.apiVersion === 'constraints.gatekeeper.sh/v1beta1').map((d) => d.kind)).toEqual([
      'K8sPSPPrivilegedContainer',
      'K8sPSPHostFilesystem',
    ]);
    expect(admission[0]?.commands).toContain('kubectl get constrainttemplate k8spspprivilegedcontainer');
    const [kyverno] = docsByKind(docs, 'ClusterPolicy');
    expect(kyverno?.apiVersion).toBe('kyverno.io/v1');
    const rules = (kyverno?.spec as { rules: { name: string; validate: { pattern: unknown } }[] }).rules;
    expect(rules.map((r) => r.name)).toEqual(['disallow-privileged-containers', 'disallow-host-path']);
    const notPrivileged = [{ '=(securityContext)': { '=(privileged)': 'false' } }];
    expect(rules[0]?.validate.pattern).toEqual({
      spec: { '=(ephemeralContainers)': notPrivileged, '=(initContainers)': notPrivileged, containers: notPrivileged },
    });

    // Cluster-scoped usage becomes a ClusterRole bound cluster-wide.
    expect(docsByKind(docs, 'ClusterRole')[0]).toMatchObject({
      metadata: { name: 'kubevigil-least-privilege-shop-cart' },
      rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }],
    });
    expect(docsByKind(docs, 'ClusterRoleBinding')[0]?.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'kubevigil-least-privilege-shop-cart',
    });
    // No mesh evidence, no secrets read: no mesh suggestions.
    expect(kindsOf(plan)).not.toContain('mesh-mtls-strict');
  });

  it('says the identity had no legitimate use instead of proposing an empty Role', () => {
    const input = seed();
    const plan = planRemediations({ ...input, usage: [] });
    expect(ofKind(plan, 'least-privilege-role')).toEqual([]);
    expect(ofKind(plan, 'remove-binding')[0]?.rationale).toContain('no legitimate API use');
  });

  it('never puts a name with shell metacharacters in a command or manifest', () => {
    const evil = 'x;rm -rf /';
    const plan = planRemediations({
      incident: incident({
        timeline: [
          entry(
            'secret.read_cross_namespace',
            'allowed',
            { namespace: 'payments', resource: 'secrets', name: evil, verb: 'get' },
            { actorPod: `frontend/${evil}` },
          ),
          entry('secret.read', 'allowed', { namespace: `p$(reboot)`, resource: 'secrets', name: 'db', verb: 'get' }, { actorPod: `frontend/${evil}` }),
          entry('pod.privileged', 'allowed', { namespace: 'a`id`', resource: 'pods', verb: 'create' }),
          entry('mtls.failed', 'denied', { namespace: 'pay ments' }),
        ],
        rootCause: { enablingBinding: { kind: 'ClusterRoleBinding', name: evil, roleKind: 'ClusterRole', roleName: 'secret-reader' } },
      }),
      usage: [use('get', 'configmaps', 'frontend;id'), use('get', 'configmaps', 'frontend')],
    });
    docsOf(plan).forEach(expectValid);
    const text = JSON.stringify([...commands(plan), ...plan.flatMap((r) => r.manifests)]);
    for (const bad of ['rm -rf', ';', '$(', '`', 'pay ments']) expect(text).not.toContain(bad);
    // Each rejected name is reported instead of acted on.
    expect(ofKind(plan, 'remove-binding')).toEqual([expect.objectContaining({ commands: [], rationale: expect.stringContaining('"x;rm -rf /"') })]);
    expect(ofKind(plan, 'isolate-workload')[0]?.commands).toEqual([]);
    expect(ofKind(plan, 'least-privilege-role')[0]?.rationale).toContain('frontend;id');
    expect(ofKind(plan, 'rotate-credentials')[0]?.rationale).toContain('p$(reboot)/db');
  });

  it('proposes no binding removal or isolation without a binding or a pod', () => {
    const plan = planRemediations({
      incident: incident({
        actor: 'sa:ci/deployer',
        timeline: [entry('rbac.denied', 'denied', { namespace: 'payments', resource: 'secrets', verb: 'list' }, {}, 'sa:ci/deployer')],
        entities: ['sa:ci/deployer', 'ns:payments'],
      }),
      usage: [],
    });
    expect(kindsOf(plan)).not.toContain('remove-binding');
    expect(kindsOf(plan)).not.toContain('isolate-workload');
    expect(kindsOf(plan)).not.toContain('delete-workload');
    expect(kindsOf(plan)).toEqual(['rotate-credentials']);
  });

  it('infers the pod from the pod entities of the actor namespace it did not act on', () => {
    const plan = planRemediations({
      incident: incident({
        timeline: [entry('pod.exec', 'allowed', { namespace: 'frontend', resource: 'pods', subresource: 'exec', name: 'frontend-other', verb: 'create' })],
        entities: ['sa:frontend/frontend', 'pod:frontend/frontend-abc', 'pod:frontend/frontend-other', 'pod:payments/db-0'],
      }),
      usage: [],
    });
    const [isolate] = ofKind(plan, 'isolate-workload');
    expect(isolate?.title).toBe('Isolate pod frontend/frontend-abc');
    expect(isolate?.commands[0]).toBe(`kubectl -n frontend get pod frontend-abc -o jsonpath='{.spec.serviceAccountName}{"\\n"}'`);
  });

  it('treats a cluster-wide secret list as exposing every secret', () => {
    const plan = planRemediations({
      incident: incident({ timeline: [entry('secret.list_cluster_wide', 'allowed', { resource: 'secrets', verb: 'list' }, SEED_POD)] }),
      usage: [],
    });
    const [first] = ofKind(plan, 'rotate-credentials');
    expect(first?.title).toBe('Treat every secret in the cluster as exposed');
    expect(first?.commands).toContain('kubectl get secrets -A --field-selector type!=kubernetes.io/service-account-token');
  });
});
