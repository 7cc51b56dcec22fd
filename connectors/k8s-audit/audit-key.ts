/**
 * An audit event's dedup key (auditID, stage, receive time: see `auditDedupKey` in audit-dedup.ts) as
 * six 32-bit words, for the forms kube-apiserver writes: a lowercase UUID, one of the four stages,
 * and `requestReceivedTimestamp` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (Kubernetes' MicroTime). The
 * words are the key's content, not a digest of it: two events get the same words exactly when their
 * string keys are equal, so nothing a client chooses (its Audit-ID header) can make another event
 * look like a re-send. Any other form keeps the string key.
 *
 * Words: 0–3 the UUID's 128 bits; 4 the stage (2 bits), the microseconds below the millisecond (10
 * bits) and the day since 1970 (17 bits, until 2328); 5 the millisecond of the day.
 */
import { canonicalMillis } from '../../platform/timestamp.js';
import type { AuditEvent } from './parse.js';

/** Words per key. */
export const AUDIT_KEY_WORDS = 6;

/** The stage's 2-bit code, -1 for a stage the apiserver does not write. */
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
  // The receive time: a valid date and time with six digits of fraction (27 characters), from 1970.
  const ms = canonicalMillis(t);
  if (!(ms >= 0)) return false;
  const day = Math.floor(ms / 86_400_000);
  if (day >= 1 << 17) return false;
  const us = (t.charCodeAt(23) - 48) * 100 + (t.charCodeAt(24) - 48) * 10 + (t.charCodeAt(25) - 48);
  out[at + 4] = (stage << 27) | (us << 17) | day;
  out[at + 5] = ms - day * 86_400_000;
  return true;
}
