/**
 * Correlation rules, with the semantics of Sigma correlation rules so that anyone who knows Sigma
 * (or EQL sequences) can read them:
 *
 * - `event_count`: at least/most N matching signals per group within `timespan`;
 * - `value_count`: N distinct values of `field` (e.g. namespaces probed) per group within `timespan`;
 * - `temporal`: every referenced rule (or `condition` many of them) seen within `timespan`, any order;
 * - `temporal_ordered`: the referenced rules seen in the listed order within `timespan`.
 *
 * `rules:` references signal kinds (`rbac.denied`), detection rule ids, or other correlation ids.
 * A `building_block: true` correlation only feeds others (and enriches an incident that exists).
 * `group_by` defaults to the actor; `aliases` name one grouping field that different references
 * spell differently.
 */
import { PEER_RE, PEER_SETS } from '../detection/compile.js';
import { compileCondition, compileField } from '../detection/compile.js';
import type { Problem } from '../detection/problems.js';
import { isSeverity, SEVERITIES, type Severity } from '../severity.js';
import { isSignalKind } from '../signal-kinds.js';
import { isObj } from '../json-guards.js';

/** Correlation types (Sigma names). */
export const CORRELATION_TYPES = ['event_count', 'value_count', 'temporal', 'temporal_ordered'] as const;
/** A correlation type. */
export type CorrelationType = (typeof CORRELATION_TYPES)[number];

/** A Sigma condition: comparison operators and a number. */
export interface CountCondition {
  op: 'gt' | 'gte' | 'lt' | 'lte' | 'eq';
  value: number;
}

/** A correlation ready to run. */
export interface CompiledCorrelation {
  id: string;
  title: string;
  description: string;
  type: CorrelationType;
  /** Referenced names, in order (order matters for temporal_ordered). */
  refs: string[];
  /** For each reference: what it names. */
  refKinds: ('kind' | 'rule' | 'correlation')[];
  /** Grouping fields; each maps a reference index to a getter (aliases make them differ per reference). */
  groupBy: { name: string; aliased: boolean; get: (ref: number, signal: unknown) => unknown }[];
  timespanMs: number;
  condition: CountCondition;
  /** value_count: the field whose distinct values are counted. */
  field?: (signal: unknown) => unknown;
  where?: (signal: unknown) => boolean;
  severity: Severity;
  mitre: string[];
  /** A building block only feeds other correlations and enriches an existing incident; it never opens one. */
  buildingBlock: boolean;
  /** The public rules this correlation covers (see the detection rules' `peers`). */
  peers: string[];
  file: string;
}

