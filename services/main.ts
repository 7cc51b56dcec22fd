/**
 * `kubevigil serve`: wires the stages of one process and stops them in reverse order on SIGTERM.
 *
 * - Embedded (no `KAFKA_BROKERS`): every role in one process — in-memory bus, SQLite store in the
 *   data directory, one correlator.
 * - Distributed: Kafka carries signals (keyed by actor) and incidents (keyed by id, compacted);
 *   each process runs the roles it is given. Correlators form a consumer group and checkpoint their
 *   per-partition state in Redis; the API role keeps its own store fed by the incidents topic.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { Detector } from '../correlator/detection/engine.js';
import { RuleSetError } from '../correlator/detection/problems.js';
import { KubevigilError } from '../correlator/errors.js';
import type { Incident, IncidentStatus } from '../correlator/incident.js';
import { IdentityResolver } from '../correlator/identity.js';
import { IncidentManager, InvalidTransitionError } from '../correlator/incidents.js';
import { systemClock, type Clock, type SignalPublisher } from '../correlator/ports.js';
import { IncidentStream } from './api/stream.js';
import type { Bus } from './bus/bus.js';
import { createKafkaBus, type KafkaBus } from './bus/kafka.js';
import { MemoryBus } from './bus/memory.js';
import { isCommand, parseSignalsMessageWithoutEvidence, topics, type IncidentCommand } from './bus/topics.js';
import type { Config } from './config.js';
import { Correlator, type IncidentCommands } from './correlate.js';
import { PartitionedCorrelator } from './correlate-partitioned.js';
import { createApp } from './http/app.js';
import { busPublisher, IngestPipeline } from './ingest.js';
import { LokiPoller } from '../connectors/loki/poller.js';
import { TempoPoller } from '../connectors/otlp/tempo-poller.js';
import type { Logger } from './logging.js';
import { Metrics } from './metrics.js';
import { startNotifier } from './notifier/index.js';
import { RecentSignals } from './recent-signals.js';
import { loadRules, SCHEMAS } from './rules.js';
import { connectRedis, RedisCorrelatorState, type CorrelatorStateStore } from './store/correlator-state.js';
import { openSqliteStore } from './store/sqlite.js';
import type { IncidentStore } from './store/store.js';
import { startTracing, tracingFromEnv } from './tracing.js';
import { UsageProfiler } from './usage.js';

/**
 * A slow client must not hold a receiver's in-flight slot for long: a whole request (headers and
 * body) gets 15 s, headers 10 s, and the deadlines are checked every second.
 */
const SERVER_TIMEOUTS = { requestTimeout: 15_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 };

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
  /** Environment read for OTEL_* settings (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Lifecycle commands in distributed mode: checked against the local copy (404/409 at once), then
 * sent on the signals topic keyed by the incident's actor, so the correlator that owns the actor's
 * partition applies it in order with the signals; answered when the new version comes back.
 */
class BusCommands implements IncidentCommands {
  private readonly waiters = new Map<string, { to: IncidentStatus; resolve: (i: Incident) => void }>();

