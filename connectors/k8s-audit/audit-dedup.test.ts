/**
 * The audit dedup store keeps kube-apiserver's keys as words and the others as strings; either way
 * it must say "seen" exactly when the string key was seen, so nothing is dropped that was not a
 * re-send and nothing re-sent gets through twice.
 */
import { describe, expect, it } from 'vitest';
import { syntheticAuditEvents } from './synth.js';
import type { AuditEvent } from './parse.js';
import { AuditDedup, auditDedupKey, auditKeys } from './audit-dedup.js';
import { AUDIT_KEY_WORDS, writeAuditKey } from './audit-key.js';
import { RecentKeys } from '../../correlator/recent-keys.js';
import { WordKeys } from '../../correlator/word-keys.js';

/** A seeded generator, so a failure names a reproducible stream. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const base = syntheticAuditEvents(1, { seed: 4 })[0]!;
const ev = (auditID: string, stage: string, requestReceivedTimestamp: string | undefined): AuditEvent => ({
  ...base,
  auditID,
  stage,
  requestReceivedTimestamp,
});

describe('writeAuditKey', () => {
  it('gives equal words exactly to equal keys, over keys that differ in one digit or field', () => {
    const r = rng(11);
    const hex = '0123456789abcdef';
    const uuids = [
      '6e1bc3bd-0b77-4e0c-9cb8-4a0b6c2a1f00',
      '6e1bc3bd-0b77-4e0c-9cb8-4a0b6c2a1f01',
      '7e1bc3bd-0b77-4e0c-9cb8-4a0b6c2a1f00',
      '6e1bc3bd-0b77-4e0c-9cb9-4a0b6c2a1f00',
    ];
    const times = [
      '2026-12-06T09:00:00.123456Z',
      '2026-12-06T09:00:00.123457Z',
      '2026-12-06T09:00:00.124456Z',
      '2026-12-06T09:00:01.123456Z',
      '2026-12-07T09:00:00.123456Z',
      '2027-12-06T09:00:00.123456Z',
      '2026-12-06T19:00:00.123456Z',
    ];
    const stages = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];
    const events: AuditEvent[] = [];
    for (const u of uuids) for (const t of times) for (const s of stages) events.push(ev(u, s, t));
    // And random ones that share most of their digits.
    for (let k = 0; k < 3000; k++) {
      const u = Array.from({ length: 32 }, () => hex[Math.floor(r() * 2)]).join('');
      const uuid = `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`;
      const t = `2026-0${1 + Math.floor(r() * 2)}-1${Math.floor(r() * 2)}T0${Math.floor(r() * 2)}:00:0${Math.floor(r() * 2)}.${String(Math.floor(r() * 4)).padStart(6, '0')}Z`;
      events.push(ev(uuid, stages[Math.floor(r() * 2)]!, t));
    }
    const words = new Uint32Array(AUDIT_KEY_WORDS * events.length);
    events.forEach((e, i) => expect(writeAuditKey(e, words, i * AUDIT_KEY_WORDS), auditDedupKey(e)).toBe(true));
    const byWords = new Map<string, string>();
    events.forEach((e, i) => {
      const w = words.subarray(i * AUDIT_KEY_WORDS, (i + 1) * AUDIT_KEY_WORDS).join(',');
      const before = byWords.get(w);
      if (before !== undefined) expect(before).toBe(auditDedupKey(e));
      byWords.set(w, auditDedupKey(e));
    });
    expect(new Set(byWords.values()).size).toBe(new Set(events.map(auditDedupKey)).size);
  });

  it('leaves every other form to the string key', () => {
    const out = new Uint32Array(AUDIT_KEY_WORDS);
    const uuid = '6e1bc3bd-0b77-4e0c-9cb8-4a0b6c2a1f00';
    const t = '2026-12-06T09:00:00.123456Z';
    expect(writeAuditKey(ev(uuid, 'ResponseComplete', t), out, 0)).toBe(true);
    for (const e of [
      ev(uuid.toUpperCase(), 'ResponseComplete', t),
      ev(uuid.replaceAll('-', ''), 'ResponseComplete', t),
      ev(`${uuid.slice(0, 35)}g`, 'ResponseComplete', t),
      ev('my-own-audit-id', 'ResponseComplete', t),
      ev(uuid, 'Unknown', t),
      ev(uuid, 'ResponseComplete', undefined),
      ev(uuid, 'ResponseComplete', '2026-12-06T09:00:00.12345Z'),
      ev(uuid, 'ResponseComplete', '2026-12-06T09:00:00.1234567Z'),
      ev(uuid, 'ResponseComplete', '2026-12-06T09:00:00.123456+00:00'),
      ev(uuid, 'ResponseComplete', '2026-02-30T09:00:00.123456Z'),
      ev(uuid, 'ResponseComplete', '2026-12-06T24:00:00.123456Z'),
      ev(uuid, 'ResponseComplete', '1969-12-31T23:59:59.999999Z'),
      ev(uuid, 'ResponseComplete', '2400-01-01T00:00:00.000000Z'),
    ])
      expect(writeAuditKey(e, out, 0), auditDedupKey(e)).toBe(false);
  });
});

describe('AuditDedup', () => {
  it('agrees with a set of string keys over batches of both forms, re-sends, refusals and eviction', () => {
    const r = rng(5);
    const capacity = 700;
    const dedup = new AuditDedup(capacity);
    // The model: the string keys, bounded per form as the store is.
    const model = { compact: new RecentKeys(capacity), strings: new RecentKeys(capacity) };
    const pool = syntheticAuditEvents(1500, { seed: 9 });
    // A share of them in forms without compact words (a client's own Audit-ID, a v1beta1 event).
    for (let i = 0; i < pool.length; i += 7) pool[i] = { ...pool[i]!, auditID: `client-chosen-${i % 50}` };
    for (let i = 3; i < pool.length; i += 11) pool[i] = { ...pool[i]!, requestReceivedTimestamp: undefined };
    let compactSeen = 0;
    for (let b = 0; b < 300; b++) {
      // Batches drawn with repeats (in-batch and across batches).
      const batch = Array.from({ length: 1 + Math.floor(r() * 40) }, () => pool[Math.floor(r() * pool.length)]!);
      const keys = auditKeys(batch);
      const split = dedup.split(keys);
      const inBatch = new Set<string>();
      const want: number[] = [];
      batch.forEach((e, i) => {
        const k = auditDedupKey(e);
        const m = writeAuditKey(e, new Uint32Array(AUDIT_KEY_WORDS), 0) ? model.compact : model.strings;
        if (!m.has(k) && !inBatch.has(k)) want.push(i);
        inBatch.add(k);
      });
      expect(split.fresh, `batch ${b}`).toEqual(want);
      expect(split.duplicates).toBe(batch.length - want.length);
      // Every fifth batch is refused: nothing of it is remembered, so its re-send is fresh again.
      if (b % 5 === 4) continue;
      split.remember();
      for (const i of want) {
        const e = batch[i]!;
        const compact = writeAuditKey(e, new Uint32Array(AUDIT_KEY_WORDS), 0);
        (compact ? model.compact : model.strings).add(auditDedupKey(e));
        if (compact) compactSeen++;
      }
    }
    // The run meant something: both forms, and more keys than the bound.
    expect(compactSeen).toBeGreaterThan(capacity);
    expect(model.strings.size).toBeGreaterThan(50);
  });
});

describe('AuditDedup, one batch larger than its bound', () => {
  it('still finds the repeats within the batch', () => {
    const dedup = new AuditDedup(10);
    const unique = syntheticAuditEvents(40, { seed: 12 });
    const batch = [...unique, ...unique];
    expect(auditKeys(batch).strings).toEqual([]);
    const split = dedup.split(auditKeys(batch));
    expect(split.fresh).toEqual(unique.map((_, i) => i));
    expect(split.duplicates).toBe(40);
  });
});

describe('WordKeys', () => {
  it('stays correct when keys differ only in their last word, and never grows past its bound', () => {
    const keys = new WordKeys(6, 5000);
    for (let i = 0; i < 20_000; i++) {
      keys.key.fill(7);
      keys.key[5] = i;
      expect(keys.add()).toBe(true);
    }
    expect(keys.size).toBe(5000);
    expect(keys.evicted).toBe(15_000);
    const present = (i: number) => {
      keys.key.fill(7);
      keys.key[5] = i;
      return keys.has();
    };
    expect([0, 14_999, 15_000, 19_999].map(present)).toEqual([false, false, true, true]);
    keys.key.fill(7);
    keys.key[5] = 19_999;
    expect(keys.add()).toBe(false);
    expect(keys.reseeds).toBe(0);
  });
});
