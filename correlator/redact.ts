/**
 * Redaction and bounding of attacker-influenced data before it is stored, logged or sent anywhere.
 * kubevigil holds an attacker's view of the cluster: a Secret's `data`, a bearer token in a URI or a
 * kubeconfig pasted into a ConfigMap must never leave the process in clear.
 */

/** Placeholder written instead of a secret value. */
export const REDACTED = '[REDACTED]';

/** Object keys whose values are always secret, compared case-insensitively. */
const SECRET_KEYS = new Set([
  'data',
  'stringdata',
  'binarydata',
  'token',
  'password',
  'passwd',
  'secret',
  'authorization',
  'client-key-data',
  'client-certificate-data',
  'certificate-authority-data',
  'privatekey',
  'private_key',
  'apikey',
  'api_key',
  'access_token',
  'refresh_token',
  'id_token',
  'kubeconfig',
]);

// JWTs (service-account tokens), bearer headers, and key=value credentials in URIs or text.
const PATTERNS: [RegExp, string][] = [
  // The lookbehind lets a token start only where the previous character cannot belong to one, which
  // keeps the scan linear on input such as "eyJ-eyJ-eyJ-…" (without it, quadratic).
  [/(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  [/\b(token|access_token|password|passwd|secret|api[_-]?key)=([^&\s"']+)/gi, `$1=${REDACTED}`],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
];

/** True when a key names a value that must never be kept. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

/** Longest text {@link redactText} scans; longer text is cut first (nothing longer is ever kept). */
export const MAX_REDACT_LENGTH = 64 * 1024;

// Names, verbs, user agents and addresses repeat across millions of events: short strings are
// judged once. Bounded (about 1 MB at most), and only the yes/no of the fast path is kept.
let clean = new Set<string>();
const CLEAN_MAX = 4096;

/** Replaces tokens, credentials and private keys inside free text. */
export function redactText(s: string): string {
  if (s.length <= 256 && clean.has(s)) return s;
  if (s.length > MAX_REDACT_LENGTH) s = truncate(s, MAX_REDACT_LENGTH);
  // Fast path: most strings (names, verbs, URIs) contain none of the trigger substrings.
  if (!/eyJ|bearer|basic|token|pass|secret|api|PRIVATE KEY/i.test(s)) {
    if (s.length <= 256) {
      if (clean.size >= CLEAN_MAX) clean = new Set();
      clean.add(s);
    }
    return s;
  }
  let out = s;
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** Limits for {@link boundedRedactedCopy}. */
export interface Bounds {
  maxString: number;
  maxArray: number;
  maxKeys: number;
  maxDepth: number;
}

/** Defaults that keep one excerpt to a few kilobytes. */
export const EXCERPT_BOUNDS: Bounds = { maxString: 512, maxArray: 16, maxKeys: 32, maxDepth: 5 };

/**
 * Truncates a string to `max` characters, saying how much was cut. The result is a copy: a V8
 * slice would keep the whole original (an attacker's megabytes) alive for as long as it lives.
 */
export function truncate(s: string, max: number): string {
  return s.length <= max ? s : Buffer.from(`${s.slice(0, max)}…[+${s.length - max} chars]`, 'utf8').toString('utf8');
}

/**
 * A deep copy of `value` with secret keys redacted, strings redacted and truncated, and arrays,
 * objects and depth capped. Never throws, whatever the input.
 */
export function boundedRedactedCopy(value: unknown, bounds: Bounds = EXCERPT_BOUNDS, depth = 0): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  // Cut before redacting: redaction scans the text, and the excerpt keeps only maxString anyway.
  if (typeof value === 'string') return redactText(truncate(value, bounds.maxString));
  if (typeof value !== 'object') return undefined;
  if (depth >= bounds.maxDepth) return '[…]';
  if (Array.isArray(value)) {
    const out = value.slice(0, bounds.maxArray).map((v) => boundedRedactedCopy(v, bounds, depth + 1));
    if (value.length > bounds.maxArray) out.push(`…[+${value.length - bounds.maxArray} items]`);
    return out;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (n++ >= bounds.maxKeys) {
      out['…'] = `+${Object.keys(value).length - bounds.maxKeys} keys`;
      break;
    }
    out[truncate(k, 128)] = isSecretKey(k) ? REDACTED : boundedRedactedCopy(v, bounds, depth + 1);
  }
  return out;
}
