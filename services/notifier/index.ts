/**
 * The notifier role: incident versions from the incidents topic → what changed since the last
 * notification → the durable outbox (one entry per sink) → the dispatcher, which delivers through
 * the sinks the configuration declares. Sinks come from a registry of factories, one per kind.
 */
import type { Registry } from 'prom-client';
import type { Incident } from '../../correlator/incident.js';
import { severityRank } from '../../correlator/severity.js';
import type { Logger } from '../logging.js';
import type { IncidentStore, OutboxEntry } from '../store/store.js';
import { AlertmanagerSink } from './alertmanager.js';
import { describeChange, snapshotOf, type NotifiedSnapshot } from './changes.js';
import type { NotifierConfig } from './config.js';
import { Dispatcher, systemScheduler, type Scheduler } from './dispatcher.js';
import { NotifierMetrics } from './metrics.js';
import { configuredChannels } from './routing.js';
import type { Notification, Sink } from './sink.js';
import { SlackBotSink, slackClient } from './slack/bot.js';
import type { FormatOptions } from './slack/format.js';
import { SlackWebhookSink } from './slack/webhook.js';
import { WebhookSink } from './webhook/sink.js';

/** What {@link startNotifier} needs. */
export interface NotifierDeps {
  config: NotifierConfig;
  /** Keeps the outbox and each incident's notification state. */
  store: IncidentStore;
  logger: Logger;
  /** Where the notifier's counters are registered (the process's `Metrics.registry`). */
  registry: Registry;
  /** Time and timers; tests pass a manual one. */
  scheduler?: Scheduler;
}

/** A running notifier. */
export interface Notifier {
  /** Queues what these incident versions need to say; resolves once it is in the outbox (then the bus may acknowledge). */
  handle(incidents: Incident[]): Promise<void>;
  /** Stops delivering; waits for requests in flight. Undelivered notifications stay in the outbox for the next start. */
  stop(): Promise<void>;
  readonly sinks: readonly Sink[];
  readonly dispatcher: Dispatcher;
  readonly metrics: NotifierMetrics;
}

type SinkFactory = (config: NotifierConfig, deps: NotifierDeps, format: FormatOptions) => Sink[];

/** Every kind of sink, each building its sinks from the configuration (none when it is not configured). */
const SINK_FACTORIES: readonly SinkFactory[] = [
  (c, deps, format) => {
    const slack = c.slackBot;
    if (!slack) return [];
    const client = slackClient(slack, deps.logger, c.delivery.requestTimeoutMs);
    // Buttons in bot messages only: a webhook's message cannot be edited to show what a click did.
    const botFormat: FormatOptions = c.slackButtons ? { ...format, actions: true } : format;
    return configuredChannels(slack).map((ch) => new SlackBotSink(ch, client, slack, botFormat, c.delivery.digestThreshold, c.delivery.slackIntervalMs));
  },
  (c, _deps, format) =>
    c.slackWebhookUrl
      ? [new SlackWebhookSink(c.slackWebhookUrl, format, c.delivery.digestThreshold, c.delivery.slackIntervalMs, c.delivery.requestTimeoutMs)]
      : [],
  (c) => c.webhooks.urls.map((url) => new WebhookSink(url, c.webhooks.secret, c.delivery.requestTimeoutMs)),
  (c) => (c.alertmanagerUrl ? [new AlertmanagerSink(c.alertmanagerUrl, c.delivery.requestTimeoutMs, c.apiBaseUrl)] : []),
];

/** The state key of what was last notified of an incident. */
export const snapshotKey = (incidentId: string): string => `notifier.incident:${incidentId}`;

/** Builds the sinks the configuration names and starts delivering (work left in the outbox by a previous run first). */
export function startNotifier(deps: NotifierDeps): Notifier {
  const { config, store, logger } = deps;
  const scheduler = deps.scheduler ?? systemScheduler;
  const metrics = new NotifierMetrics(deps.registry);
  const format: FormatOptions = config.apiBaseUrl ? { apiBaseUrl: config.apiBaseUrl } : {};
  const sinks = SINK_FACTORIES.flatMap((f) => f(config, deps, format));
  const byId = new Map(sinks.map((s) => [s.id, s]));
  const dispatcher = new Dispatcher(byId, store, scheduler, config.delivery, metrics, logger);
  const minRank = severityRank(config.minSeverity);
  let chain: Promise<unknown> = Promise.resolve();

  const queue = async (incidents: Incident[]): Promise<void> => {
    let queued = 0;
    for (const inc of incidents) {
      const raw = await store.getState(snapshotKey(inc.id));
      const prev = raw === undefined ? undefined : (JSON.parse(raw) as NotifiedSnapshot);
      const outcome = await (async (): Promise<string> => {
        if (prev && inc.version <= prev.version) return 'stale';
        if (!prev && severityRank(inc.severity) < minRank) return 'below_min_severity';
        const change = describeChange(prev, inc);
        if (!change.material) return 'unchanged';
        // Sinks that had the incident keep getting it, wherever routing would send it now.
        const targets = sinks.filter((s) => prev?.sinks.includes(s.id) || s.wants(inc));
        if (targets.length === 0) return 'unrouted';
        const now = scheduler.now();
        const payload = JSON.stringify({ incident: inc, change } satisfies Notification);
        // A new incident waits a moment, so that a burst is seen whole and sent as one digest.
        const dueAt = change.kind === 'opened' ? now + config.delivery.groupWaitMs : now;
        const entries: OutboxEntry[] = targets.map((s) => ({ incidentId: inc.id, version: inc.version, sink: s.id, lane: s.lane, payload, dueAt }));
        await store.outbox.enqueue(entries, now);
        for (const s of targets) metrics.enqueued.inc({ sink: s.kind });
        // Written after the outbox: a crash in between re-enqueues the same entries, which the outbox ignores.
        await store.setState(snapshotKey(inc.id), JSON.stringify(snapshotOf(inc, [...new Set([...(prev?.sinks ?? []), ...targets.map((s) => s.id)])])));
        queued++;
        return 'queued';
      })();
      metrics.incidents.inc({ outcome });
    }
    if (queued > 0) dispatcher.kick();
  };

  dispatcher.start();
  logger.info(
    { sinks: sinks.map((s) => s.id), minSeverity: config.minSeverity },
    sinks.length ? 'notifier started' : 'notifier started without sinks: nothing is configured',
  );
  return {
    handle(incidents) {
      const run = chain.then(() => queue(incidents));
      chain = run.catch(() => undefined);
      return run;
    },
    async stop() {
      await chain;
      await dispatcher.stop();
    },
    sinks,
    dispatcher,
    metrics,
  };
}

export { loadNotifierConfig, NOTIFIER_SETTINGS, type NotifierConfig } from './config.js';
export { verifySignature } from './webhook/signature.js';
