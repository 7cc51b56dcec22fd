/**
 * The correlation engine: sliding event-time windows per (correlation, group), fed one signal at a
 * time. State is bounded per group (`maxPerGroup`) and in total (`maxGroups`, least recently used
 * first out); late signals are accepted within `allowedLatenessMs` (several apiservers send
 * concurrent batches) and counted otherwise. Everything evicted or dropped is counted.
 */
import type { Signal } from '../signal.js';
import { encodeId, PackedSignal } from './packed.js';
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
  /**
   * Window entries held over all groups: what the engine's memory follows (an entry holds its
   * signal; a few kilobytes with its evidence). Past it, the least recently fed groups go.
   */
  maxEntries: number;
  allowedLatenessMs: number;
  /**
   * A value_count window holding more entries than this within one timespan keeps its distinct
   * values counted as entries come and go, instead of recounting them on every arrival (it stops
   * below half of it). Infinity: always recount.
   */
  distinctFrom: number;
}

/** Defaults that keep the engine to a few hundred MB at worst. */
export const DEFAULT_CORRELATION_LIMITS: CorrelationLimits = {
  maxGroups: 200_000,
  maxPerGroup: 256,
  maxEntries: 100_000,
  allowedLatenessMs: 120_000,
  distinctFrom: 16,
};

/** Counters of what the bounds cost. */
export interface CorrelationStats {
  evictedGroups: number;
  evictedEntries: number;
  lateDropped: number;
  ungrouped: number;
  firings: number;
}

/** A signal as windows keep it: packed when the engine packs (see {@link CorrelationEngine.packSignals}), else as given. */
export type Kept = Signal | PackedSignal;

interface WindowEntry {
  t: number;
  ref: number;
  v: unknown;
  /** One signal, or for a correlation's firing the signals of its window. */
  signals: Kept | Kept[];
}

/**
 * A window entry: a packed signal is one by itself (at its event time, reference 0, no value),
 * which is what most entries are when the engine packs; the others take an object.
 */
type Entry = WindowEntry | PackedSignal;

/** The key a kept signal is told apart by: its id, encoded as packed signals keep it. */
const keyOf = (s: Kept): string => (s instanceof PackedSignal ? s.key : encodeId(String(s.id)));

interface Group {
  entries: Entry[];
  maxT: number;
  /** When it last fired; undefined for never (no number: V8 boxes a number field's value, 16 bytes for every window). */
  lastFire: number | undefined;
  /** value_count windows of many entries: their distinct values, kept up to date (see {@link Distinct}). */
  distinct: Distinct | undefined;
  /**
   * The one value every entry with a value holds (value_count), or the one reference every entry
   * has (temporal, temporal_ordered); undefined while no entry has one, {@link MIXED} once two
   * differ (see {@link noteValue}). While there is one, the window counts at most one distinct
   * value or reference, and a condition that needs two cannot hold (see {@link needsTwo}):
   * nothing to read.
   */
  only: unknown;
}

/** {@link Group.only} of a window whose entries may hold different values. */
const MIXED: unique symbol = Symbol('mixed');

/** Updates {@link Group.only} for an entry of value `v` entering the window (a bound: leaving entries do not change it). */
function noteValue(st: Group, v: unknown): void {
  if (v === undefined || v === null || st.only === MIXED || st.only === v) return;
  // Strings compare by content, references are numbers; other values (objects from JSON) are not compared at all.
  st.only = st.only === undefined && (typeof v === 'string' || typeof v === 'number') ? v : MIXED;
}

/** Whether a window of at most one distinct value (value_count) or reference (temporal, temporal_ordered) can never satisfy `c`. */
function needsTwo(c: CompiledCorrelation): boolean {
  switch (c.type) {
    case 'event_count':
      return false;
    case 'temporal_ordered':
      return c.refs.length > 1;
    default:
      return !holds(c.condition, 0) && !holds(c.condition, 1);
  }
}

/**
 * The distinct values of a value_count window's entries within one timespan of its newest event
 * (`entries[lo..]`), reference-counted and updated as entries come and go, so that an arrival does
 * not recount the window. Only windows of more than `distinctFrom` such entries keep one
 * ({@link CorrelationLimits}): a few entries are cheaper to recount than to track, and take no memory for it.
 */
interface Distinct {
  lo: number;
  counts: Map<string, number>;
}

/** The key a value counts under, undefined for no value. */
function valueKey(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);
}

function countIn(d: Distinct, v: unknown): void {
  const k = valueKey(v);
  if (k !== undefined) d.counts.set(k, (d.counts.get(k) ?? 0) + 1);
}

