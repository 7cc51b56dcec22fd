/**
 * The distributed correlator role: one incident manager per signals partition it owns, its state
 * checkpointed (Redis) before the partition's offsets are committed. Signals are keyed by actor, so
 * an actor's signals — and lifecycle commands about its incidents — arrive in order on one
 * partition. On takeover (a gap in offsets, or first sight of a partition) the state is reloaded
 * from the checkpoint, and messages the checkpoint already accounts for are skipped: nothing is
 * lost and nothing is applied twice.
 *
 * Batches are applied in memory ({@link PartitionedCorrelator.apply}); the bus asks for a flush
 * when it caught up with the partition, or every 5 s or 50,000 messages of a backlog:
 * checkpoint (windows, incidents, prologues, processed ids, last applied offset, and the changed
 * incidents as the outbox; window and prologue signals as their offsets, read back from the topic
 * by a new owner), only if the stored generation is still the one this state grew from →
 * publish the changed incidents (idempotent per id and version) → the bus commits. A failed flush
 * keeps the changes pending (or unpublished) and is retried; a checkpoint that moved on drops this
 * copy and rewinds. A new owner publishes the outbox again on load. Each changed incident is
 * written to JSON once per checkpoint: the same text goes into the outbox and onto the topic.
 *
 * The publish waits for the checkpoint instead of running beside it, because a version published
 * before its checkpoint is durable may be one no checkpoint ever holds. Consumers keep the highest
 * version of an incident and take an equal one as newer (the store upserts `version >=`). A copy
 * whose checkpoint fails as moved on (a correlator paused past its session while the new owner
 * went on) would have published its own branch already: version v+1 with other content than the
 * owner's v+1 (say, resolved by its sweep while the owner holds it open), or a version the owner
 * reaches only later, so the owner's next updates are ignored until then. After a crash between
 * the two, the new owner replays from the last checkpoint and numbers versions by its own flushes,
 * so the same (id, version) can again carry two contents. Publishing after the save keeps what is
 * published a subset of what was checkpointed, which is what makes republishing the outbox
 * idempotent. The wait costs one publish round trip per flush, and a draining backlog flushes once
 * per 50,000 messages or 5 s per partition: well under 1% of a drain. The offset commit follows
 * both (the bus commits after `flush` resolved).
 *
 * Redis may lose a checkpoint (a restart without persistence, FLUSHALL, failover to an empty or
 * lagging replica) while Kafka keeps the offsets committed after it. Each commit records the
 * checkpoint's generation ({@link commitMarker}); a load that finds no checkpoint, or an older one,
 * behind a commit rebuilds the partition's state instead of starting empty ({@link SignalHistory}).
 */
import type { IdentityBaseline } from '../correlator/baseline.js';
import type { ClusterInventory } from '../correlator/inventory.js';
import { KubevigilError } from '../correlator/errors.js';
import {
  CorrelationEngine,
  DEFAULT_CORRELATION_LIMITS,
  type CorrelationLimits,
  type CorrelationStats,
  type SlotState,
} from '../correlator/correlation/engine.js';
import type { CompiledCorrelation } from '../correlator/correlation/rules.js';
import { incidentJson, type Incident } from '../correlator/incident.js';
import {
  addBudget,
  DEFAULT_INCIDENT_POLICY,
  IncidentManager,
  InvalidTransitionError,
  type BudgetUse,
  type IncidentPolicy,
  type IncidentStats,
} from '../correlator/incidents.js';
import type { Clock, UsageSource } from '../correlator/ports.js';
import type { PackedSignal } from '../correlator/correlation/packed.js';
import { withoutEvidence, type Signal } from '../correlator/signal.js';
import { RewindError, withJson, type BusMessage } from './bus/bus.js';
import { isCommand, type SignalsMessage } from './bus/topics.js';
import type { CorrelatorRuntime, IncidentPublisher } from './correlate.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import {
  commitMarker,
  isRef,
  rememberOffset,
  SignalWriter,
  type CorrelatorStateStore,
  type PartitionCheckpoint,
  type PartitionState,
  type StoredSignal,
} from './store/correlator-state.js';

/** The fields correlation relies on, checked before a message from the topic is correlated. */
function isSignal(v: unknown): v is Signal {
  const s = v as Partial<Signal> | null;
  return (
    s !== null &&
    typeof s === 'object' &&
    typeof s.id === 'string' &&
    typeof s.kind === 'string' &&
    typeof s.eventTime === 'number' &&
    typeof s.actor?.key === 'string' &&
    typeof s.rule?.id === 'string' &&
    Array.isArray(s.entities) &&
    Array.isArray(s.mitre) &&
    s.target !== null &&
    typeof s.target === 'object'
  );
}

interface Part {
  manager: IncidentManager;
  /** The checkpoint generation this state was loaded from or last saved: what the next save expects. */
  generation: number;
  /** The last offset applied to this state, saved or still pending. */
  appliedOffset?: bigint;
  pending: PartitionCheckpoint;
  /** Incidents of the last checkpoint not yet published (a publish failed after the save). */
  unpublished: Outgoing[];
  /** Per window group and per prologue (actor), the lowest offset its stored form refers to. */
  floors: { slots: Map<string, number>; prologues: Map<string, number> };
  /** The applied offset when stored forms were last checked for references grown too old. */
  agedAt: number;
  /** After a rebuild: the incident versions already on the incidents topic, not to publish again. */
  published?: Map<string, number>;
  /**
   * Set when the load went ahead before the group's commits arrived: whether the checkpoint it
   * loaded was lost, which the first flush waits for (see {@link PartitionedCorrelator.verified}).
   */
  verify?: { st: PartitionState; loss: Promise<Loss | undefined> };
}

