/** Bus topic names, built here and nowhere else (Kafka topics in distributed mode, queues in memory). */
import type { Incident } from '../../correlator/incident.js';
import type { SignalsMessage } from '../correlate-partitioned.js';

/** A topic and the type of the values it carries. */
export interface Topic<T> {
  readonly name: string;
  /** Phantom field: ties the value type to the topic at compile time. */
  readonly _value?: T;
}

/** Topic names with an optional prefix (tests give each run its own). */
export function topics(prefix = 'kubevigil') {
  return {
    signals: { name: `${prefix}.signals` } as Topic<SignalsMessage>,
    incidents: { name: `${prefix}.incidents` } as Topic<Incident>,
    /** Kafka only: the raw bytes of messages that could not be decoded, with `x-kubevigil-dlq-*` headers. */
    deadLetter: { name: `${prefix}.dead-letter` } as Topic<unknown>,
  };
}

/** The Kafka consumer group id of a role's group, scoped by the same prefix as the topics. */
export function consumerGroupId(prefix: string, group: string): string {
  return `${prefix}.${group}`;
}
