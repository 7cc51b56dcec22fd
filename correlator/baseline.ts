/**
 * What is normal per identity: for each (actor, signal kind, namespace) the days it was seen. The
 * first time an identity does a kind of sensitive thing is a stronger signal than the hundredth, so
 * {@link IdentityBaseline.annotate} marks a signal `firstTime` (the root cause says so) or, once the
 * same thing has been seen on several earlier days, `habitual` with its severity one step lower.
 *
 * An attack that repeats an action for an hour never makes it habitual: only distinct earlier UTC
 * days count. Critical signals and refusals are never lowered. Bounded: past `maxEntries` the
 * entries seen least recently are forgotten. Persisted by the correlator role through a
 * {@link BaselineStore} (the SQLite store embedded, a Redis hash distributed).
 */
import { SEVERITIES, severityRank, type Severity } from './severity.js';
import { isSharedList, type Signal } from './signal.js';

/** One (actor, kind, namespace) as the baseline remembers it. */
export interface BaselineEntry {
  /** First sighting, ms since epoch. */
  first: number;
  /** Latest sighting. */
  last: number;
  /** Sightings counted (capped). */
  count: number;
  /** Distinct UTC days seen, oldest first; at most {@link MAX_DAYS}. */
  days: number[];
}

/** Where the baseline lives between restarts. */
export interface BaselineStore {
  load(): Promise<[string, BaselineEntry][]>;
  /** Writes changed entries; null deletes. */
  save(changes: Map<string, BaselineEntry | null>): Promise<void>;
}

export interface BaselinePolicy {
  /** An action seen on this many earlier days is habitual (default 3). */
  habitualDays: number;
  /** Entries kept at most (default 50,000, about 8 MB). */
  maxEntries: number;
}

export const DEFAULT_BASELINE_POLICY: BaselinePolicy = { habitualDays: 3, maxEntries: 50_000 };

const DAY = 86_400_000;
const MAX_DAYS = 8;
const MAX_COUNT = 1_000_000;

/** The baseline key of a signal, or undefined for signals the baseline does not judge. */
export function baselineKey(s: Pick<Signal, 'actor' | 'kind' | 'target' | 'outcome' | 'severity'>): string | undefined {
  // Only what the identity actually did: refusals say what it could not do, and info signals are a trail.
  if (s.outcome !== 'allowed' || s.severity === 'info') return undefined;
  return `${s.actor.key}|${s.kind}|${s.target.namespace ?? '*'}`;
}

/** A {@link baselineKey} made once for the signals that share their members (see {@link IdentityBaseline.keyOf}), with what it was made of. */
interface SharedKey {
  actor: Signal['actor'];
  kind: string;
  target: Signal['target'];
  outcome: Signal['outcome'];
  severity: Severity;
  key: string | undefined;
}

/** An entry as the baseline holds it: with its place in the least-recently-seen order (see {@link IdentityBaseline.record}). */
interface Held {
  entry: BaselineEntry;
  seq: number;
}

/** Per-identity memory of which sensitive actions are routine. */
export class IdentityBaseline {
  /** Least recently moved first (see {@link record}): the first key is the next to forget. */
  private readonly entries = new Map<string, Held>();
  private seq = 0;
  private readonly changed = new Set<string>();
  /** Keys of signals read with shared members (correlator/signal.ts), by their shared entity list. */
  private readonly sharedKeys = new WeakMap<readonly string[], SharedKey>();
  private readonly policy: BaselinePolicy;
  /** Entries forgotten for the bound (for metrics). */
  evicted = 0;

