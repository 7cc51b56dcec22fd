import { describe, expect, it } from 'vitest';
import { loadRules } from '../../services/rules.js';
import { IncidentManager } from '../incidents.js';
import { sharedMembers, type Signal } from '../signal.js';
import { CorrelationEngine, type Firing, type SlotState } from './engine.js';
import { decodeId, encodeId, PackedSignal, SOURCE_OFFSET, unpacked } from './packed.js';
import { signalFromSpec } from './rule-tests.js';

const spec = (i: number, extra: Record<string, unknown> = {}): Signal =>
  signalFromSpec(
    { at: `${i}s`, kind: 'rbac.denied', actor: `sa:ns-${i % 3}/sa-${i % 5}`, outcome: 'denied', target: { namespace: 'x', resource: 'secrets' }, ...extra },
    i,
    [],
  )!;

/** A signal as a connector makes it: with evidence, attributes, a cluster. */
function full(i: number): Signal {
  return {
    ...spec(i),
    matched: [{ field: 'verb', op: 'eq', expected: 'get', actual: 'get' }],
    excerpt: { user: { username: `u-${i}` }, objectRef: { resource: 'secrets', name: `s-${i}` }, n: i },
    attributes: { binding: `b-${i % 2}`, role: 'view' },
    cluster: 'prod',
    mitre: ['T1552.007'],
    entities: ['ns:x', `pod:x/p-${i % 4}`],
  };
}

