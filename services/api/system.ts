/**
 * GET /api/v1/system: what the console's system view shows — readiness, version, mode and roles,
 * ingest and signal rates over the last minute, bus lag, open incidents, the inventory's sync and
 * the correlator's budgets (as /readyz reports them), and the event stream's listeners.
 *
 * Rates come from kubevigil's own counters (services/metrics.ts), sampled every 5 s into a ring of
 * 12 samples: a rate is the difference between now and the oldest sample, over the time between.
 */
import type { RequestHandler } from 'express';
import type { BudgetUse } from '../../correlator/incidents.js';
import type { InventoryStatus } from '../../correlator/inventory.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { VERSION } from '../package-info.js';
import { SOURCE_LIST } from '../sources.js';
import type { IncidentStream } from './stream.js';

/** The counters read at one moment. */
interface Sample {
  at: number;
  /** kubevigil_ingest_events_total by source (every outcome). */
  events: Map<string, number>;
  /** kubevigil_ingest_rejected_total by source (every reason). */
  rejected: Map<string, number>;
  /** kubevigil_signals_emitted_total, summed. */
  signals: number;
}

export interface SystemRatesOptions {
  /** Between samples (default 5000 ms). */
  intervalMs?: number;
  /** Samples kept (default 12: a minute at 5 s). */
  samples?: number;
  now?: () => number;
}

const bySource = (values: { value: number; labels: Partial<Record<string, string | number>> }[]) => {
  const out = new Map<string, number>();
  for (const v of values) {
    const source = String(v.labels.source ?? '');
    out.set(source, (out.get(source) ?? 0) + v.value);
  }
  return out;
};

/** The ring of counter samples behind the rates; started and stopped with the process (an unref'd timer). */
export class SystemRates {
  private readonly ring: Sample[] = [];
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly samples: number;
  private readonly now: () => number;

  constructor(
    private readonly metrics: Metrics,
    opts: SystemRatesOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.samples = opts.samples ?? 12;
    this.now = opts.now ?? Date.now;
  }

  /** Reads the counters now. */
  async read(): Promise<Sample> {
    const [events, rejected, signals] = await Promise.all([this.metrics.ingestEvents.get(), this.metrics.ingestRejected.get(), this.metrics.signals.get()]);
    return {
      at: this.now(),
      events: bySource(events.values),
      rejected: bySource(rejected.values),
      signals: signals.values.reduce((n, v) => n + v.value, 0),
    };
  }

  /** Takes one sample into the ring (the oldest goes once it holds {@link samples}). */
  async sample(): Promise<void> {
    this.keep(await this.read());
  }

  private keep(s: Sample): void {
    this.ring.push(s);
    if (this.ring.length > this.samples) this.ring.shift();
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The totals now and the rates since the oldest sample (0 until a sample is at least a second old). */
  async current(): Promise<{ ingest: IngestRate[]; signalsPerSecond: number }> {
    const now = await this.read();
    // Without a running sampler (an app built by hand), each request adds its reading to the ring, so the rate is
    // since the oldest of the last `samples` requests, this one included (0 on the first, or while that one is under a second old).
    if (!this.timer) this.keep(now);
    const base = this.ring[0];
    const seconds = base ? (now.at - base.at) / 1000 : 0;
    const rate = (a: number, b: number) => (seconds >= 1 ? round(Math.max(0, a - b) / seconds) : 0);
    return {
      ingest: SOURCE_LIST.map(({ name }) => {
        const total = now.events.get(name) ?? 0;
        return {
          source: name,
          eventsPerSecond: rate(total, base?.events.get(name) ?? 0),
          eventsTotal: total,
          rejectedTotal: now.rejected.get(name) ?? 0,
        };
      }),
      signalsPerSecond: rate(now.signals, base?.signals ?? 0),
    };
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

export interface IngestRate {
  source: string;
  eventsPerSecond: number;
  eventsTotal: number;
  rejectedTotal: number;
}

/** What GET /api/v1/system answers (SystemStatus in schemas.ts). */
export interface SystemStatus {
  status: 'ready' | 'not-ready';
  /** Every value is this process's own (its counters, its consumers' lag), never the deployment's. */
  scope: 'process';
  version: string;
  mode: 'embedded' | 'distributed';
  roles: string[];
  cluster?: string;
  uptimeSeconds: number;
  ingest: IngestRate[];
  signalsPerSecond: number;
  incidentsOpen?: number;
  bus: { kind: 'memory' | 'kafka'; lagMessages?: number };
  inventory?: InventoryStatus;
  budget?: BudgetUse;
  stream: { clients: number };
}

export interface SystemDeps {
  config: Pick<Config, 'kafkaBrokers' | 'roles' | 'clusterName'>;
  metrics: Metrics;
  rates: SystemRates;
  stream: IncidentStream;
  ready: () => Promise<boolean>;
  inventory?: () => InventoryStatus;
  budget?: () => BudgetUse | undefined;
  /** Messages queued behind the consumers of this process; absent: the kubevigil_bus_lag_messages gauge, summed. */
  busLag?: () => number;
  /** When the process started (ms since the epoch). */
  startedAt?: number;
}

/** GET /api/v1/system (behind the API's read token, as the rest of /api). */
export function systemHandler(deps: SystemDeps): RequestHandler {
  const startedAt = deps.startedAt ?? Date.now() - Math.round(process.uptime() * 1000);
  return async (_req, res) => {
    const distributed = deps.config.kafkaBrokers.length > 0;
    const [ready, rates, lagMetric] = await Promise.all([deps.ready(), deps.rates.current(), deps.busLag ? undefined : deps.metrics.busLag.get()]);
    const lag = deps.busLag ? deps.busLag() : lagMetric?.values.length ? lagMetric.values.reduce((n, v) => n + v.value, 0) : undefined;
    const budget = deps.budget?.();
    const body: SystemStatus = {
      status: ready ? 'ready' : 'not-ready',
      scope: 'process',
      version: VERSION,
      mode: distributed ? 'distributed' : 'embedded',
      roles: [...deps.config.roles].sort(),
      ...(deps.config.clusterName ? { cluster: deps.config.clusterName } : {}),
      uptimeSeconds: Math.max(0, Math.floor((Date.now() - startedAt) / 1000)),
      ingest: rates.ingest,
      signalsPerSecond: rates.signalsPerSecond,
      ...(budget ? { incidentsOpen: budget.openIncidents.used } : {}),
      bus: { kind: distributed ? 'kafka' : 'memory', ...(lag !== undefined ? { lagMessages: lag } : {}) },
      ...(deps.inventory ? { inventory: deps.inventory() } : {}),
      ...(budget ? { budget } : {}),
      stream: { clients: deps.stream.size },
    };
    res.json(body);
  };
}
