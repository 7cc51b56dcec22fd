/**
 * Slack through an incoming webhook: it cannot edit or thread (it returns no `ts`), so each
 * incident change is one message, and a backlog of several is one digest.
 */
import type { Incident } from '../../../correlator/incident.js';
import { httpError, SLACK_ERRORS, slackError } from '../errors.js';
import { post } from '../http.js';
import { newestPerIncident, outcomeOf, type Claimed, type DeliveryContext, type DeliveryResult, type Outcome, type Sink } from '../sink.js';
import { formatCompact, formatDigest, formatIncident, type FormatOptions, type SlackMessage } from './format.js';

/** Incidents to the channel of one Slack incoming webhook. */
export class SlackWebhookSink implements Sink {
  readonly kind = 'slack_webhook' as const;
  readonly id = 'slack-webhook';
  readonly lane = 'slack-webhook';

  constructor(
    private readonly url: string,
    private readonly format: FormatOptions,
    private readonly digestThreshold: number,
    readonly minIntervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  wants(_inc: Incident): boolean {
    return true;
  }

  async deliver(items: Claimed[], ctx: DeliveryContext): Promise<DeliveryResult> {
    const outcomes = new Map<number, Outcome>();
    const { latest, superseded } = newestPerIncident(items);
    for (const s of superseded) outcomes.set(s.seq, { status: 'done', note: 'superseded' });
    let requests = 0;
    const send = async (m: SlackMessage, kind: 'post' | 'digest') => {
      requests++;
      // The webhook answers errors as a status and a bare code in the body ("invalid_payload").
      const classify = (status: number, body: string) => {
        const code = body.trim();
        return SLACK_ERRORS[code] && status < 500 ? slackError('incoming webhook', code) : httpError('Slack incoming webhook', status, body);
      };
      await post(
        'Slack incoming webhook',
        this.url,
        JSON.stringify({ text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false }),
        {},
        { timeoutMs: this.timeoutMs, now: ctx.now(), classify },
      );
      ctx.metrics.sent.inc({ sink: this.kind, kind });
    };
    if (latest.length >= this.digestThreshold) {
      try {
        await send(
          formatDigest(
            latest.map((i) => i.notification),
            this.format,
          ),
          'digest',
        );
        for (const i of latest) outcomes.set(i.seq, { status: 'done', note: 'digest' });
      } catch (err) {
        for (const i of latest) outcomes.set(i.seq, outcomeOf(err));
      }
      return { outcomes, requests };
    }
    const first = latest[0];
    if (!first) return { outcomes, requests };
    const { incident, change } = first.notification;
    try {
      try {
        await send(formatIncident(incident, this.format, change), 'post');
      } catch (err) {
        const e = outcomeOf(err);
        if (e.status !== 'failed' || e.error.fallback !== 'shorter') throw err;
        ctx.metrics.fallbacks.inc({ sink: this.kind, reason: e.error.reason });
        await send(formatCompact(incident, this.format), 'post');
      }
      outcomes.set(first.seq, { status: 'done' });
    } catch (err) {
      outcomes.set(first.seq, outcomeOf(err));
    }
    return { outcomes, requests };
  }
}
