/**
 * Rule files → compiled rule set. Validation and compilation are one pass, so `kubevigil rules lint`
 * and start-up report every problem in every file at once (file, item, field, reason), and a valid
 * rule set is turned into closures that never look at YAML again.
 */
import { isSeverity, SEVERITIES, type Severity } from '../severity.js';
import { isSignalKind, type SignalKind } from '../signal-kinds.js';
import type { MatchedCondition } from '../signal.js';
import { compileGetter, FieldPathError, parseFieldPath } from './field-path.js';
import type { Problem } from './problems.js';
import { closeFields, literalType, operatorFits, operatorsFor, resolveField, type ResolvedField } from './fields.js';
import type { SourceSchema } from './source-event.js';
import { isObj } from '../json-guards.js';
import { BlockList, isIP } from 'node:net';

/** A parsed rule file as read from YAML, before validation. */
export interface RuleFileInput {
  file: string;
  doc: unknown;
}

/** Leaf operators and what their value must be. */
export const OPERATORS = ['eq', 'in', 'contains', 'startswith', 'endswith', 'regex', 'cidr', 'exists', 'gt', 'gte', 'lt', 'lte'] as const;
type Op = (typeof OPERATORS)[number];
const OP_SET = new Set<string>(OPERATORS);

const REGEX_INPUT_MAX = 64 * 1024;

/** Evaluates a compiled node against an event's raw and derived fields. */
type Test = (raw: unknown, derived: object) => boolean;

/** A compiled condition tree node; `explain` collects the leaves that held. */
export interface CompiledNode {
  t: 'all' | 'any' | 'not' | 'leaf';
  test: Test;
  explain(raw: unknown, derived: object, out: MatchedCondition[]): boolean;
  kids?: CompiledNode[];
  /** For leaves: the field and the literal values of an `eq`/`in` test, used to index rules. */
  field?: string;
  literals?: readonly unknown[];
}

/** A rule ready to run. */
export interface CompiledRule {
  id: string;
  title: string;
  description: string;
  source: string;
  severity: Severity;
  kind: SignalKind;
  mitre: string[];
  tags: string[];
  file: string;
  condition: CompiledNode;
  exceptions: { name: string; file: string; node: CompiledNode }[];
  /** The public rules this rule covers (`sigma:<id>`, `falco:<name>`, `stratus:<id>`, `elastic:<id>`), for docs/coverage.md. */
  peers: string[];
  /** Renders the signal title from the event. */
  output: (raw: unknown, derived: object) => string;
}

/** The result of compiling every rule file: the enabled rules, and what was wrong. */
export interface CompileResult {
  rules: CompiledRule[];
  /** Rules present but switched off by an override. */
  disabled: string[];
  problems: Problem[];
}

const ID_RE = /^[a-z0-9][a-z0-9-]{2,80}$/;
const MITRE_RE = /^T\d{4}(\.\d{3})?$/;
const RULE_KEYS = new Set([
  'id',
  'title',
  'description',
  'source',
  'severity',
  'kind',
  'mitre',
  'tags',
  'peers',
  'condition',
  'exceptions',
  'output',
  'enabled',
]);
/** The public rule sets a rule may name in `peers:`. */
export const PEER_SETS = ['sigma', 'falco', 'stratus', 'elastic'] as const;
/** A `peers:` entry: `<set>:<the peer rule's id or name>`. */
export const PEER_RE = new RegExp(`^(${PEER_SETS.join('|')}):\\S`);
const FILE_KEYS = new Set(['apiVersion', 'kind', 'lists', 'macros', 'rules', 'exceptions', 'overrides']);

const isScalar = (v: unknown): v is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof v);

interface Ctx {
  file: string;
  item: string;
  problems: Problem[];
  lists: Map<string, unknown[]>;
  macros: Map<string, { file: string; raw: unknown; bySource: Map<string, CompiledNode>; compiling?: boolean }>;
  schemas: Map<string, SourceSchema>;
  source: string;
}

function problem(ctx: Pick<Ctx, 'file' | 'item' | 'problems'>, field: string, message: string): void {
  ctx.problems.push({ file: ctx.file, item: ctx.item, field, message });
}

const NEVER: CompiledNode = { t: 'leaf', test: () => false, explain: () => false };

