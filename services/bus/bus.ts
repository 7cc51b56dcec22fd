/** The bus: how ingest hands signals to correlation. Implemented in memory (embedded) and on Kafka. */
import type { Topic } from './topics.js';

/** One message: a partitioning key and a value. */
export interface BusMessage<T> {
  key: string;
  value: T;
  /** Where the message came from, for consumers that keep per-partition state (Kafka only). */
  partition?: number;
  offset?: string;
}

/** Handles a batch of messages; a rejection means they were not processed and will be offered again. */
export type BusHandler<T> = (batch: BusMessage<T>[]) => Promise<void>;

/** Publishes and subscribes; `publish` resolves only once the bus has taken responsibility for the messages. */
export interface Bus {
  publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void>;
  /** Subscribes a consumer group; returns a function that stops it. */
  subscribe<T>(topic: Topic<T>, group: string, handler: BusHandler<T>): () => Promise<void>;
  /** Delivers what is queued, then stops. */
  close(): Promise<void>;
}
