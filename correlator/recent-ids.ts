/**
 * The signal ids an incident manager remembers to drop redeliveries: a bounded set, oldest
 * forgotten first, like {@link RecentKeys}, but compact for the ids signals have (32 hex digits,
 * see `signalId`): each is kept as 16 bytes in a ring of typed arrays, found through an
 * open-addressing table of ring positions. About 24 bytes an id, against about 150 for a string
 * in a Set (the string, often a slice of a longer digest, its Set entry and its ring slot). Other
 * ids (any string: ids of signals from elsewhere) go to a {@link RecentKeys} of the same bound.
 * The arrays grow with use up to the bound, so a manager that sees few ids holds little.
 */
import { ID_WORDS as W, keyOfWords, otherKey, parseHexId } from './correlation/packed.js';
import { RecentKeys } from './recent-keys.js';

/** Digests are uniform already; mixing two words keeps ids that differ only in later digits apart too. */
const hashOf = (w0: number, w1: number): number => Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b), 0x9e3779b1) >>> 0;

const FIRST = 1024;

export class RecentIds {
  /** The ring: 4 words per id, in insertion order (wrapping once full). */
  private words: Uint32Array;
  /** Open addressing, linear probing: ring position + 1, 0 for empty. */
  private table: Int32Array;
  private mask: number;
  /** Ring positions in use. */
  private count = 0;
  /** Once full, the ring position of the oldest id (the next to be replaced). */
  private next = 0;
  /** Ids of other forms, made at the first one. */
  private others: RecentKeys | undefined;
  private forgotten = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1 (got ${capacity})`);
    const n = Math.min(capacity, FIRST);
    this.words = new Uint32Array(4 * n);
    this.table = new Int32Array(tableSize(n));
    this.mask = this.table.length - 1;
  }

  /** Ids forgotten to stay within the bound. */
  get evicted(): number {
    return this.forgotten + (this.others?.evicted ?? 0);
  }

  get size(): number {
    return this.count + (this.others?.size ?? 0);
  }

  has(id: string): boolean {
    return parseHexId(id) ? this.find() >= 0 : (this.others?.has(id) ?? false);
  }

  /** Remembers an id; forgets the oldest when full. */
  add(id: string): void {
    this.addNew(id);
  }

  /**
   * Remembers an id that is new, and returns it encoded as packed signals keep it (see
   * `encodeId` in correlation/packed.ts); undefined when it was remembered already.
   */
  addNew(id: string): string | undefined {
    if (!parseHexId(id)) {
      const others = (this.others ??= new RecentKeys(this.capacity));
      if (others.has(id)) return undefined;
      others.add(id);
      return otherKey(id);
    }
    if (this.find() >= 0) return undefined;
    let at: number;
    if (this.count < this.capacity) {
      if (this.count * 4 === this.words.length) this.grow();
      at = this.count++;
    } else {
      at = this.next;
      this.next = (this.next + 1) % this.capacity;
      this.remove(at);
      this.forgotten++;
    }
    // find() and remove() leave W alone: it still holds the id.
    this.words.set(W, at * 4);
    this.insert(at);
    return keyOfWords();
  }

  /** Table position of the id in {@link W}, -1 when absent. */
  private find(): number {
    const { table, words, mask } = this;
    const w0 = W[0]!;
    const w1 = W[1]!;
    const w2 = W[2]!;
    const w3 = W[3]!;
    for (let pos = hashOf(w0, w1) & mask; ; pos = (pos + 1) & mask) {
      const v = table[pos]!;
      if (v === 0) return -1;
      const i = (v - 1) * 4;
      if (words[i] === w0 && words[i + 1] === w1 && words[i + 2] === w2 && words[i + 3] === w3) return pos;
    }
  }

  private home(at: number): number {
    return hashOf(this.words[at * 4]!, this.words[at * 4 + 1]!) & this.mask;
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

  /** Doubles the ring (up to the capacity) and rebuilds the table; only before the ring is full, so positions are in order. */
  private grow(): void {
    const n = Math.min(this.capacity, (this.words.length / 4) * 2);
    const words = new Uint32Array(4 * n);
    words.set(this.words);
    this.words = words;
    this.table = new Int32Array(tableSize(n));
    this.mask = this.table.length - 1;
    for (let at = 0; at < this.count; at++) this.insert(at);
  }
}

/** A power of two at least twice the ids held: probes stay short. */
function tableSize(ids: number): number {
  let n = 16;
  while (n < ids * 2) n *= 2;
  return n;
}
