/**
 * Read-back: messages of a topic read again by a consumer of a throwaway group — at given offsets of
 * one partition (restoring checkpointed state by reference, see docs/architecture.md), or everything
 * written since a time (rebuilding a correlator checkpoint that Redis lost) — and the offsets a
 * consumer group committed. Both are rare: takeovers and rebuilds.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { pino } from 'pino';
import type { Logger } from '../../logging.js';
import type { BusMessage, SubscribeOptions } from '../bus.js';
import { consumerGroupId, type Topic } from '../topics.js';
import { AdminConnection } from './admin.js';
import { createClient, RETRY } from './client.js';
import { decode } from './codec.js';
import { withDeadline } from './deadline.js';
import { BusErrors } from './errors.js';
import { resolveOptions, type KafkaBusOptions, type KafkaBusSettings } from './options.js';
import { BusState } from './state.js';

/** A consumer group's committed position in one partition: the next offset to consume, and the metadata committed with it. */
export interface CommittedOffset {
  offset: string;
  metadata: string | null;
}

/** Offsets `from` (inclusive) to `to` (exclusive) of one partition. */
interface Range {
  partition: number;
  from: bigint;
  to: bigint;
}

/** Everything written since a time defaults to this deadline: it is read outside any consumer's batch (see {@link ReadBack.since}). */
const SINCE_TIMEOUT_MS = 60_000;