const emptyCheckpoint = (): PartitionCheckpoint => ({ slots: new Map(), incidents: [], prologue: new Map(), seen: [] });

/**
 * An incident of a checkpoint's outbox on its way to the incidents topic: its JSON as the
 * checkpoint saved it (written once per checkpoint, and sent as it is: {@link withJson}), and what
 * the metrics count, taken when it was written.
 */
interface Outgoing {
  incident: Incident;
  /** Undefined for an outbox loaded from a checkpoint: the publisher writes it. */
  json?: string;
  status: Incident['status'];
  severity: Incident['severity'];
}

const outgoing = (incident: Incident, json?: string): Outgoing => ({
  incident,
  ...(json === undefined ? {} : { json }),
  status: incident.status,
  severity: incident.severity,
});

/**
 * Reads messages of one signals partition back by offset. With a source, checkpoints refer to
 * window signals by their offsets instead of holding their bodies, and a new owner reads them here.
 */
export interface SignalSource {
  /** The messages at these offsets that still exist (retention may have removed some). */
  read(partition: number, offsets: readonly string[]): Promise<Map<string, SignalsMessage>>;
}

/** A commit of the correlators' group on one signals partition (see {@link SignalHistory.committed}). */
export interface GroupCommit {
  offset: string;
  generation?: number;
}

/**
 * What Kafka keeps of a signals partition independently of Redis. With it, a correlator that loads
 * a partition notices a checkpoint Redis lost (none, or an older one, behind the offsets the group
 * committed) and rebuilds the state from the topics instead of starting empty, which would split
 * every attack in progress into two incidents.
 */
export interface SignalHistory {
  /**
   * The correlators' committed offsets, by partition (the next offset to consume), each with the
   * checkpoint generation the commit recorded (`markedGeneration` of its metadata; absent for a
   * commit without one). Partitions the group never committed are left out.
   */
  committed(): Promise<ReadonlyMap<number, GroupCommit>>;
  /** The partition's messages written at or after `since` (ms since epoch) and before offset `before`; at most the last `max`. */
  signals(partition: number, since: number, before: string, max: number): Promise<BusMessage<SignalsMessage>[]>;
  /** The latest version of each incident published at or after `since` (ms since epoch). */
  incidents(since: number): Promise<Incident[]>;
}

/** Options of {@link PartitionedCorrelator}. */
export interface PartitionedCorrelatorOptions {
  correlations: readonly CompiledCorrelation[];
  state: CorrelatorStateStore;
  publish: IncidentPublisher;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  policy?: Partial<IncidentPolicy>;
  /** Bounds of each partition's correlation engine. */
  limits?: Partial<CorrelationLimits>;
  usage?: UsageSource;
  /** Where window signals are read back from on takeover; without it checkpoints hold them in full. */
  source?: SignalSource;
  /** Where a checkpoint Redis lost is noticed and rebuilt from; without it a lost checkpoint starts empty. */
  history?: SignalHistory;
  /** Most signals a rebuild replays per partition (default {@link DEFAULT_REBUILD_MAX_MESSAGES}). */
  rebuildMaxMessages?: number;
  /**
   * Longest a batch waits for a rebuild in progress (default 5 s) before it fails retryably: the
   * bus retries it and heartbeats meanwhile, so a long rebuild does not cost the consumer its session.
   */
  rebuildWaitMs?: number;
  /** Per-identity memory of routine actions, shared by every partition this process owns (actors are partitioned). */
  baseline?: IdentityBaseline;
  /** The live cluster, for root cause and remediation plans. */
  inventory?: ClusterInventory;
  /** Silences (services/silences.ts): the silence that hides a signal from incident logic. */
  silencer?: (s: Signal) => string | undefined;
  /**
   * How far back (in messages of the partition) a checkpoint refers to signals by offset; older
   * ones are written in full, so that a takeover reads at most about this many messages back.
   */
  maxRefDistance?: number;
}

/** At ~50k signals/s read back, a takeover spends about two seconds reading. */
export const DEFAULT_MAX_REF_DISTANCE = 100_000;

/** A rebuild replays at most this many signals of a partition, the latest: a few seconds of reading. */
export const DEFAULT_REBUILD_MAX_MESSAGES = 200_000;

/** Beyond the correlation horizon, a rebuild reads this much further back: a sweep's delay, a correlator's lag. */
const REBUILD_MARGIN_MS = 5 * 60_000;

/** Why a checkpoint is rebuilt (the `reason` of `kubevigil_correlator_state_rebuilds_total`). */
type LossReason = 'checkpoint_lost' | 'checkpoint_behind';

/** A lost checkpoint: why, and the generation the group's commit recorded. */
type Loss = { reason: LossReason; committed: number };

/** A rebuild in progress: it accounts for the partition's messages before offset `next`. */
interface Rebuild {
  next: bigint;
  part: Promise<Part>;
}

