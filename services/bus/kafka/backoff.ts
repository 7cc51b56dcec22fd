/** Backoff between attempts of a failing batch, flush or consumer start. */
import { setTimeout as delay } from 'node:timers/promises';

/** Delays doubling from `initial` up to `max`, with ±20 % jitter; sleeps end early when aborted. */
export class Backoff {
  constructor(readonly bounds: { initial: number; max: number }) {}

  /** The delay before attempt `attempt + 1`. */
  delayFor(attempt: number): number {
    const base = Math.min(this.bounds.max, this.bounds.initial * 2 ** Math.min(attempt - 1, 20));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** Waits {@link delayFor}(`attempt`), or until `signal` aborts; never rejects. */
  sleep(attempt: number, signal: AbortSignal): Promise<void> {
    return delay(this.delayFor(attempt), undefined, { signal }).catch(() => undefined);
  }
}
