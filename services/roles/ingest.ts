/**
 * The ingest role: the sink behind the receivers (detection → signals topic) and the pollers that
 * feed it (Loki LogQL, Tempo TraceQL). The serious signals are logged once, by the process that
 * detected them, after the bus acknowledged them.
 */
import { Detector } from '../../correlator/detection/engine.js';
import { IdentityResolver } from '../../correlator/identity.js';
import type { SignalPublisher } from '../../correlator/ports.js';
import { LokiPoller } from '../../connectors/loki/poller.js';
import { TempoPoller } from '../../connectors/otlp/tempo-poller.js';
import { busPublisher, IngestPipeline } from '../ingest.js';
import { SCHEMAS } from '../rules.js';
import type { Component } from './lifecycle.js';
import type { Stage } from './stage.js';

/** Something polled on a schedule. */
interface Poller {
  start(): void;
  stop(): Promise<void>;
}

/** Detection and publication of signals, and the pollers. */
export class IngestRole implements Component {
  readonly name = 'ingest';
  /** Where receivers and pollers hand their events. */
  readonly sink: IngestPipeline;
  private readonly pollers: Poller[] = [];
  private readonly started: Poller[] = [];

  constructor(s: Stage) {
    const { config, logger, metrics } = s;
    const detector = new Detector(s.rules.rules, SCHEMAS, { minSeverity: config.minSeverity });
    const identity = new IdentityResolver(s.clock);
    metrics.trackDrops('identity', 'evicted', () => identity.stats.evicted);
    const toBus = busPublisher(s.bus, s.topics.signals);
    const publisher: SignalPublisher = {
      publish: async (signals) => {
        await toBus.publish(signals);
        for (const sig of signals)
          if (sig.severity === 'high' || sig.severity === 'critical')
            logger.warn(
              { signal: { id: sig.id, kind: sig.kind, severity: sig.severity, rule: sig.rule.id, actor: sig.actor.key }, attacker: { title: sig.title } },
              'signal',
            );
      },
    };
    const sink = new IngestPipeline(detector, publisher, metrics, s.usage, identity);
    this.sink = sink;
    // Pollers keep where they got to in the store's state.
    const state = { get: (k: string) => s.store.getState(k), set: (k: string, v: string) => s.store.setState(k, v) };

    if (config.lokiPoller) {
      const lp = config.lokiPoller;
      this.pollers.push(
        new LokiPoller({
          url: lp.url,
          queries: lp.queries,
          sink,
          state,
          ...(lp.tenant ? { tenant: lp.tenant } : {}),
          ...(lp.schedule ? { schedule: lp.schedule } : {}),
          ...(lp.token ? { headers: { authorization: `Bearer ${lp.token}` } } : {}),
          stats: {
            lines: (outcome, n) => n && metrics.pollerItems.inc({ source: 'loki', outcome }, n),
            error: (reason) => metrics.pollerErrors.inc({ source: 'loki', reason }),
            poll: (ok) => metrics.pollerPolls.inc({ source: 'loki', outcome: ok ? 'ok' : 'error' }),
          },
          // Loki's answer may quote the query or the attacker's log lines: under its own key.
          onError: (query, reason, message) => logger.warn({ source: 'loki', query, reason, upstream: { message: message.slice(0, 500) } }, 'loki poll failed'),
        }),
      );
    }

    if (config.tempoPoller) {
      const tp = config.tempoPoller;
      const headers: Record<string, string> = {};
      if (tp.tenant) headers['X-Scope-OrgID'] = tp.tenant;
      if (tp.token) headers.authorization = `Bearer ${tp.token}`;
      this.pollers.push(
        new TempoPoller({
          url: tp.url,
          queries: tp.queries,
          sink,
          state,
          headers,
          ...(tp.schedule ? { schedule: tp.schedule } : {}),
          stats: {
            polls: (outcome) => metrics.pollerPolls.inc({ source: 'otlp', outcome }),
            spans: (outcome, n) => n && metrics.pollerItems.inc({ source: 'otlp', outcome }, n),
            errors: (reason, n = 1) => metrics.pollerErrors.inc({ source: 'otlp', reason }, n),
          },
          onError: (reason, detail) => logger.warn({ source: 'otlp', reason, upstream: { message: detail.slice(0, 500) } }, 'tempo poll failed'),
        }),
      );
    }
  }

  start(): void {
    for (const p of this.pollers) {
      p.start();
      this.started.push(p);
    }
  }

  /** Stops the pollers, last started first, each waiting for its poll in progress. */
  async stop(): Promise<void> {
    for (const p of this.started.splice(0).reverse()) await p.stop();
  }
}
