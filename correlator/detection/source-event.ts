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

/** What detection needs to know about a source to compile rules for it. */
export interface SourceSchema {
  name: SourceName;
  /** Top-level field names resolved against {@link SourceEvent.derived} instead of the raw event. */
  derived: readonly string[];
  /** A raw field most rules test with `eq`/`in` (audit: `objectRef.resource`); rules are indexed on it. */
  indexField?: string;
}
