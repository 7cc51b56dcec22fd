/**
 * kubevigil's errors: one base with a stable `code` and a `retryable` flag, so callers decide on
 * retries from the flag and never from message text. Messages state value, limit and advice.
 */
export class KubevigilError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    /** For retryable errors: how long a sender should wait. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'KubevigilError';
  }
}

/** A bounded queue or buffer is full; the caller should retry later. */
export class BackpressureError extends KubevigilError {
  constructor(what: string, limit: number, retryAfterSeconds = 1) {
    super('BACKPRESSURE', `${what} is full (${limit} items); retry after ${retryAfterSeconds}s`, true, retryAfterSeconds);
  }
}

/** Configuration is invalid; every problem is listed. */
export class ConfigError extends KubevigilError {
  constructor(readonly problems: string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, false);
  }
}
