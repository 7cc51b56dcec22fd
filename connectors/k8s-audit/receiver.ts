/**
 * `POST /ingest/k8s-audit`: the receiver for kube-apiserver's audit webhook backend.
 *
 * The apiserver re-sends a whole batch on any non-2xx and may send batches concurrently and out of
 * order, so: answer 2xx only after the batch's signals are handed to the bus; accept a batch with
 * some invalid events (reporting them in the body) rather than 4xx it forever; drop events already
 * seen by (auditID, stage).
 */
import type { Request, Response, Router } from 'express';
import type { IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType, sendProblem } from '../../platform/http.js';
import { Dedup } from '../kit/dedup.js';
import { handOff, refused, webhookRouter } from '../kit/webhook.js';
import { AuditPayloadError, decodeAuditJson, decodeAuditLines, type AuditEvent, type DecodedBatch } from './parse.js';
import { normalizeAuditEvent } from './normalize.js';

/** Counters the receiver reports through; the service wires them to Prometheus. */
export interface AuditReceiverStats {
  events(outcome: 'accepted' | 'duplicate' | 'invalid', n: number): void;
  request(status: number): void;
}

/** Options of {@link auditReceiver}. */
export interface AuditReceiverOptions {
  sink: IngestSink;
  /** Largest accepted body after decompression, in bytes (default 12 MiB). */
  maxBodyBytes?: number;
  /** How many (auditID, stage) keys to remember for deduplication (default 100,000). */
  dedupEntries?: number;
  stats?: AuditReceiverStats;
  now?: () => number;
  /** How many invalid events to describe in the response (all are counted). */
  maxReportedErrors?: number;
}

const JSON_TYPES = new Set(['application/json', 'text/json']);
const LINES_TYPES = new Set(['application/x-ndjson', 'application/jsonl', 'application/json-lines', 'application/jsonlines']);

/** The key the apiserver's re-sends share: the same event at the same stage. */
export const auditDedupKey = (ev: AuditEvent): string => `${ev.auditID}/${ev.stage}`;

/** The express router for the audit webhook; mount it at the app root. */
export function auditReceiver(opts: AuditReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const dedup = new Dedup(opts.dedupEntries ?? 100_000);
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: AuditReceiverStats = opts.stats ?? { events: noop, request: noop };

  const fail = (_req: Request, res: Response, status: number, title: string, detail: string): void => {
    stats.request(status);
    sendProblem(res, status, title, detail);
  };

  return webhookRouter({
    path: '/ingest/k8s-audit',
    maxBodyBytes: maxBody,
    tooLargeAdvice: "lower the apiserver's --audit-webhook-batch-max-size or raise KUBEVIGIL_MAX_BODY_BYTES",
    encodings: 'gzip, deflate, br, zstd or none',
    fail,
    admit(req) {
      const type = mediaType(req);
      if (JSON_TYPES.has(type) || LINES_TYPES.has(type)) return undefined;
      return `Content-Type ${JSON.stringify(type || '(none)')} is not accepted; send application/json (an audit EventList, Event or array) or application/x-ndjson (audit log lines).`;
    },
    async handle(req, res, body) {
      const text = decodeUtf8(body);
      if (text === undefined) return fail(req, res, 400, 'Bad Request', 'the body is not valid UTF-8; audit events are JSON text');
      let batch: DecodedBatch;
      try {
        batch = LINES_TYPES.has(mediaType(req)) ? decodeAuditLines(text) : decodeAuditJson(text);
      } catch (e) {
        if (!(e instanceof AuditPayloadError)) throw e;
        return fail(req, res, 400, 'Bad Request', e.message);
      }
      const observed = now();
      const { fresh, keys, duplicates } = dedup.split(batch.events, auditDedupKey);
      const handed = await handOff(
        opts.sink,
        fresh.map((ev) => normalizeAuditEvent(ev, observed)),
      );
      if (refused(handed)) {
        // Not acknowledged: the apiserver will re-send the batch, and nothing was remembered as seen.
        res.setHeader('Retry-After', String(handed.retryAfterSeconds));
        return fail(
          req,
          res,
          503,
          'Service Unavailable',
          `the batch could not be handed to the bus (${handed.message}); retry after ${handed.retryAfterSeconds}s`,
        );
      }
      dedup.remember(keys);
      stats.events('accepted', fresh.length);
      stats.events('duplicate', duplicates);
      stats.events('invalid', batch.invalid.length);
      stats.request(200);
      res.status(200).json({
        accepted: fresh.length,
        duplicates,
        invalid: batch.invalid.length,
        signals: handed.signals,
        ...(batch.invalid.length ? { errors: batch.invalid.slice(0, maxErrors) } : {}),
      });
    },
  });
}
