/**
 * The detection engine: compiled rules applied to normalized source events, one event at a time,
 * with no state. Rules are indexed on the source's index fields (audit: resource, verb, actor type
 * and authorization decision) so an event only meets the rules whose literals admit its values.
 */
import { severityRank, type Severity } from '../severity.js';
import { signalId, type MatchedCondition, type Signal } from '../signal.js';
import { evaluation, type CompiledNode, type CompiledRule } from './compile.js';
import type { SourceEvent, SourceSchema } from './source-event.js';
import { compileGetter, parseFieldPath } from './field-path.js';
import { boundedRedactedCopy, redactText, REDACTED, type Bounds } from '../redact.js';
import { boundSignal, type BudgetStats } from '../budget.js';

const MATCH_BOUNDS: Bounds = { maxString: 200, maxArray: 8, maxKeys: 8, maxDepth: 2 };
/** Field paths that run through a secret-bearing key: their matched values are never copied. */
const SECRET_PATH = /(^|[.["'])(data|stringData|binaryData|token|password|kubeconfig)(\b|$)/i;

interface SourceIndex {
  /** Getters of the index fields, raw or derived. */
  getters: ((raw: unknown, derived: object) => unknown)[];
  /** Per index field, per rule: the literal values the rule requires, or null when it does not constrain the field. */
  constraints: Map<CompiledRule, Set<unknown> | null>[];
  /** Per index field, every literal some rule requires; other values share one cache slot. */
  literals: Set<unknown>[];
  rules: readonly CompiledRule[];
  /** Candidate rules per combination of index values: nested maps, one level per field (bounded by the literals). */
  cache: Map<unknown, unknown>;
  /** Scratch space for one event's index values (reused: detection is synchronous). */
  values: unknown[];
}

const OTHER = '\u0000other';

/** A getter for an index field: derived roots are read from the connector's derived object. */
function indexGetter(schema: SourceSchema, field: string): (raw: unknown, derived: object) => unknown {
  const segs = parseFieldPath(field);
  const first = segs[0];
  if (first && 'key' in first && schema.derived.includes(first.key)) {
    const rest = segs.length > 1 ? compileGetter(segs.slice(1)) : undefined;
    const root = first.key;
    return (_raw, derived) => {
      const v = (derived as Record<string, unknown>)[root];
      return rest ? rest(v) : v;
    };
  }
  const get = compileGetter(segs);
  return (raw) => get(raw);
}

/** Literal values a node requires the index field to have, or null when it does not constrain it. */
function indexValues(node: CompiledNode, field: string): Set<unknown> | null {
  if (node.t === 'leaf') return node.field === field && node.literals ? new Set(node.literals) : null;
  if (node.t === 'all') {
    for (const k of node.kids ?? []) {
      const v = indexValues(k, field);
      if (v) return v;
    }
    return null;
  }
  if (node.t === 'any') {
    const out = new Set<unknown>();
    for (const k of node.kids ?? []) {
      const v = indexValues(k, field);
      if (!v) return null;
      for (const x of v) out.add(x);
    }
    return out;
  }
  return null;
}

/** Options for {@link Detector}. */
export interface DetectorOptions {
  /** Signals below this severity are not emitted. */
  minSeverity?: Severity;
}

/** Applies a compiled rule set to source events. Stateless and safe to share. */
export class Detector {
  private readonly index = new Map<string, SourceIndex>();
  private readonly minRank: number;
  /** Signals whose long parts were cut to the size budget (for kubevigil_dropped_total). */
  readonly budget: BudgetStats = { cutSignals: 0 };

  constructor(
    readonly rules: readonly CompiledRule[],
    schemas: readonly SourceSchema[],
    opts: DetectorOptions = {},
  ) {
    this.minRank = severityRank(opts.minSeverity ?? 'info');
    for (const schema of schemas) {
      const mine = rules.filter((r) => r.source === schema.name && severityRank(r.severity) >= this.minRank);
      const fields = [...(schema.indexField ? [schema.indexField] : []), ...(schema.indexFields ?? [])];
      const idx: SourceIndex = { getters: [], constraints: [], literals: [], rules: mine, cache: new Map(), values: [] };
      for (const field of fields) {
        idx.getters.push(indexGetter(schema, field));
        const c = new Map<CompiledRule, Set<unknown> | null>();
        const all = new Set<unknown>();
        for (const r of mine) {
          const vs = indexValues(r.condition, field);
          c.set(r, vs);
          for (const v of vs ?? []) all.add(v);
        }
        idx.constraints.push(c);
        idx.literals.push(all);
      }
      this.index.set(schema.name, idx);
    }
  }

  /** The rules an event with these index values can match, computed once per combination. */
  private candidates(idx: SourceIndex, raw: unknown, derived: object): readonly CompiledRule[] {
    const n = idx.getters.length;
    if (n === 0) return idx.rules;
    let level: Map<unknown, unknown> = idx.cache;
    const values = idx.values;
    for (let i = 0; i < n; i++) {
      // A value no rule names behaves like every other such value: one cache entry for all of them.
      let v = idx.getters[i]!(raw, derived);
      if (!idx.literals[i]!.has(v)) v = OTHER;
      values[i] = v;
      let next = level.get(v);
      if (next === undefined) {
        next =
          i === n - 1
            ? idx.rules.filter((r) =>
                idx.constraints.every((c, j) => {
                  const vs = c.get(r);
                  return !vs || (values[j] !== OTHER && vs.has(values[j]));
                }),
              )
            : new Map();
        level.set(v, next);
      }
      if (i === n - 1) return next as CompiledRule[];
      level = next as Map<unknown, unknown>;
    }
    return idx.rules;
  }

  /** The signals this event raises; empty for the vast majority of events. */
  detect(ev: SourceEvent): Signal[] {
    if (!ev.final) return [];
    const idx = this.index.get(ev.source);
    if (!idx) return [];
    const candidates = this.candidates(idx, ev.raw, ev.derived);
    evaluation.generation++;
    let out: Signal[] | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const rule = candidates[i]!;
      if (!rule.condition.test(ev.raw, ev.derived)) continue;
      if (rule.exceptions.length && rule.exceptions.some((e) => e.node.test(ev.raw, ev.derived))) continue;
      (out ??= []).push(this.toSignal(rule, ev));
    }
    return out ?? [];
  }

  /** Why a rule matched: the leaf conditions that held. Run only for matches, so the hot path stays a plain predicate. */
  private toSignal(rule: CompiledRule, ev: SourceEvent): Signal {
    const raw: MatchedCondition[] = [];
    rule.condition.explain(ev.raw, ev.derived, raw);
    // What matched may itself be secret (a credential in a ConfigMap): never copy it out in clear.
    const matched = raw.map((m) => ({
      ...m,
      actual: SECRET_PATH.test(m.field) ? REDACTED : boundedRedactedCopy(m.actual, MATCH_BOUNDS),
    }));
    const d = ev.details();
    // Every signal within the size budget, whatever the connector left long (correlator/budget.ts).
    return boundSignal(
      {
        id: signalId(rule.id, ev.source, ev.requestKey ?? ev.key),
        source: ev.source,
        kind: rule.kind,
        severity: rule.severity,
        title: redactText(rule.output(ev.raw, ev.derived)),
        eventTime: d.time,
        observedTime: ev.observedTime,
        actor: d.actor,
        target: d.target,
        outcome: d.outcome,
        entities: d.entities,
        mitre: rule.mitre,
        rule: { id: rule.id, title: rule.title },
        matched,
        attributes: d.attributes,
        // The activity trail (info) is a record of what changed, not evidence: its attributes say enough.
        excerpt: rule.severity === 'info' ? {} : d.excerpt,
      },
      this.budget,
    );
  }
}
