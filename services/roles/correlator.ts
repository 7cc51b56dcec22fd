/**
 * The correlator role: signals from the bus → incidents. Embedded, one {@link Correlator} over the
 * store; distributed, a {@link PartitionedCorrelator} per consumer-group member, its per-partition
 * state checkpointed in Redis and its window signals read back from the signals topic on takeover
 * (a checkpoint Redis lost is rebuilt from the signals and incidents topics).
 * Either way one {@link Sweeper} resolves quiet incidents on the same schedule, and the role reports
 * the same metrics: signals correlated, incident updates, open incidents, and what the correlation
 * bounds dropped.
 */
import { hostname } from 'node:os';
import { PollSchedule } from '../../platform/schedule.js';
import { IdentityBaseline, StateBaselineStore, type BaselineStore } from '../../correlator/baseline.js';
import { RedisBaselineStore } from '../store/baseline-redis.js';
import { CorrelationEngine, type CorrelationLimits } from '../../correlator/correlation/engine.js';
import type { CompiledCorrelation } from '../../correlator/correlation/rules.js';
import { IncidentManager, type BudgetUse, type IncidentPolicy } from '../../correlator/incidents.js';
import type { Incident } from '../../correlator/incident.js';
import { withJson, type BusMessage } from '../bus/bus.js';
import type { KafkaBus } from '../bus/kafka.js';
import { ThreadedCorrelator, rawSignals, type RawSignal } from '../correlate-threads.js';
import type { WorkerScript } from '../workers/script.js';
import { systemClock } from '../../correlator/ports.js';
import { standaloneReadBack, type ReadBack } from '../bus/kafka/read-back.js';
import type { KafkaCheckpointing } from '../bus/kafka/subscription.js';
import { consumerGroupId, isCommand, parseSignalsMessageWithoutEvidence, type SignalsMessage, type Topic } from '../bus/topics.js';
import { Correlator, type CorrelatorRuntime } from '../correlate.js';
import { PartitionedCorrelator, type GroupCommit, type SignalHistory, type SignalSource } from '../correlate-partitioned.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { connectRedis, markedGeneration, RedisCorrelatorState, redisReady, type CorrelatorStateStore } from '../store/correlator-state.js';
import type { Component } from './lifecycle.js';
import { incidentPublisher, type Stage, type Topics } from './stage.js';

/** Options of the correlator role (test hooks of `serve()`). */
export interface CorrelatorRoleOptions {
  /** Correlator state instead of Redis (distributed mode tests). */
  correlatorState?: CorrelatorStateStore;
  /** node-cron schedule of the incident sweeper (default: KUBEVIGIL_SWEEP_SCHEDULE); `false` disables it (tests sweep by hand). */
  sweepSchedule?: string | false;
  /** Where the identity baseline is kept instead of the store or Redis (tests). */
  baselineStore?: BaselineStore;
  /** Another correlation worker script (tests: one that crashes). */
  correlatorWorkerScript?: WorkerScript;
}

/** Runs the correlator of this process's mode. */
export class CorrelatorRole implements Component {
  readonly name = 'correlator';
  /** The embedded correlator (embedded mode). */
  correlator?: Correlator;
  /** The distributed correlator (Kafka mode) on the event loop. */
  partitioned?: PartitionedCorrelator;
  /** The distributed correlator on worker threads (KUBEVIGIL_CORRELATOR_WORKERS). */
  threaded?: ThreadedCorrelator;
  private state?: CorrelatorStateStore;
  private unsubscribe?: () => Promise<void>;
  private sweeper?: Sweeper;
  /** What each identity does routinely; saved on every sweep and at stop. */
  readonly baseline = new IdentityBaseline();
  private baselineStore?: BaselineStore;
  private closeBaselineStore?: () => Promise<void>;
  /** Releases the Kafka client a distributed correlator reads its partitions' history with. */
  private closeHistory?: () => Promise<void>;

  constructor(
    private readonly s: Stage,
    private readonly opts: CorrelatorRoleOptions = {},
  ) {}

  private runtime?: Pick<CorrelatorRuntime, 'sweep' | 'budget'>;

  /** How much of the count budgets is in use (for /readyz); undefined until started. */
  budget(): BudgetUse | undefined {
    return this.runtime?.budget();
  }

