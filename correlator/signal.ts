import { createHash } from 'node:crypto';
import type { Actor } from './entities.js';
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
 * A signal's JSON with its evidence last, and where the evidence starts (a character index):
 * whoever needs the signal without its evidence parses only what comes before
 * ({@link parseWithoutEvidence}), about half of a typical signal's JSON (0.45 in the benchmark).
 * `evidenceAt` is undefined when the signal has no evidence to put last.
 */
export function signalJson(s: Signal): { json: string; evidenceAt?: number } {
  const { matched, excerpt, ...core } = s;
  const head = JSON.stringify(core);
  const m = JSON.stringify(matched) as string | undefined;
  const e = JSON.stringify(excerpt) as string | undefined;
  // An empty core ("{}") or missing evidence: nothing to put last.
  if (head.length < 3 || m === undefined || e === undefined) return { json: JSON.stringify(s) };
  const at = head.length - 1;
  return { json: `${head.slice(0, at)}${EVIDENCE_MEMBER}${m},"excerpt":${e}}`, evidenceAt: at };
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
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const signal = value as Signal;
  signal.matched = NO_MATCHED;
  signal.excerpt = NO_EXCERPT;
  return signal;
}

/** Deterministic signal id: 32 hex characters of SHA-256 over rule id, source and the event's own key. */
export function signalId(ruleId: string, source: SourceName, eventKey: string): string {
  return createHash('sha256').update(`${ruleId}\u0000${source}\u0000${eventKey}`).digest('hex').slice(0, 32);
}
