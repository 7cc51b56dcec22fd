/**
 * Writing to Kafka: one idempotent producer shared by publishing and dead-lettering. A publish
 * resolves once every in-sync replica has the messages (acks=all) and fails by its own deadline
 * with a retryable error when the brokers are away, so ingest answers 503 instead of hanging.
 */
import { Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { BUS_MAX_MESSAGE_BYTES } from '../../../correlator/budget.js';
import type { BusMessage } from '../bus.js';
import type { Topic } from '../topics.js';
import { RETRY } from './client.js';
import { CONTENT_TYPE, serialize } from './codec.js';
import { withDeadline } from './deadline.js';
import { isRetryable, type BusErrors } from './errors.js';
import type { KafkaBusStats } from './options.js';
import type { BusState } from './state.js';
import { recordFailure, startPublishSpan } from './tracing.js';

/**
 * The most bytes of messages in one produce request: half the topics' message limit, so that a
 * partition's batch in a request stays below it whatever the partitioner does. A character of JSON
 * is counted as three bytes (the UTF-8 worst case), which keeps the count a length lookup.
 */
const MAX_REQUEST_BYTES = BUS_MAX_MESSAGE_BYTES / 2;

/** Publishes on the shared producer, connecting it on first use and again after a connectivity failure. */
export class BusProducer {
  private producer?: Promise<Producer>;

  constructor(
    private readonly deps: {
      kafka: Kafka;
      state: BusState;
      stats: KafkaBusStats;
      errors: BusErrors;
      publishTimeoutMs: number;
    },
  ) {}

  /** Encodes and publishes `messages` with the content type and trace context in headers; see {@link Bus.publish}. */
  async publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    const { state, stats, errors, publishTimeoutMs } = this.deps;
    if (messages.length === 0) return;
    if (state.closed) throw errors.unavailable(`publishing to ${topic.name}`, 0, new Error('the bus is closed'));
    const values = messages.map((m) => serialize(topic, m));
    const headers: Record<string, string> = { 'content-type': CONTENT_TYPE };
    const span = startPublishSpan(topic.name, messages.length, headers);
    const records: Message[] = messages.map((m, i) => {
      const v = values[i]!;
      return { key: m.key, value: v.json, headers: v.headers ? { ...headers, ...v.headers } : headers };
    });
    const sending = this.sendChunked(topic.name, records);
    state.track(sending);
    try {
      await withDeadline(sending, publishTimeoutMs, `publishing ${messages.length} message(s) to ${topic.name}`);
      stats.published += messages.length;
      state.connected = true;
    } catch (e) {
      stats.publishFailed += messages.length;
      recordFailure(span, e);
      const err = errors.publishError(topic.name, messages.length, publishTimeoutMs, e);
      if (err.retryable) state.connected = false;
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Sends records in requests of at most {@link MAX_REQUEST_BYTES}, one after another (the producer
   * is idempotent with one request in flight, so the order holds). The broker checks each
   * partition's batch in a request against the topic's `max.message.bytes`: one request for a batch
   * of thousands of signals would be refused whole, with every signal in it.
   */
  private async sendChunked(topic: string, records: Message[]): Promise<void> {
    let chunk: Message[] = [];
    let bytes = 0;
    for (const r of records) {
      const size = (r.value as string).length * 3 + 64;
      if (chunk.length && bytes + size > MAX_REQUEST_BYTES) {
        await this.send(topic, chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(r);
      bytes += size;
    }
    if (chunk.length) await this.send(topic, chunk);
  }

  /**
   * Connects the producer now if it is not (in the background): an idempotent producer's connect
   * and first send (metadata, a producer id) took 10–80 ms against a local broker, against 1–5 ms
   * for later sends, which the first publish otherwise waits for. A failure here is forgotten: the
   * next send connects again.
   */
  warm(): void {
    if (this.deps.state.closed || this.producer) return;
    const connecting = (this.producer = this.connect());
    connecting.catch(() => {
      if (this.producer === connecting) this.producer = undefined;
    });
  }

  /** Sends records as they are (acks=all, no deadline of its own); after a connectivity failure the next send reconnects. */
  async send(topic: string, messages: Message[]): Promise<void> {
    const connecting = (this.producer ??= this.connect());
    try {
      const producer = await connecting;
      await producer.send({ topic, messages, acks: -1, timeout: this.deps.publishTimeoutMs });
    } catch (e) {
      if (this.producer === connecting && isRetryable(e)) {
        this.producer = undefined;
        void connecting.then((p) => p.disconnect()).catch(() => undefined);
      }
      throw e;
    }
  }

  /** Disconnects the producer if one was made (at close). */
  async disconnect(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.then((p) => p.disconnect());
  }

  private async connect(): Promise<Producer> {
    const producer = this.deps.kafka.producer({
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
}