/** Runs one {@link IncidentManager} per owned partition with checkpointed state. */
export class PartitionedCorrelator implements CorrelatorRuntime {
  private readonly parts = new Map<number, Part>();
  /** One chain per partition: partitions are independent and may be processed concurrently. */
  private readonly chains = new Map<number, Promise<unknown>>();
  /**
   * Partitions whose state was dropped with changes the bus has not committed (a sweep found the
   * checkpoint moved on): the next flush asks the bus to offer them again instead of committing.
   */
  private readonly rewind = new Set<number>();
  /** The group's commits as fetched at the last assignment (`arrived` once they have), for the partitions neither loaded nor flushed here since. */
  private assignedCommits: { partitions: Set<number>; commits: Promise<ReadonlyMap<number, GroupCommit>>; arrived: boolean } | undefined;
  /** Takeovers (state loaded from a checkpoint), messages skipped as already applied, checkpoints found moved on, lost checkpoints rebuilt. */
  readonly stats = { loads: 0, skipped: 0, commandsRejected: 0, stale: 0, restored: 0, unrestorable: 0, invalid: 0, rebuilds: 0 };
  /** Rebuilds in progress or done but not yet taken up by a batch, per partition. */
  private readonly rebuilds = new Map<number, Rebuild>();
  /** Checkpoints read at the last assignment for the first load of partitions not held here then. */
  private readonly preloads = new Map<number, Promise<PartitionState>>();

  private readonly maxRefDistance: number;
  /** Engine counters of the partition states dropped or reloaded here, so that {@link engineStats} never decreases. */
  private readonly retired: CorrelationStats = { evictedGroups: 0, evictedEntries: 0, lateDropped: 0, ungrouped: 0, firings: 0 };
  /** The same for the incident managers' counters. */
  private readonly retiredIncidents: IncidentStats = {
    opened: 0,
    merged: 0,
    duplicates: 0,
    resolved: 0,
    evicted: 0,
    refused: 0,
    flooded: 0,
    prologueEvicted: 0,
  };

  /** The correlations new partition engines run; replaced by a rule reload. */
  private correlations: readonly CompiledCorrelation[];

  constructor(private readonly o: PartitionedCorrelatorOptions) {
    this.maxRefDistance = o.maxRefDistance ?? DEFAULT_MAX_REF_DISTANCE;
    this.correlations = o.correlations;
  }

  /** A rule reload: every partition held here keeps the windows of correlations still there (see CorrelationEngine.replaceCorrelations). */
  replaceCorrelations(correlations: readonly CompiledCorrelation[]): { kept: number; dropped: number } {
    this.correlations = correlations;
    const sum = { kept: 0, dropped: 0 };
    for (const part of this.parts.values()) {
      const r = part.manager.correlation.replaceCorrelations(correlations);
      sum.kept += r.kept;
      sum.dropped += r.dropped;
    }
    return sum;
  }

  /**
   * Applies a bus batch in memory; {@link flush} makes it durable. This is the handler of a
   * checkpointed subscription (see {@link Checkpointing}): one checkpoint then covers many batches.
   */
  async apply(batch: BusMessage<SignalsMessage>[]): Promise<void> {
    await Promise.all([...byPartition(batch)].map(([p, msgs]) => this.serialize(p, () => this.applyPartition(p, msgs))));
  }

  /**
   * Checkpoints the partition's state (the offset included) if the checkpoint is still the one this
   * state grew from, then publishes the incidents it changed. When the checkpoint moved on, the
   * state here is dropped and {@link RewindError} asks the bus for everything since its last
   * commit again.
   */
  flush(partition: number): Promise<void> {
    return this.serialize(partition, async () => {
      if (this.rewind.delete(partition)) throw new RewindError(`correlator state of partition ${partition} was dropped: it moved on without this process`);
      const part = this.parts.get(partition);
      if (!part) return;
      try {
        await this.flushPart(partition, part);
      } catch (e) {
        if (e instanceof RewindError) this.rewind.delete(partition);
        throw e;
      }
    });
  }

  /**
   * Forgets the partitions the bus no longer assigns here (a rebalance); their uncommitted messages
   * go to the new owner. Fetches the group's commits for the next load of each assigned partition,
   * and the checkpoints of those not held here, while the consumer's first fetch is on its way (see
   * {@link checkpointLoss}): a checkpoint read now is the one the first batch would load, as nobody
   * else writes a partition assigned here (a previous owner's late save makes the first save here
   * fail as stale, which reloads the partition).
   */
  assigned(partitions: readonly number[]): void {
    this.preloads.clear();
    for (const p of partitions)
      if (!this.parts.has(p)) {
        const st = this.o.state.load(p);
        st.catch(() => undefined); // the load reads it again
        this.preloads.set(p, st);
      }
    if (this.o.history && partitions.length) {
      const early = { partitions: new Set(partitions), commits: this.o.history.committed(), arrived: false };
      // A failure is the loads' to handle (they fetch again).
      early.commits.then(
        () => (early.arrived = true),
        () => undefined,
      );
      this.assignedCommits = early;
    } else this.assignedCommits = undefined;
    const keep = new Set(partitions);
    for (const p of [...this.rebuilds.keys()]) if (!keep.has(p)) this.rebuilds.delete(p);
    for (const p of [...this.parts.keys()])
      if (!keep.has(p))
        void this.serialize(p, async () => {
          this.drop(p);
          this.rewind.delete(p);
        });
  }

  /**
   * Drops a partition's state whose messages were not all applied (a correlation worker thread
   * failed a batch the bus had already moved past): the next flush asks the bus for everything
   * since its last commit again, and the state is loaded from the checkpoint.
   */
  discard(partition: number): void {
    void this.serialize(partition, async () => {
      this.drop(partition);
      this.rebuilds.delete(partition);
    });
  }

