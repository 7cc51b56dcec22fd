/**
 * A value as error messages quote it: short, and safe for any input — never `JSON.stringify` of a
 * whole attacker-supplied structure, which overflows the stack on deep nesting and copies huge values.
 */
export function describeValue(v: unknown, max = 60): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > max ? `${v.slice(0, max)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** The first `max` characters of `s` as a string of their own (a V8 slice keeps its source alive). */
export function cut(s: string, max: number): string {
  return s.length <= max ? s : Buffer.from(s.slice(0, max), 'utf8').toString('utf8');
}