  constructor(
    private readonly bus: Bus,
    private readonly t: ReturnType<typeof topics>,
    private readonly store: IncidentStore,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Called with every incident version the API role receives. */
  seen(incidents: Incident[]): void {
    for (const i of incidents) {
      const w = this.waiters.get(i.id);
      if (w && i.status === w.to) {
        this.waiters.delete(i.id);
        w.resolve(i);
      }
    }
  }

  async transition(id: string, to: IncidentStatus, note: string, by?: string): Promise<Incident | undefined> {
    const current = await this.store.get(id);
    if (!current) return undefined;
    if (!(current.status === 'open' && (to === 'acknowledged' || to === 'resolved')) && !(current.status === 'acknowledged' && to === 'resolved'))
      throw new InvalidTransitionError(current.status, to);
    const done = new Promise<Incident>((resolve) => this.waiters.set(id, { to, resolve }));
    const cmd: IncidentCommand = { command: 'transition', incidentId: id, to, note, ...(by ? { by } : {}) };
    await this.bus.publish(this.t.signals, [{ key: current.actor.key, value: cmd }]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new KubevigilError('COMMAND_PENDING', `the correlator did not confirm within ${this.timeoutMs / 1000}s; the command is queued and will apply`, true, 5));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Starts the configured roles in this process. */
export async function serve(config: Config, logger: Logger, opts: ServeOptions = {}): Promise<Running> {
  const compiled = loadRules(config.rulesPaths);
  if (compiled.problems.length) throw new RuleSetError(compiled.problems);
  const detector = new Detector(compiled.rules, SCHEMAS, { minSeverity: config.minSeverity });
  const metrics = new Metrics({ processMetrics: opts.processMetrics ?? true });
  for (const s of SCHEMAS) metrics.rulesLoaded.set({ source: s.name }, compiled.rules.filter((r) => r.source === s.name).length);
  const roles = config.roles;
  const distributed = config.kafkaBrokers.length > 0;
  // Tracing first, so every stage's spans reach the exporter; stopped (flushed) last.
  const tracing = tracingFromEnv(opts.env ?? process.env);
  const stopTracing = tracing ? startTracing(tracing, logger) : undefined;
  const clock = opts.clock ?? systemClock;
  const t = topics(config.topicPrefix);
  const stops: (() => Promise<void>)[] = [];

  let bus: Bus;
  let kafka: KafkaBus | undefined;
  if (distributed) {
    kafka = createKafkaBus({
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
    await kafka.start();
    bus = kafka;
  } else bus = new MemoryBus({ capacity: config.busCapacity, onError: (err, topic, group, attempt) => logger.error({ err, topic, group, attempt }, 'bus handler failed') });
  stops.push(() => bus.close());

  const store = opts.store ?? openSqliteStore(join(config.dataDir, 'kubevigil.db'));
  stops.push(() => store.close());
  const recent = new RecentSignals(config.recentSignals);
  const usage = new UsageProfiler();
  const stream = new IncidentStream();
  stops.push(async () => stream.close());
  const publishIncidents = (incidents: Incident[]) => bus.publish(t.incidents, incidents.map((i) => ({ key: i.id, value: i })));

  // Correlator role.
  let correlator: Correlator | undefined;
  let partitioned: PartitionedCorrelator | undefined;
  let redisState: CorrelatorStateStore | undefined;
  if (roles.has('correlator')) {
    if (distributed) {
      redisState = opts.correlatorState ?? new RedisCorrelatorState(connectRedis(config.redisUrl!, (err) => logger.debug({ err }, 'redis connection error')), config.topicPrefix, () => clock.now());
      const state = redisState;
      stops.push(() => state.close());
      const kafkaBus = kafka;
      // Window signals are checkpointed as offsets on the signals topic and read back from it on takeover.
      const source = kafkaBus
        ? { read: (partition: number, offsets: readonly string[]) => kafkaBus.read(t.signals, partition, offsets, { parse: parseSignalsMessageWithoutEvidence }) }
        : undefined;
      const p = new PartitionedCorrelator({ correlations: compiled.correlations, state, publish: publishIncidents, clock, logger, metrics, usage, ...(source ? { source } : {}) });
      partitioned = p;
      // Checkpointed: batches are applied in memory and one checkpoint covers many of them while a backlog drains.
      const unsub = bus.subscribe(t.signals, 'correlator', (batch) => p.apply(batch), {
        checkpointing: { flush: (partition) => p.flush(partition), assigned: (partitions) => p.assigned(partitions) },
        // Windows keep signals without their evidence: parse only the part before it.
        parse: parseSignalsMessageWithoutEvidence,
      });
      stops.unshift(unsub);
      if (opts.sweepSchedule !== false) {
        const timer = setInterval(() => p.sweep().catch((err: unknown) => logger.error({ err }, 'incident sweep failed')), 60_000);
        timer.unref();
        stops.unshift(async () => clearInterval(timer));
      }
    } else {
      const manager = new IncidentManager(new CorrelationEngine(compiled.correlations), clock, {}, usage);
      const c = new Correlator(manager, store, publishIncidents, logger, metrics);
      correlator = c;
      const resumed = await c.restore();
      if (resumed) logger.info({ resumed }, 'open incidents resumed');
      const unsub = bus.subscribe(t.signals, 'correlator', (batch) => c.handle(batch.flatMap((m) => (isCommand(m.value) ? [] : [m.value]))));
      stops.unshift(async () => {
        await c.stop();
        await unsub();
      });
      if (opts.sweepSchedule !== false) c.startSweeper(opts.sweepSchedule ?? '* * * * *');
    }
  }

  // API role: its store is the correlator's in embedded mode, fed by the incidents topic otherwise.
  let commands: IncidentCommands | undefined = correlator;
  if (roles.has('api')) {
    const busCommands = distributed ? new BusCommands(bus, t, store) : undefined;
    if (busCommands) commands = busCommands;
    const group = distributed ? `api-${hostname()}-${process.pid}` : 'api-stream';
    // Distributed, every API replica reads all incidents into its own store: a group of its own,
    // deleted when it stops.
    const unsub = bus.subscribe(
      t.incidents,
      group,
      async (batch) => {
        const incidents = batch.map((m) => m.value);
        if (distributed) await store.upsert(incidents);
        busCommands?.seen(incidents);
        stream.publish(incidents);
        if (correlator) {
          metrics.openIncidents.reset();
          for (const i of correlator.openIncidents()) metrics.openIncidents.inc({ severity: i.severity });
        }
      },
      { ephemeral: distributed },
    );
    stops.unshift(unsub);
  }

  // Notifier role.
  if (roles.has('notifier')) {
    const notifier = startNotifier({ config: config.notifier, store, logger, registry: metrics.registry });
    const unsub = bus.subscribe(t.incidents, 'notifier', (batch) => notifier.handle(batch.map((m) => m.value)));
    stops.unshift(async () => {
      await unsub();
      await notifier.stop();
    });
  }

  // API role: the recent signals behind GET /api/v1/signals. Only processes that serve the API read
  // the signals topic a second time; a correlator or ingest process does not pay for it.
  if (roles.has('api')) {
    const unsubscribeRecent = bus.subscribe(
      t.signals,
      distributed ? `recent-${hostname()}-${process.pid}` : 'recent',
      async (batch) => {
        recent.add(batch.flatMap((m) => (isCommand(m.value) ? [] : [m.value])));
      },
      { ephemeral: distributed },
    );
    stops.unshift(unsubscribeRecent);
  }
  const identity = new IdentityResolver(clock);
  metrics.trackDrops('identity', 'evicted', () => identity.stats.evicted);
  metrics.trackDrops('usage-profile', 'bound', () => usage.dropped);
  metrics.trackDrops('incident-stream', 'slow_listener', () => stream.dropped);
  if (bus instanceof MemoryBus) {
    const memoryBus = bus;
    metrics.trackDrops('bus', 'handler_failed', () => memoryBus.dropped);
    metrics.onScrape(() => {
      for (const l of memoryBus.lag()) metrics.busLag.set({ topic: l.topic, group: l.group, partition: '0' }, l.queued);
    });
  }
  if (correlator) {
    const engine = correlator.engineStats();
    metrics.trackDrops('correlation', 'group_evicted', () => engine.evictedGroups);
    metrics.trackDrops('correlation', 'window_full', () => engine.evictedEntries);
    metrics.trackDrops('correlation', 'too_late', () => engine.lateDropped);
  }
  // Ingest role: receivers publish signals to the bus; the serious ones are logged once, by the
  // process that detected them, after the bus acknowledged them.
  const toBus = busPublisher(bus, t.signals);
  const publisher: SignalPublisher = {
    publish: async (signals) => {
      await toBus.publish(signals);
      for (const s of signals)
        if (s.severity === 'high' || s.severity === 'critical')
          logger.warn({ signal: { id: s.id, kind: s.kind, severity: s.severity, rule: s.rule.id, actor: s.actor.key }, attacker: { title: s.title } }, 'signal');
    },
  };
  const sink = new IngestPipeline(detector, publisher, metrics, usage, identity);

  if (roles.has('ingest') && config.lokiPoller) {
    const lp = config.lokiPoller;
    const poller = new LokiPoller({
      url: lp.url,
      queries: lp.queries,
      sink,
      state: { get: (k) => store.getState(k), set: (k, v) => store.setState(k, v) },
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
    });
    poller.start();
    stops.unshift(() => poller.stop());
  }

  if (roles.has('ingest') && config.tempoPoller) {
    const tp = config.tempoPoller;
    const headers: Record<string, string> = {};
    if (tp.tenant) headers['X-Scope-OrgID'] = tp.tenant;
    if (tp.token) headers.authorization = `Bearer ${tp.token}`;
    const poller = new TempoPoller({
      url: tp.url,
      queries: tp.queries,
      sink,
      state: { get: (k) => store.getState(k), set: (k, v) => store.setState(k, v) },
      headers,
      ...(tp.schedule ? { schedule: tp.schedule } : {}),
      stats: {
        polls: (outcome) => metrics.pollerPolls.inc({ source: 'otlp', outcome }),
        spans: (outcome, n) => n && metrics.pollerItems.inc({ source: 'otlp', outcome }, n),
        errors: (reason, n = 1) => metrics.pollerErrors.inc({ source: 'otlp', reason }, n),
      },
      onError: (reason, detail) => logger.warn({ source: 'otlp', reason, upstream: { message: detail.slice(0, 500) } }, 'tempo poll failed'),
    });
    poller.start();
    stops.unshift(() => poller.stop());
  }

  let ready = false;
  const checkReady = async (): Promise<boolean> => {
    if (!ready) return false;
    if (kafka && !(await kafka.checkReady())) return false;
    if (redisState && !(await redisState.ready())) return false;
    return true;
  };
  const app = createApp({
    config,
    metrics,
    logger,
    sink: roles.has('ingest') ? sink : undefined,
    recent: roles.has('api') ? recent : undefined,
    rules: compiled.rules,
    correlations: compiled.correlations,
    store,
    commands: roles.has('api') ? commands : undefined,
    stream,
    ready: checkReady,
  });
  const server: Server = config.tls
    ? createHttpsServer({
        cert: readFileSync(config.tls.certFile),
        key: readFileSync(config.tls.keyFile),
        // Ask for a client certificate but let the TLS handshake succeed without one: the ingest
        // routes refuse unverified clients with a clear 401, while the API keeps bearer tokens.
        ...(config.tls.clientCaFile ? { ca: readFileSync(config.tls.clientCaFile), requestCert: true, rejectUnauthorized: false } : {}),
        minVersion: 'TLSv1.2',
        ...SERVER_TIMEOUTS,
      }, app)
    : createHttpServer(SERVER_TIMEOUTS, app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (e) {
    // Nothing listens (the port is taken, the address is not ours): stop what was started (bus,
    // store, correlator, notifier, pollers, timers, tracing), so the caller can exit or retry.
    for (const s of stops) await s().catch((err: unknown) => logger.debug({ err }, 'cleanup after a failed listen failed'));
    await stopTracing?.().catch(() => {});
    throw e;
  }
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  ready = true;
  logger.info({ url, roles: [...roles], mode: distributed ? 'distributed' : 'embedded', rules: compiled.rules.length, correlations: compiled.correlations.length, disabled: compiled.disabled.length }, 'kubevigil listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      ready = false;
      // Stop taking requests first, then let the bus drain into the stages, then close them in reverse order.
      // Event-stream listeners never finish their request: end them now, or the server never closes.
      stream.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      if (bus instanceof MemoryBus) await bus.drained();
      for (const s of stops) await s();
      await stopTracing?.();
      logger.info('kubevigil stopped');
    })());
  const drained = async () => {
    if (bus instanceof MemoryBus) await bus.drained();
  };
  return { url, bus, recent, metrics, store, correlator, partitioned, drained, stop };
}