  /**
   * What the bus commits with the partition's offsets after a flush: the generation of the
   * checkpoint the flush wrote or found ({@link commitMarker}). Kafka keeps it when Redis does not.
   */
  commitMetadata(partition: number): string | undefined {
    const part = this.parts.get(partition);
    return part ? commitMarker(part.generation) : undefined;
  }

  /** Applies and flushes a batch: a handler for a bus without checkpointing, and for tests. */
  async handle(batch: BusMessage<SignalsMessage>[]): Promise<void> {
    await this.apply(batch);
    await Promise.all([...byPartition(batch).keys()].map((p) => this.flush(p)));
  }

  /** Resolves quiet incidents in every owned partition. */
  async sweep(): Promise<Incident[]> {
    const out: Incident[] = [];
    for (const p of [...this.parts.keys()])
      await this.serialize(p, async () => {
        const part = this.parts.get(p);
        if (!part) return;
        // A partition the bus gave to another correlator: its state is not ours to sweep any more.
        if (!(await this.current(p, part))) {
          this.drop(p);
          return;
        }
        // Deferred changes first, so that what the sweep resolves is derived from the latest state.
        part.pending.incidents.push(...part.manager.finalize());
        const resolved = part.manager.sweep();
        part.pending.incidents.push(...resolved);
        try {
          await this.flushPart(p, part);
        } catch (e) {
          // The partition moved on: nothing resolved here counts, and the next flush rewinds.
          if (e instanceof RewindError) return;
          throw e;
        }
        out.push(...resolved);
      });
    return out;
  }

  /** Partitions whose state is loaded here. */
  get partitions(): number[] {
    return [...this.parts.keys()];
  }

  /** The incidents open in the partitions owned here. */
  openIncidents(): Incident[] {
    return [...this.parts.values()].flatMap((part) => part.manager.openIncidents());
  }

  /** The correlation engines' counters, summed over the partitions, those held before included. */
  engineStats(): CorrelationStats {
    const sum = { ...this.retired };
    for (const part of this.parts.values()) addStats(sum, part.manager.correlation.stats);
    return sum;
  }

  /** The incident managers' counters, summed over the partitions, those held before included. */
  incidentStats(): IncidentStats {
    const sum = { ...this.retiredIncidents };
    for (const part of this.parts.values()) addStats(sum, part.manager.stats);
    return sum;
  }

  /** The count budgets of the partitions held here, summed. */
  budget(): BudgetUse {
    const sum: BudgetUse = { openIncidents: { used: 0, max: 0 }, windowEntries: { used: 0, max: 0 }, prologueSignals: { used: 0, max: 0 }, floodIncidents: 0 };
    for (const part of this.parts.values()) addBudget(sum, part.manager.budget());
    return sum;
  }

  /** Forgets a partition's state, keeping its engine's counters. */
  private drop(p: number): void {
    const part = this.parts.get(p);
    if (!part) return;
    addStats(this.retired, part.manager.correlation.stats);
    addStats(this.retiredIncidents, part.manager.stats);
    this.parts.delete(p);
  }

  private async applyPartition(p: number, msgs: BusMessage<SignalsMessage>[]): Promise<void> {
    let part = this.parts.get(p);
    // Our copy is stale when the checkpoint moved on without us (another correlator owned the
    // partition meanwhile, or wrote a checkpoint and died before committing): reload it.
    if (!part || !(await this.current(p, part))) part = await this.load(p, msgs[0]);
    const applied = part.appliedOffset;
    // Redelivered messages (at or below the applied offset) come first in a batch, if at all: the
    // batch is taken whole, without an offset compared per message, when its first is new.
    const first = msgs[0]?.offset;
    const fresh =
      applied === undefined || first === undefined || BigInt(first) > applied
        ? msgs
        : msgs.filter((m) => {
            if (m.offset === undefined || BigInt(m.offset) > applied) return true;
            this.stats.skipped++;
            return false;
          });
    const m = part.manager;
    const signals: Signal[] = [];
    const changed = new Map<string, Incident>();
    // Incidents are finalized (derived, version bumped) once per flush, not once per batch; only a
    // lifecycle command needs them final before it applies.
    const flushSignals = () => {
      if (!signals.length) return;
      m.process(signals, { defer: true });
      part.pending.seen.push(...signals.map((s) => s.id));
      signals.length = 0;
    };
    for (const msg of fresh) {
      if (!isCommand(msg.value)) {
        if (!isSignal(msg.value)) {
          // Not something ingest writes: nothing to correlate, and it must not stop the partition.
          this.stats.invalid++;
          this.o.logger.warn({ partition: p, offset: msg.offset }, 'message on the signals topic is neither a signal nor a command; skipped');
          continue;
        }
        const s = withoutEvidence(msg.value);
        signals.push(this.o.source && msg.offset !== undefined ? rememberOffset(s, msg.offset) : s);
        continue;
      }
      flushSignals();
      for (const inc of m.finalize()) changed.set(inc.id, inc);
      const cmd = msg.value;
      const inc = m.get(cmd.incidentId);
      if (!inc) {
        this.stats.commandsRejected++;
        continue;
      }
      if (cmd.command === 'assign') {
        // Idempotent: assigning the same person again, or a resolved incident, changes nothing.
        const next = m.assign(inc, cmd.assignee);
        if (next !== inc) changed.set(next.id, next);
        continue;
      }
      try {
        const next = m.transition(inc, cmd.to, cmd.note, cmd.by);
        changed.set(next.id, next);
      } catch (e) {
        if (!(e instanceof InvalidTransitionError)) throw e;
        this.stats.commandsRejected++;
        this.o.logger.info({ incident: cmd.incidentId, to: cmd.to, reason: e.message }, 'incident command rejected');
      }
    }
    flushSignals();
    part.pending.incidents.push(...changed.values());
    const last = fresh[fresh.length - 1]?.offset;
    if (last !== undefined) {
      part.pending.offset = last;
      part.appliedOffset = BigInt(last);
    }
  }

