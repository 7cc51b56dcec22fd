/**
 * Where a distributed correlator keeps the state of each signals partition it owns: correlation
 * windows, open incidents, prologues, the ids already processed and the offset they account for.
 * A checkpoint is written atomically (Redis MULTI) before the partition's offsets are committed to
 * Kafka, so whoever owns the partition next resumes exactly where the state ends.
 */
import { Redis } from 'ioredis';
import type { SlotState } from '../../correlator/correlation/engine.js';
import { KubevigilError } from '../../correlator/errors.js';
import type { Incident } from '../../correlator/incident.js';
import type { Signal } from '../../correlator/signal.js';
import { redisKeys } from './redis-keys.js';

/** What changed in one partition since its last checkpoint. */
export interface PartitionCheckpoint {
  /** The last offset applied; absent for changes outside the stream (sweeps, commands already counted). */
  offset?: string;
  slots: Map<string, SlotState | null>;
  /** Changed incidents; resolved ones are removed from the partition's open set. */
  incidents: Incident[];
  prologue: Map<string, Signal[] | null>;
  seen: string[];
}

/** A partition's state as loaded on takeover. */
export interface PartitionState {
  offset?: string;
  slots: [string, SlotState][];
  incidents: Incident[];
  prologue: [string, Signal[]][];
  seen: string[];
}

/** Persistence of per-partition correlator state. */
export interface CorrelatorStateStore {
  load(partition: number): Promise<PartitionState>;
  /** The offset the partition's checkpoint accounts for (to notice that another correlator moved it on). */
  offset(partition: number): Promise<string | undefined>;
  save(partition: number, cp: PartitionCheckpoint): Promise<void>;
  /** True when the backing store answers. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

const BUCKET_MS = 10 * 60_000;
/** Processed ids are remembered this long: longer than any redelivery after a takeover. */
const SEEN_TTL_MS = 2 * 3_600_000;
/** A partition nobody touched for a week has nothing worth keeping. */
const STATE_TTL_MS = 7 * 86_400_000;

// Windows and prologues keep signals only for correlation and timelines: their excerpts and
// matched conditions stay in the incident store, not in every checkpoint.
const slim = (_k: string, v: unknown) => (_k === 'excerpt' || _k === 'matched' ? undefined : v);
const parse = <T>(s: string): T => JSON.parse(s) as T;
const restoreSignal = (s: Signal): Signal => ({ ...s, excerpt: s.excerpt ?? {}, matched: s.matched ?? [] });

/** Redis-backed {@link CorrelatorStateStore}. */
export class RedisCorrelatorState implements CorrelatorStateStore {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = redisKeys(prefix);
  }

  async load(partition: number): Promise<PartitionState> {
    const k = this.keys;
    const buckets = Array.from({ length: Math.ceil(SEEN_TTL_MS / BUCKET_MS) + 1 }, (_, i) => Math.floor(this.now() / BUCKET_MS) - i);
    const pipe = this.redis.pipeline().get(k.offset(partition)).hgetall(k.slots(partition)).hgetall(k.incidents(partition)).hgetall(k.prologue(partition));
    for (const b of buckets) pipe.smembers(k.seen(partition, b));
    const res = await pipe.exec();
    if (!res) throw unavailable('load', new Error('no reply'));
    for (const [err] of res) if (err) throw unavailable('load', err);
    const [offset, slots, incidents, prologue, ...seen] = res.map(([, v]) => v);
    return {
      ...(typeof offset === 'string' ? { offset } : {}),
      slots: Object.entries(slots as Record<string, string>).map(([key, v]) => [key, parse<SlotState>(v)]),
      incidents: Object.values(incidents as Record<string, string>).map((v) => parse<Incident>(v)),
      prologue: Object.entries(prologue as Record<string, string>).map(([key, v]) => [key, parse<Signal[]>(v).map(restoreSignal)]),
      seen: (seen as string[][]).flat(),
    };
  }

  async offset(partition: number): Promise<string | undefined> {
    try {
      return (await this.redis.get(this.keys.offset(partition))) ?? undefined;
    } catch (e) {
      throw unavailable('offset read', e);
    }
  }