function countOut(d: Distinct, v: unknown): void {
  const k = valueKey(v);
  if (k === undefined) return;
  const n = d.counts.get(k)! - 1;
  if (n > 0) d.counts.set(k, n);
  else d.counts.delete(k);
}

/** Arrays shorter than this are copied at their exact length to grow (see {@link CorrelationEngine.add}). */
const SHORT = 8;

/** `es` and `e` in a new array of their exact length (push() from empty takes room for 17). */
export function appended<T>(es: readonly T[], e: T): T[] {
  switch (es.length) {
    case 0:
      return [e];
    case 1:
      return [es[0]!, e];
    case 2:
      return [es[0]!, es[1]!, e];
    case 3:
      return [es[0]!, es[1]!, es[2]!, e];
    default:
      // concat() allocates the exact length (slice() then push() would grow it by half and 16).
      return es.concat([e]);
  }
}

interface Target {
  c: CompiledCorrelation;
  /** Position of the correlation in the engine, indexing a group slot's per-correlation windows. */
  ci: number;
  ref: number;
  /** Correlations grouped by the same fields share a spec id (0 for the default: the actor). */
  spec: number;
}

/**
 * The windows of one group value: its place in the LRU order (at {@link SEQ}), the signal last
 * packed into it (at {@link LAST}: the next one of the group most likely shares its shape), then
 * one place per correlation, by position. One array rather than an object holding an array of
 * windows: every signal reads a group's windows, and they are one memory load nearer so (6–10% of
 * the correlation bench). The sequence number comes first: it is read on every arrival, and at the
 * end it sat on another cache line than the header (that measured 15% slower than the object).
 */
type Slot = (Group | PackedSignal | number | undefined)[];
const SEQ = 0;
const LAST = 1;
const FIRST_WINDOW = 2;

/** A slot of `width` windows, none yet, at `seq` in the LRU order; allocated at its length (filled from empty, an array takes more). */
function newSlot(width: number, seq: number): Slot {
  const slot: Slot = new Array<Group | PackedSignal | number | undefined>(FIRST_WINDOW + width);
  slot[SEQ] = seq;
  return slot;
}
const windowAt = (slot: Slot, ci: number): Group | undefined => slot[FIRST_WINDOW + ci] as Group | undefined;
const setWindow = (slot: Slot, ci: number, w: Group): Group => (slot[FIRST_WINDOW + ci] = w);
const seqOf = (slot: Slot): number => slot[SEQ] as number;
const lastOf = (slot: Slot): PackedSignal | undefined => slot[LAST] as PackedSignal | undefined;

const SCRATCH = new Set<string>();
/** Most distinct counted values an engine shares, and the longest (see {@link CorrelationEngine.shared}): at most a few MB. */
const SHARED_VALUES = 16_384;
const SHARED_MAX_LENGTH = 256;
const NAMES: Record<string, 0> = Object.create(null) as Record<string, 0>;
/**
 * `s` as a string of its own: V8 keeps a property name as one flat string (a copy when `s` is a
 * slice of a longer string or a concatenation), so passing it through an object's keys copies it.
 */
function ownCopy(s: string): string {
  NAMES[s] = 0;
  let own = s;
  for (const k in NAMES) own = k;
  delete NAMES[s];
  return own;
}

function entriesOf(slot: Slot, width: number): number {
  let n = 0;
  for (let ci = 0; ci < width; ci++) n += windowAt(slot, ci)?.entries.length ?? 0;
  return n;
}
/** A number as JSON: -Infinity (a window that never fired) is null, read back as never. */
const num = (x: number): string => (Number.isFinite(x) ? String(x) : 'null');
const SCRATCH_FEW: string[] = [];
/** The references the last temporal count found, as bits (see {@link CorrelationEngine.relearnOnly}). */
let SCRATCH_REFS = 0;

/**
 * A window entry as a checkpoint writes it: `[t, ids]`, `[t, ids, ref]` when its reference is not
 * the first, `[t, ids, ref, v]` with a value (half of the object form's text, which checkpoints
 * written before used and which is still read).
 */
export type EntryState =
  | { t: number; ref: number; v?: unknown; ids: string | string[] }
  | [t: number, ids: string | string[]]
  | [t: number, ids: string | string[], ref: number]
  | [t: number, ids: string | string[], ref: number, v: unknown];

