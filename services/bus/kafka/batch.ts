/**
 * The batch runner: what a subscription's consumer does with each fetched batch. Chunk by chunk it
 * decodes, calls the handler (a failing chunk is retried with backoff, never skipped), parks what
 * cannot be decoded on the dead-letter topic, then commits, or for a checkpointed subscription
 * leaves committing to the checkpoint runner.
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
import type { Subscription } from './subscription.js';
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

  /** Decode, handle, park the undecodable, then commit (or, checkpointed, flush when due and commit) — chunk by chunk. */
  private async runBatch(sub: Subscription, p: EachBatchPayload): Promise<void> {
    const { settings, committer, checkpoints } = this.deps;
    const { maxBatchMessages } = settings;
    const { batch } = p;
    settings.onLag?.(batch.topic, sub.group, batch.partition, Number(batch.offsetLag()));
    for (let i = 0; i < batch.messages.length; i += maxBatchMessages) {
      if (sub.stopping || !p.isRunning() || p.isStale()) return;
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
      if (!sub.checkpointing) {
        await committer.commit(p, last);
        p.resolveOffset(last);
      } else {
        p.resolveOffset(last);
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
