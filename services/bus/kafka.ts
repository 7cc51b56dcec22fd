/**
 * The distributed bus on Apache Kafka (kafkajs). Publishing resolves only once every in-sync replica
 * has the messages (idempotent producer, acks=all) and fails fast with a retryable error when the
 * brokers are away, so ingest answers 503 instead of hanging. Consumers commit a batch's offsets only
 * after the handler resolved, retry a failing batch with backoff and never skip it, and park
 * messages they cannot decode on the dead-letter topic so that the partition keeps flowing.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type SpanContext,
  type TextMapGetter,
} from '@opentelemetry/api';
import {
  Kafka,
  logLevel,
  Partitioners,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaMessage,
  type LogEntry,
  type Message,
  type Producer,
} from 'kafkajs';
import { pino } from 'pino';
import './kafkajs-timers.js';
import { KubevigilError } from '../../correlator/errors.js';
import type { Logger } from '../logging.js';
import { flushDue, RewindError, type Bus, type BusHandler, type BusMessage, type Checkpointing, type SubscribeOptions } from './bus.js';
import { consumerGroupId, topics, type Topic } from './topics.js';

/** Headers a dead-lettered message carries besides its original ones. */
export const DLQ_HEADERS = {
  reason: 'x-kubevigil-dlq-reason',
  topic: 'x-kubevigil-source-topic',
  partition: 'x-kubevigil-source-partition',
  offset: 'x-kubevigil-source-offset',
} as const;

/** The content type of every value the bus writes. */
export const CONTENT_TYPE = 'application/json';

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
  /** Largest fetch per partition (default 8 MiB). */
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

interface Subscription {
  topic: string;
  group: string;
  groupId: string;
  handler: BusHandler<unknown>;
  checkpointing?: Checkpointing;
  /** Deleted from Kafka when the subscription stops. */
  ephemeral: boolean;
  parse?: SubscribeOptions['parse'];
  /** Per partition, the messages handled but not yet flushed and committed (checkpointed subscriptions). */
  unflushed: Map<number, Unflushed>;
  /** Per partition, the batch or flush in progress: a flush at stop waits for it. */
  busy: Map<number, Promise<void>>;
  consumer?: Consumer;
  stopping: boolean;
  /** Cancels backoff sleeps when the subscription stops. */
  abort: AbortController;
  supervisor?: Promise<void>;
  stopped?: Promise<void>;
}

interface Unflushed {
  /** Offset of the first message handled since the last commit: where a rewind starts again. */
  first: string;
  last: string;
  count: number;
  since: number;
}

interface DeadLetter {
  message: KafkaMessage;
  reason: string;
}

type Decoded = { kind: 'ok'; value: object; ctx: Context } | { kind: 'dead'; reason: string } | { kind: 'skip' };

const TRACER = 'kubevigil.bus';
/** How long the signals topic keeps messages when kubevigil creates it: seven days. */
export const SIGNALS_RETENTION_MS = 7 * 86_400_000;
const RETRY = { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 };

/** Creates a {@link KafkaBus}; call `start()` before subscribing to create the topics. */
export function createKafkaBus(opts: KafkaBusOptions): KafkaBus {
  return new KafkaBus(opts);
}

/** {@link Bus} on Kafka: signals keyed by actor, incidents keyed by id on a compacted topic. */
export class KafkaBus implements Bus {
  /** The topics of this bus's prefix. */
  readonly topics: ReturnType<typeof topics>;
  readonly stats: KafkaBusStats = { published: 0, publishFailed: 0, handled: 0, batchFailures: 0, deadLettered: 0, commitFailures: 0 };
  private readonly kafka: Kafka;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly publishTimeoutMs: number;
  private readonly retryAfterSeconds: number;
  private readonly maxBatchMessages: number;
  private readonly backoff: { initial: number; max: number };
  private readonly subs = new Set<Subscription>();
  private readonly inflight = new Set<Promise<unknown>>();
  private producer?: Promise<Producer>;
  private admin?: Promise<Admin>;
  private started?: Promise<void>;
  private connected = false;
  private closed = false;
  private closing?: Promise<void>;

