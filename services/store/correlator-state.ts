/**
 * Where a distributed correlator keeps the state of each signals partition it owns: correlation
 * windows, open incidents, prologues, the ids already processed and the offset they account for.
 * Windows and prologues refer to their signals by offset on the signals topic ({@link SignalRef}).
 * A checkpoint is written atomically (one Lua script) before the partition's offsets are committed
 * to Kafka, so whoever owns the partition next resumes exactly where the state ends.
 *
 * Every checkpoint bumps the partition's generation and is applied only if the generation is still
 * the one the writer loaded or last wrote: of two correlators that both believe they own a
 * partition (a rebalance, a long pause), the first to write wins and the other must reload.
 * The incidents a checkpoint changed are also kept as its outbox: they are published after the
 * checkpoint, and a new owner publishes the outbox again on load, so a crash between the two loses
 * no update and a stale copy publishes nothing the checkpoint does not hold. A checkpoint that Redis
 * lost is rebuilt from Kafka (see `SignalHistory` in correlate-partitioned.ts): the rebuilt state's
 * first checkpoint replaces what Redis holds of the partition.
 */
import { Redis } from 'ioredis';
import type { SlotState } from '../../correlator/correlation/engine.js';
import { PackedSignal, SOURCE_OFFSET, unpacked, type SignalLike } from '../../correlator/correlation/packed.js';
import { KubevigilError } from '../../correlator/errors.js';
import type { Incident } from '../../correlator/incident.js';
import { withoutEvidence, type Signal } from '../../correlator/signal.js';
import { redisKeys } from './redis-keys.js';

/** What changed in one partition since its last checkpoint. */
export interface PartitionCheckpoint {
  /** The last offset applied; absent for changes outside the stream (sweeps, commands already counted). */
  offset?: string;
  /** Changed correlation groups as the JSON of a {@link StoredSlot} (see `CorrelationEngine.exportSlot` and {@link SignalWriter}); null when gone. */
  slots: Map<string, string | null>;
  /** Changed incidents, the checkpoint's outbox; resolved ones leave the partition's open set. */
  incidents: Incident[];
  /**
   * The JSON of each of `incidents` (same order) when the caller already wrote it (to publish the
   * same text): saved as it is instead of written again.
   */
  incidentJson?: string[];
  /** Changed prologues as the JSON of their {@link StoredSignal} lists (see {@link SignalWriter}); null when emptied. */
  prologue: Map<string, string | null>;
  seen: string[];
  /**
   * Set by a rebuild (see `SignalHistory` in correlate-partitioned.ts): the checkpoint replaces the
   * partition's windows, prologues, open incidents, offset and outbox instead of changing them, and
   * its generation is also above `generationAbove`, the generation the last offset commit recorded
   * ({@link commitMarker}), so that the commit never reads as ahead of the state.
   */
  replace?: { generationAbove: number };
}

/** A partition's state as loaded on takeover. */
export interface PartitionState {
  /** 0 for a partition never checkpointed. */
  generation: number;
  offset?: string;
  /** Windows and prologues hold signals by reference: the caller resolves them ({@link isRef}). */
  slots: [string, StoredSlot][];
  incidents: Incident[];
  prologue: [string, StoredSignal[]][];
  seen: string[];
  /** The incidents of the last checkpoint, to publish again (idempotent per id and version). */
  outbox: Incident[];
}

