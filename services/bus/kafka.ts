/**
 * The distributed bus on Apache Kafka (kafkajs). Publishing resolves only once every in-sync replica
 * has the messages (idempotent producer, acks=all) and fails fast with a retryable error when the
 * brokers are away, so ingest answers 503 instead of hanging. Consumers commit a batch's offsets only
 * after the handler resolved, retry a failing batch with backoff and never skip it, and park
 * messages they cannot decode on the dead-letter topic so that the partition keeps flowing.
 *
 * {@link KafkaBus} composes the parts in `kafka/`: the producer, the consumer supervisor, the batch
 * and checkpoint runners, read-back, and topic creation at start.
 */
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { pino } from 'pino';
import { KubevigilError } from '../../correlator/errors.js';
import type { Logger } from '../logging.js';
import type { Bus, BusHandler, BusMessage, SubscribeOptions } from './bus.js';
import { AdminConnection } from './kafka/admin.js';
import { Backoff } from './kafka/backoff.js';
import { BatchRunner } from './kafka/batch.js';
import { CheckpointRunner } from './kafka/checkpoint.js';
import { createClient } from './kafka/client.js';
import { OffsetCommitter } from './kafka/commit.js';
import { DeadLetterWriter, type DeadLetter } from './kafka/dead-letter.js';
import { withDeadline } from './kafka/deadline.js';
import { BusErrors } from './kafka/errors.js';
import { newStats, resolveOptions, type KafkaBusOptions, type KafkaBusStats } from './kafka/options.js';
import { BusProducer } from './kafka/producer.js';
import { TopicProvisioner } from './kafka/provision.js';
import { ReadBack } from './kafka/read-back.js';
import { BusState } from './kafka/state.js';
import { newSubscription } from './kafka/subscription.js';
import { ConsumerSupervisor } from './kafka/supervisor.js';
import { consumerGroupId, topics, type Topic } from './topics.js';

export { CONTENT_TYPE } from './kafka/codec.js';
export { DLQ_HEADERS } from './kafka/dead-letter.js';
export type { KafkaBusOptions, KafkaBusStats } from './kafka/options.js';
export { SIGNALS_RETENTION_MS } from './kafka/provision.js';

/** Creates a {@link KafkaBus}; call `start()` before subscribing to create the topics. */
export function createKafkaBus(opts: KafkaBusOptions): KafkaBus {
  return new KafkaBus(opts);
}

/** {@link Bus} on Kafka: signals keyed by actor, incidents keyed by id on a compacted topic. */
export class KafkaBus implements Bus {
  /** The topics of this bus's prefix. */
  readonly topics: ReturnType<typeof topics>;
  readonly stats: KafkaBusStats = newStats();
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly state = new BusState();
  private readonly admin: AdminConnection;
  private readonly provisioner: TopicProvisioner;
  private readonly producer: BusProducer;
  private readonly supervisor: ConsumerSupervisor;
  private readonly reader: ReadBack;
  private readonly deadLetters: DeadLetterWriter;
  private closing?: Promise<void>;

  constructor(opts: KafkaBusOptions) {
    if (opts.brokers.length === 0) throw new KubevigilError('BUS_CONFIG', 'KAFKA_BROKERS is empty; name at least one broker as host:port', false);
    const settings = resolveOptions(opts);
    const { stats, state } = this;
    this.prefix = settings.topicPrefix;
    this.topics = topics(this.prefix);
    const log = (this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'kafka-bus' }));
    const kafka = createClient(settings, opts.logger, log);
    const errors = new BusErrors(settings.brokers, settings.retryAfterSeconds);
    const backoff = new Backoff(settings.retryBackoffMs);
    const admin = (this.admin = new AdminConnection(kafka, state));
    this.provisioner = new TopicProvisioner({ topics: this.topics, settings, admin, state, errors, log });
    const producer = (this.producer = new BusProducer({ kafka, state, stats, errors, publishTimeoutMs: settings.publishTimeoutMs }));
    const deadLetters = (this.deadLetters = new DeadLetterWriter({
      producer,
      topic: this.topics.deadLetter.name,
      publishTimeoutMs: settings.publishTimeoutMs,
      stats,
      log,
    }));
    const committer = new OffsetCommitter({ state, stats, log });
    const checkpoints = new CheckpointRunner({ stats, log, backoff, committer, onHandlerError: settings.onHandlerError });
    const batches = new BatchRunner({ settings, stats, log, backoff, deadLetters, committer, checkpoints });
    this.supervisor = new ConsumerSupervisor({ kafka, settings, state, log, backoff, admin, provisioner: this.provisioner, batches, checkpoints });
    this.reader = new ReadBack({ kafka, admin, settings, state, errors, log });
  }

  /**
   * Creates the topics (idempotent): signals, incidents (compacted) and the dead-letter topic; then
   * connects the producer in the background, so that the first publish (a correlator's first
   * checkpoint, ingest's first batch) does not wait for its handshake.
   */
  async start(): Promise<void> {
    await this.provisioner.start();
    this.producer.warm();
  }

  /** Last known broker connectivity: true after a successful exchange, false after a failed one or when closed. */
  isConnected(): boolean {
    return this.state.connected && !this.state.closed;
  }

  /** Asks the brokers now (DescribeCluster) and updates {@link isConnected}; for `/readyz`. */
  async checkReady(timeoutMs = 2000): Promise<boolean> {
    const { state } = this;
    if (state.closed) return false;
    try {
      const cluster = await withDeadline(
        this.admin.get().then((a) => a.describeCluster()),
        timeoutMs,
        'describing the cluster',
      );
      state.connected = cluster.brokers.length > 0;
    } catch (e) {
      state.connected = false;
      this.log.warn({ err: e }, 'Kafka readiness check failed');
    }
    return state.connected;
  }

  publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
    return this.producer.publish(topic, messages);
  }

  subscribe<T>(topic: Topic<T>, group: string, handler: BusHandler<T>, options: SubscribeOptions = {}): () => Promise<void> {
    if (this.state.closed) throw new KubevigilError('BUS_CLOSED', `cannot subscribe ${group} to ${topic.name}: the bus is closed`, false);
    const sub = newSubscription(topic.name, group, consumerGroupId(this.prefix, group), handler as BusHandler<unknown>, options);
    this.supervisor.run(sub);
    return () => this.supervisor.stop(sub);
  }

  /**
   * Parks messages a consumer found it cannot decode only after its handler took them (a
   * correlation worker thread parses them): on the dead-letter topic with their original key,
   * value and headers. Resolves once the brokers have them.
   */
  park(topic: Topic<unknown>, partition: number, dead: { key: string; value: Buffer; headers: IHeaders; offset: string; reason: string }[]): Promise<void> {
    const letters: DeadLetter[] = dead.map((d) => ({
      message: { key: Buffer.from(d.key), value: d.value, headers: d.headers, offset: d.offset, timestamp: '', attributes: 0 } as KafkaMessage,
      reason: d.reason,
    }));
    return this.deadLetters.park(topic.name, partition, letters);
  }

  /** Reads messages of one partition back by offset; see {@link ReadBack.read}. */
  read<T>(
    topic: Topic<T>,
    partition: number,
    offsets: readonly string[],
    options: { timeoutMs?: number; parse?: SubscribeOptions['parse'] } = {},
  ): Promise<Map<string, T>> {
    return this.reader.read(topic, partition, offsets, options);
  }

  /** Lets every consumer finish and commit its batch in flight, leaves the groups, then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.supervisor.stopAll();
      await this.state.settled();
      this.state.closed = true;
      await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    })();
    return this.closing;
  }
}
