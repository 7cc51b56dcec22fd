/**
 * The seed attack path as the audit events a real kube-apiserver would write, with every name a
 * parameter so that tests can run the same attack under other names:
 *
 * a compromised frontend pod's service account enumerates its permissions, lists secrets
 * cluster-wide through an over-broad ClusterRoleBinding, reads the database credentials in
 * `payments`, is denied exec into the database pod and an escalation ClusterRoleBinding, and has a
 * privileged pod denied by OPA Gatekeeper.
 */
import type { AuditEvent } from './parse.js';
import { rng } from './synth.js';

/** The names of one run of the attack. */
export interface AttackScenario {
  namespace: string;
  serviceAccount: string;
  pod: string;
  node: string;
  podIP: string;
  /** The over-broad ClusterRoleBinding and its ClusterRole. */
  binding: string;
  clusterRole: string;
  /** The RoleBinding that legitimately lets the workload manage pods in its own namespace. */
  ownBinding: string;
  targetNamespace: string;
  secrets: string[];
  targetPod: string;
  constraint: string;
  start: number;
}

/** The names the README and `kubevigil demo` use. */
export const SEED_SCENARIO: AttackScenario = {
  namespace: 'frontend',
  serviceAccount: 'frontend',
  pod: 'frontend-7d9c4b5f6-xk2pq',
  node: 'node-a1',
  podIP: '10.0.3.17',
  binding: 'frontend-secrets-reader',
  clusterRole: 'secret-reader',
  ownBinding: 'frontend-deployer',
  targetNamespace: 'payments',
  secrets: ['db-credentials', 'stripe-api-key'],
  targetPod: 'postgres-0',
  constraint: 'psp-privileged-container',
  start: Date.UTC(2026, 10, 29, 3, 12, 0),
};

/** The attack's audit events, in time order, as the log backend would write them (ResponseComplete). */
export function attackEvents(s: AttackScenario = SEED_SCENARIO, seed = 7): AuditEvent[] {
  const r = rng(seed);
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');
  const username = `system:serviceaccount:${s.namespace}:${s.serviceAccount}`;
  const user = {
    username,
    uid: `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${s.namespace}`, 'system:authenticated'],
    extra: {
      'authentication.kubernetes.io/credential-id': [`JTI=${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`],
      'authentication.kubernetes.io/node-name': [s.node],
      'authentication.kubernetes.io/node-uid': [`${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`],
      'authentication.kubernetes.io/pod-name': [s.pod],
      'authentication.kubernetes.io/pod-uid': [`${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`],
    },
  };
  const viaBinding = `RBAC: allowed by ClusterRoleBinding "${s.binding}" of ClusterRole "${s.clusterRole}" to ServiceAccount "${s.serviceAccount}/${s.namespace}"`;
  const viaOwn = `RBAC: allowed by RoleBinding "${s.ownBinding}/${s.namespace}" of Role "${s.ownBinding}" to ServiceAccount "${s.serviceAccount}/${s.namespace}"`;
  const ts = (offsetMs: number) => new Date(s.start + offsetMs).toISOString().replace(/\.(\d{3})Z$/, '.$1123Z');
  const ev = (offsetMs: number, e: Partial<AuditEvent> & Pick<AuditEvent, 'verb' | 'requestURI'>): AuditEvent => ({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`,
    stage: 'ResponseComplete',
    user,
    sourceIPs: [s.podIP],
    userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/39683505',
    requestReceivedTimestamp: ts(offsetMs - 3),
    stageTimestamp: ts(offsetMs),
    ...e,
  });
  const forbidden = (verb: string, what: string, where: string) => ({
    responseStatus: {
      metadata: {},
      status: 'Failure',
      message: `${what} is forbidden: User "${username}" cannot ${verb} ${where}`,
      reason: 'Forbidden',
      details: {},
      code: 403,
    },
    annotations: { 'authorization.k8s.io/decision': 'forbid', 'authorization.k8s.io/reason': '' },
  });
  const privilegedPod = {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name: 'debug-shell', namespace: s.namespace },
    spec: {
      serviceAccountName: s.serviceAccount,
      hostPID: true,
      containers: [{ name: 'shell', image: 'alpine:3.20', command: ['sleep', 'infinity'], securityContext: { privileged: true } }],
      volumes: [{ name: 'host', hostPath: { path: '/' } }],
    },
  };
  return [
    ev(0, {
      verb: 'create',
      requestURI: '/apis/authorization.k8s.io/v1/selfsubjectrulesreviews',
      objectRef: { resource: 'selfsubjectrulesreviews', apiGroup: 'authorization.k8s.io', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 201 },
      annotations: {
        'authorization.k8s.io/decision': 'allow',
        'authorization.k8s.io/reason':
          'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
      },
    }),
    ev(5_000, {
      verb: 'list',
      requestURI: '/api/v1/secrets?limit=500',
      objectRef: { resource: 'secrets', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': viaBinding },
    }),
    ...s.secrets.map((name, i) =>
      ev(20_000 + i * 4_000, {
        verb: 'get',
        requestURI: `/api/v1/namespaces/${s.targetNamespace}/secrets/${name}`,
        objectRef: { resource: 'secrets', namespace: s.targetNamespace, name, apiVersion: 'v1' },
        responseStatus: { metadata: {}, code: 200 },
        annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': viaBinding },
      }),
    ),
    ev(60_000, {
      verb: 'create',
      requestURI: `/api/v1/namespaces/${s.targetNamespace}/pods/${s.targetPod}/exec?command=sh&container=postgres&stdin=true&stdout=true&tty=true`,
      objectRef: { resource: 'pods', namespace: s.targetNamespace, name: s.targetPod, subresource: 'exec', apiVersion: 'v1' },
      ...forbidden('create', `pods "${s.targetPod}"`, `resource "pods/exec" in API group "" in the namespace "${s.targetNamespace}"`),
    }),
    ev(90_000, {
      verb: 'create',
      requestURI: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      objectRef: { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' },
      ...forbidden(
        'create',
        'clusterrolebindings.rbac.authorization.k8s.io',
        'resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope',
      ),
    }),
    ev(120_000, {
      level: 'Request',
      verb: 'create',
      requestURI: `/api/v1/namespaces/${s.namespace}/pods`,
      objectRef: { resource: 'pods', namespace: s.namespace, name: 'debug-shell', apiVersion: 'v1' },
      requestObject: privilegedPod,
      responseStatus: {
        metadata: {},
        status: 'Failure',
        message: `admission webhook "validation.gatekeeper.sh" denied the request: [${s.constraint}] Privileged container is not allowed: shell, securityContext: {"privileged": true}`,
        reason: 'Forbidden',
        code: 403,
      },
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': viaOwn },
    }),
  ];
}

/** The attack's events mixed into `background` benign events by time (both lists in time order). */
export function interleave(attack: AuditEvent[], background: AuditEvent[]): AuditEvent[] {
  const t = (e: AuditEvent) => Date.parse(e.stageTimestamp ?? '');
  const out: AuditEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < attack.length || j < background.length) {
    if (j >= background.length || (i < attack.length && t(attack[i]!) <= t(background[j]!))) out.push(attack[i++]!);
    else out.push(background[j++]!);
  }
  return out;
}
