import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import { BASE_TIME, signalFromSpec } from './correlation/rule-tests.js';
import { compileCorrelations } from './correlation/rules.js';
import { IncidentManager, InvalidTransitionError } from './incidents.js';
import type { Signal } from './signal.js';

let n = 0;
const sig = (at: string, kind: string, actor: string, extra: Record<string, unknown> = {}): Signal => signalFromSpec({ at, kind, actor, ...extra }, n++, [])!;

function setup(policy = {}) {
  const clock = {
    t: Date.UTC(2026, 0, 1),
    now() {
      return this.t;
    },
  };
  const { correlations } = compileCorrelations(
    [
      {
        file: 'c.yaml',
        doc: {
          correlations: [
            {
              id: 'two-denials',
              title: 'Two denials',
              description: 'test; false positives: none',
              type: 'event_count',
              rules: ['rbac.denied'],
              condition: { gte: 2 },
              timespan: '5m',
              severity: 'medium',
              mitre: ['T1613'],
            },
          ],
        },
      },
    ],
    new Set(),
  );
  const m = new IncidentManager(new CorrelationEngine(correlations), clock, policy);
  return { m, clock };
}

describe('IncidentManager', () => {
  it('opens on a severe signal, attaches later signals of the actor, ignores redelivery', () => {
    const { m } = setup();
    const first = sig('0s', 'secret.list_cluster_wide', 'sa:web/web', { severity: 'high' });
    const [opened] = m.process([first]).incidents;
    expect(opened).toMatchObject({ status: 'open', severity: 'high', signalCount: 1, version: 1 });
    const r = m.process([sig('10s', 'secret.read', 'sa:web/web', { severity: 'low' }), first]);
    expect(r.incidents).toHaveLength(1);
    expect(r.incidents[0]).toMatchObject({ id: opened!.id, signalCount: 2, version: 2, severity: 'high' });
    expect(m.stats.duplicates).toBe(1);
  });

  it('keeps low signals that open nothing, and puts them first in an incident opened later', () => {
    const { m } = setup();
    expect(m.process([sig('0s', 'rbac.permission_enumeration', 'sa:web/web')]).incidents).toEqual([]);
    const [inc] = m.process([sig('1m', 'secret.list_cluster_wide', 'sa:web/web', { severity: 'high' })]).incidents;
    expect(inc!.timeline.map((e) => e.kind)).toEqual(['rbac.permission_enumeration', 'secret.list_cluster_wide']);
  });

  it('opens through a correlation and never rates an incident below its worst signal', () => {
    const { m } = setup();
    m.process([sig('0s', 'rbac.denied', 'user:eve', { severity: 'low' })]);
    const [inc] = m.process([sig('1m', 'rbac.denied', 'user:eve', { severity: 'low' })]).incidents;
    expect(inc).toMatchObject({ severity: 'medium', correlations: [expect.objectContaining({ ruleId: 'two-denials' })] });
    const [after] = m.process([sig('2m', 'pod.exec', 'user:eve', { severity: 'critical', outcome: 'denied' })]).incidents;
    expect(after!.severity).toBe('critical');
  });

  it('merges two incidents when a signal shares the binding of one and the actor of the other', () => {
    const { m, clock } = setup();
    const a = m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/one', { severity: 'high', entities: ['binding:ClusterRoleBinding/too-broad'] })])
      .incidents[0]!;
    clock.t += 1000;
    const b = m.process([sig('5s', 'secret.list_cluster_wide', 'sa:b/two', { severity: 'high' })]).incidents[0]!;
    expect(a.id).not.toBe(b.id);
    const r = m.process([sig('10s', 'secret.read', 'sa:b/two', { entities: ['binding:ClusterRoleBinding/too-broad'] })]).incidents;
    const merged = r.find((i) => i.id === b.id)!;
    const survivor = r.find((i) => i.id === a.id)!;
    expect(merged).toMatchObject({ status: 'resolved', resolution: 'merged', mergedInto: a.id });
    expect(survivor.signalCount).toBe(3);
    expect(m.openIncidents().map((i) => i.id)).toEqual([a.id]);
  });

  it('gives an incident opened and merged within one batch a title (lists and the console show it)', () => {
    const { m } = setup();
    const r = m.process([
      sig('0s', 'secret.list_cluster_wide', 'sa:a/one', { severity: 'high', entities: ['binding:ClusterRoleBinding/too-broad'] }),
      sig('5s', 'secret.list_cluster_wide', 'sa:b/two', { severity: 'high' }),
      sig('10s', 'secret.read', 'sa:b/two', { entities: ['binding:ClusterRoleBinding/too-broad'] }),
    ]).incidents;
    const merged = r.find((i) => i.resolution === 'merged');
    expect(merged).toBeDefined();
    expect(merged!.title).not.toBe('');
    expect(r.every((i) => i.title !== '')).toBe(true);
  });

  it('does not merge incidents through bootstrap bindings every identity has', () => {
    const { m, clock } = setup();
    const basic = ['binding:ClusterRoleBinding/system:basic-user'];
    const a = m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/one', { severity: 'high', entities: basic })]).incidents[0]!;
    clock.t += 1000;
    const b = m.process([sig('5s', 'secret.list_cluster_wide', 'sa:b/two', { severity: 'high', entities: basic })]).incidents[0]!;
    expect(b.id).not.toBe(a.id);
    expect(m.openIncidents()).toHaveLength(2);
  });

  it('keeps the windows of a replayed old log across sweeps, and forgets them once nothing is fed', () => {
    const { m, clock } = setup();
    // A week after its events: the clock alone would expire the first denial's window at the sweep
    // between the two batches, and whether the correlation fires would depend on when it ran.
    clock.t = BASE_TIME + 7 * 86_400_000;
    expect(m.process([sig('0s', 'rbac.denied', 'sa:old/replay')]).incidents).toEqual([]);
    clock.t += 1_000;
    m.sweep();
    expect(m.budget().windowEntries.used).toBe(1);
    const [inc] = m.process([sig('1m', 'rbac.denied', 'sa:old/replay')]).incidents;
    expect(inc?.correlations.map((c) => c.ruleId)).toEqual(['two-denials']);
    // Idle for longer than the window and the lateness: gone, as a live stream's would be.
    m.process([sig('2m', 'rbac.denied', 'sa:old/other')]);
    clock.t += 6 * 60_000;
    m.sweep();
    expect(m.budget().windowEntries.used).toBe(3);
    clock.t += 2 * 60_000;
    m.sweep();
    expect(m.budget().windowEntries.used).toBe(0);
  });

  it('resolves after a quiet period and at the lifetime cap, and never reuses a resolved incident', () => {
    const { m, clock } = setup({ quietPeriodMs: 60_000, maxLifetimeMs: 10 * 60_000 });
    const a = m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'high' })]).incidents[0]!;
    clock.t += 59_000;
    expect(m.sweep()).toEqual([]);
    clock.t += 1_000;
    expect(m.sweep().map((i) => [i.id, i.resolution])).toEqual([[a.id, 'quiet']]);
    const b = m.process([sig('2m', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'high' })]).incidents[0]!;
    expect(b.id).not.toBe(a.id);
    // A trickle every 30s keeps it from going quiet, but not past its lifetime.
    for (let i = 0; i < 20; i++) {
      clock.t += 30_000;
      m.process([sig(`${3 + i}m`, 'secret.read', 'sa:a/a')]);
      const swept = m.sweep();
      if (swept.length) {
        expect(swept[0]).toMatchObject({ id: b.id, resolution: 'lifetime' });
        expect(i).toBe(19);
      }
    }
  });

  it('allows open → acknowledged → resolved only', () => {
    const { m } = setup();
    const a = m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'high' })]).incidents[0]!;
    const ack = m.transition(a, 'acknowledged', 'looking', 'sre');
    expect(ack).toMatchObject({ status: 'acknowledged', version: a.version + 1, notes: [{ status: 'acknowledged', note: 'looking', by: 'sre' }] });
    expect(() => m.transition(ack, 'acknowledged', '')).toThrow(InvalidTransitionError);
    const done = m.transition(ack, 'resolved', 'fixed');
    expect(done).toMatchObject({ status: 'resolved', resolution: 'manual' });
    expect(() => m.transition(done, 'open' as never, '')).toThrow(/cannot become open/);
  });

  it('attaches signals like earlier ones (same actor, same entities) as fully as the first, whoever shares the entities', () => {
    const { m } = setup();
    const pod = ['pod:shop/db-0'];
    const denied = (at: string, actor: string) => sig(at, 'rbac.denied', actor, { severity: 'high', entities: pod });
    const inc = m.process([denied('0s', 'sa:a/one')]).incidents[0]!;
    for (let i = 1; i < 5; i++) m.process([denied(`${i}s`, 'sa:a/one')]);
    // Another actor with the very same entities: its own key joins the incident and finds it later.
    for (let i = 5; i < 9; i++) m.process([denied(`${i}s`, 'sa:b/two')]);
    const later = m.process([sig('10s', 'secret.read', 'sa:b/two')]).incidents.find((i) => i.id === inc.id)!;
    expect(later.signalCount).toBe(10);
    expect([...later.entities].sort()).toEqual(['pod:shop/db-0', 'sa:a/one', 'sa:b/two']);
    expect(later.timeline.map((e) => e.actor)).toEqual([...Array(5).fill('sa:a/one'), ...Array(5).fill('sa:b/two')]);
    // Once it is resolved, the same signals start an incident of their own, with everything again.
    m.transition(m.get(inc.id)!, 'resolved', 'fixed');
    const next = m.process([denied('1m', 'sa:a/one'), denied('1m', 'sa:a/one')]).incidents;
    expect(next).toHaveLength(1);
    expect(next[0]!.id).not.toBe(inc.id);
    expect([...next[0]!.entities].sort()).toEqual(['pod:shop/db-0', 'sa:a/one']);
    expect(m.process([sig('2m', 'secret.read', 'sa:b/two', { entities: pod })]).incidents[0]!.id).toBe(next[0]!.id);
  });

  it('bounds the timeline, keeping the beginning and the latest, and counts everything', () => {
    const { m } = setup({ limits: { maxTimeline: 10, maxEntities: 5 } });
    m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'high' })]);
    let last;
    for (let i = 1; i < 50; i++)
      last = m.process([sig(`${i}s`, 'secret.read', 'sa:a/a', { target: { namespace: `ns-${i}`, resource: 'secrets', name: 's' } })]).incidents[0];
    expect(last!.signalCount).toBe(50);
    expect(last!.timeline).toHaveLength(10);
    expect(last!.timeline[0]!.kind).toBe('secret.list_cluster_wide');
    expect(last!.timeline[9]!.target.namespace).toBe('ns-49');
    expect(last!.entities.length).toBeLessThanOrEqual(5);
    expect(last!.countsByKind).toEqual({ 'secret.list_cluster_wide': 1, 'secret.read': 49 });
  });

  it('keeps, of signals out of order and unflushed, the timeline that trimming after every signal keeps', () => {
    const { m } = setup({ limits: { maxTimeline: 8 } });
    // Seconds, shuffled deterministically: late and early arrivals on both sides of the middle.
    const seconds = Array.from({ length: 40 }, (_, i) => (i * 17) % 40);
    const model: number[] = [];
    for (const s of seconds) {
      let i = model.length;
      while (i > 0 && model[i - 1]! > s) i--;
      model.splice(i, 0, s);
      if (model.length > 8) model.splice(4, 1);
    }
    const signals = seconds.map((s) => sig(`${s}s`, 'secret.read', 'sa:a/a', { severity: 'high', title: String(s) }));
    for (let i = 0; i < signals.length; i += 13) m.process(signals.slice(i, i + 13), { defer: true });
    const [inc] = m.finalize();
    expect(inc!.timeline.map((e) => Number(e.title))).toEqual(model);
    expect(inc!.signalCount).toBe(40);
  });

  it('restores open incidents so new signals of the actor join them after a restart', () => {
    const { m } = setup();
    const a = m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'high' })]).incidents[0]!;
    const { m: m2 } = setup();
    m2.restore([structuredClone(a)]);
    const r = m2.process([sig('1m', 'secret.read', 'sa:a/a')]).incidents;
    expect(r.map((i) => [i.id, i.signalCount])).toEqual([[a.id, 2]]);
  });
});