  /** A rule reload: open correlation windows of correlations still there survive it (worker threads read the rule files again). */
  async replaceCorrelations(correlations: readonly CompiledCorrelation[]): Promise<{ kept: number; dropped: number }> {
    if (this.threaded) return this.threaded.reloadCorrelations();
    return (this.partitioned ?? this.correlator)?.replaceCorrelations(correlations) ?? { kept: 0, dropped: 0 };
  }

  async start(): Promise<void> {
    let runtime: Pick<CorrelatorRuntime, 'sweep' | 'budget'>;
    if (this.s.config.correlatorWorkers > 0 && !this.s.distributed)
      this.s.logger.warn('KUBEVIGIL_CORRELATOR_WORKERS applies to distributed mode (KAFKA_BROKERS) only; correlating on the event loop');
    if (this.threads() > 0) runtime = await this.startThreaded();
    else {
      const own = this.s.distributed ? await this.startDistributed() : await this.startEmbedded();
      // Worker threads report these themselves (their metrics are merged into each scrape).
      reportMetrics(own, this.s.metrics);
      runtime = own;
    }
    this.runtime = runtime;
    this.s.metrics.trackDrops('correlation', 'baseline_evicted', () => this.baseline.evicted);
    if (this.opts.sweepSchedule !== false) {
      const sweepAndSave = { sweep: () => runtime.sweep().finally(() => this.saveBaseline()) };
      this.sweeper = new Sweeper(sweepAndSave, this.opts.sweepSchedule ?? this.s.config.sweepSchedule, this.s.logger);
      this.sweeper.start();
    }
  }

  /** Loads the baseline from `store`, and saves it there from now on. */
  private async loadBaseline(store: BaselineStore): Promise<void> {
    this.baselineStore = store;
    await loadBaseline(this.baseline, store, this.s.logger);
  }

  /** Saves what the baseline learned since the last save. */
  async saveBaseline(): Promise<void> {
    if (this.baselineStore) await saveBaseline(this.baseline, this.baselineStore, this.s.logger);
  }

  /** Stops sweeping, then consuming (a distributed correlator checkpoints what it applied), then waits for work in progress. */
  async stop(): Promise<void> {
    await this.sweeper?.stop();
    await this.unsubscribe?.();
    await this.threaded?.stop();
    await this.closeHistory?.();
    await this.correlator?.stop();
    await this.saveBaseline();
    await this.closeBaselineStore?.();
    await this.state?.close();
  }

  ready(): Promise<boolean> {
    if (this.threaded) return this.threaded.ready();
    return this.state ? this.state.ready() : Promise.resolve(true);
  }

  private async startEmbedded(): Promise<CorrelatorRuntime> {
    const { s } = this;
    const b = s.config.budget;
    const manager = new IncidentManager(
      new CorrelationEngine(s.rules.correlations, { maxEntries: b.maxWindowEntries }),
      s.clock,
      { maxOpenIncidents: b.maxOpenIncidents, floodActors: b.floodActors },
      s.usage,
    );
    await this.loadBaseline(this.opts.baselineStore ?? new StateBaselineStore(s.store));
    manager.baseline = this.baseline;
    if (s.inventory) manager.inventory = s.inventory;
    if (s.silences) manager.silencer = s.silences.silencer;
    const c = new Correlator(manager, s.store, incidentPublisher(s), s.logger, s.metrics);
    this.correlator = c;
    const resumed = await c.restore();
    if (resumed) s.logger.info({ resumed }, 'open incidents resumed');
    this.unsubscribe = s.bus.subscribe(s.topics.signals, 'correlator', (batch) => c.handle(batch.flatMap((m) => (isCommand(m.value) ? [] : [m.value]))));
    return c;
  }

  /**
   * Correlation worker threads to run: KUBEVIGIL_CORRELATOR_WORKERS in distributed mode, unless a
   * test hook put state, a baseline store or a clock in this process (a thread cannot share them).
   */
  private threads(): number {
    const { s, opts } = this;
    if (!s.distributed || !s.kafka || opts.correlatorState || opts.baselineStore || s.clock !== systemClock) return 0;
    return s.config.correlatorWorkers;
  }

