import { describe, expect, it } from 'vitest';
import { parseTimestamp } from './timestamp.js';

/** A small seeded generator, so a failure names a reproducible input. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const same = (s: string) => expect(Object.is(parseTimestamp(s), Date.parse(s)), `${s}: ${parseTimestamp(s)} vs ${Date.parse(s)}`).toBe(true);

describe('parseTimestamp', () => {
  it('reads the canonical form as Date.parse does, fraction truncated to milliseconds', () => {
    expect(parseTimestamp('2026-12-06T09:00:00.123456Z')).toBe(Date.UTC(2026, 11, 6, 9, 0, 0, 123));
    expect(parseTimestamp('2026-12-06T09:00:00.9999999Z')).toBe(Date.UTC(2026, 11, 6, 9, 0, 0, 999));
    for (const s of [
      '2026-12-06T09:00:00Z',
      '2026-12-06T09:00:00.1Z',
      '2026-12-06T09:00:00.12Z',
      '2026-12-06T09:00:00.123456789Z',
      '2024-02-29T23:59:59.5Z',
      '2000-02-29T00:00:00Z',
      '1900-03-01T00:00:00Z',
      '1000-01-01T00:00:00Z',
      '9999-12-31T23:59:59.999Z',
    ])
      same(s);
  });

  it('gives what Date.parse gives for every other form, valid or not', () => {
    for (const s of [
      '2026-02-29T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2026-12-06T24:00:00Z',
      '2026-12-06T09:00:60Z',
      '2026-12-06T09:60:00Z',
      '2026-13-06T09:00:00Z',
      '2026-00-06T09:00:00Z',
      '2026-12-00T09:00:00Z',
      '2026-12-06T09:00:00.Z',
      '2026-12-06T09:00:00.1234567891Z',
      '2026-12-06t09:00:00Z',
      '2026-12-06T09:00:00z',
      '2026-12-06T09:00:00+02:00',
      '2026-12-06 09:00:00Z',
      '0999-01-01T00:00:00Z',
      '0050-06-01T00:00:00Z',
      '+002026-12-06T09:00:00Z',
      '2026-12-06T09:00:0xZ',
      '2026-12-06T09:00:00.12a4Z',
      '２026-12-06T09:00:00Z',
      'Sun, 06 Dec 2026 09:00:00 GMT',
      '',
      'Z',
    ])
      same(s);
  });

  it('agrees with Date.parse over 20,000 generated and mutated timestamps', () => {
    const r = rng(7);
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    const alphabet = '0123456789-:.TZtz+ x';
    for (let k = 0; k < 20_000; k++) {
      const frac = Math.floor(r() * 11);
      let s =
        `${pad(Math.floor(r() * 10_000), 4)}-${pad(Math.floor(r() * 14), 2)}-${pad(Math.floor(r() * 33), 2)}T` +
        `${pad(Math.floor(r() * 26), 2)}:${pad(Math.floor(r() * 62), 2)}:${pad(Math.floor(r() * 62), 2)}` +
        (frac ? `.${Array.from({ length: frac }, () => Math.floor(r() * 10)).join('')}` : '') +
        'Z';
      // A third of them with one character replaced, inserted or removed.
      const at = Math.floor(r() * s.length);
      const c = alphabet[Math.floor(r() * alphabet.length)]!;
      const mutation = Math.floor(r() * 9);
      if (mutation === 0) s = s.slice(0, at) + c + s.slice(at + 1);
      else if (mutation === 1) s = s.slice(0, at) + c + s.slice(at);
      else if (mutation === 2) s = s.slice(0, at) + s.slice(at + 1);
      same(s);
    }
  });
});
