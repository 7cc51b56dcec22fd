/**
 * `POST /v1/traces`: an OTLP/HTTP trace receiver, so SDKs and OpenTelemetry Collectors can send
 * kubevigil a copy of their spans (JSON or protobuf, optionally gzip).
 *
 * It answers as the OTLP/HTTP specification says a server must, because exporters decide what to do
 * from the status alone: 200 with an `ExportTraceServiceResponse` in the request's own encoding
 * (with `partialSuccess` when some spans were invalid — the rest are kept, and a 4xx would make the
 * exporter drop them all); 400 for a body that cannot be decoded (exporters do not retry it); 415 for
 * other content types; 413 for a body too large after decompression; 429 or 503 with Retry-After
 * when the bus refuses the batch (exporters retry those). Every error body is a `google.rpc.Status`
 * in the request's encoding whose message names the problem. The 200 is sent only after the sink
 * took the batch, so a refused batch leaves no trace and the exporter's retry is processed in full.
 */
import type { Request, Response, Router } from 'express';
import { KubevigilError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import { decodeUtf8, mediaType } from '../../platform/http.js';
import { handOff, refused, webhookRouter, type Refusal } from '../kit/webhook.js';
import { normalizeSpan } from './normalize.js';
import { decodeOtlpJson, decodeOtlpProtobuf, DEFAULT_LIMITS, OtlpPayloadError, type ParseLimits, type SpanBatch } from './parse.js';
import { ExportTraceServiceResponse, RpcStatus } from './schema.js';

/** Counters the receiver reports through; the service wires them to Prometheus. */
export interface OtlpReceiverStats {
  spans(outcome: 'accepted' | 'rejected', n: number): void;
  request(status: number): void;
}

/** Options of {@link otlpReceiver}. */
export interface OtlpReceiverOptions {
  sink: IngestSink;
  /** Largest accepted body after decompression, in bytes (default 12 MiB). */
  maxBodyBytes?: number;
  stats?: OtlpReceiverStats;
  now?: () => number;
  /** Bounds on what one span keeps (attributes, string lengths, events). */
  limits?: ParseLimits;
  /** How many invalid spans to describe in `partialSuccess.errorMessage` (all are counted). */
  maxReportedErrors?: number;
}

const JSON_TYPE = 'application/json';
const PROTOBUF_TYPES = new Set(['application/x-protobuf', 'application/protobuf']);

// google.rpc.Code values for the Status bodies: the HTTP status is what exporters act on.
const RPC_CODE: Record<number, number> = { 400: 3, 413: 3, 415: 3, 429: 8, 500: 13, 503: 14 };

type Encoding = 'json' | 'protobuf';

function encodingOf(req: Request): Encoding | undefined {
  const t = mediaType(req);
  return t === JSON_TYPE ? 'json' : PROTOBUF_TYPES.has(t) ? 'protobuf' : undefined;
}

/** Sends a message in the encoding of the request, as the OTLP/HTTP specification requires. */
function send(res: Response, status: number, enc: Encoding, json: unknown, proto: Uint8Array): void {
  res.status(status);
  if (enc === 'protobuf') res.type('application/x-protobuf').send(Buffer.from(proto.buffer, proto.byteOffset, proto.length));
  else res.type(JSON_TYPE).send(JSON.stringify(json));
}

function sendStatus(res: Response, status: number, enc: Encoding, message: string): void {
  const code = RPC_CODE[status] ?? 2;
  send(res, status, enc, { code, message }, RpcStatus.encode({ code, message }).finish());
}

/** The partial-success message: the first problems, and how many more there were. */
function describeInvalid(batch: SpanBatch, max: number): string {
  const shown = batch.invalid.slice(0, max).map((i) => i.reason);
  const more = batch.invalid.length - shown.length;
  return `${batch.invalid.length} of ${batch.invalid.length + batch.spans.length} spans rejected: ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

/** The express router for OTLP/HTTP traces; mount it at the app root. */
export function otlpReceiver(opts: OtlpReceiverOptions): Router {
  const maxBody = opts.maxBodyBytes ?? 12 * 1024 * 1024;
  const now = opts.now ?? Date.now;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const maxErrors = opts.maxReportedErrors ?? 5;
  const noop = () => {};
  const stats: OtlpReceiverStats = opts.stats ?? { spans: noop, request: noop };

  // Errors are google.rpc.Status in the request's encoding (JSON when it has none we read).
  const fail = (req: Request, res: Response, status: number, _title: string, message: string): void => {
    stats.request(status);
    sendStatus(res, status, encodingOf(req) ?? 'json', message);
  };

  return webhookRouter({
    path: '/v1/traces',
    maxBodyBytes: maxBody,
    tooLargeAdvice: "lower the exporter's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, the Collector's send_batch_max_size) or raise KUBEVIGIL_MAX_BODY_BYTES",
    encodings: 'gzip, deflate, br, zstd or none',
    fail,
    admit: (req) =>
      encodingOf(req)
        ? undefined
        : `Content-Type ${JSON.stringify(mediaType(req) || '(none)')} is not accepted; OTLP/HTTP sends application/x-protobuf or application/json`,
    async handle(req, res, body) {
      const enc = encodingOf(req)!;
      let batch: SpanBatch;
      try {
        if (body.length === 0) batch = { spans: [], invalid: [] };
        else if (enc === 'protobuf') batch = decodeOtlpProtobuf(body, limits);
        else {
          const text = decodeUtf8(body);
          if (text === undefined) throw new OtlpPayloadError('the body is not valid UTF-8; OTLP/JSON is UTF-8 text');
          batch = decodeOtlpJson(text, limits);
        }
      } catch (e) {
        if (!(e instanceof OtlpPayloadError)) throw e;
        return fail(req, res, 400, '', e.message);
      }
      const observed = now();
      const events = batch.spans.map((s) => normalizeSpan(s, observed));
      if (events.length) {
        // Exporters retry 429 and 503 (with Retry-After) and give up on 500: only an error of
        // kubevigil's own that says it will not pass is a 500; anything unknown may, so 503.
        const handed = await handOff(opts.sink, events).catch((e: unknown): Refusal | KubevigilError =>
          e instanceof KubevigilError ? e : { retryAfterSeconds: 1, backpressure: false, message: (e as Error).message },
        );
        if (handed instanceof KubevigilError) return fail(req, res, 500, '', `the spans could not be handed to the bus (${handed.message})`);
        if (refused(handed)) {
          res.setHeader('Retry-After', String(handed.retryAfterSeconds));
          return fail(
            req,
            res,
            handed.backpressure ? 429 : 503,
            '',
            `the spans could not be handed to the bus (${handed.message}); retry after ${handed.retryAfterSeconds}s`,
          );
        }
      }
      stats.spans('accepted', events.length);
      stats.spans('rejected', batch.invalid.length);
      stats.request(200);
      if (batch.invalid.length === 0) return send(res, 200, enc, {}, ExportTraceServiceResponse.encode({}).finish());
      const partial = { rejectedSpans: batch.invalid.length, errorMessage: describeInvalid(batch, maxErrors) };
      send(
        res,
        200,
        enc,
        { partialSuccess: { ...partial, rejectedSpans: String(partial.rejectedSpans) } },
        ExportTraceServiceResponse.encode({ partialSuccess: partial }).finish(),
      );
    },
  });
}
