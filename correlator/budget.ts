/**
 * The size budget of a signal: every string an attacker can influence (a username, a request URI,
 * a label, an attribute) is cut to a documented length before the signal leaves detection, and the
 * signal as a whole always fits one bus message. Connectors cut what they know to be long already;
 * this is the guarantee that holds whatever a connector forgot, so an 11 MB username costs a few
 * hundred bytes in every signal, incident, log line and API answer derived from it.
 *
 * A cut string ends in a marker that says how much was cut and a digest of the whole, so two long
 * names that share a prefix stay two names (an actor key is a merge key: without the digest, every
 * 11 MB username with the same first 256 characters would be one actor).
 */
import { createHash } from 'node:crypto';
import { boundedRedactedCopy, type Bounds } from './redact.js';
import type { Signal } from './signal.js';

/** The documented limits (docs/architecture.md, "Budgets"). */
export const SIGNAL_BUDGET = {
  /** Names: actor name and key parts, namespace, target fields. Kubernetes names are at most 253 characters. */
  name: 256,
  /** Entity keys: a valid Kubernetes key is at most about 350 characters (a 63-character namespace, a 253-character name). */
  entityKey: 360,
  /** Entities per signal. */
  entities: 64,
  /** Attribute values, and the number of attributes. */
  attributeValue: 1024,
  attributes: 32,
  /** MITRE technique ids per signal. */
  mitre: 16,
  /** Matched conditions per signal. */
  matched: 32,
  /** Attributes an incident's timeline entry keeps of its signal, and the length of each value. */
  entryAttributes: 24,
  entryAttributeValue: 256,
  /** The evidence excerpt, as JSON. */
  excerptBytes: 16 * 1024,
  /** The whole signal, as JSON: far below the bus's message limit ({@link BUS_MAX_MESSAGE_BYTES}). */
  signalBytes: 64 * 1024,
} as const;

/**
 * The largest message kubevigil writes to Kafka, and the `max.message.bytes` it sets on the topics it
 * creates (the broker's default, 1 MiB plus the batch overhead, made explicit so that a broker with a
 * smaller default does not refuse what detection produced).
 */
export const BUS_MAX_MESSAGE_BYTES = 1_048_576;

/** A string cut to `max` characters with a marker naming what was cut and a digest of the whole; unchanged when short enough. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const digest = createHash('sha256').update(s).digest('hex').slice(0, 12);
  // Copied, not sliced: a V8 slice would keep the attacker's megabytes alive as long as the name lives.
  return Buffer.from(`${s.slice(0, max)}…[+${s.length - max} chars ${digest}]`, 'utf8').toString('utf8');
}

function cutOpt(s: string | undefined, max: number): string | undefined {
  return s === undefined || typeof s !== 'string' ? s : cut(s, max);
}

/** Progressively smaller excerpt bounds, tried in order until the excerpt fits its byte budget. */
const EXCERPT_STEPS: Bounds[] = [
  { maxString: 256, maxArray: 8, maxKeys: 24, maxDepth: 5 },
  { maxString: 128, maxArray: 4, maxKeys: 16, maxDepth: 3 },
  { maxString: 64, maxArray: 2, maxKeys: 8, maxDepth: 2 },
];

function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
}

/** The excerpt within {@link SIGNAL_BUDGET.excerptBytes}: copied again with tighter bounds until it fits, then replaced by a note. */
export function boundExcerpt(excerpt: Record<string, unknown>, max: number = SIGNAL_BUDGET.excerptBytes): Record<string, unknown> {
  const size = jsonBytes(excerpt);
  if (size <= max) return excerpt;
  for (const bounds of EXCERPT_STEPS) {
    const copy = boundedRedactedCopy(excerpt, bounds) as Record<string, unknown>;
    if (jsonBytes(copy) + 64 <= max) return { ...copy, '…excerpt': `cut from ${size} bytes to the ${max}-byte budget` };
  }
  return { '…excerpt': `omitted: ${size} bytes, over the ${max}-byte budget` };
}

