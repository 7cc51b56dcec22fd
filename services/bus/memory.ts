/**
 * The embedded bus: a bounded in-process queue per (topic, group). `publish` resolves once every
 * subscribed group has queued the batch, and refuses with a retryable {@link BackpressureError}
 * when a queue is full, so ingest answers 503 instead of buffering without limit.
 *
 * A consumer gets what is queued for it in one delivery (whole published batches, up to `maxBatch`
 * messages), as a Kafka consumer gets what a fetch returns. With `lingerMs`, a consumer that had a
 * delivery less than `lingerMs` ago waits out the rest before the next one, so a busy stream reaches
 * it in fewer, larger batches: a consumer's cost per batch (the correlator rewrites each changed
 * incident once per batch) then stops growing with the request rate. An idle consumer gets a
 * message at once; under load a message waits at most `lingerMs` longer.
 */
import { BackpressureError } from '../../correlator/errors.js';
import { flushDue, RewindError, type Bus, type BusHandler, type BusMessage, type Checkpointing, type SubscribeOptions } from './bus.js';
import type { Topic } from './topics.js';

interface Subscription {
  group: string;
  handler: BusHandler<unknown>;
  checkpointing?: Checkpointing;
  /** Batches handled since the last flush (checkpointed subscriptions), offered again on a rewind. */
  unflushed: BusMessage<unknown>[][];
  unflushedSince: number;
  queue: BusMessage<unknown>[][];
  queued: number;
  /** When the last delivery started (ms since the epoch), for `lingerMs`. */
  deliveredAt: number;
  running: boolean;
  stopped: boolean;
  idle: (() => void)[];
}

/** Options of {@link MemoryBus}. */
export interface MemoryBusOptions {
  /** Most messages queued per subscription before publish is refused (default 100,000). */
  capacity?: number;
  /** Called when a handler rejects; the batch is dropped after `maxAttempts`. */
  onError?: (err: unknown, topic: string, group: string, attempt: number) => void;
  maxAttempts?: number;
  /** Shortest time between two deliveries to one consumer, gathering what arrives meanwhile (default 0). */
  lingerMs?: number;
  /** Most messages in one delivery (default 10,000); a published batch is never split. */
  maxBatch?: number;
}

/** In-memory {@link Bus} for the embedded mode and tests. */
export class MemoryBus implements Bus {
  private readonly subs = new Map<string, Subscription[]>();
  private readonly capacity: number;
  private readonly maxAttempts: number;
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  /** Messages dropped after a handler failed `maxAttempts` times. */
  dropped = 0;

  constructor(private readonly opts: MemoryBusOptions = {}) {
    this.capacity = opts.capacity ?? 100_000;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.lingerMs = opts.lingerMs ?? 0;
    this.maxBatch = opts.maxBatch ?? 10_000;
  }

