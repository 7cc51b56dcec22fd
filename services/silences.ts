/**
 * Silences at run time: the set every correlator consults before incident logic (as
 * `IncidentManager.silencer`), and what the API does with them (create, expire, prune). Embedded,
 * they live in the SQLite store and the API and correlator share this object, so a silence applies
 * at once; distributed, they live in Redis and each process reads them every `pollMs` (2 s).
 */
import { Counter, Gauge } from 'prom-client';
import { SILENCE_LIMITS, SilenceSet, silenceState, silencesToPrune, type Silence } from '../correlator/silences.js';
import type { Clock } from '../correlator/ports.js';
import type { Signal } from '../correlator/signal.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import type { Component } from './roles/lifecycle.js';
import type { SilenceStore } from './store/store.js';

/** The silences of one process. */
export class Silences implements Component {
  readonly name = 'silences';
  private readonly set = new SilenceSet();
  private timer?: NodeJS.Timeout;
  private readonly silenced: Counter<'silence'>;
  /** Ids the silenced counter has a series for, removed once the silence is pruned (the label stays bounded). */
  private readonly counted = new Set<string>();
  private all: Silence[] = [];
  /** Silences from KUBEVIGIL_SILENCES_FILE: held in memory by each process, never stored. */
  private fromFile: Silence[] = [];

  constructor(
    readonly store: SilenceStore,
    private readonly clock: Clock,
    metrics: Metrics,
    private readonly logger: Logger,
    private readonly opts: { pollMs: number; connected?: () => Promise<void>; close?: () => Promise<void> },
  ) {
    this.silenced = new Counter({
      name: 'kubevigil_silenced_signals_total',
      help: 'Signals a silence hid from incident logic (still stored and counted), by silence id.',
      labelNames: ['silence'] as const,
      registers: [metrics.registry],
    });
    const gauge = new Gauge({
      name: 'kubevigil_silences',
      help: 'Silences this process knows, by state (active, pending, expired).',
      labelNames: ['state'] as const,
      // Correlation worker threads know the same silences (Metrics.addRemote): not a sum.
      aggregator: 'max',
      registers: [metrics.registry],
    });
    metrics.onScrape(() => {
      const now = this.clock.now();
      const n = { active: 0, pending: 0, expired: 0 };
      for (const s of this.all) n[silenceState(s, now)]++;
      for (const [state, v] of Object.entries(n)) gauge.set({ state }, v);
    });
  }

  async start(): Promise<void> {
    await this.opts.connected?.();
    // Redis may still be unreachable: the poll below keeps trying, and the process still starts.
    await this.refresh().catch((err: unknown) => this.logger.warn({ err }, 'silences could not be read at start; retrying every poll'));
    if (this.opts.pollMs > 0) {
      this.timer = setInterval(() => {
        this.refresh().catch((err: unknown) => this.logger.warn({ err }, 'silences could not be read; the last ones read still apply'));
      }, this.opts.pollMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.opts.close?.();
  }

  /** Replaces the silences from the file (already validated) at once; the API and the correlator see the new set. */
  setFileSilences(silences: Silence[]): void {
    this.fromFile = silences;
    this.apply(this.stored);
  }

  /** The silence from the file with this id, if any. */
  fileSilence(id: string): Silence | undefined {
    return this.fromFile.find((s) => s.id === id);
  }

  /** One silence by id: from the file or the store. */
  async get(id: string): Promise<Silence | undefined> {
    return this.fileSilence(id) ?? (await this.store.get(id));
  }

  private stored: Silence[] = [];

  /** Reads the silences again. */
  async refresh(): Promise<void> {
    this.stored = await this.store.list();
    this.apply(this.stored);
  }

  private readonly listeners: ((all: readonly Silence[]) => void)[] = [];

  /** Called with every silence (file and store) each time they are read or replaced: correlation worker threads get them so. */
  onChange(listener: (all: readonly Silence[]) => void): void {
    this.listeners.push(listener);
    listener(this.all);
  }

  private apply(stored: Silence[]): void {
    const fileIds = new Set(this.fromFile.map((s) => s.id));
    const all = [...this.fromFile, ...stored.filter((s) => !fileIds.has(s.id))];
    this.all = all;
    for (const l of this.listeners) l(all);
    this.set.replace(all, this.clock.now());
    const ids = new Set(all.map((s) => s.id));
    for (const id of this.counted)
      if (!ids.has(id)) {
        this.silenced.remove({ silence: id });
        this.counted.delete(id);
      }
  }

  /** For `IncidentManager.silencer`: the id of the active silence that hides this signal, counted. */
  readonly silencer = (s: Signal): string | undefined => {
    const id = this.set.match(s, this.clock.now());
    if (id !== undefined && (this.counted.has(id) || this.counted.size < SILENCE_LIMITS.unexpired + SILENCE_LIMITS.expiredKept)) {
      this.counted.add(id);
      this.silenced.inc({ silence: id });
    }
    return id;
  };

  now(): number {
    return this.clock.now();
  }

  /** Stores a new silence; undefined (nothing stored) when the unexpired ones are at their bound. */
  async create(s: Silence): Promise<Silence | undefined> {
    const now = this.clock.now();
    const all = await this.store.list();
    if (all.filter((x) => silenceState(x, now) !== 'expired').length >= SILENCE_LIMITS.unexpired) return undefined;
    await this.store.put(s);
    await this.prune(all, now);
    await this.refresh();
    return s;
  }

  /** Expires a silence now (a pending one never starts); an expired one stays as it is. */
  async expire(id: string): Promise<Silence | undefined> {
    if (this.fileSilence(id)) throw new Error(`silence ${id} comes from a file; remove it from the file and reload`);
    const s = await this.store.get(id);
    if (!s) return undefined;
    const now = this.clock.now();
    if (silenceState(s, now) === 'expired') return s;
    const next: Silence = { ...s, startsAt: Math.min(s.startsAt, now), endsAt: now, updatedAt: now };
    await this.store.put(next);
    await this.refresh();
    return next;
  }

  /** Every silence: active first, then pending, then expired (as Alertmanager's UI orders them). */
  async list(): Promise<Silence[]> {
    const now = this.clock.now();
    const order = { active: 0, pending: 1, expired: 2 };
    const all = await this.store.list();
    await this.prune(all, now);
    const fileIds = new Set(this.fromFile.map((s) => s.id));
    return [...this.fromFile, ...all.filter((s) => !this.pruned.has(s.id) && !fileIds.has(s.id))].sort(
      (a, b) => order[silenceState(a, now)] - order[silenceState(b, now)],
    );
  }

  private pruned = new Set<string>();

  /** Drops expired silences beyond the history bound. */
  private async prune(all: Silence[], now: number): Promise<void> {
    const ids = silencesToPrune(all, now);
    this.pruned = new Set(ids);
    if (ids.length) await this.store.delete(ids);
  }
}
