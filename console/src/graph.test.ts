import { describe, expect, it } from 'vitest';
import { INCIDENT, SIGNALS } from './fixtures/incident';
import { buildGraph, COLUMN_CAP, describe as describeEntity, kindOf, targetOf, truncate } from './graph';
import { entryOfSignal, incidentEntries, type Entry } from './timeline';

const entries = incidentEntries(INCIDENT, SIGNALS);
const model = buildGraph(entries, INCIDENT.actor.key, INCIDENT.rootCause?.evidence);
const node = (k: string) => model.nodes.find((n) => n.key === k);
const edgesBetween = (from: string, to: string) => model.edges.filter((e) => e.from === from && e.to === to);

describe('buildGraph on the demo incident', () => {
  it('lays out actor → pod → binding → role → targets → blocking policy, left to right', () => {
    const actor = node('sa:frontend/frontend')!;
    const pod = node('pod:frontend/frontend-7d9c4b5f6-xk2pq')!;
    const binding = node('binding:ClusterRoleBinding/frontend-secrets-reader')!;
    const role = node('role:ClusterRole/secret-reader')!;
    const secret = node('secret:payments/db-credentials')!;
    const policy = node('policy:gatekeeper/psp-privileged-container')!;
    expect([actor, pod, binding, role, secret, policy].map((n) => n.kind)).toEqual(['actor', 'pod', 'binding', 'role', 'secret', 'policy']);
    const xs = [actor, pod, binding, role, secret, policy].map((n) => n.x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expect(new Set(xs).size).toBe(6);
    expect(model.columns.map((c) => c.title)).toEqual(['Actor', 'Pod / workload', 'Binding', 'Role', 'Targets', 'Blocked by']);
  });

  it('marks the enabling binding from the root cause, and only it', () => {
    expect(model.nodes.filter((n) => n.enabler).map((n) => n.key)).toEqual(['binding:ClusterRoleBinding/frontend-secrets-reader']);
  });

  it('draws the relations and per-signal access edges with outcomes and counts', () => {
    expect(edgesBetween('sa:frontend/frontend', 'pod:frontend/frontend-7d9c4b5f6-xk2pq')[0]?.label).toBe('runs as');
    expect(edgesBetween('sa:frontend/frontend', 'binding:ClusterRoleBinding/frontend-secrets-reader')[0]?.relation).toBe('bound-by');
    expect(edgesBetween('binding:ClusterRoleBinding/frontend-secrets-reader', 'role:ClusterRole/secret-reader')[0]?.relation).toBe('grants');
    const read = edgesBetween('role:ClusterRole/secret-reader', 'secret:payments/db-credentials');
    expect(read).toHaveLength(1);
    expect(read[0]).toMatchObject({ outcome: 'allowed', count: 2, label: 'get ×2' });
    expect(edgesBetween('role:ClusterRole/secret-reader', 'resource:secrets')[0]).toMatchObject({ outcome: 'allowed', label: 'list ×2' });
    // Denied without a role: straight from the actor, marked in the label too (not colour alone).
    const exec = edgesBetween('sa:frontend/frontend', 'pod:payments/postgres-0').find((e) => e.relation === 'access' && e.outcome === 'denied');
    expect(exec?.label).toMatch(/^✕ denied ×\d+$/);
    expect(exec!.count).toBe(6); // 3 audit exec denials + 3 refused mesh connections (their target is the pod)
    expect(edgesBetween('role:Role/frontend/frontend-deployer', 'pod:frontend/debug-shell')[0]).toMatchObject({ outcome: 'denied', count: 5 });
    expect(edgesBetween('pod:frontend/debug-shell', 'policy:gatekeeper/psp-privileged-container')[0]).toMatchObject({ relation: 'blocked-by', count: 5 });
    expect(edgesBetween('sa:frontend/frontend', 'svc:payments/payments-api')[0]).toMatchObject({ outcome: 'denied', count: 3 });
    expect(edgesBetween('sa:frontend/frontend', 'workload:payments/postgres')[0]).toMatchObject({ outcome: 'denied', count: 1 });
    const access = model.edges.filter((e) => e.relation === 'access').reduce((s, e) => s + e.count, 0);
    expect(access).toBe(SIGNALS.length); // every signal is one access edge count
  });

  it('lists the signals touching each node (what a click filters the timeline to)', () => {
    expect(node('sa:frontend/frontend')!.signalIds).toHaveLength(26);
    const viaBinding = SIGNALS.filter((s) => s.attributes?.binding === 'ClusterRoleBinding/frontend-secrets-reader').map((s) => s.id);
    expect(node('binding:ClusterRoleBinding/frontend-secrets-reader')!.signalIds.sort()).toEqual(viaBinding.sort());
    // The root cause's enabler evidence is a subset of what the node filters to.
    for (const id of INCIDENT.rootCause!.evidence.find((e) => e.type === 'enabler')!.signalIds) expect(viaBinding).toContain(id);
    expect(node('ns:payments')).toBeUndefined(); // namespaces only as direct targets
  });

  it('keeps nodes inside the drawing and without overlaps', () => {
    for (const n of model.nodes) {
      expect(n.x).toBeGreaterThanOrEqual(0);
      expect(n.x + n.w).toBeLessThanOrEqual(model.width);
      expect(n.y + n.h).toBeLessThanOrEqual(model.height);
    }
    const seen = new Set(model.nodes.map((n) => `${n.x},${n.y}`));
    expect(seen.size).toBe(model.nodes.length);
    for (const e of model.edges) expect(e.path).toMatch(/^M[\d.]+,[\d.]+ C/);
  });

  it('builds the same graph from the bounded timeline alone (no signal entities)', () => {
    const m = buildGraph(incidentEntries(INCIDENT, undefined), INCIDENT.actor.key, INCIDENT.rootCause?.evidence);
    expect(m.nodes.map((n) => n.key).sort()).toEqual(model.nodes.map((n) => n.key).sort());
  });
});

describe('bounds', () => {
  it('folds a column past its cap into one "+N more" node carrying their signals and edges', () => {
    const base = entryOfSignal(SIGNALS.find((s) => s.target?.resource === 'secrets' && s.target.name)!);
    const many: Entry[] = Array.from({ length: 60 }, (_, i) => ({
      ...base,
      id: `s${i}`,
      target: { ...base.target, name: `secret-${String(i).padStart(2, '0')}` },
    }));
    const m = buildGraph(many, 'sa:frontend/frontend');
    const targets = m.nodes.filter((n) => n.column === 4);
    expect(targets).toHaveLength(COLUMN_CAP[4]);
    const more = targets.find((n) => n.kind === 'more')!;
    expect(more.label).toBe(`+${60 - COLUMN_CAP[4] + 1} more`);
    expect(more.signalIds).toHaveLength(60 - COLUMN_CAP[4] + 1);
    expect(m.nodes.length).toBeLessThanOrEqual(40);
    expect(m.edges.find((e) => e.to === more.key)?.count).toBe(60 - COLUMN_CAP[4] + 1);
  });
});

describe('entity helpers', () => {
  it('names kinds and targets', () => {
    expect(kindOf('binding:RoleBinding/frontend/frontend-deployer')).toBe('binding');
    expect(kindOf('svc:payments/api')).toBe('service');
    expect(describeEntity('binding:RoleBinding/frontend/frontend-deployer')).toEqual({ type: 'RoleBinding', name: 'frontend/frontend-deployer' });
    expect(describeEntity('policy:gatekeeper/psp-privileged-container')).toEqual({ type: 'gatekeeper policy', name: 'psp-privileged-container' });
    const e = entryOfSignal(SIGNALS[0]!);
    expect(targetOf({ ...e, target: { resource: 'clusterrolebindings', verb: 'create' } })).toBe('resource:clusterrolebindings');
    expect(targetOf({ ...e, target: { resource: 'namespaces', name: 'kube-system' } })).toBe('ns:kube-system');
    expect(truncate('x'.repeat(40))).toHaveLength(24);
    expect(truncate('short')).toBe('short');
  });
});

describe('columns', () => {
  it('puts the pod the actor ran in under Pod, and pods it acted on under Targets', () => {
    expect(node('pod:frontend/frontend-7d9c4b5f6-xk2pq')!.column).toBe(1);
    expect(node('pod:payments/postgres-0')!.column).toBe(4);
    expect(node('pod:frontend/debug-shell')!.column).toBe(4);
  });
});
