/**
 * Synthetic audit traffic with a realistic shape: mostly controllers, kubelets and leader-election
 * lease updates, some human and CI activity, and a small share of suspicious requests. Seeded, so
 * benchmarks and tests see the same stream every run. Used by `npm run bench` and the demo.
 */
import type { AuditEvent } from './parse.js';

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['default', 'kube-system', 'payments', 'frontend', 'checkout', 'monitoring', 'cert-manager', 'ci'];
const NODES = ['node-a1', 'node-a2', 'node-b1', 'node-b2'];

const sa = (ns: string, name: string) => ({
  username: `system:serviceaccount:${ns}:${name}`,
  uid: `uid-${ns}-${name}`,
  groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
});

function hex(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 16).toString(16);
  return s;
}

function uuid(r: () => number): string {
  return `${hex(r, 8)}-${hex(r, 4)}-4${hex(r, 3)}-a${hex(r, 3)}-${hex(r, 12)}`;
}

function base(
  r: () => number,
  t: number,
  verb: string,
  user: AuditEvent['user'],
  ref: NonNullable<AuditEvent['objectRef']>,
  uri: string,
  code: number,
  ua: string,
): AuditEvent {
  const ts = new Date(t).toISOString().replace('Z', '123Z');
  const decision = code === 403 ? 'forbid' : 'allow';
  const ev: AuditEvent = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: uuid(r),
    stage: 'ResponseComplete',
    requestURI: uri,
    verb,
    user,
    sourceIPs: [`10.${Math.floor(r() * 4)}.${Math.floor(r() * 250)}.${Math.floor(r() * 250)}`],
    userAgent: ua,
    objectRef: ref,
    responseStatus:
      code >= 400
        ? {
            code,
            status: 'Failure',
            reason: 'Forbidden',
            message: `${ref.resource} is forbidden: User "${user.username}" cannot ${verb} resource "${ref.resource}"`,
          }
        : { code },
    requestReceivedTimestamp: ts,
    stageTimestamp: ts,
    annotations: {
      'authorization.k8s.io/decision': decision,
      'authorization.k8s.io/reason':
        decision === 'allow'
          ? `RBAC: allowed by ClusterRoleBinding "system:controller:${ref.resource}" of ClusterRole "system:controller:${ref.resource}" to ServiceAccount "ctrl/kube-system"`
          : '',
    },
  };
  return ev;
}

