/**
 * The consumer supervisor: keeps one kafkajs consumer running per subscription (creating a new one
 * after a failure kafkajs does not recover from), follows its group membership and connectivity,
 * and stops it so that what was handled is flushed and committed while it is still a group member.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../logging.js';
import type { AdminConnection } from './admin.js';
import type { Backoff } from './backoff.js';
import type { BatchRunner } from './batch.js';
import type { CheckpointRunner } from './checkpoint.js';
import { withDeadline } from './deadline.js';
import type { KafkaBusSettings } from './options.js';
import type { TopicProvisioner } from './provision.js';
import type { BusState } from './state.js';
import { movePosition, type Subscription } from './subscription.js';

/** Runs and stops the consumers of a bus's subscriptions. */
export class ConsumerSupervisor {
  private readonly subs = new Set<Subscription>();

  constructor(
    private readonly deps: {
      kafka: Kafka;
      settings: Pick<KafkaBusSettings, 'sessionTimeoutMs' | 'maxWaitTimeMs' | 'maxBytesPerPartition' | 'partitionsConsumedConcurrently' | 'closeTimeoutMs'>;
      state: BusState;
      log: Logger;
      backoff: Backoff;
      admin: AdminConnection;
      provisioner: TopicProvisioner;
      batches: BatchRunner;
      checkpoints: CheckpointRunner;
    },
  ) {}

  /** Starts consuming for `sub`, in the background, until {@link stop}. */
  run(sub: Subscription): void {
    this.subs.add(sub);
    sub.supervisor = this.supervise(sub);
  }

  /**
   * Stops `sub`: flushes and commits what was handled, waits for the batch in flight (at most the
   * close timeout), leaves the group, and deletes it if ephemeral and the bus is not closed.
   */
  stop(sub: Subscription): Promise<void> {
    const { settings, state, log, admin, checkpoints } = this.deps;
    sub.stopped ??= (async () => {
      sub.stopping = true;
      sub.abort.abort();
      const ms = settings.closeTimeoutMs;
      const stopping = (async () => {
        // What was handled but not flushed is flushed and committed while the consumer is still a
        // group member; disconnect() then waits for the batch in flight and leaves the group.
        await checkpoints.flushOnStop(sub);
        await sub.consumer?.disconnect();
        await sub.supervisor;
        await sub.consumer?.disconnect();
      })();
      await withDeadline(stopping, ms, `stopping consumer group ${sub.groupId}`).catch((e: unknown) =>
        log.warn({ err: e, topic: sub.topic, group: sub.groupId }, 'Kafka consumer did not stop cleanly; its uncommitted messages go to the next consumer'),
      );
      if (sub.ephemeral && !state.closed)
        await withDeadline(
          admin.get().then((a) => a.deleteGroups([sub.groupId])),
          settings.closeTimeoutMs,
          `deleting consumer group ${sub.groupId}`,
        ).catch((e: unknown) =>
          log.warn({ err: e, group: sub.groupId }, 'could not delete the ephemeral consumer group; Kafka expires it after offsets.retention.minutes'),
        );
      this.subs.delete(sub);
    })();
    return sub.stopped;
  }

  /** Stops every subscription (at close). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.subs].map((s) => this.stop(s)));
  }

  /** Runs the subscription's consumer, creating a new one after a failure kafkajs does not recover from. */
  private async supervise(sub: Subscription): Promise<void> {
    const { kafka, settings, state, log, backoff, batches } = this.deps;
    for (let attempt = 1; !sub.stopping; attempt++) {
      const consumer = kafka.consumer({
        groupId: sub.groupId,
        sessionTimeout: settings.sessionTimeoutMs,
        heartbeatInterval: Math.min(3000, Math.floor(settings.sessionTimeoutMs / 3)),
        maxWaitTimeInMs: settings.maxWaitTimeMs,
        // A checkpointed handler flushes and commits once per many batches, so a batch costs it
        // little: fetches of a few MiB keep memory (and garbage collection) low while a backlog drains.
        maxBytesPerPartition: settings.maxBytesPerPartition,
        maxBytes: Math.max(settings.maxBytesPerPartition * 4, 10 * 1024 * 1024),
        allowAutoTopicCreation: false,
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10_000, restartOnFailure: async () => !sub.stopping },
      });
      sub.consumer = consumer;
      this.watch(sub, consumer);
      try {
        await this.deps.provisioner.start();
        if (sub.stopping) break;
        await consumer.connect();
        await consumer.subscribe({ topics: [sub.topic], fromBeginning: true });
        if (sub.stopping) break;
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: settings.partitionsConsumedConcurrently,
          eachBatch: (payload) => batches.onBatch(sub, payload),
        });
        return;
      } catch (e) {
        state.connected = false;
        log.warn({ err: e, topic: sub.topic, group: sub.groupId, attempt }, 'Kafka consumer failed to start; retrying');
        await consumer.disconnect().catch(() => undefined);
        await backoff.sleep(attempt, sub.abort.signal);
      }
    }
  }

  /** Follows a consumer's events: connectivity, partitions assigned after a rebalance, and crashes to restart from. */
  private watch(sub: Subscription, consumer: Consumer): void {
    const { state, log, backoff, checkpoints } = this.deps;
    const { CONNECT, GROUP_JOIN, REBALANCING, FETCH, CRASH, REQUEST_TIMEOUT } = consumer.events;
    const up = () => {
      if (sub.consumer === consumer) state.connected = true;
    };
    consumer.on(CONNECT, up);
    // Batches fetched before a rebalance are not handled after it: kafkajs fetches from the commits again.
    consumer.on(REBALANCING, () => {
      if (sub.consumer === consumer) movePosition(sub);
    });
    consumer.on(GROUP_JOIN, (event) => {
      up();
      if (sub.consumer !== consumer) return;
      checkpoints.assigned(sub, event.payload.memberAssignment[sub.topic] ?? []);
    });
    consumer.on(FETCH, up);
    consumer.on(REQUEST_TIMEOUT, () => {
      state.connected = false;
    });
    consumer.on(CRASH, (event) => {
      const { error, restart } = event.payload;
      state.connected = false;
      log.warn({ err: error, topic: sub.topic, group: sub.groupId, restart }, 'Kafka consumer crashed');
      // kafkajs restarts after retriable errors itself; after the others, start a fresh consumer.
      if (!restart && !sub.stopping && sub.consumer === consumer) {
        sub.supervisor = delay(backoff.bounds.initial, undefined, { signal: sub.abort.signal })
          .catch(() => undefined)
          .then(() => this.supervise(sub));
      }
    });
  }
}