/**
 * A group's windows in a form that survives JSON: per correlation id, its entries and firing state.
 * Every signal is written once in `signals`, under a name the entries refer to (a short one of the
 * group's own; checkpoints written before used its id): one signal usually sits in the windows of
 * several correlations.
 */
export interface SlotState {
  signals: Record<string, Signal | PackedSignal>;
  windows: Record<string, { entries: EntryState[]; maxT: number | null; lastFire: number | null }>;
}

/** Runs compiled correlations over a stream of signals. Pure: no I/O, no clock (event time only). */
export class CorrelationEngine {
  private readonly byKind = new Map<string, Target[]>();
  private readonly byRule = new Map<string, Target[]>();
  private readonly byCorrelation = new Map<string, Target[]>();
  /** The grouping spec of each correlation, by position (see {@link Target.spec}). */
  private specOf: number[] = [];
  private current: readonly CompiledCorrelation[] = [];
  /** How many correlations, and so windows per slot (see {@link Slot}). */
  private width = 0;
  /**
   * Group value → windows. Keyed by the value itself for the default grouping (the actor key, a
   * string the signal already holds, whose hash V8 has cached), so one lookup serves every
   * correlation of a signal; other groupings prefix their spec id.
   */
  private readonly groups = new Map<string, Slot>();
  /**
   * The groups in eviction order, one iterator kept across evictions. Evicting takes the Map's first
   * key, and the Map keeps a deleted key's place until it is rebuilt: a fresh `keys()` would walk
   * past every group evicted so far to find the first live one (12% of the engine's time once it
   * was full, in the correlation bench). Every key it yields is deleted or moved to the end, so it
   * always stands at the first live key.
   */
  private evictionOrder: MapIterator<string> | undefined;
  readonly stats: CorrelationStats = { evictedGroups: 0, evictedEntries: 0, lateDropped: 0, ungrouped: 0, firings: 0 };
  /** See {@link newestEventTime}. */
  private newest = -Infinity;
  private readonly limits: CorrelationLimits;
  private seq = 0;
  /** Window entries held over all groups (see {@link CorrelationLimits.maxEntries}). */
  private entryCount = 0;
  /** Group keys changed since the last {@link takeDirty}, when tracking is on (distributed mode). */
  private dirty?: Set<string>;
  /** The signal being processed, its id encoded if the caller had it, and its packed form once a window kept it (see {@link packedOf}). */
  private subject: Signal | undefined;
  private subjectKey: string | undefined;
  private subjectPacked: PackedSignal | undefined;
  /** Whether windows keep signals packed (see {@link packSignals}). */
  private packing = false;
  /**
   * The group slot the subject was last filed under, and its key: a signal usually feeds several
   * correlations of one grouping, and looking its group up again for each was up to a sixth of the
   * engine's time (a cold hash-table probe and a comparison with the stored key). Forgotten with
   * every signal. It never points at an evicted group: a group is evicted only while another one is
   * being filed (which then takes its place here), and expiry and reloads run between signals.
   */
  private slotKey: string | undefined;
  private slotOf: Slot | undefined;
  /** Counted values, one string each (see {@link shared}). */
  private readonly values = new Map<string, string>();

  constructor(correlations: readonly CompiledCorrelation[], limits: Partial<CorrelationLimits> = {}) {
    this.limits = { ...DEFAULT_CORRELATION_LIMITS, ...limits };
    this.indexCorrelations(correlations);
  }

  /** The correlations the engine runs. */
  get correlations(): readonly CompiledCorrelation[] {
    return this.current;
  }

  private indexCorrelations(correlations: readonly CompiledCorrelation[]): void {
    this.current = correlations;
    this.width = correlations.length;
    this.byKind.clear();
    this.byRule.clear();
    this.byCorrelation.clear();
    this.specOf = [];
    const specs = new Map<string, number>([['actor.key', 0]]);
    correlations.forEach((c, ci) => {
      const specKey = c.groupBy.map((g) => g.name).join('\u0000') + (c.groupBy.some((g) => g.aliased) ? `\u0000${c.id}` : '');
      if (!specs.has(specKey)) specs.set(specKey, specs.size);
      const spec = specs.get(specKey)!;
      this.specOf[ci] = spec;
      c.refs.forEach((name, ref) => {
        const index = c.refKinds[ref] === 'kind' ? this.byKind : c.refKinds[ref] === 'rule' ? this.byRule : this.byCorrelation;
        const list = index.get(name) ?? [];
        list.push({ c, ci, ref, spec });
        index.set(name, list);
      });
    });
  }

