/**
 * The batch runner: what a subscription's consumer does with each fetched batch. Chunk by chunk it
 * decodes, calls the handler (a failing chunk is retried with backoff, never skipped), parks what
 * cannot be decoded on the dead-letter topic, then commits, or for a checkpointed subscription
 * leaves committing to the checkpoint runner.
 *
 * kafkajs fetches again only once every batch of its last fetch was handled, so a consumer that
 * handles batches in turn waits for the broker between them. A checkpointed subscription commits
 * only what a flush made durable, never a batch as such: its batches are handled while kafkajs
 * fetches the next ones ({@link BatchRunner.pipeline}), as the Java consumer fetches ahead of
 * `poll()`.
 */
import type { Context } from '@opentelemetry/api';
import type { EachBatchPayload } from 'kafkajs';
import type { Logger } from '../../logging.js';
import type { BusMessage } from '../bus.js';
import type { Backoff } from './backoff.js';
import type { CheckpointRunner } from './checkpoint.js';
import { decode } from './codec.js';
import type { OffsetCommitter } from './commit.js';
import type { DeadLetter, DeadLetterWriter } from './dead-letter.js';
import type { KafkaBusSettings, KafkaBusStats } from './options.js';
import { isCurrent, movePosition, positionOf, type Position, type Subscription } from './subscription.js';
import { inConsumerSpan } from './tracing.js';

/** Runs the fetched batches of subscriptions, one batch per partition at a time. */
export class BatchRunner {
  constructor(
    private readonly deps: {
      settings: Pick<KafkaBusSettings, 'maxBatchMessages' | 'onLag' | 'onHandlerError'>;
      stats: KafkaBusStats;
      log: Logger;
      backoff: Backoff;
      deadLetters: DeadLetterWriter;
      committer: OffsetCommitter;
      checkpoints: CheckpointRunner;
    },
  ) {}

  /** One fetched batch of one partition (kafkajs `eachBatch`), run exclusively of a flush at stop for the same partition. */
  async onBatch(sub: Subscription, p: EachBatchPayload): Promise<void> {
    if (sub.stopping) return;
    if (sub.checkpointing) return this.pipeline(sub, p);
    const partition = p.batch.partition;
    const before = sub.busy.get(partition);
    let done!: () => void;
    sub.busy.set(partition, new Promise<void>((r) => (done = r)));
    try {
      await before;
      await this.runBatch(sub, p);
    } finally {
      done();
    }
  }