/**
 * Evaluation generation: the detector bumps it once per event, and macros cache their result for
 * the current generation, so a macro shared by twenty rules is evaluated once per event.
 */
export const evaluation = { generation: 0 };

function cachedMacro(inner: CompiledNode): CompiledNode {
  let gen = -1;
  let val = false;
  return {
    ...inner,
    test: (raw, derived) => {
      if (gen === evaluation.generation) return val;
      val = inner.test(raw, derived);
      gen = evaluation.generation;
      return val;
    },
  };
}

type FieldGetter = (raw: unknown, derived: object) => unknown;

/**
 * Resolves a field path to a getter over raw or derived fields, depending on the source schema, and
 * to the row of the source's field table that declares it; a path the table lacks is a problem.
 */
function fieldAccess(ctx: Ctx, path: string, at: string): { get: FieldGetter; field?: ResolvedField } | undefined {
  let segs;
  try {
    segs = parseFieldPath(path);
  } catch (e) {
    problem(ctx, at, e instanceof FieldPathError ? e.message : String(e));
    return undefined;
  }
  const schema = ctx.schemas.get(ctx.source);
  let field: ResolvedField | undefined;
  if (schema) {
    field = resolveField(schema, segs);
    if (!field) {
      const close = closeFields(schema, segs);
      problem(
        ctx,
        at,
        `source ${schema.name} has no field "${path}"; ${close.length ? `did you mean ${close.join(', ')}? ` : ''}docs/rule-fields.md lists the fields of each source`,
      );
    }
  }
  const first = segs[0];
  if (schema && first && 'key' in first && schema.derived.includes(first.key)) {
    // Derived fields are (lazy) getters on the connector's own object: read the root directly, since
    // the own-property guard of ordinary paths would not see a getter on the prototype.
    const root = first.key;
    if (segs.length === 1) return { get: (_raw, derived) => (derived as Record<string, unknown>)[root], field };
    const rest = compileGetter(segs.slice(1));
    return { get: (_raw, derived) => rest((derived as Record<string, unknown>)[root]), field };
  }
  // A one-argument getter called with (raw, derived) ignores the second: no wrapper needed.
  return { get: compileGetter(segs) as FieldGetter, field };
}

function fieldGetter(ctx: Ctx, path: string, at: string): FieldGetter | undefined {
  return fieldAccess(ctx, path, at)?.get;
}

const describeType = (f: ResolvedField): string => (f.type === 'string[]' ? 'a list of strings' : f.type === 'object' ? 'an object' : `a ${f.type}`);

/** Reports an operator that cannot hold for the field's type, or an `eq`/`in` value of the wrong type. */
function checkOperatorType(ctx: Ctx, field: string, f: ResolvedField, op: Op, literals: readonly unknown[] | undefined, at: string): void {
  if (!operatorFits(op, f.type)) {
    const fit = operatorsFor(f.type, OPERATORS);
    problem(
      ctx,
      at,
      `${op} never holds for ${field}: it is ${describeType(f)}${f.spec ? ` (${f.spec.description.replace(/\.$/, '')})` : ''}; use ${fit.join(', ')}`,
    );
    return;
  }
  const want = literalType(f.type);
  if (!want || !literals || (op !== 'eq' && op !== 'in')) return;
  const bad = literals.filter((v) => typeof v !== want);
  if (bad.length)
    problem(
      ctx,
      at,
      `${field} is ${describeType(f)}: ${bad
        .slice(0, 3)
        .map((v) => `${JSON.stringify(v)} (${typeof v})`)
        .join(', ')} never equals it; write ${want} values${want === 'string' ? ' (quote them)' : ''}`,
    );
}

/** Expands `{list: name}` or an array (whose items may be `{list: name}`) into values. */
function values(ctx: Ctx, v: unknown, at: string): unknown[] | undefined {
  const expandOne = (x: unknown, where: string): unknown[] | undefined => {
    if (isObj(x) && typeof x.list === 'string' && Object.keys(x).length === 1) {
      const l = ctx.lists.get(x.list);
      if (!l) {
        problem(ctx, where, `unknown list "${x.list}"; define it under lists:`);
        return undefined;
      }
      return l;
    }
    if (isScalar(x)) return [x];
    problem(ctx, where, `expected a string, number, boolean or {list: name}, got ${JSON.stringify(x)?.slice(0, 60)}`);
    return undefined;
  };
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    v.forEach((x, i) => {
      const r = expandOne(x, `${at}[${i}]`);
      if (r) out.push(...r);
    });
    return out;
  }
  return expandOne(v, at);
}

