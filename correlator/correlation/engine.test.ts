import { describe, expect, it } from 'vitest';
import { signalFromSpec } from './rule-tests.js';
import { CorrelationEngine, type SlotState } from './engine.js';
import { compileCorrelations, parseDuration } from './rules.js';
import { formatProblem } from '../detection/problems.js';
import type { Signal } from '../signal.js';
import { heapAfterGc } from '../../test/helpers/heap.js';

function compile(doc: unknown, ruleIds: string[] = []) {
  const r = compileCorrelations([{ file: 'c.yaml', doc }], new Set(ruleIds));
  return r;
}

const base = { title: 't', description: 'for tests; false positives: none', severity: 'high', mitre: ['T1098'] };
const sig = (at: string, kind: string, actor = 'sa:a/b', extra: Record<string, unknown> = {}): Signal =>
  signalFromSpec({ at, kind, actor, ...extra }, Math.random() * 1e9, [])!;

describe('correlation rules', () => {
  it('parses durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('10 minutes')).toBeUndefined();
  });

  it('reports every problem at once with advice', () => {
    const r = compile({
      correlations: [
        { ...base, id: 'a-rule', type: 'sometimes', rules: ['nope'], timespan: '0s', condition: { gte: 'x' } },
        { ...base, id: 'b-rule', type: 'value_count', rules: ['rbac.denied'], timespan: '5m', condition: { gte: 2 } },
        { ...base, id: 'c-rule', type: 'temporal', rules: ['c-rule', 'rbac.denied'], timespan: '5m' },
      ],
    });
    const lines = r.problems.map(formatProblem);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/a-rule: type: type must be one of event_count, value_count, temporal, temporal_ordered/),
        expect.stringMatching(/a-rule: rules\[0\]: "nope" is neither a signal kind/),
        expect.stringMatching(/a-rule: timespan: timespan \("0s"\) must be a duration of at least 1s/),
        expect.stringMatching(/a-rule: condition: condition is one comparison/),
        expect.stringMatching(/b-rule: field: value_count needs field/),
        expect.stringMatching(/c-rule: rules\[0\]: "c-rule" is neither/),
      ]),
    );
  });

  it('rejects correlations that refer to each other in a cycle', () => {
    const r = compile({
      correlations: [
        { ...base, id: 'x-rule', type: 'temporal', rules: ['y-rule', 'rbac.denied'], timespan: '5m' },
        { ...base, id: 'y-rule', type: 'temporal', rules: ['x-rule', 'rbac.denied'], timespan: '5m' },
      ],
    });
    expect(r.problems.map(formatProblem).join('\n')).toMatch(/cycle/);
  });
});