  /** True when the checkpoint still ends where this correlator's copy of the partition started. */
  private async current(p: number, part: Part): Promise<boolean> {
    // With changes pending, the save itself checks (atomically) that nobody moved the checkpoint on.
    if (this.hasPending(part)) return true;
    return (await this.o.state.generation(p)) === part.generation;
  }

  private hasPending(part: Part): boolean {
    const c = part.pending;
    return c.incidents.length > 0 || c.seen.length > 0 || c.offset !== undefined || c.slots.size > 0 || c.prologue.size > 0;
  }

  /**
   * Checkpoints everything pending for a partition, then publishes the incidents it changed (the
   * checkpoint's outbox); on failure the changes stay pending, or unpublished, and are retried.
   */
  private async flushPart(p: number, part: Part): Promise<void> {
    if (part.verify) await this.verified(p, part);
    if (part.unpublished.length) await this.publish(part);
    const c = part.pending;
    c.incidents.push(...part.manager.finalize());
    this.encodeChanges(part);
    if (!this.hasPending(part)) return;
    // Latest version per incident only, each written once: the checkpoint's outbox and the
    // incidents topic get the same JSON. The partition's chain is held until the publish is done,
    // so nothing changes the incidents in between.
    const latest = new Map<string, Incident>();
    for (const i of c.incidents) latest.set(i.id, i);
    c.incidents = [...latest.values()];
    const out = c.incidents.map((i) => outgoing(i, incidentJson(i)));
    c.incidentJson = out.map((o) => o.json!);
    try {
      part.generation = await this.o.state.save(p, c, part.generation);
      // The bus commits after this: commits fetched before it are stale for a later load.
      this.assignedCommits?.partitions.delete(p);
    } catch (e) {
      if (!(e instanceof KubevigilError) || e.code !== 'STATE_STALE') throw e;
      this.stats.stale++;
      this.drop(p);
      this.rewind.add(p);
      this.o.logger.warn({ partition: p, reason: e.message }, 'correlator state moved on without this process; rebuilding it from the checkpoint');
      throw new RewindError(e.message, { cause: e });
    }
    this.o.metrics?.correlatedSignals.inc(c.seen.length);
    part.pending = emptyCheckpoint();
    // A rebuilt state's first checkpoint holds its open incidents as the incidents topic has them.
    const known = part.published;
    part.published = undefined;
    part.unpublished = known ? out.filter((o) => known.get(o.incident.id) !== o.incident.version) : out;
    await this.publish(part);
  }

  /**
   * Writes the changed window groups and prologues into the pending checkpoint, referring to
   * signals by offset only within {@link PartitionedCorrelatorOptions.maxRefDistance} of the
   * applied offset. Every quarter of that distance, groups and prologues whose stored form refers
   * further back are written again (in full for those signals): an idle group's references never
   * make a takeover read far back.
   */
  private encodeChanges(part: Part): void {
    const engine = part.manager.correlation;
    const applied = part.appliedOffset === undefined ? undefined : Number(part.appliedOffset);
    const oldest = applied === undefined ? Infinity : applied - this.maxRefDistance;
    if (applied !== undefined && applied - part.agedAt >= this.maxRefDistance / 4) {
      part.agedAt = applied;
      for (const [k, floor] of part.floors.slots) if (floor < oldest) engine.touch(k);
      for (const [k, floor] of part.floors.prologues) if (floor < oldest) part.manager.touchPrologue(k);
    }
    const c = part.pending;
    const { slots, prologues } = part.floors;
    for (const k of engine.takeDirty()) {
      const w = new SignalWriter(oldest);
      const json = engine.exportSlot(k, w.json) ?? null;
      c.slots.set(k, json);
      if (json !== null && w.floor !== Infinity) slots.set(k, w.floor);
      else slots.delete(k);
    }
    for (const [k, list] of part.manager.takePrologueChanges()) {
      const w = new SignalWriter(oldest);
      c.prologue.set(k, list && w.list(list));
      if (list && w.floor !== Infinity) prologues.set(k, w.floor);
      else prologues.delete(k);
    }
  }

  private async publish(part: Part): Promise<void> {
    const out = part.unpublished;
    if (out.length) await this.o.publish(out.map((o) => (o.json === undefined ? o.incident : withJson(o.incident, o.json))));
    part.unpublished = [];
    for (const o of out) this.o.metrics?.incidentUpdates.inc({ status: o.status, severity: o.severity });
  }

