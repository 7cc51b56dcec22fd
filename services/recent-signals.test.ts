import { describe, expect, it } from 'vitest';
import { signalFromSpec } from '../correlator/correlation/rule-tests.js';
import type { Signal } from '../correlator/signal.js';
import { RecentSignals } from './recent-signals.js';

const signal = (i: number, kind = i % 2 ? 'secret.read' : 'rbac.denied'): Signal =>
  signalFromSpec(
    { at: `${i}s`, kind, actor: `sa:ns/a${i % 3}`, severity: i % 4 ? 'low' : 'high', target: { namespace: 'payments', resource: 'secrets' } },
    i,
    [],
  )!;

describe('RecentSignals', () => {
  it('lists the newest first, as they were given, and forgets the oldest past its capacity', () => {
    const recent = new RecentSignals(4);
    const all = Array.from({ length: 6 }, (_, i) => signal(i));
    recent.add(all.slice(0, 3));
    // Not yet full: the newest is the last added.
    expect(recent.list(10)).toEqual([all[2], all[1], all[0]]);
    recent.add(all.slice(3));
    expect(recent.size).toBe(4);
    expect(recent.overwritten).toBe(2);
    expect(recent.list(10)).toEqual([all[5], all[4], all[3], all[2]]);
    expect(recent.list(2)).toEqual([all[5], all[4]]);
    // Parsed anew: what the API returns cannot change what is kept.
    const listed = recent.list(1)[0]!;
    listed.title = 'changed';
    expect(recent.list(1)[0]!.title).toBe(all[5]!.title);
  });

  it('filters on kind, actor and severity before parsing, and keeps nothing at capacity 0', () => {
    const recent = new RecentSignals(100);
    const all = Array.from({ length: 12 }, (_, i) => signal(i));
    recent.add(all);
    const picked = recent.list(100, (s) => s.kind === 'secret.read' && s.actor === 'sa:ns/a1' && s.severity === 'low');
    expect(picked.map((s) => s.id)).toEqual(
      all
        .filter((s) => s.kind === 'secret.read' && s.actor.key === 'sa:ns/a1' && s.severity === 'low')
        .reverse()
        .map((s) => s.id),
    );
    expect(picked.length).toBeGreaterThan(0);
    const none = new RecentSignals(0);
    none.add(all);
    expect(none.size).toBe(0);
    expect(none.list()).toEqual([]);
  });
});
