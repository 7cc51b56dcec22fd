/**
 * Overload protection for the receivers: a bound on requests in flight, a per-source token bucket
 * and admission by queue delay. Past any of them, senders are told to come back (503 for the audit
 * webhook and Alertmanager, which retry on 5xx; 429 for Loki and OTLP clients) with `Retry-After`,
 * instead of kubevigil buffering without limit.
 */
import { performance } from 'node:perf_hooks';
import type { RequestHandler, Response } from 'express';
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
  /** The longest a request may wait for the CPU, in ms ({@link QueueDelayGate}; 0 or absent: not checked). */
  maxQueueDelayMs?: number;
}

/** Counters the limiter reports through. */
export type LimitRejected = (reason: 'in_flight' | 'rate' | 'queue_delay') => void;

/** What the gate reads of the event loop, in ms. */
export interface LoopDelay {
  /** How late the loop is now: how long the turn in progress has kept ready work waiting. */
  current(): number;
  /** How late it was at its last turn. */
  previous(): number;
  /** How long it has been busy in all (a counter). */
  busy(): number;
}

/** Why the gate refuses a request: the delay stood above the target, or the work admitted ahead exceeds it. */
export type Refusal = 'standing' | 'backlog';

/** A queue that stands again this soon after the last was refused at once. */
const RESUME_MS = 1000;
/** Processing time is averaged over at least this many requests, and windows longer than this many ms are not used (light load). */
const COST_REQUESTS = 10;
const COST_WINDOW_MS = 5000;
/** Weight of the latest window in the moving average of processing time. */
const COST_WEIGHT = 0.3;

/**
 * Admission by queue delay, after CoDel, with two tests:
 *
 * - the measured delay: a queue is *standing* (overload, not a burst) when the delay stays above
 *   the target for a whole interval; then new requests are refused until it is below the target
 *   again, and a queue that stands again within a second is refused at once (CoDel likewise
 *   resumes dropping where it left off);
 * - the work admitted ahead: requests are admitted when their headers arrive but processed once
 *   their body has, so a burst of admitted uploads can complete together and hold the CPU for
 *   seconds. Uploads admitted and not started, times how long the loop is busy per request (as
 *   Little's law has it), is the wait of a new request; past the target it is refused. Uploads
 *   older than the target count only while the loop is busy (then they wait for kubevigil);
 *   otherwise they wait for a slow sender, and a few slow senders must not shut everyone out.
 */
export class QueueDelayGate {
  private aboveSince: number | undefined;
  private refusing = false;
  private stoppedAt = -Infinity;
  private readonly pending = new Set<{ at: number }>();
  private started = 0;
  private window = { at: -Infinity, busy: 0, started: 0 };
  private costMs = 0;

  constructor(
    readonly targetMs: number,
    private readonly loop: LoopDelay,
    /** How long the delay must stay above the target before requests are refused (CoDel's interval). */
    readonly intervalMs: number = 100,
  ) {}

  /** Whether a request arriving `now` (a clock in ms) must be refused, and why. */
  refusal(now: number): Refusal | undefined {
    if (this.standing(now)) return 'standing';
    return this.backlog(now) >= this.targetMs ? 'backlog' : undefined;
  }

  /** True while the measured delay stands above the target. */
  standing(now: number): boolean {
    if (this.loop.current() < this.targetMs) {
      if (this.refusing) this.stoppedAt = now;
      this.refusing = false;
      this.aboveSince = undefined;
      return false;
    }
    this.aboveSince ??= now;
    if (now - this.aboveSince >= this.intervalMs || now - this.stoppedAt < RESUME_MS) this.refusing = true;
    return this.refusing;
  }

  /** Expected ms of processing of the uploads admitted and not started. */
  backlog(now: number): number {
    this.measure(now);
    if (this.costMs === 0) return 0;
    const busy = Math.max(this.loop.current(), this.loop.previous()) >= this.targetMs / 2;
    let n = 0;
    for (const p of this.pending) if (busy || now - p.at < this.targetMs) n++;
    return n * this.costMs;
  }

  /** Counts an upload admitted `now`; call the result once its processing starts (or with false, once it ends before). */
  admitted(now: number): (processed?: boolean) => void {
    const p = { at: now };
    this.pending.add(p);
    return (processed = true) => {
      if (this.pending.delete(p) && processed) this.started++;
    };
  }

  /** How long the loop is busy per request started: all it did over a window, over the requests. */
  private measure(now: number): void {
    const n = this.started - this.window.started;
    if (n < COST_REQUESTS && now - this.window.at <= COST_WINDOW_MS) return;
    const busy = this.loop.busy();
    if (n >= COST_REQUESTS && now - this.window.at <= COST_WINDOW_MS) {
      const c = (busy - this.window.busy) / n;
      this.costMs = this.costMs === 0 ? c : this.costMs + (c - this.costMs) * COST_WEIGHT;
    }
    this.window = { at: now, busy, started: this.started };
  }
}

/** How often the loop-delay probe runs, and after how long without requests it stops. */
export const PROBE_MS = 10;
const PROBE_IDLE_MS = 10_000;

