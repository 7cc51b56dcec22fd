import { describe, expect, it, vi } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../../connectors/k8s-audit/normalize.js';
import { signalJson, withoutEvidence, type Signal } from '../../correlator/signal.js';
import { loadDetector } from '../rules.js';
import { readSignal, SHARED_PARTS_KEPT, sharedPartStats } from './signal-reader.js';
import { encodeSignalsMessage, signalPositions } from './topics.js';

const signals: Signal[] = attackEvents(SEED_SCENARIO).flatMap((e) => loadDetector().detect(normalizeAuditEvent(e, 0)));

/** A signal as the producer writes it: bytes and the three numbers its headers give. */
function written(s: Signal): { value: Buffer; at: number; sharedAt: number; hash: number } {
  const { json, headers } = encodeSignalsMessage(s);
  const { evidenceAt, sharedAt, sharedHash } = signalPositions((name) => headers?.[name]);
  return { value: Buffer.from(json, 'utf8'), at: evidenceAt, sharedAt, hash: sharedHash };
}

function read(w: ReturnType<typeof written>, over: Partial<{ at: number; sharedAt: number; hash: number }> = {}): Signal {
  const { at, sharedAt, hash } = { ...w, ...over };
  return readSignal(w.value, at, sharedAt, hash) as Signal;
}

/** Counts the shared parts reading `fn` reused, parsed (and kept), and saw for the first time. */
function counted(fn: () => void): { reused: number; parsed: number; firstSeen: number } {
  const before = { ...sharedPartStats };
  fn();
  return {
    reused: sharedPartStats.reused - before.reused,
    parsed: sharedPartStats.parsed - before.parsed,
    firstSeen: sharedPartStats.firstSeen - before.firstSeen,
  };
}

const REUSED = { reused: 1, parsed: 0, firstSeen: 0 };

