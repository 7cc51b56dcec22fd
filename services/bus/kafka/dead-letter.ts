/** The dead-letter topic: where messages no consumer can decode are parked, so that their partition keeps flowing. */
import type { KafkaMessage, Message } from 'kafkajs';
import type { Logger } from '../../logging.js';
import { withDeadline } from './deadline.js';
import type { KafkaBusStats } from './options.js';
import type { BusProducer } from './producer.js';

/** Headers a dead-lettered message carries besides its original ones. */
export const DLQ_HEADERS = {
  reason: 'x-kubevigil-dlq-reason',
  topic: 'x-kubevigil-source-topic',
  partition: 'x-kubevigil-source-partition',
  offset: 'x-kubevigil-source-offset',
} as const;

/** A fetched message that cannot be decoded, and why. */
export interface DeadLetter {
  message: KafkaMessage;
  reason: string;
}

/** Writes dead letters with their original key, value and headers, plus where they came from and why. */
export class DeadLetterWriter {
  constructor(
    private readonly deps: {
      producer: BusProducer;
      /** The dead-letter topic's name. */
      topic: string;
      publishTimeoutMs: number;
      stats: KafkaBusStats;
      log: Logger;
    },
  ) {}

  /** Parks messages of `topic`/`partition`; rejects if the brokers did not take them within the publish timeout. */
  async park(topic: string, partition: number, dead: DeadLetter[]): Promise<void> {
    const { producer, publishTimeoutMs, stats, log } = this.deps;
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
    await withDeadline(producer.send(this.deps.topic, records), publishTimeoutMs, `dead-lettering ${dead.length} message(s)`);
    stats.deadLettered += dead.length;
    for (const { message, reason } of dead)
      log.warn({ topic, partition, offset: message.offset, reason }, 'undecodable message moved to the dead-letter topic');
  }
}