function strings(ctx: Ctx, v: unknown, at: string): string[] | undefined {
  const vs = values(ctx, v, at);
  if (!vs) return undefined;
  if (vs.some((x) => typeof x !== 'string')) {
    problem(ctx, at, 'expected string values');
    return undefined;
  }
  return vs as string[];
}

/**
 * Remembers a string predicate's answers: user agents, addresses and commands repeat across
 * millions of events, so a regex or CIDR test runs once per distinct value. Bounded; short strings only.
 */
function memoized(pred: (s: string) => boolean, max = 4096): (s: string) => boolean {
  let memo = new Map<string, boolean>();
  return (s) => {
    if (s.length > 512) return pred(s);
    let hit = memo.get(s);
    if (hit === undefined) {
      hit = pred(s);
      if (memo.size >= max) memo = new Map();
      memo.set(s, hit);
    }
    return hit;
  };
}

function anyOf(pred: (x: unknown) => boolean): (v: unknown) => boolean {
  return (v) => {
    if (!Array.isArray(v)) return pred(v);
    for (let i = 0; i < v.length; i++) if (pred(v[i])) return true;
    return false;
  };
}

function num(x: unknown): number | undefined {
  if (typeof x === 'number') return x;
  if (typeof x === 'string' && x.trim() !== '' && Number.isFinite(Number(x))) return Number(x);
  return undefined;
}

function compileRegex(ctx: Ctx, v: unknown, at: string): RegExp | undefined {
  if (typeof v !== 'string') {
    problem(ctx, at, 'regex must be a string; use (?i) at the start for case-insensitive matching');
    return undefined;
  }
  let src = v;
  let flags = '';
  if (src.startsWith('(?i)')) {
    src = src.slice(4);
    flags = 'i';
  }
  try {
    return new RegExp(src, flags);
  } catch (e) {
    problem(ctx, at, `invalid regular expression: ${(e as Error).message}`);
    return undefined;
  }
}

function compileOp(ctx: Ctx, op: Op, expected: unknown, at: string): { pred: (v: unknown) => boolean; literals?: unknown[]; shown: unknown } | undefined {
  switch (op) {
    case 'eq': {
      if (!isScalar(expected)) {
        problem(ctx, at, 'eq takes one string, number or boolean; use in: for several values');
        return undefined;
      }
      return { pred: anyOf((x) => x === expected), literals: [expected], shown: expected };
    }
    case 'in': {
      const vs = values(ctx, expected, at);
      if (!vs) return undefined;
      if (!Array.isArray(expected) && !isObj(expected)) {
        problem(ctx, at, 'in takes a list of values or {list: name}');
        return undefined;
      }
      const set = new Set(vs);
      return { pred: anyOf((x) => set.has(x)), literals: vs, shown: vs.length > 8 ? `${vs.length} values` : vs };
    }
    case 'contains':
    case 'startswith':
    case 'endswith': {
      const needles = strings(ctx, expected, at);
      if (!needles) return undefined;
      const f =
        op === 'contains'
          ? (s: string) => needles.some((n) => s.includes(n))
          : op === 'startswith'
            ? (s: string) => needles.some((n) => s.startsWith(n))
            : (s: string) => needles.some((n) => s.endsWith(n));
      return { pred: anyOf((x) => typeof x === 'string' && f(x)), shown: needles.length === 1 ? needles[0] : needles };
    }
    case 'regex': {
      const re = compileRegex(ctx, expected, at);
      if (!re) return undefined;
      // Regexes see at most the first 64 KiB of a value: a rule's backtracking cannot be made to
      // run for seconds on an attacker's megabyte-long field.
      const test = memoized((x) => re.test(x.length > REGEX_INPUT_MAX ? x.slice(0, REGEX_INPUT_MAX) : x));
      return { pred: anyOf((x) => typeof x === 'string' && test(x)), shown: expected };
    }
    case 'cidr': {
      const nets = strings(ctx, expected, at);
      if (!nets) return undefined;
      const block = new BlockList();
      for (const n of nets) {
        const [addr, bits, extra] = n.split('/');
        const family = isIP(addr ?? '');
        const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
        if (!family || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
          problem(ctx, at, `"${n}" is not an address or CIDR block such as 10.0.0.0/8 or fd00::/8`);
          return undefined;
        }
        block.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
      }
      // An IPv4 address in IPv6 form (::ffff:10.0.0.1) is checked as the IPv4 address it is.
      const inside = (x: string) => {
        const v4 = x.startsWith('::ffff:') ? x.slice(7) : x;
        const fam = isIP(v4);
        return fam !== 0 && block.check(v4, fam === 6 ? 'ipv6' : 'ipv4');
      };
      return { pred: anyOf((x) => typeof x === 'string' && inside(x)), shown: nets.length > 4 ? `${nets.length} networks` : nets };
    }
    case 'exists': {
      if (typeof expected !== 'boolean') {
        problem(ctx, at, 'exists takes true or false');
        return undefined;
      }
      const present = (v: unknown) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
      return { pred: (v) => present(v) === expected, shown: expected };
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (typeof expected !== 'number') {
        problem(ctx, at, `${op} takes a number`);
        return undefined;
      }
      const cmp =
        op === 'gt'
          ? (a: number) => a > expected
          : op === 'gte'
            ? (a: number) => a >= expected
            : op === 'lt'
              ? (a: number) => a < expected
              : (a: number) => a <= expected;
      return {
        pred: anyOf((x) => {
          const n = num(x);
          return n !== undefined && cmp(n);
        }),
        shown: expected,
      };
    }
  }
}

