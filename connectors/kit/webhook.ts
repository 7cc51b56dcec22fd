/**
 * The pipeline every webhook receiver shares, so each connector writes only what is its own:
 *
 *   media type check (415) → body read with a limit, inflated (413, 415 for an unknown
 *   Content-Encoding, 400 for a body that does not inflate) → the receiver's handler
 *
 * A receiver supplies its path, how it admits a request, how it answers in its sender's own error
 * format (RFC 9457 problems, google.rpc.Status for OTLP, …) and its handler. Handing events to the
 * sink goes through {@link handOff}, which tells backpressure (retry later) from a bug (500).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { KubevigilError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import type { SourceEvent } from '../../correlator/detection/source-event.js';

/** What a receiver tells the pipeline. */
export interface WebhookSpec {
  path: string;
  /** Largest accepted body after decompression, in bytes. */
  maxBodyBytes: number;
  /** Checks a request before its body is read (media type, headers): the 415 message, or undefined to go on. */
  admit(req: Request): string | undefined;
  /** What the sender should change when a body is too large, for the 413 answer. */
  tooLargeAdvice: string;
  /** The Content-Encodings this receiver reads, for the 415 answer, e.g. "gzip, deflate, br, zstd or none". */
  encodings: string;
  /** Answers an error in the sender's own format (and counts it). */
  fail(req: Request, res: Response, status: number, title: string, detail: string): void;
  /** Handles a request whose body was read and inflated. */
  handle(req: Request, res: Response, body: Buffer, next: NextFunction): Promise<void>;
}

const TITLES: Record<number, string> = { 400: 'Bad Request', 413: 'Content Too Large', 415: 'Unsupported Media Type' };

/** The express router of one webhook receiver; mount it at the app root. */
export function webhookRouter(spec: WebhookSpec): Router {
  const router = express.Router();
  router.post(
    spec.path,
    (req, res, next) => {
      const refused = spec.admit(req);
      if (refused !== undefined) return spec.fail(req, res, 415, TITLES[415]!, refused);
      next();
    },
    express.raw({ type: () => true, limit: spec.maxBodyBytes, inflate: true }),
    (req: Request, res: Response, next: NextFunction) => {
      const body = Buffer.isBuffer(req.body) ? (req.body as Buffer) : Buffer.alloc(0);
      spec.handle(req, res, body, next).catch(next);
    },
  );
  // Body-parser failures (too large, bad gzip, unknown encoding) arrive here with their HTTP status.
  router.use(spec.path, (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large')
      return spec.fail(req, res, 413, TITLES[413]!, `the body exceeds ${spec.maxBodyBytes} bytes after decompression; ${spec.tooLargeAdvice}`);
    if (e?.type === 'encoding.unsupported')
      return spec.fail(req, res, 415, TITLES[415]!, `${e.message ?? 'unsupported Content-Encoding'}; use ${spec.encodings}`);
    if (e?.status && e.status >= 400 && e.status < 500)
      return spec.fail(
        req,
        res,
        400,
        TITLES[400]!,
        `the body could not be read: ${e.message ?? 'invalid body'} (is Content-Encoding: gzip set on a body that is not gzip?)`,
      );
    next(err);
  });
  return router;
}

/** Why the sink did not take a batch, when the sender should retry: how long to wait, and whether it was backpressure. */
export interface Refusal {
  retryAfterSeconds: number;
  backpressure: boolean;
  message: string;
}

/**
 * Hands events to the sink: their signal count, or a {@link Refusal} when the sink refused them for
 * now (a retryable error: the sender retries, and the receiver remembers nothing as seen). Any other
 * error is a bug and is thrown, to become a logged 500.
 */
export async function handOff(sink: IngestSink, events: SourceEvent[]): Promise<{ signals: number } | Refusal> {
  try {
    // A sink that throws instead of rejecting is handled like one that rejects.
    return { signals: (await (async () => sink.ingest(events))()).signals };
  } catch (e) {
    if (!(e instanceof KubevigilError && e.retryable)) throw e;
    return { retryAfterSeconds: e.retryAfterSeconds ?? 1, backpressure: e.code === 'BACKPRESSURE', message: e.message };
  }
}

/** True when {@link handOff} was refused. */
export const refused = (r: { signals: number } | Refusal): r is Refusal => 'retryAfterSeconds' in r;
