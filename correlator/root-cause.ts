/**
 * Root cause from evidence, not prose. The algorithm, in order:
 *
 * 1. **Actor** — the incident's actor and the share of signals it appears in.
 * 2. **First signal** — the earliest event of the timeline: where the story starts.
 * 3. **Enabler** — among the *allowed* sensitive actions (secret reads and lists, exec/attach/
 *    port-forward, token requests, nodes/proxy, cluster-admin grants), the RBAC binding named most
 *    often in their `authorization.k8s.io/reason`; a ClusterRoleBinding is reported as cluster-wide.
 * 4. **Blocked by** — denials: admission policies named in denial messages (Gatekeeper constraint,
 *    Kyverno policy, Pod Security level) and RBAC denials, grouped by what was attempted.
 * 5. **Missing controls** — risky things that were *allowed*: a privileged / host-namespace /
 *    hostPath pod no policy stopped, a mesh policy weakened to PERMISSIVE or deleted.
 * 6. **Mesh** — mTLS failures: plaintext or untrusted connections the mesh refused.
 *
 * Confidence starts at 0.3 and grows with each independent piece of evidence: an enabling binding
 * behind allowed sensitive actions (+0.3), each further distinct attack kind (+0.05, up to +0.2),
 * the actor behind ≥90% of signals (+0.1), a correlation rule that matched (+0.1); capped at 0.99.
 */
import type { Actor } from './entities.js';
import type { Evidence, RootCause, TimelineEntry } from './incident.js';
import type { SignalKind } from './signal-kinds.js';

/** Signal kinds whose *allowed* occurrence means the actor had real power. */
const SENSITIVE: ReadonlySet<SignalKind> = new Set<SignalKind>([
  'secret.read',
  'secret.read_cross_namespace',
  'secret.list_cluster_wide',
  'secret.list',
  'pod.exec',
  'pod.attach',
  'pod.portforward',
  'token.request_other_sa',
  'node.proxy',
  'rbac.cluster_admin_binding',
  'rbac.escalation_attempt',
  'configmap.credentials',
]);

const RISKY_ALLOWED: ReadonlySet<SignalKind> = new Set<SignalKind>(['pod.privileged', 'pod.host_namespace', 'pod.hostpath', 'auth.anonymous_allowed']);
const MESH_WEAKENED: ReadonlySet<SignalKind> = new Set<SignalKind>(['mesh.security_weakened', 'mesh.policy_deleted']);

/** What a kind of attempt reads as in a sentence. */
const ATTEMPT: Partial<Record<SignalKind, string>> = {
  'pod.exec': 'exec into pods',
  'pod.attach': 'attach to pods',
  'pod.portforward': 'port-forward',
  'rbac.escalation_attempt': 'RBAC escalation',
  'rbac.cluster_admin_binding': 'a cluster-admin binding',
  'token.request_other_sa': 'tokens for other service accounts',
  'pod.privileged': 'a privileged pod',
  'pod.host_namespace': 'a pod in host namespaces',
  'pod.hostpath': 'a hostPath mount',
  'secret.read': 'secret reads',
  'secret.read_cross_namespace': 'secret reads in other namespaces',
  'secret.list_cluster_wide': 'listing secrets cluster-wide',
  'node.proxy': 'the kubelet API via nodes/proxy',
  'service.auth_failed': 'calls to other services',
  'mtls.failed': 'plaintext connections',
  'mesh.authz_denied': 'calls the mesh policy forbids',
};

const ids = (es: TimelineEntry[], max = 20) => es.slice(0, max).map((e) => e.signalId);
const uniq = <T>(xs: T[]) => [...new Set(xs)];

/** How the actor reads in a sentence. */
export function describeActor(a: Actor): string {
  if (a.type === 'serviceaccount') return `Service account ${a.namespace}/${a.key.slice(a.key.indexOf('/') + 1)}`;
  if (a.type === 'node') return `Node ${a.key.slice(5)}`;
  if (a.type === 'anonymous') return 'An anonymous client';
  return `User ${a.name}`;
}

