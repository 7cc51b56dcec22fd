/**
 * A bounded set of recently seen keys, for at-least-once senders that re-send whole batches
 * (kube-apiserver on any non-2xx, Alertmanager HA pairs). The oldest key is forgotten first; the
 * bound keeps memory flat whatever the sender does.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();
  /** Keys forgotten to stay within the bound. */
  evicted = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1 (got ${capacity})`);
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Remembers a key; evicts the oldest when full. */
  add(key: string): void {
    if (this.keys.has(key)) return;
    if (this.keys.size >= this.capacity) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
      this.evicted++;
    }
    this.keys.add(key);
  }

  get size(): number {
    return this.keys.size;
  }
}