  constructor(private readonly opts: KafkaBusOptions) {
    if (opts.brokers.length === 0) throw new KubevigilError('BUS_CONFIG', 'KAFKA_BROKERS is empty; name at least one broker as host:port', false);
    this.prefix = opts.topicPrefix ?? 'kubevigil';
    this.topics = topics(this.prefix);
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'kafka-bus' });
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 3000;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? 5;
    this.maxBatchMessages = Math.max(1, opts.maxBatchMessages ?? 2000);
    this.backoff = opts.retryBackoffMs ?? { initial: 200, max: 30_000 };
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      connectionTimeout: opts.connectionTimeoutMs ?? 1000,
      // Above the broker-side timeouts it carries (produce, create topics); publish has its own deadline.
      requestTimeout: Math.max(this.publishTimeoutMs + 2000, 10_000),
      retry: RETRY,
      logLevel: opts.logger ? kafkaLevel(opts.logger.level) : logLevel.NOTHING,
      logCreator: () => (entry: LogEntry) => kafkaLog(this.log, entry),
    });
  }

  /** Creates the topics (idempotent): signals, incidents (compacted) and the dead-letter topic. */
  start(): Promise<void> {
    this.started ??= this.createTopics().catch((e: unknown) => {
      this.started = undefined;
      this.connected = false;
      throw this.unavailable(`creating topics ${this.topicNames().join(', ')}`, this.opts.startTimeoutMs ?? 30_000, e);
    });
    return this.started;
  }

  /** Last known broker connectivity: true after a successful exchange, false after a failed one or when closed. */
  isConnected(): boolean {
    return this.connected && !this.closed;
  }

  /** Asks the brokers now (DescribeCluster) and updates {@link isConnected}; for `/readyz`. */
  async checkReady(timeoutMs = 2000): Promise<boolean> {
    if (this.closed) return false;
    try {
      const cluster = await withDeadline(this.getAdmin().then((a) => a.describeCluster()), timeoutMs, 'describing the cluster');
      this.connected = cluster.brokers.length > 0;
    } catch (e) {
      this.connected = false;
      this.log.warn({ err: e }, 'Kafka readiness check failed');
    }
    return this.connected;
  }

  async publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    if (messages.length === 0) return;
    if (this.closed) throw this.unavailable(`publishing to ${topic.name}`, 0, new Error('the bus is closed'));
    const values = messages.map((m) => serialize(topic, m));
    const tracer = trace.getTracer(TRACER);
    const span = tracer.startSpan(`${topic.name} publish`, {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': topic.name, 'messaging.batch.message_count': messages.length },
    });
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPE };
    propagation.inject(trace.setSpan(context.active(), span), headers);
    const records: Message[] = messages.map((m, i) => {
      const v = values[i]!;
      return { key: m.key, value: v.json, headers: v.headers ? { ...headers, ...v.headers } : headers };
    });
    const sending = this.send(topic.name, records);
    this.track(sending);
    try {
      await withDeadline(sending, this.publishTimeoutMs, `publishing ${messages.length} message(s) to ${topic.name}`);
      this.stats.published += messages.length;
      this.connected = true;
    } catch (e) {
      this.stats.publishFailed += messages.length;
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      const err = this.publishError(topic.name, messages.length, e);
      if (err.retryable) this.connected = false;
      throw err;
    } finally {
      span.end();
    }
  }

  subscribe<T>(topic: Topic<T>, group: string, handler: BusHandler<T>, options: SubscribeOptions = {}): () => Promise<void> {
    if (this.closed) throw new KubevigilError('BUS_CLOSED', `cannot subscribe ${group} to ${topic.name}: the bus is closed`, false);
    const sub: Subscription = {
      topic: topic.name,
      group,
      groupId: consumerGroupId(this.prefix, group),
      handler: handler as BusHandler<unknown>,
      ...(options.checkpointing ? { checkpointing: options.checkpointing } : {}),
      ephemeral: options.ephemeral ?? false,
      ...(options.parse ? { parse: options.parse } : {}),
      unflushed: new Map(),
      busy: new Map(),
      stopping: false,
      abort: new AbortController(),
    };
    this.subs.add(sub);
    sub.supervisor = this.supervise(sub);
    return () => this.stopSubscription(sub);
  }

  /** Lets every consumer finish and commit its batch in flight, leaves the groups, then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.subs].map((s) => this.stopSubscription(s)));
      await Promise.allSettled([...this.inflight]);
      this.closed = true;
      const producer = this.producer;
      const admin = this.admin;
      this.producer = this.admin = undefined;
      await Promise.allSettled([producer?.then((p) => p.disconnect()), admin?.then((a) => a.disconnect())]);
    })();
    return this.closing;
  }

  private topicNames(): string[] {
    return [this.topics.signals.name, this.topics.incidents.name, this.topics.deadLetter.name];
  }

  private async createTopics(): Promise<void> {
    const partitions = this.opts.partitions ?? 12;
    const rf = this.opts.replicationFactor;
    const base = (topic: string) => ({ topic, numPartitions: partitions, ...(rf === undefined ? {} : { replicationFactor: rf }) });
    const admin = await withDeadline(this.getAdmin(), this.opts.startTimeoutMs ?? 30_000, 'connecting the admin client');
    const created = await withDeadline(
      admin.createTopics({
        waitForLeaders: true,
        timeout: 8000,
        topics: [
          // Checkpoints refer to window signals by offset (see SignalSource): they must outlive the
          // longest correlation window, whatever the broker's default retention is.
          { ...base(this.topics.signals.name), configEntries: [{ name: 'retention.ms', value: String(SIGNALS_RETENTION_MS) }] },
          { ...base(this.topics.incidents.name), configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
          base(this.topics.deadLetter.name),
        ],
      }),
      this.opts.startTimeoutMs ?? 30_000,
      'creating topics',
    );
    this.connected = true;
    this.log.info({ topics: this.topicNames(), partitions, created }, created ? 'Kafka topics created' : 'Kafka topics already exist');
  }

  private getAdmin(): Promise<Admin> {
    if (this.closed) return Promise.reject(new Error('the bus is closed'));
    const connecting = (this.admin ??= (async () => {
      const admin = this.kafka.admin({ retry: RETRY });
      try {
        await admin.connect();
      } catch (e) {
        await admin.disconnect().catch(() => undefined);
        throw e;
      }
      return admin;
    })());
    connecting.catch(() => {
      if (this.admin === connecting) this.admin = undefined;
    });
    return connecting;
  }

  /** Sends on the shared idempotent producer; after a connectivity failure the next send reconnects. */
  private async send(topic: string, messages: Message[]): Promise<void> {
    const connecting = (this.producer ??= this.connectProducer());
    try {
      const producer = await connecting;
      await producer.send({ topic, messages, acks: -1, timeout: this.publishTimeoutMs });
    } catch (e) {
      if (this.producer === connecting && isRetryable(e)) {
        this.producer = undefined;
        void connecting.then((p) => p.disconnect()).catch(() => undefined);
      }
      throw e;
    }
  }

  private async connectProducer(): Promise<Producer> {
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: RETRY,
    });
    try {
      await producer.connect();
    } catch (e) {
      await producer.disconnect().catch(() => undefined);
      throw e;
    }
    return producer;
  }

  private track(p: Promise<unknown>): void {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.add(settled);
    void settled.then(() => this.inflight.delete(settled));
  }

  /**
   * Reads the messages at the given offsets of one partition (what is still there: retention may
   * have removed some, and offsets past the end do not exist yet). A consumer of a group of its own
   * seeks to the lowest offset, reads up to the highest one or the partition's end, and is deleted
   * with its group; nothing is committed. Restoring state by reference uses it, so it is rare; it
   * fails after `timeoutMs` (half the session timeout, at most 20 s) with a retryable
   * {@link KubevigilError}, once the client has let go of the consumer (its own request timeouts
   * bound that). A new group waits the broker's `group.initial.rebalance.delay.ms` (3 s by default).
   */
  async read<T>(topic: Topic<T>, partition: number, offsets: readonly string[], options: { timeoutMs?: number; parse?: SubscribeOptions['parse'] } = {}): Promise<Map<string, T>> {
    // A read runs inside a batch of the caller's consumer, which does not heartbeat meanwhile:
    // it must end well within that consumer's session.
    const timeoutMs = options.timeoutMs ?? Math.min(20_000, Math.floor((this.opts.sessionTimeoutMs ?? 30_000) / 2));
    const wanted = new Set(offsets);
    const out = new Map<string, T>();
    if (wanted.size === 0) return out;
    if (this.closed) throw this.unavailable(`reading ${topic.name}/${partition}`, 0, new Error('the bus is closed'));
    const sorted = [...wanted].map(BigInt).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let from = sorted[0]!;
    let to = sorted[sorted.length - 1]!;
    const groupId = consumerGroupId(this.prefix, `read-${randomUUID()}`);
    const consumer = this.kafka.consumer({ groupId, maxWaitTimeInMs: 100, maxBytesPerPartition: 8 * 1024 * 1024, allowAutoTopicCreation: false, retry: RETRY });
    let connected = false;
    let cancelled = false;
    let inRange = false;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    const reading = (async () => {
      const admin = await this.getAdmin();
      const ends = (await admin.fetchTopicOffsets(topic.name)).find((o) => o.partition === partition);
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
    this.track(reading);
    try {
      await withDeadline(reading, timeoutMs, `reading ${wanted.size} message(s) of ${topic.name}/${partition}`);
      return out;
    } catch (e) {
      throw this.unavailable(`reading ${wanted.size} message(s) of ${topic.name}/${partition} back`, timeoutMs, e);
    } finally {
      cancelled = true;
      finish();
      // Bounded by the client's own request timeouts and retries; then nothing of the read is left.
      await reading.catch(() => undefined);
      if (connected) {
        await consumer.disconnect().catch(() => undefined);
        await this.getAdmin()
          .then((a) => a.deleteGroups([groupId]))
          .catch((err: unknown) => this.log.debug({ err, group: groupId }, 'could not delete the group of a read; Kafka expires it'));
      }
    }
  }

  /** Runs the subscription's consumer, creating a new one after a failure kafkajs does not recover from. */
  private async supervise(sub: Subscription): Promise<void> {
    for (let attempt = 1; !sub.stopping; attempt++) {
      const consumer = this.kafka.consumer({
        groupId: sub.groupId,
        sessionTimeout: this.opts.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: Math.min(3000, Math.floor((this.opts.sessionTimeoutMs ?? 30_000) / 3)),
        maxWaitTimeInMs: this.opts.maxWaitTimeMs ?? 500,
        // Larger fetches make larger handler batches: each batch costs the handler a few round
        // trips (checkpoint, publish, commit), so fewer, larger batches drain a backlog faster.
        maxBytesPerPartition: this.opts.maxBytesPerPartition ?? 8 * 1024 * 1024,
        maxBytes: Math.max(this.opts.maxBytesPerPartition ?? 8 * 1024 * 1024, 10 * 1024 * 1024) * 4,
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10_000, restartOnFailure: async () => !sub.stopping },
      });
      sub.consumer = consumer;
      this.watch(sub, consumer);
      try {
        await this.start();
        if (sub.stopping) break;
        await consumer.connect();
        await consumer.subscribe({ topics: [sub.topic], fromBeginning: true });
        if (sub.stopping) break;
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 1,
          eachBatch: (payload) => this.onBatch(sub, payload),
        });
        return;
      } catch (e) {
        this.connected = false;
        this.log.warn({ err: e, topic: sub.topic, group: sub.groupId, attempt }, 'Kafka consumer failed to start; retrying');
        await consumer.disconnect().catch(() => undefined);
        await delay(this.delayFor(attempt), undefined, { signal: sub.abort.signal }).catch(() => undefined);
      }
    }
  }

  private watch(sub: Subscription, consumer: Consumer): void {
    const { CONNECT, GROUP_JOIN, FETCH, CRASH, REQUEST_TIMEOUT } = consumer.events;
    const up = () => {
      if (sub.consumer === consumer) this.connected = true;
    };
    consumer.on(CONNECT, up);
    consumer.on(GROUP_JOIN, (event) => {
      up();
      if (sub.consumer !== consumer || !sub.checkpointing) return;
      // Work not flushed for a partition that went elsewhere is the new owner's now.
      const mine = event.payload.memberAssignment[sub.topic] ?? [];
      for (const p of sub.unflushed.keys()) if (!mine.includes(p)) sub.unflushed.delete(p);
      sub.checkpointing.assigned?.(mine);
    });
    consumer.on(FETCH, up);
    consumer.on(REQUEST_TIMEOUT, () => {
      this.connected = false;
    });
    consumer.on(CRASH, (event) => {
      const { error, restart } = event.payload;
      this.connected = false;
      this.log.warn({ err: error, topic: sub.topic, group: sub.groupId, restart }, 'Kafka consumer crashed');
      // kafkajs restarts after retriable errors itself; after the others, start a fresh consumer.
      if (!restart && !sub.stopping && sub.consumer === consumer) {
        sub.supervisor = delay(this.backoff.initial, undefined, { signal: sub.abort.signal })
          .catch(() => undefined)
          .then(() => this.supervise(sub));
      }
    });
  }

  private stopSubscription(sub: Subscription): Promise<void> {
    sub.stopped ??= (async () => {
      sub.stopping = true;
      sub.abort.abort();
      const ms = this.opts.closeTimeoutMs ?? 15_000;
      const stopping = (async () => {
        // What was handled but not flushed is flushed and committed while the consumer is still a
        // group member; disconnect() then waits for the batch in flight and leaves the group.
        await this.flushOnStop(sub);
        await sub.consumer?.disconnect();
        await sub.supervisor;
        await sub.consumer?.disconnect();
      })();
      await withDeadline(stopping, ms, `stopping consumer group ${sub.groupId}`).catch((e: unknown) =>
        this.log.warn({ err: e, topic: sub.topic, group: sub.groupId }, 'Kafka consumer did not stop cleanly; its uncommitted messages go to the next consumer'),
      );
      if (sub.ephemeral && !this.closed)
        await withDeadline(
          this.getAdmin().then((a) => a.deleteGroups([sub.groupId])),
          this.opts.closeTimeoutMs ?? 15_000,
          `deleting consumer group ${sub.groupId}`,
        ).catch((e: unknown) => this.log.warn({ err: e, group: sub.groupId }, 'could not delete the ephemeral consumer group; Kafka expires it after offsets.retention.minutes'));
      this.subs.delete(sub);
    })();
    return sub.stopped;
  }

  /** One fetched batch of one partition, run exclusively of a flush at stop for the same partition. */
  private async onBatch(sub: Subscription, p: EachBatchPayload): Promise<void> {
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
    const { batch } = p;
    this.opts.onLag?.(batch.topic, sub.group, batch.partition, Number(batch.offsetLag()));
    for (let i = 0; i < batch.messages.length; i += this.maxBatchMessages) {
      if (sub.stopping || !p.isRunning() || p.isStale()) return;
      const chunk = batch.messages.slice(i, i + this.maxBatchMessages);
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
        await this.commit(p, last);
        p.resolveOffset(last);
      } else {
        p.resolveOffset(last);
        const u = sub.unflushed.get(batch.partition);
        if (!u) sub.unflushed.set(batch.partition, { first, last, count: chunk.length, since: Date.now() });
        else {
          if (BigInt(last) > BigInt(u.last)) u.last = last;
          u.count += chunk.length;
        }
        const caughtUp = i + this.maxBatchMessages >= batch.messages.length && batch.offsetLag() === '0';
        const pending = sub.unflushed.get(batch.partition)!;
        if (flushDue(sub.checkpointing, caughtUp, pending.count, pending.since) && !(await this.flush(sub, p))) return;
      }
      if (p.isRunning()) await p.heartbeat();
    }
  }

  /**
   * Flushes a checkpointed partition and commits what the flush made durable, retrying a failing
   * flush with backoff; after a {@link RewindError} the partition is offered again from the first
   * unflushed message. False when the batch must stop (rewound, partition lost, consumer stopping).
   */
  private async flush(sub: Subscription, p: EachBatchPayload): Promise<boolean> {
    const { topic, partition } = p.batch;
    const u = sub.unflushed.get(partition);
    if (!u) return true;
    for (let attempt = 1; ; attempt++) {
      try {
        await sub.checkpointing!.flush(partition);
        sub.unflushed.delete(partition);
        await this.commit(p, u.last);
        return true;
      } catch (e) {
        this.stats.batchFailures++;
        if (e instanceof RewindError) {
          sub.unflushed.delete(partition);
          this.log.warn({ err: e, topic, partition, group: sub.groupId, offset: u.first }, 'consumer dropped its unflushed state; offering the partition again from its last commit');
          sub.consumer?.seek({ topic, partition, offset: u.first });
          return false;
        }
        this.opts.onHandlerError?.(e, topic, sub.group, attempt);
        this.log.warn({ err: e, topic, partition, group: sub.groupId, attempt, offset: u.last }, 'checkpoint flush failed; retrying it');
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await delay(this.delayFor(attempt), undefined, { signal: sub.abort.signal }).catch(() => undefined);
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await p.heartbeat();
      }
    }
  }

  /** At stop, one attempt per partition to flush and commit what was handled (else the next owner gets it again). */
  private async flushOnStop(sub: Subscription): Promise<void> {
    const consumer = sub.consumer;
    if (!sub.checkpointing || !consumer) return;
    for (const [partition, u] of [...sub.unflushed]) {
      await sub.busy.get(partition);
      if (sub.unflushed.get(partition) !== u) continue;
      try {
        await sub.checkpointing.flush(partition);
        sub.unflushed.delete(partition);
        await consumer.commitOffsets([{ topic: sub.topic, partition, offset: (BigInt(u.last) + 1n).toString() }]);
      } catch (e) {
        this.log.warn({ err: e, topic: sub.topic, partition, group: sub.groupId }, 'flush at stop failed; the next owner of the partition gets its uncommitted messages again');
      }
    }
  }

  /** Retries until the chunk is handled and parked; false when the partition was lost or the consumer stops. */
  private async process(sub: Subscription, p: EachBatchPayload, good: BusMessage<unknown>[], contexts: Context[], dead: DeadLetter[]): Promise<boolean> {
    const { topic, partition } = p.batch;
    let handled = good.length === 0;
    let parked = dead.length === 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!handled) {
          await this.runHandler(sub, partition, good, contexts);
          handled = true;
          this.stats.handled += good.length;
        }
        if (!parked) {
          await this.deadLetter(topic, partition, dead);
          parked = true;
        }
        return true;
      } catch (e) {
        this.stats.batchFailures++;
        this.opts.onHandlerError?.(e, topic, sub.group, attempt);
        this.log.warn({ err: e, topic, partition, group: sub.groupId, attempt, offset: p.batch.firstOffset() }, 'bus batch failed; retrying it');
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await delay(this.delayFor(attempt), undefined, { signal: sub.abort.signal }).catch(() => undefined);
        if (sub.stopping || !p.isRunning() || p.isStale()) return false;
        await p.heartbeat();
      }
    }
  }

  /** Calls the handler in a consumer span: a child of the producer's when the batch is one trace, else linked to each. */
  private runHandler(sub: Subscription, partition: number, messages: BusMessage<unknown>[], contexts: Context[]): Promise<void> {
    const spanContexts = contexts.map((c) => trace.getSpanContext(c)).filter((s): s is SpanContext => s !== undefined && trace.isSpanContextValid(s));
    const links: Link[] = spanContexts.map((s) => ({ context: s }));
    const oneTrace = spanContexts.length > 0 && spanContexts.every((s) => s.traceId === spanContexts[0]!.traceId);
    const parent = oneTrace ? contexts.find((c) => trace.getSpanContext(c) !== undefined)! : ROOT_CONTEXT;
    return trace.getTracer(TRACER).startActiveSpan(
      `${sub.topic} process`,
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': sub.topic,
          'messaging.consumer.group.name': sub.groupId,
          'messaging.destination.partition.id': String(partition),
          'messaging.batch.message_count': messages.length,
        },
      },
      parent,
      async (span) => {
        try {
          await sub.handler(messages);
        } catch (e) {
          span.recordException(e as Error);
          span.setStatus({ code: SpanStatusCode.ERROR });
          throw e;
        } finally {
          span.end();
        }
      },
    );
  }

  private async deadLetter(topic: string, partition: number, dead: DeadLetter[]): Promise<void> {
    const records: Message[] = dead.map(({ message, reason }) => ({
      key: message.key,
      value: message.value,
      headers: {
        ...message.headers,
        [DLQ_HEADERS.reason]: reason,
        [DLQ_HEADERS.topic]: topic,
        [DLQ_HEADERS.partition]: String(partition),
        [DLQ_HEADERS.offset]: message.offset,
      },
    }));
    await withDeadline(this.send(this.topics.deadLetter.name, records), this.publishTimeoutMs, `dead-lettering ${dead.length} message(s)`);
    this.stats.deadLettered += dead.length;
    for (const { message, reason } of dead)
      this.log.warn({ topic, partition, offset: message.offset, reason }, 'undecodable message moved to the dead-letter topic');
  }

  /** Commits the offset after `offset`; it works while the consumer stops, so a drained batch is not redelivered. */
  private async commit(p: EachBatchPayload, offset: string): Promise<void> {
    const next = (BigInt(offset) + 1n).toString();
    const offsets = { topics: [{ topic: p.batch.topic, partitions: [{ partition: p.batch.partition, offset: next }] }] };
    for (let attempt = 1; ; attempt++) {
      try {
        await p.commitOffsetsIfNecessary(offsets);
        this.connected = true;
        return;
      } catch (e) {
        this.stats.commitFailures++;
        if (attempt >= 3 || p.isStale()) {
          // Handled but not committed: whoever owns the partition next gets these again (at least once).
          this.log.warn({ err: e, topic: p.batch.topic, partition: p.batch.partition, offset: next }, 'offset commit failed');
          if (!p.isRunning() || p.isStale()) return;
          throw e;
        }
        await delay(100 * attempt);
      }
    }
  }

  private delayFor(attempt: number): number {
    const base = Math.min(this.backoff.max, this.backoff.initial * 2 ** Math.min(attempt - 1, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private unavailable(what: string, ms: number, cause: unknown): KubevigilError {
    const err = new KubevigilError(
      'BUS_UNAVAILABLE',
      `Kafka (${this.opts.brokers.join(',')}) is unavailable: ${what} failed${ms ? ` within ${ms} ms` : ''} (${describe(cause)}); retry after ${this.retryAfterSeconds}s`,
      true,
      this.retryAfterSeconds,
    );
    err.cause = cause;
    return err;
  }

  private publishError(topic: string, count: number, e: unknown): KubevigilError {
    if (e instanceof KubevigilError) return e;
    if (isRetryable(e)) return this.unavailable(`publishing ${count} message(s) to ${topic}`, this.publishTimeoutMs, e);
    const err = new KubevigilError('BUS_REJECTED', `Kafka refused ${count} message(s) for ${topic}: ${describe(e)}; resending will not help`, false);
    err.cause = e;
    return err;
  }
}

/** Encodes a value (as its topic says, else as JSON); values JSON cannot represent are a programming error, not a bus outage. */
function serialize<T>(topic: Topic<T>, m: BusMessage<T>): { json: string; headers?: Record<string, string> } {
  let out: { json: string | undefined; headers?: Record<string, string> };
  try {
    out = topic.encode ? topic.encode(m.value) : { json: JSON.stringify(m.value) as string | undefined };
  } catch (e) {
    throw new KubevigilError('BUS_INVALID_MESSAGE', `message ${JSON.stringify(m.key)} for ${topic.name} cannot be encoded as JSON: ${describe(e)}`, false);
  }
  if (out.json === undefined) throw new KubevigilError('BUS_INVALID_MESSAGE', `message ${JSON.stringify(m.key)} for ${topic.name} has no JSON value`, false);
  return { json: out.json, ...(out.headers ? { headers: out.headers } : {}) };
}

const headerGetter: TextMapGetter<IHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (v === undefined) return undefined;
    return Array.isArray(v) ? v.map((x) => x.toString()) : v.toString();
  },
};