describe('signals read with the shared part of earlier ones', () => {
  it('gives the signal without its evidence, the first time and when the shared part is reused', () => {
    expect(signals.length).toBeGreaterThan(5);
    for (const s of signals) {
      const w = written(s);
      expect(Number.isInteger(w.sharedAt) && Number.isInteger(w.hash)).toBe(true);
      // Seen once (parsed whole), then kept, then reused (earlier signals may have kept it already).
      expect(read(w)).toEqual(withoutEvidence(s));
      const first = read(w);
      expect(first).toEqual(withoutEvidence(s));
      let again: Signal | undefined;
      expect(counted(() => (again = read(w)))).toEqual(REUSED);
      expect(again).toEqual(withoutEvidence(s));
      // Its own members are its own; the shared ones are the same objects, frozen (arrays are not:
      // V8 iterates frozen arrays several times slower).
      expect(again).not.toBe(first);
      expect(again!.actor).toBe(first.actor);
      expect(again!.entities).toBe(first.entities);
      expect(Object.isFrozen(first.actor) && Object.isFrozen(first.target) && Object.isFrozen(first.attributes) && Object.isFrozen(first.rule)).toBe(true);
      expect(Object.isFrozen(first.entities)).toBe(false);
      expect(() => {
        again!.actor.name = 'changed';
      }).toThrow(TypeError);
    }
  });

  it('reuses a shared part for another signal that repeats it, with that signal’s own id and times', () => {
    const s = signals[0]!;
    const next: Signal = { ...s, id: 'f'.repeat(32), eventTime: s.eventTime + 1000, observedTime: s.observedTime + 1500 };
    read(written(s));
    read(written(s));
    let got: Signal | undefined;
    expect(counted(() => (got = read(written(next))))).toEqual(REUSED);
    expect(got).toEqual(withoutEvidence(next));
  });

  it('reads a signal’s own members without JSON.parse when the producer wrote them, and as JSON.parse would otherwise', () => {
    const s = signals[0]!;
    read(written(s));
    read(written(s));
    // As signalId and the audit connector make them: 32 hex digits, times in whole milliseconds.
    const plain: Signal = { ...s, id: '0123456789abcdef0123456789abcdef', eventTime: 1795953600030, observedTime: 0 };
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(read(written(plain))).toEqual(withoutEvidence(plain));
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
    // Anything else is left to JSON.parse, and read as it reads it.
    for (const own of [
      { id: '0123456789ABCDEF0123456789ABCDEF' },
      { id: 'forged' },
      { id: '0123456789abcdef0123456789abcde' },
      { id: '0123456789abcdef0123456789abcdef0' },
      { id: 'x'.repeat(32) },
      { eventTime: 1795953600030.5 },
      { eventTime: 1234567890123456 },
      { eventTime: 123456789012345 },
      { eventTime: 0 },
      { eventTime: 1e21 },
      { observedTime: -5 },
      { observedTime: 7 },
    ]) {
      const other = { ...plain, ...own } as Signal;
      expect(read(written(other))).toEqual(withoutEvidence(other));
    }
    // What JSON.parse refuses (a leading zero) is refused: the message goes to the dead-letter topic.
    const w = written(plain);
    const at = w.value.indexOf('"eventTime":1') + '"eventTime":'.length;
    const zero = { ...w, value: Buffer.concat([w.value.subarray(0, at), Buffer.from('0'), w.value.subarray(at + 1)]) };
    expect(() => read(zero)).toThrow(SyntaxError);
  });

  it('never takes a kept part for other bytes under the same hash', () => {
    const a = signals[0]!;
    const b: Signal = { ...a, target: { ...a.target, name: 'other-secret' }, title: `${a.title}!` };
    const wa = written(a);
    const wb = written(b);
    read(wa);
    read(wa);
    // b's header names a's hash: its bytes are compared, found different, and read whole.
    expect(counted(() => expect(read(wb, { hash: wa.hash })).toEqual(withoutEvidence(b)))).toEqual({ reused: 0, parsed: 0, firstSeen: 1 });
    // The same length too: only the bytes tell them apart.
    const c: Signal = { ...a, title: a.title.replace(/.$/, (x) => (x === 'z' ? 'y' : 'z')) };
    const wc = written(c);
    expect(wc.at - wc.sharedAt).toBe(wa.at - wa.sharedAt);
    read(wa);
    read(wa);
    for (let i = 0; i < 3; i++) expect(read(wc, { hash: wa.hash })).toEqual(withoutEvidence(c));
  });

  it('reads the whole message when a position is wrong, never a wrong signal', () => {
    const s: Signal = { ...signals[0]!, title: 'x","id":"forged","matched":[],"excerpt":{}}', attributes: { ...signals[0]!.attributes, note: ',"kind":"x"' } };
    const w = written(s);
    const lean = withoutEvidence(s);
    const json = w.value.toString('utf8');
    for (const sharedAt of [
      NaN,
      -1,
      0,
      1,
      2.5,
      w.sharedAt - 1,
      w.sharedAt + 1,
      json.indexOf(','),
      json.indexOf(',"kind"'),
      json.indexOf('","id"') + 1,
      w.at - 1,
      w.at,
      json.length,
    ])
      expect(read(w, { sharedAt })).toEqual(lean);
    expect(read(w, { hash: NaN })).toEqual(lean);
    expect(read(w, { at: NaN, sharedAt: NaN, hash: NaN })).toEqual(lean);
    expect(read(w, { at: w.at + 1 })).toEqual(lean);
  });

  it('reads a shared part with members a signal does not have (a newer producer) in full', () => {
    const s = { ...signals[0]!, region: 'eu-west-1' } as Signal & { region: string };
    const w = written(s);
    expect(read(w)).toEqual(withoutEvidence(s));
    expect(read(w)).toEqual(withoutEvidence(s));
  });

  it('reads a signal with non-ASCII text in its shared part in full, correctly', () => {
    const s: Signal = { ...signals[0]!, title: 'Zugriff auf Geheimnisse — ünerwartet 🔑' };
    const w = written(s);
    expect(counted(() => expect(read(w)).toEqual(withoutEvidence(s)))).toEqual({ reused: 0, parsed: 0, firstSeen: 0 });
  });

  it('reads text that is not ASCII correctly when the positions are given in bytes', () => {
    // Character positions are not byte positions past a non-ASCII character; here they are given
    // as bytes, so that only the reader's own ASCII checks keep it from reading UTF-8 as Latin-1.
    for (const s of [
      { ...signals[0]!, title: 'Zugriff auf Geheimnisse — ünerwartet 🔑' },
      { ...signals[0]!, id: 'ïd-ünïcode' },
    ]) {
      const { json, evidenceAt, shared } = signalJson(s);
      const bytes = (i: number) => Buffer.byteLength(json.slice(0, i));
      const value = Buffer.from(json, 'utf8');
      for (let i = 0; i < 2; i++) expect(readSignal(value, bytes(evidenceAt!), bytes(shared!.at), shared!.hash)).toEqual(withoutEvidence(s));
    }
  });

  it('keeps a bounded number of shared parts: the least recently read are forgotten', () => {
    const s = signals[0]!;
    const variant = (i: number): Signal => ({ ...s, target: { ...s.target, name: `secret-${i}` } });
    const first = written(variant(0));
    read(first);
    read(first);
    expect(counted(() => read(first))).toEqual(REUSED);
    for (let i = 1; i <= 2 * SHARED_PARTS_KEPT; i++) {
      const w = written(variant(i));
      read(w);
      read(w);
    }
    expect(counted(() => read(first))).toEqual({ reused: 0, parsed: 0, firstSeen: 1 });
    // One read recently (in the newer generation) is still there.
    expect(counted(() => read(written(variant(2 * SHARED_PARTS_KEPT))))).toEqual(REUSED);
  });

  it('keeps a shared part only once a second message repeats it: one seen once costs no parse of its own', () => {
    const s = signals[1]!;
    const unique = (i: number): Signal => ({ ...s, title: `${s.title} (request ${i})` });
    expect(
      counted(() => {
        for (let i = 0; i < 50; i++) expect(read(written(unique(i)))).toEqual(withoutEvidence(unique(i)));
      }),
    ).toEqual({ reused: 0, parsed: 0, firstSeen: 50 });
    const w = written(unique(7));
    expect(counted(() => expect(read(w)).toEqual(withoutEvidence(unique(7))))).toEqual({ reused: 0, parsed: 1, firstSeen: 0 });
    expect(counted(() => expect(read(w)).toEqual(withoutEvidence(unique(7))))).toEqual(REUSED);
  });
});
