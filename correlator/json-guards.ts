/** Type guards for parsed JSON and YAML, shared by every layer (the core is the lowest one). */

/** A JSON object: not null, not an array. */
export function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