  /**
   * Swaps in a new set of correlations (a rule reload), in place and synchronously, so no signal
   * sees half of each. Windows of a correlation that is still there (same id, same references and
   * grouping: entries index its references) are kept, under the group key its new position gives;
   * the windows of the others are dropped. Returns how many windows were kept and dropped.
   */
  replaceCorrelations(correlations: readonly CompiledCorrelation[]): { kept: number; dropped: number } {
    const old = this.current;
    const oldSpec = this.specOf;
    this.indexCorrelations(correlations);
    const shape = (c: CompiledCorrelation) => JSON.stringify([c.refs, c.refKinds, c.groupBy.map((g) => [g.name, g.aliased])]);
    const byId = new Map(correlations.map((c, ci) => [c.id, ci]));
    const moved = new Map<string, Slot>();
    let kept = 0;
    let dropped = 0;
    this.entryCount = 0;
    for (const [key, slot] of this.groups) {
      this.dirty?.add(key);
      for (let oci = 0; oci < old.length; oci++) {
        const w = windowAt(slot, oci);
        if (!w) continue;
        const c = old[oci]!;
        const nci = byId.get(c.id);
        if (nci === undefined || shape(correlations[nci]!) !== shape(c)) {
          dropped++;
          continue;
        }
        // The key carries the spec id of the grouping (none for the actor): strip the old one, add the new one.
        const value = oldSpec[oci] === 0 ? key : key.slice(String(oldSpec[oci]).length + 1);
        const spec = this.specOf[nci]!;
        const nkey = spec === 0 ? value : `${spec}\u0000${value}`;
        let target = moved.get(nkey);
        if (!target) moved.set(nkey, (target = newSlot(this.width, seqOf(slot))));
        // The kept correlation may count another field or over another timespan: recount from scratch.
        w.distinct = undefined;
        w.only = MIXED;
        setWindow(target, nci, w);
        target[SEQ] = Math.max(seqOf(target), seqOf(slot));
        this.entryCount += w.entries.length;
        kept++;
      }
    }
    this.groups.clear();
    this.evictionOrder = undefined;
    // Least recently used first, as before.
    for (const [k, slot] of [...moved].sort((a, b) => seqOf(a[1]) - seqOf(b[1]))) {
      this.groups.set(k, slot);
      this.dirty?.add(k);
    }
    return { kept, dropped };
  }

  /**
   * From now on, windows keep signals packed (correlator/correlation/packed.ts): a fifth of the
   * memory, for a pack per signal kept. The incident manager turns it on (it keeps the same packed
   * signals in its prologues); an engine alone keeps the signals it is given.
   */
  packSignals(): void {
    this.packing = true;
  }

  /** Starts recording which groups change, so only those are checkpointed. */
  trackChanges(): void {
    this.dirty ??= new Set();
  }

  /** The groups changed since the last call (see {@link exportSlot}); a group gone exports nothing. */
  takeDirty(): string[] {
    const out = [...(this.dirty ?? [])];
    this.dirty?.clear();
    return out;
  }

  /** Marks a group changed, so that the next checkpoint writes it again (its stored form aged). */
  touch(key: string): void {
    // A group that is gone is written as gone.
    this.dirty?.add(key);
  }

  /**
   * One group's state as the JSON text of a {@link SlotState}, for a checkpoint. Written directly:
   * a noisy group holds hundreds of entries, and objects built only to be stringified cost as much
   * again as the text. `signal` writes a kept signal, given its id as JSON (each id is decoded and
   * written once: a checkpoint of a drain writes tens of thousands of them; entries refer to the
   * signal by a short name, see {@link SlotState}).
   */
  exportSlot(key: string, signal: (s: Kept, idJson: string) => string): string | undefined {
    const slot = this.groups.get(key);
    if (!slot) return undefined;
    // By object: a signal is kept once per group (packed once, shared by its windows and entries),
    // and written once, under a short name of its own that the entries refer to (its id, 32
    // characters, is in what `signal` writes; loading takes the names as they come).
    const signals = new Map<Kept, string>();
    const ref = (s: Kept) => {
      let name = signals.get(s);
      if (name === undefined) signals.set(s, (name = `"${signals.size.toString(36)}"`));
      return name;
    };
    const windows: string[] = [];
    for (let ci = 0; ci < this.width; ci++) {
      const w = windowAt(slot, ci);
      if (!w || !w.entries.length) continue;
      const entries = w.entries.map((e) => {
        const ids = Array.isArray(e.signals) ? `[${e.signals.map(ref).join(',')}]` : ref(e.signals);
        return e.v !== undefined
          ? `[${num(e.t)},${ids},${e.ref},${JSON.stringify(e.v)}]`
          : e.ref !== 0
            ? `[${num(e.t)},${ids},${e.ref}]`
            : `[${num(e.t)},${ids}]`;
      });
      windows.push(
        `${JSON.stringify(this.correlations[ci]!.id)}:{"entries":[${entries.join(',')}],"maxT":${num(w.maxT)},"lastFire":${w.lastFire === undefined ? 'null' : num(w.lastFire)}}`,
      );
    }
    if (!windows.length) return undefined;
    const sigs: string[] = [];
    for (const [s, name] of signals) sigs.push(`${name}:${signal(s, JSON.stringify(String(s.id)))}`);
    return `{"signals":{${sigs.join(',')}},"windows":{${windows.join(',')}}}`;
  }