function compileLeaf(ctx: Ctx, node: Record<string, unknown>, at: string): CompiledNode {
  const field = node.field;
  if (typeof field !== 'string') {
    problem(ctx, `${at}.field`, 'a condition needs field: (a path such as objectRef.resource) or one of all/any/not/macro');
    return NEVER;
  }
  const access = fieldAccess(ctx, field, `${at}.field`);
  const get = access?.get;
  const ops = Object.keys(node).filter((k) => k !== 'field');
  const unknown = ops.filter((k) => !OP_SET.has(k));
  for (const k of unknown) problem(ctx, `${at}.${k}`, `unknown operator "${k}"; use one of ${OPERATORS.join(', ')}`);
  const known = ops.filter((k): k is Op => OP_SET.has(k));
  if (known.length === 0 && unknown.length === 0) problem(ctx, at, `field "${field}" has no operator; add one of ${OPERATORS.join(', ')}`);
  const leaves: CompiledNode[] = [];
  for (const op of known) {
    const c = compileOp(ctx, op, node[op], `${at}.${op}`);
    if (c && access?.field) checkOperatorType(ctx, field, access.field, op, c.literals, `${at}.${op}`);
    if (!c || !get) continue;
    const { pred, literals, shown } = c;
    const test: Test = (raw, derived) => pred(get(raw, derived));
    leaves.push({
      t: 'leaf',
      test,
      field,
      literals: op === 'eq' || op === 'in' ? literals : undefined,
      explain(raw, derived, out) {
        const actual = get(raw, derived);
        if (!pred(actual)) return false;
        out.push({ field, op, expected: shown, actual: Array.isArray(actual) && actual.length > 8 ? `${actual.length} values` : actual });
        return true;
      },
    });
  }
  if (leaves.length === 0) return NEVER;
  if (leaves.length === 1) return leaves[0]!;
  return allOf(leaves);
}

function allOf(kids: CompiledNode[]): CompiledNode {
  const n = kids.length;
  return {
    t: 'all',
    kids,
    test: (raw, derived) => {
      for (let i = 0; i < n; i++) if (!kids[i]!.test(raw, derived)) return false;
      return true;
    },
    explain(raw, derived, out) {
      const mark = out.length;
      for (const k of kids)
        if (!k.explain(raw, derived, out)) {
          out.length = mark;
          return false;
        }
      return true;
    },
  };
}

function anyOfNodes(kids: CompiledNode[]): CompiledNode {
  const n = kids.length;
  return {
    t: 'any',
    kids,
    test: (raw, derived) => {
      for (let i = 0; i < n; i++) if (kids[i]!.test(raw, derived)) return true;
      return false;
    },
    explain(raw, derived, out) {
      for (const k of kids) if (k.explain(raw, derived, out)) return true;
      return false;
    },
  };
}

