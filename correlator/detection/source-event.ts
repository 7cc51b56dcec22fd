import type { Actor } from '../entities.js';
import type { Outcome, SourceName, Target } from '../signal.js';

/**
 * One event from a source, normalized by its connector: what detection rules match on and what a
 * signal is built from. Connectors produce these; detection never sees a wire format. Only the
 * fields rules need are eager; everything a signal needs is in {@link details}, computed only for
 * the few events that match a rule.
 */
export interface SourceEvent {
  readonly source: SourceName;
  /** Unique per source event (for audit: `<auditID>/<stage>`); feeds the deterministic signal id. */
  readonly key: string;
  /**
   * Shared by every record of one request (for audit: the auditID, which exec, attach and
   * port-forward carry at two stages). Signal ids are built from it, so one request raises each rule
   * once: the second stage's signal is a duplicate the incident manager drops. Defaults to {@link key}.
   */
  readonly requestKey?: string;
  /** Receive time, ms since epoch. */
  readonly observedTime: number;
  /** The event as the source sent it; rule field paths resolve here by default. */
  readonly raw: unknown;
  /** Fields the connector computed (decision, actor, parsed annotations); may be lazy getters. */
  readonly derived: object;
  /** False for events that carry no outcome yet (audit stage RequestReceived); rules skip them. */
  readonly final: boolean;
  /** Who, what, when and with which outcome; computed once, on first call. */
  details(): EventDetails;
}

/** The parts of a source event a signal is built from. */
export interface EventDetails {
  /** Event time, ms since epoch, from the source's own clock. */
  time: number;
  actor: Actor;
  target: Target;
  outcome: Outcome;
  entities: string[];
  attributes: Record<string, string>;
  /** A bounded, redacted excerpt of the source event. */
  excerpt: Record<string, unknown>;
}

/** What a field holds, as rule lint sees it: which operators fit it. `any` accepts every operator. */
export type FieldType = 'string' | 'number' | 'boolean' | 'string[]' | 'object' | 'any';

/** Every {@link FieldType}, for validation and docs. */
export const FIELD_TYPES: readonly FieldType[] = ['string', 'number', 'boolean', 'string[]', 'object', 'any'];

/**
 * One row of a source's field table (like Falco's field tables): what rules may reach and what it holds.
 * Array indexes and `[*]` are not part of a name: `sourceIPs[0]` is the field `sourceIPs`.
 */
export interface FieldSpec {
  /** A dotted path (`objectRef.resource`), or a prefix ending in `.*` for an open map (`labels.*`: any key, at any depth). */
  name: string;
  type: FieldType;
  /** One short sentence: what the field holds, for `docs/rule-fields.md` and lint messages. */
  description: string;
}

/** What detection needs to know about a source to compile rules for it. */
export interface SourceSchema {
  name: SourceName;
  /** Top-level field names resolved against {@link SourceEvent.derived} instead of the raw event. */
  derived: readonly string[];
  /** A raw field most rules test with `eq`/`in` (audit: `objectRef.resource`); rules are indexed on it. */
  indexField?: string;
  /**
   * More fields rules are indexed on, raw or derived (audit: `verb`, `actor.type`, `decision`): an
   * event meets only the rules whose `eq`/`in` literals admit all its values, so a read by a
   * controller skips the many rules about writes, people or denials. Keep them few and of small
   * cardinality; the candidate lists are cached per combination.
   */
  indexFields?: readonly string[];
  /**
   * Every field rules may use, raw and derived: rule lint rejects other paths and operators that do
   * not fit a field's type, and `docs/rule-fields.md` is generated from it.
   */
  fields: readonly FieldSpec[];
}
