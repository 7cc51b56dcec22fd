/**
 * The one interface every destination implements. The dispatcher claims a lane's due items from the
 * outbox and hands them to the lane's sink; the sink sends what it can and says, per item, whether it
 * is done, should be retried, or failed for good. Items it leaves without an outcome wait for the
 * lane's next turn (pacing).
 */
import type { Incident } from '../../correlator/incident.js';
import type { Logger } from '../logging.js';
import type { IncidentStore, OutboxItem } from '../store/store.js';
import { mergeChanges, type IncidentChange } from './changes.js';
import { DeliveryError } from './errors.js';
import type { NotifierMetrics, SinkKind } from './metrics.js';

/** What an outbox item carries: the incident version and how it changed since its last notification. */
export interface Notification {
  incident: Incident;
  change: IncidentChange;
}

/** A claimed outbox item with its payload read. */
export interface Claimed extends OutboxItem {
  notification: Notification;
}

/** What became of one item. */
export type Outcome =
  { status: 'done'; note?: 'superseded' | 'digest' } | { status: 'retry'; error: DeliveryError } | { status: 'failed'; error: DeliveryError };

/** A sink's answer for a batch: outcomes by item `seq`, and how many requests it made (for pacing). */
export interface DeliveryResult {
  outcomes: Map<number, Outcome>;
  requests: number;
}

/** What a sink may use while delivering. */
export interface DeliveryContext {
  now(): number;
  /** Per-message state (Slack channel and ts), kept in the store. */
  state: Pick<IncidentStore, 'getState' | 'setState'>;
  metrics: NotifierMetrics;
  logger: Logger;
}

/** A destination of notifications. */
export interface Sink {
  /** Stable across restarts; stored with each outbox item (`slack:#security`, `webhook:3f2a9c…`). */
  readonly id: string;
  /** The metric label. */
  readonly kind: SinkKind;
  /** Items of one lane are delivered in order and paced together. */
  readonly lane: string;
  /** Minimum time between two requests in the lane. */
  readonly minIntervalMs: number;
  /** Whether this sink should get the incident (routing); sinks that already got it keep getting its updates. */
  wants(inc: Incident): boolean;
  /** Delivers some or all of the lane's claimed items, oldest first. */
  deliver(items: Claimed[], ctx: DeliveryContext): Promise<DeliveryResult>;
}

/**
 * Keeps the newest version of each incident, its change merged with the older ones' (so evidence
 * they carried is not lost), and lists the older ones as superseded.
 */
export function newestPerIncident(items: readonly Claimed[]): { latest: Claimed[]; superseded: Claimed[] } {
  const newest = new Map<string, Claimed>();
  const superseded: Claimed[] = [];
  for (const item of [...items].sort((a, b) => a.version - b.version)) {
    const prev = newest.get(item.incidentId);
    if (prev) superseded.push(prev);
    newest.set(
      item.incidentId,
      prev ? { ...item, notification: { ...item.notification, change: mergeChanges(prev.notification.change, item.notification.change) } } : item,
    );
  }
  const order = new Map(items.map((i, n) => [i.incidentId, n]));
  const latest = [...newest.values()].sort((a, b) => order.get(a.incidentId)! - order.get(b.incidentId)!);
  return { latest, superseded };
}

/** The outcome of a thrown error: retry when the error says so. */
export function outcomeOf(err: unknown): Outcome {
  const error =
    err instanceof DeliveryError
      ? err
      : new DeliveryError('INTERNAL', `delivery failed: ${err instanceof Error ? err.message : String(err)}`, true, 'internal');
  return error.retryable ? { status: 'retry', error } : { status: 'failed', error };
}
