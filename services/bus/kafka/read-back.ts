/**
 * Read-back: the messages at given offsets of one partition, read by a consumer of a throwaway
 * group. Restoring checkpointed state by reference uses it (see docs/architecture.md), so it is rare.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from '../../logging.js';
import type { SubscribeOptions } from '../bus.js';
import { consumerGroupId, type Topic } from '../topics.js';
import type { AdminConnection } from './admin.js';
import { RETRY } from './client.js';
import { decode } from './codec.js';
import { withDeadline } from './deadline.js';
import type { BusErrors } from './errors.js';
import type { KafkaBusSettings } from './options.js';
import type { BusState } from './state.js';

/** Reads messages back by offset, leaving no consumer group behind. */
export class ReadBack {
  constructor(
    private readonly deps: {
      kafka: Kafka;
      admin: AdminConnection;
      settings: Pick<KafkaBusSettings, 'topicPrefix' | 'sessionTimeoutMs'>;
      state: BusState;
      errors: BusErrors;
      log: Logger;
    },
  ) {}

  /**
   * Reads the messages at the given offsets of one partition (what is still there: retention may
   * have removed some, and offsets past the end do not exist yet). A consumer of a group of its own
   * seeks to the lowest offset, reads up to the highest one or the partition's end, and is deleted
   * with its group; nothing is committed. It fails after `timeoutMs` (half the session timeout, at
   * most 20 s) with a retryable {@link KubevigilError}, once the client has let go of the consumer
   * (its own request timeouts bound that). A new group waits the broker's
   * `group.initial.rebalance.delay.ms` (3 s by default).
   */
  async read<T>(
    topic: Topic<T>,
    partition: number,
    offsets: readonly string[],
    options: { timeoutMs?: number; parse?: SubscribeOptions['parse'] } = {},
  ): Promise<Map<string, T>> {
    const { kafka, admin, settings, state, errors, log } = this.deps;
    // A read runs inside a batch of the caller's consumer, which does not heartbeat meanwhile:
    // it must end well within that consumer's session.
    const timeoutMs = options.timeoutMs ?? Math.min(20_000, Math.floor(settings.sessionTimeoutMs / 2));
    const wanted = new Set(offsets);
    const out = new Map<string, T>();
    if (wanted.size === 0) return out;
    if (state.closed) throw errors.unavailable(`reading ${topic.name}/${partition}`, 0, new Error('the bus is closed'));
    const sorted = [...wanted].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let from = sorted[0]!;
    let to = sorted[sorted.length - 1]!;
    const groupId = consumerGroupId(settings.topicPrefix, `read-${randomUUID()}`);
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, maxBytesPerPartition: 8 * 1024 * 1024, allowAutoTopicCreation: false, retry: RETRY });
    let connected = false;
    let cancelled = false;
    let inRange = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const reading = (async () => {
      const client = await admin.get();
      const ends = (await client.fetchTopicOffsets(topic.name)).find((o) => o.partition === partition);
      if (!ends) throw new Error(`${topic.name} has no partition ${partition}`);
      if (BigInt(ends.low) > from) from = BigInt(ends.low);
      if (BigInt(ends.high) - 1n < to) to = BigInt(ends.high) - 1n;
      if (from > to || cancelled) return;
      connected = true;
      await consumer.connect();
      // Not from the beginning: the seek below says where; other partitions are paused unread.
      await consumer.subscribe({ topics: [topic.name], fromBeginning: false });
      if (cancelled) return;
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, pause }) => {
          if (batch.partition !== partition) return void pause();
          for (const m of batch.messages) {
            const at = BigInt(m.offset);
            if (at < from || at > to) continue;
            inRange = true;
            if (!wanted.has(m.offset)) continue;
            const d = decode(m, options.parse);
            if (d.kind === 'ok') out.set(m.offset, d.value as T);
          }
          // `to` exists (it was below the end when the read began), so reading reaches it. A batch
          // fetched from the end before the seek took effect lies past `to` and proves nothing.
          if (inRange && BigInt(batch.lastOffset()) >= to) {
            pause();
            finish();
          }
        },
      });
      consumer.seek({ topic: topic.name, partition, offset: from.toString() });
      await finished;
    })();
    state.track(reading);
    try {
      await withDeadline(reading, timeoutMs, `reading ${wanted.size} message(s) of ${topic.name}/${partition}`);
      return out;
    } catch (e) {
      throw errors.unavailable(`reading ${wanted.size} message(s) of ${topic.name}/${partition} back`, timeoutMs, e);
    } finally {
      cancelled = true;
      finish();
      // Bounded by the client's own request timeouts and retries; then nothing of the read is left.
      await reading.catch(() => undefined);
      if (connected) {
        await consumer.disconnect().catch(() => undefined);
        await admin
          .get()
          .then((a) => a.deleteGroups([groupId]))
          .catch((err: unknown) => log.debug({ err, group: groupId }, 'could not delete the group of a read; Kafka expires it'));
      }
    }
  }
}
