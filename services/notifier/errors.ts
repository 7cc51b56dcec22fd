/**
 * Delivery errors: one class with a stable `code`, a `retryable` flag the dispatcher acts on, a
 * bounded `reason` for metrics, and what to do instead when a retry cannot help (send a shorter
 * message, post a new one). Slack's `ok:false` codes are classified by a table, not by if-chains.
 */
import { KubevigilError } from '../../correlator/errors.js';

/** What kind of failure a delivery met. */
export type DeliveryErrorCode = 'RATE_LIMITED' | 'SLACK_ERROR' | 'HTTP_ERROR' | 'NETWORK_ERROR' | 'BAD_PAYLOAD' | 'INTERNAL';

/** What a sender can do instead of retrying the same request. */
export type Fallback = 'shorter' | 'repost';

/** A failed delivery attempt. */
export class DeliveryError extends KubevigilError {
  constructor(
    code: DeliveryErrorCode,
    message: string,
    retryable: boolean,
    /** A bounded label for metrics: a Slack error code, `http_503`, `network`. */
    readonly reason: string,
    opts: { retryAfterSeconds?: number; fallback?: Fallback } = {},
  ) {
    super(code, message, retryable, opts.retryAfterSeconds);
    this.name = 'DeliveryError';
    this.fallback = opts.fallback;
  }

  /** Set when a different request may succeed where this one cannot. */
  readonly fallback: Fallback | undefined;
}

interface SlackErrorClass {
  retryable: boolean;
  fallback?: Fallback;
  advice: string;
}

const TRANSIENT: SlackErrorClass = { retryable: true, advice: 'a transient Slack failure; retried with backoff' };
const TOO_LONG: SlackErrorClass = { retryable: false, fallback: 'shorter', advice: 'the message is over a Slack limit; a shorter form is sent instead' };
const GONE: SlackErrorClass = { retryable: false, fallback: 'repost', advice: 'the message to update is gone or not editable; a new message is posted' };
const AUTH: SlackErrorClass = {
  retryable: false,
  advice: 'check SLACK_BOT_TOKEN: it must be a valid bot token (xoxb-…) of an installed app with the chat:write scope',
};
const CHANNEL: SlackErrorClass = {
  retryable: false,
  advice: 'check SLACK_CHANNEL and SLACK_ROUTES: the channel must exist, not be archived, and have the app invited (/invite @app)',
};

/** Slack Web API `error` codes (chat.postMessage, chat.update and the common ones) and what each means for delivery. */
export const SLACK_ERRORS: Readonly<Record<string, SlackErrorClass>> = {
  ratelimited: TRANSIENT,
  rate_limited: TRANSIENT,
  message_limit_exceeded: TRANSIENT,
  fatal_error: TRANSIENT,
  internal_error: TRANSIENT,
  service_unavailable: TRANSIENT,
  request_timeout: TRANSIENT,
  team_added_to_org: TRANSIENT,
  org_login_required: TRANSIENT,
  external_channel_migrating: TRANSIENT,
  msg_too_long: TOO_LONG,
  msg_blocks_too_long: TOO_LONG,
  invalid_blocks: TOO_LONG,
  invalid_blocks_format: TOO_LONG,
  message_not_found: GONE,
  cant_update_message: GONE,
  edit_window_closed: GONE,
  cannot_reply_to_message: GONE,
  invalid_auth: AUTH,
  not_authed: AUTH,
  account_inactive: AUTH,
  token_revoked: AUTH,
  token_expired: AUTH,
  missing_scope: AUTH,
  not_allowed_token_type: AUTH,
  no_permission: AUTH,
  channel_not_found: CHANNEL,
  not_in_channel: CHANNEL,
  is_archived: CHANNEL,
  is_inactive: CHANNEL,
  restricted_action: CHANNEL,
  posting_to_channel_denied: CHANNEL,
  // Incoming webhooks answer with these (Slack changelog 2016-05-17), as the body of a 4xx.
  invalid_payload: TOO_LONG,
  no_text: { retryable: false, advice: 'the message had no text; this is a kubevigil bug, please report it' },
  channel_is_archived: CHANNEL,
  action_prohibited: CHANNEL,
  posting_to_general_channel_denied: CHANNEL,
  no_service: { retryable: false, advice: 'check SLACK_WEBHOOK_URL: the webhook was removed or its app uninstalled' },
  no_active_hooks: { retryable: false, advice: 'check SLACK_WEBHOOK_URL: the webhook is disabled' },
  invalid_token: { retryable: false, advice: 'check SLACK_WEBHOOK_URL: it is not a valid webhook URL' },
  team_disabled: AUTH,
};

/** The error for a Slack `ok:false` answer with code `error` to `method`. */
export function slackError(method: string, error: string): DeliveryError {
  const known = SLACK_ERRORS[error];
  const cls = known ?? { retryable: false, advice: `an error this notifier does not know; see Slack's documentation of ${method}` };
  // Unknown codes are not used as metric labels as they are: the label set must stay bounded.
  const reason = known ? error : 'other_slack_error';
  return new DeliveryError(
    'SLACK_ERROR',
    `Slack ${method} answered ok:false, error ${JSON.stringify(error)}: ${cls.advice}`,
    cls.retryable,
    reason,
    cls.fallback ? { fallback: cls.fallback } : {},
  );
}

/** The error for an HTTP answer that is not success (429 is {@link rateLimited}). */
export function httpError(target: string, status: number, body = ''): DeliveryError {
  // 408 and 5xx are the receiver's trouble and may pass; other 4xx will fail the same way again.
  const retryable = status === 408 || status >= 500;
  const excerpt = body.length > 200 ? `${body.slice(0, 200)}…` : body;
  return new DeliveryError(
    'HTTP_ERROR',
    `${target} answered HTTP ${status}${excerpt ? ` (${JSON.stringify(excerpt)})` : ''}; ${retryable ? 'retried with backoff' : 'not retried: the request itself was refused'}`,
    retryable,
    `http_${status}`,
  );
}

/** A 429: wait `retryAfterSeconds` before sending to this destination again. */
export function rateLimited(target: string, retryAfterSeconds: number): DeliveryError {
  return new DeliveryError('RATE_LIMITED', `${target} is rate-limited; retry after ${retryAfterSeconds}s`, true, 'ratelimited', { retryAfterSeconds });
}

/** No answer: connection refused or reset, DNS failure, timeout. */
export function networkError(target: string, cause: unknown): DeliveryError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  const timeout = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
  return new DeliveryError('NETWORK_ERROR', `${target} could not be reached: ${msg}; retried with backoff`, true, timeout ? 'timeout' : 'network');
}

/** Parses a `Retry-After` header (seconds or an HTTP date) to whole seconds; `fallback` when absent or unreadable. */
export function retryAfterSeconds(header: string | null | undefined, nowMs: number, fallback = 30): number {
  if (header === null || header === undefined || header.trim() === '') return fallback;
  const n = Number(header);
  if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  const at = Date.parse(header);
  return Number.isNaN(at) ? fallback : Math.max(0, Math.ceil((at - nowMs) / 1000));
}