/** What {@link boundSignal} had to cut, for the dropped-items metric. */
export interface BudgetStats {
  /** Signals in which at least one string or list was cut. */
  cutSignals: number;
}

/**
 * The signal within the size budget. Returns the signal itself when nothing is over (the common
 * case costs a few length checks), otherwise a copy with the long parts cut.
 */
export function boundSignal(s: Signal, stats?: BudgetStats): Signal {
  const B = SIGNAL_BUDGET;
  let over =
    s.actor.key.length > B.entityKey ||
    s.actor.name.length > B.name ||
    (s.actor.namespace?.length ?? 0) > B.name ||
    s.entities.length > B.entities ||
    s.mitre.length > B.mitre ||
    s.matched.length > B.matched;
  if (!over) for (const v of Object.values(s.target)) if (typeof v === 'string' && v.length > B.name) over = true;
  if (!over) for (const e of s.entities) if (e.length > B.entityKey) over = true;
  let attrCount = 0;
  if (!over)
    for (const k in s.attributes) {
      if (++attrCount > B.attributes || k.length > B.name || (s.attributes[k]?.length ?? 0) > B.attributeValue) {
        over = true;
        break;
      }
    }
  let out = s;
  if (over) {
    const attributes: Record<string, string> = {};
    let n = 0;
    for (const [k, v] of Object.entries(s.attributes)) {
      if (n++ >= B.attributes) break;
      attributes[cut(k, B.name)] = cut(String(v), B.attributeValue);
    }
    const target: Signal['target'] = {};
    for (const [k, v] of Object.entries(s.target) as [keyof Signal['target'], string | undefined][]) if (v !== undefined) target[k] = cut(v, B.name);
    const namespace = cutOpt(s.actor.namespace, B.name);
    out = {
      ...s,
      actor: { ...s.actor, key: cut(s.actor.key, B.entityKey), name: cut(s.actor.name, B.name), ...(namespace !== undefined ? { namespace } : {}) },
      target,
      entities: s.entities.slice(0, B.entities).map((e) => cut(e, B.entityKey)),
      mitre: s.mitre.slice(0, B.mitre),
      matched: s.matched.slice(0, B.matched),
      attributes,
    };
  }
  // The common case, one serialization: a signal within the excerpt budget has its excerpt (a part
  // of it) within that budget too, and is within the (larger) signal budget.
  if (out === s && B.excerptBytes <= B.signalBytes && jsonBytes(s) <= B.excerptBytes) return s;
  const excerpt = boundExcerpt(out.excerpt);
  if (excerpt !== out.excerpt) out = { ...out, excerpt };
  // The parts are bounded; the whole is checked once more, so that no combination of parts at their
  // limits can exceed the bus limit: the evidence goes first, then the tail of the lists.
  if (jsonBytes(out) > B.signalBytes) {
    out = { ...out, excerpt: { '…excerpt': 'omitted: the signal was over its byte budget' }, matched: out.matched.map((m) => ({ ...m, actual: '…' })) };
    if (jsonBytes(out) > B.signalBytes)
      out = { ...out, entities: out.entities.slice(0, 16), attributes: Object.fromEntries(Object.entries(out.attributes).slice(0, 16)) };
  }
  if (out !== s && stats) stats.cutSignals++;
  return out;
}

/**
 * The attributes a timeline entry keeps: an incident holds up to 200 entries, so each keeps less of
 * its signal than the signal itself (the stored signal keeps the rest). Unchanged when within bounds.
 */
export function boundEntryAttributes(a: Record<string, string>): Record<string, string> {
  let n = 0;
  let over = false;
  for (const k in a) if (++n > SIGNAL_BUDGET.entryAttributes || (a[k]?.length ?? 0) > SIGNAL_BUDGET.entryAttributeValue) over = true;
  if (!over) return a;
  const out: Record<string, string> = {};
  n = 0;
  for (const [k, v] of Object.entries(a)) {
    if (n++ >= SIGNAL_BUDGET.entryAttributes) break;
    out[k] = cut(v, SIGNAL_BUDGET.entryAttributeValue);
  }
  return out;
}
