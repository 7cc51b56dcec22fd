import { describe, expect, it } from 'vitest';
import { compareIncidents, countText, firedCounts, isNewer, mergeIncidents, upsertIncident, VersionsSeen } from './incidents-store';
import type { IncidentSummary, Severity } from './types';

function inc(id: string, lastSeen: string, over: Partial<IncidentSummary> = {}): IncidentSummary {
  return {
    id,
    title: id,
    status: 'open',
    severity: 'high',
    actor: { key: 'user:a', type: 'user', name: 'a' },
    entities: [],
    blastRadius: {},
    firstSeen: lastSeen,
    lastSeen,
    createdAt: lastSeen,
    updatedAt: lastSeen,
    version: 1,
    signalCount: 1,
    countsByKind: {},
    sources: [],
    correlations: [],
    rules: [],
    mitre: [],
    ...over,
  };
}
const T = (m: number) => new Date(Date.UTC(2026, 11, 1, 12, m)).toISOString();
const ids = (l: readonly IncidentSummary[]) => l.map((i) => i.id);

describe('ordering', () => {
  it('puts the most recent first, the more severe first at the same time, then by id', () => {
    const list = [
      inc('a', T(1)),
      inc('b', T(3)),
      inc('c', T(2), { severity: 'low' }),
      inc('d', T(2), { severity: 'critical' }),
      inc('e', T(2), { severity: 'critical' }),
    ];
    expect(ids([...list].sort(compareIncidents))).toEqual(['b', 'd', 'e', 'c', 'a']);
  });
});

describe('merging pages and stream events', () => {
  it('inserts new incidents in order and keeps the higher version', () => {
    let l = mergeIncidents([], [inc('a', T(1)), inc('b', T(2))]);
    expect(ids(l)).toEqual(['b', 'a']);
    l = mergeIncidents(l, [inc('a', T(5), { version: 3, status: 'acknowledged' })]);
    expect(ids(l)).toEqual(['a', 'b']);
    expect(l[0]!.status).toBe('acknowledged');
    // An older version (a late page) does not undo a newer event.
    l = mergeIncidents(l, [inc('a', T(1), { version: 2 })]);
    expect(l[0]!.version).toBe(3);
    expect(l[0]!.lastSeen).toBe(T(5));
  });

  it('returns the same array when nothing changed', () => {
    const l = mergeIncidents([], [inc('a', T(1), { version: 2 })]);
    expect(mergeIncidents(l, [inc('a', T(1), { version: 1 })])).toBe(l);
    expect(mergeIncidents(l, [inc('a', T(1), { version: 2 })])).toBe(l);
    expect(mergeIncidents(l, [])).toBe(l);
    expect(upsertIncident(l, inc('a', T(1), { version: 1 }))).toBe(l);
  });

  it('drops an incident that stops matching the filters and skips new ones that do not', () => {
    const open = (i: IncidentSummary) => i.status === 'open';
    let l = mergeIncidents([], [inc('a', T(1)), inc('b', T(2))], open);
    l = mergeIncidents(l, [inc('a', T(3), { version: 2, status: 'resolved' }), inc('c', T(4), { status: 'resolved' })], open);
    expect(ids(l)).toEqual(['b']);
    l = upsertIncident(l, inc('b', T(5), { version: 2, status: 'resolved' }), open);
    expect(ids(l)).toEqual([]);
    const before = l;
    expect(upsertIncident(l, inc('z', T(1), { status: 'resolved' }), open)).toBe(before);
  });

  it('upserts one incident at its place by binary search', () => {
    let l: readonly IncidentSummary[] = [];
    const sev: Severity[] = ['low', 'critical', 'medium'];
    for (let i = 0; i < 50; i++) l = upsertIncident(l, inc(`i${i}`, T(i % 7), { severity: sev[i % 3]! }));
    expect(ids(l)).toEqual(ids([...l].sort(compareIncidents)));
    expect(l).toHaveLength(50);
    l = upsertIncident(l, inc('i3', T(59), { version: 2 }));
    expect(l[0]!.id).toBe('i3');
    expect(l).toHaveLength(50);
  });

  it('handles 10,000 incidents quickly', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => inc(`inc_${i}`, new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString()));
    const t0 = performance.now();
    let l = mergeIncidents([], many);
    for (let i = 0; i < 100; i++) l = upsertIncident(l, inc(`inc_${i * 7}`, T(30), { version: 2 }));
    expect(l).toHaveLength(10_000);
    expect(l[0]!.lastSeen).toBe(T(30));
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('compares versions, an absent one being 0', () => {
    expect(isNewer(undefined, inc('a', T(1)))).toBe(true);
    expect(isNewer(inc('a', T(1), { version: 2 }), inc('a', T(1), { version: 1 }))).toBe(false);
  });
});

describe('counts', () => {
  it('says incidents in the singular or plural', () => {
    expect(countText(1)).toBe('1 incident');
    expect(countText(10000)).toBe('10,000 incidents');
    expect(countText(0, 'signal')).toBe('0 signals');
  });
  it('counts rule firings with the last time', () => {
    const f = firedCounts(
      [
        { r: 'a', t: T(1) },
        { r: 'a', t: T(5) },
        { r: 'b', t: T(2) },
        { r: 'a', t: T(3) },
      ],
      (x, add) => add(x.r, x.t),
    );
    expect(f.get('a')).toEqual({ count: 3, last: Date.parse(T(5)) });
    expect(f.get('b')?.count).toBe(1);
    expect(f.has('c')).toBe(false);
  });
});

describe('versions seen', () => {
  const active = (i: IncidentSummary) => i.status !== 'resolved';
  it('keeps an incident that a newer event took off the list from coming back with a late, older page', () => {
    const seen = new VersionsSeen();
    let list = mergeIncidents([], [inc('x', T(1), { version: 4 })], active, seen);
    list = upsertIncident(list, inc('x', T(2), { version: 5, status: 'resolved' }), active, seen);
    expect(ids(list)).toEqual([]);
    // The page that was in flight when the resolution arrived.
    expect(ids(mergeIncidents(list, [inc('x', T(1), { version: 4 })], active, seen))).toEqual([]);
    expect(ids(upsertIncident(list, inc('x', T(1), { version: 4 }), active, seen))).toEqual([]);
    // Without the record of versions, it came back as open.
    expect(ids(mergeIncidents(list, [inc('x', T(1), { version: 4 })], active))).toEqual(['x']);
    // Reopened later (a newer version that matches again): listed.
    expect(ids(upsertIncident(list, inc('x', T(3), { version: 6 }), active, seen))).toEqual(['x']);
  });
  it('forgets the oldest ids past its bound', () => {
    const seen = new VersionsSeen(2);
    expect(seen.admit(inc('a', T(1), { version: 9 }))).toBe(true);
    seen.admit(inc('b', T(1)));
    seen.admit(inc('c', T(1)));
    expect(seen.admit(inc('a', T(1), { version: 1 }))).toBe(true);
    expect(seen.admit(inc('c', T(1), { version: 0 }))).toBe(false);
  });
});
