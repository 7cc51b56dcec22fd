/** How Kafka failures become {@link KubevigilError}s: unavailable (retryable, with a Retry-After) or rejected. */
import { KubevigilError } from '../../../correlator/errors.js';
import { DeadlineError } from './deadline.js';

/** Builds the bus's errors, naming its brokers and advising its Retry-After. */
export class BusErrors {
  constructor(
    private readonly brokers: readonly string[],
    private readonly retryAfterSeconds: number,
  ) {}

  /** BUS_UNAVAILABLE (retryable): `what` failed, within `ms` when it had a deadline. */
  unavailable(what: string, ms: number, cause: unknown): KubevigilError {
    const err = new KubevigilError(
      'BUS_UNAVAILABLE',
      `Kafka (${this.brokers.join(',')}) is unavailable: ${what} failed${ms ? ` within ${ms} ms` : ''} (${describe(cause)}); retry after ${this.retryAfterSeconds}s`,
      true,
      this.retryAfterSeconds,
    );
    err.cause = cause;
    return err;
  }

  /** What a failed publish of `count` messages throws: unavailable if retrying can help, else BUS_REJECTED. */
  publishError(topic: string, count: number, timeoutMs: number, e: unknown): KubevigilError {
    if (e instanceof KubevigilError) return e;
    if (isRetryable(e)) return this.unavailable(`publishing ${count} message(s) to ${topic}`, timeoutMs, e);
    const err = new KubevigilError('BUS_REJECTED', `Kafka refused ${count} message(s) for ${topic}: ${describe(e)}; resending will not help`, false);
    err.cause = e;
    return err;
  }
}

/** Retryable unless Kafka said the request itself is wrong (too large, not authorized, invalid). */
export function isRetryable(e: unknown): boolean {
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

/** An error's message, with its cause's when that adds something. */
export function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error && !e.message.includes(cause.message) ? `${e.message}: ${cause.message}` : e.message;
  }
  return String(e);
}
