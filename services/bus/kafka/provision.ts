/** Creates the bus's topics at start: signals kept a week, incidents compacted, dead letters. */
import { BUS_MAX_MESSAGE_BYTES } from '../../../correlator/budget.js';
import type { Logger } from '../../logging.js';
import type { topics } from '../topics.js';
import type { AdminConnection } from './admin.js';
import { withDeadline } from './deadline.js';
import type { BusErrors } from './errors.js';
import type { KafkaBusSettings } from './options.js';
import type { BusState } from './state.js';

/** The incidents topic's message limit: an incident at its budget, with room to spare. */
export const INCIDENTS_MAX_MESSAGE_BYTES = 8 * 1_048_576;

/** How long the signals topic keeps messages when kubevigil creates it: seven days. */
export const SIGNALS_RETENTION_MS = 7 * 86_400_000;

/** Creates the topics once (idempotent on the brokers too); a failed attempt is forgotten, so the next start tries again. */
export class TopicProvisioner {
  private started?: Promise<void>;

  constructor(
    private readonly deps: {
      topics: ReturnType<typeof topics>;
      settings: Pick<KafkaBusSettings, 'partitions' | 'replicationFactor' | 'startTimeoutMs'>;
      admin: AdminConnection;
      state: BusState;
      errors: BusErrors;
      log: Logger;
    },
  ) {}

  /** Resolves once the topics exist; rejects with a retryable BUS_UNAVAILABLE when the brokers do not answer in time. */
  start(): Promise<void> {
    this.started ??= this.createTopics().catch((e: unknown) => {
      this.started = undefined;
      this.deps.state.connected = false;
      throw this.deps.errors.unavailable(`creating topics ${this.topicNames().join(', ')}`, this.deps.settings.startTimeoutMs, e);
    });
    return this.started;
  }

  private topicNames(): string[] {
    const { topics } = this.deps;
    return [topics.signals.name, topics.incidents.name, topics.deadLetter.name];
  }

  private async createTopics(): Promise<void> {
    const { topics, settings, state, log } = this.deps;
    const partitions = settings.partitions;
    const rf = settings.replicationFactor;
    const base = (topic: string) => ({ topic, numPartitions: partitions, ...(rf === undefined ? {} : { replicationFactor: rf }) });
    const admin = await withDeadline(this.deps.admin.get(), settings.startTimeoutMs, 'connecting the admin client');
    const created = await withDeadline(
      admin.createTopics({
        waitForLeaders: true,
        timeout: 8000,
        topics: [
          // Checkpoints refer to window signals by offset (see SignalSource): they must outlive the
          // longest correlation window, whatever the broker's default retention is.
          // The message limits are set on purpose: a signal is at most 64 KiB (correlator/budget.ts) and
          // requests carry at most half of the limit; an incident (200 timeline entries at their
          // budget) stays below 4 MiB. A broker whose own default is smaller refuses nothing of ours.
          {
            ...base(topics.signals.name),
            configEntries: [
              { name: 'retention.ms', value: String(SIGNALS_RETENTION_MS) },
              { name: 'max.message.bytes', value: String(BUS_MAX_MESSAGE_BYTES) },
            ],
          },
          {
            ...base(topics.incidents.name),
            configEntries: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'max.message.bytes', value: String(INCIDENTS_MAX_MESSAGE_BYTES) },
            ],
          },
          base(topics.deadLetter.name),
        ],
      }),
      settings.startTimeoutMs,
      'creating topics',
    );
    state.connected = true;
    log.info({ topics: this.topicNames(), partitions, created }, created ? 'Kafka topics created' : 'Kafka topics already exist');
  }
}