  /** Restores one group from a checkpoint; windows of correlations that no longer exist are dropped. */
  importSlot(key: string, state: SlotState): void {
    const width = this.width;
    const slot = newSlot(width, ++this.seq);
    const kept = new Map<string, Kept>();
    const sig = (id: string): Kept[] => {
      let p = kept.get(id);
      const s = state.signals[id];
      if (!p && s) kept.set(id, (p = s instanceof PackedSignal || !this.packing ? s : (slot[LAST] = PackedSignal.pack(s, undefined, lastOf(slot)))));
      return p ? [p] : [];
    };
    for (const [id, w] of Object.entries(state.windows)) {
      const ci = this.correlations.findIndex((c) => c.id === id);
      if (ci < 0) continue;
      const c = this.correlations[ci]!;
      const st = setWindow(slot, ci, {
        entries: w.entries.flatMap((written): Entry[] => {
          const e = Array.isArray(written) ? { t: written[0], ids: written[1], ref: written[2] ?? 0, v: written[3] } : written;
          const signals = Array.isArray(e.ids) ? e.ids.flatMap(sig) : sig(e.ids);
          if (!signals.length) return [];
          if (Array.isArray(e.ids)) return [{ t: e.t, ref: e.ref, v: e.v, signals }];
          const p = signals[0]!;
          return [p instanceof PackedSignal && e.ref === 0 && e.v === undefined && e.t === p.t ? p : { t: e.t, ref: e.ref, v: e.v, signals: p }];
        }),
        maxT: w.maxT ?? -Infinity,
        lastFire: w.lastFire ?? undefined,
        distinct: undefined,
        only: undefined,
      });
      if (c.type !== 'event_count') for (const e of st.entries) noteValue(st, c.type === 'value_count' ? e.v : e.ref);
      if (st.maxT > this.newest) this.newest = st.maxT;
    }
    const before = this.groups.get(key);
    if (before) this.entryCount -= entriesOf(before, width);
    this.groups.set(key, slot);
    this.entryCount += entriesOf(slot, width);
    this.trim(key);
  }

  /** Forgets the least recently fed groups (never `keep`) until the entries are within their bound. */
  /** The least recently used group's key (see {@link evictionOrder}); the caller deletes it or moves it to the end. */
  private oldestGroup(): string | undefined {
    for (let fresh = 0; fresh < 2; fresh++) {
      this.evictionOrder ??= this.groups.keys();
      const next = this.evictionOrder.next();
      if (!next.done) return next.value;
      this.evictionOrder = undefined;
    }
    return undefined;
  }

  private trim(keep: string): void {
    while (this.entryCount > this.limits.maxEntries && this.groups.size > 1) {
      const oldest = this.oldestGroup()!;
      if (oldest === keep) {
        // Recently fed but first in order: move it last and go on with the next.
        const slot = this.groups.get(keep)!;
        this.groups.delete(keep);
        this.groups.set(keep, slot);
        continue;
      }
      this.entryCount -= entriesOf(this.groups.get(oldest)!, this.width);
      this.groups.delete(oldest);
      this.dirty?.add(oldest);
      this.stats.evictedGroups++;
    }
  }

  /**
   * The newest event time fed ({@link process}) or restored ({@link importSlot}); -Infinity before
   * any. Event time, not the clock: a replay of an old audit log moves it as the log goes on.
   */
  get newestEventTime(): number {
    return this.newest;
  }

