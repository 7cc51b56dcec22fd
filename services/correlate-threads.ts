/**
 * A distributed correlator on worker threads (KUBEVIGIL_CORRELATOR_WORKERS): the event loop keeps
 * the Kafka consumer (fetching, offsets, commits after checkpoints), the producer and the API,
 * while each worker thread runs a {@link PartitionedCorrelator} over the partitions routed to it
 * (partition modulo the number of workers): it parses the signals, correlates them, checkpoints
 * in Redis and has the main thread publish the incidents (services/workers/correlate-worker.ts).
 *
 * The bus hands a batch over as its bytes ({@link rawSignals}); `apply` posts it and returns at
 * once, so that the event loop fetches and decodes the next batch while the worker correlates this
 * one (at most {@link DEFAULT_IN_FLIGHT_BYTES} per worker outstanding). The bus only commits a
 * partition after `flush`, which waits for every batch of the partition the worker was given; a
 * batch the worker failed (Redis down while loading the partition, say), or a worker that died,
 * makes that flush drop the partition's state in the worker and ask the bus for everything since
 * its last commit again (RewindError), as the checkpoint protocol does for a state found stale.
 * Messages the worker cannot parse are parked on the dead-letter topic before that flush resolves.
 */
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { KubevigilError } from '../correlator/errors.js';
import type { BudgetUse } from '../correlator/incidents.js';
import { addBudget } from '../correlator/incidents.js';
import type { Incident } from '../correlator/incident.js';
import { RewindError, type BusMessage, type MessageParser } from './bus/bus.js';
import { signalPositions, type SignalPositions } from './bus/topics.js';
import type { Config } from './config.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import type { Silences } from './silences.js';
import type { UsageCount, UsageProfiler } from './usage.js';
import { describeError, reviveError, type CorrelateAnswer, type CorrelateRequest, type PackedSignals, type Snapshot } from './workers/correlate-protocol.js';
import { workerScript, type WorkerScript } from './workers/script.js';

/** A signals message as the bus hands it to a threaded correlator: its bytes, its headers, and where its parts are. */
export interface RawSignal extends SignalPositions {
  value: Buffer;
  headers: Readonly<Record<string, unknown>>;
}

/** The bus's parser for a threaded correlator: nothing is parsed on the event loop, the worker does it. */
export const rawSignals: MessageParser = Object.assign(
  (json: string, header: (name: string) => string | undefined): RawSignal => ({ value: Buffer.from(json), headers: {}, ...signalPositions(header) }),
  {
    bytes: (value: Buffer, header: (name: string) => string | undefined, headers?: Readonly<Record<string, unknown>>): RawSignal => ({
      value,
      headers: headers ?? {},
      ...signalPositions(header, headers),
    }),
  },
);

/** Bytes of batches a worker may have been given and not yet answered; `apply` waits beyond it. */
export const DEFAULT_IN_FLIGHT_BYTES = 32 * 1024 * 1024;

/** A message the worker could not parse, to park on the dead-letter topic. */
export interface UnparsedSignal {
  key: string;
  value: Buffer;
  headers: Readonly<Record<string, unknown>>;
  offset: string;
  reason: string;
}

/** Options of {@link ThreadedCorrelator.start}. */
export interface ThreadedCorrelatorOptions {
  config: Config;
  /** Worker threads (at least 1). */
  workers: number;
  logger: Logger;
  metrics: Metrics;
  /** Publishes incidents already written as JSON (the main thread's producer). */
  publish(incidents: { id: string; json: string }[]): Promise<void>;
  /** Parks messages a worker could not parse on the dead-letter topic. */
  park(partition: number, dead: UnparsedSignal[]): Promise<void>;
  /** Their silences are sent to the workers whenever they are read. */
  silences?: Silences;
  /** What ingest counts of service accounts' permission use is copied to the workers. */
  usage?: UsageProfiler;
  inFlightBytes?: number;
  /** Another worker script (tests). */
  script?: WorkerScript;
}