  /**
   * Loads a partition's state from its checkpoint, or rebuilds it when the checkpoint was lost;
   * `first` is the first message the state is loaded for.
   */
  private async load(p: number, first?: BusMessage<SignalsMessage>): Promise<Part> {
    const next = first?.offset === undefined ? undefined : BigInt(first.offset);
    const running = this.rebuilds.get(p);
    // A rebuild accounts for the messages before its offset: one that stops short of this batch misses some.
    if (running && next !== undefined && running.next >= next) return this.install(p, await this.awaitRebuild(p, running));
    this.rebuilds.delete(p);
    const preloaded = this.preloads.get(p);
    this.preloads.delete(p);
    const st = await (preloaded?.catch(() => this.o.state.load(p)) ?? this.o.state.load(p));
    let loss: Loss | undefined;
    let verify: Part['verify'];
    const early = this.assignedCommits;
    if (next !== undefined && early?.partitions.has(p) && !early.arrived) {
      // The commits fetched at the assignment are still on their way (kafkajs' group coordinator
      // lookup and offset fetch took 100–170 ms, longer than the first fetch of messages): the batch
      // goes ahead on the state as loaded, and the first flush, before anything is saved or
      // published, waits for them. A checkpoint found lost then is rebuilt after a rewind.
      verify = { st, loss: this.checkpointLoss(p, st) };
      verify.loss.catch(() => undefined); // awaited by the first flush
    } else if (next !== undefined) loss = await this.checkpointLoss(p, st);
    if (loss && next !== undefined) {
      // Kafka's timestamps are wall-clock: anchor the lookback where the lost state stopped, when the
      // signal that follows it says (a correlator that was down or behind needs that older state).
      const value = first!.value;
      const anchor = Math.min(Date.now(), isSignal(value) && Number.isFinite(value.observedTime) ? value.observedTime : Infinity);
      const rebuild: Rebuild = { next, part: this.rebuild(p, st, loss, next, anchor) };
      rebuild.part.catch(() => undefined); // awaited below, or dropped with a rebalance
      this.rebuilds.set(p, rebuild);
      return this.install(p, await this.awaitRebuild(p, rebuild));
    }
    const restoredBefore = this.stats.restored;
    const signalOf = await this.restoreSignals(p, st);
    const engine = new CorrelationEngine(this.correlations, this.o.limits);
    const manager = this.manager(engine);
    for (const [key, slot] of st.slots) {
      if (!slot.signals) continue; // a window from another version's format: rebuilt by new signals
      const signals: SlotState['signals'] = {};
      // A window entry whose signal cannot be restored is dropped by importSlot.
      for (const [id, s] of Object.entries(slot.signals)) {
        const signal = signalOf(s);
        if (signal) signals[id] = signal;
      }
      engine.importSlot(key, { signals, windows: slot.windows });
    }
    manager.restore(st.incidents);
    manager.restoreSeen(
      st.prologue.map(([k, list]) => [k, list.flatMap((s) => signalOf(s) ?? [])]),
      st.seen,
    );
    manager.trackChanges();
    // The last checkpoint's incidents may not have been published (its writer died in between).
    const part: Part = {
      manager,
      generation: st.generation,
      pending: emptyCheckpoint(),
      unpublished: st.outbox.map((i) => outgoing(i)),
      floors: { slots: floors(st.slots.map(([k, slot]) => [k, Object.values(slot.signals ?? {})])), prologues: floors(st.prologue) },
      agedAt: st.offset === undefined ? 0 : Number(st.offset),
      ...(st.offset !== undefined ? { appliedOffset: BigInt(st.offset) } : {}),
      ...(verify ? { verify } : {}),
    };
    // An outbox is published once the checkpoint is known not to be lost: one Redis holds from
    // before the group's commit has older versions than the incidents topic.
    if (part.unpublished.length && !verify) await this.publish(part);
    this.o.logger.info(
      { partition: p, offset: st.offset, incidents: st.incidents.length, groups: st.slots.length, restoredSignals: this.stats.restored - restoredBefore },
      'correlator state loaded',
    );
    return this.install(p, part);
  }

  /** Makes `part` the partition's state here. */
  private install(p: number, part: Part): Part {
    // A state built while the rules were reloaded runs the new correlations too.
    if (part.manager.correlation.correlations !== this.correlations) part.manager.correlation.replaceCorrelations(this.correlations);
    this.drop(p);
    this.parts.set(p, part);
    this.stats.loads++;
    return part;
  }

  private manager(engine: CorrelationEngine): IncidentManager {
    const manager = new IncidentManager(engine, this.o.clock, this.o.policy ?? {}, this.o.usage);
    if (this.o.baseline) manager.baseline = this.o.baseline;
    if (this.o.inventory) manager.inventory = this.o.inventory;
    if (this.o.silencer) manager.silencer = this.o.silencer;
    return manager;
  }

  /** Whether Redis lost the partition's checkpoint `st` ({@link lossOf}), by the group's commits. */
  private async checkpointLoss(p: number, st: PartitionState): Promise<Loss | undefined> {
    const history = this.o.history;
    if (!history) return undefined;
    // The commits fetched at the assignment serve a partition's next load unless it was flushed
    // here since (this correlator commits after a flush): nobody else commits a partition assigned
    // here (Kafka refuses the commits of a member that lost it). Fetched partition by partition at
    // each first batch, they held the start of a drain up by 100–250 ms. Later loads fetch again.
    const early = this.assignedCommits;
    const commits = early?.partitions.delete(p) ? await early.commits.catch(() => history.committed()) : await history.committed();
    return lossOf(commits.get(p), st);
  }

