/**
 * Overload protection for the receivers: a bound on requests in flight and a per-source token
 * bucket. Past either, senders are told to come back (503 for the audit webhook and Alertmanager,
 * which retry on 5xx; 429 for Loki and OTLP clients) with `Retry-After`, instead of kubevigil
 * buffering without limit.
 */
import type { RequestHandler } from 'express';
import { sendProblem } from '../../connectors/shared/http.js';

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
  let inFlight = 0;
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
        sendProblem(res, l.status, l.status === 429 ? 'Too Many Requests' : 'Service Unavailable', `more than ${l.ratePerSecond} requests/s to this receiver; retry after ${l.retryAfterSeconds}s or raise KUBEVIGIL_INGEST_RATE`);
        return;
      }
      tokens -= 1;
    }
    if (inFlight >= l.maxInFlight) {
      onReject('in_flight');
      res.setHeader('Retry-After', String(l.retryAfterSeconds));
      sendProblem(res, l.status, l.status === 429 ? 'Too Many Requests' : 'Service Unavailable', `${l.maxInFlight} requests are already being processed; retry after ${l.retryAfterSeconds}s`);
      return;
    }
    inFlight++;
    let done = false;
    const release = () => {
      if (!done) {
        done = true;
        inFlight--;
      }
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  };
}
