/** Helpers for tests that read configuration files (manifests, compose files): navigation and walking. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** A parsed YAML or JSON mapping; navigated with {@link get}. */
export type Obj = Record<string, unknown>;

/** True for a plain mapping. */
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at a dotted path (or a list of keys, for keys that contain dots), or undefined. */
export function get(o: unknown, path: string | string[]): unknown {
  let cur: unknown = o;
  for (const k of typeof path === 'string' ? path.split('.') : path) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** The value as a list ([] when it is not one). */
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** The value as a string ('' when it is not one). */
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Every file below a directory, sorted. */
export function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}
