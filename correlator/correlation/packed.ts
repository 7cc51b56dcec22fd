/**
 * Signals as correlation windows and prologues retain them: compact, and rebuilt into the same
 * signal when a correlation fires or an incident opens from a prologue.
 *
 * A signal as a V8 object graph weighs about 1.1 KB (its strings, its actor, target and rule
 * objects, its arrays, two boxed numbers), and the correlator holds hundreds of thousands. Most of
 * it repeats from one signal of an actor to the next: the same actor, source, rule, target, kind.
 * A {@link PackedSignal} keeps what is the signal's own (its id as 16 bytes, its times, its title,
 * its evidence as JSON text) and a {@link Shape} holding the rest, shared with an earlier packed
 * signal that has the same (or, member by member, the members it has in common): the caller names
 * the earlier signals worth comparing with (the same window, the same actor's prologue), which
 * costs a few comparisons and no lookup. Nothing is lost: {@link PackedSignal.signal} returns a
 * signal equal to the one packed (fresh objects, its evidence parsed back, its source offset too).
 * A signal of unexpected form (unknown members, members of other types) is kept as its JSON text.
 */
import { isSharedList, type Signal } from '../signal.js';

/**
 * Where a signal came from on its partition's signals topic (distributed mode, see
 * services/store/correlator-state.ts): a non-enumerable property, so that copies (`{ ...s }`, e.g.
 * a signal the baseline annotated) do not inherit it. Packing keeps it and rebuilding restores it.
 */
export const SOURCE_OFFSET = Symbol('kubevigil.sourceOffset');
type WithOffset = Signal & { [SOURCE_OFFSET]?: number };

/** The members of a signal that the signals of one rule have in common, whoever the actor: shared by many shapes. */
export class Pattern {
  constructor(
    readonly source: Signal['source'],
    readonly kind: Signal['kind'],
    readonly severity: Signal['severity'],
    readonly outcome: Signal['outcome'],
    readonly rule: Signal['rule'],
    readonly mitre: string[],
    readonly cluster: string | undefined,
  ) {}
}

/** The members of a signal that signals of one actor mostly share. */
export class Shape {
  constructor(
    readonly pattern: Pattern,
    readonly actor: Signal['actor'],
    readonly target: Signal['target'],
    readonly entities: string[],
    readonly attributes: Signal['attributes'],
  ) {}
}

/** The four 32-bit words of the last id {@link parseHexId} parsed. */
export const ID_WORDS = new Uint32Array(4);

/** The value of each lowercase hex digit by character code, -1 for any other code below 128 (one load a digit, not two comparisons). */
const NIBBLES = new Int8Array(128).fill(-1);
for (let c = 0; c < 16; c++) NIBBLES[c.toString(16).charCodeAt(0)] = c;

/** Parses 32 lowercase hex digits (a signal id, see `signalId`) into {@link ID_WORDS}; false for anything else. */
export function parseHexId(id: string): boolean {
  if (id.length !== 32) return false;
  for (let w = 0; w < 4; w++) {
    let x = 0;
    let bad = 0;
    for (let i = w * 8, end = i + 8; i < end; i++) {
      const c = id.charCodeAt(i);
      // Not a digit: -1, which `bad` keeps (the word takes the low four bits either way, and is dropped).
      const n = c < 128 ? NIBBLES[c]! : -1;
      bad |= n;
      x = (x << 4) | (n & 15);
    }
    if (bad < 0) return false;
    ID_WORDS[w] = x;
  }
  return true;
}

/** The id in {@link ID_WORDS} as {@link encodeId} encodes it: one call, a flat string of its 16 bytes (concatenation would make a rope). */
export function keyOfWords(): string {
  const w = ID_WORDS;
  const a = w[0]!;
  const b = w[1]!;
  const c = w[2]!;
  const d = w[3]!;
  return String.fromCharCode(
    a >>> 24,
    (a >>> 16) & 255,
    (a >>> 8) & 255,
    a & 255,
    b >>> 24,
    (b >>> 16) & 255,
    (b >>> 8) & 255,
    b & 255,
    c >>> 24,
    (c >>> 16) & 255,
    (c >>> 8) & 255,
    c & 255,
    d >>> 24,
    (d >>> 16) & 255,
    (d >>> 8) & 255,
    d & 255,
  );
}