/** Persistence of per-partition correlator state. */
export interface CorrelatorStateStore {
  /** Reads a partition's state atomically. */
  load(partition: number): Promise<PartitionState>;
  /** The partition's current generation (to notice that another correlator wrote since). */
  generation(partition: number): Promise<number>;
  /**
   * Applies a checkpoint atomically if the partition's generation still equals `expected`, and
   * returns the new generation; throws {@link KubevigilError} `STATE_STALE` otherwise,
   * `STATE_UNAVAILABLE` when the store fails.
   */
  save(partition: number, cp: PartitionCheckpoint, expected: number): Promise<number>;
  /** True when the backing store answers. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

const BUCKET_MS = 10 * 60_000;
/** Processed ids are remembered this long: longer than any redelivery after a takeover. */
const SEEN_TTL_MS = 2 * 3_600_000;
/** A partition nobody touched for a week has nothing worth keeping. */
const STATE_TTL_MS = 7 * 86_400_000;

// Windows and prologues keep signals only for correlation and timelines, and the signals that
// came from the signals topic are still there: a checkpoint holds their offsets on the partition,
// not their bodies (as Kafka Streams restores state from its source topic). Encoding thousands of
// window signals per checkpoint cost as much as consuming them; an offset costs a few bytes. A new
// owner reads the referenced offsets back (see `SignalSource` in correlate-partitioned.ts), so only
// recent offsets are referred to: that read stays short. Older signals, and signals with no offset,
// are written in full without their excerpts and matched conditions.

/** A window or prologue signal in a checkpoint: its offset on the partition's signals topic, and its id to check what is read there. */
export interface SignalRef {
  $offset: string;
  id: string;
}

/** A signal as a checkpoint holds it: by reference when its offset is recent, else in full. */
export type StoredSignal = Signal | SignalRef;

/** A correlation group's windows as a checkpoint holds them. */
export interface StoredSlot {
  signals: Record<string, StoredSignal>;
  windows: SlotState['windows'];
}

/**
 * The metadata a correlator's offset commit carries: the generation of the checkpoint it follows.
 * Kafka keeps it with the committed offset, independently of Redis, so a correlator that loads a
 * partition can tell a checkpoint that Redis lost (generation 0 while a commit exists) or that came
 * back older (a lower generation) from a partition never checkpointed.
 */
export function commitMarker(generation: number): string {
  return `kubevigil-checkpoint:${generation}`;
}

/** The generation in a commit's metadata, or undefined for a commit without {@link commitMarker}. */
export function markedGeneration(metadata: string | null | undefined): number | undefined {
  const m = /^kubevigil-checkpoint:(\d+)$/.exec(metadata ?? '');
  return m ? Number(m[1]) : undefined;
}

export const isRef = (s: StoredSignal): s is SignalRef => typeof (s as SignalRef).$offset === 'string';

/**
 * Where a signal came from on its partition: a non-enumerable property ({@link SOURCE_OFFSET}), so
 * that copies (`{ ...s }`, e.g. a signal the baseline annotated) do not inherit it and are written
 * in full. (A WeakMap cost a hash per signal and weighed on every garbage collection of a drain.)
 * Windows and prologues keep signals packed (correlator/correlation/packed.ts), offset included.
 */
type WithOffset = Signal & { [SOURCE_OFFSET]?: number };

/** Records where a signal came from on its partition, so that checkpoints can refer to it by offset. */
export function rememberOffset(signal: Signal, offset: string): Signal {
  Object.defineProperty(signal, SOURCE_OFFSET, { value: Number(offset), configurable: true });
  return signal;
}

/**
 * Writes the signals of one checkpointed group (a window slot or a prologue): by reference when
 * their offset is at least `oldest`, else in full; `floor` is the lowest offset referred to.
 */
export class SignalWriter {
  floor = Infinity;
  constructor(private readonly oldest: number) {}

  /** One signal's JSON (`idJson`: its id as JSON, when the caller has it). */
  readonly json = (s: SignalLike, idJson?: string): string => {
    const offset = s instanceof PackedSignal ? s.offset : (s as WithOffset)[SOURCE_OFFSET];
    if (offset === undefined || offset < this.oldest) return JSON.stringify(withoutEvidence(unpacked(s)));
    if (offset < this.floor) this.floor = offset;
    return `{"$offset":"${offset}","id":${idJson ?? JSON.stringify(String(s.id))}}`;
  };

