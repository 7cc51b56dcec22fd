/** The bus: how ingest hands signals to correlation. Implemented in memory (embedded) and on Kafka. */
import type { Topic } from './topics.js';

/** One message: a partitioning key and a value. */
export interface BusMessage<T> {
  key: string;
  value: T;
  /** Where the message came from, for consumers that keep per-partition state (Kafka only). */
  partition?: number;
  offset?: string;
}

const written = new WeakMap<object, string>();

/**
 * Marks `value` as already written as `json` (e.g. an incident a checkpoint just saved): a bus that
 * encodes values (Kafka) sends that JSON instead of writing the value again. The JSON must be what
 * `JSON.stringify(value)` gives, and the value must not change until the publish resolved.
 */
export function withJson<T extends object>(value: T, json: string): T {
  written.set(value, json);
  return value;
}

/** The JSON {@link withJson} recorded for `value`, if any. */
export function writtenJson(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? written.get(value) : undefined;
}

/** Handles a batch of messages; a rejection means they were not processed and will be offered again. */
export type BusHandler<T> = (batch: BusMessage<T>[]) => Promise<void>;

/**
 * How a consumer that keeps state between batches makes it durable (as Kafka Streams does with its
 * commit interval). With it, a handler's resolution means "applied in memory"; the bus then calls
 * `flush` for the partition when it has caught up with the partition's end, when `intervalMs` passed
 * since the oldest unflushed message, or when `maxMessages` are unflushed, and before it stops; it
 * commits the partition's offsets only after `flush` resolved. A rejected flush is retried with
 * backoff, and no more messages of that partition are handled meanwhile. A flush rejected with
 * {@link RewindError} means the consumer dropped its unflushed state: the bus offers everything
 * since the last commit again.
 */
export interface Checkpointing {
  flush(partition: number): Promise<void>;
  /** Longest a backlog is handled without a flush (default {@link CHECKPOINT_DEFAULTS}). */
  intervalMs?: number;
  /** Most messages handled without a flush (default {@link CHECKPOINT_DEFAULTS}). */
  maxMessages?: number;
  /**
   * Called with the partitions assigned after each rebalance: state and unflushed work of other
   * partitions belong to their new owner, who gets their uncommitted messages again.
   */
  assigned?(partitions: number[]): void;
}

/**
 * How much of a backlog a checkpointed consumer handles between flushes. A flush rewrites the state
 * every active group holds, so flushing a drain less often makes it faster; what it costs is the
 * work redone after a crash (at most this much) and how late incident updates are while a backlog
 * drains. A consumer that has caught up flushes after every batch regardless.
 */
export const CHECKPOINT_DEFAULTS = { intervalMs: 5000, maxMessages: 50_000 } as const;

/** Whether a checkpointed consumer flushes now: caught up, or `count` messages since `since` (ms) reach a bound. */
export function flushDue(cp: Checkpointing, caughtUp: boolean, count: number, since: number): boolean {
  return caughtUp || count >= (cp.maxMessages ?? CHECKPOINT_DEFAULTS.maxMessages) || Date.now() - since >= (cp.intervalMs ?? CHECKPOINT_DEFAULTS.intervalMs);
}

/** A flush that cannot succeed from the consumer's current state: redeliver from the last commit. */
export class RewindError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RewindError';
  }
}

/** How a subscription runs. */
export interface SubscribeOptions {
  /** Makes a stateful consumer's effects durable before offsets are committed (see {@link Checkpointing}). */
  checkpointing?: Checkpointing;
  /**
   * A consumer group of this process alone (e.g. an API replica's view of the incidents): it is
   * deleted when the subscription stops, so restarts and rollouts do not pile groups up on Kafka.
   */
  ephemeral?: boolean;
  /**
   * Kafka only: how a message's JSON becomes its value (default `JSON.parse`), given its headers;
   * e.g. the correlator reads signals without the evidence it does not keep. A throw sends the
   * message to the dead-letter topic.
   */
  parse?: MessageParser;
}

/**
 * How a Kafka consumer turns a message's JSON into its value (see {@link SubscribeOptions.parse}).
 * With `bytes`, it is given the raw value (and all the headers) instead, and can leave parts it
 * does not read undecoded; its `header` reads the message's headers during the call only.
 */
export type MessageParser = ((json: string, header: (name: string) => string | undefined) => unknown) & {
  bytes?: (value: Buffer, header: (name: string) => string | undefined, headers?: Readonly<Record<string, unknown>>) => unknown;
};

/** Publishes and subscribes; `publish` resolves only once the bus has taken responsibility for the messages. */
export interface Bus {
  publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void>;
  /** Subscribes a consumer group; returns a function that stops it. */
  subscribe<T>(topic: Topic<T>, group: string, handler: BusHandler<T>, options?: SubscribeOptions): () => Promise<void>;
  /** Delivers what is queued, then stops. */
  close(): Promise<void>;
}