function decode(message: KafkaMessage, parse?: SubscribeOptions['parse']): Decoded {
  // A null value is a tombstone on the compacted incidents topic: nothing to handle, nothing wrong.
  if (message.value === null) return { kind: 'skip' };
  const headers = message.headers ?? {};
  const ct = headerGetter.get(headers, 'content-type');
  const type = Array.isArray(ct) ? ct[0] : ct;
  if (type !== undefined && type.split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE)
    return { kind: 'dead', reason: `content-type ${JSON.stringify(type.slice(0, 100))} is not ${CONTENT_TYPE}` };
  let value: unknown;
  try {
    const json = message.value.toString('utf8');
    value = parse
      ? parse(json, (name) => {
          const v = headerGetter.get(headers, name);
          return Array.isArray(v) ? v[0] : v;
        })
      : JSON.parse(json);
  } catch (e) {
    return { kind: 'dead', reason: `value is not JSON: ${describe(e).slice(0, 200)}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { kind: 'dead', reason: `value is JSON ${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}, not an object` };
  return { kind: 'ok', value, ctx: propagation.extract(ROOT_CONTEXT, headers, headerGetter) };
}

/** Retryable unless Kafka said the request itself is wrong (too large, not authorized, invalid). */
function isRetryable(e: unknown): boolean {
  if (e instanceof KubevigilError) return e.retryable;
  if (e instanceof DeadlineError) return true;
  let cur: unknown = e;
  for (let i = 0; i < 10 && cur !== null && typeof cur === 'object'; i++) {
    const err = cur as { name?: string; retriable?: boolean; cause?: unknown; originalError?: unknown };
    const next = err.cause ?? err.originalError;
    if (next === undefined || next === null) {
      return err.name === 'KafkaJSProtocolError' ? err.retriable !== false : true;
    }
    cur = next;
  }
  return true;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error && !e.message.includes(cause.message) ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}

/** A wait that took longer than its bound. */
class DeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} took longer than ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function kafkaLevel(level: string): logLevel {
  switch (level) {
    case 'trace':
    case 'debug':
      return logLevel.DEBUG;
    case 'info':
      return logLevel.INFO;
    case 'warn':
      return logLevel.WARN;
    case 'silent':
      return logLevel.NOTHING;
    default:
      return logLevel.ERROR;
  }
}

function kafkaLog(log: Logger, { namespace, level, log: entry }: LogEntry): void {
  const { message, timestamp: _timestamp, ...rest } = entry;
  const obj = { kafkajs: namespace, ...rest };
  // Retries are bounded on purpose (publish must fail fast); kafkajs warns about it on every connect.
  if (message.startsWith('Limiting retries for the idempotent producer')) log.debug(obj, message);
  else if (level === logLevel.ERROR) log.error(obj, message);
  else if (level === logLevel.WARN) log.warn(obj, message);
  else if (level === logLevel.INFO) log.info(obj, message);
  else log.debug(obj, message);
}
