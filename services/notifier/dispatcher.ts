/**
 * Drains the outbox: each lane (a Slack channel, a webhook URL) is worked on its own, one batch at a
 * time, paced by its sink's interval, so a lane that is rate-limited or down waits alone while the
 * others go on. Time comes from an injectable scheduler: tests drive it with a fake clock and never
 * sleep, even through a `Retry-After`.
 */
import type { Clock } from '../../correlator/ports.js';
import type { Logger } from '../logging.js';
import type { IncidentStore, OutboxItem } from '../store/store.js';
import type { DeliveryConfig } from './config.js';
import { DeliveryError } from './errors.js';
import type { NotifierMetrics, SinkKind } from './metrics.js';
import type { Claimed, DeliveryResult, Notification, Outcome, Sink } from './sink.js';

/** A clock that can also call back later; {@link systemScheduler} in production, a manual one in tests. */
export interface Scheduler extends Clock {
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** Real time and `setTimeout` (unref'd: a pending retry does not keep the process alive). */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return () => clearTimeout(t);
  },
};

/** A scheduler whose time moves only when told to; its timers never fire (drive it with {@link Dispatcher.runUntilIdle}). For tests and replays. */
export class ManualScheduler implements Scheduler {
  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  /** Moves time forward to `t` (never back). */
  advanceTo(t: number): void {
    this.time = Math.max(this.time, t);
  }

  setTimer(): () => void {
    return () => undefined;
  }
}

/** Items claimed per lane and turn: enough to see a burst and make a digest of it. */
const CLAIM_BATCH = 100;
const PRUNE_EVERY_MS = 3_600_000;

