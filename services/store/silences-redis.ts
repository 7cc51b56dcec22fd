/**
 * Silences in Redis, for distributed mode: one hash, a field per silence id holding its JSON. API
 * replicas write it; every correlator reads it whole every few seconds (services/silences.ts), so a
 * silence reaches every partition within that period. Small: at most a few thousand silences.
 */
import type { Redis } from 'ioredis';
import type { Silence } from '../../correlator/silences.js';
import { redisKeys } from './redis-keys.js';
import type { SilenceStore } from './store.js';

export class RedisSilenceStore implements SilenceStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix?: string,
  ) {
    this.key = redisKeys(prefix).silences;
  }

  async put(silence: Silence): Promise<void> {
    await this.redis.hset(this.key, silence.id, JSON.stringify(silence));
  }

  async get(id: string): Promise<Silence | undefined> {
    const body = await this.redis.hget(this.key, id);
    return body === null ? undefined : (JSON.parse(body) as Silence);
  }

  async list(): Promise<Silence[]> {
    const out: Silence[] = [];
    for (const body of Object.values(await this.redis.hgetall(this.key))) {
      try {
        out.push(JSON.parse(body) as Silence);
      } catch {
        // A field that is not a silence: left alone, never matched.
      }
    }
    return out.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1));
  }

  async delete(ids: string[]): Promise<number> {
    return ids.length ? this.redis.hdel(this.key, ...ids) : 0;
  }
}