  /**
   * Before the first save of a state loaded ahead of the group's commits ({@link load}): waits for
   * them, and when they show the checkpoint it loaded was lost, drops the state and asks the bus for
   * the messages since its last commit again ({@link RewindError}), whose load rebuilds it. A failed
   * fetch fails the flush (the bus retries it) and is tried again.
   */
  private async verified(p: number, part: Part): Promise<void> {
    const v = part.verify!;
    let loss: Loss | undefined;
    try {
      loss = await v.loss;
    } catch (e) {
      v.loss = this.checkpointLoss(p, v.st);
      v.loss.catch(() => undefined);
      throw e;
    }
    part.verify = undefined;
    if (!loss) return;
    this.drop(p);
    this.rewind.add(p);
    this.o.logger.warn(
      { partition: p, reason: loss.reason },
      'correlator checkpoint found lost at the first flush after loading it; offering the partition again to rebuild it',
    );
    throw new RewindError(`correlator checkpoint of partition ${p} was lost (${loss.reason}): rebuilding it`);
  }

  /** Waits for a rebuild, at most {@link PartitionedCorrelatorOptions.rebuildWaitMs}; the batch fails retryably while it runs. */
  private async awaitRebuild(p: number, rebuild: Rebuild): Promise<Part> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.o.rebuildWaitMs ?? 5000)));
    let part: Part | undefined;
    try {
      part = await Promise.race([rebuild.part, timeout]);
    } catch (e) {
      if (this.rebuilds.get(p) === rebuild) this.rebuilds.delete(p);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (!part)
      // Not available yet rather than failed: the same retry, without a new rebuild.
      throw new KubevigilError(
        'STATE_UNAVAILABLE',
        `correlator state of partition ${p} is being rebuilt from the signals topic (its checkpoint was lost); the batch is retried until it is done`,
        true,
        1,
      );
    if (this.rebuilds.get(p) === rebuild) this.rebuilds.delete(p);
    return part;
  }

  /**
   * Rebuilds a lost checkpoint: replays the partition's signals over the correlation horizon before
   * `anchor` (the longest window or quiet period, the lateness, a margin) up to offset `next`, and
   * takes its open incidents from the incidents topic, where they have their ids and versions. The
   * replay restores windows and prologues; its own incidents are not kept (they would differ in
   * version and, for attacks that began before the horizon, in id). Nothing is published: the
   * first checkpoint replaces what Redis holds of the partition.
   */
  private async rebuild(p: number, st: PartitionState, loss: Loss, next: bigint, anchor: number): Promise<Part> {
    const history = this.o.history!;
    const started = Date.now();
    this.o.logger.warn(
      { partition: p, reason: loss.reason, generation: st.generation, committedGeneration: loss.committed, offset: next.toString() },
      loss.reason === 'checkpoint_lost'
        ? 'correlator checkpoint lost: Redis has none for a partition with committed offsets (restarted without persistence, flushed, or failed over); rebuilding it from the signals and incidents topics'
        : 'correlator checkpoint behind the committed offsets: Redis came back with an older one; rebuilding it from the signals and incidents topics',
    );
    const since = anchor - this.horizonMs();
    const max = this.o.rebuildMaxMessages ?? DEFAULT_REBUILD_MAX_MESSAGES;
    const [msgs, published] = await Promise.all([history.signals(p, since, next.toString(), max), history.incidents(since)]);
    const engine = new CorrelationEngine(this.correlations, this.o.limits);
    const scratch = new IncidentManager(engine, this.o.clock, this.o.policy ?? {});
    scratch.trackChanges();
    const signals: Signal[] = [];
    const actors = new Set<string>();
    const commanded = new Set<string>();
    for (const m of msgs) {
      actors.add(m.key);
      if (isCommand(m.value)) commanded.add(m.value.incidentId);
      else if (isSignal(m.value)) {
        const s = withoutEvidence(m.value);
        actors.add(s.actor.key);
        signals.push(m.offset === undefined ? s : rememberOffset(s, m.offset));
      }
    }
    // Without the baseline: a replay must not teach it the same actions twice.
    scratch.process(signals, { defer: true });
    // An incident's signals all come from this partition's actors, so one of them active here
    // (or a command about it) makes it this partition's.
    const open = published.filter(
      (i) => i.status !== 'resolved' && (commanded.has(i.id) || actors.has(i.actor.key) || i.timeline.some((e) => actors.has(e.actor))),
    );
    const manager = this.manager(engine);
    manager.restore(open);
    const inIncidents = new Set(open.flatMap((i) => i.timeline.map((e) => e.signalId)));
    const prologues: [string, readonly PackedSignal[]][] = [];
    for (const [k, list] of scratch.takePrologueChanges()) {
      const keep = (list ?? []).filter((s) => !inIncidents.has(s.id));
      if (keep.length) prologues.push([k, keep]);
    }
    manager.restoreSeen(
      prologues,
      signals.map((s) => s.id),
    );
    manager.trackChanges();
    for (const [k] of prologues) manager.touchPrologue(k);
    // The replay's firings and evictions were counted when they happened.
    for (const k of Object.keys(engine.stats) as (keyof CorrelationStats)[]) engine.stats[k] = 0;
    const pending: PartitionCheckpoint = {
      ...emptyCheckpoint(),
      replace: { generationAbove: loss.committed },
      incidents: [...open],
      seen: signals.map((s) => s.id),
      ...(next > 0n ? { offset: (next - 1n).toString() } : {}),
    };
    this.stats.rebuilds++;
    this.o.metrics?.stateRebuilds.inc({ reason: loss.reason });
    const log = { partition: p, replayed: msgs.length, signals: signals.length, incidents: open.length, groups: engine.size, ms: Date.now() - started };
    if (msgs.length >= max)
      this.o.logger.warn({ ...log, max }, 'correlator state rebuilt from the latest signals only: the partition had more within the correlation horizon');
    else this.o.logger.info(log, 'correlator state rebuilt');
    return {
      manager,
      generation: st.generation,
      pending,
      unpublished: [],
      floors: { slots: new Map(), prologues: new Map() },
      agedAt: Number(next - 1n),
      ...(next > 0n ? { appliedOffset: next - 1n } : {}),
      published: new Map(open.map((i) => [i.id, i.version])),
    };
  }

  /** How far back a rebuild replays: the longest correlation window or quiet period, the allowed lateness, and a margin. */
  private horizonMs(): number {
    const quiet = this.o.policy?.quietPeriodMs ?? DEFAULT_INCIDENT_POLICY.quietPeriodMs;
    return Math.max(quiet, ...this.correlations.map((c) => c.timespanMs)) + DEFAULT_CORRELATION_LIMITS.allowedLatenessMs + REBUILD_MARGIN_MS;
  }

  /**
   * Reads the window and prologue signals a checkpoint refers to back from the signals topic, and
   * returns how to turn a stored signal into a signal (undefined when it cannot be restored: the
   * topic's retention removed it, or this correlator has no source). Only window signals count as
   * missing: windows expire within their timespan, while a prologue may keep an actor's signals for
   * days, and one older than the quiet period never joins an incident anyway.
   */
  private async restoreSignals(p: number, st: PartitionState): Promise<(s: StoredSignal) => Signal | undefined> {
    const windowRefs = new Map<string, string>(); // offset → id
    const prologueRefs = new Map<string, string>();
    for (const [, slot] of st.slots)
      for (const id in slot.signals ?? {}) {
        const s = slot.signals[id]!;
        if (isRef(s)) windowRefs.set(s.$offset, s.id);
      }
    for (const [, list] of st.prologue) for (const s of list) if (isRef(s)) prologueRefs.set(s.$offset, s.id);
    // References reach at most about maxRefDistance back (see encodeChanges); anything older (a
    // checkpoint written otherwise) is not read, so that a takeover never reads far back.
    const oldest = st.offset === undefined ? -Infinity : Number(st.offset) - 2 * this.maxRefDistance;
    const offsets = new Set([...windowRefs.keys(), ...prologueRefs.keys()].filter((o) => Number(o) >= oldest));
    const read = offsets.size && this.o.source ? await this.o.source.read(p, [...offsets]) : new Map<string, SignalsMessage>();
    const restored = new Map<string, Signal>();
    for (const [offset, m] of read) {
      // A message at a referenced offset with another id (the topic was recreated) restores nothing.
      if (!isCommand(m) && m.id === (windowRefs.get(offset) ?? prologueRefs.get(offset))) restored.set(offset, rememberOffset(withoutEvidence(m), offset));
    }
    const missing = [...windowRefs.keys()].filter((o) => !restored.has(o)).length;
    this.stats.restored += restored.size;
    this.stats.unrestorable += missing;
    if (restored.size) this.o.metrics?.restoredSignals.inc({ result: 'restored' }, restored.size);
    if (missing) {
      this.o.metrics?.restoredSignals.inc({ result: 'missing' }, missing);
      this.o.logger.warn(
        { partition: p, missing, referenced: windowRefs.size },
        this.o.source
          ? 'window signals the checkpoint refers to are no longer on the signals topic (its retention is shorter than the windows); those windows restart without them'
          : 'the checkpoint refers to window signals by offset but this correlator has no signal source; those windows restart without them',
      );
    }
    return (s) => (isRef(s) ? restored.get(s.$offset) : withoutEvidence(s));
  }

  private serialize<T>(partition: number, fn: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(partition) ?? Promise.resolve()).then(fn, fn);
    this.chains.set(
      partition,
      run.catch(() => undefined),
    );
    return run;
  }
}