describe('CorrelationEngine', () => {
  it('groups by alias across references that name the field differently', () => {
    const { correlations, problems } = compile({
      correlations: [
        {
          ...base,
          id: 'same-target',
          type: 'temporal',
          rules: ['secret.read', 'mtls.failed'],
          group_by: ['ns'],
          aliases: { ns: { 'secret.read': 'target.namespace', 'mtls.failed': 'attributes.destinationNamespace' } },
          timespan: '10m',
        },
      ],
    });
    expect(problems).toEqual([]);
    const e = new CorrelationEngine(correlations);
    expect(e.process(sig('0s', 'secret.read', 'sa:a/one', { target: { namespace: 'payments' } }))).toEqual([]);
    const f = e.process(sig('1m', 'mtls.failed', 'sa:b/two', { attributes: { destinationNamespace: 'payments' } }));
    expect(f.map((x) => [x.correlation.id, x.group, x.signals.length])).toEqual([['same-target', 'payments', 2]]);
  });

  it('fires once per timespan per group, then stays quiet while signals keep coming', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'many-denials', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 3 }, timespan: '1m' }],
    });
    const e = new CorrelationEngine(correlations);
    const fired = ['0s', '10s', '20s', '30s', '40s', '90s', '95s', '100s'].map((at) => e.process(sig(at, 'rbac.denied')).length);
    expect(fired).toEqual([0, 0, 1, 0, 0, 1, 0, 0]);
  });

  it('checkpoints a group as JSON that restores the same windows, firing state included', () => {
    const { correlations } = compile({
      correlations: [
        { ...base, id: 'many-denials', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 3 }, timespan: '1m' },
        { ...base, id: 'deny-then-exec', type: 'temporal_ordered', rules: ['rbac.denied', 'pod.exec'], timespan: '10m' },
        { ...base, id: 'namespaces', type: 'value_count', rules: ['rbac.denied'], field: 'target.namespace', condition: { gte: 3 }, timespan: '10m' },
      ],
    });
    const feed = ['0s', '10s', '20s'].map((at, i) => sig(at, 'rbac.denied', 'sa:a/b', { target: { namespace: `ns-${i % 2}` } }));
    const later = [sig('30s', 'rbac.denied', 'sa:a/b', { target: { namespace: 'ns-9' } }), sig('40s', 'pod.exec')];
    const one = new CorrelationEngine(correlations);
    one.trackChanges();
    for (const x of feed) one.process(x);
    const byId = new Map(feed.map((x) => [x.id, x]));
    // Signals by reference, as a checkpoint writes them when their offsets are known.
    expect(one.takeDirty()).toEqual(['sa:a/b']);
    const state = JSON.parse(one.exportSlot('sa:a/b', (x) => JSON.stringify({ ref: x.id }))!) as {
      signals: Record<string, { ref: string }>;
      windows: SlotState['windows'];
    };
    // Each signal once, under a short name the entries use (its id is in what the caller wrote).
    expect(
      Object.values(state.signals)
        .map((r) => r.ref)
        .sort(),
    ).toEqual([...byId.keys()].sort());
    expect(Object.keys(state.signals).every((name) => name.length < 4)).toBe(true);
    // The event count fired (its lastFire is a time); the others never did (null, not -Infinity).
    expect(state.windows['many-denials']!.lastFire).toBe(feed[2]!.eventTime);
    expect(state.windows['namespaces']!.lastFire).toBeNull();

    const two = new CorrelationEngine(correlations);
    two.importSlot('sa:a/b', { signals: Object.fromEntries(Object.entries(state.signals).map(([id, r]) => [id, byId.get(r.ref)!])), windows: state.windows });
    const fired = (e: CorrelationEngine) => later.map((x) => e.process(x).map((f) => [f.correlation.id, f.signals.map((y) => y.id)]));
    const expected = fired(one);
    // The restored engine stays quiet for many-denials and completes the other two with the same signals.
    expect(expected.flat().map(([id]) => id)).toEqual(['namespaces', 'deny-then-exec']);
    expect(fired(two)).toEqual(expected);
  });

  it('restores whether a window holds one value from its checkpointed entries', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'ns', type: 'value_count', rules: ['secret.read'], field: 'target.namespace', condition: { gte: 2 }, timespan: '1m' }],
    });
    const read = (at: string, namespace: string) => sig(at, 'secret.read', 'sa:a/b', { target: { namespace } });
    const one = new CorrelationEngine(correlations);
    // a, b (fires), a while quiet: the window holds two values.
    expect([read('0s', 'a'), read('30s', 'b'), read('50s', 'a')].map((x) => one.process(x).length)).toEqual([0, 1, 0]);
    const state = JSON.parse(one.exportSlot('sa:a/b', (x) => JSON.stringify(x))!) as SlotState;
    const two = new CorrelationEngine(correlations);
    two.importSlot('sa:a/b', state);
    // At the end of the quiet timespan the window is b (30s), a, a: two values, though the arrival repeats one.
    const last = read('90s', 'a');
    expect(two.process(last).map((f) => f.correlation.id)).toEqual(['ns']);
    expect(one.process(last).map((f) => f.correlation.id)).toEqual(['ns']);
  });
  it('bounds state per group and in total, and counts what it evicts or drops', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'bounded', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 1000 }, timespan: '1h' }],
    });
    const e = new CorrelationEngine(correlations, { maxGroups: 10, maxPerGroup: 5, allowedLatenessMs: 60_000 });
    for (let i = 0; i < 20; i++) e.process(sig(`${i}s`, 'rbac.denied', 'sa:a/hot'));
    expect(e.stats.evictedEntries).toBe(15);
    for (let i = 0; i < 25; i++) e.process(sig('30s', 'rbac.denied', `sa:a/actor-${i}`));
    expect(e.size).toBe(10);
    expect(e.stats.evictedGroups).toBe(16);
    // Later than one timespan plus the allowed lateness behind the newest event of its group: dropped.
    e.process(sig('3h', 'rbac.denied', 'sa:a/late'));
    e.process(sig('1h', 'rbac.denied', 'sa:a/late'));
    expect(e.stats.lateDropped).toBe(1);
    expect(e.stats.ungrouped).toBe(0);
  });

  it('evicts the least recently used group, evicting on and on as groups are touched and added', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'bounded', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 1000 }, timespan: '1h' }],
    });
    const e = new CorrelationEngine(correlations, { maxGroups: 3, allowedLatenessMs: 60_000 });
    const feed = (actor: string) => e.process(sig('10s', 'rbac.denied', `sa:a/${actor}`));
    const held = () => ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].filter((a) => e.exportSlot(`sa:a/${a}`, () => '{}') !== undefined);
    for (const a of ['a', 'b', 'c']) feed(a);
    // a is touched: it moves behind c, so b and then c go first.
    feed('a');
    feed('d');
    expect(held()).toEqual(['a', 'c', 'd']);
    feed('e');
    expect(held()).toEqual(['a', 'd', 'e']);
    feed('f');
    expect(held()).toEqual(['d', 'e', 'f']);
    // The whole order once more, after the map has lost and regained every key.
    for (const a of ['g', 'h', 'a']) feed(a);
    expect(held()).toEqual(['a', 'g', 'h']);
    expect(e.stats.evictedGroups).toBe(6);
  });

  it('filters with where: and skips signals without a group value', () => {
    const { correlations } = compile({
      correlations: [
        {
          ...base,
          id: 'allowed-reads',
          type: 'event_count',
          rules: ['secret.read'],
          condition: { gte: 2 },
          timespan: '5m',
          where: { field: 'outcome', eq: 'allowed' },
          group_by: ['target.namespace'],
        },
      ],
    });
    const e = new CorrelationEngine(correlations);
    e.process(sig('0s', 'secret.read', 'sa:a/b', { outcome: 'denied', target: { namespace: 'x' } }));
    e.process(sig('1s', 'secret.read', 'sa:a/b', { target: {} }));
    expect(e.stats.ungrouped).toBe(1);
    expect(e.process(sig('2s', 'secret.read', 'sa:a/b', { target: { namespace: 'x' } }))).toEqual([]);
    expect(e.process(sig('3s', 'secret.read', 'sa:a/c', { target: { namespace: 'x' } }))).toHaveLength(1);
  });
  it('groups by the actor key, and counts a signal without one as ungrouped instead of failing', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'reads', type: 'event_count', rules: ['secret.read'], condition: { gte: 2 }, timespan: '5m' }],
    });
    const e = new CorrelationEngine(correlations);
    e.process(sig('0s', 'secret.read', ''));
    e.process({ ...sig('1s', 'secret.read'), actor: undefined } as unknown as Signal);
    expect(e.stats.ungrouped).toBe(2);
    expect(e.size).toBe(0);
    expect(e.process(sig('2s', 'secret.read', 'sa:a/b'))).toEqual([]);
    expect(e.process(sig('3s', 'secret.read', 'sa:a/c'))).toEqual([]);
    const fired = e.process(sig('4s', 'secret.read', 'sa:a/b'));
    expect(fired.map((f) => [f.group, f.signals.length])).toEqual([['sa:a/b', 2]]);
  });
  it('keeps every entry of a signal in a live group when its groupings evict one another', () => {
    // Two correlations grouped by the actor around one grouped by namespace: one signal feeds the
    // actor's group, then a namespace group whose creation can evict that very actor group, then the
    // actor's group again; groups also expire between signals. Every entry counted must sit in a
    // group that a checkpoint can export.
    const { correlations } = compile({
      correlations: [
        { ...base, id: 'by-actor-1', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 1000 }, timespan: '1h' },
        { ...base, id: 'by-ns', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 1000 }, timespan: '1h', group_by: ['target.namespace'] },
        { ...base, id: 'by-actor-2', type: 'event_count', rules: ['rbac.denied'], condition: { gte: 1000 }, timespan: '1h' },
      ],
    });
    let x = 11;
    // The high bits: the low bits of this generator repeat with a short period.
    const next = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((x / 2 ** 31) * n);
    };
    for (const maxGroups of [2, 3, 5]) {
      const e = new CorrelationEngine(correlations, { maxGroups, allowedLatenessMs: 60_000 });
      e.trackChanges();
      const keys = new Set<string>();
      for (let i = 0; i < 400; i++) {
        e.process(sig(`${i}s`, 'rbac.denied', `sa:a/actor-${next(4)}`, { target: { namespace: `ns-${next(4)}` } }));
        // Now and then every group expires between two signals: the next signal must not file into
        // the group its predecessor used.
        if (i % 25 === 24) e.expire(Date.parse('2030-01-01T00:00:00Z'));
        for (const k of e.takeDirty()) keys.add(k);
      }
      let exported = 0;
      for (const k of keys) {
        const state = e.exportSlot(k, () => '{}');
        if (state) for (const w of Object.values((JSON.parse(state) as SlotState).windows)) exported += w.entries.length;
      }
      expect(e.stats.evictedGroups).toBeGreaterThan(100);
      expect(exported).toBe(e.entries);
    }
  });

  it('counts distinct values by content however many different values it has seen', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'names', type: 'value_count', rules: ['secret.read'], field: 'target.name', condition: { gte: 3 }, timespan: '1m' }],
    });
    const e = new CorrelationEngine(correlations);
    let firings = 0;
    // Far more distinct values than the engine shares one string for; each actor reads two names, then
    // a copy of the first (built anew, so not the same string), then a third: only the third fires.
    for (let i = 0; i < 12_000; i++) {
      const actor = `sa:a/actor-${i}`;
      const read = (at: string, name: string) => e.process(sig(at, 'secret.read', actor, { target: { name } })).length;
      firings += read('0s', `name-${i}-a`) + read('1s', `name-${i}-b`);
      expect(read('2s', ['name', String(i), 'a'].join('-'))).toBe(0);
      expect(read('3s', `name-${i}-c`)).toBe(1);
    }
    expect(firings).toBe(0);
  });

  it('keeps counted values without the longer strings they were cut from', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'names', type: 'value_count', rules: ['secret.read'], field: 'target.name', condition: { gte: 50 }, timespan: '1h' }],
    });
    const e = new CorrelationEngine(correlations);
    const before = heapAfterGc();
    // Each name is a regular expression's match in a line of 4 MB: V8 keeps such a match as a slice
    // that holds the whole line. Shared as the engine's own copy, the value holds no line (and V8
    // turns the slice itself into a reference to that copy, so the signal holding it does not either).
    for (let i = 0; i < 8; i++) {
      const line = `${'x'.repeat(4 << 20)} name=secret-of-workload-${i} ${'y'.repeat(16)}`;
      const name = /name=(\S+)/.exec(line)![1]!;
      e.process(sig(`${i}s`, 'secret.read', 'sa:a/b', { target: { name } }));
    }
    const held = heapAfterGc() - before;
    expect(e.entries).toBe(8);
    expect(held).toBeLessThan(4 << 20);
  });

  it('holds no counted value once its windows are gone, however long the values were', () => {
    const { correlations } = compile({
      correlations: [{ ...base, id: 'names', type: 'value_count', rules: ['secret.read'], field: 'target.name', condition: { gte: 50 }, timespan: '1m' }],
    });
    const e = new CorrelationEngine(correlations, { allowedLatenessMs: 0 });
    const before = heapAfterGc();
    // Sixteen names of 1 MB each, from sixteen actors, then every window expires.
    for (let i = 0; i < 16; i++) e.process(sig(`${i}s`, 'secret.read', `sa:a/actor-${i}`, { target: { name: `${i}-${'n'.repeat(1 << 20)}` } }));
    expect(e.expire(Date.parse('2030-01-01T00:00:00Z'))).toBe(16);
    expect(e.entries).toBe(0);
    expect(heapAfterGc() - before).toBeLessThan(4 << 20);
  });

  it('fires value_count and temporal correlations as a plain recount of every window does, single-valued windows included', () => {
    // Windows whose entries keep to one value (value_count) or one reference (temporal) skip the
    // count when the condition needs two: checked against a model that counts every window of an
    // in-order stream from scratch.
    const kinds = ['secret.read', 'rbac.denied', 'pod.exec'];
    const specs = [
      ...[{ gte: 2 }, { gte: 3 }, { gt: 1 }, { lte: 1 }, { eq: 1 }, { eq: 2 }, { gte: 1 }].map((condition) => ({
        type: 'value_count',
        rules: ['secret.read', 'rbac.denied'],
        field: 'target.namespace',
        condition,
      })),
      ...[undefined, { gte: 2 }, { lte: 1 }, { eq: 2 }, { gte: 1 }].map((condition) => ({
        type: 'temporal',
        rules: kinds,
        ...(condition ? { condition } : {}),
      })),
    ];
    const { correlations } = compile({ correlations: specs.map((c, i) => ({ ...base, id: `c-${i}`, timespan: '1m', ...c })) });
    let x = 11;
    // The high bits of the generator: its low bits repeat with short periods.
    const next = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((x / 2 ** 31) * n);
    };
    // Runs of one namespace and one kind per actor, now and then another (and back), some signals without a namespace.
    const stream: Signal[] = [];
    const namespace = ['ns-a', 'ns-b', 'ns-c'];
    const kind = ['secret.read', 'secret.read', 'rbac.denied'];
    for (let i = 0; i < 4000; i++) {
      const a = next(3);
      if (next(40) === 0) namespace[a] = `ns-${next(4)}`;
      if (next(30) === 0) kind[a] = kinds[next(3)]!;
      const target = next(10) === 0 ? {} : { namespace: next(12) === 0 ? `ns-${next(4)}` : namespace[a]! };
      stream.push(sig(`${i * 3}s`, next(12) === 0 ? kinds[next(3)]! : kind[a]!, `sa:a/actor-${a}`, { target }));
    }
    const e = new CorrelationEngine(correlations);
    const got = stream.flatMap((s) => e.process(s).map((f) => `${f.correlation.id}|${f.group}|${f.time}|${f.signals.map((y) => y.id).join(',')}`));
    // The model: per correlation and actor, its signals within one timespan of the newest, counted
    // anew on every arrival of one of them; once fired, quiet for one timespan.
    const want: string[] = [];
    const seen = new Map<string, Signal[]>();
    const fired = new Map<string, number>();
    for (const s of stream) {
      correlations.forEach((c, i) => {
        const spec = specs[i]!;
        if (!spec.rules.includes(s.kind)) return;
        const key = `${c.id}|${s.actor.key}`;
        const held = (seen.get(key) ?? []).filter((y) => y.eventTime >= s.eventTime - 60_000);
        held.push(s);
        seen.set(key, held);
        const last = fired.get(key);
        if (last !== undefined && s.eventTime - last < 60_000) return;
        const n = new Set(held.map((y) => (spec.type === 'temporal' ? y.kind : y.target.namespace)).filter((v) => v !== undefined)).size;
        const [op, value] = Object.entries(spec.condition ?? { gte: spec.rules.length })[0]!;
        const holds = op === 'gte' ? n >= value : op === 'gt' ? n > value : op === 'lte' ? n <= value : n === value;
        if (!holds) return;
        fired.set(key, s.eventTime);
        want.push(`${c.id}|${s.actor.key}|${s.eventTime}|${held.map((y) => y.id).join(',')}`);
      });
    }
    expect(new Set(got.map((g) => g.split('|')[0])).size).toBe(specs.length);
    expect(got.sort()).toEqual(want.sort());
  });
  it('takes a window for single-valued again only after a count that found one value', () => {
    // No lateness, so a window holds only its timespan. a, b (eq 2 fires), c while quiet, a (the
    // window is c, a: fires), c at the end of the quiet timespan (the window is a, c: fires: two values, not c alone).
    const { correlations } = compile({
      correlations: [
        { ...base, id: 'ns', type: 'value_count', rules: ['secret.read'], field: 'target.namespace', condition: { eq: 2 }, timespan: '1m' },
        { ...base, id: 'kinds', type: 'temporal', rules: ['secret.list', 'rbac.denied', 'pod.exec'], condition: { eq: 2 }, timespan: '1m' },
      ],
    });
    const e = new CorrelationEngine(correlations, { allowedLatenessMs: 0 });
    const read = (at: string, namespace: string) => e.process(sig(at, 'secret.read', 'sa:a/b', { target: { namespace } })).map((f) => f.correlation.id);
    expect([read('0s', 'a'), read('30s', 'b'), read('50s', 'c'), read('95s', 'a'), read('155s', 'c')]).toEqual([[], ['ns'], [], ['ns'], ['ns']]);
    const act = (at: string, kind: string) => e.process(sig(at, kind, 'sa:c/d')).map((f) => f.correlation.id);
    const kinds = [act('0s', 'secret.list'), act('30s', 'rbac.denied'), act('50s', 'pod.exec'), act('95s', 'secret.list'), act('155s', 'pod.exec')];
    expect(kinds).toEqual([[], ['kinds'], [], ['kinds'], ['kinds']]);
  });
  it('counts distinct values incrementally exactly as a recount would, late and evicted entries included', () => {
    const { correlations } = compile({
      correlations: [
        {
          ...base,
          id: 'namespaces',
          type: 'value_count',
          rules: ['rbac.denied', 'secret.read'],
          field: 'target.namespace',
          condition: { gte: 6 },
          timespan: '2m',
        },
        { ...base, id: 'few-names', type: 'value_count', rules: ['rbac.denied'], field: 'target.name', condition: { lte: 2 }, timespan: '1m' },
        { ...base, id: 'exact', type: 'value_count', rules: ['secret.read'], field: 'target.resource', condition: { eq: 3 }, timespan: '90s' },
      ],
    });
    // A fixed pseudo-random stream: mostly in order, some late (within and beyond the lateness), values repeating.
    let x = 7;
    const next = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    const stream: Signal[] = [];
    for (let i = 0; i < 3000; i++) {
      const late = next(5) === 0 ? next(200) : 0;
      // Skewed values: the distinct counts hover around the conditions.
      const target: Record<string, string> = {
        namespace: next(3) ? 'ns-0' : `ns-${next(9)}`,
        resource: next(2) ? 'pods' : ['pods', 'secrets', 'nodes', 'configmaps'][next(4)]!,
      };
      if (next(3)) target.name = next(2) ? 'n-0' : `n-${next(4)}`;
      stream.push(sig(`${Math.max(0, i * 2 - late)}s`, next(2) ? 'rbac.denied' : 'secret.read', `sa:a/actor-${next(3)}`, { target }));
    }
    const run = (limits: Record<string, number>, reload = false) => {
      const e = new CorrelationEngine(correlations, { allowedLatenessMs: 60_000, ...limits });
      return stream.map((s, i) => {
        if (reload && i === 1500) e.replaceCorrelations([...correlations]);
        return e.process(s).map((f) => `${f.correlation.id}|${f.group}|${f.time}|${f.signals.map((y) => y.id).join(',')}`);
      });
    };
    for (const maxPerGroup of [256, 20]) {
      const recount = run({ distinctFrom: Infinity, maxPerGroup });
      expect(recount.flat().length).toBeGreaterThan(10);
      expect(run({ distinctFrom: 0, maxPerGroup })).toEqual(recount);
      expect(run({ distinctFrom: 4, maxPerGroup })).toEqual(recount);
      expect(run({ distinctFrom: 4, maxPerGroup }, true)).toEqual(run({ distinctFrom: Infinity, maxPerGroup }, true));
    }
  });
});
