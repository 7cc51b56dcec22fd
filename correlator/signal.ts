import { createHash } from 'node:crypto';
import type { Actor } from './entities.js';
import { isObj } from './json-guards.js';
import type { Severity } from './severity.js';
import type { SignalKind } from './signal-kinds.js';

/** Where a signal came from. */
export type SourceName = 'k8s-audit' | 'alertmanager' | 'loki' | 'otlp' | 'falco';

/** Whether the action the signal describes was allowed by the cluster. */
export type Outcome = 'allowed' | 'denied' | 'unknown';

/** What the actor acted on. */
export interface Target {
  namespace?: string;
  resource?: string;
  subresource?: string;
  apiGroup?: string;
  name?: string;
  verb?: string;
}

/** One leaf condition of a rule that held for the event: the "why" of a signal. */
export interface MatchedCondition {
  field: string;
  op: string;
  expected: unknown;
  actual: unknown;
}

/** A suspicious (or countable) fact derived from one source event by one detection rule. */
export interface Signal {
  /** Deterministic: the same rule on the same source event always yields the same id. */
  id: string;
  source: SourceName;
  kind: SignalKind;
  severity: Severity;
  /** One line, rendered from the rule's `output` template. */
  title: string;
  /** When the event happened (ms since epoch), from the source's own clock. */
  eventTime: number;
  /** When kubevigil received it (ms since epoch). */
  observedTime: number;
  actor: Actor;
  target: Target;
  outcome: Outcome;
  /** Entity keys involved besides the actor (namespaces, pods, secrets, bindings, policies, IPs). */
  entities: string[];
  /** MITRE ATT&CK technique ids, e.g. T1552.007. */
  mitre: string[];
  rule: { id: string; title: string };
  matched: MatchedCondition[];
  /** Facts the source extracted that later stages rely on (e.g. `binding`, `role`, `policies`). */
  attributes: Record<string, string>;
  /** A bounded, redacted copy of the interesting parts of the source event. */
  excerpt: Record<string, unknown>;
  /** The cluster it came from (KUBEVIGIL_CLUSTER_NAME of the ingesting process); absent when unnamed. */
  cluster?: string;
}

const NO_MATCHED: MatchedCondition[] = Object.freeze([]) as unknown as MatchedCondition[];
const NO_EXCERPT: Record<string, unknown> = Object.freeze({});

/**
 * The signal without its evidence (matched conditions and source excerpt): what correlation windows,
 * prologues and checkpoints keep. The evidence stays with the stored signal; holding it in every
 * window would double the correlator's memory and its checkpoints for nothing it reads.
 */
export function withoutEvidence(s: Signal): Signal {
  return s.excerpt === NO_EXCERPT && s.matched === NO_MATCHED ? s : { ...s, matched: NO_MATCHED, excerpt: NO_EXCERPT };
}

/** What starts a signal's evidence in its JSON (see {@link signalJson}). */
export const EVIDENCE_MEMBER = ',"matched":';

/**
 * Where a signal's JSON goes from the members that are its own to those it shares with earlier
 * signals (see {@link signalJson}), and a hash of the shared part's text that names it.
 */
export interface SharedPart {
  /** Index of the comma before the first shared member. */
  at: number;
  /** 32-bit FNV-1a of the shared members' text (between that comma and the evidence), as an unsigned integer. */
  hash: number;
}

/**
 * A signal's JSON, written for readers that skip what they do not need:
 *
 * - its own members first (id, event and observed time), then the members that the signals of one
 *   actor on one target mostly repeat (source to attributes: `shared`), then its evidence
 *   (`evidenceAt`, a character index). A reader without evidence parses only what comes before
 *   ({@link parseWithoutEvidence}), about half of a typical signal's JSON (0.45 in the benchmark);
 *   one that has read the same shared text before can reuse what it parsed then (see
 *   services/bus/signal-reader.ts) and parse the signal's own members alone.
 * - `evidenceAt` is undefined when the signal has no evidence to put last, `shared` when it has no
 *   own or no shared members.
 */
export function signalJson(s: Signal): { json: string; evidenceAt?: number; shared?: SharedPart } {
  const { matched, excerpt, id, eventTime, observedTime, ...rest } = s;
  const m = JSON.stringify(matched) as string | undefined;
  const e = JSON.stringify(excerpt) as string | undefined;
  const own = JSON.stringify({ id, eventTime, observedTime });
  const body = JSON.stringify(rest);
  // Missing evidence, or an empty core ("{}"): nothing to put last.
  if (m === undefined || e === undefined || (own.length < 3 && body.length < 3)) return { json: JSON.stringify(s) };
  const evidence = `${EVIDENCE_MEMBER}${m},"excerpt":${e}}`;
  if (own.length < 3 || body.length < 3) {
    const core = own.length < 3 ? body : own;
    return { json: `${core.slice(0, -1)}${evidence}`, evidenceAt: core.length - 1 };
  }
  const shared = body.slice(1, -1);
  const at = own.length - 1;
  return { json: `${own.slice(0, -1)},${shared}${evidence}`, evidenceAt: at + 1 + shared.length, shared: { at, hash: textHash(shared) } };
}