/** An id that is not 32 hex digits, as {@link encodeId} keeps it: as it is, marked when it could be taken for an encoded one. */
export function otherKey(id: string): string {
  return id.length === 16 || id.charCodeAt(0) === 0 ? `\u0000${id}` : id;
}

/** A signal id as kept: 32 lowercase hex digits as a 16-character one-byte string (16 bytes, not 32 and a header), anything else by {@link otherKey}. */
export function encodeId(id: string): string {
  return parseHexId(id) ? keyOfWords() : otherKey(id);
}

/**
 * Event times are kept relative to this (see {@link PackedSignal.dt}): the first event time packed
 * in the process, in whole seconds (set once; live signals are near it, replays too).
 */
let EPOCH = NaN;

/** The id {@link encodeId} encoded (its 16 characters are bytes: written out as hex in one flat string). */
export function decodeId(k: string): string {
  if (k.length === 16) return Buffer.from(k, 'latin1').toString('hex');
  return k.charCodeAt(0) === 0 ? k.slice(1) : k;
}

/** Own enumerable members a signal may have; `cluster` is optional. */
const MEMBERS = 17;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Same keys, and the same values by identity (strings by value): the objects a shape holds are flat. */
function flatEqual(x: object, y: object): boolean {
  if (x === y) return true;
  const a = x as Record<string, unknown>;
  const b = y as Record<string, unknown>;
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k] || !(k in b)) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function arrayEqual(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/** True when the signal has exactly the members a {@link Shape} and a {@link PackedSignal} hold, of the expected types. */
function regular(s: Signal): boolean {
  let n = 0;
  for (const _ in s) n++;
  const hasCluster = 'cluster' in s;
  return (
    n === (hasCluster ? MEMBERS : MEMBERS - 1) &&
    typeof s.id === 'string' &&
    typeof s.source === 'string' &&
    typeof s.kind === 'string' &&
    typeof s.severity === 'string' &&
    typeof s.title === 'string' &&
    typeof s.eventTime === 'number' &&
    typeof s.observedTime === 'number' &&
    isRecord(s.actor) &&
    isRecord(s.target) &&
    typeof s.outcome === 'string' &&
    Array.isArray(s.entities) &&
    Array.isArray(s.mitre) &&
    isRecord(s.rule) &&
    Array.isArray(s.matched) &&
    isRecord(s.attributes) &&
    isRecord(s.excerpt) &&
    (!hasCluster || s.cluster === undefined || typeof s.cluster === 'string') &&
    // Times rebuilt exactly: the observed time is kept as its distance to the event time.
    s.eventTime + (s.observedTime - s.eventTime) === s.observedTime
  );
}

/** The pattern's strings (kind, severity, outcome, source, cluster) are the signal's. */
function sameStrings(s: Signal, p: Pattern): boolean {
  return p.kind === s.kind && p.severity === s.severity && p.outcome === s.outcome && p.source === s.source && p.cluster === s.cluster;
}

function samePattern(s: Signal, p: Pattern): boolean {
  return sameStrings(s, p) && flatEqual(p.rule, s.rule) && arrayEqual(p.mitre, s.mitre);
}

function sameShape(s: Signal, like: Shape): boolean {
  return (
    samePattern(s, like.pattern) &&
    flatEqual(like.actor, s.actor) &&
    flatEqual(like.target, s.target) &&
    arrayEqual(like.entities, s.entities) &&
    flatEqual(like.attributes, s.attributes)
  );
}

/**
 * Members that many actors' signals have in common (a rule, its techniques, a list of entities),
 * shared through small tables: bounded, and emptied when full (what was shared stays shared).
 */
const INTERNED = 4096;
const rules = new Map<string, Signal['rule']>();
const patterns = new Map<string, Pattern>();
const lists = new Map<string, string[]>();
const NO_STRINGS: string[] = Object.freeze([]) as unknown as string[];
const NO_ATTRIBUTES: Record<string, string> = Object.freeze({}) as Record<string, string>;

function internRule(r: Signal['rule']): Signal['rule'] {
  const known = rules.get(r.id);
  if (known && flatEqual(known, r)) return known;
  if (rules.size >= INTERNED) rules.clear();
  rules.set(r.id, r);
  return r;
}

function internList(l: string[]): string[] {
  if (l.length === 0) return NO_STRINGS;
  let key = '';
  for (const x of l) {
    if (typeof x !== 'string') return l;
    key += `${x}\n`;
  }
  const known = lists.get(key);
  if (known && arrayEqual(known, l)) return known;
  if (lists.size >= INTERNED) lists.clear();
  lists.set(key, l);
  return l;
}

/** The pattern of `s`: `like`'s when equal, else one shared by other shapes, else a new one. */
function patternOf(s: Signal, like: Pattern | undefined): Pattern {
  if (like && samePattern(s, like)) return like;
  const key = `${s.kind}\n${s.severity}\n${s.outcome}\n${s.source}\n${s.cluster ?? ''}\n${s.rule.id}`;
  const known = patterns.get(key);
  if (known && samePattern(s, known)) return known;
  const p = new Pattern(s.source, s.kind, s.severity, s.outcome, internRule(s.rule), internList(s.mitre), s.cluster);
  if (patterns.size >= INTERNED) patterns.clear();
  patterns.set(key, p);
  return p;
}

/**
 * The shape of `s`: `like`'s when equal, else a new one sharing what it can with `like` and with
 * other shapes (`differs`: the caller compared them already and found them different).
 */
function shapeOf(s: Signal, like: Shape | undefined, differs = false): Shape {
  if (like && !differs && sameShape(s, like)) return like;
  return new Shape(
    patternOf(s, like?.pattern),
    like && flatEqual(like.actor, s.actor) ? like.actor : s.actor,
    like && flatEqual(like.target, s.target) ? like.target : s.target,
    like && arrayEqual(like.entities, s.entities) ? like.entities : internList(s.entities),
    like && flatEqual(like.attributes, s.attributes) ? like.attributes : isEmpty(s.attributes) ? NO_ATTRIBUTES : s.attributes,
  );
}

/**
 * The shape last given to signals with a given entity list, for lists that signals share (read
 * once from the bus for all the signals that repeat them, see `isSharedList`): their next signal
 * then finds its shape without comparing with others. Weak: a list nobody holds any more is
 * forgotten.
 */
const hints = new WeakMap<readonly string[], Hint>();

/**
 * A {@link hints} entry: the shape, and the objects of the signal it was last found equal to. A
 * shape holds the members of the first signal it was made for (or members it shares with other
 * shapes), equal by value to a later signal's shared members but other objects: comparing them
 * member by member, list by list, for every signal was a tenth of a drain's correlation. Shared
 * members are frozen (their arrays by convention: nothing changes a signal's entities or
 * techniques), so a signal holding the same objects has the same values.
 */
class Hint {
  constructor(
    readonly shape: Shape,
    readonly actor: Signal['actor'],
    readonly target: Signal['target'],
    readonly attributes: Signal['attributes'],
    readonly rule: Signal['rule'],
    readonly mitre: Signal['mitre'],
  ) {}

  /** True when `s` holds the objects this hint was found equal to, and the same pattern strings. */
  holds(s: Signal): boolean {
    return (
      s.actor === this.actor &&
      s.target === this.target &&
      s.attributes === this.attributes &&
      s.rule === this.rule &&
      s.mitre === this.mitre &&
      sameStrings(s, this.shape.pattern)
    );
  }
}

function frozenMembers(s: Signal): boolean {
  return Object.isFrozen(s.actor) && Object.isFrozen(s.target) && Object.isFrozen(s.attributes) && Object.isFrozen(s.rule);
}

/** The hint for `s`, whose entity list is shared: holding its objects when they are frozen, else none (what is not frozen may change; the shape is then compared). */
function hintFor(s: Signal, shape: Shape): Hint {
  return frozenMembers(s)
    ? new Hint(shape, s.actor, s.target, s.attributes, s.rule, s.mitre)
    : new Hint(shape, NOT_HELD, NOT_HELD, NOT_HELD, NOT_HELD as unknown as Signal['rule'], []);
}

/** What no signal holds (see {@link hintFor}). */
const NOT_HELD = Object.freeze({}) as Record<string, string> & Signal['actor'] & Signal['target'];

type Extra = string | number | { evidence: string; offset: number } | undefined;

/**
 * A signal as windows and prologues keep it; {@link signal} rebuilds it. It is also a window entry
 * of its own (see engine.ts): at its event time (`t`), for the first reference (`ref` 0), without a
 * value (`v`), so that most window entries take no object besides the signal.
 */
export class PackedSignal {
  declare readonly ref: number;
  declare readonly v: unknown;

  protected constructor(
    /** The id, encoded ({@link encodeId}). */
    readonly key: string,
    /**
     * The event time less {@link EPOCH}: a small integer for a time within 12 days of it, which V8
     * keeps in the field itself (an event time as it is takes a 16-byte box per signal).
     */
    protected readonly dt: number,
    /** Observed time less event time (a small integer, unboxed, most of the time). */
    private readonly observedDelta: number,
    private readonly title: string,
    /** The shared members, or for a signal of unexpected form its whole JSON text. */
    private readonly shape: Shape | string,
    /**
     * `[matched, excerpt]` as JSON text (undefined when both are empty) and the source offset (see
     * {@link SOURCE_OFFSET}), in one field: a signal has one or the other (evidence in a single
     * process, an offset distributed, where signals come without their evidence).
     */
    private readonly extra: Extra,
  ) {}

  /**
   * Packs a signal (`key`: its id encoded, when the caller has it), sharing its shape with the first of `like` (earlier packed signals, undefined
   * entries skipped) whose shape it has; failing that, member by member with the first given.
   */
  static pack(s: Signal, key: string | undefined, like1?: PackedSignal, like2?: PackedSignal, like3?: PackedSignal): PackedSignal {
    const offset = (s as WithOffset)[SOURCE_OFFSET];
    if (!regular(s)) return PackedSignal.make(encodeId(String(s.id)), s.eventTime, 0, '', JSON.stringify(s), undefined, offset);
    const evidence = s.matched.length === 0 && isEmpty(s.excerpt) ? undefined : JSON.stringify([s.matched, s.excerpt]);
    // Signals read from the bus share their members' objects with the signals that repeat them
    // (services/bus/signal-reader.ts); the entity list names the shape they were given last.
    const entities = s.entities;
    const hint = hints.get(entities);
    const held = hint?.holds(s) === true;
    const hinted = hint?.shape;
    let shape = held || (hinted && sameShape(s, hinted)) ? hinted : undefined;
    let first: PackedSignal | undefined;
    for (let i = 0; i < 3 && !shape; i++) {
      const l = i === 0 ? like1 : i === 1 ? like2 : like3;
      if (!l || typeof l.shape === 'string') continue;
      first ??= l;
      if (sameShape(s, l.shape)) {
        shape = l.shape;
        first = l;
      }
    }
    // None matched: `first` (if any) was compared already.
    shape ??= shapeOf(s, first?.shape as Shape | undefined, true);
    // A new shape, or the same one for other frozen objects (shared members read again): hinted
    // with this signal's, which the next signals hold.
    if (!held && (shape !== hinted || frozenMembers(s)) && isSharedList(entities)) hints.set(entities, hintFor(s, shape));
    const title = first && first.title === s.title ? first.title : s.title;
    return PackedSignal.make(key ?? encodeId(s.id), s.eventTime, s.observedTime - s.eventTime, title, shape, evidence, offset);
  }

  private static make(
    key: string,
    t: number,
    observedDelta: number,
    title: string,
    shape: Shape | string,
    evidence: string | undefined,
    offset: number | undefined,
  ): PackedSignal {
    if (Number.isNaN(EPOCH) && Number.isFinite(t)) EPOCH = Math.floor(t / 1000) * 1000;
    const extra: Extra = evidence === undefined ? offset : offset === undefined ? evidence : { evidence, offset };
    // Exact for any time within a factor of two of the epoch (the subtraction is exact then).
    return t - EPOCH + EPOCH === t
      ? new PackedSignal(key, t - EPOCH, observedDelta, title, shape, extra)
      : new AbsolutePackedSignal(key, t, observedDelta, title, shape, extra);
  }

  /**
   * The members this signal shares with others packed alike (see {@link Shape}): the same object
   * for signals of equal actor, target, entities, attributes, rule and the like. Undefined for a
   * signal kept as its JSON text.
   */
  get shared(): Shape | undefined {
    const sh = this.shape;
    return typeof sh === 'string' ? undefined : sh;
  }

  /** The event time (see {@link dt}). */
  get t(): number {
    return this.dt + EPOCH;
  }

  /** `[matched, excerpt]` as JSON text; undefined when both are empty. */
  private get evidence(): string | undefined {
    const x = this.extra;
    return typeof x === 'string' ? x : typeof x === 'object' ? x.evidence : undefined;
  }

  /** See {@link SOURCE_OFFSET}. */
  get offset(): number | undefined {
    const x = this.extra;
    return typeof x === 'number' ? x : typeof x === 'object' ? x.offset : undefined;
  }

  /** The signal's id. */
  get id(): string {
    return decodeId(this.key);
  }

  get eventTime(): number {
    return this.t;
  }

  /** As a window entry: its signals. */
  get signals(): PackedSignal {
    return this;
  }

  /** The signal packed: equal to it, in fresh objects (the shared ones copied), with its source offset. */
  signal(): Signal {
    const sh = this.shape;
    let s: Signal;
    if (typeof sh === 'string') s = JSON.parse(sh) as Signal;
    else {
      const [matched, excerpt] = this.evidence === undefined ? [[], {}] : (JSON.parse(this.evidence) as [Signal['matched'], Signal['excerpt']]);
      const p = sh.pattern;
      s = {
        id: this.id,
        source: p.source,
        kind: p.kind,
        severity: p.severity,
        title: this.title,
        eventTime: this.t,
        observedTime: this.t + this.observedDelta,
        actor: { ...sh.actor },
        target: { ...sh.target },
        outcome: p.outcome,
        entities: [...sh.entities],
        mitre: [...p.mitre],
        rule: { ...p.rule },
        matched,
        attributes: { ...sh.attributes },
        excerpt,
      };
      if (p.cluster !== undefined) s.cluster = p.cluster;
    }
    const offset = this.offset;
    if (offset !== undefined) Object.defineProperty(s, SOURCE_OFFSET, { value: offset, configurable: true });
    return s;
  }
}

/** A packed signal whose event time is far from {@link EPOCH} (tests, replays of old data): kept as it is. */
class AbsolutePackedSignal extends PackedSignal {
  override get t(): number {
    return this.dt;
  }
}

// Constants on the prototype: reading them is as fast as reading a field, and they take no room.
Object.defineProperties(PackedSignal.prototype, { ref: { value: 0 }, v: { value: undefined } });

/** A signal or its packed form, as checkpoints write them. */
export type SignalLike = Signal | PackedSignal;

/** The signal of either form. */
export function unpacked(s: SignalLike): Signal {
  return s instanceof PackedSignal ? s.signal() : s;
}
