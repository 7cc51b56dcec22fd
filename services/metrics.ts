/**
 * kubevigil's own metrics (prom-client). Every component counts received, emitted, dropped and failed
 * items with a fixed, bounded label set; names follow Prometheus conventions.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { VERSION } from './package-info.js';

/** Reads another registry of this process: every metric, or with `name` only that one. */
export type RemoteRead = (name?: string) => Promise<MetricObjectWithValues<MetricValue<string>>[]>;

/** All metric families of one process, on their own registry (tests create as many as they like). */
export class Metrics {
  readonly registry = new Registry();
  readonly ingestRequests = new Counter({
    name: 'kubevigil_ingest_requests_total',
    help: 'Ingest HTTP requests by source and response status code.',
    labelNames: ['source', 'code'] as const,
    registers: [this.registry],
  });
  readonly ingestEvents = new Counter({
    name: 'kubevigil_ingest_events_total',
    help: 'Source events received, by source and outcome (accepted, duplicate, invalid).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly ingestBatchSize = new Histogram({
    name: 'kubevigil_ingest_batch_events',
    help: 'Events per ingested batch.',
    labelNames: ['source'] as const,
    buckets: [1, 10, 50, 100, 400, 1000, 5000],
    registers: [this.registry],
  });
  readonly detectSeconds = new Histogram({
    name: 'kubevigil_detect_batch_seconds',
    help: 'Time to run detection over one batch.',
    labelNames: ['source'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly signals = new Counter({
    name: 'kubevigil_signals_emitted_total',
    help: 'Signals emitted by detection, by source, kind and severity.',
    labelNames: ['source', 'kind', 'severity'] as const,
    registers: [this.registry],
  });
  readonly publishFailures = new Counter({
    name: 'kubevigil_bus_publish_failed_total',
    help: 'Batches the bus refused (the sender was told to retry).',
    labelNames: ['topic', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly dropSources: { component: string; reason: string; read: () => number; last: number }[] = [];
  readonly dropped: Counter<'component' | 'reason'>;
  readonly ingestRejected = new Counter({
    name: 'kubevigil_ingest_rejected_total',
    help: 'Ingest requests turned away to protect the process, by source and reason (in_flight, rate, queue_delay, bus_full).',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });
  readonly busLag = new Gauge({
    name: 'kubevigil_bus_lag_messages',
    help: 'Messages a consumer group is behind, per topic and partition (embedded bus: partition "0").',
    labelNames: ['topic', 'group', 'partition'] as const,
    registers: [this.registry],
  });
  readonly rulesLoaded = new Gauge({
    name: 'kubevigil_detection_rules',
    help: 'Detection rules loaded and enabled.',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly correlatedSignals = new Counter({
    name: 'kubevigil_correlator_signals_total',
    help: 'Signals processed by the correlator, counted once their effects are stored (incidents and, distributed, the checkpoint).',
    registers: [this.registry],
  });
  readonly restoredSignals = new Counter({
    name: 'kubevigil_correlator_restored_signals_total',
    help: 'Window and prologue signals a correlator read back from the signals topic on takeover (result="restored"), or window signals it could not (result="missing": the topic retention is shorter than the correlation windows).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly stateRebuilds = new Counter({
    name: 'kubevigil_correlator_state_rebuilds_total',
    help: 'Partitions whose correlator state was rebuilt from the signals and incidents topics because Redis had lost the checkpoint (reason="checkpoint_lost") or held an older one than the committed offsets record (reason="checkpoint_behind").',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly incidentUpdates = new Counter({
    name: 'kubevigil_incident_updates_total',
    help: 'Incident versions written, by status and severity.',
    labelNames: ['status', 'severity'] as const,
    registers: [this.registry],
  });
  readonly pollerPolls = new Counter({
    name: 'kubevigil_poller_polls_total',
    help: 'Polls of a source (Loki LogQL, Tempo TraceQL) by outcome (ok, error).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly pollerErrors = new Counter({
    name: 'kubevigil_poller_errors_total',
    help: 'Poller errors by source and reason (unreachable, server, bad_query, rate_limited, invalid_response, sink, state…).',
    labelNames: ['source', 'reason'] as const,
    registers: [this.registry],
  });
  readonly pollerItems = new Counter({
    name: 'kubevigil_poller_items_total',
    help: 'Log lines or spans a poller read, by source and outcome (received, detected, accepted, duplicate).',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly openIncidents = new Gauge({
    name: 'kubevigil_incidents_open',
    help: 'Open and acknowledged incidents held by the correlator, by severity.',
    labelNames: ['severity'] as const,
    registers: [this.registry],
  });
  readonly storeFailures = new Counter({
    name: 'kubevigil_store_write_failed_total',
    help: 'Store writes that failed (the changes are kept and retried).',
    registers: [this.registry],
  });

  readonly inventoryObjects = new Gauge({
    name: 'kubevigil_inventory_objects',
    help: 'Objects the cluster inventory holds, by resource (pods_gone: deleted pods still resolvable by IP).',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  readonly inventoryWatchRestarts = new Counter({
    name: 'kubevigil_inventory_watch_restarts_total',
    help: 'Inventory watches that failed and were started again, by resource.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  readonly inventoryRelists = new Counter({
    name: 'kubevigil_inventory_relists_total',
    help: 'Inventory relists after the API server answered 410 Gone (the watched version was compacted), by resource.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  readonly inventoryLag = new Gauge({
    name: 'kubevigil_inventory_last_update_age_seconds',
    help: 'Seconds since the inventory last heard from the API server about a resource (a list, an event or a bookmark).',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  readonly inventorySynced = new Gauge({
    name: 'kubevigil_inventory_synced',
    help: '1 when every watched resource has been listed, else 0; absent without an inventory.',
    registers: [this.registry],
  });

  private readonly scrapeHooks: (() => void)[] = [];

  /** Runs before each scrape (gauges read from components). */
  onScrape(fn: () => void): void {
    this.scrapeHooks.push(fn);
  }

  private readonly remotes: RemoteRead[] = [];

  /**
   * Adds the metrics of another registry of this process (a correlation worker thread's) to every
   * scrape: samples of the same name and labels are summed, unless the metric says otherwise
   * (its `aggregator`: build info is taken once, the silences gauge as its maximum). `read` gives
   * every metric, or with a name only that one.
   */
  addRemote(read: RemoteRead): void {
    this.remotes.push(read);
  }

  /** This process's metrics with those of its remote registries, after the scrape hooks ran. */
  async collect(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    for (const h of this.scrapeHooks) h();
    const own = await this.registry.getMetricsAsJSON();
    if (!this.remotes.length) return own;
    const merged = AggregatorRegistry.aggregate([own, ...(await Promise.all(this.remotes.map((r) => r())))]);
    return merged.getMetricsAsJSON();
  }

  /** The exposition text, after the scrape hooks ran. */
  async scrape(): Promise<string> {
    if (!this.remotes.length) {
      for (const h of this.scrapeHooks) h();
      return this.registry.metrics();
    }
    const merged = AggregatorRegistry.aggregate([await this.collect()]);
    return merged.metrics();
  }

  /**
   * The value of a counter without labels (or summed over them), remote registries included. Only
   * that metric is read (no scrape hook runs), so it is cheap enough to poll.
   */
  async total(name: string): Promise<number> {
    const parts = [await this.one(name), ...(await Promise.all(this.remotes.map((r) => r(name))))];
    return parts
      .flat()
      .filter((m) => m.name === name)
      .reduce((a, m) => a + m.values.reduce((b, v) => b + v.value, 0), 0);
  }

  /** The metric `name` of this registry alone, if it has one. */
  async one(name: string): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    const m = this.registry.getSingleMetric(name);
    return m ? [await m.get()] : [];
  }

  /**
   * Counts what a component dropped to stay within a bound. Components keep their own plain
   * counters (they are pure or hot); the difference is added at scrape time.
   */
  trackDrops(component: string, reason: string, read: () => number): void {
    this.dropSources.push({ component, reason, read, last: read() });
  }

  constructor(opts: { processMetrics?: boolean } = {}) {
    const sources = this.dropSources;
    this.dropped = new Counter({
      name: 'kubevigil_dropped_total',
      help: 'Items dropped or evicted to stay within a bound, by component and reason.',
      labelNames: ['component', 'reason'] as const,
      registers: [this.registry],
      collect() {
        for (const s of sources) {
          const now = s.read();
          if (now > s.last) this.inc({ component: s.component, reason: s.reason }, now - s.last);
          s.last = now;
        }
      },
    });
    // Which kubevigil answers, on every scrape (join on it: `* on (pod) group_left(version) kubevigil_build_info`).
    new Gauge({
      name: 'kubevigil_build_info',
      help: 'Always 1; the labels say which kubevigil and which Node.js runtime this process runs.',
      labelNames: ['version', 'nodejs_version'] as const,
      // Correlation worker threads have it too (Metrics.addRemote): one per process.
      aggregator: 'first',
      registers: [this.registry],
    }).set({ version: VERSION, nodejs_version: process.versions.node }, 1);
    // Standard names, no prefix (process_cpu_seconds_total, nodejs_eventloop_lag_p99_seconds…), so
    // the usual Node.js dashboards and alerts work on kubevigil as they are.
    if (opts.processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client also exports per-process totals as gauges named *_total, which promtool rejects
      // (a _total suffix means a counter); sum(nodejs_active_handles) and the others give the same value.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
        this.registry.removeSingleMetric(name);
    }
  }
}
