/**
 * The interfaces the core needs from the outside world. `services/` implements them; the core and
 * the connectors depend only on these, so the same code runs embedded, distributed and in tests.
 */
import type { SourceEvent } from './detection/source-event.js';
import type { Signal } from './signal.js';

/** Hands signals to the bus. Resolves only once they are safely handed over (acknowledged). */
export interface SignalPublisher {
  publish(signals: readonly Signal[]): Promise<void>;
}

/** What a receiver reports after handing a batch on. */
export interface IngestOutcome {
  signals: number;
}

/** Detection plus publication, as a connector's receiver sees it. */
export interface IngestSink {
  /** Detects and publishes; rejects (with a retryable error) when the bus cannot take the batch. */
  ingest(events: readonly SourceEvent[]): Promise<IngestOutcome>;
}

/** A clock, so windows and sweeps can be driven by a fake one in tests. */
export interface Clock {
  now(): number;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** One permission an identity used legitimately (outside the attack), as audit2rbac collects it. */
export interface PermissionUse {
  namespace?: string;
  apiGroup: string;
  resource: string;
  subresource?: string;
  verb: string;
  count: number;
}

/** What an identity did legitimately (allowed requests), for least-privilege suggestions. */
export interface UsageSource {
  usage(actorKey: string): PermissionUse[];
}