/** Reads messages back by offset or time, leaving no consumer group behind. */
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
    // A read runs inside a batch of the caller's consumer, which does not heartbeat meanwhile:
    // it must end well within that consumer's session.
    const timeoutMs = options.timeoutMs ?? Math.min(20_000, Math.floor(this.deps.settings.sessionTimeoutMs / 2));
    const wanted = new Set(offsets);
    const out = new Map<string, T>();
    if (wanted.size === 0) return out;
    const sorted = [...wanted].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const what = `reading ${wanted.size} message(s) of ${topic.name}/${partition}`;
    await this.scan(
      topic.name,
      what,
      timeoutMs,
      async (admin) => {
        const ends = (await admin.fetchTopicOffsets(topic.name)).find((o) => o.partition === partition);
        if (!ends) throw new Error(`${topic.name} has no partition ${partition}`);
        const from = max(sorted[0]!, BigInt(ends.low));
        const to = min(sorted[sorted.length - 1]! + 1n, BigInt(ends.high));
        return [{ partition, from, to }];
      },
      (_, m) => {
        if (!wanted.has(m.offset)) return;
        const d = decode(m, options.parse);
        if (d.kind === 'ok') out.set(m.offset, d.value as T);
      },
    );
    return out;
  }

  /**
   * Hands `each` every message of `topic` written at or after `since` (ms since epoch, by the
   * messages' timestamps), partition by partition in offset order: of every partition up to its
   * end, or of `partition` only, up to `before` (exclusive) when given; at most the last `max` of
   * each partition. Messages that do not decode are left out. It is meant to run outside a batch of
   * the caller's consumer (it may take longer than a session): it fails after `timeoutMs` (60 s).
   */
  async since<T>(
    topic: Topic<T>,
    since: number,
    each: (m: BusMessage<T>) => void,
    options: { partition?: number; before?: string; max?: number; timeoutMs?: number; parse?: SubscribeOptions['parse'] } = {},
  ): Promise<void> {
    const scope = options.partition === undefined ? topic.name : `${topic.name}/${options.partition}`;
    await this.scan(
      topic.name,
      `reading ${scope} since ${new Date(since).toISOString()}`,
      options.timeoutMs ?? SINCE_TIMEOUT_MS,
      async (admin) => {
        // Negative timestamps mean "latest" and "earliest" to Kafka: a time before 1970 is the beginning.
        const [at, ends] = await Promise.all([admin.fetchTopicOffsetsByTimestamp(topic.name, Math.max(0, since)), admin.fetchTopicOffsets(topic.name)]);
        const first = new Map(at.map((o) => [o.partition, BigInt(o.offset)]));
        const ranges: Range[] = [];
        for (const e of ends) {
          if (options.partition !== undefined && e.partition !== options.partition) continue;
          let to = BigInt(e.high);
          if (options.before !== undefined) to = min(to, BigInt(options.before));
          // No message since `since`: the broker answers the end.
          let from = max(first.get(e.partition) ?? to, BigInt(e.low));
          if (options.max !== undefined) from = max(from, to - BigInt(options.max));
          ranges.push({ partition: e.partition, from, to });
        }
        return ranges;
      },
      (partition, m) => {
        const d = decode(m, options.parse);
        if (d.kind === 'ok') each({ key: m.key?.toString('utf8') ?? '', value: d.value as T, partition, offset: m.offset });
      },
    );
  }

  /** The offsets `groupId` committed on `topic`, by partition; partitions it never committed are left out. */
  async committed(groupId: string, topic: string, timeoutMs = 10_000): Promise<Map<number, CommittedOffset>> {
    const { admin, errors } = this.deps;
    const what = `reading the offsets group ${groupId} committed on ${topic}`;
    try {
      const res = await withDeadline(
        admin.get().then((a) => a.fetchOffsets({ groupId, topics: [topic] })),
        timeoutMs,
        what,
      );
      const out = new Map<number, CommittedOffset>();
      for (const p of res.find((t) => t.topic === topic)?.partitions ?? []) {
        // -1: nothing committed.
        if (BigInt(p.offset) >= 0n) out.set(p.partition, { offset: p.offset, metadata: p.metadata });
      }
      return out;
    } catch (e) {
      throw errors.unavailable(what, timeoutMs, e);
    }
  }

  /**
   * Reads the ranges `plan` returns with a consumer of a group of its own: it seeks each partition
   * to its range's start, hands `each` the messages in range, and stops once every range reached its
   * end; then the consumer is deleted with its group, and nothing was committed.
   */
  private async scan(
    topic: string,
    what: string,
    timeoutMs: number,
    plan: (admin: Admin) => Promise<Range[]>,
    each: (partition: number, m: KafkaMessage) => void,
  ): Promise<void> {
    const { kafka, admin, settings, state, errors, log } = this.deps;
    if (state.closed) throw errors.unavailable(what, 0, new Error('the bus is closed'));
    const groupId = consumerGroupId(settings.topicPrefix, `read-${randomUUID()}`);
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, maxBytesPerPartition: 8 * 1024 * 1024, allowAutoTopicCreation: false, retry: RETRY });
    let connected = false;
    let cancelled = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const reading = (async () => {
      // Offsets past the end, or gone with retention: nothing to wait for.
      const ranges = (await plan(await admin.get())).filter((r) => r.from < r.to);
      if (!ranges.length || cancelled) return;
      const open = new Map(ranges.map((r) => [r.partition, { ...r, inRange: false }]));
      connected = true;
      await consumer.connect();
      // Not from the beginning: the seeks below say where; other partitions are paused unread.
      await consumer.subscribe({ topics: [topic], fromBeginning: false });
      if (cancelled) return;
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch, pause }) => {
          const r = open.get(batch.partition);
          if (!r) return void pause();
          for (const m of batch.messages) {
            const at = BigInt(m.offset);
            if (at < r.from || at >= r.to) continue;
            r.inRange = true;
            each(batch.partition, m);
          }
          // The range's last offset existed when the read began, so reading reaches it. A batch
          // fetched from the end before the seek took effect lies past the range and proves nothing.
          if (r.inRange && BigInt(batch.lastOffset()) >= r.to - 1n) {
            pause();
            open.delete(batch.partition);
            if (!open.size) finish();
          }
        },
      });
      for (const r of ranges) consumer.seek({ topic, partition: r.partition, offset: r.from.toString() });
      await finished;
    })();
    state.track(reading);
    try {
      await withDeadline(reading, timeoutMs, what);
    } catch (e) {
      throw errors.unavailable(what, timeoutMs, e);
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

/**
 * A {@link ReadBack} on a client of its own, for a component that needs reads the bus it runs on
 * does not offer (a correlator rebuilding a lost checkpoint); `close` releases it.
 */
export function standaloneReadBack(opts: KafkaBusOptions): { reader: ReadBack; connect(): void; close(): Promise<void> } {
  const settings = resolveOptions(opts);
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'kafka-read-back' });
  const kafka = createClient(settings, opts.logger, log);
  const state = new BusState();
  const admin = new AdminConnection(kafka, state);
  const reader = new ReadBack({ kafka, admin, settings, state, errors: new BusErrors(settings.brokers, settings.retryAfterSeconds), log });
  return {
    reader,
    // Its admin client, ahead of the first read (which connects it otherwise); a failure is the first read's to report.
    connect: () => void admin.get().catch(() => undefined),
    close: async () => {
      // No new read starts; those in flight end within their deadlines.
      state.closed = true;
      await state.settled();
      await admin.disconnect().catch(() => undefined);
    },
  };
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);