  /** Forgets groups whose newest event is older than `watermark` minus one timespan and the lateness. */
  expire(watermark: number): number {
    let n = 0;
    for (const [key, slot] of this.groups) {
      let live = false;
      for (let ci = 0; ci < this.width && !live; ci++) {
        const w = windowAt(slot, ci);
        live = w !== undefined && w.maxT >= watermark - this.correlations[ci]!.timespanMs - this.limits.allowedLatenessMs;
      }
      if (!live) {
        this.entryCount -= entriesOf(slot, this.width);
        this.groups.delete(key);
        this.dirty?.add(key);
        n++;
      }
    }
    return n;
  }

  /** Window entries held over all groups, and their bound. */
  get entries(): number {
    return this.entryCount;
  }

  get maxEntries(): number {
    return this.limits.maxEntries;
  }

  /** Number of group values (actors, by default) with windows held. */
  get size(): number {
    return this.groups.size;
  }

  /**
   * Feeds one signal (`key`: its id encoded by `encodeId`, when the caller has it: packing then
   * need not encode it again); returns every correlation it completed (including correlations of
   * correlations). A fresh empty array when nothing fired: a shared frozen one measured slower
   * (callers iterating a frozen array leave V8's fast path).
   */
  process(s: Signal, key?: string): Firing[] {
    let out: Firing[] | undefined;
    this.subject = s;
    this.subjectKey = key;
    if (s.eventTime > this.newest) this.newest = s.eventTime;
    this.subjectPacked = undefined;
    this.slotKey = undefined;
    this.slotOf = undefined;
    const a = this.byKind.get(s.kind);
    const b = this.byRule.get(s.rule.id);
    if (a) for (const t of a) out = this.add(t, s, s.eventTime, undefined, out);
    if (b) for (const t of b) out = this.add(t, s, s.eventTime, undefined, out);
    return out ?? [];
  }

  /**
   * The packed form of the signal last processed, if a window kept it: whoever keeps the signal
   * too (the incident manager's prologues) keeps the same, not a second copy.
   */
  packedOf(s: Signal): PackedSignal | undefined {
    return this.subject === s ? this.subjectPacked : undefined;
  }

