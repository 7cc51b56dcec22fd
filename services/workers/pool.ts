/**
 * KUBEVIGIL_WORKERS detection worker threads: audit webhook bodies are decoded, normalized and
 * run through detection on them, so the event loop that serves HTTP, deduplicates, publishes and
 * correlates keeps its core for that. The receiver still answers only after the signals are on the
 * bus: a worker that dies with bodies in hand rejects them retryably (503, the apiserver re-sends),
 * and is replaced. Rule reloads are posted to every worker before any later body.
 */
import { Worker } from 'node:worker_threads';
import type { RuleFileInput } from '../../correlator/detection/compile.js';
import { KubevigilError } from '../../correlator/errors.js';
import type { IngestOutcome } from '../../correlator/ports.js';
import type { Severity } from '../../correlator/severity.js';
import type { Signal } from '../../correlator/signal.js';
import type { IdentityFact } from '../../correlator/identity.js';
import type { AuditOffload, OffloadedAudit } from '../../connectors/k8s-audit/receiver.js';
import type { UsageCount } from '../usage.js';
import type { DetectedAudit, RejectedAudit } from './audit-batch.js';
import { BodyScavenger } from './body-scavenge.js';
import { workerScript, type WorkerScript } from './script.js';

/** What a worker compiles: the detection rule files and the minimum severity. */
export interface WorkerRules {
  files: RuleFileInput[];
  minSeverity: Severity;
}

/** Main thread → worker. */
export type PoolRequest = { type: 'rules'; rules: WorkerRules } | { type: 'audit'; id: number; body: Uint8Array; lines: boolean; observed: number };
/** Worker → main thread. */
export type PoolAnswer = { id: number; result: DetectedAudit | RejectedAudit } | { id: number; error: string };

/** Where signals detected on a worker are published (the ingest stage). */
export interface DetectedSink {
  publishDetected(
    source: string,
    count: number,
    detected: { signals: readonly Signal[]; facts: readonly IdentityFact[]; usage: readonly UsageCount[]; seconds: number },
  ): Promise<IngestOutcome>;
}

interface Job {
  resolve(r: DetectedAudit | RejectedAudit): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
}

/** Most old-generation heap a detection worker may use (MiB). */
export const WORKER_HEAP_MB = 512;

/** Options of {@link DetectionPool}. */
export interface DetectionPoolOptions {
  /** Another worker script (tests: one that crashes). */
  script?: WorkerScript;
  /** Called when a worker stops unexpectedly. */
  onCrash?: (err: Error) => void;
  /**
   * KUBEVIGIL_INGEST_MAX_QUEUE_DELAY in ms (0: not checked): a body is refused (503, retry later)
   * when the work queued ahead of it on the least busy worker would take longer — the event loop's
   * own delay no longer shows a backlog that waits on the workers.
   */
  maxQueueDelayMs?: number;
  /** Most old-generation heap per worker, MiB (default {@link WORKER_HEAP_MB}). */
  heapMb?: number;
  /** Called for each body refused by {@link maxQueueDelayMs}. */
  onQueueDelayRefusal?: () => void;
  /** What frees the bodies' memory on the event loop (default: a scavenge every 8 MiB, {@link BodyScavenger}). */
  scavenger?: BodyScavenger;
}

/** A fixed number of detection workers, started on first use and replaced when one dies. */
export class DetectionPool implements AuditOffload {
  private readonly slots: (Slot | undefined)[];
  private nextId = 1;
  private stopped = false;
  /** Signals cut to the size budget on the workers. */
  cutSignals = 0;
  /** Workers that died and were replaced. */
  crashes = 0;
  /** Moving average of the seconds a worker takes per body (0 until one was answered). */
  private bodySeconds = 0;
  private readonly scavenger: BodyScavenger;

