/**
 * A bounded set of recently seen keys, for at-least-once senders that re-send whole batches
 * (kube-apiserver on any non-2xx, Alertmanager HA pairs). The oldest key is forgotten first; the
 * bound keeps memory flat whatever the sender does.
 */
import { createHash } from 'node:crypto';
/** Keys come from senders: long ones are kept as a digest, so 100,000 of them cannot hold gigabytes. */
function compact(key: string): string {
  return key.length > 128 ? `#${createHash('sha256').update(key).digest('base64')}` : key;
}

export class RecentKeys {
  private readonly keys = new Set<string>();
  // Insertion order in a ring: finding the oldest key through the Set's iterator would walk past
  // every deleted entry, which makes eviction slow once the set is full. It grows with use up to
  // the capacity: a receiver that sees few keys (most see none) holds little, and the collector
  // does not scan a million empty slots on every full collection.
  private readonly ring: string[] = [];
  private next = 0;
  /** Keys forgotten to stay within the bound. */
  evicted = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1 (got ${capacity})`);
  }

  has(key: string): boolean {
    return this.keys.has(compact(key));
  }

  /** Remembers a key; evicts the oldest when full. */
  add(key: string): void {
    key = compact(key);
    if (this.keys.has(key)) return;
    if (this.ring.length < this.capacity) this.ring.push(key);
    else {
      this.keys.delete(this.ring[this.next]!);
      this.evicted++;
      this.ring[this.next] = key;
      this.next = (this.next + 1) % this.capacity;
    }
    this.keys.add(key);
  }

  get size(): number {
    return this.keys.size;
  }
}