/** A correlation rule file as read from YAML. */
export interface CorrelationFileInput {
  file: string;
  doc: unknown;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ID_RE = /^[a-z0-9][a-z0-9-]{2,80}$/;
const MITRE_RE = /^T\d{4}(\.\d{3})?$/;
const KEYS = new Set([
  'id',
  'title',
  'description',
  'type',
  'rules',
  'group_by',
  'timespan',
  'condition',
  'field',
  'aliases',
  'where',
  'severity',
  'mitre',
  'enabled',
  'building_block',
  'peers',
]);

/** Parses `30s`, `10m`, `1h`, `2d` into milliseconds; undefined when malformed. */
export function parseDuration(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d+)([smhd])$/.exec(s.trim());
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

/** True when `n` satisfies the condition. */
export function holds(c: CountCondition, n: number): boolean {
  switch (c.op) {
    case 'gt':
      return n > c.value;
    case 'gte':
      return n >= c.value;
    case 'lt':
      return n < c.value;
    case 'lte':
      return n <= c.value;
    case 'eq':
      return n === c.value;
  }
}

/**
 * Validates and compiles correlation files. `detectionRuleIds` lets references name detection
 * rules; every problem is returned, none thrown.
 */
export function compileCorrelations(
  files: CorrelationFileInput[],
  detectionRuleIds: ReadonlySet<string>,
): { correlations: CompiledCorrelation[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const raw: { file: string; r: Record<string, unknown>; item: string }[] = [];
  for (const { file, doc } of files) {
    if (doc === undefined || doc === null) continue;
    if (!isObj(doc) || !Array.isArray(doc.correlations)) {
      problems.push({ file, field: 'correlations', message: 'a correlation file is a mapping with correlations: [ … ]' });
      continue;
    }
    for (const k of Object.keys(doc))
      if (k !== 'correlations') problems.push({ file, field: k, message: `unknown key "${k}"; a correlation file has only correlations:` });
    doc.correlations.forEach((r, i) => {
      if (!isObj(r)) problems.push({ file, item: `correlations[${i}]`, field: '', message: 'a correlation must be a mapping' });
      else raw.push({ file, r, item: typeof r.id === 'string' ? r.id : `correlations[${i}]` });
    });
  }
  const ids = new Set<string>();
  for (const { file, r, item } of raw) {
    if (typeof r.id !== 'string' || !ID_RE.test(r.id))
      problems.push({ file, item, field: 'id', message: `id must be 3-81 characters of a-z, 0-9 and "-" (got ${JSON.stringify(r.id)})` });
    else if (ids.has(r.id) || detectionRuleIds.has(r.id)) problems.push({ file, item, field: 'id', message: `id "${r.id}" is already used by another rule` });
    else ids.add(r.id);
  }

  const out: CompiledCorrelation[] = [];
  for (const { file, r, item } of raw) {
    const p = (field: string, message: string) => problems.push({ file, item, field, message });
    for (const k of Object.keys(r)) if (!KEYS.has(k)) p(k, `unknown key "${k}"; allowed: ${[...KEYS].join(', ')}`);
    for (const k of ['title', 'description'] as const) if (typeof r[k] !== 'string' || r[k] === '') p(k, `${k} is required`);
    if (typeof r.description === 'string' && !/false positive|noise/i.test(r.description))
      p('description', 'say how the correlation avoids noise: name the known false positives');
    const type = r.type as CorrelationType;
    if (!CORRELATION_TYPES.includes(type)) p('type', `type must be one of ${CORRELATION_TYPES.join(', ')} (got ${JSON.stringify(r.type)})`);
    const refs = Array.isArray(r.rules) ? r.rules.filter((x): x is string => typeof x === 'string') : [];
    if (!Array.isArray(r.rules) || refs.length === 0 || refs.length !== r.rules.length)
      p('rules', 'rules: list the signal kinds, detection rule ids or correlation ids this correlation counts');
    const refKinds = refs.map((ref, j): 'kind' | 'rule' | 'correlation' => {
      if (isSignalKind(ref)) return 'kind';
      if (detectionRuleIds.has(ref)) return 'rule';
      if (ids.has(ref) && ref !== r.id) return 'correlation';
      p(`rules[${j}]`, `"${ref}" is neither a signal kind, a detection rule id nor another correlation's id`);
      return 'kind';
    });
    if ((type === 'temporal' || type === 'temporal_ordered') && refs.length < 2) p('rules', `${type} needs at least two references`);
    if (refs.length > 30) p('rules', `at most 30 references per correlation (got ${refs.length}); split it, or reference signal kinds instead of rule ids`);
    const timespanMs = parseDuration(r.timespan);
    if (timespanMs === undefined || timespanMs < 1000)
      p('timespan', `timespan (${JSON.stringify(r.timespan)}) must be a duration of at least 1s such as 30s, 10m or 1h; 10m suits most attack paths`);
    let condition: CountCondition = type === 'temporal' || type === 'temporal_ordered' ? { op: 'gte', value: refs.length } : { op: 'gte', value: 1 };
    if (r.condition !== undefined) {
      const c = r.condition;
      const entries = isObj(c) ? Object.entries(c) : [];
      if (entries.length !== 1 || !['gt', 'gte', 'lt', 'lte', 'eq'].includes(entries[0]![0]) || typeof entries[0]![1] !== 'number')
        p('condition', 'condition is one comparison such as {gte: 5} (gt, gte, lt, lte, eq)');
      else condition = { op: entries[0]![0] as CountCondition['op'], value: entries[0]![1] as number };
      if (type === 'temporal_ordered') p('condition', 'temporal_ordered needs every reference in order; drop condition');
    } else if (type === 'event_count' || type === 'value_count') p('condition', `${type} needs a condition such as {gte: 5}`);
    // Aliases: name → {reference → field path}.
    const aliases = new Map<string, Map<number, (s: unknown) => unknown>>();
    if (r.aliases !== undefined) {
      if (!isObj(r.aliases)) p('aliases', 'aliases maps an alias name to {reference: field path}');
      else
        for (const [name, spec] of Object.entries(r.aliases)) {
          if (!isObj(spec)) {
            p(`aliases.${name}`, 'each alias maps references to field paths');
            continue;
          }
          const m = new Map<number, (s: unknown) => unknown>();
          for (const [ref, path] of Object.entries(spec)) {
            const j = refs.indexOf(ref);
            if (j < 0) p(`aliases.${name}.${ref}`, `"${ref}" is not one of this correlation's rules`);
            else if (typeof path !== 'string') p(`aliases.${name}.${ref}`, 'expected a field path');
            else {
              const g = compileField(path, file, item, `aliases.${name}.${ref}`, problems);
              if (g) m.set(j, g);
            }
          }
          for (let j = 0; j < refs.length; j++) if (!m.has(j)) p(`aliases.${name}`, `alias "${name}" does not say which field of "${refs[j]}" to use`);
          aliases.set(name, m);
        }
    }
    const groupNames = r.group_by === undefined ? ['actor.key'] : Array.isArray(r.group_by) ? r.group_by.filter((g): g is string => typeof g === 'string') : [];
    if (r.group_by !== undefined && (!Array.isArray(r.group_by) || groupNames.length !== r.group_by.length))
      p('group_by', 'group_by is a list of field paths or alias names');
    const groupBy: CompiledCorrelation['groupBy'] = [];
    for (const name of groupNames) {
      const alias = aliases.get(name);
      if (alias) groupBy.push({ name, aliased: true, get: (ref, s) => alias.get(ref)?.(s) });
      else {
        const g = compileField(name, file, item, 'group_by', problems);
        if (g) groupBy.push({ name, aliased: false, get: (_ref, s) => g(s) });
      }
    }
    let field: CompiledCorrelation['field'];
    if (type === 'value_count') {
      if (typeof r.field !== 'string') p('field', 'value_count needs field: the path whose distinct values are counted, e.g. target.namespace');
      else field = compileField(r.field, file, item, 'field', problems);
    } else if (r.field !== undefined) p('field', 'field is only used by value_count');
    const where = r.where === undefined ? undefined : compileCondition(r.where, file, item, 'where', problems);
    if (!isSeverity(r.severity)) p('severity', `severity must be one of ${SEVERITIES.join(', ')}`);
    const mitre = Array.isArray(r.mitre) ? r.mitre.filter((m): m is string => typeof m === 'string' && MITRE_RE.test(m)) : [];
    if (r.peers !== undefined && (!Array.isArray(r.peers) || !r.peers.every((x) => typeof x === 'string' && PEER_RE.test(x))))
      p('peers', `peers must be a list of "<set>:<rule id or name>" with set one of ${PEER_SETS.join(', ')}`);
    if (!Array.isArray(r.mitre) || mitre.length === 0 || mitre.length !== r.mitre.length) p('mitre', 'mitre: list ATT&CK technique ids like T1552.007');
    if (r.building_block !== undefined && typeof r.building_block !== 'boolean') p('building_block', 'building_block must be true or false');
    if (r.enabled === false || typeof r.id !== 'string' || timespanMs === undefined) continue;
    out.push({
      id: r.id,
      title: String(r.title ?? r.id),
      description: String(r.description ?? ''),
      type,
      refs,
      refKinds,
      groupBy,
      timespanMs,
      condition,
      field,
      where,
      severity: isSeverity(r.severity) ? r.severity : 'medium',
      mitre,
      buildingBlock: r.building_block === true,
      peers: Array.isArray(r.peers) ? r.peers.map(String) : [],
      file,
    });
  }
  // Correlations on correlations: no cycles.
  const byId = new Map(out.map((c) => [c.id, c]));
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (c: CompiledCorrelation): boolean => {
    if (done.has(c.id)) return true;
    if (visiting.has(c.id)) return false;
    visiting.add(c.id);
    for (let j = 0; j < c.refs.length; j++) {
      const dep = c.refKinds[j] === 'correlation' ? byId.get(c.refs[j]!) : undefined;
      if (dep && !visit(dep)) {
        problems.push({ file: c.file, item: c.id, field: 'rules', message: `correlations refer to each other in a cycle through "${dep.id}"` });
        return false;
      }
    }
    visiting.delete(c.id);
    done.add(c.id);
    return true;
  };
  for (const c of out) visit(c);
  return { correlations: out, problems };
}
