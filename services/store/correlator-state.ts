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
import { withoutEvidence, type Signal } from '../../correlator/signal.js';
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
  /**
   * Applies a checkpoint atomically if the stored offset still equals `expected` (undefined: none
   * stored); throws {@link KubevigilError} `STATE_STALE` otherwise, `STATE_UNAVAILABLE` on failure.
   */
  save(partition: number, cp: PartitionCheckpoint, expected: string | undefined): Promise<void>;
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
// matched conditions stay in the incident store, not in every checkpoint. A signal usually sits in
// a window across several checkpoints (and in several windows): its JSON is made once and reused
// while the engine holds the same object.
const signalJson = new WeakMap<Signal, string>();
function slotJson(v: SlotState): string {
  const parts: string[] = [];
  for (const id in v.signals) {
    const s = v.signals[id]!;
    let json = signalJson.get(s);
    if (json === undefined) signalJson.set(s, (json = JSON.stringify(withoutEvidence(s))));
    parts.push(`${JSON.stringify(id)}:${json}`);
  }
  // One join makes one flat string (a chain of += would be flattened again when written).
  return `{"signals":{${parts.join(',')}},"windows":${JSON.stringify(v.windows)}}`;
}
const parse = <T>(s: string): T => JSON.parse(s) as T;

/**
 * Writes one checkpoint atomically, and only if the partition's stored offset is still the one the
 * writer's state started from: a correlator that lost its partition (to a rebalance, a long pause)
 * cannot overwrite what the new owner saved. KEYS: offset, slots, incidents, prologue, seen bucket.
 * ARGV: expected offset ('' for none), new offset ('' to keep), state TTL, seen TTL, seven counts
 * (slots set/deleted, incidents set/deleted, prologues set/deleted, seen ids), then the items.
 * Returns 1 when applied, 0 when the offset moved on.
 */
const CHECKPOINT_LUA = `
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return 0 end
local at = 12
local function each(cmd, key, n, width)
  local done = 0
  while done < n do
    local k = math.min(n - done, 500)
    redis.call(cmd, key, unpack(ARGV, at + done * width, at + (done + k) * width - 1))
    done = done + k
  end
  at = at + n * width
end
each('HSET', KEYS[2], tonumber(ARGV[5]), 2)
each('HDEL', KEYS[2], tonumber(ARGV[6]), 1)
each('HSET', KEYS[3], tonumber(ARGV[7]), 2)
each('HDEL', KEYS[3], tonumber(ARGV[8]), 1)
each('HSET', KEYS[4], tonumber(ARGV[9]), 2)
each('HDEL', KEYS[4], tonumber(ARGV[10]), 1)
local seen = tonumber(ARGV[11])
each('SADD', KEYS[5], seen, 1)
if seen > 0 then redis.call('PEXPIRE', KEYS[5], ARGV[4]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2]) end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
`;

type CheckpointingRedis = Redis & { kubevigilCheckpoint(...keysAndArgs: (string | number)[]): Promise<number> };

/** Redis-backed {@link CorrelatorStateStore}. */
export class RedisCorrelatorState implements CorrelatorStateStore {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = redisKeys(prefix);
    if (!('kubevigilCheckpoint' in redis)) redis.defineCommand('kubevigilCheckpoint', { numberOfKeys: 5, lua: CHECKPOINT_LUA });
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
      prologue: Object.entries(prologue as Record<string, string>).map(([key, v]) => [key, parse<Signal[]>(v).map(withoutEvidence)]),
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

  async save(partition: number, cp: PartitionCheckpoint, expected: string | undefined): Promise<void> {
    const k = this.keys;
    const slotsSet: string[] = [];
    const slotsDel: string[] = [];
    for (const [key, v] of cp.slots) {
      if (v) slotsSet.push(key, slotJson(v));
      else slotsDel.push(key);
    }
    const incSet: string[] = [];
    const incDel: string[] = [];
    for (const i of cp.incidents) {
      if (i.status === 'resolved') incDel.push(i.id);
      else incSet.push(i.id, JSON.stringify(i));
    }
    const proSet: string[] = [];
    const proDel: string[] = [];
    for (const [key, v] of cp.prologue) {
      if (v) proSet.push(key, JSON.stringify(v.map(withoutEvidence)));
      else proDel.push(key);
    }
    const keys = [k.offset(partition), k.slots(partition), k.incidents(partition), k.prologue(partition), k.seen(partition, Math.floor(this.now() / BUCKET_MS))];
    const counts = [slotsSet.length / 2, slotsDel.length, incSet.length / 2, incDel.length, proSet.length / 2, proDel.length, cp.seen.length];
    const args = [expected ?? '', cp.offset ?? '', STATE_TTL_MS, SEEN_TTL_MS + BUCKET_MS, ...counts, ...slotsSet, ...slotsDel, ...incSet, ...incDel, ...proSet, ...proDel, ...cp.seen];
    let applied: number;
    try {
      applied = await (this.redis as CheckpointingRedis).kubevigilCheckpoint(...keys, ...args);
    } catch (e) {
      throw unavailable('save', e);
    }
    if (applied !== 1) throw stale(partition, expected, await this.offset(partition).catch(() => '?'));
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

function stale(partition: number, expected: string | undefined, found: string | undefined): KubevigilError {
  return new KubevigilError(
    'STATE_STALE',
    `correlator state of partition ${partition} moved on without this process (expected offset ${expected ?? 'none'}, found ${found ?? 'none'}): another correlator owns or owned it; this copy is dropped and rebuilt from the checkpoint`,
    false,
  );
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
      prologue: [...s.prologue].map(([k, v]) => [k, parse<Signal[]>(v).map(withoutEvidence)]),
      seen: [...s.seen],
    };
  }

  async offset(partition: number): Promise<string | undefined> {
    if (this.down) throw unavailable('offset read', new Error('down'));
    return this.parts.get(partition)?.offset;
  }

  async save(partition: number, cp: PartitionCheckpoint, expected: string | undefined): Promise<void> {
    if (this.down) throw unavailable('save', new Error('down'));
    const s = this.part(partition);
    if (s.offset !== expected) throw stale(partition, expected, s.offset);
    for (const [k, v] of cp.slots) {
      if (v) s.slots.set(k, slotJson(v));
      else s.slots.delete(k);
    }
    for (const i of cp.incidents) {
      if (i.status === 'resolved') s.incidents.delete(i.id);
      else s.incidents.set(i.id, JSON.stringify(i));
    }
    for (const [k, v] of cp.prologue) {
      if (v) s.prologue.set(k, JSON.stringify(v.map(withoutEvidence)));
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
