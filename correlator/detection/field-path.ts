/**
 * Field paths that rules use to reach into an event: `objectRef.resource`,
 * `requestObject.spec.containers[*].securityContext.privileged`,
 * `annotations["authorization.k8s.io/decision"]`, `sourceIPs[0]`. Parsed once and compiled into a
 * getter; `[*]` fans out over an array, and the getter then returns every value it reached.
 */

/** One step of a path. */
export type Segment = { key: string } | { index: number } | { wildcard: true };

/** A parse failure, with the offset where the path went wrong. */
export class FieldPathError extends Error {
  constructor(
    readonly path: string,
    readonly at: number,
    reason: string,
  ) {
    super(`field path "${path}" is invalid at character ${at + 1}: ${reason}`);
  }
}

const IDENT = /[A-Za-z0-9_$-]/;

/** Parses a field path into segments; throws {@link FieldPathError}. */
export function parseFieldPath(path: string): Segment[] {
  const segs: Segment[] = [];
  let i = 0;
  const n = path.length;
  if (n === 0) throw new FieldPathError(path, 0, 'empty path');
  while (i < n) {
    const c = path[i]!;
    if (c === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) throw new FieldPathError(path, i, 'unclosed "["');
      const inner = path.slice(i + 1, close).trim();
      if (inner === '*') segs.push({ wildcard: true });
      else if (/^\d+$/.test(inner)) segs.push({ index: Number(inner) });
      else if (/^"[^"]*"$/.test(inner) || /^'[^']*'$/.test(inner)) segs.push({ key: inner.slice(1, -1) });
      else throw new FieldPathError(path, i, 'expected [*], [N] or ["key"]');
      i = close + 1;
      if (i < n && path[i] === '.') {
        i++;
        if (i === n) throw new FieldPathError(path, i - 1, 'trailing "."');
      }
      continue;
    }
    let j = i;
    while (j < n && IDENT.test(path[j]!)) j++;
    if (j === i) throw new FieldPathError(path, i, `unexpected "${c}"; quote keys with dots or slashes as ["a.b/c"]`);
    segs.push({ key: path.slice(i, j) });
    i = j;
    if (i < n) {
      if (path[i] === '.') {
        i++;
        if (i === n) throw new FieldPathError(path, i - 1, 'trailing "."');
      } else if (path[i] !== '[') throw new FieldPathError(path, i, `unexpected "${path[i]}"`);
    }
  }
  return segs;
}

/** True when the path fans out, so its getter may return several values. */
export function hasWildcard(segs: Segment[]): boolean {
  return segs.some((s) => 'wildcard' in s);
}

/** Reads a path from a value; `undefined` when any step is missing. Wildcards return an array. */
export type Getter = (root: unknown) => unknown;

/** Keys that exist on every object through its prototype: only these need an own-property check. */
const PROTO_KEYS = new Set([...Object.getOwnPropertyNames(Object.prototype), ...Object.getOwnPropertyNames(Array.prototype)]);

function step(v: unknown, seg: Segment): unknown {
  if (v === null || typeof v !== 'object') return undefined;
  if ('key' in seg) return Object.hasOwn(v, seg.key) ? (v as Record<string, unknown>)[seg.key] : undefined;
  if ('index' in seg) return Array.isArray(v) ? v[seg.index] : undefined;
  return undefined;
}

/**
 * One step as a closure. Keys that no prototype has are read directly (a plain object or array can
 * only have them as own properties); the rest go through {@link step}'s own-property check, so a
 * rule can never reach `constructor` or `__proto__`.
 */
function stepFn(seg: Segment): (v: unknown) => unknown {
  if ('key' in seg && !PROTO_KEYS.has(seg.key)) {
    const k = seg.key;
    return (v) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined);
  }
  return (v) => step(v, seg);
}

/** Compiles segments into a getter. Paths without wildcards become a straight chain of property reads. */
export function compileGetter(segs: Segment[]): Getter {
  if (!hasWildcard(segs)) {
    const fns = segs.map(stepFn);
    if (fns.length === 1) return fns[0]!;
    if (fns.length === 2) {
      const [a, b] = fns as [(v: unknown) => unknown, (v: unknown) => unknown];
      return (root) => b(a(root));
    }
    if (fns.length === 3) {
      const [a, b, c] = fns as [(v: unknown) => unknown, (v: unknown) => unknown, (v: unknown) => unknown];
      return (root) => c(b(a(root)));
    }
    return (root) => {
      let v = root;
      for (const f of fns) {
        v = f(v);
        if (v === undefined) return undefined;
      }
      return v;
    };
  }
  return (root) => {
    let current: unknown[] = [root];
    for (const s of segs) {
      const next: unknown[] = [];
      for (const v of current) {
        if ('wildcard' in s) {
          if (Array.isArray(v)) for (const e of v) next.push(e);
          else if (v !== null && typeof v === 'object') for (const e of Object.values(v)) next.push(e);
        } else {
          const r = step(v, s);
          if (r !== undefined) next.push(r);
        }
      }
      if (next.length === 0) return undefined;
      current = next;
    }
    return current;
  };
}