  constructor(
    size: number,
    private rules: WorkerRules,
    private readonly sink: DetectedSink,
    private readonly opts: DetectionPoolOptions = {},
  ) {
    this.slots = new Array<Slot | undefined>(Math.max(1, size)).fill(undefined);
    this.scavenger = opts.scavenger ?? new BodyScavenger();
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every worker now, so the first bodies do not wait for one to boot. */
  start(): void {
    for (let i = 0; i < this.slots.length; i++) this.slots[i] ??= this.spawn(i);
  }

  /** New rules for every worker: bodies handed over from now on are detected with them. */
  setRules(rules: WorkerRules): void {
    this.rules = rules;
    for (const s of this.slots) s?.worker.postMessage({ type: 'rules', rules } satisfies PoolRequest);
  }

  detect(body: Buffer, lines: boolean, observed: number): Promise<OffloadedAudit | { problem: string }> {
    if (this.stopped) return Promise.reject(new KubevigilError('WORKER_UNAVAILABLE', 'the detection workers are stopping', true, 1));
    const slot = this.pick();
    const maxDelay = this.opts.maxQueueDelayMs ?? 0;
    const aheadMs = slot.jobs.size * this.bodySeconds * 1000;
    if (maxDelay > 0 && aheadMs > maxDelay) {
      this.opts.onQueueDelayRefusal?.();
      return Promise.reject(
        new KubevigilError(
          'BACKPRESSURE',
          `the detection workers have ${slot.jobs.size} bodies ahead (about ${Math.round(aheadMs)} ms of work), above KUBEVIGIL_INGEST_MAX_QUEUE_DELAY (${maxDelay} ms)`,
          true,
          1,
        ),
      );
    }
    const id = this.nextId++;
    // The body's memory moves to the worker when the body is all of it (a body read whole is); a
    // slice of shared memory (Node's small-buffer pool) is copied, so nothing else is detached.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
    const bytes = owned ? new Uint8Array(body.buffer, 0, body.byteLength) : Uint8Array.from(body);
    const size = body.byteLength; // read before the transfer detaches the body
    return new Promise((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      slot.worker.postMessage({ type: 'audit', id, body: bytes, lines, observed } satisfies PoolRequest, [bytes.buffer as ArrayBuffer]);
      // After the hand-over: the worker is busy with this body while the event loop collects.
      this.scavenger.note(size);
    });
  }

  publish(batch: OffloadedAudit, fresh: readonly number[]): Promise<IngestOutcome> {
    const d = batch as DetectedAudit;
    this.cutSignals += d.cut;
    d.cut = 0;
    // Only what the fresh events raised and taught: a re-sent event's signals were published the first time.
    const keep = new Uint8Array(d.keys.count);
    for (const i of fresh) keep[i] = 1;
    const signals: Signal[] = [];
    for (const [i, list] of d.signals) if (keep[i]) for (const s of list) signals.push(s);
    const facts: IdentityFact[] = [];
    for (const [i, list] of d.facts) if (keep[i]) for (const f of list) facts.push(f);
    const usage: UsageCount[] = [];
    for (const { events, ...u } of d.usage) {
      let count = 0;
      for (const i of events) count += keep[i]!;
      if (count) usage.push({ ...u, count });
    }
    return this.sink.publishDetected('k8s-audit', fresh.length, { signals, facts, usage, seconds: d.seconds });
  }

  /** Terminates the workers; bodies still in hand are refused retryably. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(
      this.slots.map(async (s, i) => {
        if (!s) return;
        this.slots[i] = undefined;
        this.fail(s, 'the detection workers stopped');
        await s.worker.terminate();
      }),
    );
  }

  /** The least busy worker, started if need be. */
  private pick(): Slot {
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (!s) return (this.slots[i] = this.spawn(i));
      if (best < 0 || s.jobs.size < this.slots[best]!.jobs.size) best = i;
    }
    return this.slots[best]!;
  }

  private spawn(index: number): Slot {
    const script = this.opts.script ?? workerScript(new URL('./detect-worker', import.meta.url));
    const worker = new Worker(script.url, {
      workerData: this.rules,
      // A worker's heap is bounded apart from the process's: a body (12 MiB at most by default) decodes
      // to a few times its size, so this leaves room for several, and a worker that runs out dies
      // like any other (the body answered 503, the worker replaced) instead of growing the process.
      resourceLimits: { maxOldGenerationSizeMb: this.opts.heapMb ?? WORKER_HEAP_MB },
      ...(script.execArgv ? { execArgv: script.execArgv } : {}),
    });
    // Never what keeps the process alive: the ingest role stops it.
    worker.unref();
    const slot: Slot = { worker, jobs: new Map() };
    worker.on('message', (a: PoolAnswer) => {
      const job = slot.jobs.get(a.id);
      if (!job) return;
      slot.jobs.delete(a.id);
      if ('error' in a) job.reject(new Error(`detection worker: ${a.error}`));
      else {
        if ('seconds' in a.result) this.bodySeconds = this.bodySeconds ? 0.8 * this.bodySeconds + 0.2 * a.result.seconds : a.result.seconds;
        job.resolve(a.result);
      }
    });
    const died = (err: Error) => {
      if (this.slots[index] !== slot) return;
      this.slots[index] = undefined;
      this.crashes++;
      this.fail(slot, `a detection worker stopped (${err.message}); the batch was not acknowledged`);
      this.opts.onCrash?.(err);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exit code ${code}`)));
    return slot;
  }

  private fail(slot: Slot, message: string): void {
    const jobs = [...slot.jobs.values()];
    slot.jobs.clear();
    for (const j of jobs) j.reject(new KubevigilError('WORKER_UNAVAILABLE', message, true, 1));
  }
}
