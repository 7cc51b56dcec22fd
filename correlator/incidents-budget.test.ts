/**
 * The count budget of the incident manager (issue #19): open incidents, prologue signals, window
 * entries and floods of distinct actors stay within their bounds, and what is evicted is the least
 * important (lowest severity, least recent), resolved and written rather than silently forgotten.
 */
import { describe, expect, it } from 'vitest';
import { CorrelationEngine } from './correlation/engine.js';
import { signalFromSpec } from './correlation/rule-tests.js';
import { compileCorrelations } from './correlation/rules.js';
import { IncidentManager, type IncidentPolicy } from './incidents.js';
import type { Incident } from './incident.js';
import type { Signal } from './signal.js';

let n = 0;
const sig = (at: string, kind: string, actor: string, extra: Record<string, unknown> = {}): Signal => signalFromSpec({ at, kind, actor, ...extra }, n++, [])!;

function setup(policy: Partial<IncidentPolicy> = {}, maxEntries?: number) {
  const clock = {
    t: Date.UTC(2026, 0, 1),
    now() {
      return this.t;
    },
  };
  const m = new IncidentManager(new CorrelationEngine([], maxEntries ? { maxEntries } : {}), clock, policy);
  return { m, clock };
}

describe('count budget: open incidents', () => {
  it('past the maximum, resolves the least severe and least recently updated incident early, and says why', () => {
    const { m, clock } = setup({ maxOpenIncidents: 3 });
    const open = (actor: string, severity: string) => {
      clock.t += 1000;
      return m.process([sig('0s', 'secret.list_cluster_wide', actor, { severity })]).incidents;
    };
    open('sa:a/critical', 'critical');
    const [oldHigh] = open('sa:b/old-high', 'high');
    open('sa:c/new-high', 'high');
    expect(m.openIncidents()).toHaveLength(3);

    // A fourth: the older of the two highs goes (same severity, less recent), resolved as evicted.
    const changed = open('sa:d/critical', 'critical');
    expect(
      m
        .openIncidents()
        .map((i) => i.actor.key)
        .sort(),
    ).toEqual(['sa:a/critical', 'sa:c/new-high', 'sa:d/critical']);
    const evicted = changed.find((i) => i.id === oldHigh!.id);
    expect(evicted).toMatchObject({ status: 'resolved', resolution: 'evicted' });
    expect(evicted!.notes.at(-1)!.note).toMatch(/at most 3 open incidents \(KUBEVIGIL_MAX_OPEN_INCIDENTS\)/);
    expect(m.stats.evicted).toBe(1);
    expect(m.budget().openIncidents).toEqual({ used: 3, max: 3 });
  });

  it('does not open a less severe incident when every open one is more severe; its signal waits in the prologue', () => {
    const { m } = setup({ maxOpenIncidents: 2, openOnSeverity: 'medium' });
    m.process([sig('0s', 'secret.list_cluster_wide', 'sa:a/a', { severity: 'critical' })]);
    m.process([sig('1s', 'secret.list_cluster_wide', 'sa:b/b', { severity: 'high' })]);
    const r = m.process([sig('2s', 'rbac.denied', 'sa:c/c', { severity: 'medium' })]);
    expect(r.incidents).toEqual([]);
    expect(m.stats.refused).toBe(1);
    expect(m.openIncidents()).toHaveLength(2);
    // Once there is room (a critical for the same actor outranks the high), the incident shows how it began.
    const [inc] = m.process([sig('3s', 'pod.exec', 'sa:c/c', { severity: 'critical' })]).incidents.filter((i) => i.status === 'open');
    expect(inc!.timeline.map((e) => e.kind)).toEqual(['rbac.denied', 'pod.exec']);
  });

  it('restoring more open incidents than the budget keeps the most severe and most recent, and writes the rest as evicted', () => {
    const { m: before } = setup();
    const incidents: Incident[] = [];
    const severities = ['low', 'critical', 'medium', 'high', 'critical'];
    severities.forEach((severity, i) => {
      const [inc] = before.process([sig(`${i}s`, 'secret.list_cluster_wide', `sa:n${i}/x`, { severity: 'high' })]).incidents;
      incidents.push({ ...inc!, severity: severity as Incident['severity'], updatedAt: inc!.updatedAt + i });
    });
    const { m } = setup({ maxOpenIncidents: 3 });
    m.restore(incidents);
    expect(
      m
        .openIncidents()
        .map((i) => i.severity)
        .sort(),
    ).toEqual(['critical', 'critical', 'high']);
    const written = m.finalize();
    expect(written.map((i) => [i.severity, i.status, i.resolution])).toEqual(
      expect.arrayContaining([
        ['medium', 'resolved', 'evicted'],
        ['low', 'resolved', 'evicted'],
      ]),
    );
    expect(written).toHaveLength(2);
  });
});