interface Call {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Slot {
  index: number;
  worker: Worker;
  calls: Map<number, Call>;
  snapshot?: Snapshot;
  inFlight: number;
  /** Batches waiting for `inFlight` to go down (partitions are handed over concurrently). */
  waiters: (() => void)[];
  /** Partitions routed here since it started: a crash loses their uncommitted state. */
  partitions: Set<number>;
  /** The worker said it is ready, and had not ended then. */
  ready?: boolean;
  /** The thread has ended (nothing will answer). */
  exited?: boolean;
}

/** Longest a worker gets at stop to save its identity baseline and close its connections. */
const STOP_TIMEOUT_MS = 10_000;

/** Most distinct permission counts kept for the workers between two batches; beyond, counts are dropped. */
const MAX_PENDING_USAGE = 10_000;

/** Lets every batch waiting for the slot's in-flight bytes check again. */
function wake(slot: Slot): void {
  const waiting = slot.waiters;
  slot.waiters = [];
  for (const w of waiting) w();
}

/** Runs the partitions this process owns on worker threads; see the module comment. */
export class ThreadedCorrelator {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private stopping = false;
  /** Partitions with a batch the worker did not apply: the next flush rewinds them. */
  private readonly failed = new Map<number, Error>();
  /** Consecutive rewinds per partition, for the pause before the next one. */
  private readonly rewinds = new Map<number, number>();
  /** Per partition, the answers (and dead-letter parking) of batches given to a worker and not yet flushed. */
  private readonly outstanding = new Map<number, Promise<void>[]>();
  /** What each partition's last flush recorded for the commit. */
  private readonly markers = new Map<number, string | undefined>();
  private assignment?: number[];
  private silenceList: unknown[] = [];
  private pendingUsage = new Map<string, UsageCount>();
  /** Permission counts not copied to the workers (more distinct ones than {@link MAX_PENDING_USAGE} between two batches). */
  usageDropped = 0;
  private readonly inFlightLimit: number;

  private constructor(private readonly o: ThreadedCorrelatorOptions) {
    this.inFlightLimit = o.inFlightBytes ?? DEFAULT_IN_FLIGHT_BYTES;
  }

  /** Starts the workers; rejects if one cannot start (its error says why). */
  static async start(o: ThreadedCorrelatorOptions): Promise<ThreadedCorrelator> {
    const c = new ThreadedCorrelator(o);
    try {
      await Promise.all(Array.from({ length: Math.max(1, o.workers) }, (_, i) => c.spawn(i)));
    } catch (e) {
      await c.stop();
      throw e;
    }
    o.metrics.trackDrops('correlation', 'usage_not_copied', () => c.usageDropped);
    for (const slot of c.slots) o.metrics.addRemote((name) => c.remoteMetrics(slot.index, name));
    o.silences?.onChange((all) => {
      c.silenceList = [...all];
      for (const s of c.slots) c.post(s, { type: 'silences', silences: c.silenceList });
    });
    if (o.usage)
      o.usage.onRecord = (u, n) => {
        const k = `${u.actor}\n${u.key}`;
        const have = c.pendingUsage.get(k);
        if (have) have.count += n;
        else if (c.pendingUsage.size < MAX_PENDING_USAGE) c.pendingUsage.set(k, { ...u, count: n });
        else c.usageDropped += n;
      };
    return c;
  }

