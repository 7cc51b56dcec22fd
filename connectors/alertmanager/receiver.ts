/**
 * `POST /ingest/alertmanager`: the receiver for Alertmanager's webhook notifier.
 *
 * Alertmanager delivers at least once — both members of an HA pair may notify, failed
 * notifications are retried, and a firing group is re-sent every repeat_interval — and it retries
 * only on 5xx (a 4xx is dropped). So: every alert is deduplicated on (fingerprint, startsAt, status);
 * the answer is 2xx only after the fresh alerts were handed to the sink, and 503 + Retry-After when
 * they could not be (nothing is remembered as seen then, so the retry is processed in full); a
 * payload with some bad alerts is a 200 that reports them; 400 only for a body that is not a
 * webhook payload at all, since Alertmanager would not retry it anyway.
 */
import type { Request, Response, Router } from 'express';
import type { IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType, sendProblem } from '../../platform/http.js';
import { Dedup } from '../kit/dedup.js';
import { handOff, refused, webhookRouter } from '../kit/webhook.js';
import { alertKey, normalizeAlert, type AlertNormalizeOptions, type AlertSourceEvent } from './normalize.js';
import { AlertmanagerPayloadError, decodeAlertmanagerJson, type DecodedPayload } from './parse.js';

/** Counters the receiver reports through; the service wires them to Prometheus (same shape as the audit receiver's). */
export interface AlertmanagerReceiverStats {
  events(outcome: 'accepted' | 'duplicate' | 'invalid', n: number): void;
  request(status: number): void;
}

/** Options of {@link alertmanagerReceiver}. */
export interface AlertmanagerReceiverOptions {
  sink: IngestSink;
  /** Largest accepted body after decompression, in bytes (default 12 MiB). */
  maxBodyBytes?: number;
  /** How many (fingerprint, startsAt, status) keys to remember for deduplication (default 100,000). */
  dedupEntries?: number;
  stats?: AlertmanagerReceiverStats;
  now?: () => number;
  /** How many invalid alerts to describe in the response (all are counted). */
  maxReportedErrors?: number;
  /** Label conventions that name an alert's actor, in order. */
  normalize?: AlertNormalizeOptions;
}

/** The path Alertmanager's webhook_configs url should point at. */
export const ALERTMANAGER_PATH = '/ingest/alertmanager';

// Alertmanager always sends application/json; a body without a type is read as JSON too.
const JSON_TYPES = new Set(['application/json', 'text/json', '']);

/** The express router for the Alertmanager webhook; mount it at the app root. */
export function alertmanagerReceiver(opts: AlertmanagerReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const dedup = new Dedup(opts.dedupEntries ?? 100_000);
  // Keys of alerts being handed to the sink right now, so that the same alert arriving from the
  // other member of an HA pair meanwhile waits for the outcome instead of being ingested twice.
  const inflight = new Map<string, Promise<unknown>>();
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: AlertmanagerReceiverStats = opts.stats ?? { events: noop, request: noop };

  const problem = (res: Response, status: number, title: string, detail: string, extra: Record<string, unknown> = {}): void => {
    stats.request(status);
    sendProblem(res, status, title, detail, extra);
  };

  return webhookRouter({
    path: ALERTMANAGER_PATH,
    maxBodyBytes: maxBody,
    tooLargeAdvice: 'set max_alerts on the Alertmanager webhook receiver or raise KUBEVIGIL_MAX_BODY_BYTES',
    encodings: 'gzip, deflate, br, zstd or none',
    fail: (_req: Request, res: Response, status: number, title: string, detail: string) => problem(res, status, title, detail),
    admit(req) {
      const type = mediaType(req);
      return JSON_TYPES.has(type) ? undefined : `Content-Type ${JSON.stringify(type)} is not accepted; Alertmanager's webhook sends application/json`;
    },
    async handle(_req, res, body) {
      const text = decodeUtf8(body);
      if (text === undefined)
        return problem(res, 400, 'Bad Request', 'the body is not valid UTF-8; an Alertmanager webhook payload is JSON text', { field: '(body)' });
      let payload: DecodedPayload;
      try {
        payload = decodeAlertmanagerJson(text);
      } catch (e) {
        if (!(e instanceof AlertmanagerPayloadError)) throw e;
        return problem(res, 400, 'Bad Request', e.message, { field: e.field });
      }

      const observed = now();
      // Within the payload first (an alert listed twice), then against what was handed on before,
      // once any delivery of the same alerts that is under way has ended.
      const inPayload = dedup.split(payload.alerts, alertKey);
      const byKey = new Map(inPayload.fresh.map((a, i) => [inPayload.keys[i]!, normalizeAlert(a, payload.group, observed, opts.normalize)] as const));
      for (;;) {
        const pending = [...byKey.keys()].map((k) => inflight.get(k)).filter((p) => p !== undefined);
        if (pending.length === 0) break;
        await Promise.allSettled(pending);
      }
      const fresh: AlertSourceEvent[] = [];
      let duplicates = inPayload.duplicates;
      for (const [key, ev] of byKey) {
        if (dedup.has(key)) duplicates++;
        else fresh.push(ev);
      }

      let signals = 0;
      if (fresh.length) {
        // Settles only once the outcome is recorded, so a delivery waiting on it sees the keys as seen.
        const delivery = (async () => {
          // Alertmanager retries 5xx: any failure, a bug included, is a 503 so the alerts come back.
          const r = await handOff(opts.sink, fresh).catch((e: unknown) => ({ retryAfterSeconds: 1, backpressure: false, message: (e as Error).message }));
          if (!refused(r)) dedup.remember(fresh.map((ev) => ev.key));
          for (const ev of fresh) inflight.delete(ev.key);
          return r;
        })();
        for (const ev of fresh) inflight.set(ev.key, delivery);
        const r = await delivery;
        if (refused(r)) {
          res.setHeader('Retry-After', String(r.retryAfterSeconds));
          return problem(
            res,
            503,
            'Service Unavailable',
            `the alerts could not be handed to the bus (${r.message}); Alertmanager will retry; retry after ${r.retryAfterSeconds}s`,
          );
        }
        signals = r.signals;
      }
      stats.events('accepted', fresh.length);
      stats.events('duplicate', duplicates);
      stats.events('invalid', payload.invalid.length);
      stats.request(200);
      res.status(200).json({
        accepted: fresh.length,
        duplicates,
        invalid: payload.invalid.length,
        signals,
        ...(payload.invalid.length ? { errors: payload.invalid.slice(0, maxErrors) } : {}),
        ...(payload.warnings.length ? { warnings: payload.warnings } : {}),
      });
    },
  });
}
