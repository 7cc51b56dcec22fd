/**
 * A small seeded generator for the fuzz suite: a deterministic PRNG, a structure-aware JSON
 * mutator (values replaced by other types, keys deleted or added, subtrees nested deeply), and the
 * byte-level damage (truncation, random bytes, invalid UTF-8) the receivers must refuse cleanly.
 * Everything is derived from the seed, so a failing case is reproduced by its seed and index.
 */

/** mulberry32: a tiny, fast, seedable PRNG (not for cryptography). */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** A JSON value (what the mutator walks and produces). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A location in a JSON tree: object keys and array indexes from the root. */
export type JsonPath = (string | number)[];

const isObj = (v: unknown): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every path in the tree (the root is `[]`), up to `max` of them. */
export function paths(v: Json, max = 5000): JsonPath[] {
  const out: JsonPath[] = [];
  const walk = (x: Json, p: JsonPath): void => {
    if (out.length >= max) return;
    out.push(p);
    if (Array.isArray(x)) x.forEach((e, i) => walk(e, [...p, i]));
    else if (isObj(x)) for (const [k, e] of Object.entries(x)) walk(e, [...p, k]);
  };
  walk(v, []);
  return out;
}

function getAt(root: Json, p: JsonPath): Json | undefined {
  let x: Json | undefined = root;
  for (const k of p) {
    if (Array.isArray(x) && typeof k === 'number') x = x[k];
    else if (isObj(x) && typeof k === 'string') x = x[k];
    else return undefined;
  }
  return x;
}

/** Replaces the value at `p` (the root cannot be replaced in place: callers handle `[]`). */
function setAt(root: Json, p: JsonPath, v: Json): void {
  const parent = getAt(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number') parent[k] = v;
  else if (isObj(parent) && typeof k === 'string') parent[k] = v;
}

function deleteAt(root: Json, p: JsonPath): void {
  const parent = getAt(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number') parent.splice(k, 1);
  else if (isObj(parent) && typeof k === 'string') delete parent[k];
}

/** A value nested `depth` levels deep in arrays or objects (built iteratively: no recursion). */
export function nested(depth: number, kind: 'array' | 'object', leaf: Json = 1): Json {
  let v: Json = leaf;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/** JSON text nested `depth` levels deep, built as text (JSON.stringify of it would recurse). */
export function nestedText(depth: number, kind: 'array' | 'object', leaf = '1'): string {
  return kind === 'array' ? '['.repeat(depth) + leaf + ']'.repeat(depth) : '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
}

/** Strings that tend to break parsers, normalizers and renderers. */
export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  '\ud800', // a lone surrogate: valid in a JS string, not in UTF-8
  '\udfff\ud800',
  '\u202e\u0007\u001b[31m',
  '🦄'.repeat(64),
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999999999Z',
  '-271821-04-20T00:00:00Z',
  '+275760-09-13T00:00:00.001Z',
  '1e400',
  'NaN',
  '-1',
  '99999999999999999999999999999999999999',
  '18446744073709551616',
  '00000000000000000000000000000000',
  'ffffffffffffffffffffffffffffffff',
  'system:serviceaccount:',
  'system:serviceaccount:a:b:c',
  'system:serviceaccount::',
  '{{ .Values }}',
  '${jndi:ldap://x}',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '%00%ff',
  'a'.repeat(70_000),
];

/** A value of a random type (scalars, containers, and hostile shapes), bounded in size. */
export function randomValue(rng: Rng, depth = 0): Json {
  switch (rng.int(depth > 2 ? 12 : 16)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1, 1.5, -0.0, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, 1e308, -1e308, 5e-324, 4294967296]);
    case 3:
      return rng.int(1_000_000);
    case 4:
    case 5:
    case 6:
      return rng.pick(NASTY_STRINGS);
    case 7:
      return String(rng.int(1e9));
    case 8:
      return [];
    case 9:
      return {};
    case 10:
      return rng.pick(['1764410400000000000', '1764410400123', 'firing', 'resolved', 'RequestReceived', 'ResponseComplete', 'get', 'pods']);
    case 11:
      return rng.chance(0.5) ? nested(rng.range(20, 200), 'array') : nested(rng.range(20, 200), 'object');
    case 12:
      return Array.from({ length: rng.range(1, 5) }, () => randomValue(rng, depth + 1));
    case 13: {
      const o: Record<string, Json> = {};
      for (let i = rng.range(1, 4); i > 0; i--) o[rng.pick(['a', 'key', 'value', '__proto__', 'stringValue', 'kind', ''])] = randomValue(rng, depth + 1);
      return o;
    }
    case 14:
      return Array.from({ length: rng.range(100, 2000) }, (_, i) => i);
    default:
      return { stringValue: rng.pick(NASTY_STRINGS) };
  }
}