  private spawn(index: number): Promise<void> {
    const script = this.o.script ?? workerScript(new URL('./workers/correlate-worker', import.meta.url));
    const worker = new Worker(script.url, {
      workerData: { config: this.o.config, index, logLevel: this.o.logger.level },
      ...(script.execArgv ? { execArgv: script.execArgv } : {}),
    });
    const slot: Slot = { index, worker, calls: new Map(), inFlight: 0, waiters: [], partitions: new Set() };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: CorrelateAnswer) => {
        if ('type' in m && m.type === 'ready') {
          ready = slot.ready = true;
          if (this.assignment) this.post(slot, { type: 'assigned', partitions: this.routedTo(slot, this.assignment) });
          if (this.silenceList.length) this.post(slot, { type: 'silences', silences: this.silenceList });
          resolve();
          return;
        }
        this.onAnswer(slot, m);
      });
      const lost = (err: Error) => {
        if (!ready) return reject(err);
        this.onCrash(slot, err);
      };
      worker.on('error', lost);
      worker.on('exit', (code) => {
        slot.exited = true;
        if (!this.stopping || !ready) lost(new Error(`correlation worker ${index} exited with code ${code}`));
      });
    });
  }

  private onAnswer(slot: Slot, m: CorrelateAnswer): void {
    if ('type' in m) {
      if (m.type !== 'publish') return;
      this.o.publish(m.incidents).then(
        () => this.post(slot, { type: 'published', call: m.call }),
        (e: unknown) => this.post(slot, { type: 'published', call: m.call, error: describeError(e) }),
      );
      return;
    }
    slot.snapshot = m.snapshot;
    const call = slot.calls.get(m.re);
    if (!call) return;
    slot.calls.delete(m.re);
    if ('error' in m) call.reject(reviveError(m.error));
    else call.resolve(m.value);
  }

  /** A worker died: whatever it held uncommitted is rewound, and a new one takes its partitions. */
  private onCrash(slot: Slot, err: Error): void {
    if (this.slots[slot.index] !== slot || this.stopping) return;
    this.o.logger.error(
      { err, worker: slot.index },
      'correlation worker stopped unexpectedly; its partitions are rewound to their last commit and a new worker takes them',
    );
    const lost = new KubevigilError('WORKER_UNAVAILABLE', `correlation worker ${slot.index} stopped before it answered: ${err.message}`, true, 1);
    for (const call of slot.calls.values()) call.reject(lost);
    slot.calls.clear();
    for (const p of slot.partitions) this.failed.set(p, lost);
    slot.inFlight = 0;
    wake(slot);
    void slot.worker.terminate();
    this.respawn(slot.index);
  }

  /** Starts a worker in place of one that died, trying again every second while it cannot start (its batches fail retryably meanwhile). */
  private respawn(index: number): void {
    if (this.stopping) return;
    this.spawn(index).catch((e: unknown) => {
      this.o.logger.error({ err: e, worker: index }, 'correlation worker could not be restarted; trying again in 1 s');
      const failed = this.slots[index]!;
      const lost = new KubevigilError('WORKER_UNAVAILABLE', `correlation worker ${index} could not be restarted: ${(e as Error).message}`, true, 1);
      for (const call of failed.calls.values()) call.reject(lost);
      failed.calls.clear();
      setTimeout(() => this.respawn(index), 1000).unref();
    });
  }

  private post(slot: Slot, m: CorrelateRequest, transfer?: ArrayBuffer[]): void {
    slot.worker.postMessage(m, transfer);
  }

  private request<T>(slot: Slot, m: Extract<CorrelateRequest, { id: number }>, transfer?: ArrayBuffer[]): Promise<T> {
    // A worker replaced since the caller looked it up never answers.
    if (this.slots[slot.index] !== slot)
      return Promise.reject(new KubevigilError('WORKER_UNAVAILABLE', `correlation worker ${slot.index} was replaced before it was asked`, true, 1));
    return new Promise<T>((resolve, reject) => {
      slot.calls.set(m.id, { resolve: resolve as (v: unknown) => void, reject });
      this.post(slot, m, transfer);
    });
  }

  private slotOf(partition: number): Slot {
    return this.slots[partition % this.slots.length]!;
  }

  /** Hands a batch to the workers of its partitions; resolves once they have it (not once they applied it). */
  async apply(batch: BusMessage<RawSignal>[]): Promise<void> {
    if (this.pendingUsage.size) {
      const usage = [...this.pendingUsage.values()];
      this.pendingUsage = new Map();
      for (const s of this.slots) this.post(s, { type: 'usage', usage });
    }
    const bySlot = new Map<number, BusMessage<RawSignal>[]>();
    for (const m of batch) {
      const p = m.partition ?? 0;
      // Its earlier messages were not all applied: the next flush rewinds the partition, these come again.
      if (this.failed.has(p)) continue;
      const index = p % this.slots.length;
      let list = bySlot.get(index);
      if (!list) bySlot.set(index, (list = []));
      list.push(m);
    }
    for (const [index, msgs] of bySlot) {
      // Looked up again after each wait: a worker that died meanwhile has been replaced.
      let slot = this.slots[index]!;
      while (slot.inFlight >= this.inFlightLimit) {
        await new Promise<void>((r) => slot.waiters.push(r));
        slot = this.slots[index]!;
      }
      this.give(slot, msgs);
    }
  }

  private give(slot: Slot, msgs: BusMessage<RawSignal>[]): void {
    let size = 0;
    for (const m of msgs) size += m.value.value.length;
    const bytes = new Uint8Array(size);
    const packed: PackedSignals = {
      bytes,
      ends: new Uint32Array(msgs.length),
      evidenceAt: new Float64Array(msgs.length),
      sharedAt: new Float64Array(msgs.length),
      sharedHash: new Float64Array(msgs.length),
      partitions: new Int32Array(msgs.length),
      offsets: [],
      keys: [],
    };
    let at = 0;
    const partitions = new Set<number>();
    msgs.forEach((m, i) => {
      bytes.set(m.value.value, at);
      at += m.value.value.length;
      packed.ends[i] = at;
      packed.evidenceAt[i] = m.value.evidenceAt;
      packed.sharedAt[i] = m.value.sharedAt;
      packed.sharedHash[i] = m.value.sharedHash;
      packed.partitions[i] = m.partition ?? 0;
      packed.offsets.push(m.offset ?? '');
      packed.keys.push(m.key);
      partitions.add(m.partition ?? 0);
    });
    for (const p of partitions) slot.partitions.add(p);
    slot.inFlight += size;
    const answered = this.request<{ index: number; reason: string }[]>(slot, { type: 'apply', id: ++this.nextId, batch: packed }, [bytes.buffer]).finally(
      () => {
        slot.inFlight -= size;
        wake(slot);
      },
    );
    const done = answered.then(
      (dead) => this.park(msgs, dead),
      (e: Error) => {
        for (const p of partitions) if (!this.failed.has(p)) this.failed.set(p, e);
        this.o.logger.warn(
          { err: e, partitions: [...partitions], worker: slot.index },
          'correlation worker failed a batch; its partitions are rewound to their last commit at the next checkpoint',
        );
      },
    );
    for (const p of partitions) {
      let list = this.outstanding.get(p);
      if (!list) this.outstanding.set(p, (list = []));
      list.push(done);
    }
  }

  /** Parks what the worker could not parse, by partition; a failure to park fails the partitions' next flush. */
  private async park(msgs: BusMessage<RawSignal>[], dead: { index: number; reason: string }[]): Promise<void> {
    if (!dead.length) return;
    const byPartition = new Map<number, UnparsedSignal[]>();
    for (const d of dead) {
      const m = msgs[d.index]!;
      const p = m.partition ?? 0;
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      list.push({ key: m.key, value: m.value.value, headers: m.value.headers, offset: m.offset ?? '', reason: d.reason });
    }
    await Promise.all(
      [...byPartition].map(([p, list]) =>
        this.o.park(p, list).catch((e: unknown) => {
          if (!this.failed.has(p)) this.failed.set(p, e as Error);
        }),
      ),
    );
  }

  /**
   * Waits for every batch of the partition given to its worker, then checkpoints it there; rejects
   * with RewindError when one of them was not applied (the bus then offers everything since the
   * last commit again).
   */
  async flush(partition: number): Promise<void> {
    const waiting = this.outstanding.get(partition) ?? [];
    this.outstanding.delete(partition);
    await Promise.all(waiting);
    const slot = this.slotOf(partition);
    const failure = this.failed.get(partition);
    if (failure) {
      this.failed.delete(partition);
      const n = (this.rewinds.get(partition) ?? 0) + 1;
      this.rewinds.set(partition, n);
      // Not a busy loop while Redis or a worker is down: at most a second between rewinds (well within the session).
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(n, 5))));
      await this.request(this.slotOf(partition), { type: 'discard', id: ++this.nextId, partition }).catch(() => undefined);
      throw new RewindError(`partition ${partition} is correlated again from its last commit: ${failure.message}`, { cause: failure });
    }
    this.markers.set(partition, await this.request<string | undefined>(slot, { type: 'flush', id: ++this.nextId, partition }));
    this.rewinds.delete(partition);
  }

  /** What the bus commits with the partition's offsets: the generation of the checkpoint its last flush wrote. */
  commitMetadata(partition: number): string | undefined {
    return this.markers.get(partition);
  }

  /** A rebalance: every worker is told the partitions routed to it, and forgets the others. */
  assigned(partitions: number[]): void {
    this.assignment = [...partitions];
    const keep = new Set(partitions);
    for (const m of [this.failed, this.markers, this.outstanding, this.rewinds]) for (const p of [...m.keys()]) if (!keep.has(p)) m.delete(p);
    for (const s of this.slots) {
      for (const p of [...s.partitions]) if (!keep.has(p)) s.partitions.delete(p);
      this.post(s, { type: 'assigned', partitions: this.routedTo(s, this.assignment) });
    }
  }

  /** The partitions among `partitions` that `slot`'s worker correlates (it reads their checkpoints at an assignment). */
  private routedTo(slot: Slot, partitions: readonly number[]): number[] {
    return partitions.filter((p) => this.slotOf(p) === slot);
  }

  /** Resolves quiet incidents in every worker's partitions (each saves its identity baseline after). */
  async sweep(): Promise<Incident[]> {
    const all = await Promise.all(this.slots.map((s) => this.request<Incident[]>(s, { type: 'sweep', id: ++this.nextId })));
    return all.flat();
  }

  /** A rule reload: each worker reads the rule files again and keeps the windows of correlations still there. */
  async reloadCorrelations(): Promise<{ kept: number; dropped: number }> {
    const all = await Promise.all(this.slots.map((s) => this.request<{ kept: number; dropped: number }>(s, { type: 'rules', id: ++this.nextId })));
    return all.reduce((a, r) => ({ kept: a.kept + r.kept, dropped: a.dropped + r.dropped }), { kept: 0, dropped: 0 });
  }

  /** The count budgets in use, as the workers last reported them. */
  budget(): BudgetUse {
    const sum: BudgetUse = { openIncidents: { used: 0, max: 0 }, windowEntries: { used: 0, max: 0 }, prologueSignals: { used: 0, max: 0 }, floodIncidents: 0 };
    for (const s of this.slots) if (s.snapshot) addBudget(sum, s.snapshot.budget);
    return sum;
  }

  /** For /readyz: every worker answers within 2 s and reaches Redis. */
  async ready(): Promise<boolean> {
    const one = async (s: Slot) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2000)));
      const ok = await Promise.race([this.request<boolean>(s, { type: 'ready', id: ++this.nextId }).catch(() => false), late]);
      clearTimeout(timer);
      return ok;
    };
    return !this.stopping && (await Promise.all(this.slots.map(one))).every(Boolean);
  }

  private async remoteMetrics(index: number, name?: string): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    const slot = this.slots[index];
    if (!slot || this.stopping) return [];
    // A worker being replaced has no metrics to add: its counters start again (as a restarted process's).
    return this.request<MetricObjectWithValues<MetricValue<string>>[]>(slot, {
      type: 'metrics',
      id: ++this.nextId,
      ...(name === undefined ? {} : { name }),
    }).catch(() => []);
  }

  /** Waits for the workers to save what they hold (baseline), then ends them. Call after the bus stopped consuming. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots
        .filter((s): s is Slot => s !== undefined)
        .map(async (s) => {
          // Bounded: a worker that died or hangs is ended anyway (what it did not save is redone from the last commit).
          let timer: NodeJS.Timeout | undefined;
          const bound = new Promise<void>((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)));
          if (s.ready && !s.exited) await Promise.race([this.request(s, { type: 'stop', id: ++this.nextId }).catch(() => undefined), bound]);
          clearTimeout(timer);
          await s.worker.terminate();
        }),
    );
  }
}
