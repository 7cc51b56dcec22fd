/**
 * The signal ids an incident manager remembers to drop redeliveries: a bounded set, oldest
 * forgotten first, like {@link RecentKeys}, but compact for the ids signals have (32 hex digits,
 * see `signalId`): each is kept as 16 bytes in a {@link WordKeys} (a ring of typed arrays and an
 * open-addressing table of ring positions). About 24 bytes an id, against about 150 for a string
 * in a Set (the string, often a slice of a longer digest, its Set entry and its ring slot). Other
 * ids (any string: ids of signals from elsewhere) go to a {@link RecentKeys} of the same bound.
 * The arrays grow with use up to the bound, so a manager that sees few ids holds little.
 */
import { ID_WORDS as W, keyOfWords, otherKey, parseHexId } from './correlation/packed.js';
import { RecentKeys } from './recent-keys.js';
import { WordKeys } from './word-keys.js';

export class RecentIds {
  /** Ids of the signal-id form, as 4 words each. */
  private readonly ids: WordKeys;
  /** Ids of other forms, made at the first one. */
  private others: RecentKeys | undefined;

  constructor(readonly capacity: number) {
    this.ids = new WordKeys(4, capacity);
  }

  /** Ids forgotten to stay within the bound. */
  get evicted(): number {
    return this.ids.evicted + (this.others?.evicted ?? 0);
  }

  get size(): number {
    return this.ids.size + (this.others?.size ?? 0);
  }

  has(id: string): boolean {
    if (!parseHexId(id)) return this.others?.has(id) ?? false;
    this.ids.key.set(W);
    return this.ids.has();
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
    // Word by word: TypedArray.prototype.set costs a builtin call more than four stores.
    const k = this.ids.key;
    k[0] = W[0]!;
    k[1] = W[1]!;
    k[2] = W[2]!;
    k[3] = W[3]!;
    return this.ids.add() ? keyOfWords() : undefined;
  }
}