  constructor(policy: Partial<BaselinePolicy> = {}) {
    this.policy = { ...DEFAULT_BASELINE_POLICY, ...policy };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Loads stored entries (the most recently seen win when they exceed the bound). */
  restore(entries: Iterable<[string, BaselineEntry]>): void {
    const sorted = [...entries].filter(([, e]) => isEntry(e)).sort((a, b) => a[1].last - b[1].last);
    for (const [k, entry] of sorted.slice(-this.policy.maxEntries)) {
      this.entries.delete(k);
      this.entries.set(k, { entry, seq: ++this.seq });
    }
    this.trim();
  }

  /** The entry for a key, if any. */
  get(key: string): BaselineEntry | undefined {
    return this.entries.get(key)?.entry;
  }

  /**
   * Judges a signal against what its identity did before, records it, and returns it annotated:
   * `attributes.firstTime` the first time, `attributes.habitual` (and one severity step lower) for a
   * routine action. Returns the same object when there is nothing to say.
   */
  annotate(s: Signal): Signal {
    const key = this.keyOf(s);
    if (!key) return s;
    const t = s.eventTime;
    const day = Math.floor(t / DAY);
    const held = this.entries.get(key);
    const prev = held?.entry;
    let out = s;
    if (!prev) out = { ...s, attributes: { ...s.attributes, firstTime: 'true' } };
    else {
      let earlierDays = 0;
      for (const d of prev.days) if (d < day) earlierDays++;
      if (earlierDays >= this.policy.habitualDays && severityRank(s.severity) < severityRank('critical')) {
        const since = new Date(prev.first).toISOString().slice(0, 10);
        out = {
          ...s,
          severity: lower(s.severity),
          attributes: { ...s.attributes, habitual: `seen on ${earlierDays} earlier days since ${since}` },
        };
      }
    }
    this.record(key, held, t, day);
    return out;
  }

  /**
   * {@link baselineKey} of `s`. Signals read from the bus with members they share with earlier ones
   * (services/bus/signal-reader.ts) share those members' objects and strings: their key is made
   * once per shared part, not once per signal (a drain of a signals topic made ≈ 90k such strings,
   * and hashed each one for the lookup). The memo is checked against the fields it was made of.
   */
  private keyOf(s: Signal): string | undefined {
    const list = s.entities;
    if (!isSharedList(list)) return baselineKey(s);
    const m = this.sharedKeys.get(list);
    if (m && m.actor === s.actor && m.kind === s.kind && m.target === s.target && m.outcome === s.outcome && m.severity === s.severity) return m.key;
    const key = baselineKey(s);
    this.sharedKeys.set(list, { actor: s.actor, kind: s.kind, target: s.target, outcome: s.outcome, severity: s.severity, key });
    return key;
  }

  /** Entries changed since the last call, to save. */
  takeChanges(): Map<string, BaselineEntry | null> {
    const out = new Map<string, BaselineEntry | null>();
    for (const k of this.changed) out.set(k, this.entries.get(k)?.entry ?? null);
    this.changed.clear();
    return out;
  }

  /**
   * Counts a sighting into the key's entry, in place (stores serialize what changed when they save).
   * The order is least recently seen first, approximately: a sighting moves its entry to the end
   * only when the entry is in the older half of the bound, as the correlation engine does for its
   * groups (a copy of the entry and a Map delete and set on every signal were 0.2–0.7 µs of the
   * ≈ 10 µs a signal costs the correlator, in a drain without Kafka).
   */
  private record(key: string, held: Held | undefined, t: number, day: number): void {
    if (!held) {
      held = { entry: { first: t, last: t, count: 0, days: [] }, seq: ++this.seq };
      this.entries.set(key, held);
    } else if (this.seq - held.seq > this.policy.maxEntries >> 1) {
      this.entries.delete(key);
      this.entries.set(key, held);
      held.seq = ++this.seq;
    }
    const e = held.entry;
    e.first = Math.min(e.first, t);
    e.last = Math.max(e.last, t);
    e.count = Math.min(MAX_COUNT, e.count + 1);
    if (!e.days.includes(day)) {
      e.days.push(day);
      e.days.sort((a, b) => a - b);
      if (e.days.length > MAX_DAYS) e.days.splice(0, e.days.length - MAX_DAYS);
    }
    this.changed.add(key);
    this.trim();
  }

  private trim(): void {
    while (this.entries.size > this.policy.maxEntries) {
      const oldest = this.entries.keys().next().value!;
      this.entries.delete(oldest);
      this.changed.add(oldest);
      this.evicted++;
    }
  }
}

function lower(s: Severity): Severity {
  return SEVERITIES[Math.max(1, severityRank(s) - 1)]!;
}

function isEntry(e: unknown): e is BaselineEntry {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  return typeof x.first === 'number' && typeof x.last === 'number' && typeof x.count === 'number' && Array.isArray(x.days);
}

/** A baseline store over a key/value state (the incident store's `getState`/`setState`): one JSON document. */
export class StateBaselineStore implements BaselineStore {
  private all = new Map<string, BaselineEntry>();

  constructor(
    private readonly state: { getState(key: string): Promise<string | undefined>; setState(key: string, value: string): Promise<void> },
    private readonly key = 'correlator.baseline',
  ) {}

  async load(): Promise<[string, BaselineEntry][]> {
    const text = await this.state.getState(this.key);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = {};
    }
    this.all = new Map(
      Object.entries(typeof parsed === 'object' && parsed !== null ? parsed : {}).filter((kv): kv is [string, BaselineEntry] => isEntry(kv[1])),
    );
    return [...this.all];
  }

  async save(changes: Map<string, BaselineEntry | null>): Promise<void> {
    if (!changes.size) return;
    for (const [k, e] of changes) {
      if (e) this.all.set(k, e);
      else this.all.delete(k);
    }
    await this.state.setState(this.key, JSON.stringify(Object.fromEntries(this.all)));
  }
}