  /** A prologue's JSON. */
  list(signals: readonly SignalLike[]): string {
    return `[${signals.map((s) => this.json(s)).join(',')}]`;
  }
}

const parse = <T>(s: string): T => JSON.parse(s) as T;

/**
 * Writes one checkpoint atomically, if the partition's generation is still the writer's.
 * KEYS: generation, offset, slots, incidents, prologue, outbox, seen-log bucket.
 * ARGV: expected generation, new offset ('' to keep), state TTL, seen TTL, four counts (slots set,
 * slots deleted, prologues set, prologues deleted), the processed ids as one JSON array ('' for
 * none: one argument, not one per id, which cost as much as the rest of a drain's checkpoint), the
 * count of incidents, the generation to stay above when the checkpoint replaces the state ('' when
 * it changes it), then the items (incidents as id, JSON, 1 if still open). Returns the new
 * generation, or -1 when the generation moved on.
 */
const CHECKPOINT_LUA = `
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
if gen ~= tonumber(ARGV[1]) then return -1 end
if ARGV[11] ~= '' then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  gen = math.max(gen, tonumber(ARGV[11]))
end
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
each('HSET', KEYS[3], tonumber(ARGV[5]), 2)
each('HDEL', KEYS[3], tonumber(ARGV[6]), 1)
each('HSET', KEYS[5], tonumber(ARGV[7]), 2)
each('HDEL', KEYS[5], tonumber(ARGV[8]), 1)
if ARGV[9] ~= '' then
  redis.call('RPUSH', KEYS[7], ARGV[9])
  redis.call('PEXPIRE', KEYS[7], ARGV[4])
end
redis.call('DEL', KEYS[6])
for i = 1, tonumber(ARGV[10]) do
  local id, json = ARGV[at], ARGV[at + 1]
  redis.call('HSET', KEYS[6], id, json)
  if ARGV[at + 2] == '1' then redis.call('HSET', KEYS[4], id, json) else redis.call('HDEL', KEYS[4], id) end
  at = at + 3
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[1], gen + 1)
for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return gen + 1
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
    if (!('kubevigilCheckpoint' in redis)) redis.defineCommand('kubevigilCheckpoint', { numberOfKeys: 7, lua: CHECKPOINT_LUA });
  }

  async load(partition: number): Promise<PartitionState> {
    const k = this.keys;
    const buckets = Array.from({ length: Math.ceil(SEEN_TTL_MS / BUCKET_MS) + 1 }, (_, i) => Math.floor(this.now() / BUCKET_MS) - i);
    // One transaction: no checkpoint lands between reading the generation and the state.
    const tx = this.redis
      .multi()
      .get(k.generation(partition))
      .get(k.offset(partition))
      .hgetall(k.slots(partition))
      .hgetall(k.incidents(partition))
      .hgetall(k.prologue(partition))
      .hgetall(k.outbox(partition));
    for (const b of buckets) tx.lrange(k.seenLog(partition, b), 0, -1).smembers(k.seen(partition, b));
    let res;
    try {
      res = await tx.exec();
    } catch (e) {
      throw unavailable('load', e);
    }
    if (!res) throw unavailable('load', new Error('transaction aborted'));
    for (const [err] of res) if (err) throw unavailable('load', err);
    const [generation, offset, slots, incidents, prologue, outbox, ...seen] = res.map(([, v]) => v);
    return {
      generation: Number(generation ?? 0),
      ...(typeof offset === 'string' ? { offset } : {}),
      slots: Object.entries(slots as Record<string, string>).map(([key, v]) => [key, parse<StoredSlot>(v)]),
      incidents: Object.values(incidents as Record<string, string>).map((v) => parse<Incident>(v)),
      prologue: Object.entries(prologue as Record<string, string>).map(([key, v]) => [key, parse<StoredSignal[]>(v)]),
      // Per bucket: the checkpoints' JSON arrays of ids, then the set older versions wrote.
      seen: (seen as string[][]).flatMap((list, i) => (i % 2 === 0 ? list.flatMap((json) => parse<string[]>(json)) : list)),
      outbox: Object.values(outbox as Record<string, string>).map((v) => parse<Incident>(v)),
    };
  }

  async generation(partition: number): Promise<number> {
    try {
      return Number((await this.redis.get(this.keys.generation(partition))) ?? 0);
    } catch (e) {
      throw unavailable('generation read', e);
    }
  }

  async save(partition: number, cp: PartitionCheckpoint, expected: number): Promise<number> {
    const k = this.keys;
    const slotsSet: string[] = [];
    const slotsDel: string[] = [];
    for (const [key, v] of cp.slots) {
      if (v) slotsSet.push(key, v);
      else slotsDel.push(key);
    }
    const proSet: string[] = [];
    const proDel: string[] = [];
    for (const [key, v] of cp.prologue) {
      if (v) proSet.push(key, v);
      else proDel.push(key);
    }
    const incidents = cp.incidents.flatMap((i, n) => [i.id, cp.incidentJson?.[n] ?? JSON.stringify(i), i.status === 'resolved' ? '0' : '1']);
    const keys = [
      k.generation(partition),
      k.offset(partition),
      k.slots(partition),
      k.incidents(partition),
      k.prologue(partition),
      k.outbox(partition),
      k.seenLog(partition, Math.floor(this.now() / BUCKET_MS)),
    ];
    const header = [
      slotsSet.length / 2,
      slotsDel.length,
      proSet.length / 2,
      proDel.length,
      cp.seen.length ? JSON.stringify(cp.seen) : '',
      cp.incidents.length,
      cp.replace ? cp.replace.generationAbove : '',
    ];
    const args = [expected, cp.offset ?? '', STATE_TTL_MS, SEEN_TTL_MS + BUCKET_MS, ...header, ...slotsSet, ...slotsDel, ...proSet, ...proDel, ...incidents];
    let generation: number;
    try {
      generation = await (this.redis as CheckpointingRedis).kubevigilCheckpoint(...keys, ...args);
    } catch (e) {
      throw unavailable('save', e);
    }
    if (generation < 0) throw stale(partition, expected, await this.generation(partition).catch(() => undefined));
    return generation;
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

function stale(partition: number, expected: number, found: number | undefined): KubevigilError {
  return new KubevigilError(
    'STATE_STALE',
    `correlator state of partition ${partition} moved on without this process (generation ${expected} expected, ${found ?? 'unknown'} found): another correlator owns or owned it; this copy is dropped and rebuilt from the checkpoint`,
    false,
  );
}

function unavailable(op: string, cause: unknown): KubevigilError {
  const err = new KubevigilError(
    'STATE_UNAVAILABLE',
    `Redis ${op} of correlator state failed (${(cause as Error)?.message ?? String(cause)}); the batch is retried and its offsets are not committed`,
    true,
    1,
  );
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

/**
 * Resolves once the connection is ready, or after `timeoutMs` (the client has no offline queue:
 * a first command before the connection is up would fail; a Redis that stays away is the caller's
 * retries to handle).
 */
export function redisReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (redis.status === 'ready') return resolve();
    const t = setTimeout(resolve, timeoutMs);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** In-memory {@link CorrelatorStateStore} with the same semantics, for tests and single-process runs. */
export class MemoryCorrelatorState implements CorrelatorStateStore {
  private readonly parts = new Map<
    number,
    {
      generation: number;
      offset?: string;
      slots: Map<string, string>;
      incidents: Map<string, string>;
      prologue: Map<string, string>;
      seen: Set<string>;
      outbox: string[];
    }
  >();
  /** Set to make saves fail, as if the backing store were down. */
  down = false;

  /** Forgets every partition, as a Redis restarted without persistence does. */
  lose(): void {
    this.parts.clear();
  }

  private part(p: number) {
    let s = this.parts.get(p);
    if (!s) this.parts.set(p, (s = { generation: 0, slots: new Map(), incidents: new Map(), prologue: new Map(), seen: new Set(), outbox: [] }));
    return s;
  }

  async load(partition: number): Promise<PartitionState> {
    if (this.down) throw unavailable('load', new Error('down'));
    const s = this.part(partition);
    return {
      generation: s.generation,
      ...(s.offset !== undefined ? { offset: s.offset } : {}),
      slots: [...s.slots].map(([k, v]) => [k, parse<StoredSlot>(v)]),
      incidents: [...s.incidents.values()].map((v) => parse<Incident>(v)),
      prologue: [...s.prologue].map(([k, v]) => [k, parse<StoredSignal[]>(v)]),
      seen: [...s.seen],
      outbox: s.outbox.map((v) => parse<Incident>(v)),
    };
  }

  async generation(partition: number): Promise<number> {
    if (this.down) throw unavailable('generation read', new Error('down'));
    return this.parts.get(partition)?.generation ?? 0;
  }

  async save(partition: number, cp: PartitionCheckpoint, expected: number): Promise<number> {
    if (this.down) throw unavailable('save', new Error('down'));
    const s = this.part(partition);
    if (s.generation !== expected) throw stale(partition, expected, s.generation);
    if (cp.replace) {
      s.slots.clear();
      s.incidents.clear();
      s.prologue.clear();
      delete s.offset;
      s.generation = Math.max(s.generation, cp.replace.generationAbove);
    }
    for (const [k, v] of cp.slots) {
      if (v) s.slots.set(k, v);
      else s.slots.delete(k);
    }
    s.outbox = [];
    for (const [n, i] of cp.incidents.entries()) {
      const json = cp.incidentJson?.[n] ?? JSON.stringify(i);
      s.outbox.push(json);
      if (i.status === 'resolved') s.incidents.delete(i.id);
      else s.incidents.set(i.id, json);
    }
    for (const [k, v] of cp.prologue) {
      if (v) s.prologue.set(k, v);
      else s.prologue.delete(k);
    }
    for (const id of cp.seen) s.seen.add(id);
    if (cp.offset !== undefined) s.offset = cp.offset;
    return ++s.generation;
  }

  async ready(): Promise<boolean> {
    return !this.down;
  }

  async close(): Promise<void> {}
}