/**
 * The event loop's delay, from a timer due every {@link PROBE_MS}: on a single-threaded process
 * every request's work (and every connection waiting to be accepted, one per loop turn) waits for
 * the loop, so how late the loop is to run the timer is how long ready work has been queued. The
 * current delay is that of the run due now, which grows while a turn lasts (many requests processed
 * at once), where a histogram only tells of turns past; a turn that is over no longer counts in it,
 * since a sender's next request after one long batch has not waited behind it.
 */
export class LoopDelayProbe implements LoopDelay {
  private last = 0;
  private lateness = 0;
  private usedAt = 0;
  private running = false;

  constructor(
    private readonly clock: () => number = () => performance.now(),
    private readonly after: (run: () => void, ms: number) => void = (run, ms) => setTimeout(run, ms).unref(),
    private readonly busyMs: () => number = () => performance.eventLoopUtilization().active,
  ) {}

  current(): number {
    const t = this.clock();
    this.usedAt = t;
    if (!this.running) {
      this.running = true;
      this.last = t;
      this.lateness = 0;
      this.after(this.tick, PROBE_MS);
    }
    return Math.max(0, t - this.last - PROBE_MS);
  }

  previous(): number {
    return this.lateness;
  }

  busy(): number {
    return this.busyMs();
  }

  private readonly tick = () => {
    const t = this.clock();
    this.lateness = Math.max(0, t - this.last - PROBE_MS);
    this.last = t;
    // An idle process is not woken every few ms: the probe stops until the next request.
    if (t - this.usedAt > PROBE_IDLE_MS) this.running = false;
    else this.after(this.tick, PROBE_MS);
  };
}

// One event loop per process: every receiver (and every app in a test process) shares the probe,
// and the receivers of one target share a gate.
let probe: LoopDelayProbe | undefined;
const gates = new Map<number, QueueDelayGate>();
function sharedGate(targetMs: number): QueueDelayGate {
  probe ??= new LoopDelayProbe();
  let g = gates.get(targetMs);
  if (!g) gates.set(targetMs, (g = new QueueDelayGate(targetMs, probe)));
  return g;
}

/**
 * Middleware enforcing {@link IngestLimits}. `now` is injectable for tests, and so is the gate
 * (by default the process's event loop against `maxQueueDelayMs`).
 */
export function ingestLimits(
  l: IngestLimits,
  onReject: LimitRejected = () => {},
  now: () => number = Date.now,
  gate: QueueDelayGate | undefined = l.maxQueueDelayMs ? sharedGate(l.maxQueueDelayMs) : undefined,
): RequestHandler {
  // Two counts: requests still uploading their body, and requests whose body has arrived (being
  // processed). Only the second is the in-flight bound, so slow uploads cannot lock out senders;
  // uploads have their own, larger bound (and the server's request timeout ends them).
  let inFlight = 0;
  let uploading = 0;
  const maxUploads = l.maxInFlight * 4;
  let tokens = l.burst;
  let last = now();
  const title = l.status === 429 ? 'Too Many Requests' : 'Service Unavailable';
  const refuse = (res: Response, reason: Parameters<LimitRejected>[0], detail: string) => {
    onReject(reason);
    res.setHeader('Retry-After', String(l.retryAfterSeconds));
    sendProblem(res, l.status, title, detail);
  };
  return (req, res, next) => {
    if (l.ratePerSecond > 0) {
      const t = now();
      tokens = Math.min(l.burst, tokens + ((t - last) / 1000) * l.ratePerSecond);
      last = t;
      if (tokens < 1) {
        refuse(res, 'rate', `more than ${l.ratePerSecond} requests/s to this receiver; retry after ${l.retryAfterSeconds}s or raise KUBEVIGIL_INGEST_RATE`);
        return;
      }
      tokens -= 1;
    }
    const why = gate?.refusal(now());
    if (gate && why) {
      refuse(
        res,
        'queue_delay',
        `kubevigil is overloaded: ${
          why === 'standing'
            ? `ready work has waited over ${gate.targetMs} ms for the CPU for more than ${gate.intervalMs} ms`
            : `the requests already admitted would keep this one waiting over ${gate.targetMs} ms for the CPU`
        } (KUBEVIGIL_INGEST_MAX_QUEUE_DELAY); retry after ${l.retryAfterSeconds}s`,
      );
      return;
    }
    if (inFlight >= l.maxInFlight || uploading >= maxUploads) {
      refuse(
        res,
        'in_flight',
        `${inFlight >= l.maxInFlight ? `${l.maxInFlight} requests are already being processed` : `${maxUploads} requests are already uploading`}; retry after ${l.retryAfterSeconds}s`,
      );
      return;
    }
    let state: 'uploading' | 'processing' | 'done' = 'uploading';
    uploading++;
    const started = gate?.admitted(now());
    const uploaded = () => {
      if (state !== 'uploading') return;
      uploading--;
      inFlight++;
      state = 'processing';
      started?.();
    };
    const bodiless = req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined);
    if (bodiless || req.readableEnded) uploaded();
    else req.once('end', uploaded);
    const release = () => {
      if (state === 'uploading') {
        uploading--;
        started?.(false);
      } else if (state === 'processing') inFlight--;
      state = 'done';
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  };
}