describe('PackedSignal', () => {
  it('rebuilds the signal packed, evidence, source offset and all, in fresh objects', () => {
    let prev: PackedSignal | undefined;
    for (let i = 0; i < 20; i++) {
      const s = full(i);
      Object.defineProperty(s, SOURCE_OFFSET, { value: 1000 + i, configurable: true });
      const p = PackedSignal.pack(s, undefined, prev);
      const back = p.signal();
      expect(back).toEqual(s);
      expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(s)));
      expect((back as Signal & { [SOURCE_OFFSET]?: number })[SOURCE_OFFSET]).toBe(1000 + i);
      expect(p.offset).toBe(1000 + i);
      expect(p.id).toBe(s.id);
      expect(p.t).toBe(s.eventTime);
      expect(p.eventTime).toBe(s.eventTime);
      // Fresh objects: changing one rebuilt signal changes neither the packed one nor another.
      back.actor.name = 'changed';
      back.entities.push('changed');
      expect(p.signal()).toEqual(s);
      prev = p;
    }
  });

  it('shares the shape of an earlier signal of the same actor', () => {
    const a = PackedSignal.pack(spec(0), undefined);
    const b = PackedSignal.pack(spec(15), undefined, a);
    const shapeOf = (p: PackedSignal) => (p as unknown as { shape: unknown }).shape;
    expect(shapeOf(b)).toBe(shapeOf(a));
    expect(b.signal()).toEqual(spec(15));
    // Another kind: another shape, the actor still shared.
    const c = PackedSignal.pack(spec(30, { kind: 'secret.read' }), undefined, b);
    expect(shapeOf(c)).not.toBe(shapeOf(b));
    expect((shapeOf(c) as { actor: unknown }).actor).toBe((shapeOf(b) as { actor: unknown }).actor);
    expect(c.signal()).toEqual(spec(30, { kind: 'secret.read' }));
  });

  it('finds the shape again through an entity list that signals share (read from the bus), and checks it', () => {
    const shapeOf = (p: PackedSignal) => (p as unknown as { shape: unknown }).shape;
    // Signals read from the bus share their members (services/bus/signal-reader.ts).
    const { id: _i, eventTime: _t, observedTime: _o, matched: _m, excerpt: _e, ...members } = { ...spec(1), entities: ['ns:x', 'pod:x/p-1'] };
    const shared = { ...spec(1), ...sharedMembers(JSON.parse(JSON.stringify(members))) } as Signal;
    const a = PackedSignal.pack(shared, undefined);
    // No earlier signal offered: the list names the shape.
    const b = PackedSignal.pack({ ...shared, id: 'b'.repeat(32) }, undefined);
    expect(shapeOf(b)).toBe(shapeOf(a));
    // The same list with another actor (a copy changed after reading): not that shape.
    const other = { ...shared, id: 'c'.repeat(32), actor: { ...shared.actor, key: 'sa:ns-9/sa-9', name: 'sa-9' } };
    const c = PackedSignal.pack(other, undefined);
    expect(shapeOf(c)).not.toBe(shapeOf(a));
    expect(c.signal()).toEqual(other);
    // The same objects, read again, find the shape by what they are; any other member is compared.
    const e = PackedSignal.pack({ ...shared, id: 'e'.repeat(32) }, undefined);
    const again = PackedSignal.pack({ ...shared, id: 'f'.repeat(32) }, undefined);
    expect(shapeOf(again)).toBe(shapeOf(e));
    for (const changed of [
      { kind: 'secret.read' },
      { severity: 'critical' },
      { outcome: 'allowed' },
      { cluster: 'prod' },
      { attributes: { habitual: 'yes' } },
    ]) {
      const x = { ...shared, id: '1'.repeat(32), ...changed } as Signal;
      const px = PackedSignal.pack(x, undefined);
      expect(shapeOf(px)).not.toBe(shapeOf(e));
      expect(px.signal()).toEqual(x);
    }
    // Equal members in objects not frozen (a copy made after reading) are compared, and equal.
    const copy = { ...shared, id: '2'.repeat(32), attributes: { ...shared.attributes } };
    const pc = PackedSignal.pack(copy, undefined, e);
    expect(shapeOf(pc)).toBe(shapeOf(e));
    expect(pc.signal()).toEqual(copy);
    // A signal of its own (not read from the bus) names nothing, whatever is frozen in it.
    const own = { ...spec(1), actor: Object.freeze({ ...spec(1).actor }), entities: ['ns:y'] };
    const d = PackedSignal.pack(own, undefined);
    expect(shapeOf(PackedSignal.pack({ ...own, id: 'd'.repeat(32) }, undefined))).not.toBe(shapeOf(d));
  });

  it('keeps a signal of unexpected form as it is', () => {
    const odd = { ...full(1), extraMember: { nested: [1, 2] } } as Signal;
    expect(PackedSignal.pack(odd, undefined).signal()).toEqual(odd);
    const noCluster = spec(2);
    expect('cluster' in PackedSignal.pack(noCluster, undefined).signal()).toBe(false);
    const fractional = { ...spec(3), eventTime: 0.1, observedTime: 1e15 + 0.5 };
    const p = PackedSignal.pack(fractional, undefined);
    expect(p.t).toBe(0.1);
    expect(p.signal()).toEqual(fractional);
  });

  it('encodes ids losslessly, hex ids in 16 characters', () => {
    for (const id of ['0123456789abcdef0123456789abcdef', 'ABCDEF0123456789abcdef0123456789', 'short', '', '\u0000x', 'sixteen-chars-id', 'x'.repeat(32)]) {
      expect(decodeId(encodeId(id))).toBe(id);
    }
    // One character beside the digits' ranges (/ : ` g), or beyond ASCII, and it is not a hex id.
    for (const c of ['/', ':', '`', 'g', 'F', '\u00e9', '\u0130', '\u{1F511}']) {
      const id = `${'0123456789abcdef0123456789abcde'.slice(0, 32 - c.length)}${c}`;
      expect(id).toHaveLength(32);
      expect(encodeId(id)).toBe(id);
      expect(decodeId(encodeId(id))).toBe(id);
    }
    expect(encodeId('0123456789abcdef0123456789abcdef')).toHaveLength(16);
    // An id of 16 characters is marked, so that it is never read as an encoded hex id.
    expect(encodeId('sixteen-chars-id')).toBe('\u0000sixteen-chars-id');
  });
});

