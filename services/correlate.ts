/**
 * The correlator role: signals from the bus → incident manager → store → incidents topic. Changes
 * are written before the bus batch is acknowledged; a failed write keeps the changes pending and
 * retries them with the next batch, so nothing acknowledged is lost. The correlator role sweeps it
 * on a schedule (services/roles/correlator.ts), as it sweeps the distributed correlator.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { CorrelationStats } from '../correlator/correlation/engine.js';
import type { CompiledCorrelation } from '../correlator/correlation/rules.js';
import { incidentJson, type Incident, type IncidentStatus } from '../correlator/incident.js';
import type { BudgetUse, IncidentManager, IncidentStats } from '../correlator/incidents.js';
import type { Signal } from '../correlator/signal.js';
import { withJson } from './bus/bus.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import type { IncidentSignal, IncidentStore } from './store/store.js';

const tracer = trace.getTracer('kubevigil');

/** Where changed incidents are announced (the incidents topic). */
export type IncidentPublisher = (incidents: Incident[]) => Promise<void>;

/** Lifecycle commands the API sends to the owner of open incidents. */
export interface IncidentCommands {
  transition(id: string, to: IncidentStatus, note: string, by?: string): Promise<Incident | undefined>;
  /** Names who works on an incident; a no-op on a resolved incident or the same assignee. */
  assign(id: string, assignee: string): Promise<Incident | undefined>;
}

/**
 * What the correlator role needs of a correlator, embedded or distributed: a sweep on its schedule,
 * and what its metrics report.
 */
export interface CorrelatorRuntime {
  /** Resolves quiet and over-age incidents now. */
  sweep(): Promise<Incident[]>;
  /** The incidents held open here (for the open-incidents gauge). */
  openIncidents(): Incident[];
  /** Counters of what the correlation engine's bounds cost; they never decrease. */
  engineStats(): CorrelationStats;
  /** Counters of the incident manager (evictions, floods, refusals); they never decrease. */
  incidentStats(): IncidentStats;
  /** A rule reload: runs these correlations from now on, keeping the windows of those still there. */
  replaceCorrelations(correlations: readonly CompiledCorrelation[]): { kept: number; dropped: number };
  /** How much of the count budgets is in use (for /readyz). */
  budget(): BudgetUse;
}

/** Runs an {@link IncidentManager} against a store. */
export class Correlator implements IncidentCommands, CorrelatorRuntime {
  private pendingIncidents = new Map<string, Incident>();
  private pendingSignals: IncidentSignal[] = [];
  /** Serializes manager access: bus batches, sweeps and API commands never interleave. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly manager: IncidentManager,
    private readonly store: IncidentStore,
    private readonly publish: IncidentPublisher,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
  ) {}

  /** Loads open incidents so an attack in progress keeps its incident across a restart. */
  async restore(): Promise<number> {
    const open = await this.store.open();
    this.manager.restore(open);
    return open.length;
  }

  /** The correlation engine's counters of what its bounds cost. */
  engineStats(): CorrelationStats {
    return this.manager.correlation.stats;
  }

  /** The incidents held open (for the open-incidents gauge). */
  openIncidents(): Incident[] {
    return this.manager.openIncidents();
  }

  /** Synchronous, so it falls between two batches: no batch sees part of each rule set. */
  replaceCorrelations(correlations: readonly CompiledCorrelation[]): { kept: number; dropped: number } {
    return this.manager.correlation.replaceCorrelations(correlations);
  }

  incidentStats(): IncidentStats {
    return this.manager.stats;
  }

  budget(): BudgetUse {
    return this.manager.budget();
  }

  /** Handles one bus batch; resolves once its effects are durable. */
  handle(signals: Signal[]): Promise<void> {
    return this.serialize(() =>
      tracer.startActiveSpan('kubevigil.correlate', { attributes: { 'kubevigil.signals': signals.length } }, async (span) => {
        try {
          const { incidents, attached } = this.manager.process(signals);
          span.setAttribute('kubevigil.incidents_changed', incidents.length);
          await this.commit(incidents, attached);
          this.metrics?.correlatedSignals.inc(signals.length);
        } catch (e) {
          span.recordException(e as Error);
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw e;
        } finally {
          span.end();
        }
      }),
    );
  }

  async transition(id: string, to: IncidentStatus, note: string, by?: string): Promise<Incident | undefined> {
    return this.serialize(async () => {
      const current = this.manager.get(id) ?? (await this.store.get(id));
      if (!current) return undefined;
      const next = this.manager.transition(current, to, note, by);
      await this.commit([next], []);
      return next;
    });
  }

  async assign(id: string, assignee: string): Promise<Incident | undefined> {
    return this.serialize(async () => {
      const current = this.manager.get(id) ?? (await this.store.get(id));
      if (!current) return undefined;
      const next = this.manager.assign(current, assignee);
      if (next !== current) await this.commit([next], []);
      return next;
    });
  }

  /** Resolves quiet and over-age incidents now. */
  sweep(): Promise<Incident[]> {
    return this.serialize(async () => {
      const resolved = this.manager.sweep();
      await this.commit(resolved, []);
      return resolved;
    });
  }

  /** Resolves once the batch, sweep or command in progress is done. */
  async stop(): Promise<void> {
    await this.chain.catch(() => undefined);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async commit(incidents: Incident[], attached: IncidentSignal[]): Promise<void> {
    // A snapshot (the manager changes its incidents in place) with its JSON, which the store then
    // writes as it is. Timeline entries never change once made: the snapshot shares them, and their
    // JSON is written once for every version (incidentJson).
    for (const inc of incidents) {
      // Cloned without its timeline, which is then put back in its place (the keys keep their order).
      const snapshot: Incident = structuredClone({ ...inc, timeline: [] as Incident['timeline'] });
      snapshot.timeline = inc.timeline.slice();
      this.pendingIncidents.set(inc.id, withJson(snapshot, incidentJson(snapshot)));
    }
    this.pendingSignals.push(...attached);
    if (this.pendingIncidents.size === 0) return;
    const batch = [...this.pendingIncidents.values()];
    try {
      await tracer.startActiveSpan('kubevigil.store', { attributes: { 'kubevigil.incidents': batch.length } }, (span) =>
        this.store.upsert(batch, this.pendingSignals).finally(() => span.end()),
      );
    } catch (err) {
      this.metrics?.storeFailures.inc();
      this.logger.error({ err, incidents: batch.length }, 'store write failed; changes kept and retried');
      throw err;
    }
    this.pendingIncidents = new Map();
    this.pendingSignals = [];
    for (const inc of batch) this.metrics?.incidentUpdates.inc({ status: inc.status, severity: inc.severity });
    await this.publish(batch);
  }
}
