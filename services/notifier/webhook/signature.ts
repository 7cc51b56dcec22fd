/**
 * Signatures of kubevigil's webhooks, for the sender and for receivers: HMAC-SHA256 over
 * `"<timestamp>.<body>"`, sent as `X-Kubevigil-Signature: sha256=<hex>` with the timestamp (Unix
 * seconds) in `X-Kubevigil-Timestamp`. Signing the timestamp with the body lets a receiver refuse a
 * captured request replayed later; `X-Kubevigil-Delivery` lets it drop a repeat within the tolerance.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header carrying `sha256=<hex HMAC>`. */
export const SIGNATURE_HEADER = 'X-Kubevigil-Signature';
/** Header carrying the Unix time (seconds) the request was signed at. */
export const TIMESTAMP_HEADER = 'X-Kubevigil-Timestamp';
/** Header carrying a delivery id, the same on every retry of one notification. */
export const DELIVERY_HEADER = 'X-Kubevigil-Delivery';
/** Header carrying `opened`, `updated` or `resolved`. */
export const EVENT_HEADER = 'X-Kubevigil-Event';

/** Default tolerance between the signing time and the receiver's clock. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** The signature header value of `body` signed at `timestamp` (Unix seconds). */
export function sign(secret: string, timestamp: number, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * True when `signature` is the HMAC of `"<timestamp>.<body>"` under `secret` and `timestamp` (Unix
 * seconds, as received) is within `toleranceSec` of `now` (ms since epoch). Pass the raw body bytes
 * as received: re-serialized JSON does not verify.
 */
export function verifySignature(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  signature: string,
  now: number,
  toleranceSec: number = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  const ts = typeof timestamp === 'number' ? timestamp : /^\d{1,12}$/.test(timestamp.trim()) ? Number(timestamp.trim()) : Number.NaN;
  if (!Number.isSafeInteger(ts) || Math.abs(now / 1000 - ts) > toleranceSec) return false;
  const expected = Buffer.from(sign(secret, ts, body));
  const given = Buffer.from(signature.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