  async publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    if (messages.length === 0) return;
    const subs = this.subs.get(topic.name) ?? [];
    for (const s of subs) if (s.queued + messages.length > this.capacity) throw new BackpressureError(`bus queue ${topic.name}/${s.group}`, this.capacity);
    for (const s of subs) {
      s.queue.push(messages as BusMessage<unknown>[]);
      s.queued += messages.length;
      if (!s.running) void this.drain(topic.name, s);
    }
  }

  /** Groups live only as long as their subscription here, so `ephemeral` changes nothing. */
  subscribe<T>(topic: Topic<T>, group: string, handler: BusHandler<T>, options: SubscribeOptions = {}): () => Promise<void> {
    const sub: Subscription = {
      group,
      handler: handler as BusHandler<unknown>,
      unflushed: [],
      unflushedSince: 0,
      queue: [],
      queued: 0,
      deliveredAt: Number.NEGATIVE_INFINITY,
      running: false,
      stopped: false,
      idle: [],
    };
    if (options.checkpointing) sub.checkpointing = options.checkpointing;
    const list = this.subs.get(topic.name) ?? [];
    list.push(sub);
    this.subs.set(topic.name, list);
    return async () => {
      await this.idle(sub);
      sub.stopped = true;
      this.subs.set(
        topic.name,
        (this.subs.get(topic.name) ?? []).filter((s) => s !== sub),
      );
    };
  }

  /** Messages queued and not yet handled, per topic and consumer group (the embedded bus's lag). */
  lag(): { topic: string; group: string; queued: number }[] {
    return [...this.subs.entries()].flatMap(([topic, subs]) => subs.map((s) => ({ topic, group: s.group, queued: s.queued })));
  }

  /** Resolves when every queue is empty (tests await this instead of sleeping). */
  async drained(): Promise<void> {
    await Promise.all([...this.subs.values()].flat().map((s) => this.idle(s)));
  }

  async close(): Promise<void> {
    await this.drained();
    for (const s of [...this.subs.values()].flat()) s.stopped = true;
    this.subs.clear();
  }

  private idle(s: Subscription): Promise<void> {
    if (!s.running && s.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => s.idle.push(resolve));
  }

  private async drain(topic: string, s: Subscription): Promise<void> {
    s.running = true;
    while (s.queue.length > 0 && !s.stopped) {
      const wait = s.deliveredAt + this.lingerMs - Date.now();
      if (wait > 0 && s.queued < this.maxBatch) await new Promise((r) => setTimeout(r, wait));
      if (s.stopped) break;
      s.deliveredAt = Date.now();
      const batch = this.take(s);
      if (await this.handle(topic, s, batch)) await this.checkpoint(topic, s);
      s.queued -= batch.length;
    }
    // Caught up: what was handled is flushed before the subscription counts as idle.
    await this.checkpoint(topic, s, true);
    s.running = false;
    for (const r of s.idle.splice(0)) r();
  }

  /** The queued batches, oldest first, joined up to {@link MemoryBusOptions.maxBatch} messages (at least one batch). */
  private take(s: Subscription): BusMessage<unknown>[] {
    const first = s.queue.shift()!;
    if (s.queue.length === 0 || first.length + s.queue[0]!.length > this.maxBatch) return first;
    const out = [...first];
    while (s.queue.length > 0 && out.length + s.queue[0]!.length <= this.maxBatch) for (const m of s.queue.shift()!) out.push(m);
    return out;
  }

  /** Handles one batch, retried up to `maxAttempts`; false when it was dropped. */
  private async handle(topic: string, s: Subscription, batch: BusMessage<unknown>[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await s.handler(batch);
        if (s.checkpointing) {
          if (s.unflushed.length === 0) s.unflushedSince = Date.now();
          s.unflushed.push(batch);
        }
        return true;
      } catch (e) {
        this.opts.onError?.(e, topic, s.group, attempt);
        if (attempt >= this.maxAttempts) {
          this.dropped += batch.length;
          return false;
        }
      }
    }
  }

  /** Flushes a checkpointed subscription when due (or `force`d); a rewind offers the unflushed batches again. */
  private async checkpoint(topic: string, s: Subscription, force = false): Promise<void> {
    const cp = s.checkpointing;
    if (!cp || s.unflushed.length === 0) return;
    const count = s.unflushed.reduce((n, b) => n + b.length, 0);
    if (!flushDue(cp, force || s.queue.length === 0, count, s.unflushedSince)) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await cp.flush(0);
        s.unflushed = [];
        return;
      } catch (e) {
        this.opts.onError?.(e, topic, s.group, attempt);
        if (e instanceof RewindError && attempt < this.maxAttempts) {
          // The consumer dropped its state: everything since the last flush is offered again.
          const again = s.unflushed;
          s.unflushed = [];
          for (const b of again) await this.handle(topic, s, b);
        } else if (attempt >= this.maxAttempts) {
          this.dropped += count;
          s.unflushed = [];
          return;
        }
      }
    }
  }
}
