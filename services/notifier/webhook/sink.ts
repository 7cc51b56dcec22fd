/**
 * Signed JSON webhooks: each incident change is POSTed to each configured URL as the incident's
 * JSON, signed (see `signature.ts`), in version order; failures are retried with backoff through
 * the outbox, and a receiver sees the same delivery id on every retry.
 */
import { createHash } from 'node:crypto';
import type { Incident } from '../../../correlator/incident.js';
import { apiIncident } from '../../api/schemas.js';
import { post } from '../http.js';
import { outcomeOf, type Claimed, type DeliveryContext, type DeliveryResult, type Outcome, type Sink } from '../sink.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign, TIMESTAMP_HEADER } from './signature.js';

/** A short, stable name for a URL that does not reveal it (URLs often carry tokens). */
export const urlId = (url: string): string => createHash('sha256').update(url).digest('hex').slice(0, 12);

/** Incidents to one webhook URL. */
export class WebhookSink implements Sink {
  readonly kind = 'webhook' as const;
  readonly id: string;
  readonly lane: string;
  readonly minIntervalMs = 0;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
    private readonly userAgent = 'kubevigil-notifier',
  ) {
    this.id = `webhook:${urlId(url)}`;
    this.lane = this.id;
  }

  wants(_inc: Incident): boolean {
    return true;
  }

  async deliver(items: Claimed[], ctx: DeliveryContext): Promise<DeliveryResult> {
    const outcomes = new Map<number, Outcome>();
    let requests = 0;
    // In order, one after another; after a failure the rest wait, so a receiver never sees version 3 before 2.
    for (const item of items) {
      // The incident as the REST API sends it (RFC 3339 times).
      const body = JSON.stringify(apiIncident(item.notification.incident));
      const timestamp = Math.floor(ctx.now() / 1000);
      requests++;
      try {
        await post(
          `webhook ${this.id}`,
          this.url,
          body,
          {
            'user-agent': this.userAgent,
            [SIGNATURE_HEADER]: sign(this.secret, timestamp, body),
            [TIMESTAMP_HEADER]: String(timestamp),
            [DELIVERY_HEADER]: `${item.incidentId}@${item.version}`,
            [EVENT_HEADER]: item.notification.change.kind,
          },
          { timeoutMs: this.timeoutMs, now: ctx.now() },
        );
        ctx.metrics.sent.inc({ sink: this.kind, kind: 'webhook' });
        outcomes.set(item.seq, { status: 'done' });
      } catch (err) {
        const o = outcomeOf(err);
        outcomes.set(item.seq, o);
        if (o.status === 'retry') break;
      }
    }
    return { outcomes, requests };
  }
}
