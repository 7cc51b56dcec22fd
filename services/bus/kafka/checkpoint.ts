/**
 * The checkpoint runner of checkpointed subscriptions (see {@link Checkpointing}): it counts what a
 * partition handled since its last commit, flushes when due and commits only what a flush made
 * durable (with the metadata the subscription asks for: `KafkaCheckpointing`), retries a
 * failing flush, rewinds after a {@link RewindError}, flushes at stop, and drops the unflushed work
 * of partitions a rebalance gave to another consumer.
 */
import type { EachBatchPayload } from 'kafkajs';
import type { Logger } from '../../logging.js';
import { flushDue, RewindError } from '../bus.js';
import type { Backoff } from './backoff.js';
import type { OffsetCommitter } from './commit.js';
import type { KafkaBusSettings, KafkaBusStats } from './options.js';
import { movePosition, type Subscription } from './subscription.js';

/** Flushes and commits the partitions of checkpointed subscriptions. */
export class CheckpointRunner {
  constructor(
    private readonly deps: {
      stats: KafkaBusStats;
      log: Logger;
      backoff: Backoff;
      committer: OffsetCommitter;
      onHandlerError: KafkaBusSettings['onHandlerError'];
    },
  ) {}

  /**
   * Records a handled chunk (offsets `first`..`last`, `count` messages) of a partition as unflushed;
   * true when the partition is due a {@link flush} ({@link flushDue}).
   */
  record(sub: Subscription, partition: number, first: string, last: string, count: number, caughtUp: boolean): boolean {
    const u = sub.unflushed.get(partition);
    if (!u) sub.unflushed.set(partition, { first, last, count, since: Date.now() });
    else {
      if (BigInt(last) > BigInt(u.last)) u.last = last;
      u.count += count;
    }
    const pending = sub.unflushed.get(partition)!;
    return flushDue(sub.checkpointing!, caughtUp, pending.count, pending.since);
  }

  /**
   * Flushes a checkpointed partition and commits what the flush made durable, retrying a failing
   * flush with backoff; after a {@link RewindError} the partition is offered again from the first
   * unflushed message. False when the batch must stop (rewound, partition lost, consumer stopping).
   */
  async flush(sub: Subscription, p: EachBatchPayload): Promise<boolean> {
    const { stats, log, backoff, committer, onHandlerError } = this.deps;
    const { topic, partition } = p.batch;
    const u = sub.unflushed.get(partition);
    if (!u) return true;
    for (let attempt = 1; ; attempt++) {
      try {
        await sub.checkpointing!.flush(partition);
        sub.unflushed.delete(partition);
        await committer.commit(p, u.last, sub.checkpointing!.commitMetadata?.(partition));
        return true;
      } catch (e) {
        stats.batchFailures++;
        if (e instanceof RewindError) {
          sub.unflushed.delete(partition);
          log.warn(
            { err: e, topic, partition, group: sub.groupId, offset: u.first },
            'consumer dropped its unflushed state; offering the partition again from its last commit',
          );
          // Batches of the partition fetched already are not handled: kafkajs fetches them again.
          movePosition(sub, partition);
          sub.consumer?.seek({ topic, partition, offset: u.first });
          return false;
        }
        onHandlerError?.(e, topic, sub.group, attempt);
        log.warn({ err: e, topic, partition, group: sub.groupId, attempt, offset: u.last }, 'checkpoint flush failed; retrying it');
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await backoff.sleep(attempt, sub.abort.signal);
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await p.heartbeat();
      }
    }
  }

  /** At stop, one attempt per partition to flush and commit what was handled (else the next owner gets it again). */
  async flushOnStop(sub: Subscription): Promise<void> {
    const consumer = sub.consumer;
    if (!sub.checkpointing || !consumer) return;
    // Batches in hand stop at their next chunk (the subscription is stopping); what they handled is flushed here.
    await Promise.all(sub.busy.values());
    for (const [partition, u] of [...sub.unflushed]) {
      if (sub.unflushed.get(partition) !== u) continue;
      try {
        await sub.checkpointing.flush(partition);
        sub.unflushed.delete(partition);
        const metadata = sub.checkpointing.commitMetadata?.(partition);
        await consumer.commitOffsets([
          { topic: sub.topic, partition, offset: (BigInt(u.last) + 1n).toString(), ...(metadata === undefined ? {} : { metadata }) },
        ]);
      } catch (e) {
        this.deps.log.warn(
          { err: e, topic: sub.topic, partition, group: sub.groupId },
          'flush at stop failed; the next owner of the partition gets its uncommitted messages again',
        );
      }
    }
  }

  /** After a rebalance: the unflushed work of partitions not in `mine` is their new owner's now. */
  assigned(sub: Subscription, mine: number[]): void {
    if (!sub.checkpointing) return;
    movePosition(sub);
    for (const p of sub.unflushed.keys()) if (!mine.includes(p)) sub.unflushed.delete(p);
    sub.checkpointing.assigned?.(mine);
  }
}
