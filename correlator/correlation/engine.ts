/**
 * The correlation engine: sliding event-time windows per (correlation, group), fed one signal at a
 * time. State is bounded per group (`maxPerGroup`) and in total (`maxGroups`, least recently used
 * first out); late signals are accepted within `allowedLatenessMs` (several apiservers send
 * concurrent batches) and counted otherwise. Everything evicted or dropped is counted.
 */
import type { Signal } from '../signal.js';
import { holds, type CompiledCorrelation } from './rules.js';

/** A correlation that held, with the signals of the window that satisfied it. */
export interface Firing {
  correlation: CompiledCorrelation;
  /** The group values joined (actor key by default). */
  group: string;
  /** Unique signals of the window, in event-time order. */
  signals: Signal[];
  /** Event time of the signal that completed the correlation. */
  time: number;
  /** The signal that completed it. */
  trigger: Signal;
}

/** Limits of {@link CorrelationEngine}. */
export interface CorrelationLimits {
  maxGroups: number;
  maxPerGroup: number;
  allowedLatenessMs: number;
}

/** Defaults that keep the engine to a few hundred MB at worst. */
export const DEFAULT_CORRELATION_LIMITS: CorrelationLimits = { maxGroups: 200_000, maxPerGroup: 256, allowedLatenessMs: 120_000 };

/** Counters of what the bounds cost. */
export interface CorrelationStats {
  evictedGroups: number;
  evictedEntries: number;
  lateDropped: number;
  ungrouped: number;
  firings: number;
}

interface Entry {
  t: number;
  ref: number;
  v: unknown;
  signals: Signal[];
}

interface Group {
  entries: Entry[];
  maxT: number;
  lastFire: number;
}

interface Target {
  c: CompiledCorrelation;
  ref: number;
}

/** Runs compiled correlations over a stream of signals. Pure: no I/O, no clock (event time only). */
export class CorrelationEngine {
  private readonly byKind = new Map<string, Target[]>();
  private readonly byRule = new Map<string, Target[]>();
  private readonly byCorrelation = new Map<string, Target[]>();
  private readonly groups = new Map<string, Group>();
  readonly stats: CorrelationStats = { evictedGroups: 0, evictedEntries: 0, lateDropped: 0, ungrouped: 0, firings: 0 };
  private readonly limits: CorrelationLimits;

  constructor(
    readonly correlations: readonly CompiledCorrelation[],
    limits: Partial<CorrelationLimits> = {},
  ) {
    this.limits = { ...DEFAULT_CORRELATION_LIMITS, ...limits };
    for (const c of correlations)
      c.refs.forEach((name, ref) => {
        const index = c.refKinds[ref] === 'kind' ? this.byKind : c.refKinds[ref] === 'rule' ? this.byRule : this.byCorrelation;
        const list = index.get(name) ?? [];
        list.push({ c, ref });
        index.set(name, list);
      });
  }

  /** Number of (correlation, group) windows held. */
  get size(): number {
    return this.groups.size;
  }

  /** Feeds one signal; returns every correlation it completed (including correlations of correlations). */
  process(s: Signal): Firing[] {
    let out: Firing[] | undefined;
    const a = this.byKind.get(s.kind);
    const b = this.byRule.get(s.rule.id);
    if (a) for (const t of a) out = this.add(t, s, s.eventTime, [s], out);
    if (b) for (const t of b) out = this.add(t, s, s.eventTime, [s], out);
    return out ?? [];
  }

  private add(target: Target, subject: Signal, t: number, signals: Signal[], out: Firing[] | undefined): Firing[] | undefined {
    const { c, ref } = target;
    if (c.where && !c.where(subject)) return out;
    let key = c.id;
    for (const g of c.groupBy) {
      const v = g.get(ref, subject);
      if (v === undefined || v === null || v === '') {
        this.stats.ungrouped++;
        return out;
      }
      key += `\u0000${String(v)}`;
    }
    let st = this.groups.get(key);
    if (st) {
      // Least recently used first out: re-inserting moves the key to the end of the Map's order.
      this.groups.delete(key);
      this.groups.set(key, st);
    } else {
      st = { entries: [], maxT: -Infinity, lastFire: -Infinity };
      this.groups.set(key, st);
      if (this.groups.size > this.limits.maxGroups) {
        this.groups.delete(this.groups.keys().next().value as string);
        this.stats.evictedGroups++;
      }
    }
    const horizon = c.timespanMs + this.limits.allowedLatenessMs;
    if (t < st.maxT - horizon) {
      this.stats.lateDropped++;
      return out;
    }
    const entry: Entry = { t, ref, v: c.field ? c.field(subject) : undefined, signals };
    const es = st.entries;
    let pos = es.length;
    while (pos > 0 && es[pos - 1]!.t > t) pos--;
    if (pos === es.length) es.push(entry);
    else es.splice(pos, 0, entry);
    if (t > st.maxT) st.maxT = t;
    let drop = 0;
    while (drop < es.length && es[drop]!.t < st.maxT - horizon) drop++;
    if (es.length - drop > this.limits.maxPerGroup) {
      this.stats.evictedEntries += es.length - drop - this.limits.maxPerGroup;
      drop = es.length - this.limits.maxPerGroup;
    }
    if (drop > 0) es.splice(0, drop);

    // Once fired, a group stays quiet for one timespan: later signals join the incident directly.
    if (t - st.lastFire < c.timespanMs) return out;
    const window = this.satisfyingWindow(c, es, entry);
    if (!window) return out;
    st.lastFire = t;
    this.stats.firings++;
    const seen = new Set<string>();
    const sigs: Signal[] = [];
    for (const e of window)
      for (const x of e.signals)
        if (!seen.has(x.id)) {
          seen.add(x.id);
          sigs.push(x);
        }
    const firing: Firing = { correlation: c, group: key.slice(c.id.length + 1), signals: sigs, time: t, trigger: subject };
    (out ??= []).push(firing);
    const deps = this.byCorrelation.get(c.id);
    if (deps) for (const d of deps) out = this.add(d, subject, t, sigs, out);
    return out;
  }

  /** A window of at most one timespan that contains `x` and satisfies the condition, if any. */
  private satisfyingWindow(c: CompiledCorrelation, es: Entry[], x: Entry): Entry[] | undefined {
    const span = c.timespanMs;
    let lo = 0;
    while (lo < es.length && es[lo]!.t < x.t - span) lo++;
    if (es[es.length - 1] === x) {
      // In order (the common case): the window ending at x holds every candidate.
      const w = es.slice(lo);
      return this.satisfied(c, w) ? w : undefined;
    }
    for (let i = lo; i < es.length && es[i]!.t <= x.t; i++) {
      let k = i;
      while (k < es.length && es[k]!.t <= es[i]!.t + span) k++;
      const w = es.slice(i, k);
      if (w.includes(x) && this.satisfied(c, w)) return w;
    }
    return undefined;
  }

  private satisfied(c: CompiledCorrelation, w: Entry[]): boolean {
    switch (c.type) {
      case 'event_count':
        return holds(c.condition, w.length);
      case 'value_count': {
        const values = new Set<string>();
        for (const e of w) if (e.v !== undefined && e.v !== null) values.add(typeof e.v === 'string' ? e.v : JSON.stringify(e.v));
        return holds(c.condition, values.size);
      }
      case 'temporal': {
        const refs = new Set<number>();
        for (const e of w) refs.add(e.ref);
        return holds(c.condition, refs.size);
      }
      case 'temporal_ordered': {
        let need = 0;
        for (const e of w) if (e.ref === need && ++need === c.refs.length) return true;
        return false;
      }
    }
  }
}
