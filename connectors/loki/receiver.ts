/**
 * `POST /loki/api/v1/push`: a receiver compatible with Loki's push API, so Promtail, Grafana Alloy
 * (`loki.write`), Fluent Bit and the OpenTelemetry collector's Loki exporter can send kubevigil a
 * copy of their streams.
 *
 * It answers like Loki (pkg/distributor/http.go): 204 once accepted, 400 with a message for a body
 * that does not decode, 413 past the size limit, 415 for content it cannot read, and 429 with
 * Retry-After when the bus refuses the batch — clients retry 429 and 5xx with back-off and drop on
 * other 4xx, so only a refusal kubevigil recovers from may be answered with a retryable status.
 * Every line is counted; only lines a parser recognized go to detection, and the answer waits for
 * them to be on the bus.
 */
import type { Request, Response, Router } from 'express';
import type { IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType, sendProblem } from '../../platform/http.js';
import { Dedup } from '../kit/dedup.js';
import { handOff, refused, webhookRouter } from '../kit/webhook.js';
import { normalizeLokiEntry } from './normalize.js';
import { DEFAULT_PUSH_LIMITS, DEFAULT_TENANT, decodePushJson, decodePushProtobuf, PushDecodeError, type DecodedPush } from './push.js';

/** Counters the receiver reports through; the service wires them to Prometheus. */
export interface LokiReceiverStats {
  /** `received`: every line; `detected`: recognized lines sent to detection; `duplicate`: seen before; `truncated`: cut to the line limit. */
  lines(outcome: 'received' | 'detected' | 'duplicate' | 'truncated', n: number): void;
  request(status: number): void;
}

/** Options of {@link lokiReceiver}. */
export interface LokiReceiverOptions {
  sink: IngestSink;
  /** Largest accepted body after decompression (gzip, deflate or snappy), in bytes (default 12 MiB). */
  maxBodyBytes?: number;
  /** Longest line kept whole; longer lines are truncated (default 256 KiB). */
  maxLineLength?: number;
  /** How many recognized entries to remember for deduplication of re-sent batches (default 100,000). */
  dedupEntries?: number;
  /** Tenant for pushes without `X-Scope-OrgID` (default `fake`, as single-tenant Loki). */
  defaultTenant?: string;
  stats?: LokiReceiverStats;
  now?: () => number;
}

const PATH = '/loki/api/v1/push';
const JSON_TYPE = 'application/json';
const PROTO_TYPE = 'application/x-protobuf';
// Loki's tenant.ValidTenantID: at most 150 characters of letters, digits and !-_.*'().
const TENANT = /^[A-Za-z0-9!._*'()-]{1,150}$/;

/** The express router for the Loki push API; mount it at the app root. */
export function lokiReceiver(opts: LokiReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const limits = { ...DEFAULT_PUSH_LIMITS, maxDecompressedBytes: maxBody, maxLineLength: opts.maxLineLength ?? DEFAULT_PUSH_LIMITS.maxLineLength };
  const dedup = new Dedup(opts.dedupEntries ?? 100_000);
  const now = opts.now ?? Date.now;
  const noop = () => {};
  const stats: LokiReceiverStats = opts.stats ?? { lines: noop, request: noop };

  const fail = (_req: Request, res: Response, status: number, title: string, detail: string): void => {
    stats.request(status);
    sendProblem(res, status, title, detail);
  };

  return webhookRouter({
    path: PATH,
    maxBodyBytes: maxBody,
    tooLargeAdvice: 'send smaller batches (Promtail batchsize, Alloy max_batch_size) or raise KUBEVIGIL_MAX_BODY_BYTES',
    encodings: 'gzip, deflate, br, zstd, snappy (protobuf) or none',
    fail,
    admit(req) {
      const type = mediaType(req);
      // Like Loki: no Content-Type means protobuf.
      if (type !== JSON_TYPE && type !== PROTO_TYPE && type !== '')
        return `Content-Type ${JSON.stringify(type)} is not accepted; send application/json or application/x-protobuf (snappy-compressed PushRequest)`;
      // Protobuf bodies are raw snappy whatever the header says; some clients set it (loki#3407).
      if (req.headers['content-encoding'] === 'snappy') delete req.headers['content-encoding'];
      return undefined;
    },
    async handle(req, res, body, next) {
      const orgId = req.headers['x-scope-orgid'];
      const tenant = typeof orgId === 'string' && orgId !== '' ? orgId : (opts.defaultTenant ?? DEFAULT_TENANT);
      if (!TENANT.test(tenant))
        return fail(
          req,
          res,
          400,
          'Bad Request',
          `X-Scope-OrgID ${JSON.stringify(tenant.slice(0, 60))} is not a valid tenant: at most 150 letters, digits and !-_.*'()`,
        );
      let push: DecodedPush;
      try {
        push = mediaType(req) === JSON_TYPE ? decodeJson(body, tenant, limits) : decodePushProtobuf(body, tenant, limits);
      } catch (e) {
        if (!(e instanceof PushDecodeError)) throw e;
        return e.status === 413 ? fail(req, res, 413, 'Content Too Large', e.message) : fail(req, res, 400, 'Bad Request', e.message);
      }
      const observed = now();
      const understood = push.entries.map((entry) => normalizeLokiEntry(entry, observed)).filter((ev) => ev.understood);
      const { fresh, keys, duplicates } = dedup.split(understood, (ev) => ev.key);
      if (fresh.length) {
        let handed;
        try {
          handed = await handOff(opts.sink, fresh);
        } catch (e) {
          stats.request(500);
          return next(e);
        }
        if (refused(handed)) {
          // Not acknowledged: the client re-sends the batch, and nothing was remembered as seen.
          res.setHeader('Retry-After', String(handed.retryAfterSeconds));
          return fail(
            req,
            res,
            429,
            'Too Many Requests',
            `the batch could not be handed to the bus (${handed.message}); retry after ${handed.retryAfterSeconds}s`,
          );
        }
      }
      dedup.remember(keys);
      stats.lines('received', push.entries.length);
      stats.lines('detected', fresh.length);
      stats.lines('duplicate', duplicates);
      stats.lines('truncated', push.truncated);
      stats.request(204);
      res.status(204).end();
    },
  });
}

function decodeJson(body: Buffer, tenant: string, limits: typeof DEFAULT_PUSH_LIMITS): DecodedPush {
  if (body.length === 0) throw new PushDecodeError('the body is empty; send {"streams":[…]}');
  const text = decodeUtf8(body);
  if (text === undefined) throw new PushDecodeError('the body is not valid UTF-8; JSON pushes are UTF-8 text');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PushDecodeError(`malformed JSON: ${(e as Error).message}`);
  }
  return decodePushJson(value, tenant, limits);
}
