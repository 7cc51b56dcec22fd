/** A fixed-size ring of the most recent signals, for `GET /api/v1/signals` and the CLI. */
import type { Signal } from '../correlator/signal.js';

/** Keeps the last `capacity` signals, newest last; older ones are overwritten. */
export class RecentSignals {
  private readonly buf: (Signal | undefined)[];
  private next = 0;
  private count = 0;
  /** Signals overwritten to stay within the bound. */
  overwritten = 0;

  constructor(readonly capacity: number) {
    this.buf = new Array<Signal | undefined>(Math.max(0, capacity));
  }

  add(signals: readonly Signal[]): void {
    if (this.capacity === 0) return;
    for (const s of signals) {
      if (this.count === this.capacity) this.overwritten++;
      else this.count++;
      this.buf[this.next] = s;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** Newest first, at most `limit`. */
  list(limit = 100, filter?: (s: Signal) => boolean): Signal[] {
    const out: Signal[] = [];
    for (let i = 1; i <= this.count && out.length < limit; i++) {
      const s = this.buf[(this.next - i + this.capacity) % this.capacity]!;
      if (!filter || filter(s)) out.push(s);
    }
    return out;
  }

  get size(): number {
    return this.count;
  }
}