  /** `signals` undefined: the subject itself, packed once the first window keeps it. */
  private add(target: Target, subject: Signal, t: number, signals: Kept[] | undefined, out: Firing[] | undefined): Firing[] | undefined {
    const { c, ref } = target;
    if (c.where && !c.where(subject)) return out;
    // The default grouping (spec 0: the actor key alone) read directly: most correlations group
    // so, and the compiled getter's two calls were a twentieth of the correlation bench. A signal
    // without one goes the general way (and counts as ungrouped there).
    const actorKey = target.spec === 0 ? (subject.actor as Signal['actor'] | undefined)?.key : undefined;
    let key: string;
    let group: string;
    if (typeof actorKey === 'string' && actorKey !== '') key = group = actorKey;
    else {
      key = target.spec === 0 ? '' : String(target.spec);
      group = '';
      for (const g of c.groupBy) {
        const v = g.get(ref, subject);
        if (v === undefined || v === null || v === '') {
          this.stats.ungrouped++;
          return out;
        }
        group = group === '' ? String(v) : `${group}\u0000${String(v)}`;
      }
      key = key === '' ? group : `${key}\u0000${group}`;
    }
    // Filed under this group for another correlation of the same signal: moved in the LRU order already.
    const again = key === this.slotKey;
    let slot = again ? this.slotOf : this.groups.get(key);
    if (!slot) {
      slot = newSlot(this.width, ++this.seq);
      this.groups.set(key, slot);
      if (this.groups.size > this.limits.maxGroups) {
        const oldest = this.oldestGroup()!;
        this.entryCount -= entriesOf(this.groups.get(oldest)!, this.width);
        this.groups.delete(oldest);
        this.dirty?.add(oldest);
        this.stats.evictedGroups++;
      }
    } else if (!again && this.seq - seqOf(slot) > this.limits.maxGroups >> 1) {
      // Least recently used first out: re-inserting moves the key to the end of the Map's order.
      // Only slots in the older half are moved, which keeps the order close to LRU at a fraction of the cost.
      this.groups.delete(key);
      this.groups.set(key, slot);
      slot[SEQ] = ++this.seq;
    }
    this.dirty?.add(key);
    this.slotKey = key;
    this.slotOf = slot;
    let st = windowAt(slot, target.ci);
    st ??= setWindow(slot, target.ci, { entries: [], maxT: -Infinity, lastFire: undefined, distinct: undefined, only: undefined });
    const horizon = c.timespanMs + this.limits.allowedLatenessMs;
    if (t < st.maxT - horizon) {
      this.stats.lateDropped++;
      return out;
    }
    let kept: Kept | Kept[] | undefined = signals;
    if (!kept) {
      if (!this.packing) kept = subject;
      else {
        kept = this.subjectPacked;
        if (!kept) {
          const last = st.entries.length ? st.entries[st.entries.length - 1]!.signals : undefined;
          kept = this.subjectPacked = PackedSignal.pack(subject, this.subjectKey, last instanceof PackedSignal ? last : undefined, lastOf(slot));
        }
        slot[LAST] = kept;
      }
    }
    const v = c.field ? this.shared(c.field(subject)) : undefined;
    const entry: Entry = kept instanceof PackedSignal && ref === 0 && v === undefined && t === kept.t ? kept : { t, ref, v, signals: kept };
    if (c.type === 'value_count') noteValue(st, v);
    else if (c.type !== 'event_count') noteValue(st, ref);
    let es = st.entries;
    let pos = es.length;
    // The newest entry is at maxT: a signal in order (most are) goes last without reading it.
    if (t < st.maxT) while (pos > 0 && es[pos - 1]!.t > t) pos--;
    // Most windows hold a few entries: grown by push() from empty, an array takes room for 17.
    // Short ones are copied at their exact length instead.
    if (pos === es.length) {
      if (es.length < SHORT) st.entries = es = appended(es, entry);
      else es.push(entry);
    } else es.splice(pos, 0, entry);
    this.entryCount++;
    const d = st.distinct;
    // Entries within one timespan of the newest event are a suffix: the new one is in it, or just before it.
    if (d) {
      if (t >= st.maxT - c.timespanMs) countIn(d, entry.v);
      else d.lo++;
    }
    if (t > st.maxT) {
      st.maxT = t;
      if (d) for (; d.lo < es.length && es[d.lo]!.t < t - c.timespanMs; d.lo++) countOut(d, es[d.lo]!.v);
    }
    let drop = 0;
    while (drop < es.length && es[drop]!.t < st.maxT - horizon) drop++;
    if (es.length - drop > this.limits.maxPerGroup) {
      this.stats.evictedEntries += es.length - drop - this.limits.maxPerGroup;
      drop = es.length - this.limits.maxPerGroup;
    }
    if (d && drop > 0) {
      for (; d.lo < drop; d.lo++) countOut(d, es[d.lo]!.v);
      d.lo -= drop;
    }
    // shift() moves in place; splice() would allocate an array of the removed entries.
    if (drop === 1) es.shift();
    else if (drop > 1) es.splice(0, drop);
    this.entryCount -= drop;
    if (d && es.length - d.lo < this.limits.distinctFrom / 2) st.distinct = undefined;
    if (this.entryCount > this.limits.maxEntries) this.trim(key);

    // Once fired, a group stays quiet for one timespan: later signals join the incident directly.
    if (st.lastFire !== undefined && t - st.lastFire < c.timespanMs) return out;
    const window = this.satisfyingWindow(c, st, entry);
    if (!window) return out;
    st.lastFire = t;
    this.stats.firings++;
    const seen = new Set<string>();
    const packed: Kept[] = [];
    for (let i = window[0]; i < window[1]; i++) {
      const x = es[i]!.signals;
      for (const y of Array.isArray(x) ? x : [x]) {
        const k = keyOf(y);
        if (!seen.has(k)) {
          seen.add(k);
          packed.push(y);
        }
      }
    }
    // Rebuilt: the same signals as were fed (the subject is the very object).
    const sigs = packed.map((p) => (p === this.subjectPacked ? subject : p instanceof PackedSignal ? p.signal() : p));
    const firing: Firing = { correlation: c, group, signals: sigs, time: t, trigger: subject };
    (out ??= []).push(firing);
    const deps = this.byCorrelation.get(c.id);
    if (deps) for (const d of deps) out = this.add(d, subject, t, packed, out);
    return out;
  }

  /**
   * A counted value as one shared string: every signal brings its own copy of a namespace or a name,
   * and counting distinct values compares each entry's value with the others: copies scattered over
   * the heap are a cache miss each, one shared string is not. Bounded: past {@link SHARED_VALUES}
   * the table starts again, and values longer than {@link SHARED_MAX_LENGTH} are not shared (values
   * are compared by content either way; sharing only saves the misses).
   * The table keeps its own copy ({@link ownCopy}): a value cut out of a longer string (a regular
   * expression's match in a log line) would otherwise keep that whole string alive with it.
   */
  private shared(v: unknown): unknown {
    // Long values are rare and seldom repeat: sharing them would only keep them alive in the table.
    if (typeof v !== 'string' || v.length > SHARED_MAX_LENGTH) return v;
    const known = this.values.get(v);
    if (known !== undefined) return known;
    if (this.values.size >= SHARED_VALUES) this.values.clear();
    const own = ownCopy(v);
    this.values.set(own, own);
    return own;
  }

