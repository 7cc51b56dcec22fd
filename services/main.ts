/**
 * `kubevigil serve`: wires the components of one process — tracing, store, bus, the roles it is
 * given (correlator, api, notifier, ingest) and the HTTP server — and starts them in that order; they
 * stop in reverse order (services/roles/lifecycle.ts), on SIGTERM or when a later start fails.
 *
 * - Embedded (no `KAFKA_BROKERS`): every role in one process — in-memory bus, SQLite store in the
 *   data directory, one correlator.
 * - Distributed: Kafka carries signals (keyed by actor) and incidents (keyed by id, compacted);
 *   each process runs the roles it is given. Correlators form a consumer group and checkpoint their
 *   per-partition state in Redis; the API role keeps its own store fed by the incidents topic.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { hostname } from 'node:os';
import { applyV8Flags } from './v8-flags.js';
import { RuleSetError } from '../correlator/detection/problems.js';
import { systemClock, type Clock } from '../correlator/ports.js';
import { IncidentStream } from './api/stream.js';
import type { Bus } from './bus/bus.js';
import { topics } from './bus/topics.js';
import type { Config } from './config.js';
import type { Correlator } from './correlate.js';
import type { PartitionedCorrelator } from './correlate-partitioned.js';
import { createApp } from './http/app.js';
import type { Logger } from './logging.js';
import { Metrics } from './metrics.js';
import { RecentSignals } from './recent-signals.js';
import { SystemRates } from './api/system.js';
import { ApiRole } from './roles/api.js';
import { CorrelatorRole } from './roles/correlator.js';
import { HttpServer } from './roles/http.js';
import { BusComponent, drainOnStop, StoreComponent, tracing } from './roles/infra.js';
import { IngestRole } from './roles/ingest.js';
import { component, Lifecycle, STOP_MARGIN_MS } from './roles/lifecycle.js';
import { NotifierRole } from './roles/notifier.js';
import type { Stage } from './roles/stage.js';
import { ReloadRegistry } from './reload.js';
import { Retention } from './retention.js';
import { loadRules, SCHEMAS, type LoadedRules } from './rules.js';
import type { CorrelatorStateStore } from './store/correlator-state.js';
import type { IncidentStore } from './store/store.js';
import { UsageProfiler } from './usage.js';
import { Silences } from './silences.js';
import type { WorkerScript } from './workers/script.js';
import { loadSilencesFile, SilencesFileError } from './silences-file.js';
import { connectRedis, redisReady } from './store/correlator-state.js';
import { RedisSilenceStore } from './store/silences-redis.js';

/** A running kubevigil process. */
export interface Running {
  /** The bound address (useful with port 0). */
  url: string;
  bus: Bus;
  recent: RecentSignals;
  metrics: Metrics;
  store: IncidentStore;
  /** The embedded correlator (undefined in distributed mode or without the role). */
  correlator?: Correlator;
  /** The distributed correlator (Kafka mode with the correlator role). */
  partitioned?: PartitionedCorrelator;
  /** Resolves when everything queued in the embedded bus has been handled (tests await this instead of sleeping). */
  drained(): Promise<void>;
  /** What SIGHUP and POST /-/reload reload (the rules; other parts register theirs). */
  reload: ReloadRegistry;
  /** Drains HTTP within the shutdown grace, then stops the rest; rejects (StopTimeoutError) past the grace plus STOP_MARGIN_MS. */
  stop(): Promise<void>;
}

/** Test and embedding hooks for {@link serve}. */
export interface ServeOptions {
  processMetrics?: boolean;
  /** A store to use instead of SQLite in the data directory. */
  store?: IncidentStore;
  /** Correlator state instead of Redis (distributed mode tests). */
  correlatorState?: CorrelatorStateStore;
  clock?: Clock;
  /** node-cron schedule of the incident sweeper; `false` disables it (tests sweep by hand). */
  sweepSchedule?: string | false;
  /** node-cron schedule of store retention (default hourly); `false` leaves pruning to the test. */
  retentionSchedule?: string | false;
  /** Environment read for OTEL_* settings (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Cluster credentials for the inventory instead of KUBEVIGIL_INVENTORY (tests). */
  kubeConfig?: KubeConfig;
  /** How often a distributed process reads the silences again (default 2000 ms). */
  silencePollMs?: number;
  /** Another correlation worker script (tests: one that crashes). */
  correlatorWorkerScript?: WorkerScript;
}

