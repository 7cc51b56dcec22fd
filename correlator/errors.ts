/**
 * kubevigil's errors: one base with a stable `code` and a `retryable` flag, so callers decide on
 * retries from the flag and never from message text. Messages state value, limit and advice.
 * Every code is in {@link ERROR_CATALOGUE} (like fastify's error list): what it means, the HTTP
 * status an answer carries when the error reaches one, and whether retrying can help.
 */

/** One catalogued error: its meaning, its HTTP status, and whether a retry can succeed ('varies': the instance says). */
interface ErrorEntry {
  status: number;
  retryable: boolean | 'varies';
  what: string;
}

/** Every error code kubevigil raises. A code that is not here does not compile. */
export const ERROR_CATALOGUE = {
  BACKPRESSURE: { status: 503, retryable: true, what: 'a bounded queue or buffer is full; retry after the given seconds' },
  CONFIG_INVALID: { status: 500, retryable: false, what: 'the configuration is invalid; every problem is listed' },
  RULES_INVALID: { status: 500, retryable: false, what: 'a rule set cannot be used; every problem is listed' },
  INVALID_TRANSITION: { status: 409, retryable: false, what: 'an incident cannot move to that status from the one it has' },
  AUDIT_PAYLOAD_INVALID: { status: 400, retryable: false, what: 'an audit webhook body is not an Event, EventList, array or JSON lines' },
  ALERTMANAGER_PAYLOAD_INVALID: { status: 400, retryable: false, what: 'a body is not an Alertmanager webhook payload' },
  BAD_CURSOR: { status: 400, retryable: false, what: 'a list cursor is malformed' },
  BAD_QUERY: { status: 400, retryable: false, what: 'a list or signals query has a value out of range' },
  UNKNOWN_INCIDENT: { status: 500, retryable: false, what: 'a signal names an incident the store does not have (a bug in the caller)' },
  STORE_CLOSED: { status: 503, retryable: false, what: 'the store was used after it closed (the process is stopping)' },
  STORE_SCHEMA_TOO_NEW: { status: 500, retryable: false, what: 'the database was written by a newer kubevigil' },
  BUS_CONFIG: { status: 500, retryable: false, what: 'the Kafka settings cannot work (no broker named)' },
  BUS_CLOSED: { status: 503, retryable: false, what: 'the bus was used after it closed (the process is stopping)' },
  BUS_UNAVAILABLE: { status: 503, retryable: true, what: 'Kafka cannot be reached or did not answer in time' },
  BUS_REJECTED: { status: 500, retryable: false, what: 'Kafka refused messages; sending them again will not help' },
  BUS_INVALID_MESSAGE: { status: 500, retryable: false, what: 'a message cannot be encoded for the bus' },
  WORKER_UNAVAILABLE: { status: 503, retryable: true, what: 'a detection worker thread stopped before it answered; the batch was not acknowledged' },
  STATE_UNAVAILABLE: { status: 503, retryable: true, what: 'Redis cannot be reached for correlator state' },
  STATE_STALE: { status: 409, retryable: false, what: 'another correlator moved a partition’s state on; this copy is dropped' },
  COMMAND_PENDING: { status: 503, retryable: true, what: 'the correlator has not confirmed a lifecycle command yet; it is queued' },
  RATE_LIMITED: { status: 429, retryable: true, what: 'a notification target asked to slow down' },
  SLACK_ERROR: { status: 502, retryable: 'varies', what: 'Slack answered ok:false' },
  HTTP_ERROR: { status: 502, retryable: 'varies', what: 'a notification target answered an HTTP error' },
  NETWORK_ERROR: { status: 502, retryable: true, what: 'a notification target could not be reached' },
  BAD_PAYLOAD: { status: 500, retryable: false, what: 'a notification is not what the target accepts' },
  INTERNAL: { status: 500, retryable: false, what: 'an unexpected error while delivering a notification' },
} as const satisfies Record<string, ErrorEntry>;

/** A catalogued error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class KubevigilError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable: boolean,
    /** For retryable errors: how long a sender should wait. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'KubevigilError';
  }

  /** The HTTP status an answer carries when this error reaches one. */
  get status(): number {
    return ERROR_CATALOGUE[this.code].status;
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
