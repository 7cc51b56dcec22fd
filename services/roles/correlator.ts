/**
 * The correlator role: signals from the bus → incidents. Embedded, one {@link Correlator} over the
 * store; distributed, a {@link PartitionedCorrelator} per consumer-group member, its per-partition
 * state checkpointed in Redis and its window signals read back from the signals topic on takeover.
 * Either way one {@link Sweeper} resolves quiet incidents on the same schedule, and the role reports
 * the same metrics: signals correlated, incident updates, open incidents, and what the correlation
 * bounds dropped.
 */
import { PollSchedule } from '../../platform/schedule.js';
import { IdentityBaseline, StateBaselineStore, type BaselineStore } from '../../correlator/baseline.js';
import { RedisBaselineStore } from '../store/baseline-redis.js';
import { CorrelationEngine } from '../../correlator/correlation/engine.js';
import { IncidentManager } from '../../correlator/incidents.js';
import { isCommand, parseSignalsMessageWithoutEvidence } from '../bus/topics.js';
import { Correlator, type CorrelatorRuntime } from '../correlate.js';
import { PartitionedCorrelator, type SignalSource } from '../correlate-partitioned.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { connectRedis, RedisCorrelatorState, type CorrelatorStateStore } from '../store/correlator-state.js';
import type { Component } from './lifecycle.js';
import { incidentPublisher, type Stage } from './stage.js';

/** Options of the correlator role (test hooks of `serve()`). */
export interface CorrelatorRoleOptions {
  /** Correlator state instead of Redis (distributed mode tests). */
  correlatorState?: CorrelatorStateStore;
  /** node-cron schedule of the incident sweeper (default every minute); `false` disables it (tests sweep by hand). */
  sweepSchedule?: string | false;
  /** Where the identity baseline is kept instead of the store or Redis (tests). */
  baselineStore?: BaselineStore;
}

/** Runs the correlator of this process's mode. */
export class CorrelatorRole implements Component {
  readonly name = 'correlator';
  /** The embedded correlator (embedded mode). */
  correlator?: Correlator;
  /** The distributed correlator (Kafka mode). */
  partitioned?: PartitionedCorrelator;
  private state?: CorrelatorStateStore;
  private unsubscribe?: () => Promise<void>;
  private sweeper?: Sweeper;
  /** What each identity does routinely; saved on every sweep and at stop. */
  readonly baseline = new IdentityBaseline();
  private baselineStore?: BaselineStore;
  private closeBaselineStore?: () => Promise<void>;

  constructor(
    private readonly s: Stage,
    private readonly opts: CorrelatorRoleOptions = {},
  ) {}

  async start(): Promise<void> {
    const runtime = this.s.distributed ? await this.startDistributed() : await this.startEmbedded();
    reportMetrics(runtime, this.s.metrics);
    this.s.metrics.trackDrops('correlation', 'baseline_evicted', () => this.baseline.evicted);
    if (this.opts.sweepSchedule !== false) {
      const sweepAndSave = { sweep: () => runtime.sweep().finally(() => this.saveBaseline()) };
      this.sweeper = new Sweeper(sweepAndSave, this.opts.sweepSchedule ?? '* * * * *', this.s.logger);
      this.sweeper.start();
    }
  }

  /** Loads the baseline; a store that cannot be read leaves it empty (it is relearned, and only ever lowers severity). */
  private async loadBaseline(store: BaselineStore): Promise<void> {
    this.baselineStore = store;
    try {
      this.baseline.restore(await store.load());
    } catch (err) {
      this.s.logger.warn({ err }, 'identity baseline could not be loaded; starting empty');
    }
  }

  /** Saves what the baseline learned since the last save; a failure keeps nothing back but is logged. */
  async saveBaseline(): Promise<void> {
    const changes = this.baseline.takeChanges();
    if (!changes.size || !this.baselineStore) return;
    try {
      await this.baselineStore.save(changes);
    } catch (err) {
      this.s.logger.warn({ err, entries: changes.size }, 'identity baseline could not be saved');
    }
  }

  /** Stops sweeping, then consuming (a distributed correlator checkpoints what it applied), then waits for work in progress. */
  async stop(): Promise<void> {
    await this.sweeper?.stop();
    await this.unsubscribe?.();
    await this.correlator?.stop();
    await this.saveBaseline();
    await this.closeBaselineStore?.();
    await this.state?.close();
  }

  ready(): Promise<boolean> {
    return this.state ? this.state.ready() : Promise.resolve(true);
  }

