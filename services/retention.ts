/**
 * Retention of the store (KUBEVIGIL_RETENTION_SIGNALS, KUBEVIGIL_RETENTION_INCIDENTS): on a node-cron
 * schedule, in the process that owns the store (the api role; embedded, the one process), resolved
 * incidents past their retention are deleted with their signals, and older signals of resolved
 * incidents; open and acknowledged incidents never are. The store's size on disk is a gauge.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../correlator/ports.js';
import { PollSchedule } from '../platform/schedule.js';
import type { Component } from './roles/lifecycle.js';
import type { Logger } from './logging.js';
import type { IncidentStore, PruneResult } from './store/store.js';

/** Hourly, off the hour (when other jobs tend to run). */
export const DEFAULT_RETENTION_SCHEDULE = '17 * * * *';

/** Options of {@link Retention}. */
export interface RetentionOptions {
  store: IncidentStore;
  /** How long signals and resolved incidents are kept (ms); 0 keeps them. */
  signalsMs: number;
  incidentsMs: number;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** node-cron schedule; `false` only registers the metrics (tests prune by hand with {@link Retention.prune}). */
  schedule?: string | false;
}

/** The retention job and the store-size gauge. */
export class Retention implements Component {
  readonly name = 'retention';
  private readonly job?: PollSchedule<PruneResult>;
  private readonly pruned: Counter<'what'>;

  constructor(private readonly o: RetentionOptions) {
    new Gauge({
      name: 'kubevigil_store_bytes',
      help: 'Bytes the incident store takes on disk (SQLite pages in use and free).',
      registers: [o.registry],
      async collect() {
        const bytes = await o.store.sizeBytes().catch(() => undefined);
        if (bytes !== undefined) this.set(bytes);
      },
    });
    this.pruned = new Counter({
      name: 'kubevigil_store_pruned_total',
      help: 'Incidents and signals deleted by retention (KUBEVIGIL_RETENTION_INCIDENTS, KUBEVIGIL_RETENTION_SIGNALS), by what.',
      labelNames: ['what'] as const,
      registers: [o.registry],
    });
    const schedule = o.schedule ?? DEFAULT_RETENTION_SCHEDULE;
    if (schedule !== false && (o.signalsMs > 0 || o.incidentsMs > 0)) this.job = new PollSchedule('retention', schedule, () => this.prune());
  }

  start(): void {
    this.job?.start();
  }

  /** Stops the schedule and waits for a prune in progress. */
  async stop(): Promise<void> {
    await this.job?.stop();
  }

  /** Prunes now, as of the clock's time; never rejects (a failure is logged and retried next time). */
  async prune(): Promise<PruneResult> {
    const now = this.o.clock.now();
    try {
      const r = await this.o.store.prune({
        ...(this.o.incidentsMs > 0 ? { incidentsResolvedBefore: now - this.o.incidentsMs } : {}),
        ...(this.o.signalsMs > 0 ? { signalsBefore: now - this.o.signalsMs } : {}),
      });
      this.pruned.inc({ what: 'incidents' }, r.incidents);
      this.pruned.inc({ what: 'signals' }, r.signals);
      if (r.incidents + r.signals > 0) this.o.logger.info({ ...r, bytes: await this.o.store.sizeBytes() }, 'store pruned');
      return r;
    } catch (err) {
      this.o.logger.error({ err }, 'store prune failed; retried on the next run');
      return { incidents: 0, signals: 0 };
    }
  }
}
