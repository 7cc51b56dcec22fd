/**
 * Slack through a bot token (@slack/web-api): one message per incident and channel, posted once
 * and then edited with `chat.update`; thread replies for new evidence and for the resolution; a
 * digest when many new incidents wait for one channel. The channel id and `ts` of each message are
 * kept in the store, so a restarted process edits the message it posted before.
 */
import {
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
  LogLevel,
  type Logger as SlackLogger,
} from '@slack/web-api';
import type { Incident } from '../../../correlator/incident.js';
import type { Logger } from '../../logging.js';
import type { SlackBotConfig } from '../config.js';
import { DeliveryError, httpError, networkError, rateLimited, slackError } from '../errors.js';
import { routeChannels } from '../routing.js';
import { newestPerIncident, outcomeOf, type Claimed, type DeliveryContext, type DeliveryResult, type Outcome, type Sink } from '../sink.js';
import {
  formatCompact,
  formatDigest,
  formatEvidence,
  formatIncident,
  formatResolved,
  formatResolvedReply,
  type FormatOptions,
  type SlackMessage,
} from './format.js';

/** Where an incident's message is, and how far it has been brought up to date. */
export interface SlackMessageRef {
  /** The channel id Slack answered with (chat.update needs the id, not a name). */
  channel: string;
  ts: string;
  /** Incident version the message shows. */
  version: number;
  /** Incident version the last thread reply covered. */
  replied: number;
  /** The incident has no message of its own: `ts` is a digest it was listed in. */
  digest: boolean;
}

/** The state key of an incident's message in a configured channel. */
export const slackRefKey = (channel: string, incidentId: string): string => `notifier.slack.msg:${channel}:${incidentId}`;

/** A WebClient that never retries or sleeps by itself: the outbox retries, and honours Retry-After per channel. */
export function slackClient(cfg: Pick<SlackBotConfig, 'token' | 'apiUrl'>, logger: Logger, timeoutMs: number): WebClient {
  return new WebClient(cfg.token, {
    slackApiUrl: cfg.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: timeoutMs,
    logger: slackLogger(logger),
  });
}

