/**
 * A source's field table (see {@link SourceSchema.fields}): resolving a rule's field path to the row
 * that declares it, deciding which operators fit a field's type, suggesting close names for a path
 * that is not declared, and rendering the tables as `docs/rule-fields.md`.
 */
import type { Segment } from './field-path.js';
import type { FieldSpec, FieldType, SourceSchema } from './source-event.js';

/** The row a path resolved to, and the type of the value the path reaches. */
export interface ResolvedField {
  /** The declaring row; undefined for an intermediate object (`objectRef` when `objectRef.resource` is declared). */
  spec?: FieldSpec;
  type: FieldType;
}

const keysOf = (segs: readonly Segment[]): string[] => segs.flatMap((s) => ('key' in s ? [s.key] : []));

const isOpen = (spec: FieldSpec): boolean => spec.name.endsWith('.*');

const specKeys = (spec: FieldSpec): string[] => (isOpen(spec) ? spec.name.slice(0, -2) : spec.name).split('.');

const startsWith = (keys: readonly string[], prefix: readonly string[]): boolean => prefix.length <= keys.length && prefix.every((k, i) => keys[i] === k);

/**
 * The row a parsed path resolves to: an exact row, else the longest open map (`labels.*`) it lies
 * under, else an intermediate object of declared rows. Undefined when the schema does not have it.
 */
export function resolveField(schema: SourceSchema, segs: readonly Segment[]): ResolvedField | undefined {
  const keys = keysOf(segs);
  if (keys.length === 0) return undefined;
  let open: FieldSpec | undefined;
  let openLen = -1;
  let intermediate = false;
  for (const spec of schema.fields) {
    const sk = specKeys(spec);
    if (!isOpen(spec)) {
      if (sk.length === keys.length && startsWith(keys, sk)) return { spec, type: spec.type };
      if (sk.length > keys.length && startsWith(sk, keys)) intermediate = true;
    } else if (keys.length > sk.length && startsWith(keys, sk)) {
      if (sk.length > openLen) {
        open = spec;
        openLen = sk.length;
      }
    } else if (startsWith(sk, keys)) intermediate = true;
  }
  if (open) return { spec: open, type: open.type };
  return intermediate ? { type: 'object' } : undefined;
}

/** Leaf operators grouped by the field types they fit. `exists` fits every field. */
const OPERATOR_TYPES: Record<string, readonly FieldType[]> = {
  eq: ['string', 'number', 'boolean', 'string[]'],
  in: ['string', 'number', 'boolean', 'string[]'],
  contains: ['string', 'string[]'],
  startswith: ['string', 'string[]'],
  endswith: ['string', 'string[]'],
  regex: ['string', 'string[]'],
  cidr: ['string', 'string[]'],
  gt: ['number'],
  gte: ['number'],
  lt: ['number'],
  lte: ['number'],
};

/** True when `op` can ever hold for a field of this type. */
export function operatorFits(op: string, type: FieldType): boolean {
  if (type === 'any' || op === 'exists') return true;
  return OPERATOR_TYPES[op]?.includes(type) ?? true;
}

/** The operators that fit a field type, for lint messages. */
export function operatorsFor(type: FieldType, all: readonly string[]): string[] {
  return all.filter((op) => operatorFits(op, type));
}

/** The type an `eq`/`in` literal must have to ever equal a value of the field; undefined when any will do. */
export function literalType(type: FieldType): 'string' | 'number' | 'boolean' | undefined {
  if (type === 'string' || type === 'string[]') return 'string';
  if (type === 'number' || type === 'boolean') return type;
  return undefined;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Up to three declared names close to a path that is not declared: by spelling, or by sharing its last key. */
export function closeFields(schema: SourceSchema, segs: readonly Segment[]): string[] {
  const keys = keysOf(segs);
  const path = keys.join('.').toLowerCase();
  const last = keys.at(-1)?.toLowerCase();
  const scored: [string, number][] = [];
  for (const spec of schema.fields) {
    const name = spec.name.toLowerCase();
    const d = distance(path, isOpen(spec) ? name.slice(0, -2) : name);
    const sameLast = !isOpen(spec) && last !== undefined && specKeys(spec).at(-1)?.toLowerCase() === last;
    if (d <= Math.max(2, Math.floor(name.length / 3)) || sameLast) scored.push([spec.name, sameLast ? Math.min(d, 1) : d]);
  }
  return scored
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
    .slice(0, 3)
    .map(([n]) => n);
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** `docs/rule-fields.md`: one table per source (field, type, description), as `scripts/rule-fields-doc.ts` writes it. */
export function renderFieldsDoc(schemas: readonly SourceSchema[]): string {
  const out = [
    '# Rule fields',
    '',
    '<!-- Generated from the field tables of the sources (SourceSchema.fields in connectors/*/normalize.ts): run `node --import tsx scripts/rule-fields-doc.ts`; do not edit. -->',
    '',
    'The fields a detection rule may use in `field:` and in `output` templates, per `source:`. `kubevigil rules lint` rejects',
    'other paths, and operators that do not fit a field’s type: `contains`, `startswith`, `endswith` and `regex` need a',
    'string, `gt`, `gte`, `lt` and `lte` a number, `eq` and `in` a value of the field’s type; `exists` fits every field',
    'and `any` every operator. A name ending in `.*` is an open map: any key below it (`labels.app`,',
    '`annotations["example.com/owner"]`). Array fields (`string[]`) match when any element does; `[0]` and `[*]` reach',
    'into arrays. Derived fields are computed by kubevigil from the event.',
  ];
  for (const s of schemas) {
    out.push('', `## \`${s.name}\``, '');
    out.push('| field | type | description |', '|---|---|---|');
    for (const f of s.fields) {
      const derived = s.derived.includes(specKeys(f)[0]!) ? ' (derived)' : '';
      out.push(`| \`${f.name}\` | \`${f.type}\` | ${cell(f.description)}${derived} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The rows of a derived `actor` (key, type, name, namespace), described for one source. */
export function actorFields(who: string): FieldSpec[] {
  return [
    { name: 'actor.key', type: 'string', description: `Entity key of ${who}, e.g. \`sa:frontend/frontend\`, \`pod:shop/web-1\`, \`ip:10.0.0.7\`.` },
    { name: 'actor.type', type: 'string', description: '`serviceaccount`, `user`, `node`, `anonymous`, `pod` or `ip`.' },
    { name: 'actor.name', type: 'string', description: 'The actor’s name as the source gave it (the Kubernetes username for users and service accounts).' },
    { name: 'actor.namespace', type: 'string', description: 'Namespace of a service-account or pod actor.' },
  ];
}
