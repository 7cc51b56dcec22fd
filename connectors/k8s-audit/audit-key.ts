/**
 * An audit event's dedup key (auditID, stage, receive time: see `auditDedupKey` in receiver.ts) as
 * six 32-bit words, for the forms kube-apiserver writes: a lowercase UUID, one of the four stages,
 * and `requestReceivedTimestamp` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (Kubernetes' MicroTime). The
 * words are the key's content, not a digest of it: two events get the same words exactly when their
 * string keys are equal, so nothing a client chooses (its Audit-ID header) can make another event
 * look like a re-send. Any other form keeps the string key.
 *
 * Words: 0–3 the UUID's 128 bits; 4 the stage (2 bits), the microseconds below the millisecond (10
 * bits) and the day since 1970 (17 bits, until 2328); 5 the millisecond of the day.
 */
import { daysFromCivil, isDayOfMonth } from '../../platform/timestamp.js';
import type { AuditEvent } from './parse.js';

/** Words per key. */
export const AUDIT_KEY_WORDS = 6;

/** The stage's code; compared, not looked up: a keyed read with a string from JSON.parse (not internalized) takes V8's slow path. */
function stageCode(stage: string): number {
  return stage === 'ResponseComplete' ? 2 : stage === 'ResponseStarted' ? 1 : stage === 'RequestReceived' ? 0 : stage === 'Panic' ? 3 : -1;
}
/** `n` (at most 8) lowercase hex digits of `s` at `i` as a number, or -1. */
function hex(s: string, i: number, n: number): number {
  let x = 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(i + k);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    x = x * 16 + d;
  }
  return x;
}

/** `n` decimal digits of `s` at `i`, or -1. */
function digits(s: string, i: number, n: number): number {
  let x = 0;
  for (let k = 0; k < n; k++) {
    const d = s.charCodeAt(i + k) - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

/**
 * Writes the event's key at `out[at … at + 6)` and returns true when its fields have the forms
 * above; false (and `out` left in any state) for anything else.
 */
export function writeAuditKey(ev: AuditEvent, out: Uint32Array, at: number): boolean {
  const id = ev.auditID;
  const stage = stageCode(ev.stage);
  const t = ev.requestReceivedTimestamp;
  if (id.length !== 36 || stage < 0 || t === undefined || t.length !== 27) return false;
  if (id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) return false;
  // 8-4-4-4-12 digits: words of 8, 4+4, 4+4 and 8.
  const a = hex(id, 0, 8);
  const b = hex(id, 9, 4);
  const c = hex(id, 14, 4);
  const d2 = hex(id, 19, 4);
  const e = hex(id, 24, 4);
  const f = hex(id, 28, 8);
  if (a < 0 || b < 0 || c < 0 || d2 < 0 || e < 0 || f < 0) return false;
  out[at] = a;
  out[at + 1] = b * 65536 + c;
  out[at + 2] = d2 * 65536 + e;
  out[at + 3] = f;
  if (t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 84 || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58) return false;
  if (t.charCodeAt(19) !== 46 || t.charCodeAt(26) !== 90) return false;
  const y = digits(t, 0, 4);
  const mo = digits(t, 5, 2);
  const d = digits(t, 8, 2);
  const h = digits(t, 11, 2);
  const mi = digits(t, 14, 2);
  const s = digits(t, 17, 2);
  const ms = digits(t, 20, 3);
  const us = digits(t, 23, 3);
  if (y < 1970 || mo < 1 || mo > 12 || !isDayOfMonth(y, mo, d) || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 || ms < 0 || us < 0) return false;
  const day = daysFromCivil(y, mo, d);
  if (day >= 1 << 17) return false;
  out[at + 4] = (stage << 27) | (us << 17) | day;
  out[at + 5] = ((h * 60 + mi) * 60 + s) * 1000 + ms;
  return true;
}
