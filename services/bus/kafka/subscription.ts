/** What one subscription holds while its consumer runs; its supervisor, batch runner and checkpoint runner share it. */
import type { Consumer } from 'kafkajs';
import type { BusHandler, Checkpointing, SubscribeOptions } from '../bus.js';

/**
 * {@link Checkpointing} with what only Kafka keeps: metadata committed with a partition's offsets
 * after each flush (the correlator records its checkpoint's generation there, so that a checkpoint
 * Redis lost can be told from one that never existed). Pass it as `checkpointing`.
 */
export interface KafkaCheckpointing extends Checkpointing {
  commitMetadata?(partition: number): string | undefined;
}

/** One consumer group's subscription to one topic. */
export interface Subscription {
  topic: string;
  group: string;
  groupId: string;
  handler: BusHandler<unknown>;
  checkpointing?: KafkaCheckpointing;
  /** Deleted from Kafka when the subscription stops. */
  ephemeral: boolean;
  parse?: SubscribeOptions['parse'];
  /** Per partition, the messages handled but not yet flushed and committed (checkpointed subscriptions). */
  unflushed: Map<number, Unflushed>;
  /** Per partition, the batch or flush in progress: a flush at stop waits for it. */
  busy: Map<number, Promise<void>>;
  /**
   * Where fetched batches stand (checkpointed subscriptions, whose batches are handled while the
   * next is fetched): bumped for all partitions at a rebalance and for one at a rewind. A batch is
   * handled only while both are what they were when it was fetched.
   */
  positions: { rebalances: number; rewinds: Map<number, number> };
  consumer?: Consumer;
  stopping: boolean;
  /** Cancels backoff sleeps when the subscription stops. */
  abort: AbortController;
  supervisor?: Promise<void>;
  stopped?: Promise<void>;
}

/** The messages of one partition handled since its last commit. */
export interface Unflushed {
  /** Offset of the first message handled since the last commit: where a rewind starts again. */
  first: string;
  last: string;
  count: number;
  since: number;
}

/** A subscription of `groupId` to `topic`, not yet running. */
export function newSubscription(topic: string, group: string, groupId: string, handler: BusHandler<unknown>, options: SubscribeOptions): Subscription {
  return {
    topic,
    group,
    groupId,
    handler,
    ...(options.checkpointing ? { checkpointing: options.checkpointing } : {}),
    ephemeral: options.ephemeral ?? false,
    ...(options.parse ? { parse: options.parse } : {}),
    unflushed: new Map(),
    busy: new Map(),
    positions: { rebalances: 0, rewinds: new Map() },
    stopping: false,
    abort: new AbortController(),
  };
}

/** Where a fetched batch of `partition` stands: still current while {@link isCurrent} says so. */
export type Position = { rebalances: number; rewinds: number };

export function positionOf(sub: Subscription, partition: number): Position {
  return { rebalances: sub.positions.rebalances, rewinds: sub.positions.rewinds.get(partition) ?? 0 };
}

/** Whether batches fetched at `pos` may still be handled: no rebalance, and no rewind of the partition, since. */
export function isCurrent(sub: Subscription, partition: number, pos: Position): boolean {
  return pos.rebalances === sub.positions.rebalances && pos.rewinds === (sub.positions.rewinds.get(partition) ?? 0);
}

/**
 * The partition's position moves back (a seek follows): batches of it fetched before are not
 * handled. Without `partition`, a rebalance: kafkajs fetches every partition from its commit again.
 */
export function movePosition(sub: Subscription, partition?: number): void {
  if (partition === undefined) sub.positions.rebalances++;
  else sub.positions.rewinds.set(partition, (sub.positions.rewinds.get(partition) ?? 0) + 1);
}
