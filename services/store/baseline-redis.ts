/**
 * The identity baseline in Redis, for distributed correlators: one hash, a field per (actor, kind,
 * namespace). Every correlator loads it at start and when partitions move to it; each writes only
 * the entries of actors in its partitions, so writers never contend for a field.
 */
import type { Redis } from 'ioredis';
import type { BaselineEntry, BaselineStore } from '../../correlator/baseline.js';
import { redisKeys } from './redis-keys.js';

export class RedisBaselineStore implements BaselineStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix?: string,
  ) {
    this.key = redisKeys(prefix).baseline;
  }

  async load(): Promise<[string, BaselineEntry][]> {
    const all = await this.redis.hgetall(this.key);
    const out: [string, BaselineEntry][] = [];
    for (const [k, v] of Object.entries(all)) {
      try {
        out.push([k, JSON.parse(v) as BaselineEntry]);
      } catch {
        // A field another version wrote differently: relearned.
      }
    }
    return out;
  }

  async save(changes: Map<string, BaselineEntry | null>): Promise<void> {
    if (!changes.size) return;
    const m = this.redis.multi();
    for (const [k, e] of changes) {
      if (e) m.hset(this.key, k, JSON.stringify(e));
      else m.hdel(this.key, k);
    }
    await m.exec();
  }
}