  private async startEmbedded(): Promise<CorrelatorRuntime> {
    const { s } = this;
    const manager = new IncidentManager(new CorrelationEngine(s.rules.correlations), s.clock, {}, s.usage);
    await this.loadBaseline(this.opts.baselineStore ?? new StateBaselineStore(s.store));
    manager.baseline = this.baseline;
    if (s.inventory) manager.inventory = s.inventory;
    const c = new Correlator(manager, s.store, incidentPublisher(s), s.logger, s.metrics);
    this.correlator = c;
    const resumed = await c.restore();
    if (resumed) s.logger.info({ resumed }, 'open incidents resumed');
    this.unsubscribe = s.bus.subscribe(s.topics.signals, 'correlator', (batch) => c.handle(batch.flatMap((m) => (isCommand(m.value) ? [] : [m.value]))));
    return c;
  }

  private async startDistributed(): Promise<CorrelatorRuntime> {
    const { s } = this;
    if (this.opts.baselineStore) await this.loadBaseline(this.opts.baselineStore);
    else {
      const redis = connectRedis(s.config.redisUrl!, (err) => s.logger.debug({ err }, 'redis connection error'));
      this.closeBaselineStore = () =>
        redis.quit().then(
          () => undefined,
          () => redis.disconnect(),
        );
      await this.loadBaseline(new RedisBaselineStore(redis, s.config.topicPrefix));
    }
    const state =
      this.opts.correlatorState ??
      new RedisCorrelatorState(
        connectRedis(s.config.redisUrl!, (err) => s.logger.debug({ err }, 'redis connection error')),
        s.config.topicPrefix,
        () => s.clock.now(),
      );
    this.state = state;
    const kafka = s.kafka;
    // Window signals are checkpointed as offsets on the signals topic and read back from it on takeover.
    const source: SignalSource | undefined = kafka && {
      read: (partition, offsets) => kafka.read(s.topics.signals, partition, offsets, { parse: parseSignalsMessageWithoutEvidence }),
    };
    const p = new PartitionedCorrelator({
      correlations: s.rules.correlations,
      state,
      publish: incidentPublisher(s),
      clock: s.clock,
      logger: s.logger,
      metrics: s.metrics,
      usage: s.usage,
      baseline: this.baseline,
      ...(s.inventory ? { inventory: s.inventory } : {}),
      ...(source ? { source } : {}),
    });
    this.partitioned = p;
    // Checkpointed: batches are applied in memory and one checkpoint covers many of them while a backlog drains.
    this.unsubscribe = s.bus.subscribe(s.topics.signals, 'correlator', (batch) => p.apply(batch), {
      checkpointing: { flush: (partition) => p.flush(partition), assigned: (partitions) => p.assigned(partitions) },
      // Windows keep signals without their evidence: parse only the part before it.
      parse: parseSignalsMessageWithoutEvidence,
    });
    return p;
  }
}

/**
 * The metrics both runtimes report beyond what they count themselves (signals correlated, incident
 * updates): the incidents open here, by severity, and what the correlation bounds dropped.
 */
function reportMetrics(runtime: CorrelatorRuntime, metrics: Metrics): void {
  metrics.onScrape(() => {
    metrics.openIncidents.reset();
    for (const i of runtime.openIncidents()) metrics.openIncidents.inc({ severity: i.severity });
  });
  metrics.trackDrops('correlation', 'group_evicted', () => runtime.engineStats().evictedGroups);
  metrics.trackDrops('correlation', 'window_full', () => runtime.engineStats().evictedEntries);
  metrics.trackDrops('correlation', 'too_late', () => runtime.engineStats().lateDropped);
}

/** Resolves quiet and over-age incidents on a node-cron schedule, one sweep at a time. */
export class Sweeper {
  private readonly schedule: PollSchedule<void>;

  constructor(runtime: Pick<CorrelatorRuntime, 'sweep'>, cron: string, logger: Logger) {
    // A failed sweep is logged; the next one tries again.
    this.schedule = new PollSchedule('incident-sweeper', cron, () =>
      runtime.sweep().then(
        () => undefined,
        (err: unknown) => logger.error({ err }, 'incident sweep failed'),
      ),
    );
  }

  start(): void {
    this.schedule.start();
  }

  /** Sweeps now, or joins the sweep in progress. */
  sweepNow(): Promise<void> {
    return this.schedule.pollOnce();
  }

  /** Stops the schedule and waits for a sweep in progress. */
  stop(): Promise<void> {
    return this.schedule.stop();
  }
}
