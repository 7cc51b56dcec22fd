/**
 * The infrastructure components every process starts before its roles: tracing, the incident
 * store, the bus; and the barrier that lets the in-memory bus drain into the roles at shutdown.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../bus/bus.js';
import { createKafkaBus, type KafkaBus } from '../bus/kafka.js';
import { MemoryBus } from '../bus/memory.js';
import type { Config } from '../config.js';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { IncidentStore } from '../store/store.js';
import { startTracing, tracingFromEnv } from '../tracing.js';
import { component, type Component } from './lifecycle.js';

/** The OpenTelemetry SDK when the environment asks for it: started first, so every stage's spans reach the exporter; flushed last. */
export function tracing(env: NodeJS.ProcessEnv, logger: Logger): Component {
  const settings = tracingFromEnv(env);
  let stop: (() => Promise<void>) | undefined;
  return component('tracing', {
    start: () => {
      if (settings) stop = startTracing(settings, logger);
    },
    stop: () => stop?.(),
  });
}

/** The incident store: the one given (tests), else SQLite in the data directory. Closed when it stops, the given one too. */
export class StoreComponent implements Component {
  readonly name = 'store';
  private opened?: IncidentStore;

  constructor(
    private readonly dataDir: string,
    private readonly given?: IncidentStore,
  ) {}

  get store(): IncidentStore {
    if (!this.opened) throw new Error('the store is not started');
    return this.opened;
  }

  start(): void {
    this.opened = this.given ?? openSqliteStore(join(this.dataDir, 'kubevigil.db'));
  }

  stop(): Promise<void> {
    return this.store.close();
  }
}

/** The bus: Kafka when brokers are configured (its topics created at start), else in memory. */
export class BusComponent implements Component {
  readonly name = 'bus';
  readonly bus: Bus;
  readonly kafka?: KafkaBus;
  private readonly memory?: MemoryBus;

  constructor(config: Config, logger: Logger, metrics: Metrics) {
    if (config.kafkaBrokers.length > 0) {
      this.kafka = createKafkaBus({
        brokers: config.kafkaBrokers,
        clientId: `kubevigil-${hostname()}-${process.pid}`,
        topicPrefix: config.topicPrefix,
        partitions: config.partitions,
        sessionTimeoutMs: config.kafkaSessionTimeoutMs,
        // Partitions are independent (the correlator keeps per-partition state): process up to four at once.
        partitionsConsumedConcurrently: Math.min(4, config.partitions),
        onLag: (topic, group, partition, lag) => metrics.busLag.set({ topic, group, partition: String(partition) }, lag),
        logger,
      });
      this.bus = this.kafka;
      return;
    }
    const memory = new MemoryBus({
      capacity: config.busCapacity,
      lingerMs: config.busLingerMs,
      onError: (err, topic, group, attempt) => logger.error({ err, topic, group, attempt }, 'bus handler failed'),
    });
    metrics.trackDrops('bus', 'handler_failed', () => memory.dropped);
    metrics.onScrape(() => {
      for (const l of memory.lag()) metrics.busLag.set({ topic: l.topic, group: l.group, partition: '0' }, l.queued);
    });
    this.bus = memory;
    this.memory = memory;
  }

  /** Messages queued behind this process's consumers of the in-memory bus; undefined with Kafka (its lag gauge is set as it is read). */
  queued(): number | undefined {
    return this.memory?.lag().reduce((n, l) => n + l.queued, 0);
  }

  async start(): Promise<void> {
    try {
      await this.kafka?.start();
    } catch (e) {
      await this.bus.close().catch(() => undefined);
      throw e;
    }
  }

  stop(): Promise<void> {
    return this.bus.close();
  }

  ready(): Promise<boolean> {
    return this.kafka ? this.kafka.checkReady() : Promise.resolve(true);
  }

  /** Resolves when everything queued in the in-memory bus has been handled (at once with Kafka). */
  async drained(): Promise<void> {
    if (this.bus instanceof MemoryBus) await this.bus.drained();
  }
}

/**
 * Started after the consuming roles and before the producing ones: when it stops, nothing takes
 * requests or polls any more, and the in-memory bus delivers what it queued before the consumers stop.
 */
export function drainOnStop(bus: BusComponent): Component {
  return component('bus drain', { stop: () => bus.drained() });
}
