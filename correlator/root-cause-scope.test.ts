/**
 * What the evidence justifies: mesh policies only for namespaces the incident shows in a mesh;
 * quarantine or deletion of a pod only when something went through; records of changes (activity
 * trail) in the timeline, but never an attack kind, an enabler or a chain.
 */
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import type { Actor } from './entities.js';
import type { Incident, Remediation, TimelineEntry } from './incident.js';
import { timelineEntry } from './incident.js';
import { IncidentManager } from './incidents.js';
import { planRemediations } from './remediation/planner.js';
import { analyzeRootCause } from './root-cause.js';
import type { Severity } from './severity.js';
import type { SignalKind } from './signal-kinds.js';
import type { Outcome, Signal, SourceName, Target } from './signal.js';

const T0 = Date.UTC(2026, 10, 29, 6, 0, 0);
const FRONTEND: Actor = { key: 'sa:frontend/frontend', type: 'serviceaccount', name: 'system:serviceaccount:frontend:frontend', namespace: 'frontend' };
const POD = { actorPod: 'frontend/frontend-7d9c-xk2p' };
const READER = { ...POD, binding: 'ClusterRoleBinding/frontend-secrets-reader', role: 'ClusterRole/secret-reader' };

let n = 0;
function signal(
  kind: SignalKind,
  outcome: Outcome,
  target: Target,
  attributes: Record<string, string> = {},
  opts: { severity?: Severity; source?: SourceName; actor?: Actor } = {},
): Signal {
  n += 1;
  return {
    id: `scope-${n}`,
    source: opts.source ?? 'k8s-audit',
    kind,
    severity: opts.severity ?? 'high',
    title: `${kind} ${target.namespace ?? ''}/${target.name ?? ''}`,
    eventTime: T0 + n * 1000,
    observedTime: T0 + n * 1000,
    actor: opts.actor ?? FRONTEND,
    target,
    outcome,
    entities: attributes.actorPod ? [`pod:${attributes.actorPod}`] : [],
    mitre: [],
    rule: { id: `rule-${kind}`, title: kind },
    matched: [],
    attributes,
    excerpt: {},
  };
}

const read = (ns: string, name: string) => signal('secret.read_cross_namespace', 'allowed', { namespace: ns, resource: 'secrets', name, verb: 'get' }, READER);

/** The plan for these signals, planned as the incident manager does (root cause first). */
function plan(signals: Signal[]): Remediation[] {
  const timeline: TimelineEntry[] = signals.map(timelineEntry);
  const rootCause = analyzeRootCause(FRONTEND, timeline, { correlations: 0, actorShare: 1 });
  const incident: Omit<Incident, 'remediations'> = {
    id: 'inc_00000000000000000001',
    title: '',
    status: 'open',
    severity: 'high',
    actor: FRONTEND,
    entities: [FRONTEND.key, ...new Set(signals.flatMap((s) => s.entities))],
    blastRadius: { namespaces: [], workloads: [], secrets: [], bindings: [], policies: [] },
    firstSeen: T0,
    lastSeen: T0,
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
    maxSignalSeverity: 'high',
  };
  return planRemediations({ incident, usage: [] });
}

const kinds = (p: Remediation[]) => [...new Set(p.map((r) => r.kind))];
const meshNamespaces = (p: Remediation[], kind: string) => p.filter((r) => r.kind === kind).map((r) => /namespace (\S+)$/.exec(r.title)?.[1]);

describe('mesh remediations need mesh evidence', () => {
  it('proposes none for a namespace whose secrets were read when nothing shows a mesh', () => {
    const p = plan([read('payments', 'db'), read('payments', 'stripe')]);
    expect(kinds(p)).not.toContain('mesh-mtls-strict');
    expect(kinds(p)).not.toContain('mesh-authorization-policy');
  });

  it('proposes them for the namespace an mTLS failure names', () => {
    const p = plan([read('payments', 'db'), signal('mtls.failed', 'denied', { namespace: 'payments', name: 'postgres' }, {}, { source: 'loki' })]);
    expect(meshNamespaces(p, 'mesh-mtls-strict')).toEqual(['payments']);
    expect(meshNamespaces(p, 'mesh-authorization-policy')).toEqual(['payments']);
  });

  it('counts a mesh proxy line (Linkerd, Istio) or a refused service call as evidence for its namespaces, and only those', () => {
    const p = plan([
      read('billing', 'api-key'),
      read('ledger', 'db'),
      read('vault', 'root'),
      // A Linkerd proxy in billing logged the actor's call; a service call was refused in vault.
      signal(
        'service.auth_failed',
        'unknown',
        { name: 'billing-api' },
        { meshKind: 'linkerd', destinationNamespace: 'billing' },
        { source: 'loki', severity: 'medium' },
      ),
      signal('mesh.authz_denied', 'denied', { namespace: 'vault', name: 'vault' }, {}, { source: 'loki', severity: 'medium' }),
    ]);
    expect(meshNamespaces(p, 'mesh-mtls-strict')).toEqual(['billing', 'vault']);
    expect(meshNamespaces(p, 'mesh-authorization-policy')).toEqual(['billing', 'vault']);
    expect(p.find((r) => r.kind === 'mesh-mtls-strict')?.rationale).toContain('in the mesh');
  });
});

