import { describe, expect, it } from 'vitest';
import { IdentityBaseline, StateBaselineStore } from './baseline.js';
import { CorrelationEngine } from './correlation/engine.js';
import { actorFromUsername } from './entities.js';
import { IncidentManager } from './incidents.js';
import { leanSignal, sharedMembers, type Signal } from './signal.js';
import type { Severity } from './severity.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 11, 1, 10);
let n = 0;

function signal(over: Partial<Signal> & { at: number }): Signal {
  n++;
  return {
    id: `sig-${n}`,
    source: 'k8s-audit',
    kind: 'secret.read_cross_namespace',
    severity: 'high' as Severity,
    title: 'read secret',
    eventTime: over.at,
    observedTime: over.at,
    actor: actorFromUsername('system:serviceaccount:ci:deployer'),
    target: { namespace: 'billing', resource: 'secrets', name: 'db', verb: 'get' },
    outcome: 'allowed',
    entities: [],
    mitre: [],
    rule: { id: 'k8s-secret-read-cross-namespace', title: 't' },
    matched: [],
    attributes: {},
    excerpt: {},
    ...over,
  };
}

describe('IdentityBaseline', () => {
  it('judges signals read with shared members (the bus) like any other, by their own actor, kind and target', () => {
    const b = new IdentityBaseline({ habitualDays: 1 });
    const { id, eventTime, observedTime, matched, excerpt, at, ...rest } = signal({ at: T0 }) as Signal & { at: number };
    void [id, eventTime, observedTime, matched, excerpt, at];
    const shared = sharedMembers(JSON.parse(JSON.stringify(rest)))!;
    const read = (at: number, over: Partial<Signal> = {}) => ({ ...leanSignal({ id: `own-${at}`, eventTime: at, observedTime: at }, shared), ...over });
    expect(b.annotate(read(T0)).attributes.firstTime).toBe('true');
    expect(b.annotate(read(T0 + 1)).attributes).toEqual({});
    expect(b.annotate(read(T0 + DAY)).attributes.habitual).toBe('seen on 1 earlier days since 2026-12-01');
    // The same entity list with another actor, kind or namespace is another action.
    const other = actorFromUsername('system:serviceaccount:ci:other');
    expect(b.annotate(read(T0 + DAY, { actor: other })).attributes.firstTime).toBe('true');
    expect(b.annotate(read(T0 + DAY, { kind: 'secret.list' })).attributes.firstTime).toBe('true');
    expect(b.annotate(read(T0 + DAY, { target: { ...shared.target, namespace: 'payments' } })).attributes.firstTime).toBe('true');
    expect(b.annotate(read(T0 + DAY, { outcome: 'denied' })).attributes).toEqual({});
    expect(b.annotate(read(T0 + 2 * DAY)).attributes.habitual).toBe('seen on 2 earlier days since 2026-12-01');
  });

  it('marks the first time, keeps severity through a same-day burst, and lowers it once habitual on earlier days', () => {
    const b = new IdentityBaseline({ habitualDays: 3 });
    expect(b.annotate(signal({ at: T0 })).attributes.firstTime).toBe('true');
    // An attack repeating the action for hours is never routine.
    for (let i = 1; i < 50; i++) {
      const s = b.annotate(signal({ at: T0 + i * 60_000 }));
      expect(s.severity).toBe('high');
      expect(s.attributes.firstTime).toBeUndefined();
      expect(s.attributes.habitual).toBeUndefined();
    }
    b.annotate(signal({ at: T0 + DAY }));
    b.annotate(signal({ at: T0 + 2 * DAY }));
    const routine = b.annotate(signal({ at: T0 + 3 * DAY }));
    expect(routine.severity).toBe('medium');
    expect(routine.attributes.habitual).toBe('seen on 3 earlier days since 2026-12-01');
    // Another namespace is another action: first time again.
    expect(b.annotate(signal({ at: T0 + 3 * DAY, target: { namespace: 'payments', resource: 'secrets' } })).attributes.firstTime).toBe('true');
  });

  it('never lowers critical signals, and ignores refusals and info signals', () => {
    const b = new IdentityBaseline({ habitualDays: 1 });
    b.annotate(signal({ at: T0, severity: 'critical', kind: 'pod.exec' }));
    expect(b.annotate(signal({ at: T0 + DAY, severity: 'critical', kind: 'pod.exec' })).severity).toBe('critical');
    const denied = signal({ at: T0, outcome: 'denied' });
    expect(b.annotate(denied)).toBe(denied);
    const info = signal({ at: T0, severity: 'info', kind: 'activity.change' });
    expect(b.annotate(info)).toBe(info);
  });

  it('is bounded: the entries seen least recently are forgotten first, and counted', () => {
    const b = new IdentityBaseline({ maxEntries: 3 });
    for (const ns of ['a', 'b', 'c']) b.annotate(signal({ at: T0, target: { namespace: ns } }));
    b.annotate(signal({ at: T0 + 1, target: { namespace: 'a' } })); // a is recent again
    b.annotate(signal({ at: T0 + 2, target: { namespace: 'd' } }));
    expect(b.size).toBe(3);
    expect(b.evicted).toBe(1);
    expect(b.get('sa:ci/deployer|secret.read_cross_namespace|b')).toBeUndefined();
    expect(b.get('sa:ci/deployer|secret.read_cross_namespace|a')?.count).toBe(2);
  });

  it('moves only entries in the older half of the bound to the end when seen again', () => {
    const b = new IdentityBaseline({ maxEntries: 8 });
    const seen = (i: number, at: number) => b.annotate(signal({ at, target: { namespace: `n${i}` } }));
    const key = (i: number) => `sa:ci/deployer|secret.read_cross_namespace|n${i}`;
    for (let i = 0; i < 8; i++) seen(i, T0 + i);
    seen(1, T0 + 10); // in the older half: moved last
    seen(7, T0 + 11); // the newest already: left where it is
    for (let i = 8; i < 12; i++) seen(i, T0 + i + 10);
    expect([...Array(12).keys()].filter((i) => b.get(key(i)) === undefined)).toEqual([0, 2, 3, 4]);
    expect([b.get(key(1))?.count, b.get(key(7))?.count]).toEqual([2, 2]);
  });

  it('survives a restart through the store: what was learned is routine after it', async () => {
    const kv = new Map<string, string>();
    const state = { getState: async (k: string) => kv.get(k), setState: async (k: string, v: string) => void kv.set(k, v) };
    const first = new IdentityBaseline({ habitualDays: 2 });
    first.annotate(signal({ at: T0 }));
    first.annotate(signal({ at: T0 + DAY }));
    await new StateBaselineStore(state).save(first.takeChanges());
    expect(first.takeChanges().size).toBe(0);
    const second = new IdentityBaseline({ habitualDays: 2 });
    second.restore(await new StateBaselineStore(state).load());
    expect(second.annotate(signal({ at: T0 + 2 * DAY })).severity).toBe('medium');
  });

  it('feeds the incident manager: a first-time cross-namespace read opens an incident marked firstTime; the routine one does not', () => {
    let now = T0;
    const manager = new IncidentManager(new CorrelationEngine([]), { now: () => now });
    manager.baseline = new IdentityBaseline({ habitualDays: 3 });
    const first = manager.process([signal({ at: T0 })]).incidents;
    expect(first).toHaveLength(1);
    expect(first[0]!.timeline[0]!.attributes.firstTime).toBe('true');
    expect(first[0]!.rootCause.evidence.find((e) => e.type === 'novelty')?.detail).toBe(
      'First time for Service account ci/deployer: secret reads in other namespaces in billing (no earlier record of it)',
    );
    for (const d of [1, 2, 3]) {
      now = T0 + d * DAY + 3_600_000;
      manager.sweep();
      manager.process([signal({ at: now - 1 })]);
    }
    now = T0 + 4 * DAY + 3_600_000;
    manager.sweep();
    expect(manager.process([signal({ at: now - 1 })]).incidents).toEqual([]);
  });
});
