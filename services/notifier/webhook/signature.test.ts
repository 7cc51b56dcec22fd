import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verifySignature } from './signature.js';

const SECRET = 'a-webhook-signing-secret-0123456789';
const NOW = Date.UTC(2026, 10, 29, 3, 12, 0);
const TS = Math.floor(NOW / 1000);
const BODY = '{"id":"inc_1","title":"t"}';

describe('webhook signatures', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 as sha256=<hex>', () => {
    expect(sign(SECRET, TS, BODY)).toBe(`sha256=${createHmac('sha256', SECRET).update(`${TS}.${BODY}`).digest('hex')}`);
    expect(sign(SECRET, TS, Buffer.from(BODY))).toBe(sign(SECRET, TS, BODY));
  });

  it('verifies a fresh, untouched request', () => {
    const sig = sign(SECRET, TS, BODY);
    expect(verifySignature(SECRET, String(TS), BODY, sig, NOW)).toBe(true);
    expect(verifySignature(SECRET, TS, Buffer.from(BODY), sig, NOW + 299_000)).toBe(true);
  });

  it('rejects a changed body, another secret, another timestamp, or a malformed header', () => {
    const sig = sign(SECRET, TS, BODY);
    expect(verifySignature(SECRET, TS, BODY.replace('t"', 'x"'), sig, NOW)).toBe(false);
    expect(verifySignature('another-secret-0123456789', TS, BODY, sig, NOW)).toBe(false);
    expect(verifySignature(SECRET, TS + 1, BODY, sig, NOW)).toBe(false);
    for (const bad of ['', 'sha256=', sig.slice(0, -1), sig.toUpperCase(), `sha1=${sig.slice(7)}`])
      expect(verifySignature(SECRET, TS, BODY, bad, NOW)).toBe(false);
    for (const ts of ['', 'abc', '1e9', '-5', `${TS}.0`]) expect(verifySignature(SECRET, ts, BODY, sign(SECRET, TS, BODY), NOW)).toBe(false);
  });

  it('rejects a replay outside the tolerance, in either direction', () => {
    const sig = sign(SECRET, TS, BODY);
    expect(verifySignature(SECRET, TS, BODY, sig, NOW + 301_000)).toBe(false);
    expect(verifySignature(SECRET, TS, BODY, sig, NOW - 301_000)).toBe(false);
    expect(verifySignature(SECRET, TS, BODY, sig, NOW + 61_000, 60)).toBe(false);
  });
});
