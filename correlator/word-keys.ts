/**
 * A bounded set of fixed-size binary keys (`width` 32-bit words each), oldest forgotten first:
 * the keys in a ring of typed arrays in insertion order, found through an open-addressing table of
 * ring positions. No object per key: a key costs its words and two table slots, and the garbage
 * collector has nothing in it to mark. Signal ids (`RecentIds`, 4 words) and audit dedup keys
 * (connectors/k8s-audit/audit-key.ts, 6 words) are kept this way.
 *
 * Keys may come from a sender (an audit ID is whatever the client's Audit-ID header said), so the
 * table hashes every word with a seed drawn per set; a probe that still runs long (keys made to
 * collide) draws a new seed and rebuilds the table.
 */
import { randomInt } from 'node:crypto';

/** Ring positions allocated first; the ring doubles up to the capacity as keys come. */
const FIRST = 1024;
/** A probe longer than this draws a new seed (a full table probes a few slots on average). */
const LONG_PROBE = 64;

export class WordKeys {
  /** Where the caller writes the key that {@link has} and {@link add} then look at. */
  readonly key: Uint32Array;
  /** The ring: `width` words per key, in insertion order (wrapping once full). */
  private words: Uint32Array;
  /** Open addressing, linear probing: ring position + 1, 0 for empty. */
  private table: Int32Array;
  private mask: number;
  private seed = randomInt(2 ** 32) | 1;
  /** Ring positions in use. */
  private count = 0;
  /** Once full, the ring position of the oldest key (the next to be replaced). */
  private next = 0;
  /** Keys forgotten to stay within the bound. */
  evicted = 0;
  /** Times the table was rebuilt under a new seed because a probe ran long. */
  reseeds = 0;

  constructor(
    readonly width: number,
    readonly capacity: number,
  ) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1 (got ${capacity})`);
    if (!(width >= 1 && Number.isInteger(width))) throw new RangeError(`width must be a positive integer (got ${width})`);
    this.key = new Uint32Array(width);
    const n = Math.min(capacity, FIRST);
    this.words = new Uint32Array(width * n);
    this.table = new Int32Array(tableSize(n));
    this.mask = this.table.length - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Whether the key in {@link key} is remembered. */
  has(): boolean {
    return this.find() >= 0;
  }

  /** Remembers the key in {@link key}, forgetting the oldest when full; false when it was remembered already. */
  add(): boolean {
    if (this.find() >= 0) return false;
    let at: number;
    if (this.count < this.capacity) {
      if (this.count * this.width === this.words.length) this.grow();
      at = this.count++;
    } else {
      at = this.next;
      this.next = (this.next + 1) % this.capacity;
      this.remove(at);
      this.evicted++;
    }
    this.words.set(this.key, at * this.width);
    this.insert(at);
    return true;
  }

  /** Forgets every key (the bound and the seed stay). */
  clear(): void {
    this.table.fill(0);
    this.count = 0;
    this.next = 0;
  }

  /** Table position of the key in {@link key}, -1 when absent. */
  private find(): number {
    const { table, words, mask, key, width } = this;
    let probes = 0;
    for (let pos = this.hashOf(key, 0) & mask; ; pos = (pos + 1) & mask) {
      const v = table[pos]!;
      if (v === 0) {
        if (probes > LONG_PROBE) this.reseed();
        return -1;
      }
      const i = (v - 1) * width;
      let k = 0;
      while (k < width && words[i + k] === key[k]) k++;
      if (k === width) return pos;
      probes++;
    }
  }

  /** A seeded mix of every word of the key at `from` in `w`. */
  private hashOf(w: Uint32Array, from: number): number {
    let h = this.seed;
    for (let k = 0; k < this.width; k++) {
      h = Math.imul(h ^ w[from + k]!, 0x9e3779b1);
      h ^= h >>> 15;
    }
    return Math.imul(h ^ (h >>> 13), 0x85ebca6b) >>> 0;
  }

  private home(at: number): number {
    return this.hashOf(this.words, at * this.width) & this.mask;
  }

  private insert(at: number): void {
    let pos = this.home(at);
    while (this.table[pos] !== 0) pos = (pos + 1) & this.mask;
    this.table[pos] = at + 1;
  }

  /** Removes ring position `at` from the table (backward-shift deletion: no tombstones). */
  private remove(at: number): void {
    const { table, mask } = this;
    let i = this.home(at);
    while (table[i] !== at + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const k = this.home(table[j]! - 1);
      // The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        table[i] = table[j]!;
        i = j;
      }
    }
    table[i] = 0;
  }

  /** Rebuilds the table of the ring positions in use. */
  private rebuild(size: number): void {
    this.table = new Int32Array(tableSize(size));
    this.mask = this.table.length - 1;
    for (let at = 0; at < this.count; at++) this.insert(at);
  }

  /** Doubles the ring (up to the capacity) and rebuilds the table; only before the ring is full, so positions are in order. */
  private grow(): void {
    const n = Math.min(this.capacity, (this.words.length / this.width) * 2);
    const words = new Uint32Array(this.width * n);
    words.set(this.words);
    this.words = words;
    this.rebuild(n);
  }

  /** Keys that collide under this seed are scattered under another. */
  private reseed(): void {
    this.seed = randomInt(2 ** 32) | 1;
    this.reseeds++;
    this.rebuild(this.words.length / this.width);
  }
}

/** A power of two at least twice the keys held: probes stay short. */
function tableSize(keys: number): number {
  let n = 16;
  while (n < keys * 2) n *= 2;
  return n;
}