describe('count budget: floods of distinct actors', () => {
  it('more distinct actors than the threshold doing the same thing become one flood incident', () => {
    const { m } = setup({ floodActors: 5 });
    for (let i = 0; i < 500; i++) m.process([sig(`${i}s`, 'secret.list_cluster_wide', `user:attacker-${i}`, { severity: 'high', rule: 'list-secrets' })]);
    const open = m.openIncidents();
    expect(open).toHaveLength(6);
    const flood = open.filter((i) => i.flood);
    expect(flood).toHaveLength(1);
    expect(flood[0]!.flood).toMatchObject({ pattern: 'list-secrets', actors: 500 });
    expect(flood[0]!.flood!.sample).toHaveLength(10);
    // The flood incident is written at its doubling points, not once per signal.
    expect(m.finalize().length).toBeLessThanOrEqual(1);
    expect(m.stats.flooded).toBe(495);
    expect(m.budget().floodIncidents).toBe(1);
  });

  it('a flooded actor’s next signals join the flood, and another pattern is counted on its own', () => {
    const { m } = setup({ floodActors: 2 });
    for (let i = 0; i < 10; i++) m.process([sig(`${i}s`, 'secret.list_cluster_wide', `user:a${i}`, { severity: 'high', rule: 'list' })]);
    const flood = m.openIncidents().find((i) => i.flood)!;
    m.process([sig('20s', 'pod.exec', 'user:a9', { severity: 'critical', rule: 'exec' })]);
    expect(m.get(flood.id)!.timeline.some((e) => e.kind === 'pod.exec')).toBe(true);
    expect(m.openIncidents()).toHaveLength(3);
  });

  it('the window ends: after it, a new actor of the pattern opens its own incident again', () => {
    const { m, clock } = setup({ floodActors: 2, floodWindowMs: 60_000, quietPeriodMs: 30_000 });
    for (let i = 0; i < 5; i++) m.process([sig(`${i}s`, 'secret.list_cluster_wide', `user:a${i}`, { severity: 'high', rule: 'list' })]);
    clock.t += 120_000;
    m.sweep();
    expect(m.openIncidents()).toHaveLength(0);
    m.process([sig('200s', 'secret.list_cluster_wide', 'user:late', { severity: 'high', rule: 'list' })]);
    expect(m.openIncidents().map((i) => [i.actor.key, !!i.flood])).toEqual([['user:late', false]]);
  });
});

describe('count budget: prologues and windows', () => {
  it('prologue signals stay within their total, least recently active actors forgotten first', () => {
    const { m } = setup({ lookbackTotal: 100 });
    for (let i = 0; i < 1000; i++) m.process([sig(`${i}s`, 'rbac.permission_enumeration', `user:u${i}`)]);
    expect(m.budget().prologueSignals).toEqual({ used: 100, max: 100 });
    expect(m.stats.prologueEvicted).toBe(900);
  });

  it('window entries stay within their total over all actors, least recently fed actors forgotten first', () => {
    const { correlations } = compileCorrelations(
      [
        {
          file: 'c.yaml',
          doc: {
            correlations: [
              {
                id: 'three-denials',
                title: 'Three denials',
                description: 'test; false positives: none',
                type: 'event_count',
                rules: ['rbac.denied'],
                condition: { gte: 3 },
                timespan: '30m',
                severity: 'medium',
              },
            ],
          },
        },
      ],
      new Set(),
    );
    const engine = new CorrelationEngine(correlations, { maxEntries: 1000 });
    const m = new IncidentManager(engine, { now: () => Date.UTC(2026, 0, 1) }, {});
    for (let i = 0; i < 5000; i++) m.process([sig(`${i}s`, 'rbac.denied', `user:u${i}`)]);
    expect(m.budget().windowEntries).toEqual({ used: 1000, max: 1000 });
    expect(engine.stats.evictedGroups).toBe(4000);
    // The most recent actors still correlate: two more denials of the last one fire.
    m.process([sig('6000s', 'rbac.denied', 'user:u4999'), sig('6001s', 'rbac.denied', 'user:u4999')]);
    expect(m.openIncidents().map((i) => i.actor.key)).toEqual(['user:u4999']);
  });
});
