/**
 * A fixed-size ring of the most recent signals, for `GET /api/v1/signals` and the CLI.
 *
 * Each signal is kept as its JSON text beside the three fields the API filters on, and parsed again
 * only when listed. A signal as objects is about 45 heap objects (its actor, target, evidence,
 * attributes and their strings); 10,000 of them were the largest object graph of the event loop's
 * heap, which the garbage collector marks whole on every full collection, and under ingest load
 * that is several times a second. As text it is one string.
 */
import type { Severity } from '../correlator/severity.js';
import type { Signal } from '../correlator/signal.js';

/** What a listing filters on, without parsing the signal. */
export interface SignalSummary {
  kind: string;
  /** The actor's entity key. */
  actor: string;
  severity: Severity;
}

interface Kept extends SignalSummary {
  json: string;
}

/** Keeps the last `capacity` signals, newest last; older ones are overwritten. */
export class RecentSignals {
  private readonly buf: Kept[] = [];
  private next = 0;
  /** Signals overwritten to stay within the bound. */
  overwritten = 0;

  constructor(readonly capacity: number) {}

  add(signals: readonly Signal[]): void {
    if (this.capacity <= 0) return;
    for (const s of signals) {
      const kept: Kept = { kind: s.kind, actor: s.actor.key, severity: s.severity, json: JSON.stringify(s) };
      // Grown with use up to the capacity, then overwritten oldest first.
      if (this.buf.length < this.capacity) this.buf.push(kept);
      else {
        this.buf[this.next] = kept;
        this.next = (this.next + 1) % this.capacity;
        this.overwritten++;
      }
    }
  }

  /** Newest first, at most `limit`, those `filter` admits. */
  list(limit = 100, filter?: (s: SignalSummary) => boolean): Signal[] {
    const out: Signal[] = [];
    const n = this.buf.length;
    // Until the ring is full, `next` stays 0 and the newest is last.
    for (let i = 1; i <= n && out.length < limit; i++) {
      const s = this.buf[(this.next - i + n) % n]!;
      if (!filter || filter(s)) out.push(JSON.parse(s.json) as Signal);
    }
    return out;
  }

  get size(): number {
    return this.buf.length;
  }
}
