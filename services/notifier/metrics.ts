/**
 * The notifier's counters, registered on the registry it is given (the process's `Metrics.registry`
 * in `serve`). Labels are fixed and bounded: the sink *kind*, never a channel or URL.
 */
import { Counter, type Registry } from 'prom-client';

/** Kinds of sink, the `sink` label of every notifier metric. */
export type SinkKind = 'slack' | 'slack_webhook' | 'webhook' | 'alertmanager';

/** Counters of received incident versions, queued notifications, messages sent, retries, failures and coalesced items. */
export class NotifierMetrics {
  /** Incident versions the notifier received, by what it did with them. */
  readonly incidents: Counter<'outcome'>;
  /** Notifications written to the outbox. */
  readonly enqueued: Counter<'sink'>;
  /** Requests that succeeded, by sink and what they were (post, update, reply, digest, webhook, alert). */
  readonly sent: Counter<'sink' | 'kind'>;
  /** Attempts that failed and will be retried. */
  readonly retries: Counter<'sink' | 'reason'>;
  /** Notifications given up on. */
  readonly failed: Counter<'sink' | 'reason'>;
  /** Notifications finished without a request of their own (a newer version or a digest covered them). */
  readonly coalesced: Counter<'sink' | 'reason'>;
  /** Shorter or new messages sent because Slack refused the first form. */
  readonly fallbacks: Counter<'sink' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.incidents = new Counter({
      name: 'kubevigil_notifier_incidents_total',
      help: 'Incident versions received by the notifier, by outcome (queued, unchanged, stale, below_min_severity, unrouted).',
      labelNames: ['outcome'],
      registers,
    });
    this.enqueued = new Counter({
      name: 'kubevigil_notifier_enqueued_total',
      help: 'Notifications written to the outbox, by sink kind.',
      labelNames: ['sink'],
      registers,
    });
    this.sent = new Counter({
      name: 'kubevigil_notifier_sent_total',
      help: 'Requests delivered, by sink kind and request kind.',
      labelNames: ['sink', 'kind'],
      registers,
    });
    this.retries = new Counter({
      name: 'kubevigil_notifier_retries_total',
      help: 'Delivery attempts that failed and will be retried, by sink kind and reason.',
      labelNames: ['sink', 'reason'],
      registers,
    });
    this.failed = new Counter({
      name: 'kubevigil_notifier_failed_total',
      help: 'Notifications given up on, by sink kind and reason.',
      labelNames: ['sink', 'reason'],
      registers,
    });
    this.coalesced = new Counter({
      name: 'kubevigil_notifier_coalesced_total',
      help: 'Notifications covered by a newer version or a digest instead of a request of their own.',
      labelNames: ['sink', 'reason'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'kubevigil_notifier_fallbacks_total',
      help: 'Shorter or new messages sent because Slack refused the first form, by reason.',
      labelNames: ['sink', 'reason'],
      registers,
    });
  }
}