/** What one mutation did, for the report of a failing case. */
export interface Mutation {
  op: string;
  path: string;
}

/** The mutated value and the list of mutations applied. */
export interface Mutated {
  value: Json;
  mutations: Mutation[];
}

const show = (p: JsonPath) => (p.length ? p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('') : '(root)');

/**
 * Applies 1–`maxMutations` random mutations to a deep copy of `valid`: replace a value by one of
 * another type, delete a key or element, add an unknown key, nest a subtree deeply, duplicate an
 * array element, or blow a string up. Paths are chosen uniformly among all nodes, so nested fields
 * are hit as often as top-level ones.
 */
export function mutate(valid: Json, rng: Rng, maxMutations = 3): Mutated {
  let value = structuredClone(valid);
  const mutations: Mutation[] = [];
  const n = rng.range(1, maxMutations);
  for (let m = 0; m < n; m++) {
    const all = paths(value);
    const p = rng.pick(all);
    const here = getAt(value, p);
    const op = rng.pick(['retype', 'retype', 'retype', 'delete', 'delete', 'add-key', 'nest', 'dup', 'blow-up']);
    if (p.length === 0) {
      // The root: only wholesale replacements make sense.
      if (op === 'retype' || op === 'delete') {
        value = randomValue(rng);
        mutations.push({ op: 'retype', path: show(p) });
      } else if (op === 'nest') {
        value = rng.chance(0.5) ? [value] : { wrapped: value };
        mutations.push({ op: 'wrap', path: show(p) });
      }
      continue;
    }
    switch (op) {
      case 'retype':
        setAt(value, p, randomValue(rng));
        break;
      case 'delete':
        deleteAt(value, p);
        break;
      case 'add-key':
        if (isObj(here)) here[rng.pick(['__proto__', 'constructor', 'unknown', 'x'.repeat(300)])] = randomValue(rng);
        else setAt(value, p, { unexpected: here ?? null });
        break;
      case 'nest':
        setAt(value, p, rng.chance(0.5) ? nested(rng.range(50, 1000), 'array', here ?? null) : nested(rng.range(50, 1000), 'object', here ?? null));
        break;
      case 'dup':
        if (Array.isArray(here) && here.length) for (let i = rng.range(1, 50); i > 0; i--) here.push(structuredClone(here[0]!));
        else setAt(value, p, [here ?? null, here ?? null]);
        break;
      default:
        setAt(value, p, typeof here === 'string' ? here.repeat(rng.range(100, 2000)).slice(0, 200_000) : 'x'.repeat(rng.range(1000, 100_000)));
    }
    mutations.push({ op, path: show(p) });
  }
  return { value, mutations };
}

/** `text` cut at a random point (never empty, never whole). */
export function truncate(text: string | Buffer, rng: Rng): Buffer {
  const b = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return b.subarray(0, rng.range(1, Math.max(1, b.length - 1)));
}

/** JSON text damaged at the character level: a deleted, duplicated or replaced structural character. */
export function corruptText(text: string, rng: Rng): string {
  const at = rng.int(text.length);
  switch (rng.int(5)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + rng.pick(['{', '}', '[', ']', ',', ':', '"', '\\', 'NaN', 'undefined', "'"]) + text.slice(at);
    case 2:
      return text.slice(0, at) + rng.pick(['\u0000', '\u001f', '\\u12', '\\x41', '//comment\n', '/*']) + text.slice(at + 1);
    case 3:
      return text + rng.pick(['}', ']', ',', ' x', '\u0000', '{}']);
    default:
      return text.replace(/"/g, rng.chance(0.5) ? "'" : '');
  }
}

/** Byte sequences that are not UTF-8: lone continuation bytes, overlongs, surrogates, truncated sequences. */
export const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0xaf]), // overlong "/"
  Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate encoded as UTF-8
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // beyond U+10FFFF
  Buffer.from([0xe2, 0x82]), // truncated €
  Buffer.from([0xfe, 0xfe, 0xff, 0xff]),
];

/** `json` with an invalid UTF-8 sequence spliced into its first string value (or at the front). */
export function spliceInvalidUtf8(json: string, rng: Rng): Buffer {
  const bad = rng.pick(INVALID_UTF8);
  const quote = json.indexOf('"');
  const at = quote >= 0 ? quote + 1 : 0;
  const b = Buffer.from(json);
  const cut = Buffer.byteLength(json.slice(0, at));
  return Buffer.concat([b.subarray(0, cut), bad, b.subarray(cut)]);
}
