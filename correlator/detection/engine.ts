/**
 * The detection engine: compiled rules applied to normalized source events, one event at a time,
 * with no state. Rules are indexed on the source's index field (audit: `objectRef.resource`) so an
 * event only meets the rules that could match it.
 */
import { severityRank, type Severity } from '../severity.js';
import { signalId, type MatchedCondition, type Signal } from '../signal.js';
import { evaluation, type CompiledNode, type CompiledRule } from './compile.js';
import type { SourceEvent, SourceSchema } from './source-event.js';
import { compileGetter, parseFieldPath } from './field-path.js';
import { boundedRedactedCopy, redactText, REDACTED, type Bounds } from '../redact.js';

const MATCH_BOUNDS: Bounds = { maxString: 200, maxArray: 8, maxKeys: 8, maxDepth: 2 };
/** Field paths that run through a secret-bearing key: their matched values are never copied. */
const SECRET_PATH = /(^|[.["'])(data|stringData|binaryData|token|password|kubeconfig)(\b|$)/i;

interface SourceIndex {
  get?: (raw: unknown) => unknown;
  /** Rules per index value, each list already merged with the rules that can match any value. */
  byValue: Map<unknown, CompiledRule[]>;
  /** Rules that do not constrain the index field. */
  anyValue: CompiledRule[];
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

  constructor(
    readonly rules: readonly CompiledRule[],
    schemas: readonly SourceSchema[],
    opts: DetectorOptions = {},
  ) {
    this.minRank = severityRank(opts.minSeverity ?? 'info');
    for (const schema of schemas) {
      const mine = rules.filter((r) => r.source === schema.name && severityRank(r.severity) >= this.minRank);
      const idx: SourceIndex = { byValue: new Map(), anyValue: [] };
      if (schema.indexField) {
        idx.get = compileGetter(parseFieldPath(schema.indexField));
        const constrained = new Map<CompiledRule, Set<unknown>>();
        for (const r of mine) {
          const vs = indexValues(r.condition, schema.indexField);
          if (vs) constrained.set(r, vs);
          else idx.anyValue.push(r);
        }
        const allValues = new Set<unknown>();
        for (const vs of constrained.values()) for (const v of vs) allValues.add(v);
        for (const v of allValues)
          idx.byValue.set(
            v,
            mine.filter((r) => !constrained.has(r) || constrained.get(r)!.has(v)),
          );
      } else idx.anyValue.push(...mine);
      this.index.set(schema.name, idx);
    }
  }

  /** The signals this event raises; empty for the vast majority of events. */
  detect(ev: SourceEvent): Signal[] {
    if (!ev.final) return [];
    const idx = this.index.get(ev.source);
    if (!idx) return [];
    const candidates = idx.get ? (idx.byValue.get(idx.get(ev.raw)) ?? idx.anyValue) : idx.anyValue;
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
    return {
      id: signalId(rule.id, ev.source, ev.key),
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
      excerpt: d.excerpt,
    };
  }
}