describe('windows and prologues keep signals packed', () => {
  const rules = loadRules().correlations;
  // Attack-like traffic of a few actors, with evidence: correlations fire, prologues fill and open.
  const kinds = [
    'rbac.permission_enumeration',
    'secret.list_cluster_wide',
    'secret.read_cross_namespace',
    'rbac.denied',
    'pod.exec',
    'rbac.escalation_attempt',
  ];
  const stream: Signal[] = [];
  for (let i = 0; i < 600; i++) {
    const kind = kinds[(i * 7) % kinds.length]!;
    const s = signalFromSpec(
      {
        at: `${i * 3}s`,
        kind,
        actor: `sa:ns-${i % 4}/sa-${i % 6}`,
        severity: i % 50 === 49 ? 'high' : 'low',
        outcome: kind === 'rbac.denied' || kind === 'pod.exec' ? 'denied' : 'allowed',
        target: { namespace: `ns-${i % 9}`, resource: ['pods', 'secrets', 'nodes'][i % 3] },
      },
      i,
      [],
    )!;
    stream.push({ ...s, matched: [{ field: 'kind', op: 'eq', expected: kind, actual: kind }], excerpt: { i, verb: 'get' }, cluster: 'c1' });
  }

  it('fires the same correlations with the same signals as an engine that keeps them as given', () => {
    const plain = new CorrelationEngine(rules);
    const packed = new CorrelationEngine(rules);
    packed.packSignals();
    const a: Firing[] = [];
    const b: Firing[] = [];
    for (const s of stream) {
      a.push(...plain.process(s));
      b.push(...packed.process(s));
    }
    expect(a.length).toBeGreaterThan(5);
    expect(b.map((f) => [f.correlation.id, f.group, f.time, f.trigger.id])).toEqual(a.map((f) => [f.correlation.id, f.group, f.time, f.trigger.id]));
    for (let i = 0; i < a.length; i++) expect(b[i]!.signals).toEqual(a[i]!.signals);
  });

  it('gives incidents the full signals, as fed', () => {
    let now = 0;
    const m = new IncidentManager(new CorrelationEngine(rules), { now: () => now });
    const byId = new Map(stream.map((s) => [s.id, s]));
    let attached = 0;
    for (let i = 0; i < stream.length; i += 25) {
      now = stream[i]!.eventTime;
      const out = m.process(stream.slice(i, i + 25));
      for (const x of out.attached) expect(x.signal).toEqual(byId.get(x.signal.id));
      attached += out.attached.length;
    }
    expect(m.stats.opened).toBeGreaterThan(0);
    // Prologue signals joined the incidents they opened.
    expect(attached).toBeGreaterThan(m.stats.opened * 2);
  });

  it('checkpoints a packed window and restores it, also from a checkpoint of the earlier format', () => {
    const one = new CorrelationEngine(rules);
    one.packSignals();
    one.trackChanges();
    for (const s of stream.slice(0, 40)) one.process(s);
    const byId = new Map(stream.map((s) => [s.id, s]));
    for (const key of one.takeDirty()) {
      const json = one.exportSlot(key, (s) => JSON.stringify({ ref: s.id }));
      if (!json) continue;
      const state = JSON.parse(json) as { signals: Record<string, { ref: string }>; windows: SlotState['windows'] };
      const two = new CorrelationEngine(rules);
      two.packSignals();
      const signals = Object.fromEntries(Object.entries(state.signals).map(([id, r]) => [id, byId.get(r.ref)!]));
      two.importSlot(key, { signals, windows: state.windows });
      expect(two.exportSlot(key, (s) => JSON.stringify({ ref: s.id }))).toBe(json);
    }
    // A window as the code before packing wrote it ("lastFire": null for never).
    const s0 = stream[0]!;
    const old = {
      signals: { [s0.id]: s0 },
      windows: {
        [rules.find((c) => c.refs.includes(s0.kind))!.id]: { entries: [{ t: s0.eventTime, ref: 0, ids: s0.id }], maxT: s0.eventTime, lastFire: null },
      },
    };
    const three = new CorrelationEngine(rules);
    three.packSignals();
    three.importSlot(s0.actor.key, old);
    expect(three.entries).toBe(1);
    // Written again in today's format: the signal under a short name, the same window.
    const again = JSON.parse(three.exportSlot(s0.actor.key, (s) => JSON.stringify(unpacked(s)))!) as SlotState;
    const [[name, signal]] = Object.entries(again.signals) as [[string, Signal]];
    expect(signal).toEqual(JSON.parse(JSON.stringify(s0)));
    const [correlation, window] = Object.entries(old.windows)[0]!;
    // The entry (one signal at its time, first reference, no value) in its short form.
    expect(again.windows).toEqual({ [correlation]: { ...window, entries: [[s0.eventTime, name]] } });
  });
});
