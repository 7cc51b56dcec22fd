/**
 * `POST /ingest/k8s-audit`: the receiver for kube-apiserver's audit webhook backend.
 *
 * The apiserver re-sends a whole batch on any non-2xx and may send batches concurrently and out of
 * order, so: answer 2xx only after the batch's signals are handed to the bus; accept a batch with
 * some invalid events (reporting them in the body) rather than 4xx it forever; drop events already
 * seen by (auditID, stage, receive time): see `auditDedupKey` and the store in audit-dedup.ts.
 */
import type { Request, Response, Router } from 'express';
import type { IngestOutcome, IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType, sendProblem } from '../../platform/http.js';
import { handOff, refused, webhookRouter, type Refusal } from '../kit/webhook.js';
import { AuditPayloadError, decodeAuditJson, decodeAuditLines, type DecodedBatch, type InvalidEvent } from './parse.js';
import { normalizeAuditEvent } from './normalize.js';
import { AuditDedup, auditKeys, type AuditKeys } from './audit-dedup.js';

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
  /** How many (auditID, stage, receive time) keys to remember for deduplication (default 100,000). */
  dedupEntries?: number;
  stats?: AuditReceiverStats;
  now?: () => number;
  /** How many invalid events to describe in the response (all are counted). */
  maxReportedErrors?: number;
  /** Decoding and detection elsewhere (worker threads); without it the sink detects in-process. */
  offload?: AuditOffload;
}

/** A body decoded and detected by an {@link AuditOffload}: its events' dedup keys and invalid events (the rest is the offload's own). */
export interface OffloadedAudit {
  /** The dedup keys of the valid events, in order ({@link auditKeys}). */
  keys: AuditKeys;
  invalid: InvalidEvent[];
}

/**
 * Decoding, normalization and detection of whole bodies away from the event loop. The receiver
 * still deduplicates (its keys stay in one place) and answers only after {@link publish} resolved.
 */
export interface AuditOffload {
  /** The body decoded and detected, or `{ problem }` for a body unusable as a whole (400); rejects retryably when it cannot run now. */
  detect(body: Buffer, lines: boolean, observed: number): Promise<OffloadedAudit | { problem: string }>;
  /** Hands on what the events at `fresh` (indices into `keys`) raised, as the sink does; rejects as the sink does. */
  publish(batch: OffloadedAudit, fresh: readonly number[]): Promise<IngestOutcome>;
}

const JSON_TYPES = new Set(['application/json', 'text/json']);
const LINES_TYPES = new Set(['application/x-ndjson', 'application/jsonl', 'application/json-lines', 'application/jsonlines']);

/** The express router for the audit webhook; mount it at the app root. */
export function auditReceiver(opts: AuditReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const dedup = new AuditDedup(opts.dedupEntries ?? 100_000);
  const now = opts.now ?? Date.now;
  const maxErrors = opts.maxReportedErrors ?? 20;
  const noop = () => {};
  const stats: AuditReceiverStats = opts.stats ?? { events: noop, request: noop };

  const fail = (_req: Request, res: Response, status: number, title: string, detail: string): void => {
    stats.request(status);
    sendProblem(res, status, title, detail);
  };

  const unavailable = (req: Request, res: Response, handed: Refusal): void => {
    res.setHeader('Retry-After', String(handed.retryAfterSeconds));
    fail(req, res, 503, 'Service Unavailable', `the batch could not be handed to the bus (${handed.message}); retry after ${handed.retryAfterSeconds}s`);
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
      const lines = LINES_TYPES.has(mediaType(req));
      let keys: AuditKeys;
      let invalid: InvalidEvent[];
      let handOn: (fresh: number[]) => Promise<IngestOutcome>;
      if (opts.offload) {
        const offload = opts.offload;
        let done: OffloadedAudit | { problem: string } | undefined;
        const ran = await handOff({ ingest: async () => ((done = await offload.detect(body, lines, now())), { signals: 0 }) }, []);
        if (refused(ran)) return unavailable(req, res, ran);
        const detected = done!;
        if ('problem' in detected) return fail(req, res, 400, 'Bad Request', detected.problem);
        keys = detected.keys;
        invalid = detected.invalid;
        handOn = (fresh) => offload.publish(detected, fresh);
      } else {
        const text = decodeUtf8(body);
        if (text === undefined) return fail(req, res, 400, 'Bad Request', 'the body is not valid UTF-8; audit events are JSON text');
        let batch: DecodedBatch;
        try {
          batch = lines ? decodeAuditLines(text) : decodeAuditJson(text);
        } catch (e) {
          if (!(e instanceof AuditPayloadError)) throw e;
          return fail(req, res, 400, 'Bad Request', e.message);
        }
        const observed = now();
        const { events } = batch;
        keys = auditKeys(events);
        invalid = batch.invalid;
        handOn = (fresh) => opts.sink.ingest(fresh.map((i) => normalizeAuditEvent(events[i]!, observed)));
      }
      const { fresh, duplicates, remember } = dedup.split(keys);
      const handed = await handOff({ ingest: () => handOn(fresh) }, []);
      // Not acknowledged: the apiserver will re-send the batch, and nothing was remembered as seen.
      if (refused(handed)) return unavailable(req, res, handed);
      remember();
      stats.events('accepted', fresh.length);
      stats.events('duplicate', duplicates);
      stats.events('invalid', invalid.length);
      stats.request(200);
      res.status(200).json({
        accepted: fresh.length,
        duplicates,
        invalid: invalid.length,
        signals: handed.signals,
        ...(invalid.length ? { errors: invalid.slice(0, maxErrors) } : {}),
      });
    },
  });
}