  /**
   * A checkpointed subscription's batch: handled after the partition's previous batch, but given
   * back to kafkajs as soon as that one is done, with its offsets resolved, so that kafkajs fetches
   * the next batch while this one is handled (one batch per partition waits so at most: a fetch's
   * worth of memory). Commits still come only from flushes of what was handled. A batch is handled
   * only from the position it was fetched at: after a rewind or a rebalance, batches fetched
   * before are dropped (kafkajs fetches them again from the new position). A batch that fails
   * partway moves its partition back to the first message it did not handle.
   */
  private async pipeline(sub: Subscription, p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const partition = batch.partition;
    const before = sub.busy.get(partition);
    const position = positionOf(sub, partition);
    const progress = { next: batch.messages[0]?.offset };
    const run = (async () => {
      await before;
      // kafkajs sends its next fetch from the microtasks that follow this batch's resolution: let
      // them run before the batch takes the event loop.
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        await this.runBatch(sub, p, position, progress);
      } catch (e) {
        this.failedPartway(sub, p, progress.next, e);
      }
    })();
    sub.busy.set(partition, run);
    // kafkajs fetches from the offset resolved last.
    if (batch.messages.length) p.resolveOffset(batch.lastOffset());
    await before;
  }

  /** A pipelined batch threw partway (say, a heartbeat during a rebalance): its partition is fetched again from `next`. */
  private failedPartway(sub: Subscription, p: EachBatchPayload, next: string | undefined, e: unknown): void {
    const { topic, partition } = p.batch;
    this.deps.log.warn(
      { err: e, topic, partition, group: sub.groupId, offset: next },
      'bus batch failed partway; fetching it again from its first message not handled',
    );
    // A consumer that stops leaves it to the partition's next owner, from the last commit.
    if (next === undefined || sub.stopping || !p.isRunning()) return;
    movePosition(sub, partition);
    sub.consumer?.seek({ topic, partition, offset: next });
  }

  /**
   * Decode, handle, park the undecodable, then commit (or, checkpointed, flush when due and commit) —
   * chunk by chunk. Pipelined, only while the batch's `position` is current, recording in
   * `progress` the first message not handled yet.
   */
  private async runBatch(sub: Subscription, p: EachBatchPayload, position?: Position, progress?: { next: string | undefined }): Promise<void> {
    const { settings, committer, checkpoints } = this.deps;
    const { maxBatchMessages } = settings;
    const { batch } = p;
    settings.onLag?.(batch.topic, sub.group, batch.partition, Number(batch.offsetLag()));
    for (let i = 0; i < batch.messages.length; i += maxBatchMessages) {
      if (sub.stopping || !p.isRunning() || p.isStale()) return;
      if (position && !isCurrent(sub, batch.partition, position)) return;
      const chunk = batch.messages.slice(i, i + maxBatchMessages);
      const good: BusMessage<unknown>[] = [];
      const contexts: Context[] = [];
      const dead: DeadLetter[] = [];
      for (const message of chunk) {
        const d = decode(message, sub.parse);
        if (d.kind === 'ok') {
          good.push({ key: message.key?.toString('utf8') ?? '', value: d.value, partition: batch.partition, offset: message.offset });
          contexts.push(d.ctx);
        } else if (d.kind === 'dead') {
          dead.push({ message, reason: d.reason });
        }
      }
      if (!(await this.process(sub, p, good, contexts, dead))) return;
      const first = chunk[0]!.offset;
      const last = chunk[chunk.length - 1]!.offset;
      if (progress) progress.next = batch.messages[i + maxBatchMessages]?.offset;
      if (!sub.checkpointing) {
        await committer.commit(p, last);
        p.resolveOffset(last);
      } else {
        // Resolved when the batch was handed over (pipeline): resolving an earlier offset now
        // would make kafkajs fetch again what it has fetched.
        const caughtUp = i + maxBatchMessages >= batch.messages.length && batch.offsetLag() === '0';
        if (checkpoints.record(sub, batch.partition, first, last, chunk.length, caughtUp) && !(await checkpoints.flush(sub, p))) return;
      }
      if (p.isRunning()) await p.heartbeat();
    }
  }

  /** Retries until the chunk is handled and parked; false when the partition was lost or the consumer stops. */
  private async process(sub: Subscription, p: EachBatchPayload, good: BusMessage<unknown>[], contexts: Context[], dead: DeadLetter[]): Promise<boolean> {
    const { settings, stats, log, backoff, deadLetters } = this.deps;
    const { topic, partition } = p.batch;
    let handled = good.length === 0;
    let parked = dead.length === 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!handled) {
          await inConsumerSpan({ topic: sub.topic, groupId: sub.groupId, partition, count: good.length, contexts }, () => sub.handler(good));
          handled = true;
          stats.handled += good.length;
        }
        if (!parked) {
          await deadLetters.park(topic, partition, dead);
          parked = true;
        }
        return true;
      } catch (e) {
        stats.batchFailures++;
        settings.onHandlerError?.(e, topic, sub.group, attempt);
        log.warn({ err: e, topic, partition, group: sub.groupId, attempt, offset: p.batch.firstOffset() }, 'bus batch failed; retrying it');
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await backoff.sleep(attempt, sub.abort.signal);
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await p.heartbeat();
      }
    }
  }
}
