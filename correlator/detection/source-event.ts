import type { Actor } from '../entities.js';
import type { Outcome, SourceName, Target } from '../signal.js';

/**
 * One event from a source, normalized by its connector: what detection rules match on and what a
 * signal is built from. Connectors produce these; detection never sees a wire format.
 */
export interface SourceEvent {
  source: SourceName;
  /** Unique per source event (for audit: `<auditID>/<stage>`); feeds the deterministic signal id. */
  key: string;
  /** Event time, ms since epoch. */
  time: number;
  /** Receive time, ms since epoch. */
  observedTime: number;
  /** The event as the source sent it; rule field paths resolve here by default. */
  raw: unknown;
  /** Fields the connector computed (decision, actor, parsed annotations); may be lazy getters. */
  derived: object;
  /** False for events that carry no outcome yet (audit stage RequestReceived); rules skip them. */
  final: boolean;
  actor: Actor;
  target: Target;
  outcome: Outcome;
  entities: string[];
  attributes: Record<string, string>;
  /** A bounded, redacted excerpt, built only when a signal needs it. */
  excerpt(): Record<string, unknown>;
}

/** What detection needs to know about a source to compile rules for it. */
export interface SourceSchema {
  name: SourceName;
  /** Top-level field names resolved against {@link SourceEvent.derived} instead of the raw event. */
  derived: readonly string[];
  /** A raw field most rules test with `eq`/`in` (audit: `objectRef.resource`); rules are indexed on it. */
  indexField?: string;
}
