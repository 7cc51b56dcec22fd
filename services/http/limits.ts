/**
 * Overload protection for the receivers: a bound on requests in flight and a per-source token
 * bucket. Past either, senders are told to come back (503 for the audit webhook and Alertmanager,
 * which retry on 5xx; 429 for Loki and OTLP clients) with `Retry-After`, instead of kubevigil
 * buffering without limit.
 */
import type { RequestHandler } from 'express';
import { sendProblem } from '../../platform/http.js';

/** Limits of one receiver. */
export interface IngestLimits {
  /** Requests processed at once (default 32). */
  maxInFlight: number;
  /** Sustained requests per second (0: unlimited). */
  ratePerSecond: number;
  /** Requests allowed in a burst above the rate. */
  burst: number;
  /** The status that tells this sender to retry: 503 or 429. */
  status: 429 | 503;
  retryAfterSeconds: number;
}

/** Counters the limiter reports through. */
export type LimitRejected = (reason: 'in_flight' | 'rate') => void;

/** Middleware enforcing {@link IngestLimits}. `now` is injectable for tests. */
export function ingestLimits(l: IngestLimits, onReject: LimitRejected = () => {}, now: () => number = Date.now): RequestHandler {
  // Two counts: requests still uploading their body, and requests whose body has arrived (being
  // processed). Only the second is the in-flight bound, so slow uploads cannot lock out senders;
  // uploads have their own, larger bound (and the server's request timeout ends them).
  let inFlight = 0;
  let uploading = 0;
  const maxUploads = l.maxInFlight * 4;
  let tokens = l.burst;
  let last = now();
  return (req, res, next) => {
    if (l.ratePerSecond > 0) {
      const t = now();
      tokens = Math.min(l.burst, tokens + ((t - last) / 1000) * l.ratePerSecond);
      last = t;
      if (tokens < 1) {
        onReject('rate');
        res.setHeader('Retry-After', String(l.retryAfterSeconds));
        sendProblem(
          res,
          l.status,
          l.status === 429 ? 'Too Many Requests' : 'Service Unavailable',
          `more than ${l.ratePerSecond} requests/s to this receiver; retry after ${l.retryAfterSeconds}s or raise KUBEVIGIL_INGEST_RATE`,
        );
        return;
      }
      tokens -= 1;
    }
    if (inFlight >= l.maxInFlight || uploading >= maxUploads) {
      onReject('in_flight');
      res.setHeader('Retry-After', String(l.retryAfterSeconds));
      sendProblem(
        res,
        l.status,
        l.status === 429 ? 'Too Many Requests' : 'Service Unavailable',
        `${inFlight >= l.maxInFlight ? `${l.maxInFlight} requests are already being processed` : `${maxUploads} requests are already uploading`}; retry after ${l.retryAfterSeconds}s`,
      );
      return;
    }
    let state: 'uploading' | 'processing' | 'done' = 'uploading';
    uploading++;
    const uploaded = () => {
      if (state !== 'uploading') return;
      uploading--;
      inFlight++;
      state = 'processing';
    };
    const bodiless = req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined);
    if (bodiless || req.readableEnded) uploaded();
    else req.once('end', uploaded);
    const release = () => {
      if (state === 'uploading') uploading--;
      else if (state === 'processing') inFlight--;
      state = 'done';
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  };
}