function compileNode(ctx: Ctx, node: unknown, at: string, depth = 0): CompiledNode {
  if (depth > 32) {
    problem(ctx, at, 'condition nested deeper than 32 levels');
    return NEVER;
  }
  if (!isObj(node)) {
    problem(ctx, at, 'a condition must be a mapping: {all: [...]}, {any: [...]}, {not: ...}, {macro: name} or {field: ..., <operator>: ...}');
    return NEVER;
  }
  const combinators = ['all', 'any', 'not', 'macro'].filter((k) => k in node);
  if (combinators.length > 1 || (combinators.length === 1 && Object.keys(node).length > 1)) {
    problem(ctx, at, `use exactly one of all/any/not/macro per mapping (found ${Object.keys(node).join(', ')}); nest them instead`);
    return NEVER;
  }
  if ('all' in node || 'any' in node) {
    const key = 'all' in node ? 'all' : 'any';
    const list = node[key];
    if (!Array.isArray(list) || list.length === 0) {
      problem(ctx, `${at}.${key}`, `${key} takes a non-empty list of conditions`);
      return NEVER;
    }
    const kids = list.map((k, i) => compileNode(ctx, k, `${at}.${key}[${i}]`, depth + 1));
    if (kids.length === 1) return kids[0]!;
    return key === 'all' ? allOf(kids) : anyOfNodes(kids);
  }
  if ('not' in node) {
    const kid = compileNode(ctx, node.not, `${at}.not`, depth + 1);
    return { t: 'not', kids: [kid], test: (raw, derived) => !kid.test(raw, derived), explain: (raw, derived) => !kid.test(raw, derived) };
  }
  if ('macro' in node) {
    const name = node.macro;
    const m = typeof name === 'string' ? ctx.macros.get(name) : undefined;
    if (!m) {
      problem(ctx, `${at}.macro`, `unknown macro ${JSON.stringify(name)}; define it under macros:`);
      return NEVER;
    }
    // A macro is compiled once per source schema: field roots resolve differently per source.
    const known = m.bySource.get(ctx.source);
    if (known) return known;
    if (m.compiling) {
      problem(ctx, `${at}.macro`, `macro "${String(name)}" refers to itself`);
      return NEVER;
    }
    m.compiling = true;
    const inner = compileNode({ ...ctx, file: m.file, item: `macro ${String(name)}` }, m.raw, 'condition', depth + 1);
    m.compiling = false;
    const cached = cachedMacro(inner);
    m.bySource.set(ctx.source, cached);
    return cached;
  }
  return compileLeaf(ctx, node, at);
}

const TEMPLATE_RE = /\{([^{}]+)\}/g;

/**
 * `{field}` renders a field; `{field|words}` renders `words` when the field is absent or empty. An
 * absent field without a fallback reads "unknown <name>" — never a bare placeholder.
 */
function compileTemplate(ctx: Ctx, template: string, at: string): (raw: unknown, derived: object) => string {
  const parts: (string | { get: (raw: unknown, derived: object) => unknown; missing: string })[] = [];
  let last = 0;
  for (const m of template.matchAll(TEMPLATE_RE)) {
    parts.push(template.slice(last, m.index));
    const inner = m[1]!;
    const bar = inner.indexOf('|');
    const path = (bar < 0 ? inner : inner.slice(0, bar)).trim();
    const g = fieldGetter(ctx, path, at);
    const lastName =
      path
        .replace(/\[[^\]]*\]/g, '')
        .split('.')
        .pop() ?? path;
    parts.push({ get: g ?? (() => undefined), missing: bar < 0 ? `unknown ${lastName}` : inner.slice(bar + 1).trim() });
    last = m.index + m[0].length;
  }
  parts.push(template.slice(last));
  return (raw, derived) => {
    let s = '';
    for (const p of parts) {
      if (typeof p === 'string') s += p;
      else {
        const v = p.get(raw, derived);
        // Each value is cut before it is joined, so a huge field costs nothing to render.
        const text =
          v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)
            ? p.missing
            : Array.isArray(v)
              ? v.slice(0, 20).map(String).join(', ')
              : typeof v === 'object'
                ? p.missing
                : String(v);
        // Copied when cut: a slice would keep an attacker's megabyte-long value alive in the title.
        s += text.length > 300 ? Buffer.from(text.slice(0, 300), 'utf8').toString('utf8') : text;
        if (s.length > 300) break;
      }
    }
    return s.length > 300 ? Buffer.from(`${s.slice(0, 300)}…`, 'utf8').toString('utf8') : s;
  };
}