function parseBinding(b: string, role: string | undefined): RootCause['enablingBinding'] {
  const [kind, ...rest] = b.split('/');
  if (kind !== 'ClusterRoleBinding' && kind !== 'RoleBinding') return undefined;
  const out: NonNullable<RootCause['enablingBinding']> = kind === 'RoleBinding' && rest.length === 2 ? { kind, namespace: rest[0]!, name: rest[1]! } : { kind, name: rest.join('/') };
  if (role) {
    const [rk, ...rr] = role.split('/');
    out.roleKind = rk;
    out.roleName = rr[rr.length - 1];
  }
  return out;
}

function phrase(kinds: SignalKind[]): string {
  const words = uniq(kinds.map((k) => ATTEMPT[k] ?? k));
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** Names the root cause of an incident from its timeline. */
export function analyzeRootCause(actor: Actor, timeline: TimelineEntry[], opts: { correlations: number; actorShare: number }): RootCause {
  const evidence: Evidence[] = [];
  const sorted = [...timeline].sort((a, b) => a.time - b.time);
  const first = sorted[0];
  evidence.push({ type: 'actor', entity: actor.key, detail: `${describeActor(actor)} acted in ${Math.round(opts.actorShare * 100)}% of the incident's signals`, signalIds: ids(sorted, 10) });
  if (first) evidence.push({ type: 'first-signal', detail: `First: ${first.title}`, signalIds: [first.signalId] });

  // Enabler: the binding behind the allowed sensitive actions.
  const allowedSensitive = sorted.filter((e) => e.outcome === 'allowed' && SENSITIVE.has(e.kind));
  const byBinding = new Map<string, TimelineEntry[]>();
  for (const e of allowedSensitive) {
    const b = e.attributes.binding;
    if (b) byBinding.set(b, [...(byBinding.get(b) ?? []), e]);
  }
  const top = [...byBinding.entries()].sort((a, b) => b[1].length - a[1].length)[0];
  const enablingBinding = top ? parseBinding(top[0], top[1][0]!.attributes.role) : undefined;
  if (top && enablingBinding) {
    const scope = enablingBinding.kind === 'ClusterRoleBinding' ? 'cluster-wide' : `in namespace ${enablingBinding.namespace}`;
    const roleTxt = enablingBinding.roleName ? ` (${enablingBinding.roleKind} ${enablingBinding.roleName})` : '';
    evidence.push({
      type: 'enabler',
      entity: `binding:${top[0]}`,
      detail: `${enablingBinding.kind} ${enablingBinding.name}${roleTxt} allowed ${phrase(top[1].map((e) => e.kind))} ${scope}`,
      signalIds: ids(top[1]),
    });
  }

  // Blocked by: admission policies and RBAC.
  const denied = sorted.filter((e) => e.outcome === 'denied');
  const byPolicy = new Map<string, TimelineEntry[]>();
  for (const e of denied) {
    const engine = e.attributes.admissionEngine;
    for (const p of (e.attributes.admissionPolicies ?? '').split(',').filter(Boolean)) byPolicy.set(`${engine}/${p}`, [...(byPolicy.get(`${engine}/${p}`) ?? []), e]);
  }
  for (const [p, es] of byPolicy) evidence.push({ type: 'blocked-by', entity: `policy:${p}`, detail: `${p.replace('/', ' policy ')} denied ${phrase(es.map((e) => e.kind === 'admission.denied' ? ('pod.privileged' as SignalKind) : e.kind))}`, signalIds: ids(es) });
  // Only the API server's denials are RBAC's; mesh, alert and trace denials are reported below.
  const apiDenied = denied.filter((e) => e.source === 'k8s-audit' && !e.attributes.admissionEngine);
  const rbacDenied = apiDenied.filter((e) => e.kind !== 'rbac.denied');
  const rbacDeniedAll = apiDenied;
  if (rbacDeniedAll.length)
    evidence.push({ type: 'blocked-by', detail: `RBAC denied ${rbacDeniedAll.length} request(s)${rbacDenied.length ? `: ${phrase(rbacDenied.map((e) => e.kind))}` : ''}`, signalIds: ids(rbacDeniedAll) });

  // Missing controls: risky things allowed.
  const risky = sorted.filter((e) => e.outcome === 'allowed' && RISKY_ALLOWED.has(e.kind));
  if (risky.length) {
    const nss = uniq(risky.map((e) => e.target.namespace).filter(Boolean));
    evidence.push({ type: 'missing-control', detail: `No admission policy stopped ${phrase(risky.map((e) => e.kind))}${nss.length ? ` in ${nss.join(', ')}` : ''}`, signalIds: ids(risky) });
  }
  const weakened = sorted.filter((e) => MESH_WEAKENED.has(e.kind) && e.outcome !== 'denied');
  if (weakened.length) evidence.push({ type: 'missing-control', detail: `Mesh security was weakened: ${uniq(weakened.map((e) => e.title)).slice(0, 3).join('; ')}`, signalIds: ids(weakened) });
  const mtls = sorted.filter((e) => e.kind === 'mtls.failed');
  if (mtls.length) {
    const to = uniq(mtls.map((e) => e.target.namespace ?? e.target.name).filter(Boolean));
    const sources = uniq(mtls.map((e) => e.source));
    evidence.push({ type: 'mesh', detail: `${mtls.length} connection(s)${to.length ? ` to ${to.join(', ')}` : ''} failed mutual TLS (plaintext or untrusted identity refused), reported by ${sources.join(' and ')}`, signalIds: ids(mtls) });
  }
  const services = sorted.filter((e) => (e.kind === 'service.auth_failed' || e.kind === 'mesh.authz_denied') && e.outcome === 'denied');
  if (services.length) {
    const to = uniq(services.map((e) => e.target.namespace ?? e.target.name).filter(Boolean));
    evidence.push({ type: 'blocked-by', detail: `${services.length} call(s) to other services${to.length ? ` in ${to.join(', ')}` : ''} were refused (401/403 or mesh policy)`, signalIds: ids(services) });
  }

  // Summary sentence.
  const who = describeActor(actor) + (first?.attributes.actorPod ? ` (pod ${first.attributes.actorPod})` : '');
  const parts: string[] = [];
  const secretsRead = allowedSensitive.filter((e) => e.kind.startsWith('secret.'));
  if (secretsRead.length) {
    const nss = uniq(secretsRead.map((e) => e.target.namespace).filter(Boolean));
    const listed = secretsRead.some((e) => e.kind === 'secret.list_cluster_wide');
    parts.push(`${listed ? 'listed secrets cluster-wide and ' : ''}read secrets${nss.length ? ` in ${nss.join(', ')}` : ''}`);
  }
  const otherAllowed = allowedSensitive.filter((e) => !e.kind.startsWith('secret.'));
  if (otherAllowed.length) parts.push(`was allowed ${phrase(otherAllowed.map((e) => e.kind))}`);
  let sentence = `${who} ${parts.length ? parts.join(' and ') : 'triggered ' + phrase(sorted.map((e) => e.kind)).slice(0, 200)}`;
  if (enablingBinding) sentence += ` through ${enablingBinding.kind} ${enablingBinding.name}${enablingBinding.roleName ? ` (${enablingBinding.roleKind} ${enablingBinding.roleName})` : ''}`;
  const deniedKinds = denied.filter((e) => e.kind !== 'admission.denied' && e.kind !== 'rbac.denied' && e.kind !== 'mtls.failed').map((e) => e.kind);
  if (deniedKinds.length) sentence += `; it was denied ${phrase(deniedKinds)}`;
  if (byPolicy.size) sentence += ` (admission: ${[...byPolicy.keys()].join(', ')})`;
  if (mtls.length) sentence += `; ${mtls.length} of its connections failed mTLS`;
  if (risky.length) sentence += `; no policy stopped ${phrase(risky.map((e) => e.kind))}`;
  sentence += '.';

  let confidence = 0.3;
  if (enablingBinding) confidence += 0.3;
  const attackKinds = uniq(sorted.map((e) => e.kind)).length;
  confidence += Math.min(0.2, Math.max(0, attackKinds - 1) * 0.05);
  if (opts.actorShare >= 0.9) confidence += 0.1;
  if (opts.correlations > 0) confidence += 0.1;
  return { summary: sentence, evidence, confidence: Math.round(Math.min(0.99, confidence) * 100) / 100, actor: actor.key, ...(enablingBinding ? { enablingBinding } : {}) };
}