  private async startThreaded(): Promise<ThreadedCorrelator> {
    const { s } = this;
    const kafka = s.kafka!;
    const t = await ThreadedCorrelator.start({
      config: s.config,
      workers: this.threads(),
      logger: s.logger,
      metrics: s.metrics,
      // Written as JSON by the worker's checkpoint: sent as it is (the value only carries the key).
      publish: (items) =>
        s.bus.publish(
          s.topics.incidents,
          items.map((i) => ({ key: i.id, value: withJson({ id: i.id } as Incident, i.json) })),
        ),
      park: (partition, dead) => kafka.park(s.topics.signals as Topic<unknown>, partition, dead as Parameters<KafkaBus['park']>[2]),
      ...(s.silences ? { silences: s.silences } : {}),
      usage: s.usage,
      ...(this.opts.correlatorWorkerScript ? { script: this.opts.correlatorWorkerScript } : {}),
    });
    this.threaded = t;
    const checkpointing: KafkaCheckpointing = {
      flush: (partition) => t.flush(partition),
      assigned: (partitions) => t.assigned(partitions),
      commitMetadata: (partition) => t.commitMetadata(partition),
    };
    // The worker parses: the bus hands the messages over as bytes.
    this.unsubscribe = s.bus.subscribe(s.topics.signals, 'correlator', (batch) => t.apply(batch as unknown as BusMessage<RawSignal>[]), {
      checkpointing,
      parse: rawSignals,
    });
    s.logger.info({ workers: this.threads() }, 'correlating on worker threads');
    return t;
  }

