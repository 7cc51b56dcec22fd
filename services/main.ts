/**
 * `kubevigil serve`: wires every stage of one process — rules, detection, bus, receivers, API —
 * starts them, and stops them in reverse order on SIGTERM/SIGINT.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CorrelationEngine } from '../correlator/correlation/engine.js';
import { Detector } from '../correlator/detection/engine.js';
import { RuleSetError } from '../correlator/detection/problems.js';
import { IncidentManager } from '../correlator/incidents.js';
import { systemClock, type Clock } from '../correlator/ports.js';
import { IncidentStream } from './api/stream.js';
import { MemoryBus } from './bus/memory.js';
import { topics } from './bus/topics.js';
import type { Config } from './config.js';
import { Correlator } from './correlate.js';
import { createApp } from './http/app.js';
import { busPublisher, IngestPipeline } from './ingest.js';
import type { Logger } from './logging.js';
import { Metrics } from './metrics.js';
import { RecentSignals } from './recent-signals.js';
import { loadRules, SCHEMAS } from './rules.js';
import { openSqliteStore } from './store/sqlite.js';
import type { IncidentStore } from './store/store.js';
import { UsageProfiler } from './usage.js';

/** A running kubevigil process. */
export interface Running {
  /** The bound address (useful with port 0). */
  url: string;
  bus: MemoryBus;
  recent: RecentSignals;
  metrics: Metrics;
  store: IncidentStore;
  correlator: Correlator;
  stop(): Promise<void>;
}

/** Test and embedding hooks for {@link serve}. */
export interface ServeOptions {
  processMetrics?: boolean;
  /** A store to use instead of SQLite in the data directory. */
  store?: IncidentStore;
  clock?: Clock;
  /** node-cron schedule of the incident sweeper; `false` disables it (tests sweep by hand). */
  sweepSchedule?: string | false;
}

/** Starts every role in this process on the embedded defaults. */
export async function serve(config: Config, logger: Logger, opts: ServeOptions = {}): Promise<Running> {
  const compiled = loadRules(config.rulesPaths);
  if (compiled.problems.length) throw new RuleSetError(compiled.problems);
  const detector = new Detector(compiled.rules, SCHEMAS, { minSeverity: config.minSeverity });
  const metrics = new Metrics({ processMetrics: opts.processMetrics ?? true });
  for (const s of SCHEMAS) metrics.rulesLoaded.set({ source: s.name }, compiled.rules.filter((r) => r.source === s.name).length);

  const t = topics();
  const bus = new MemoryBus({
    capacity: config.busCapacity,
    onError: (err, topic, group, attempt) => logger.error({ err, topic, group, attempt }, 'bus handler failed'),
  });
  const recent = new RecentSignals(config.recentSignals);
  const unsubscribe = bus.subscribe(t.signals, 'recent', async (batch) => {
    recent.add(batch.map((m) => m.value));
    for (const { value: s } of batch)
      if (s.severity === 'high' || s.severity === 'critical')
        logger.warn({ signal: { id: s.id, kind: s.kind, severity: s.severity, rule: s.rule.id, actor: s.actor.key }, attacker: { title: s.title } }, 'signal');
  });

  const store = opts.store ?? openSqliteStore(join(config.dataDir, 'kubevigil.db'));
  const usage = new UsageProfiler();
  const clock = opts.clock ?? systemClock;
  const manager = new IncidentManager(new CorrelationEngine(compiled.correlations), clock, {}, usage);
  const stream = new IncidentStream();
  const correlator = new Correlator(manager, store, (incidents) => bus.publish(t.incidents, incidents.map((i) => ({ key: i.id, value: i }))), logger, metrics);
  const resumed = await correlator.restore();
  const unsubscribeCorrelator = bus.subscribe(t.signals, 'correlator', (batch) => correlator.handle(batch.map((m) => m.value)));
  const unsubscribeStream = bus.subscribe(t.incidents, 'api-stream', async (batch) => {
    stream.publish(batch.map((m) => m.value));
    const open = manager.openIncidents();
    metrics.openIncidents.reset();
    for (const i of open) metrics.openIncidents.inc({ severity: i.severity });
  });
  if (opts.sweepSchedule !== false) correlator.startSweeper(opts.sweepSchedule ?? '* * * * *');

  const sink = new IngestPipeline(detector, busPublisher(bus, t.signals), metrics, usage);
  let ready = false;
  const app = createApp({ config, metrics, logger, sink, recent, rules: compiled.rules, correlations: compiled.correlations, store, commands: correlator, stream, ready: () => ready });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  ready = true;
  logger.info({ url, rules: compiled.rules.length, correlations: compiled.correlations.length, disabled: compiled.disabled.length, resumedIncidents: resumed }, 'kubevigil listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      ready = false;
      // Reverse order of start: stop taking requests, drain the bus, then close subscribers.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      stream.close();
      await bus.drained();
      await correlator.stop();
      await unsubscribe();
      await unsubscribeCorrelator();
      await unsubscribeStream();
      await bus.close();
      await store.close();
      logger.info('kubevigil stopped');
    })());
  return { url, bus, recent, metrics, store, correlator, stop };
}