function slackLogger(logger: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const log =
    (at: 'debug' | 'info' | 'warn' | 'error') =>
    (...msg: unknown[]) =>
      logger[at]({ component: 'slack-web-api' }, msg.map(String).join(' '));
  return {
    debug: log('debug'),
    info: log('debug'),
    warn: log('warn'),
    error: log('error'),
    setLevel: (l) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** A Web API failure as a {@link DeliveryError}. */
export function toDeliveryError(method: string, err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  if (err instanceof WebAPIPlatformError) return slackError(method, err.data.error);
  if (err instanceof WebAPIRateLimitedError) return rateLimited(`Slack ${method}`, err.retryAfter);
  if (err instanceof WebAPIHTTPError) return httpError(`Slack ${method}`, err.statusCode, typeof err.body === 'string' ? err.body : '');
  if (err instanceof WebAPIRequestError) return networkError(`Slack ${method}`, err.original);
  return networkError(`Slack ${method}`, err);
}

interface Tally {
  requests: number;
}

/** Incidents to one Slack channel through the Web API. */
export class SlackBotSink implements Sink {
  readonly kind = 'slack' as const;
  readonly id: string;
  readonly lane: string;

  constructor(
    private readonly channel: string,
    private readonly client: WebClient,
    private readonly routing: Pick<SlackBotConfig, 'routes' | 'defaultChannel'>,
    private readonly format: FormatOptions,
    private readonly digestThreshold: number,
    readonly minIntervalMs: number,
  ) {
    this.id = `slack:${channel}`;
    this.lane = this.id;
  }

  wants(inc: Incident): boolean {
    return routeChannels(inc, this.routing).includes(this.channel);
  }

  async deliver(items: Claimed[], ctx: DeliveryContext): Promise<DeliveryResult> {
    const outcomes = new Map<number, Outcome>();
    const tally: Tally = { requests: 0 };
    const { latest, superseded } = newestPerIncident(items);
    for (const s of superseded) outcomes.set(s.seq, { status: 'done', note: 'superseded' });
    const refs = new Map<number, SlackMessageRef | undefined>();
    const todo: Claimed[] = [];
    for (const item of latest) {
      const raw = await ctx.state.getState(slackRefKey(this.channel, item.incidentId));
      const ref = raw === undefined ? undefined : (JSON.parse(raw) as SlackMessageRef);
      // Shown already: a redelivery, or a crash after Slack took the message but before the outbox heard.
      if (ref && ref.version >= item.version && (ref.replied >= item.version || !needsReply(item)))
        outcomes.set(item.seq, { status: 'done', note: 'superseded' });
      else {
        refs.set(item.seq, ref);
        todo.push(item);
      }
    }
    const fresh = todo.filter((i) => !refs.get(i.seq) && i.notification.change.kind !== 'resolved');
    if (fresh.length >= this.digestThreshold) {
      try {
        await this.digest(fresh, ctx, tally);
        for (const i of fresh) outcomes.set(i.seq, { status: 'done', note: 'digest' });
      } catch (err) {
        for (const i of fresh) outcomes.set(i.seq, outcomeOf(err));
      }
      return { outcomes, requests: tally.requests };
    }
    const first = todo[0];
    if (first) {
      try {
        // Unfinished (an edit done, its thread reply still to send): no outcome, so it comes back next turn, paced.
        if (await this.deliverOne(first, refs.get(first.seq), ctx, tally)) outcomes.set(first.seq, { status: 'done' });
      } catch (err) {
        outcomes.set(first.seq, outcomeOf(err));
      }
    }
    return { outcomes, requests: tally.requests };
  }

  /** Sends the next message the item needs; resolves true when it needs no more. */
  private async deliverOne(item: Claimed, ref: SlackMessageRef | undefined, ctx: DeliveryContext, tally: Tally): Promise<boolean> {
    const { incident: inc, change } = item.notification;
    const key = slackRefKey(this.channel, inc.id);
    const save = (r: SlackMessageRef) => ctx.state.setState(key, JSON.stringify(r));
    if (!ref) {
      const posted = await this.send(ctx, tally, 'post', { channel: this.channel }, formatIncident(inc, this.format, change), () =>
        formatCompact(inc, this.format),
      );
      await save({ ...posted, version: inc.version, replied: inc.version, digest: false });
      return true;
    }
    if (ref.digest) {
      // Listed in a digest, no message of its own: news goes to the digest's thread.
      const resolved = inc.status === 'resolved';
      await this.send(
        ctx,
        tally,
        'reply',
        { channel: ref.channel, thread_ts: ref.ts },
        resolved ? formatResolved(inc, this.format) : formatCompact(inc, this.format),
        resolved ? () => formatResolvedReply(inc, this.format) : undefined,
      );
      await save({ ...ref, version: inc.version, replied: inc.version });
      return true;
    }
    let current = ref;
    if (current.version < inc.version) {
      try {
        await this.send(ctx, tally, 'update', { channel: current.channel, ts: current.ts }, formatIncident(inc, this.format, change), () =>
          formatCompact(inc, this.format),
        );
      } catch (err) {
        const e = err instanceof DeliveryError ? err : undefined;
        if (e?.fallback !== 'repost') throw err;
        // Someone deleted the message, or it can no longer be edited: post it anew.
        ctx.metrics.fallbacks.inc({ sink: this.kind, reason: e.reason });
        const posted = await this.send(ctx, tally, 'post', { channel: this.channel }, formatIncident(inc, this.format, change), () =>
          formatCompact(inc, this.format),
        );
        await save({ ...posted, version: inc.version, replied: inc.version, digest: false });
        return true;
      }
      current = { ...current, version: inc.version };
      await save(current);
      if (needsReply(item) && current.replied < inc.version) return false;
    }
    if (needsReply(item) && current.replied < inc.version) {
      const resolved = inc.status === 'resolved';
      await this.send(
        ctx,
        tally,
        'reply',
        { channel: current.channel, thread_ts: current.ts },
        resolved ? formatResolvedReply(inc, this.format) : formatEvidence(inc, change, this.format),
        resolved ? undefined : () => formatCompact(inc, this.format),
      );
      await save({ ...current, replied: inc.version });
    }
    return true;
  }

  private async digest(fresh: Claimed[], ctx: DeliveryContext, tally: Tally): Promise<void> {
    const message = formatDigest(
      fresh.map((i) => i.notification),
      this.format,
    );
    const posted = await this.send(ctx, tally, 'digest', { channel: this.channel }, message, () =>
      formatDigest(
        fresh.map((i) => i.notification),
        { ...this.format, maxChars: 3000 },
      ),
    );
    for (const i of fresh) {
      await ctx.state.setState(
        slackRefKey(this.channel, i.incidentId),
        JSON.stringify({ ...posted, version: i.version, replied: i.version, digest: true } satisfies SlackMessageRef),
      );
    }
  }

  /** One Web API call; when Slack refuses the message as too long or invalid, once more with `shorter()`. */
  private async send(
    ctx: DeliveryContext,
    tally: Tally,
    kind: 'post' | 'update' | 'reply' | 'digest',
    where: Record<string, string>,
    message: SlackMessage,
    shorter?: () => SlackMessage,
  ): Promise<{ channel: string; ts: string }> {
    const method = kind === 'update' ? 'chat.update' : 'chat.postMessage';
    // Links, mentions and unfurls are never made from what we send: all of it is escaped text and our own links.
    const extra = method === 'chat.postMessage' ? { unfurl_links: false, unfurl_media: false } : {};
    const call = async (m: SlackMessage) => {
      tally.requests++;
      try {
        const res = (await this.client.apiCall(method, { ...where, text: m.text, blocks: m.blocks, parse: 'none', link_names: false, ...extra })) as {
          channel?: unknown;
          ts?: unknown;
        };
        // Kept as strings: a ts is "1503435956.000247", and a number would lose its digits.
        return { channel: String(res.channel ?? where.channel), ts: String(res.ts ?? where.ts) };
      } catch (err) {
        throw toDeliveryError(method, err);
      }
    };
    let result: { channel: string; ts: string };
    try {
      result = await call(message);
    } catch (err) {
      if (!(err instanceof DeliveryError) || err.fallback !== 'shorter' || !shorter) throw err;
      ctx.metrics.fallbacks.inc({ sink: this.kind, reason: err.reason });
      ctx.logger.warn({ sink: this.id, reason: err.reason }, 'notifier: Slack refused the message; sending the short form');
      result = await call(shorter());
    }
    ctx.metrics.sent.inc({ sink: this.kind, kind });
    return result;
  }
}

function needsReply(item: Claimed): boolean {
  const c = item.notification.change;
  return c.kind !== 'opened' && (c.significant || c.kind === 'resolved');
}
