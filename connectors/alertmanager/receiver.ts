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
import express, { type Request, type Response, type Router } from 'express';
import type { IngestSink } from '../../correlator/ports.js';
import { RecentKeys } from '../../correlator/recent-keys.js';
import { decodeUtf8, mediaType, sendProblem } from '../shared/http.js';
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
  const seen = new RecentKeys(opts.dedupEntries ?? 100_000);
  // Keys of alerts being handed to the sink right now, so that the same alert arriving from the
  // other member of an HA pair meanwhile waits for the outcome instead of being ingested twice.
  const inflight = new Map<string, Promise<unknown>>();
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: AlertmanagerReceiverStats = opts.stats ?? { events: noop, request: noop };
  const router = express.Router();

  const problem = (res: Response, status: number, title: string, detail: string, extra: Record<string, unknown> = {}): void => {
    stats.request(status);
    sendProblem(res, status, title, detail, extra);
  };

  router.post(
    ALERTMANAGER_PATH,
    (req, res, next) => {
      const type = mediaType(req);
      if (!JSON_TYPES.has(type)) {
        problem(res, 415, 'Unsupported Media Type', `Content-Type ${JSON.stringify(type)} is not accepted; Alertmanager's webhook sends application/json`);
        return;
      }
      next();
    },
    express.raw({ type: () => true, limit: maxBody, inflate: true }),
    async (req: Request, res: Response) => {
      const body = req.body as Buffer | undefined;
      const text = Buffer.isBuffer(body) ? decodeUtf8(body) : '';
      if (text === undefined) {
        problem(res, 400, 'Bad Request', 'the body is not valid UTF-8; an Alertmanager webhook payload is JSON text', { field: '(body)' });
        return;
      }
      let payload: DecodedPayload;
      try {
        payload = decodeAlertmanagerJson(text);
      } catch (e) {
        if (!(e instanceof AlertmanagerPayloadError)) throw e;
        problem(res, 400, 'Bad Request', e.message, { field: e.field });
        return;
      }

      const observed = now();
      const byKey = new Map<string, AlertSourceEvent>();
      let duplicates = 0;
      for (const a of payload.alerts) {
        const key = alertKey(a);
        if (byKey.has(key)) duplicates++;
        else byKey.set(key, normalizeAlert(a, payload.group, observed, opts.normalize));
      }
      for (;;) {
        const pending = [...byKey.keys()].map((k) => inflight.get(k)).filter((p) => p !== undefined);
        if (pending.length === 0) break;
        await Promise.allSettled(pending);
      }
      const fresh: AlertSourceEvent[] = [];
      for (const [key, ev] of byKey) {
        if (seen.has(key)) duplicates++;
        else fresh.push(ev);
      }

      let signals = 0;
      if (fresh.length) {
        // A sink that throws instead of rejecting must still end in a 503, not a 500.
        const handed = (async () => opts.sink.ingest(fresh))();
        for (const ev of fresh) inflight.set(ev.key, handed);
        try {
          signals = (await handed).signals;
        } catch (e) {
          const retryAfter = (e as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1;
          res.setHeader('Retry-After', String(retryAfter));
          problem(res, 503, 'Service Unavailable', `the alerts could not be handed to the bus (${(e as Error).message}); Alertmanager will retry; retry after ${retryAfter}s`);
          return;
        } finally {
          for (const ev of fresh) inflight.delete(ev.key);
        }
        for (const ev of fresh) seen.add(ev.key);
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
  );

  // Body-parser failures (too large, bad gzip) arrive here with their HTTP status.
  router.use(ALERTMANAGER_PATH, (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large') {
      problem(res, 413, 'Content Too Large', `the body exceeds ${maxBody} bytes after decompression; set max_alerts on the Alertmanager webhook receiver or raise KUBEVIGIL_MAX_BODY_BYTES`);
      return;
    }
    if (e?.type === 'encoding.unsupported') {
      problem(res, 415, 'Unsupported Media Type', `${e.message ?? 'unsupported Content-Encoding'}; use gzip, deflate, br, zstd or none`);
      return;
    }
    if (e?.status && e.status >= 400 && e.status < 500) {
      problem(res, 400, 'Bad Request', `the body could not be read: ${e.message ?? 'invalid body'} (is Content-Encoding: gzip set on a body that is not gzip?)`);
      return;
    }
    next(err);
  });
  return router;
}