  private async startDistributed(): Promise<CorrelatorRuntime> {
    const { s } = this;
    if (this.opts.baselineStore) await this.loadBaseline(this.opts.baselineStore);
    else {
      const { store, close } = await redisBaselineStore(s.config, s.logger);
      this.closeBaselineStore = close;
      await this.loadBaseline(store);
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
    // A checkpoint Redis lost is noticed against the committed offsets and rebuilt from the topics.
    // The bus does not offer those reads, so a client of its own does: connected now, as every
    // assignment asks it for the group's commits before the partitions' first batches load.
    let history: SignalHistory | undefined;
    if (kafka) {
      const { reader, connect, close } = standaloneReadBack({
        brokers: s.config.kafkaBrokers,
        clientId: `kubevigil-${hostname()}-${process.pid}-history`,
        topicPrefix: s.config.topicPrefix,
        sessionTimeoutMs: s.config.kafkaSessionTimeoutMs,
        logger: s.logger,
      });
      this.closeHistory = close;
      connect();
      history = kafkaHistory(reader, s.topics, consumerGroupId(s.config.topicPrefix, 'correlator'));
    }
    const p = new PartitionedCorrelator({
      correlations: s.rules.correlations,
      state,
      publish: incidentPublisher(s),
      clock: s.clock,
      logger: s.logger,
      metrics: s.metrics,
      usage: s.usage,
      ...partitionBudget(s.config),
      baseline: this.baseline,
      ...(s.inventory ? { inventory: s.inventory } : {}),
      ...(s.silences ? { silencer: s.silences.silencer } : {}),
      ...(source ? { source } : {}),
      ...(history ? { history } : {}),
      // Waiting on a rebuild blocks the consumer's heartbeats: well within its session.
      rebuildWaitMs: Math.max(1000, Math.floor(s.config.kafkaSessionTimeoutMs / 3)),
    });
    this.partitioned = p;
    // Checkpointed: batches are applied in memory and one checkpoint covers many of them while a
    // backlog drains; each commit records the checkpoint's generation.
    const checkpointing: KafkaCheckpointing = {
      flush: (partition) => p.flush(partition),
      assigned: (partitions) => p.assigned(partitions),
      commitMetadata: (partition) => p.commitMetadata(partition),
    };
    this.unsubscribe = s.bus.subscribe(s.topics.signals, 'correlator', (batch) => p.apply(batch), {
      checkpointing,
      // Windows keep signals without their evidence: parse only the part before it.
      parse: parseSignalsMessageWithoutEvidence,
    });
    return p;
  }
}

/** Loads a baseline; a store that cannot be read leaves it empty (it is relearned, and only ever lowers severity). */
export async function loadBaseline(baseline: IdentityBaseline, store: BaselineStore, logger: Logger): Promise<void> {
  try {
    baseline.restore(await store.load());
  } catch (err) {
    logger.warn({ err }, 'identity baseline could not be loaded; starting empty');
  }
}

/** Saves what a baseline learned since the last save; a failure keeps nothing back but is logged. */
export async function saveBaseline(baseline: IdentityBaseline, store: BaselineStore, logger: Logger): Promise<void> {
  const changes = baseline.takeChanges();
  if (!changes.size) return;
  try {
    await store.save(changes);
  } catch (err) {
    logger.warn({ err, entries: changes.size }, 'identity baseline could not be saved');
  }
}

/**
 * The baseline's store in Redis, on a connection of its own that is ready (or waited on for 5 s:
 * without an offline queue, a load sent before the connection is up fails and the baseline would
 * start empty), and how to close it.
 */
export async function redisBaselineStore(
  config: Pick<Stage['config'], 'redisUrl' | 'topicPrefix'>,
  logger: Logger,
): Promise<{ store: BaselineStore; close(): Promise<void> }> {
  const redis = connectRedis(config.redisUrl!, (err) => logger.debug({ err }, 'redis connection error'));
  await redisReady(redis);
  return {
    store: new RedisBaselineStore(redis, config.topicPrefix),
    close: () =>
      redis.quit().then(
        () => undefined,
        () => redis.disconnect(),
      ),
  };
}

/** {@link SignalHistory} on Kafka: the correlators' group's commits, and the signals and incidents topics read by time. */
export function kafkaHistory(reader: ReadBack, topics: Topics, groupId: string): SignalHistory {
  return {
    async committed() {
      const out = new Map<number, GroupCommit>();
      for (const [partition, c] of await reader.committed(groupId, topics.signals.name)) {
        const generation = markedGeneration(c.metadata);
        out.set(partition, { offset: c.offset, ...(generation === undefined ? {} : { generation }) });
      }
      return out;
    },
    async signals(partition, since, before, max) {
      const out: BusMessage<SignalsMessage>[] = [];
      await reader.since(topics.signals, since, (m) => out.push(m), { partition, before, max, parse: parseSignalsMessageWithoutEvidence });
      return out;
    },
    async incidents(since) {
      // The compacted topic may still hold older versions: the highest wins.
      const latest = new Map<string, Incident>();
      await reader.since(topics.incidents, since, ({ value }) => {
        if ((latest.get(value.id)?.version ?? -1) < value.version) latest.set(value.id, value);
      });
      return [...latest.values()];
    },
  };
}

/**
 * Each partition's share of the count budget: one correlator may own every partition, and then
 * holds the whole budget, not one per partition. The flood threshold is shared the same way, as
 * actors spread over partitions by key.
 */
export function partitionBudget(config: Pick<Stage['config'], 'budget' | 'partitions'>): {
  policy: Partial<IncidentPolicy>;
  limits: Partial<CorrelationLimits>;
} {
  const { budget: b, partitions } = config;
  const share = (n: number, min: number) => Math.max(min, Math.ceil(n / Math.max(1, partitions)));
  return {
    policy: { maxOpenIncidents: share(b.maxOpenIncidents, 10), floodActors: share(b.floodActors, 2) },
    limits: { maxEntries: share(b.maxWindowEntries, 1000) },
  };
}

/**
 * The metrics both runtimes report beyond what they count themselves (signals correlated, incident
 * updates): the incidents open here, by severity, and what the correlation bounds dropped.
 */
export function reportMetrics(runtime: CorrelatorRuntime, metrics: Metrics): void {
  metrics.onScrape(() => {
    metrics.openIncidents.reset();
    for (const i of runtime.openIncidents()) metrics.openIncidents.inc({ severity: i.severity });
  });
  metrics.trackDrops('correlation', 'group_evicted', () => runtime.engineStats().evictedGroups);
  metrics.trackDrops('correlation', 'window_full', () => runtime.engineStats().evictedEntries);
  metrics.trackDrops('correlation', 'too_late', () => runtime.engineStats().lateDropped);
  // The count budget (issue #19): incidents resolved early or not opened, signals that joined a flood, prologues forgotten.
  metrics.trackDrops('correlation', 'incident_evicted', () => runtime.incidentStats().evicted);
  metrics.trackDrops('correlation', 'incident_refused', () => runtime.incidentStats().refused);
  metrics.trackDrops('correlation', 'flooded', () => runtime.incidentStats().flooded);
  metrics.trackDrops('correlation', 'prologue_evicted', () => runtime.incidentStats().prologueEvicted);
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