/**
 * Silences: embedded, in the store (the API and the correlator share them, so a silence applies at
 * once); distributed, in Redis, read again every 2 s by every process. Without REDIS_URL a
 * distributed process has none (the silence routes are not served).
 */
function silencesComponent(config: Config, store: IncidentStore, metrics: Metrics, logger: Logger, opts: ServeOptions): Silences | undefined {
  const clock = opts.clock ?? systemClock;
  if (config.kafkaBrokers.length === 0) return new Silences(store.silences, clock, metrics, logger, { pollMs: 0 });
  if (!config.redisUrl) return undefined;
  const redis = connectRedis(config.redisUrl, (err) => logger.debug({ err }, 'redis connection error'));
  const close = () =>
    redis.quit().then(
      () => undefined,
      () => redis.disconnect(),
    );
  // The client has no offline queue: wait (a little) for the connection before the first read.
  const connected = () => redisReady(redis);
  return new Silences(new RedisSilenceStore(redis, config.topicPrefix), clock, metrics, logger, { pollMs: opts.silencePollMs ?? 2000, connected, close });
}

/** Starts the configured roles in this process. */
export async function serve(config: Config, logger: Logger, opts: ServeOptions = {}): Promise<Running> {
  // First, before the load they are for (see services/v8-flags.ts).
  const flags = applyV8Flags(config.v8Flags);
  if (flags.length) logger.debug({ flags }, 'V8 flags set');
  const rules = loadRules(config.rulesPaths);
  if (rules.problems.length) throw new RuleSetError(rules.problems);
  // A broken silences file refuses the start, naming the file, the entry and the field.
  const fileSilences = config.silencesFile ? loadSilencesFile(config.silencesFile) : undefined;
  if (fileSilences?.problems.length) throw new SilencesFileError(fileSilences.problems);
  const metrics = new Metrics({ processMetrics: opts.processMetrics ?? true });
  const countRules = (r: LoadedRules) => {
    for (const s of SCHEMAS) metrics.rulesLoaded.set({ source: s.name }, r.rules.filter((x) => x.source === s.name).length);
  };
  countRules(rules);
  const reload = new ReloadRegistry(logger, metrics.registry);
  // What GET /api/v1/rules lists: replaced in place on a reload.
  const ruleList = [...rules.rules];
  const correlationList = [...rules.correlations];
  const { roles } = config;
  const distributed = config.kafkaBrokers.length > 0;
  const lifecycle = new Lifecycle(logger);

  const running = await lifecycle.run(async () => {
    await lifecycle.start(tracing(opts.env ?? process.env, logger));
    const { store } = await lifecycle.start(new StoreComponent(config.dataDir, opts.store));
    const bus = await lifecycle.start(new BusComponent(config, logger, metrics));
    const stream = new IncidentStream();
    await lifecycle.start(component('event stream', { stop: () => stream.close() }));
    const usage = new UsageProfiler();
    metrics.trackDrops('usage-profile', 'bound', () => usage.dropped);
    // The cluster itself, for the roles that reason about identities and objects.
    // Loaded only when a cluster is to be watched: the Kubernetes client and its generated API
    // models are about 26 MB of heap, more than the rest of kubevigil's code, and every full garbage
    // collection marks them again.
    const inventory =
      (roles.has('ingest') || roles.has('correlator')) && (opts.kubeConfig || config.inventory.mode !== 'off')
        ? await lifecycle.start(new (await import('./roles/inventory.js')).InventoryRole(config, logger, metrics, opts.kubeConfig))
        : undefined;
    metrics.trackDrops('incident-stream', 'slow_listener', () => stream.dropped);
    const silenceSet = roles.has('correlator') || roles.has('api') ? silencesComponent(config, store, metrics, logger, opts) : undefined;
    if (silenceSet && fileSilences) silenceSet.setFileSilences(fileSilences.silences);
    const silences = silenceSet && (await lifecycle.start(silenceSet));
    if (config.silencesFile && !silences)
      logger.warn(
        { file: config.silencesFile },
        'KUBEVIGIL_SILENCES_FILE is set but this process holds no silences (distributed without REDIS_URL, or no correlator/api role)',
      );
    const stage: Stage = {
      config,
      logger,
      metrics,
      rules,
      distributed,
      store,
      stream,
      usage,
      clock: opts.clock ?? systemClock,
      topics: topics(config.topicPrefix),
      bus: bus.bus,
      ...(bus.kafka ? { kafka: bus.kafka } : {}),
      instance: `${hostname()}-${process.pid}`,
      ...(inventory?.cluster ? { inventory: inventory.cluster } : {}),
      ...(silences ? { silences } : {}),
    };
    // Fed only with the api role; without it GET /api/v1/signals is not served.
    const recent = new RecentSignals(config.recentSignals);

    // Consumers first, then what produces: at stop, the producers stop first and the bus drains into the consumers.
    const correlator = roles.has('correlator') ? await lifecycle.start(new CorrelatorRole(stage, opts)) : undefined;
    const api = roles.has('api') ? await lifecycle.start(new ApiRole(stage, recent, correlator?.correlator)) : undefined;
    // Retention runs where the incidents are read from: the api role (embedded, the one process).
    if (roles.has('api'))
      await lifecycle.start(
        new Retention({
          store,
          ...config.retention,
          clock: stage.clock,
          logger,
          registry: metrics.registry,
          ...(opts.retentionSchedule !== undefined ? { schedule: opts.retentionSchedule } : {}),
        }),
      );
    if (roles.has('notifier')) await lifecycle.start(new NotifierRole(stage));
    await lifecycle.start(drainOnStop(bus));
    const ingest = roles.has('ingest') ? await lifecycle.start(new IngestRole(stage)) : undefined;
    // Validated before anything changes; the detector and the correlations are swapped synchronously.
    reload.register('rules', async () => {
      const next = loadRules(config.rulesPaths);
      if (next.problems.length) return next.problems;
      ingest?.setRules(next.rules, config.minSeverity, next.detectionFiles);
      const windows = await correlator?.replaceCorrelations(next.correlations);
      ruleList.splice(0, ruleList.length, ...next.rules);
      correlationList.splice(0, correlationList.length, ...next.correlations);
      countRules(next);
      logger.info(
        {
          rules: next.rules.length,
          correlations: next.correlations.length,
          disabled: next.disabled.length,
          windowsKept: windows?.kept,
          windowsDropped: windows?.dropped,
        },
        'rules reloaded',
      );
      return [];
    });
    // Validated as a whole first; the new set replaces the old one at once, or the old one stays.
    const silencesFile = config.silencesFile;
    if (silencesFile && silences)
      reload.register('silences', () => {
        const next = loadSilencesFile(silencesFile);
        if (next.problems.length) return Promise.resolve(next.problems);
        silences.setFileSilences(next.silences);
        logger.info({ file: silencesFile, silences: next.silences.length }, 'silences file reloaded');
        return Promise.resolve([]);
      });
    // The rates GET /api/v1/system reports: the counters sampled every 5 s while the process runs.
    const systemRates = new SystemRates(metrics);
    await lifecycle.start(component('system rates', { start: () => systemRates.start(), stop: () => systemRates.stop() }));
    const app = createApp({
      config,
      metrics,
      logger,
      store,
      stream,
      rules: ruleList,
      correlations: correlationList,
      reload,
      sink: ingest?.sink,
      ...(ingest?.pool ? { auditOffload: ingest.pool } : {}),
      recent: api && recent,
      commands: api?.commands,
      ...(api && silences ? { silences } : {}),
      ready: () => lifecycle.ready(),
      systemRates,
      ...(bus.kafka ? {} : { busLag: () => bus.queued() ?? 0 }),
      ...(inventory?.cluster ? { inventory: () => inventory.cluster!.status() } : {}),
      ...(correlator ? { budget: () => correlator.budget() } : {}),
    });
    const http = await lifecycle.start(new HttpServer(config, app, stream, logger));
    const { correlator: embedded, partitioned } = correlator ?? {};
    return { url: http.url, bus: bus.bus, recent, metrics, store, correlator: embedded, partitioned, drained: () => bus.drained(), reload };
  });
  logger.info(
    {
      url: running.url,
      roles: [...roles],
      mode: distributed ? 'distributed' : 'embedded',
      rules: rules.rules.length,
      correlations: rules.correlations.length,
      disabled: rules.disabled.length,
    },
    'kubevigil listening',
  );

  let stopping: Promise<void> | undefined;
  // Bounded: the HTTP drain takes at most the grace, the rest of the stop gets a margin beyond it;
  // past that the promise rejects with a StopTimeoutError naming the component that hung.
  const stop = () =>
    (stopping ??= lifecycle.stop({ timeoutMs: config.shutdownGraceMs + STOP_MARGIN_MS }).then(() => {
      logger.info('kubevigil stopped');
    }));
  return { ...running, stop };
}