/** One benign event: the traffic a healthy cluster is made of. */
function benign(r: () => number, t: number): AuditEvent {
  const p = r();
  const ns = NAMESPACES[Math.floor(r() * NAMESPACES.length)]!;
  const node = NODES[Math.floor(r() * NODES.length)]!;
  if (p < 0.3) {
    const name = `kube-controller-manager-${Math.floor(r() * 3)}`;
    return base(
      r,
      t,
      'update',
      sa('kube-system', 'leader-election'),
      { resource: 'leases', namespace: 'kube-node-lease', name, apiGroup: 'coordination.k8s.io', apiVersion: 'v1' },
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}?timeout=10s`,
      200,
      'kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/39683505/leader-election',
    );
  }
  if (p < 0.55) {
    const res = ['configmaps', 'secrets', 'pods', 'services'][Math.floor(r() * 4)]!;
    const name = `${res}-${Math.floor(r() * 50)}`;
    const user = { username: `system:node:${node}`, groups: ['system:nodes', 'system:authenticated'] };
    return base(
      r,
      t,
      'get',
      user,
      { resource: res, namespace: ns, name, apiVersion: 'v1' },
      `/api/v1/namespaces/${ns}/${res}/${name}`,
      200,
      'kubelet/v1.30.2 (linux/amd64) kubernetes/39683505',
    );
  }
  if (p < 0.75) {
    const res = ['pods', 'endpoints', 'replicasets', 'deployments', 'nodes'][Math.floor(r() * 5)]!;
    return base(
      r,
      t,
      'watch',
      sa('kube-system', `${res}-controller`),
      { resource: res, apiVersion: 'v1' },
      `/api/v1/${res}?allowWatchBookmarks=true&resourceVersion=${Math.floor(r() * 1e7)}&watch=true`,
      200,
      'kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/39683505/shared-informers',
    );
  }
  if (p < 0.85) {
    return base(
      r,
      t,
      'create',
      { username: `system:node:${node}`, groups: ['system:nodes', 'system:authenticated'] },
      { resource: 'events', namespace: ns, apiVersion: 'v1' },
      `/api/v1/namespaces/${ns}/events`,
      201,
      'kubelet/v1.30.2 (linux/amd64) kubernetes/39683505',
    );
  }
  if (p < 0.9) {
    return base(
      r,
      t,
      'watch',
      sa('cert-manager', 'cert-manager'),
      { resource: 'secrets', apiVersion: 'v1' },
      '/api/v1/secrets?watch=true',
      200,
      'cert-manager/v1.14.4 (linux/amd64) cert-manager/controller',
    );
  }
  if (p < 0.93) return podCreate(r, t, ns);
  if (p < 0.96) {
    const name = `web-${Math.floor(r() * 10)}`;
    return base(
      r,
      t,
      'patch',
      sa('ci', 'deployer'),
      { resource: 'deployments', namespace: 'ci', name, apiGroup: 'apps', apiVersion: 'v1' },
      `/apis/apps/v1/namespaces/ci/deployments/${name}?fieldManager=kubectl-client-side-apply`,
      200,
      'kubectl/v1.30.2 (linux/amd64) kubernetes/39683505',
    );
  }
  return base(
    r,
    t,
    'list',
    { username: 'alice@example.com', groups: ['dev', 'system:authenticated'] },
    { resource: 'pods', namespace: ns, apiVersion: 'v1' },
    `/api/v1/namespaces/${ns}/pods?limit=500`,
    200,
    'kubectl/v1.30.2 (darwin/arm64) kubernetes/39683505',
  );
}

/** A ReplicaSet controller creating a pod, logged at RequestResponse: the large events of a stream. */
function podCreate(r: () => number, t: number, ns: string): AuditEvent {
  const name = `web-${hex(r, 10)}-${hex(r, 5)}`;
  const ev = base(
    r,
    t,
    'create',
    sa('kube-system', 'replicaset-controller'),
    { resource: 'pods', namespace: ns, apiVersion: 'v1' },
    `/api/v1/namespaces/${ns}/pods`,
    201,
    'kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/39683505/system:serviceaccount:kube-system:replicaset-controller',
  );
  ev.level = 'RequestResponse';
  const container = (i: number) => ({
    name: `app-${i}`,
    image: `registry.example.com/shop/web:1.${Math.floor(r() * 40)}.0`,
    ports: [{ containerPort: 8080, protocol: 'TCP' }],
    env: [
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'DB_HOST', value: 'db.payments.svc' },
    ],
    resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    volumeMounts: [{ name: 'kube-api-access', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    terminationMessagePath: '/dev/termination-log',
    imagePullPolicy: 'IfNotPresent',
  });
  const pod = {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      generateName: name.slice(0, -5),
      namespace: ns,
      labels: { app: 'web', 'pod-template-hash': hex(r, 10) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: name.slice(0, -6), uid: uuid(r), controller: true }],
    },
    spec: {
      containers: [container(0), container(1)],
      serviceAccountName: 'web',
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      restartPolicy: 'Always',
      dnsPolicy: 'ClusterFirst',
    },
  };
  ev.requestObject = pod;
  ev.responseObject = {
    ...pod,
    metadata: { ...pod.metadata, name, uid: uuid(r), resourceVersion: String(Math.floor(r() * 1e7)) },
    status: { phase: 'Pending', qosClass: 'Burstable' },
  };
  return ev;
}

/** One suspicious event from a compromised workload's service account (number `attacker`, 0 being frontend/frontend). */
function suspicious(r: () => number, t: number, attacker = 0): AuditEvent {
  const name = attacker === 0 ? 'frontend' : `frontend-${attacker}`;
  const pod = attacker === 0 ? 'frontend-7d9c-xk2p' : `${name}-7d9c-${attacker.toString(36).padStart(5, '0')}`;
  const user = {
    ...sa('frontend', name),
    extra: { 'authentication.kubernetes.io/pod-name': [pod], 'authentication.kubernetes.io/node-name': [NODES[attacker % NODES.length]!] },
  };
  const ev = suspiciousRequest(r, t, user);
  // A pod's requests come from its pod IP, one address per workload (base() drew a random one:
  // replaced rather than not drawn, so that the rest of the stream stays the same draw for draw).
  ev.sourceIPs = [`10.244.${(attacker >> 8) & 255}.${(attacker & 255) + 1}`];
  return ev;
}

/** What a compromised workload asks the API server for: list and read secrets, exec, bind itself a role. */
function suspiciousRequest(r: () => number, t: number, user: AuditEvent['user']): AuditEvent {
  const p = r();
  if (p < 0.3) return base(r, t, 'list', user, { resource: 'secrets', apiVersion: 'v1' }, '/api/v1/secrets?limit=500', 200, 'curl/8.5.0');
  if (p < 0.55)
    return base(
      r,
      t,
      'get',
      user,
      { resource: 'secrets', namespace: 'payments', name: 'db-credentials', apiVersion: 'v1' },
      '/api/v1/namespaces/payments/secrets/db-credentials',
      200,
      'curl/8.5.0',
    );
  if (p < 0.8)
    return base(
      r,
      t,
      'create',
      user,
      { resource: 'pods', namespace: 'payments', name: 'db-0', subresource: 'exec', apiVersion: 'v1' },
      '/api/v1/namespaces/payments/pods/db-0/exec?command=sh&stdin=true',
      403,
      'kubectl/v1.30.2',
    );
  return base(
    r,
    t,
    'create',
    user,
    { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', apiVersion: 'v1' },
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    403,
    'kubectl/v1.30.2',
  );
}

/**
 * `n` events starting at `start` (ms), `stepMs` apart, `suspiciousShare` of them suspicious, spread
 * over `attackers` compromised service accounts (default 1).
 */
export function syntheticAuditEvents(
  n: number,
  opts: { seed?: number; start?: number; stepMs?: number; suspiciousShare?: number; attackers?: number } = {},
): AuditEvent[] {
  const r = rng(opts.seed ?? 42);
  const start = opts.start ?? Date.UTC(2026, 10, 29, 12, 0, 0);
  const step = opts.stepMs ?? 5;
  const share = opts.suspiciousShare ?? 0.01;
  const out: AuditEvent[] = [];
  const attackers = Math.max(1, opts.attackers ?? 1);
  for (let i = 0; i < n; i++)
    out.push(r() < share ? suspicious(r, start + i * step, attackers > 1 ? Math.floor(r() * attackers) : 0) : benign(r, start + i * step));
  return out;
}
