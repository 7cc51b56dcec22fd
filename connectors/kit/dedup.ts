/**
 * At-least-once senders (kube-apiserver, Alertmanager, Promtail, exporters) re-send batches; each
 * receiver drops what it has already handed on, by a key of its source's own (audit: auditID and
 * stage; alerts: fingerprint, startsAt and status; log lines: stream, time and line). Keys are
 * remembered only after the batch was acknowledged, so a refused batch is processed in full when
 * it comes back. Bounded: the oldest keys are forgotten first.
 */
import { RecentKeys } from '../../correlator/recent-keys.js';

/** A batch split into what is new and what was seen before (or earlier in the same batch). */
export interface Split<T> {
  fresh: T[];
  /** The keys of `fresh`, to {@link Dedup.remember} once the batch is acknowledged. */
  keys: string[];
  duplicates: number;
}

/** The keys a receiver has handed on, remembered up to a bound. */
export class Dedup {
  private readonly seen: RecentKeys;

  constructor(capacity: number) {
    this.seen = new RecentKeys(capacity);
  }

  /** Splits `items` into the first of each key not seen before, and a count of the rest. */
  split<T>(items: Iterable<T>, key: (item: T) => string): Split<T> {
    const fresh: T[] = [];
    const keys: string[] = [];
    const inBatch = new Set<string>();
    let duplicates = 0;
    for (const item of items) {
      const k = key(item);
      if (this.seen.has(k) || inBatch.has(k)) {
        duplicates++;
        continue;
      }
      inBatch.add(k);
      keys.push(k);
      fresh.push(item);
    }
    return { fresh, keys, duplicates };
  }

  /** True when `key` was handed on and is still remembered. */
  has(key: string): boolean {
    return this.seen.has(key);
  }

  /** Remembers keys whose batch was acknowledged. */
  remember(keys: Iterable<string>): void {
    for (const k of keys) this.seen.add(k);
  }
}