/** 32-bit FNV-1a over a string's UTF-16 code units (its bytes, for ASCII text), unsigned. */
export function textHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Parses a signal without its evidence from JSON written by {@link signalJson}: only the members
 * before `evidenceAt`. A position that is not where the evidence member starts (absent, out of
 * range) falls back to parsing everything. The cut cannot land inside a string (a quote there is
 * always escaped), and the prefix closed with one brace only parses when the cut is at a top-level
 * `matched` member; members after it are not read, which is why {@link signalJson} writes only
 * the evidence there, and why a message whose evidence part alone is corrupt is still read.
 * Otherwise throws what `JSON.parse` throws for JSON that is not valid.
 */
export function parseWithoutEvidence(json: string, evidenceAt?: number): unknown {
  if (evidenceAt !== undefined && Number.isInteger(evidenceAt) && evidenceAt > 1 && json.startsWith(EVIDENCE_MEMBER, evidenceAt) && json.endsWith('}')) {
    const signal = parseSignalCore(`${json.slice(0, evidenceAt)}}`);
    if (signal) return signal;
  }
  const value: unknown = JSON.parse(json);
  const s = value as Partial<Signal> | null;
  return s !== null && typeof s === 'object' && 'excerpt' in s && 'matched' in s ? withoutEvidence(s as Signal) : value;
}

/**
 * The signal without its evidence from `core`: the members {@link signalJson} writes before the
 * evidence, closed with a brace. Undefined when that is not a JSON object (the cut was not at the
 * evidence member): the caller then parses the whole message.
 */
export function parseSignalCore(core: string): Signal | undefined {
  let value: unknown;
  try {
    value = JSON.parse(core);
  } catch {
    return undefined;
  }
  if (!isObj(value)) return undefined;
  const signal = value as unknown as Signal;
  signal.matched = NO_MATCHED;
  signal.excerpt = NO_EXCERPT;
  return signal;
}

/** A signal's own members, as {@link signalJson} writes them first. */
export interface OwnMembers {
  id: string;
  eventTime: number;
  observedTime: number;
}

/**
 * A signal's members besides its own and its evidence: read once and shared by the signals that
 * repeat them, so not to be changed (objects frozen; arrays not, see {@link sharedMembers}).
 */
export type SharedMembers = Readonly<Omit<Signal, keyof OwnMembers | 'matched' | 'excerpt'>>;

const SHARED_KEYS = ['source', 'kind', 'severity', 'title', 'actor', 'target', 'outcome', 'entities', 'mitre', 'rule', 'attributes'] as const;

function keyCount(o: object): number {
  let n = 0;
  for (const _ in o) n++;
  return n;
}

/**
 * Freezes the objects in `v`, all the way down, but not its arrays: V8 (Node 24) iterates a frozen,
 * sealed or non-extensible array 5–10 times slower than a plain one (7 strings: 70 ns against 8 in
 * a for-of loop), and every reader of a signal iterates its entities.
 */
function freezeObjects<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) freezeObjects(x);
    if (!Array.isArray(v)) Object.freeze(v);
  }
  return v;
}

/** True when `v` (parsed JSON) has exactly a signal's own members: `id`, `eventTime`, `observedTime`. */
export function isOwnMembers(v: unknown): v is OwnMembers {
  return isObj(v) && 'id' in v && 'eventTime' in v && 'observedTime' in v && keyCount(v) === 3;
}

/**
 * `v` (parsed JSON) as shared members, its objects frozen all the way down (so that no reader of
 * one signal changes another's; arrays are left as they are, see {@link freezeObjects}: nothing
 * changes a signal's entities or techniques), when it has exactly those members (`cluster`
 * optional); undefined otherwise. The values are not checked: the signal built from them is what
 * parsing its JSON would give.
 */
export function sharedMembers(v: unknown): SharedMembers | undefined {
  if (!isObj(v) || keyCount(v) !== SHARED_KEYS.length + ('cluster' in v ? 1 : 0)) return undefined;
  for (const k of SHARED_KEYS) if (!(k in v)) return undefined;
  if (Array.isArray(v.entities)) sharedLists.add(v.entities);
  return freezeObjects(v) as unknown as SharedMembers;
}

/** Entity lists of {@link sharedMembers}: each is the list of every signal built from those members. */
const sharedLists = new WeakSet<readonly string[]>();

/** True when `list` is the entity list of shared members, and so of all the signals that repeat them (see {@link sharedMembers}). */
export function isSharedList(list: readonly string[]): boolean {
  return sharedLists.has(list);
}

/** The signal (without its evidence) of its own and its shared members: what parsing its JSON's core would give, sharing `sh`'s objects. */
export function leanSignal(own: OwnMembers, sh: SharedMembers): Signal {
  const s: Signal = {
    id: own.id,
    source: sh.source,
    kind: sh.kind,
    severity: sh.severity,
    title: sh.title,
    eventTime: own.eventTime,
    observedTime: own.observedTime,
    actor: sh.actor,
    target: sh.target,
    outcome: sh.outcome,
    entities: sh.entities,
    mitre: sh.mitre,
    rule: sh.rule,
    matched: NO_MATCHED,
    attributes: sh.attributes,
    excerpt: NO_EXCERPT,
  };
  if ('cluster' in sh) s.cluster = sh.cluster;
  return s;
}

/** Deterministic signal id: 32 hex characters of SHA-256 over rule id, source and the event's own key. */
export function signalId(ruleId: string, source: SourceName, eventKey: string): string {
  return createHash('sha256').update(`${ruleId}\u0000${source}\u0000${eventKey}`).digest('hex').slice(0, 32);
}
