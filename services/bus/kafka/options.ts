/** What a {@link KafkaBus} is configured with, what it counts, and the defaults it applies. */
import type { Logger } from '../../logging.js';

/** Options of {@link KafkaBus}. */
export interface KafkaBusOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  clientId: string;
  /** Prefix of topic names and consumer group ids (default `kubevigil`). */
  topicPrefix?: string;
  /** Partitions of the topics `start()` creates (default 12): the most correlators that can share the work. */
  partitions?: number;
  /** Replication factor of created topics (default: the broker's `default.replication.factor`). */
  replicationFactor?: number;
  logger?: Logger;
  /** Longest a publish waits for the brokers' acknowledgement before failing (default 3000 ms). */
  publishTimeoutMs?: number;
  /** Retry-After advised when the brokers are unavailable (default 5 s). */
  retryAfterSeconds?: number;
  /** TCP connect timeout per broker (default 1000 ms). */
  connectionTimeoutMs?: number;
  /** Longest `start()` waits for the brokers (default 30,000 ms). */
  startTimeoutMs?: number;
  /** Most messages handed to a handler at once; larger fetched batches are split (default 2000). */
  maxBatchMessages?: number;
  /**
   * Largest fetch per partition (default 1 MiB, the signals topic's message limit; a larger message
   * is still fetched whole). Fetches of several MiB per partition drained a backlog slower: each
   * response is one buffer that every message of it keeps alive until handled, and the garbage
   * collector spent about twice as long.
   */
  maxBytesPerPartition?: number;
  /** Backoff between attempts of a failing batch (default 200 ms doubling up to 30 s). */
  retryBackoffMs?: { initial: number; max: number };
  /** Partitions one consumer processes at the same time (default 1). */
  partitionsConsumedConcurrently?: number;
  /** Longest a fetch waits for new messages; also bounds how long stopping a consumer takes (default 500 ms). */
  maxWaitTimeMs?: number;
  /**
   * Consumer group session timeout (default 30,000 ms): how long a consumer that died without
   * leaving keeps its partitions before the group hands them to another.
   */
  sessionTimeoutMs?: number;
  /**
   * Longest stopping a consumer waits for its batch in flight (default 15,000 ms); an abandoned
   * batch is not committed, so the next owner of the partition gets it again.
   */
  closeTimeoutMs?: number;
  /** Called with each fetched batch's consumer lag (messages behind the partition's end). */
  onLag?: (topic: string, group: string, partition: number, lag: number) => void;
  /** Called each time a handler rejects (the batch is retried, never skipped). */
  onHandlerError?: (err: unknown, topic: string, group: string, attempt: number) => void;
}

/** Counts of what the bus did, for metrics (messages unless said otherwise). */
export interface KafkaBusStats {
  published: number;
  publishFailed: number;
  handled: number;
  /** Attempts at a batch that failed (handler or dead-letter write) and will be retried. */
  batchFailures: number;
  deadLettered: number;
  /** Offset commits that failed (each retried; the batch is redelivered if all fail). */
  commitFailures: number;
}

/** {@link KafkaBusOptions} with every default applied: what the parts of the bus read. */
export type KafkaBusSettings = Required<Omit<KafkaBusOptions, 'replicationFactor' | 'logger' | 'onLag' | 'onHandlerError'>> &
  Pick<KafkaBusOptions, 'replicationFactor' | 'onLag' | 'onHandlerError'>;

/** Applies the defaults documented on {@link KafkaBusOptions}, all in this one place. */
export function resolveOptions(opts: KafkaBusOptions): KafkaBusSettings {
  return {
    brokers: opts.brokers,
    clientId: opts.clientId,
    topicPrefix: opts.topicPrefix ?? 'kubevigil',
    partitions: opts.partitions ?? 12,
    ...(opts.replicationFactor === undefined ? {} : { replicationFactor: opts.replicationFactor }),
    publishTimeoutMs: opts.publishTimeoutMs ?? 3000,
    retryAfterSeconds: opts.retryAfterSeconds ?? 5,
    connectionTimeoutMs: opts.connectionTimeoutMs ?? 1000,
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    maxBatchMessages: Math.max(1, opts.maxBatchMessages ?? 2000),
    maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
    retryBackoffMs: opts.retryBackoffMs ?? { initial: 200, max: 30_000 },
    partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 1,
    maxWaitTimeMs: opts.maxWaitTimeMs ?? 500,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
    closeTimeoutMs: opts.closeTimeoutMs ?? 15_000,
    ...(opts.onLag ? { onLag: opts.onLag } : {}),
    ...(opts.onHandlerError ? { onHandlerError: opts.onHandlerError } : {}),
  };
}

/** A {@link KafkaBusStats} with every count at zero. */
export function newStats(): KafkaBusStats {
  return { published: 0, publishFailed: 0, handled: 0, batchFailures: 0, deadLettered: 0, commitFailures: 0 };
}