  async save(partition: number, cp: PartitionCheckpoint): Promise<void> {
    const k = this.keys;
    const m = this.redis.multi();
    const slotsSet: Record<string, string> = {};
    const slotsDel: string[] = [];
    for (const [key, v] of cp.slots) {
      if (v) slotsSet[key] = JSON.stringify(v, slim);
      else slotsDel.push(key);
    }
    if (Object.keys(slotsSet).length) m.hset(k.slots(partition), slotsSet);
    if (slotsDel.length) m.hdel(k.slots(partition), ...slotsDel);
    const open = cp.incidents.filter((i) => i.status !== 'resolved');
    const closed = cp.incidents.filter((i) => i.status === 'resolved').map((i) => i.id);
    if (open.length) m.hset(k.incidents(partition), Object.fromEntries(open.map((i) => [i.id, JSON.stringify(i)])));
    if (closed.length) m.hdel(k.incidents(partition), ...closed);
    const proSet: Record<string, string> = {};
    const proDel: string[] = [];
    for (const [key, v] of cp.prologue) {
      if (v) proSet[key] = JSON.stringify(v, slim);
      else proDel.push(key);
    }
    if (Object.keys(proSet).length) m.hset(k.prologue(partition), proSet);
    if (proDel.length) m.hdel(k.prologue(partition), ...proDel);
    if (cp.seen.length) {
      const seenKey = k.seen(partition, Math.floor(this.now() / BUCKET_MS));
      m.sadd(seenKey, ...cp.seen);
      m.pexpire(seenKey, SEEN_TTL_MS + BUCKET_MS);
    }
    if (cp.offset !== undefined) m.set(k.offset(partition), cp.offset);
    for (const key of [k.slots(partition), k.incidents(partition), k.prologue(partition), k.offset(partition)]) m.pexpire(key, STATE_TTL_MS);
    let res;
    try {
      res = await m.exec();
    } catch (e) {
      throw unavailable('save', e);
    }
    if (!res) throw unavailable('save', new Error('transaction aborted'));
    for (const [err] of res) if (err) throw unavailable('save', err);
  }

  async ready(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

function unavailable(op: string, cause: unknown): KubevigilError {
  const err = new KubevigilError('STATE_UNAVAILABLE', `Redis ${op} of correlator state failed (${(cause as Error)?.message ?? String(cause)}); the batch is retried and its offsets are not committed`, true, 1);
  (err as { cause?: unknown }).cause = cause;
  return err;
}

/** Opens a Redis connection that fails fast (no offline queue) so a Redis outage pauses the correlator visibly. */
export function connectRedis(url: string, onError: (err: Error) => void = () => {}): Redis {
  const r = new Redis(url, { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(2000, 100 * n) });
  // Connection errors surface through the commands that fail (and readiness); this keeps ioredis
  // from reporting them as unhandled while it reconnects.
  r.on('error', onError);
  return r;
}

/** In-memory {@link CorrelatorStateStore} with the same semantics, for tests and single-process runs. */
export class MemoryCorrelatorState implements CorrelatorStateStore {
  private readonly parts = new Map<number, { offset?: string; slots: Map<string, string>; incidents: Map<string, string>; prologue: Map<string, string>; seen: Set<string> }>();
  /** Set to make saves fail, as if the backing store were down. */
  down = false;

  private part(p: number) {
    let s = this.parts.get(p);
    if (!s) this.parts.set(p, (s = { slots: new Map(), incidents: new Map(), prologue: new Map(), seen: new Set() }));
    return s;
  }

  async load(partition: number): Promise<PartitionState> {
    if (this.down) throw unavailable('load', new Error('down'));
    const s = this.part(partition);
    return {
      ...(s.offset !== undefined ? { offset: s.offset } : {}),
      slots: [...s.slots].map(([k, v]) => [k, parse<SlotState>(v)]),
      incidents: [...s.incidents.values()].map((v) => parse<Incident>(v)),
      prologue: [...s.prologue].map(([k, v]) => [k, parse<Signal[]>(v).map(restoreSignal)]),
      seen: [...s.seen],
    };
  }

  async offset(partition: number): Promise<string | undefined> {
    if (this.down) throw unavailable('offset read', new Error('down'));
    return this.parts.get(partition)?.offset;
  }

  async save(partition: number, cp: PartitionCheckpoint): Promise<void> {
    if (this.down) throw unavailable('save', new Error('down'));
    const s = this.part(partition);
    for (const [k, v] of cp.slots) {
      if (v) s.slots.set(k, JSON.stringify(v, slim));
      else s.slots.delete(k);
    }
    for (const i of cp.incidents) {
      if (i.status === 'resolved') s.incidents.delete(i.id);
      else s.incidents.set(i.id, JSON.stringify(i));
    }
    for (const [k, v] of cp.prologue) {
      if (v) s.prologue.set(k, JSON.stringify(v, slim));
      else s.prologue.delete(k);
    }
    for (const id of cp.seen) s.seen.add(id);
    if (cp.offset !== undefined) s.offset = cp.offset;
  }

  async ready(): Promise<boolean> {
    return !this.down;
  }

  async close(): Promise<void> {}
}