/** Works the outbox lanes through the sinks of a registry. */
export class Dispatcher {
  private readonly laneNext = new Map<string, number>();
  private readonly running = new Map<string, Promise<void>>();
  private cancelTimer: (() => void) | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | undefined;
  private stopped = false;
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly sinks: ReadonlyMap<string, Sink>,
    private readonly store: Pick<IncidentStore, 'outbox' | 'getState' | 'setState'>,
    private readonly scheduler: Scheduler,
    private readonly config: DeliveryConfig,
    private readonly metrics: NotifierMetrics,
    private readonly logger: Logger,
  ) {}

  /** Starts working: delivers what is due now (work a previous process left included). */
  start(): void {
    this.wake(0);
  }

  /** Asks for a turn as soon as possible (after an enqueue). */
  kick(): void {
    this.wake(0);
  }

  /** Starts every lane that is due and free, then arranges the next turn. */
  pump(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.pumping ??= this.doPump().finally(() => (this.pumping = undefined));
    return this.pumping;
  }

  /** Resolves once no lane is being worked on and no turn is in progress. */
  async idle(): Promise<void> {
    while (this.pumping || this.running.size > 0) {
      await Promise.allSettled([this.pumping, ...this.running.values()]);
    }
  }

  /**
   * When work can next be done: now if a free lane has due items, else the earliest end of a lane's
   * pause or of an item's wait; undefined when nothing is pending.
   */
  async nextWake(): Promise<number | undefined> {
    const now = this.scheduler.now();
    const candidates: number[] = [];
    for (const lane of await this.store.outbox.lanesDue(now)) {
      if (this.running.has(lane)) continue;
      candidates.push(Math.max(now, this.laneNext.get(lane) ?? now));
    }
    const due = await this.store.outbox.nextDue();
    if (due !== undefined && due > now) candidates.push(due);
    return candidates.length ? Math.min(...candidates) : undefined;
  }

  /**
   * With a {@link ManualScheduler}: runs turns, jumping time to each next wake-up, until nothing is
   * pending or `untilMs` is reached. Resolves with the time it stopped at.
   */
  async runUntilIdle(scheduler: ManualScheduler, untilMs = Number.POSITIVE_INFINITY): Promise<number> {
    // Bounded, so that a bug cannot hang a test: a lane that never drains ends the run.
    for (let turn = 0; turn < 100_000; turn++) {
      await this.pump();
      await this.idle();
      const next = await this.nextWake();
      if (next === undefined || next > untilMs) return scheduler.now();
      scheduler.advanceTo(next);
    }
    return scheduler.now();
  }

  /** Stops: no new turns; waits for requests in flight. Pending items stay in the outbox. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.idle();
  }

  private wake(delayMs: number): void {
    if (this.stopped) return;
    const at = this.scheduler.now() + delayMs;
    if (this.cancelTimer && this.timerAt <= at) return;
    this.cancelTimer?.();
    this.timerAt = at;
    this.cancelTimer = this.scheduler.setTimer(() => {
      this.cancelTimer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump().catch((err: unknown) => {
        this.logger.error({ err }, 'notifier: outbox turn failed; retrying');
        this.wake(this.config.pollMs);
      });
    }, delayMs);
  }

  private async doPump(): Promise<void> {
    const now = this.scheduler.now();
    for (const lane of await this.store.outbox.lanesDue(now)) {
      if (this.running.has(lane) || (this.laneNext.get(lane) ?? 0) > now) continue;
      const run = this.runLane(lane)
        .catch((err: unknown) => this.logger.error({ err, lane }, 'notifier: lane turn failed'))
        .finally(() => {
          this.running.delete(lane);
          this.wake(0);
        });
      this.running.set(lane, run);
    }
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      await this.store.outbox.prune(now - this.config.retentionMs);
    }
    const next = await this.nextWake();
    this.wake(next === undefined ? this.config.pollMs : Math.min(this.config.pollMs, Math.max(0, next - this.scheduler.now())));
  }

  private async runLane(lane: string): Promise<void> {
    const start = this.scheduler.now();
    const items = await this.store.outbox.claim(lane, start, CLAIM_BATCH, this.config.leaseMs);
    if (items.length === 0) return;
    const ready: Claimed[] = [];
    const outcomes = new Map<number, Outcome>();
    let sink: Sink | undefined;
    for (const item of items) {
      const s = this.sinks.get(item.sink);
      const notification = s && parse(item.payload);
      if (!s || !notification) {
        const why = !s ? `sink ${item.sink} is no longer configured` : 'payload is not a notification';
        outcomes.set(item.seq, {
          status: 'failed',
          error: new DeliveryError('BAD_PAYLOAD', `outbox item ${item.seq}: ${why}`, false, s ? 'bad_payload' : 'sink_removed'),
        });
        continue;
      }
      // A lane belongs to one sink; an item of another (a configuration change) waits for its own turn.
      if (sink && s !== sink) continue;
      sink = s;
      ready.push({ ...item, notification });
    }
    let result: DeliveryResult = { outcomes: new Map(), requests: 0 };
    if (sink && ready.length) {
      try {
        result = await sink.deliver(ready, { now: () => this.scheduler.now(), state: this.store, metrics: this.metrics, logger: this.logger });
      } catch (err) {
        this.logger.error({ err, lane }, 'notifier: sink failed unexpectedly');
        const error = new DeliveryError('INTERNAL', `sink ${sink.id} failed: ${err instanceof Error ? err.message : String(err)}`, true, 'internal');
        for (const i of ready) result.outcomes.set(i.seq, { status: 'retry', error });
      }
    }
    for (const [seq, o] of result.outcomes) outcomes.set(seq, o);
    await this.settle(lane, sink, items, outcomes, result.requests);
  }

  /** Records each item's outcome and the lane's next turn; items without an outcome wait for it. */
  private async settle(lane: string, sink: Sink | undefined, items: OutboxItem[], outcomes: Map<number, Outcome>, requests: number): Promise<void> {
    const now = this.scheduler.now();
    const kind = sink?.kind ?? kindOf(items[0]?.sink ?? '');
    let next = now + (sink?.minIntervalMs ?? 0) * Math.max(1, requests);
    for (const item of items) {
      const o = outcomes.get(item.seq);
      if (!o) continue;
      if (o.status === 'done') {
        await this.store.outbox.complete(item.seq, now, o.note);
        if (o.note) this.metrics.coalesced.inc({ sink: kind, reason: o.note });
      } else if (o.status === 'retry' && item.attempts < this.config.maxAttempts) {
        const wait = o.error.retryAfterSeconds !== undefined ? o.error.retryAfterSeconds * 1000 : this.backoff(item.attempts);
        // The destination is unwell (rate-limited, down): the whole lane waits, other lanes do not.
        next = Math.max(next, now + wait);
        await this.store.outbox.retry(item.seq, now + wait, o.error.message);
        this.metrics.retries.inc({ sink: kind, reason: o.error.reason });
        this.logger.warn(
          {
            sink: item.sink,
            incident: item.incidentId,
            version: item.version,
            attempt: item.attempts,
            code: o.error.code,
            reason: o.error.reason,
            retryInMs: wait,
          },
          'notifier: delivery failed; will retry',
        );
      } else {
        const reason = o.status === 'retry' ? 'max_attempts' : o.error.reason;
        await this.store.outbox.fail(item.seq, now, o.error.message);
        this.metrics.failed.inc({ sink: kind, reason });
        this.logger.error(
          { sink: item.sink, incident: item.incidentId, version: item.version, attempts: item.attempts, code: o.error.code, reason, err: o.error },
          'notifier: delivery failed for good',
        );
      }
    }
    for (const item of items) if (!outcomes.has(item.seq)) await this.store.outbox.release(item.seq, Math.max(item.dueAt, next));
    this.laneNext.set(lane, next);
  }

  private backoff(attempts: number): number {
    return Math.min(this.config.backoffMaxMs, this.config.backoffBaseMs * 2 ** Math.max(0, attempts - 1));
  }
}

/** The metric label of a sink id whose sink is gone (`slack:#x` → `slack`). */
function kindOf(sinkId: string): SinkKind {
  const prefix = sinkId.slice(0, Math.max(0, sinkId.indexOf(':'))) || sinkId;
  const kinds: Record<string, SinkKind> = { slack: 'slack', 'slack-webhook': 'slack_webhook', webhook: 'webhook', alertmanager: 'alertmanager' };
  return kinds[prefix] ?? 'webhook';
}

function parse(payload: string): Notification | undefined {
  try {
    const n = JSON.parse(payload) as Partial<Notification>;
    return n && typeof n === 'object' && n.incident && n.change ? (n as Notification) : undefined;
  } catch {
    return undefined;
  }
}