/**
 * Whether a checkpoint Redis returned was lost, given the group's commit of its partition: the
 * group committed (only ever after a checkpoint) but Redis has none, or one older than the
 * generation the commit recorded.
 */
function lossOf(committed: GroupCommit | undefined, st: PartitionState): Loss | undefined {
  if (!committed) return undefined;
  const generation = committed.generation ?? 0;
  if (st.generation === 0) return { reason: 'checkpoint_lost', committed: generation };
  if (st.generation < generation) return { reason: 'checkpoint_behind', committed: generation };
  return undefined;
}

function addStats<T extends CorrelationStats | IncidentStats>(to: T, from: T): void {
  for (const k of Object.keys(to) as (keyof T)[]) (to[k] as number) += from[k] as number;
}

/** Per stored group, the lowest offset it refers to (groups that refer to none are left out). */
function floors(groups: [string, StoredSignal[]][]): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, list] of groups) {
    let floor = Infinity;
    for (const s of list) if (isRef(s)) floor = Math.min(floor, Number(s.$offset));
    if (floor !== Infinity) out.set(k, floor);
  }
  return out;
}

/** Messages grouped by partition, in their order. */
function byPartition(batch: BusMessage<SignalsMessage>[]): Map<number, BusMessage<SignalsMessage>[]> {
  const out = new Map<number, BusMessage<SignalsMessage>[]>();
  for (const m of batch) {
    const p = m.partition ?? 0;
    let list = out.get(p);
    if (!list) out.set(p, (list = []));
    list.push(m);
  }
  return out;
}
