/**
 * `POST /ingest/k8s-audit`: the receiver for kube-apiserver's audit webhook backend.
 *
 * The apiserver re-sends a whole batch on any non-2xx and may send batches concurrently and out of
 * order, so: answer 2xx only after the batch's signals are handed to the bus; accept a batch with
 * some invalid events (reporting them in the body) rather than 4xx it forever; drop events already
 * seen by (auditID, stage).
 */
import express, { type Request, type Response, type Router } from 'express';
import { KubevigilError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import type { SourceEvent } from '../../correlator/detection/source-event.js';
import { RecentKeys } from '../../correlator/recent-keys.js';
import { decodeUtf8, mediaType, sendProblem } from '../shared/http.js';
import { AuditPayloadError, decodeAuditJson, decodeAuditLines, type DecodedBatch } from './parse.js';
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

/** The express router for the audit webhook; mount it at the app root. */
export function auditReceiver(opts: AuditReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const seen = new RecentKeys(opts.dedupEntries ?? 100_000);
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: AuditReceiverStats = opts.stats ?? { events: noop, request: noop };
  const router = express.Router();

  const reply = (_res: Response, status: number): void => stats.request(status);

  router.post(
    '/ingest/k8s-audit',
    (req, res, next) => {
      const type = mediaType(req);
      if (!JSON_TYPES.has(type) && !LINES_TYPES.has(type)) {
        reply(res, 415);
        sendProblem(res, 415, 'Unsupported Media Type', `Content-Type ${JSON.stringify(type || '(none)')} is not accepted; send application/json (an audit EventList, Event or array) or application/x-ndjson (audit log lines).`);
        return;
      }
      next();
    },
    express.raw({ type: () => true, limit: maxBody, inflate: true }),
    async (req: Request, res: Response) => {
      const body = req.body as Buffer | undefined;
      const text = Buffer.isBuffer(body) ? decodeUtf8(body) : '';
      if (text === undefined) {
        reply(res, 400);
        sendProblem(res, 400, 'Bad Request', 'the body is not valid UTF-8; audit events are JSON text');
        return;
      }
      let batch: DecodedBatch;
      try {
        batch = LINES_TYPES.has(mediaType(req)) ? decodeAuditLines(text) : decodeAuditJson(text);
      } catch (e) {
        if (!(e instanceof AuditPayloadError)) throw e;
        reply(res, 400);
        sendProblem(res, 400, 'Bad Request', e.message);
        return;
      }
      const observed = now();
      const fresh: SourceEvent[] = [];
      const keys: string[] = [];
      const inBatch = new Set<string>();
      let duplicates = 0;
      for (const ev of batch.events) {
        const key = `${ev.auditID}/${ev.stage}`;
        if (seen.has(key) || inBatch.has(key)) {
          duplicates++;
          continue;
        }
        inBatch.add(key);
        keys.push(key);
        fresh.push(normalizeAuditEvent(ev, observed));
      }
      let signals: number;
      try {
        signals = (await opts.sink.ingest(fresh)).signals;
      } catch (e) {
        // A bug is not backpressure: only retryable errors become 503, the rest a logged 500.
        if (!(e instanceof KubevigilError && e.retryable)) throw e;
        // Not acknowledged: the apiserver will re-send the batch, and nothing was remembered as seen.
        const retryAfter = (e as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1;
        reply(res, 503);
        res.setHeader('Retry-After', String(retryAfter));
        sendProblem(res, 503, 'Service Unavailable', `the batch could not be handed to the bus (${(e as Error).message}); retry after ${retryAfter}s`);
        return;
      }
      for (const k of keys) seen.add(k);
      stats.events('accepted', fresh.length);
      stats.events('duplicate', duplicates);
      stats.events('invalid', batch.invalid.length);
      reply(res, 200);
      res.status(200).json({
        accepted: fresh.length,
        duplicates,
        invalid: batch.invalid.length,
        signals,
        ...(batch.invalid.length ? { errors: batch.invalid.slice(0, maxErrors) } : {}),
      });
    },
  );

  // Body-parser failures (too large, bad gzip) arrive here with their HTTP status.
  router.use('/ingest/k8s-audit', (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large') {
      reply(res, 413);
      sendProblem(res, 413, 'Content Too Large', `the body exceeds ${maxBody} bytes after decompression; lower the apiserver's --audit-webhook-batch-max-size or raise KUBEVIGIL_MAX_BODY_BYTES`);
      return;
    }
    if (e?.type === 'encoding.unsupported') {
      reply(res, 415);
      sendProblem(res, 415, 'Unsupported Media Type', `${e.message ?? 'unsupported Content-Encoding'}; use gzip, deflate, br, zstd or none`);
      return;
    }
    if (e?.status && e.status >= 400 && e.status < 500) {
      reply(res, 400);
      sendProblem(res, 400, 'Bad Request', `the body could not be read: ${e.message ?? 'invalid body'} (is Content-Encoding: gzip set on a body that is not gzip?)`);
      return;
    }
    next(err);
  });
  return router;
}