function checkKeys(ctx: Ctx, obj: Record<string, unknown>, allowed: Set<string>, at: string): void {
  for (const k of Object.keys(obj)) if (!allowed.has(k)) problem(ctx, at ? `${at}.${k}` : k, `unknown key "${k}"; allowed: ${[...allowed].join(', ')}`);
}

/**
 * Validates and compiles rule files in order (later files extend earlier ones: they may append to
 * lists, add exceptions to rules and override `enabled`/`severity`). Never throws; problems are returned.
 */
export function compileRules(files: RuleFileInput[], schemas: SourceSchema[]): CompileResult {
  const problems: Problem[] = [];
  const lists = new Map<string, unknown[]>();
  const macros: Ctx['macros'] = new Map();
  const schemaMap = new Map(schemas.map((s) => [s.name as string, s]));
  const base = (file: string, item: string): Ctx => ({ file, item, problems, lists, macros, schemas: schemaMap, source: '' });

  // Pass 1: lists and macros from every file, so rules may use names defined in any file.
  for (const { file, doc } of files) {
    const ctx = base(file, '');
    if (doc === null || doc === undefined) continue;
    if (!isObj(doc)) {
      problem(ctx, '(file)', 'a rule file is a mapping with lists:, macros:, rules:, exceptions: or overrides:');
      continue;
    }
    checkKeys(ctx, doc, FILE_KEYS, '');
    for (const [key, arr] of [
      ['lists', doc.lists],
      ['macros', doc.macros],
    ] as const) {
      if (arr === undefined) continue;
      if (!Array.isArray(arr)) {
        problem(ctx, key, `${key} must be a list`);
        continue;
      }
      arr.forEach((entry, i) => {
        const c = { ...ctx, item: `${key}[${i}]` };
        if (!isObj(entry) || typeof entry.name !== 'string') {
          problem(c, 'name', 'each entry needs a name');
          return;
        }
        c.item = `${key === 'lists' ? 'list' : 'macro'} ${entry.name}`;
        if (key === 'lists') {
          checkKeys(c, entry, new Set(['name', 'items', 'append', 'docs']), '');
          if (!Array.isArray(entry.items) || !entry.items.every(isScalar)) {
            problem(c, 'items', 'items must be a list of strings, numbers or booleans');
            return;
          }
          const prev = lists.get(entry.name);
          if (entry.append === true) {
            if (!prev) problem(c, 'append', `cannot append to list "${entry.name}": no earlier file defines it`);
            else prev.push(...entry.items);
          } else if (prev) problem(c, 'name', `list "${entry.name}" is defined twice; use append: true to extend it`);
          else lists.set(entry.name, [...entry.items]);
        } else {
          checkKeys(c, entry, new Set(['name', 'condition']), '');
          if (macros.has(entry.name)) problem(c, 'name', `macro "${entry.name}" is defined twice`);
          else if (entry.condition === undefined) problem(c, 'condition', 'a macro needs a condition');
          else macros.set(entry.name, { file, raw: entry.condition, bySource: new Map() });
        }
      });
    }
  }

  // Pass 2: rules.
  const rules: CompiledRule[] = [];
  const byId = new Map<string, CompiledRule>();
  for (const { file, doc } of files) {
    if (!isObj(doc) || doc.rules === undefined) continue;
    if (!Array.isArray(doc.rules)) {
      problem(base(file, ''), 'rules', 'rules must be a list');
      continue;
    }
    doc.rules.forEach((r, i) => {
      const ctx = base(file, `rules[${i}]`);
      if (!isObj(r)) {
        problem(ctx, '', 'a rule must be a mapping');
        return;
      }
      if (typeof r.id === 'string') ctx.item = r.id;
      checkKeys(ctx, r, RULE_KEYS, '');
      if (typeof r.id !== 'string' || !ID_RE.test(r.id)) problem(ctx, 'id', `id must be 3-81 characters of a-z, 0-9 and "-" (got ${JSON.stringify(r.id)})`);
      else if (byId.has(r.id)) problem(ctx, 'id', `duplicate rule id, first defined in ${byId.get(r.id)!.file}`);
      for (const k of ['title', 'description'] as const) if (typeof r[k] !== 'string' || (r[k] as string).trim() === '') problem(ctx, k, `${k} is required`);
      if (typeof r.description === 'string' && !/false positive|noise/i.test(r.description))
        problem(ctx, 'description', 'say how the rule avoids noise: name the known false positives ("False positives: …")');
      if (typeof r.source !== 'string' || !schemaMap.has(r.source))
        problem(ctx, 'source', `source must be one of ${[...schemaMap.keys()].join(', ')} (got ${JSON.stringify(r.source)})`);
      else ctx.source = r.source;
      if (!isSeverity(r.severity)) problem(ctx, 'severity', `severity must be one of ${SEVERITIES.join(', ')} (got ${JSON.stringify(r.severity)})`);
      if (!isSignalKind(r.kind)) problem(ctx, 'kind', `unknown signal kind ${JSON.stringify(r.kind)}; see correlator/signal-kinds.ts for the list`);
      const mitre = Array.isArray(r.mitre) ? r.mitre : [];
      if (!Array.isArray(r.mitre) || mitre.length === 0) problem(ctx, 'mitre', 'mitre: list at least one ATT&CK technique id, e.g. [T1552.007]');
      mitre.forEach((m, j) => {
        if (typeof m !== 'string' || !MITRE_RE.test(m))
          problem(ctx, `mitre[${j}]`, `${JSON.stringify(m)} is not an ATT&CK technique id like T1609 or T1552.007`);
      });
      if (r.tags !== undefined && (!Array.isArray(r.tags) || !r.tags.every((t) => typeof t === 'string')))
        problem(ctx, 'tags', 'tags must be a list of strings');
      if (r.peers !== undefined && (!Array.isArray(r.peers) || !r.peers.every((x) => typeof x === 'string' && PEER_RE.test(x))))
        problem(ctx, 'peers', `peers must be a list of "<set>:<rule id or name>" with set one of ${PEER_SETS.join(', ')}`);
      if (r.enabled !== undefined && typeof r.enabled !== 'boolean') problem(ctx, 'enabled', 'enabled must be true or false');
      if (r.condition === undefined) problem(ctx, 'condition', 'a rule needs a condition');
      const condition = r.condition === undefined ? NEVER : compileNode(ctx, r.condition, 'condition');
      const exceptions: CompiledRule['exceptions'] = [];
      if (r.exceptions !== undefined) {
        if (!Array.isArray(r.exceptions)) problem(ctx, 'exceptions', 'exceptions must be a list of {name, condition}');
        else
          r.exceptions.forEach((ex, j) => {
            if (!isObj(ex) || typeof ex.name !== 'string' || ex.condition === undefined) {
              problem(ctx, `exceptions[${j}]`, 'an exception needs name: and condition:');
              return;
            }
            exceptions.push({ name: ex.name, file, node: compileNode(ctx, ex.condition, `exceptions[${j}].condition`) });
          });
      }
      if (r.output !== undefined && typeof r.output !== 'string')
        problem(ctx, 'output', 'output must be a string template such as "{user.username} read {objectRef.name}"');
      const title = typeof r.title === 'string' ? r.title : String(r.id);
      const output: CompiledRule['output'] = typeof r.output === 'string' ? compileTemplate(ctx, r.output, 'output') : () => title;
      if (typeof r.id !== 'string' || byId.has(r.id)) return;
      const rule: CompiledRule = {
        id: r.id,
        title,
        description: typeof r.description === 'string' ? r.description : '',
        source: String(r.source),
        severity: isSeverity(r.severity) ? r.severity : 'info',
        kind: isSignalKind(r.kind) ? r.kind : 'rbac.denied',
        mitre: mitre.filter((m): m is string => typeof m === 'string'),
        tags: Array.isArray(r.tags) ? r.tags.map(String) : [],
        peers: Array.isArray(r.peers) ? r.peers.map(String) : [],
        file,
        condition,
        exceptions,
        output,
      };
      byId.set(rule.id, rule);
      if (r.enabled !== false) rules.push(rule);
    });
  }

  // Macros no rule used are still checked, so lint reports their problems too.
  for (const [name, m] of macros) if (m.bySource.size === 0) compileNode(base(m.file, `macro ${name}`), { macro: name }, 'condition');

  // Pass 3: exceptions and overrides aimed at rules from other files (the user's own files).
  const disabled = new Set<string>();
  for (const { file, doc } of files) {
    if (!isObj(doc)) continue;
    const ctx = base(file, '');
    if (doc.exceptions !== undefined) {
      if (!Array.isArray(doc.exceptions)) problem(ctx, 'exceptions', 'exceptions must be a list of {rule, name, condition}');
      else
        doc.exceptions.forEach((ex, i) => {
          const c = { ...ctx, item: `exceptions[${i}]` };
          if (!isObj(ex) || typeof ex.rule !== 'string' || typeof ex.name !== 'string' || ex.condition === undefined) {
            problem(c, '', 'an exception needs rule:, name: and condition:');
            return;
          }
          c.item = `exception ${ex.name}`;
          checkKeys(c, ex, new Set(['rule', 'name', 'condition']), '');
          const target = byId.get(ex.rule);
          if (!target) {
            problem(c, 'rule', `no rule with id "${ex.rule}"; run kubevigil rules lint to list ids`);
            return;
          }
          c.source = target.source;
          target.exceptions.push({ name: ex.name, file, node: compileNode(c, ex.condition, 'condition') });
        });
    }
    if (doc.overrides !== undefined) {
      if (!Array.isArray(doc.overrides)) problem(ctx, 'overrides', 'overrides must be a list of {rule, enabled?, severity?}');
      else
        doc.overrides.forEach((o, i) => {
          const c = { ...ctx, item: `overrides[${i}]` };
          if (!isObj(o) || typeof o.rule !== 'string') {
            problem(c, 'rule', 'an override needs rule: <id>');
            return;
          }
          checkKeys(c, o, new Set(['rule', 'enabled', 'severity']), '');
          const target = byId.get(o.rule);
          if (!target) {
            problem(c, 'rule', `no rule with id "${o.rule}"`);
            return;
          }
          if (o.severity !== undefined) {
            if (isSeverity(o.severity)) target.severity = o.severity;
            else problem(c, 'severity', `severity must be one of ${SEVERITIES.join(', ')}`);
          }
          if (o.enabled === false) disabled.add(o.rule);
          else if (o.enabled === true) disabled.delete(o.rule);
          else if (o.enabled !== undefined) problem(c, 'enabled', 'enabled must be true or false');
        });
    }
  }
  for (const id of disabled) {
    const i = rules.findIndex((r) => r.id === id);
    if (i >= 0) rules.splice(i, 1);
  }
  // Rules disabled in their own file but re-enabled by an override.
  for (const { doc } of files) {
    if (!isObj(doc) || !Array.isArray(doc.overrides)) continue;
    for (const o of doc.overrides)
      if (isObj(o) && o.enabled === true && typeof o.rule === 'string') {
        const r = byId.get(o.rule);
        if (r && !rules.includes(r)) rules.push(r);
      }
  }
  return { rules, disabled: [...disabled], problems };
}

/** Plain objects have no derived fields; one shared empty object avoids an allocation per call. */
const NO_DERIVED: object = Object.freeze({});

/**
 * Compiles one condition over plain objects (no derived fields, no macros or lists), e.g. the
 * `where:` filter of a correlation rule over signals. Problems are appended to `problems`.
 */
export function compileCondition(node: unknown, file: string, item: string, at: string, problems: Problem[]): (value: unknown) => boolean {
  const ctx: Ctx = { file, item, problems, lists: new Map(), macros: new Map(), schemas: new Map(), source: '' };
  const compiled = compileNode(ctx, node, at);
  return (value) => compiled.test(value, NO_DERIVED);
}

/** Compiles a field path into a getter over plain objects, reporting a bad path as a problem. */
export function compileField(path: string, file: string, item: string, at: string, problems: Problem[]): ((value: unknown) => unknown) | undefined {
  const ctx: Ctx = { file, item, problems, lists: new Map(), macros: new Map(), schemas: new Map(), source: '' };
  const g = fieldGetter(ctx, path, at);
  return g && ((value) => g(value, NO_DERIVED));
}