describe('no quarantine or deletion of a pod on evidence of no attack', () => {
  const contained = (p: Remediation[]) => kinds(p).filter((k) => k === 'isolate-workload' || k === 'delete-workload');

  it('proposes none when every attempt was denied', () => {
    const p = plan([
      signal('pod.exec', 'denied', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, POD, {
        severity: 'critical',
      }),
      signal('secret.read_cross_namespace', 'denied', { namespace: 'payments', resource: 'secrets', name: 'db', verb: 'get' }, POD),
      signal('mtls.failed', 'denied', { namespace: 'payments', name: 'db' }, POD, { source: 'loki' }),
    ]);
    expect(contained(p)).toEqual([]);
  });

  it('proposes none for info and low signals only', () => {
    const p = plan([
      signal('rbac.permission_enumeration', 'allowed', { resource: 'selfsubjectrulesreviews', verb: 'create' }, POD, { severity: 'low' }),
      signal('secret.read', 'allowed', { namespace: 'frontend', resource: 'secrets', name: 'own', verb: 'get' }, READER, { severity: 'info' }),
    ]);
    expect(contained(p)).toEqual([]);
  });

  it('proposes none for records of changes only, however they are rated', () => {
    const p = plan([
      signal('activity.change', 'allowed', { namespace: 'frontend', resource: 'configmaps', name: 'cfg', verb: 'create' }, POD, { severity: 'critical' }),
    ]);
    expect(contained(p)).toEqual([]);
  });

  it('proposes them once something went through', () => {
    const p = plan([
      signal('pod.exec', 'denied', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, POD),
      read('payments', 'db'),
    ]);
    expect(contained(p)).toEqual(['isolate-workload', 'delete-workload']);
  });
});

describe('activity trail: in the timeline, never an attack kind or an enabler', () => {
  const trail = (attrs: Record<string, string> = {}) =>
    signal(
      'activity.change',
      'allowed',
      { resource: 'clusterrolebindings', apiGroup: 'rbac.authorization.k8s.io', name: 'audit-trail', verb: 'create' },
      { binding: 'ClusterRoleBinding/ops-admin', role: 'ClusterRole/cluster-admin', ...attrs },
      { severity: 'info' },
    );

  it('names no enabler and no escalation from a record, and adds no confidence', () => {
    const denied = signal('pod.exec', 'denied', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, POD);
    const used = signal(
      'pod.exec',
      'allowed',
      { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-1', verb: 'create' },
      { binding: 'ClusterRoleBinding/audit-trail' },
    );
    const without = analyzeRootCause(FRONTEND, [denied, used].map(timelineEntry), { correlations: 0, actorShare: 1 });
    const withTrail = analyzeRootCause(FRONTEND, [trail(), denied, used].map(timelineEntry), { correlations: 0, actorShare: 1 });
    expect(withTrail.enablingBinding).toMatchObject({ name: 'audit-trail' });
    expect(withTrail.escalation).toBeUndefined();
    expect(withTrail.evidence.map((e) => e.entity)).not.toContain('binding:ClusterRoleBinding/ops-admin');
    expect(withTrail.confidence).toBe(without.confidence);
    expect(withTrail.summary).not.toContain('activity.change');
  });

  it('keeps records in the timeline without raising the severity as a kind of attack', () => {
    const m = new IncidentManager(new CorrelationEngine([]), { now: () => T0 });
    const [inc] = m.process([
      read('payments', 'db'),
      signal('pod.exec', 'denied', { namespace: 'payments', resource: 'pods', subresource: 'exec', name: 'db-0', verb: 'create' }, POD),
      trail(),
    ]).incidents;
    expect(inc!.timeline.map((e) => e.kind)).toEqual(['secret.read_cross_namespace', 'pod.exec', 'activity.change']);
    // Two kinds of attack, not three: no extra level above the worst signal.
    expect(inc!.severity).toBe('high');
    expect(inc!.title).not.toContain('activity.change');
  });
});
