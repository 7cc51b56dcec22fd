/**
 * `Date.parse` for the timestamps senders write, fast: the canonical RFC 3339 UTC form
 * (`2026-12-06T09:00:00.123456Z`, what kube-apiserver writes three times per audit event) is read
 * with integer arithmetic, everything else goes to `Date.parse`. The result is always exactly
 * `Date.parse(s)`: milliseconds, further digits of the fraction truncated, NaN for what it refuses
 * (platform/timestamp.test.ts compares the two over generated and mutated timestamps).
 * `Date.parse` costs ≈ 150–200 ns a call here, this ≈ 20.
 */

const ZERO = 48;

/** Two ASCII digits at `i` as a number, or -1. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - ZERO;
  const b = s.charCodeAt(i + 1) - ZERO;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1–12). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Whether day `d` exists in month `m` (1–12) of year `y`. */
function isDayOfMonth(y: number, m: number, d: number): boolean {
  return d >= 1 && d <= DAYS[m - 1]! + (m === 2 && leap(y) ? 1 : 0);
}

/** Milliseconds since the epoch, as `Date.parse(s)` returns them. */
export function parseTimestamp(s: string): number {
  const ms = canonicalMillis(s);
  return ms === ms ? ms : Date.parse(s);
}

/**
 * Milliseconds since the epoch of a timestamp in the canonical form, `YYYY-MM-DDTHH:MM:SS` and an
 * optional fraction of 1–9 digits, then `Z`, with a valid date and time and a year from 1000;
 * NaN for any other string. Where it is a number it is `Date.parse`'s.
 */
export function canonicalMillis(s: string): number {
  const n = s.length;
  // YYYY-MM-DDTHH:MM:SSZ (20) up to nine digits of fraction (30).
  if (n < 20 || n > 30 || s.charCodeAt(n - 1) !== 90 /* Z */) return NaN;
  const y1 = two(s, 0);
  const y2 = two(s, 2);
  const mo = two(s, 5);
  const d = two(s, 8);
  const h = two(s, 11);
  const mi = two(s, 14);
  const se = two(s, 17);
  if (
    y1 < 10 ||
    y2 < 0 ||
    s.charCodeAt(4) !== 45 /* - */ ||
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 /* T */ ||
    s.charCodeAt(13) !== 58 /* : */ ||
    s.charCodeAt(16) !== 58 ||
    mo < 1 ||
    mo > 12 ||
    d < 1 ||
    h < 0 ||
    h > 23 ||
    mi < 0 ||
    mi > 59 ||
    se < 0 ||
    se > 59
  )
    return NaN;
  const y = y1 * 100 + y2;
  if (!isDayOfMonth(y, mo, d)) return NaN;
  let ms = 0;
  if (n > 20) {
    // A dot and 1–9 digits; milliseconds are the first three, the rest truncated.
    if (s.charCodeAt(19) !== 46 /* . */ || n === 21) return NaN;
    for (let i = 20; i < n - 1; i++) {
      const c = s.charCodeAt(i) - ZERO;
      if (c < 0 || c > 9) return NaN;
      if (i < 23) ms += c * (i === 20 ? 100 : i === 21 ? 10 : 1);
    }
  }
  return ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms;
}
