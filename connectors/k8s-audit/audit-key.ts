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

const STAGES: Record<string, number> = { RequestReceived: 0, ResponseStarted: 1, ResponseComplete: 2, Panic: 3 };
/** Where each of a UUID's 32 hex digits is in its text (the hyphens skipped). */
const UUID_DIGITS = Array.from({ length: 32 }, (_, j) => j + (j >= 8 ? 1 : 0) + (j >= 12 ? 1 : 0) + (j >= 16 ? 1 : 0) + (j >= 20 ? 1 : 0));

function hexDigit(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
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
  const stage = STAGES[ev.stage];
  const t = ev.requestReceivedTimestamp;
  if (id.length !== 36 || stage === undefined || t === undefined || t.length !== 27) return false;
  if (id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) return false;
  for (let w = 0; w < 4; w++) {
    let x = 0;
    for (let k = 0; k < 8; k++) {
      const digit = hexDigit(id.charCodeAt(UUID_DIGITS[w * 8 + k]!));
      if (digit < 0) return false;
      x = (x << 4) | digit;
    }
    out[at + w] = x;
  }
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