  /** Index range [from, to) of a window of at most one timespan that contains `x` and satisfies the condition. */
  private satisfyingWindow(c: CompiledCorrelation, st: Group, x: Entry): [number, number] | undefined {
    // A value_count window of one value counts at most one, however its entries lie: a condition
    // that needs two or more cannot hold, and the entries need not be read (most windows of an
    // identity that keeps to its own namespace or resource are so).
    if (st.only !== MIXED && needsTwo(c)) return undefined;
    const es = st.entries;
    const span = c.timespanMs;
    // Entries are in event-time order: the first one inside the timespan by binary search (most
    // often the very first entry is, and then there is nothing to search).
    let lo = 0;
    let hi = es.length > 0 && es[0]!.t >= x.t - span ? 0 : es.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (es[mid]!.t < x.t - span) lo = mid + 1;
      else hi = mid;
    }
    if (es[es.length - 1] === x) {
      // In order (the common case): the window ending at x holds every candidate.
      if (c.type === 'value_count' && x.t === st.maxT && (st.distinct || es.length - lo > this.limits.distinctFrom)) {
        // Those are the entries within one timespan of the newest: their distinct values are kept.
        let d = st.distinct;
        if (!d) {
          d = st.distinct = { lo, counts: new Map() };
          for (let i = lo; i < es.length; i++) countIn(d, es[i]!.v);
        }
        return holds(c.condition, d.counts.size) ? [lo, es.length] : undefined;
      }
      const ok = this.satisfied(c, es, lo, es.length);
      // Recounted the whole window: whether it still holds different values is known again.
      if (lo === 0) this.relearnOnly(c, st);
      return ok ? [lo, es.length] : undefined;
    }
    const at = es.indexOf(x);
    for (let i = lo; i <= at; i++) {
      let k = at + 1;
      while (k < es.length && es[k]!.t <= es[i]!.t + span) k++;
      if (this.satisfied(c, es, i, k)) return [i, k];
    }
    return undefined;
  }

  /**
   * After a count of the whole window (by {@link satisfied}): whether its entries hold one value or
   * reference is known again, so a window that once held two can skip its counts again.
   */
  private relearnOnly(c: CompiledCorrelation, st: Group): void {
    if (c.type === 'value_count') {
      if (st.entries.length <= 16 && SCRATCH_FEW.length <= 1) st.only = SCRATCH_FEW[0];
    } else if (c.type === 'temporal' && (SCRATCH_REFS & (SCRATCH_REFS - 1)) === 0) st.only = SCRATCH_REFS === 0 ? undefined : 31 - Math.clz32(SCRATCH_REFS);
  }

  private satisfied(c: CompiledCorrelation, es: Entry[], from: number, to: number): boolean {
    switch (c.type) {
      case 'event_count':
        return holds(c.condition, to - from);
      case 'value_count': {
        // Distinct values without allocating: a reused array while the range is short (cheapest
        // for the few values most windows hold), a reused set beyond, linear however full.
        if (to - from <= 16) {
          const few = SCRATCH_FEW;
          few.length = 0;
          for (let i = from; i < to; i++) {
            const v = es[i]!.v;
            if (v === undefined || v === null) continue;
            const k = typeof v === 'string' ? v : JSON.stringify(v);
            if (!few.includes(k)) few.push(k);
          }
          return holds(c.condition, few.length);
        }
        const seen = SCRATCH;
        seen.clear();
        for (let i = from; i < to; i++) {
          const v = es[i]!.v;
          if (v === undefined || v === null) continue;
          seen.add(typeof v === 'string' ? v : JSON.stringify(v));
        }
        return holds(c.condition, seen.size);
      }
      case 'temporal': {
        // References are few (lint keeps them under 31): a bit set counts the distinct ones without allocating.
        let bits = 0;
        let n = 0;
        for (let i = from; i < to; i++) {
          const b = 1 << es[i]!.ref;
          if (!(bits & b)) {
            bits |= b;
            n++;
          }
        }
        SCRATCH_REFS = bits;
        return holds(c.condition, n);
      }
      case 'temporal_ordered': {
        let need = 0;
        for (let i = from; i < to; i++) if (es[i]!.ref === need && ++need === c.refs.length) return true;
        return false;
      }
    }
  }
}
