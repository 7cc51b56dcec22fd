/**
 * The incident manager: signals in, incidents out — one incident per attack.
 *
 * - A signal joins the open incident that shares one of its *merge keys*: the actor, a pod, or a
 *   RBAC binding. Namespaces, secrets and IPs are deliberately not merge keys: unrelated workloads
 *   share them, and merging on them would glue unrelated attacks together.
 * - A correlation rule that fires opens an incident with the signals of its window (or adds them to
 *   the incident that shares their keys). A single signal at or above `openOnSeverity` opens one too.
 * - When a signal's keys point at two open incidents, the younger is merged into the older.
 * - The sweeper resolves incidents after a quiet period and at a lifetime cap. A resolved incident
 *   is never reused: the next signal opens a new one.
 *
 * Severity is never below the worst signal's; it is the highest of the signals, the correlations
 * matched, and one level more when the incident shows both an allowed sensitive action and at
 * least three distinct kinds of attack signal or two correlations.
 */
import { createHash } from 'node:crypto';
import { KubevigilError } from './errors.js';
import { appended, type CorrelationEngine, type Firing } from './correlation/engine.js';
import { encodeId, PackedSignal, type SignalLike } from './correlation/packed.js';
import { entityType } from './entities.js';
import { timelineEntry, type BlastRadius, type Incident, type IncidentLimits, type IncidentStatus } from './incident.js';
import type { Clock, UsageSource } from './ports.js';
import { RecentIds } from './recent-ids.js';
import type { IdentityBaseline } from './baseline.js';
import type { ClusterInventory } from './inventory.js';
import { answersKey, RecordingInventory, type InventoryQuery } from './remediation/inventory-answers.js';
import { planRemediations, type PermissionUse } from './remediation/planner.js';
import { analyzeRootCause, describeActing, readableTitle } from './root-cause.js';
import { maxSeverity, SEVERITIES, severityRank, type Severity } from './severity.js';
import { hasTrait } from './signal-kinds.js';
import { isSharedList, type Signal } from './signal.js';

/** How incidents open, merge and close. */
export interface IncidentPolicy {
  /** A single signal this severe opens an incident by itself. */
  openOnSeverity: Severity;
  /** Resolve after this long without a new signal (processing time). */
  quietPeriodMs: number;
  /** Resolve this long after opening, however busy: a trickle cannot keep one open forever. */
  maxLifetimeMs: number;
  limits: IncidentLimits;
  /** Signal ids remembered to drop redeliveries. */
  dedupEntries: number;
  /** Recent signals kept per actor, so an incident opened later still shows how it began. */
  lookbackSignals: number;
  /** Actors whose recent signals are kept (least recently active forgotten first). */
  lookbackActors: number;
  /** Prologue signals kept over all actors (least recently active actors forgotten first). */
  lookbackTotal: number;
  /**
   * Open incidents held at most. Past it, opening one resolves the least severe, least recently
   * updated open incident early (resolution `evicted`), or, when every open one is more severe,
   * the new one is not opened (its signals are kept as its actor's prologue).
   */
  maxOpenIncidents: number;
  /** More distinct actors than this opening incidents of one pattern within {@link floodWindowMs} makes the rest one flood incident. */
  floodActors: number;
  floodWindowMs: number;
}

/** Defaults: 30 minutes quiet, 24 hours at most, 200 timeline entries. */
export const DEFAULT_INCIDENT_POLICY: IncidentPolicy = {
  openOnSeverity: 'high',
  quietPeriodMs: 30 * 60_000,
  maxLifetimeMs: 24 * 3_600_000,
  limits: { maxTimeline: 200, maxEntities: 500 },
  dedupEntries: 500_000,
  lookbackSignals: 32,
  lookbackActors: 50_000,
  lookbackTotal: 30_000,
  maxOpenIncidents: 2_000,
  floodActors: 200,
  floodWindowMs: 10 * 60_000,
};

/** Distinct actors remembered per flood pattern; past it, new actors are counted without being remembered. */
const FLOOD_ACTORS_KEPT = 100_000;
/** Actors a flood incident is found by (their actor keys only, not their pods and bindings); later ones join it through their pattern. */
const FLOOD_KEYS = 100_000;
/** A flood incident is written (stored, published, checkpointed) at most this often unless something material changes. */
const FLOOD_FLUSH_MS = 30_000;
/** Correlation matches an incident lists; the rule ids are kept in `rules` whatever the count. */
const MAX_CORRELATION_MATCHES = 100;
/** Actors a flood incident names as a sample. */
const FLOOD_SAMPLE = 10;
/** Silences an incident lists as having hidden its signals, and signal ids listed per silence. */
const MAX_SILENCES_LISTED = 20;
const MAX_SILENCED_IDS = 50;

/** Prologues shorter than this grow by copying, at their exact length. */
const PROLOGUE_SHORT = 8;

/** Per pattern: the distinct actors that opened incidents of it in the current window, and its flood incident. */
interface FloodState {
  since: number;
  actors: Set<string>;
  count: number;
  incidentId?: string;
  /** What the flood incident looked like when last written, see {@link IncidentManager.markDirty}. */
  written?: { shape: string; time: number; actors: number };
}

/** A lifecycle change that is not allowed (acknowledging a resolved incident, say). */
export class InvalidTransitionError extends KubevigilError {
  constructor(from: IncidentStatus, to: IncidentStatus) {
    super('INVALID_TRANSITION', `an incident that is ${from} cannot become ${to}; allowed: open → acknowledged → resolved`, false);
  }
}

export const TRANSITIONS: Record<IncidentStatus, IncidentStatus[]> = { open: ['acknowledged', 'resolved'], acknowledged: ['resolved'], resolved: [] };
// Pods and bindings join incidents; nodes, namespaces, secrets and IPs are shared by unrelated workloads.
const MERGE_TYPES = new Set(['pod', 'binding']);

/**
 * Merge keys of a signal: its actor and the pods and bindings it involves. The bootstrap bindings
 * (`system:basic-user`, `system:discovery`, …) grant every authenticated identity a little; they
 * would join unrelated attacks, so they are not merge keys.
 */
function mergeKeys(s: Signal): string[] {
  const keys = [s.actor.key];
  for (const e of s.entities) {
    const t = entityType(e);
    if (!t || !MERGE_TYPES.has(t) || e === 'user:system:anonymous') continue;
    if (t === 'binding' && /^binding:ClusterRoleBinding\/system:/.test(e)) continue;
    keys.push(e);
  }
  return keys;
}

/** The merge keys of an incident: every actor of its timeline, and its pods and bindings (as {@link mergeKeys}). */
function mergeKeysOf(inc: Incident): string[] {
  const keys = new Set([inc.actor.key, ...inc.timeline.map((e) => e.actor)]);
  for (const e of inc.entities) {
    const t = entityType(e);
    if (t && MERGE_TYPES.has(t) && !(t === 'binding' && /^binding:ClusterRoleBinding\/system:/.test(e))) keys.add(e);
  }
  keys.delete('user:system:anonymous');
  keys.add(inc.actor.key);
  return [...keys];
}

/** What eviction keeps longest: the more severe first (then, among equals, the more recently updated). */
function keepRank(inc: Incident): number {
  return severityRank(inc.severity);
}

function emptyRadius(): BlastRadius {
  return { namespaces: [], workloads: [], secrets: [], bindings: [], policies: [] };
}

/** Counters of what the manager did. */
export interface IncidentStats {
  opened: number;
  merged: number;
  duplicates: number;
  resolved: number;
  /** Open incidents resolved early to stay within {@link IncidentPolicy.maxOpenIncidents}. */
  evicted: number;
  /** Incidents not opened because every open one was more severe and the budget was full. */
  refused: number;
  /** Signals that joined a flood incident instead of opening an incident of their own. */
  flooded: number;
  /** Prologue signals forgotten to stay within the lookback bounds. */
  prologueEvicted: number;
}

/** How much of each count budget is in use. */
export interface BudgetUse {
  openIncidents: { used: number; max: number };
  windowEntries: { used: number; max: number };
  prologueSignals: { used: number; max: number };
  /** Open flood incidents (many actors, one pattern). */
  floodIncidents: number;
}

/** Adds one budget use to another (partitions of one correlator). */
export function addBudget(to: BudgetUse, from: BudgetUse): BudgetUse {
  for (const k of ['openIncidents', 'windowEntries', 'prologueSignals'] as const) {
    to[k].used += from[k].used;
    to[k].max += from[k].max;
  }
  to.floodIncidents += from.floodIncidents;
  return to;
}

/** Most merge key arrays remembered per incident (see IncidentManager.attachedKeys); past it, the memory starts again. */
const ATTACHED_KEYS = 1024;

/** Keeps the open incidents and turns signals and correlation firings into incident changes. */
export class IncidentManager {
  private readonly open = new Map<string, Incident>();
  private readonly byKey = new Map<string, string>();
  private readonly keysOf = new Map<string, Set<string>>();
  /** What each open incident's remediation plan was computed from, and the questions it asked the cluster inventory. */
  private readonly planKeys = new Map<string, { key: string; queries: InventoryQuery[] }>();
  private readonly seen: RecentIds;
  private readonly dirty = new Set<Incident>();
  /** Signal ids per timeline array, see {@link timelineIds}. */
  private readonly idsByTimeline = new WeakMap<Incident['timeline'], Set<string>>();
  /** Entity keys per entities array, see {@link entitySet}. */
  private readonly entitySets = new WeakMap<string[], Set<string>>();
  /**
   * Merge keys per entity list: they follow from the actor and its entities, and packing shares one
   * list among the signals that have it (see correlation/packed.ts), so a signal with the list of
   * an earlier one of its actor reuses that one's keys (the actor key is their first).
   */
  private readonly keysByEntities = new WeakMap<string[], string[]>();
  /**
   * Per open incident, the shared merge keys (as above: one array per actor and entity list) of the
   * signals attached to it one by one: a signal with the same actor and list adds no entity, and its
   * merge keys are the incident's already (see {@link attach}).
   */
  private readonly attachedKeys = new WeakMap<Incident, Set<string[]>>();
  /** Per actor, the latest signals that joined no incident: the prologue of an incident opened later (packed, see packed.ts). */
  private readonly prologue = new Map<string, PackedSignal[]>();
  /** Actors whose prologue changed since the last checkpoint, when tracking is on (distributed mode). */
  private changedPrologue?: Set<string>;
  /** Signals held in prologues, over all actors. */
  private prologueSignals = 0;
  private readonly floods = new Map<string, FloodState>();
  readonly stats: IncidentStats = { opened: 0, merged: 0, duplicates: 0, resolved: 0, evicted: 0, refused: 0, flooded: 0, prologueEvicted: 0 };
  /** Per-identity memory of routine actions; signals are annotated with it before correlation. */
  baseline?: IdentityBaseline;
  /** The live cluster (services/inventory/), when configured: root cause and remediation check their facts against it. */
  inventory?: ClusterInventory;
  /** The id of the silence that hides a signal, if one does (services/silences.ts); see {@link recordSilenced}. */
  silencer?: (s: Signal) => string | undefined;
  private readonly policy: IncidentPolicy;
  /** When signals were last fed, by the clock (see {@link sweep}); the start counts as a feed. */
  private fedAt: number;

  constructor(
    private readonly engine: CorrelationEngine,
    private readonly clock: Clock,
    policy: Partial<IncidentPolicy> = {},
    private readonly usage?: UsageSource,
  ) {
    this.policy = { ...DEFAULT_INCIDENT_POLICY, ...policy };
    this.fedAt = clock.now();
    this.seen = new RecentIds(this.policy.dedupEntries);
    // Windows keep the same packed signals as prologues (see correlation/packed.ts).
    engine.packSignals();
  }

  /** Resumes open incidents after a restart (from the store), so an attack keeps its incident id. */
  restore(incidents: readonly Incident[]): void {
    // The same budget as a run: the most severe, most recent are held; the rest are resolved as
    // evicted (returned by the next finalize, so that the store and the bus learn it).
    const open = incidents.filter((i) => i.status !== 'resolved').sort((a, b) => keepRank(b) - keepRank(a) || b.updatedAt - a.updatedAt);
    const room = Math.max(0, this.policy.maxOpenIncidents - this.open.size);
    for (const inc of open.slice(0, room)) {
      this.open.set(inc.id, inc);
      for (const e of inc.timeline) this.seen.add(e.signalId);
      this.index(inc, mergeKeysOf(inc));
      if (inc.flood)
        this.floods.set(inc.flood.pattern, { since: this.clock.now(), actors: new Set(inc.flood.sample), count: inc.flood.actors, incidentId: inc.id });
    }
    for (const inc of open.slice(room)) this.dirty.add(this.evicted(inc));
  }

  /** The correlation engine this manager feeds. */
  get correlation(): CorrelationEngine {
    return this.engine;
  }

  /** Starts recording prologue changes, so a checkpoint writes only those. */
  trackChanges(): void {
    this.changedPrologue ??= new Set();
    this.engine.trackChanges();
  }

  /** Prologues changed since the last call (null when emptied), packed ({@link PackedSignal.signal} rebuilds a signal). */
  takePrologueChanges(): Map<string, readonly PackedSignal[] | null> {
    const out = new Map<string, readonly PackedSignal[] | null>();
    for (const k of this.changedPrologue ?? []) out.set(k, this.prologue.get(k) ?? null);
    this.changedPrologue?.clear();
    return out;
  }

  /** Marks an actor's prologue changed, so that the next checkpoint writes it again (its stored form aged). */
  touchPrologue(key: string): void {
    // A prologue that is gone is written as gone.
    this.changedPrologue?.add(key);
  }

  /** Restores prologues and the ids already processed, from a checkpoint. */
  restoreSeen(prologues: Iterable<[string, readonly SignalLike[]]>, seenIds: Iterable<string>): void {
    for (const [k, signals] of prologues) {
      const list: PackedSignal[] = [];
      for (const s of signals) list.push(s instanceof PackedSignal ? s : PackedSignal.pack(s, undefined, list[list.length - 1]));
      this.prologueSignals += list.length - (this.prologue.get(k)?.length ?? 0);
      this.prologue.set(k, list);
    }
    this.trimPrologue();
    for (const id of seenIds) this.seen.add(id);
  }

  /** What the count budgets hold now, and their limits (for /readyz). */
  budget(): BudgetUse {
    let floods = 0;
    for (const f of this.floods.values()) if (f.incidentId && this.open.has(f.incidentId)) floods++;
    return {
      openIncidents: { used: this.open.size, max: this.policy.maxOpenIncidents },
      windowEntries: { used: this.engine.entries, max: this.engine.maxEntries },
      prologueSignals: { used: this.prologueSignals, max: this.policy.lookbackTotal },
      floodIncidents: floods,
    };
  }

  /** True when this signal id was processed already (redelivery). */
  hasSeen(id: string): boolean {
    return this.seen.has(id);
  }

  /** Open and acknowledged incidents. */
  openIncidents(): Incident[] {
    return [...this.open.values()];
  }

  get(id: string): Incident | undefined {
    return this.open.get(id);
  }

  /**
   * Processes a batch of signals; returns the incidents that changed (new, updated, merged away),
   * each finalized once: title, severity, root cause and remediations recomputed, version bumped.
   * With `defer`, changed incidents stay pending and none is returned: {@link finalize} returns them
   * later, once for many batches (call it before any {@link transition}).
   */
  process(signals: readonly Signal[], opts: { defer?: boolean } = {}): { incidents: Incident[]; attached: { incidentId: string; signal: Signal }[] } {
    const attached: { incidentId: string; signal: Signal }[] = [];
    if (signals.length) this.fedAt = this.clock.now();
    for (const raw of signals) {
      // The id encoded as packed signals keep it, parsed once for both.
      const key = this.seen.addNew(raw.id);
      if (key === undefined) {
        this.stats.duplicates++;
        continue;
      }
      // Judged against what the identity did before: first time, or routine (one step lower).
      const s = this.baseline ? this.baseline.annotate(raw) : raw;
      const silence = this.silencer?.(s);
      if (silence !== undefined) {
        this.recordSilenced(s, silence, attached);
        continue;
      }
      const firings = this.engine.process(s, key);
      // The entity list as packing shares it: the same array for every signal that has it; for a
      // signal no window kept, the list it was read with, when signals read from the bus share it.
      const list = this.engine.packedOf(s)?.shared?.entities ?? (isSharedList(s.entities) ? s.entities : undefined);
      let keys = list && this.keysByEntities.get(list);
      if (keys?.[0] !== s.actor.key) {
        keys = mergeKeys(s);
        if (list) this.keysByEntities.set(list, keys);
      }
      let inc = this.find(keys);
      if (inc) this.attach(inc, [s], attached, keys, list);
      // Building blocks last: they only enrich an incident that a real correlation (or the signal) opened.
      for (const f of firings.sort((a, b) => Number(a.correlation.buildingBlock) - Number(b.correlation.buildingBlock))) inc = this.onFiring(f, inc, attached);
      if (!inc && severityRank(s.severity) >= severityRank(this.policy.openOnSeverity)) inc = this.openWithin([s], undefined, attached);
      if (!inc) this.remember(s, key);
    }
    return { incidents: opts.defer ? [] : this.finalize(), attached };
  }

  /**
   * A silenced signal feeds no window, opens and escalates nothing and joins no prologue; it is
   * listed (and its signal stored) on its actor's open incident, if there is one, so readers see
   * what the silence hid.
   */
  private recordSilenced(s: Signal, silenceId: string, attached: { incidentId: string; signal: Signal }[]): void {
    const id = this.byKey.get(s.actor.key);
    const inc = id === undefined ? undefined : this.open.get(id);
    if (!inc) return;
    const list = (inc.silenced ??= []);
    let entry = list.find((e) => e.silenceId === silenceId);
    if (!entry) {
      if (list.length >= MAX_SILENCES_LISTED) return;
      list.push((entry = { silenceId, signalIds: [], count: 0 }));
    }
    if (entry.signalIds.includes(s.id)) return;
    entry.count++;
    if (entry.signalIds.length < MAX_SILENCED_IDS) entry.signalIds.push(s.id);
    attached.push({ incidentId: inc.id, signal: s });
    this.markDirty(inc);
  }

  /** Acknowledges or resolves an incident; throws {@link InvalidTransitionError}. */
  transition(inc: Incident, to: IncidentStatus, note: string, by?: string): Incident {
    if (!TRANSITIONS[inc.status].includes(to)) throw new InvalidTransitionError(inc.status, to);
    const now = this.clock.now();
    const next: Incident = {
      ...inc,
      status: to,
      notes: [...inc.notes, { time: now, status: to, note, ...(by ? { by } : {}) }],
      updatedAt: now,
      version: inc.version + 1,
    };
    if (to === 'resolved') {
      next.resolvedAt = now;
      next.resolution = 'manual';
      this.close(next);
    } else if (this.open.has(inc.id)) this.open.set(inc.id, next);
    return next;
  }

  /** Names who works on an incident; a resolved one is final and is returned unchanged. */
  assign(inc: Incident, assignee: string): Incident {
    if (inc.status === 'resolved' || inc.assignee === assignee) return inc;
    const next: Incident = { ...inc, assignee, updatedAt: this.clock.now(), version: inc.version + 1 };
    if (this.open.has(inc.id)) this.open.set(inc.id, next);
    return next;
  }

  /** Resolves incidents that went quiet or reached their lifetime cap. */
  sweep(): Incident[] {
    const now = this.clock.now();
    // Windows nobody has fed for longer than their timespan are forgotten (and, distributed,
    // deleted from the checkpoint), by event time: the newest event fed, moved on by the time
    // nothing was fed since, never past the clock. Live, that is the clock; a replay of last week's
    // audit log keeps its windows while it is fed (the clock would expire them between two of its
    // batches, and a correlation would then depend on when the sweep ran); an idle stream's
    // windows go as the clock moves on.
    const idle = Math.max(0, now - this.fedAt);
    this.engine.expire(Math.min(now, this.engine.newestEventTime + idle));
    const out: Incident[] = [];
    for (const inc of [...this.open.values()]) {
      const quiet = now - inc.updatedAt >= this.policy.quietPeriodMs;
      const old = now - inc.createdAt >= this.policy.maxLifetimeMs;
      if (!quiet && !old) continue;
      const next: Incident = { ...inc, status: 'resolved', resolvedAt: now, resolution: old ? 'lifetime' : 'quiet', updatedAt: now, version: inc.version + 1 };
      next.notes = [
        ...inc.notes,
        {
          time: now,
          status: 'resolved',
          note: old
            ? `resolved at the lifetime cap of ${Math.round(this.policy.maxLifetimeMs / 3_600_000)}h`
            : `resolved after ${Math.round(this.policy.quietPeriodMs / 60_000)} quiet minutes`,
        },
      ];
      this.close(next);
      out.push(next);
    }
    return out;
  }

  private onFiring(f: Firing, current: Incident | undefined, attached: { incidentId: string; signal: Signal }[]): Incident | undefined {
    const keys = f.signals.flatMap(mergeKeys);
    let inc = this.find(keys) ?? current;
    if (inc) this.attach(inc, f.signals, attached);
    else if (f.correlation.buildingBlock) return undefined;
    else inc = this.openWithin(f.signals, f, attached);
    if (!inc) return current;
    if (
      (inc.correlations.length < MAX_CORRELATION_MATCHES || !inc.rules.includes(f.correlation.id)) &&
      !inc.correlations.some((c) => c.ruleId === f.correlation.id && c.time === f.time)
    )
      inc.correlations.push({ ruleId: f.correlation.id, title: f.correlation.title, signalIds: f.signals.slice(0, 50).map((s) => s.id), time: f.time });
    inc.severity = maxSeverity(inc.severity, f.correlation.severity);
    for (const m of f.correlation.mitre) if (!inc.mitre.includes(m)) inc.mitre.push(m);
    if (!inc.rules.includes(f.correlation.id)) inc.rules.push(f.correlation.id);
    this.markDirty(inc);
    return inc;
  }

  /** The open incident sharing a key; merges the others that also share one into the oldest. */
  private find(keys: string[]): Incident | undefined {
    let found: Incident | undefined;
    for (const k of keys) {
      const id = this.byKey.get(k);
      const inc = id ? this.open.get(id) : undefined;
      if (!inc || inc === found) continue;
      if (!found) found = inc;
      else {
        const [older, younger] = found.createdAt <= inc.createdAt ? [found, inc] : [inc, found];
        this.merge(older, younger);
        found = older;
      }
    }
    return found;
  }

  private merge(into: Incident, from: Incident): void {
    this.stats.merged++;
    // A signal in both timelines (a firing attached it to each) is added, and counted, once.
    const ids = this.timelineIds(into.timeline);
    for (const e of from.timeline) if (!ids.has(e.signalId)) this.addEntry(into, ids, e);
    into.signalCount += from.signalCount - from.timeline.length;
    for (const [k, n] of Object.entries(from.countsByKind))
      into.countsByKind[k as keyof typeof into.countsByKind] = (into.countsByKind[k as keyof typeof into.countsByKind] ?? 0) + (n ?? 0);
    const entities = this.entitySet(into);
    for (const e of from.entities) this.addEntity(into, entities, e);
    into.correlations.push(...from.correlations);
    for (const r of from.rules) if (!into.rules.includes(r)) into.rules.push(r);
    for (const m of from.mitre) if (!into.mitre.includes(m)) into.mitre.push(m);
    for (const s of from.sources) if (!into.sources.includes(s)) into.sources.push(s);
    // What silences hid from the merged incident stays listed (bounded as in recordSilenced).
    for (const e of from.silenced ?? []) {
      const list = (into.silenced ??= []);
      const mine = list.find((x) => x.silenceId === e.silenceId);
      if (mine) {
        mine.count += e.count;
        mine.signalIds = [...new Set([...mine.signalIds, ...e.signalIds])].slice(0, MAX_SILENCED_IDS);
      } else if (list.length < MAX_SILENCES_LISTED) list.push({ ...e, signalIds: [...e.signalIds] });
    }
    into.severity = maxSeverity(into.severity, from.severity);
    into.maxSignalSeverity = maxSeverity(into.maxSignalSeverity, from.maxSignalSeverity);
    into.firstSeen = Math.min(into.firstSeen, from.firstSeen);
    into.lastSeen = Math.max(into.lastSeen, from.lastSeen);
    const now = this.clock.now();
    // An incident opened and merged within one batch was never described: it still gets a title.
    const title = from.title || `Merged into ${into.id}`;
    const merged: Incident = { ...from, title, status: 'resolved', resolution: 'merged', mergedInto: into.id, resolvedAt: now, updatedAt: now };
    merged.notes = [...from.notes, { time: now, status: 'resolved', note: `merged into ${into.id}` }];
    const keys = mergeKeysOf(from);
    this.close(merged);
    this.index(into, keys);
    this.dirty.add(into);
    this.dirty.add(merged);
  }

  /** Removes an incident from the open set and its keys from the index; its stale copies leave the dirty set. */
  private close(inc: Incident): void {
    this.open.delete(inc.id);
    for (const k of this.keysOf.get(inc.id) ?? []) if (this.byKey.get(k) === inc.id) this.byKey.delete(k);
    this.keysOf.delete(inc.id);
    this.planKeys.delete(inc.id);
    for (const d of this.dirty) if (d.id === inc.id) this.dirty.delete(d);
    this.stats.resolved++;
  }

  private index(inc: Incident, keys: string[]): void {
    let mine = this.keysOf.get(inc.id);
    if (!mine) this.keysOf.set(inc.id, (mine = new Set()));
    for (const k of keys) {
      if (inc.flood && mine.size >= FLOOD_KEYS) break;
      const owner = this.byKey.get(k);
      if (owner === undefined || !this.open.has(owner)) {
        this.byKey.set(k, inc.id);
        mine.add(k);
      }
    }
  }

  /** Keeps a signal that joined nothing, bounded per actor and in actors. */
  private remember(s: Signal, idKey?: string): void {
    const key = s.actor.key;
    let list = this.prologue.get(key);
    if (list) this.prologue.delete(key);
    else {
      list = [];
      if (this.prologue.size >= this.policy.lookbackActors) this.forgetOldestPrologue();
    }
    const n = list.length;
    const p = this.engine.packedOf(s) ?? PackedSignal.pack(s, idKey, list[n - 1], list[n - 2], list[n - 3]);
    // Most prologues are short: copied at their exact length (push() from empty takes room for 17).
    if (n < PROLOGUE_SHORT) list = appended(list, p);
    else list.push(p);
    this.prologueSignals++;
    if (list.length > this.policy.lookbackSignals) {
      list.shift();
      this.prologueSignals--;
      this.stats.prologueEvicted++;
    }
    this.prologue.set(key, list);
    this.changedPrologue?.add(key);
    this.trimPrologue();
  }

  /** Forgets the least recently active actors' prologues until the total is within its bound. */
  private trimPrologue(): void {
    while (this.prologueSignals > this.policy.lookbackTotal && this.prologue.size > 1) this.forgetOldestPrologue();
  }

  private forgetOldestPrologue(): void {
    const evicted = this.prologue.keys().next().value as string;
    const n = this.prologue.get(evicted)?.length ?? 0;
    this.prologue.delete(evicted);
    this.prologueSignals -= n;
    this.stats.prologueEvicted += n;
    // Distributed: the checkpoint forgets it too (else its stored form would never age out).
    this.changedPrologue?.add(evicted);
  }

  /**
   * Opens an incident within the count budget: a pattern that more than `floodActors` distinct
   * actors opened incidents of within the window joins its one flood incident instead; at
   * `maxOpenIncidents`, the least severe and least recent open incident is resolved early, unless
   * all are more severe than this one, which then is not opened (undefined; its signals stay in
   * the prologue, so a later incident of the actor still shows them).
   */
  private openWithin(opening: Signal[], f: Firing | undefined, attached: { incidentId: string; signal: Signal }[]): Incident | undefined {
    const trigger = f?.trigger ?? opening[0]!;
    const pattern = f ? f.correlation.id : trigger.rule.id;
    const now = this.clock.now();
    let st = this.floods.get(pattern);
    const flooding = st?.incidentId !== undefined && this.open.has(st.incidentId);
    if (!st || (!flooding && now - st.since > this.policy.floodWindowMs)) this.floods.set(pattern, (st = { since: now, actors: new Set(), count: 0 }));
    if (!st.actors.has(trigger.actor.key)) {
      if (st.actors.size < FLOOD_ACTORS_KEPT) st.actors.add(trigger.actor.key);
      st.count++;
    }
    const flood = st.incidentId ? this.open.get(st.incidentId) : undefined;
    if (flood) {
      this.attach(flood, opening, attached);
      this.stats.flooded += opening.length;
      flood.flood = {
        ...flood.flood!,
        actors: st.count,
        sample:
          flood.flood!.sample.length < FLOOD_SAMPLE && !flood.flood!.sample.includes(trigger.actor.key)
            ? [...flood.flood!.sample, trigger.actor.key]
            : flood.flood!.sample,
      };
      return flood;
    }
    let severity = opening.reduce<Severity>((m, x) => maxSeverity(m, x.severity), 'info');
    if (f) severity = maxSeverity(severity, f.correlation.severity);
    if (!this.makeRoom(severity)) {
      this.stats.refused++;
      for (const x of opening) this.remember(x);
      return undefined;
    }
    const inc = this.openWith(opening, f, attached);
    if (st.count > this.policy.floodActors) {
      st.incidentId = inc.id;
      inc.flood = { pattern, actors: st.count, sample: [trigger.actor.key] };
      this.stats.flooded += opening.length;
    }
    return inc;
  }

  /** Makes room for one more open incident of this severity; false when every open one is more severe. */
  private makeRoom(severity: Severity): boolean {
    if (this.open.size < this.policy.maxOpenIncidents) return true;
    let victim: Incident | undefined;
    for (const inc of this.open.values())
      if (!victim || keepRank(inc) < keepRank(victim) || (keepRank(inc) === keepRank(victim) && inc.updatedAt < victim.updatedAt)) victim = inc;
    if (!victim || severityRank(victim.severity) > severityRank(severity)) return false;
    const next = this.evicted(victim);
    this.close(next);
    this.dirty.add(next);
    return true;
  }

  /** The resolved copy of an incident evicted from the open set. */
  private evicted(inc: Incident): Incident {
    const now = this.clock.now();
    this.stats.evicted++;
    return {
      ...inc,
      status: 'resolved',
      resolution: 'evicted',
      resolvedAt: now,
      updatedAt: now,
      notes: [
        ...inc.notes,
        {
          time: now,
          status: 'resolved',
          note: `resolved early: kubevigil holds at most ${this.policy.maxOpenIncidents} open incidents (KUBEVIGIL_MAX_OPEN_INCIDENTS) and this was the least severe, least recently updated`,
        },
      ],
    };
  }

  private openWith(opening: Signal[], f: Firing | undefined, attached: { incidentId: string; signal: Signal }[]): Incident {
    const now = this.clock.now();
    // The actor's earlier signals within the quiet period are part of the story (reconnaissance first).
    const actorKey = (f?.trigger ?? opening[0]!).actor.key;
    const earliest = Math.min(...opening.map((s) => s.eventTime));
    const prologue = this.prologue.get(actorKey);
    const openingKeys = prologue ? new Set(opening.map((o) => encodeId(o.id))) : undefined;
    const before = (prologue ?? []).filter((p) => p.eventTime >= earliest - this.policy.quietPeriodMs && !openingKeys!.has(p.key)).map((p) => p.signal());
    const had = this.prologue.get(actorKey)?.length ?? 0;
    if (this.prologue.delete(actorKey)) {
      this.prologueSignals -= had;
      this.changedPrologue?.add(actorKey);
    }
    const signals = [...before, ...opening];
    const first = signals.reduce((a, b) => (b.eventTime < a.eventTime ? b : a));
    const id = `inc_${createHash('sha256')
      .update(
        opening
          .map((s) => s.id)
          .sort()
          .join(','),
      )
      .digest('hex')
      .slice(0, 20)}`;
    const inc: Incident = {
      id,
      title: '',
      status: 'open',
      severity: first.severity,
      actor: (f?.trigger ?? first).actor,
      entities: [],
      blastRadius: emptyRadius(),
      firstSeen: first.eventTime,
      lastSeen: first.eventTime,
      createdAt: now,
      updatedAt: now,
      version: 0,
      timeline: [],
      signalCount: 0,
      countsByKind: {},
      sources: [],
      correlations: [],
      rules: [],
      mitre: [],
      rootCause: { summary: '', evidence: [], confidence: 0, actor: first.actor.key },
      remediations: [],
      notes: [],
      maxSignalSeverity: 'info',
    };
    const cluster = (f?.trigger ?? first).cluster ?? opening.find((s) => s.cluster)?.cluster;
    if (cluster) inc.cluster = cluster;
    this.stats.opened++;
    this.open.set(inc.id, inc);
    this.attach(inc, signals, attached);
    return inc;
  }

  /**
   * Attaches signals not in the timeline yet; `known` are the merge keys of a single signal, and
   * `list` its entity list as packing shares it, when the caller has them. A signal whose actor and
   * list were attached before adds its entry, counts, source, rule and techniques only (see
   * {@link attachedKeys}).
   */
  private attach(inc: Incident, signals: Signal[], attached: { incidentId: string; signal: Signal }[], known?: string[], list?: string[]): void {
    const keys: string[] = [];
    const ids = this.timelineIds(inc.timeline);
    // Keys of a shared list are themselves shared: one array per list and actor (see process).
    // Attached once, they are the incident's until it closes: find() merged every other open
    // incident holding one into it, and index() gave it the rest.
    const shared = list && known && signals.length === 1 && !inc.flood ? known : undefined;
    let memo = shared && this.attachedKeys.get(inc);
    const same = memo !== undefined && memo.has(shared!);
    let added = 0;
    for (const s of signals) {
      if (ids.has(s.id)) continue;
      added++;
      attached.push({ incidentId: inc.id, signal: s });
      this.addEntry(inc, ids, timelineEntry(s));
      inc.countsByKind[s.kind] = (inc.countsByKind[s.kind] ?? 0) + 1;
      inc.severity = maxSeverity(inc.severity, s.severity);
      inc.maxSignalSeverity = maxSeverity(inc.maxSignalSeverity, s.severity);
      inc.firstSeen = Math.min(inc.firstSeen, s.eventTime);
      inc.lastSeen = Math.max(inc.lastSeen, s.eventTime);
      if (!inc.sources.includes(s.source)) inc.sources.push(s.source);
      if (!inc.rules.includes(s.rule.id)) inc.rules.push(s.rule.id);
      for (const m of s.mitre) if (!inc.mitre.includes(m)) inc.mitre.push(m);
      if (same) continue;
      const entities = this.entitySet(inc);
      this.addEntity(inc, entities, s.actor.key);
      for (const e of s.entities) this.addEntity(inc, entities, e);
      // A flood incident is found by its actors only: their pods and bindings would index the whole flood.
      if (inc.flood) keys.push(s.actor.key);
      else keys.push(...(known && signals.length === 1 ? known : mergeKeys(s)));
    }
    inc.updatedAt = this.clock.now();
    if (!same) {
      this.index(inc, keys);
      if (shared && added === 1) {
        if (!memo || memo.size >= ATTACHED_KEYS) this.attachedKeys.set(inc, (memo = new Set()));
        memo.add(shared);
      }
    }
    this.markDirty(inc);
  }

  /**
   * Marks an incident changed, to be finalized and written. A flood incident changes with every
   * signal of thousands of actors: it is written when something material changes (severity,
   * rules, sources, techniques), when its actor count doubled, or every {@link FLOOD_FLUSH_MS};
   * its signals are stored with the next write.
   */
  private markDirty(inc: Incident): void {
    const st = inc.flood ? this.floods.get(inc.flood.pattern) : undefined;
    if (inc.flood && st) {
      const shape = `${inc.severity}|${inc.rules.length}|${inc.sources.length}|${inc.mitre.length}`;
      const now = this.clock.now();
      const w = st.written;
      if (w && w.shape === shape && now - w.time < FLOOD_FLUSH_MS && inc.flood.actors < w.actors * 2) return;
      st.written = { shape, time: now, actors: inc.flood.actors };
    }
    this.dirty.add(inc);
  }

  /** Inserts in event-time order (`ids`: the timeline's, see {@link timelineIds}); beyond the bound, the middle goes (see {@link trimTimeline}). */
  private addEntry(inc: Incident, ids: Set<string>, e: Incident['timeline'][number]): void {
    inc.signalCount++;
    const tl = inc.timeline;
    let i = tl.length;
    while (i > 0 && tl[i - 1]!.time > e.time) i--;
    // Most signals come in order: appended (splice() would allocate the array of what it removed).
    if (i === tl.length) tl.push(e);
    else tl.splice(i, 0, e);
    ids.add(e.signalId);
    const max = this.policy.limits.maxTimeline;
    if (tl.length > max + (max >> 2)) this.trimTimeline(inc, ids);
  }

  /**
   * Bounds a timeline to `maxTimeline` entries: the middle goes, the start and the latest stay.
   * Done a quarter of the bound at a time while signals come (one splice instead of one per
   * signal) and at {@link finalize}, so that no reader sees more; what stays is what removing
   * one entry per signal would have kept (the oldest after the first half, again and again).
   */
  private trimTimeline(inc: Incident, ids = this.timelineIds(inc.timeline)): void {
    const tl = inc.timeline;
    const max = this.policy.limits.maxTimeline;
    if (tl.length <= max) return;
    for (const gone of tl.splice(Math.floor(max / 2), tl.length - max)) ids.delete(gone.signalId);
  }

  /** The entity keys of an incident, kept beside its array so that adding one is O(1). */
  private entitySet(inc: Incident): Set<string> {
    const list = inc.entities;
    let set = this.entitySets.get(list);
    if (!set) this.entitySets.set(list, (set = new Set(list)));
    return set;
  }

  /** Adds an entity key once (`set`: the incident's, see {@link entitySet}), up to the bound. */
  private addEntity(inc: Incident, set: Set<string>, e: string): void {
    const list = inc.entities;
    if (set.has(e) || list.length >= this.policy.limits.maxEntities) return;
    set.add(e);
    list.push(e);
  }

  /** The signal ids of a timeline, kept beside the array (copies of an incident share it) so attaching is O(1) per signal. */
  private timelineIds(tl: Incident['timeline']): Set<string> {
    let ids = this.idsByTimeline.get(tl);
    if (!ids) this.idsByTimeline.set(tl, (ids = new Set(tl.map((e) => e.signalId))));
    return ids;
  }

  /** Finalizes the incidents changed since the last call (see {@link process}) and returns them. */
  finalize(): Incident[] {
    const out: Incident[] = [];
    for (const inc of this.dirty) {
      this.trimTimeline(inc);
      if (inc.status !== 'resolved') this.derive(inc);
      inc.version++;
      out.push(inc);
    }
    this.dirty.clear();
    return out;
  }

  /** Recomputes what follows from the timeline: blast radius, severity, root cause, remediations, title. */
  private derive(inc: Incident): void {
    const r = emptyRadius();
    for (const e of inc.entities) {
      const t = entityType(e);
      const v = e.slice(e.indexOf(':') + 1);
      if (t === 'ns') r.namespaces.push(v);
      else if (t === 'pod' || t === 'workload') r.workloads.push(v);
      else if (t === 'secret') r.secrets.push(v);
      else if (t === 'binding') r.bindings.push(v);
      else if (t === 'policy') r.policies.push(v);
    }
    inc.blastRadius = r;
    // Records of changes (activity trail) show in the timeline but are no kind of attack.
    const kinds = new Set(inc.timeline.filter((e) => !hasTrait(e.kind, 'activity-trail')).map((e) => e.kind));
    const sensitiveAllowed = inc.timeline.some((e) => e.outcome === 'allowed' && hasTrait(e.kind, 'high-impact'));
    let sev = maxSeverity(inc.severity, inc.maxSignalSeverity);
    if (sensitiveAllowed && (kinds.size >= 3 || new Set(inc.correlations.map((c) => c.ruleId)).size >= 2))
      sev = SEVERITIES[Math.min(SEVERITIES.length - 1, severityRank(sev) + 1)]!;
    inc.severity = sev;
    const share = inc.timeline.filter((e) => e.actor === inc.actor.key).length / Math.max(1, inc.timeline.length);
    inc.rootCause = analyzeRootCause(inc.actor, inc.timeline, { correlations: inc.correlations.length, actorShare: share, inventory: this.inventory });
    const attackKeys = new Set(
      inc.timeline.map((e) => `${e.target.namespace ?? ''}|${e.target.apiGroup ?? ''}|${e.target.resource ?? ''}|${e.target.verb ?? ''}`),
    );
    const usage: PermissionUse[] = (this.usage?.usage(inc.actor.key) ?? []).filter(
      (u) => !attackKeys.has(`${u.namespace ?? ''}|${u.apiGroup}|${u.resource}|${u.verb}`),
    );
    // Planning renders manifests (YAML): redo it only when what the plan depends on changed — the
    // incident's shape (kinds, outcomes, targets, bindings, policies, pods), the usage, or the
    // order of magnitude of the signal count that the rationales quote, and the blast radius (not
    // every IP or node seen, which would replan on almost every signal). Of a signal, the names of
    // the secrets, pods and bindings it acted on count, its severity (whether the evidence shows an
    // attack), role, impersonation and mesh namespaces too (not its address or user agent, which
    // vary per request: the credential-source kind is in the shape already).
    const named = new Set(['secrets', 'pods', 'rolebindings', 'clusterrolebindings']);
    const shape = new Set<string>();
    for (const e of inc.timeline) {
      const a = e.attributes;
      shape.add(
        `${e.kind}|${e.outcome}|${e.severity}|${e.actor}|${e.target.namespace ?? ''}|${named.has(e.target.resource ?? '') ? (e.target.name ?? '') : ''}|${e.target.verb ?? ''}|${a.binding ?? ''}|${a.role ?? ''}|${a.admissionPolicies ?? ''}|${a.actorPod ?? ''}|${a.impersonated ?? ''}|${a.meshKind ?? ''}|${a.sourceNamespace ?? ''}|${a.destinationNamespace ?? ''}`,
      );
    }
    // With a cluster inventory, the answers to the questions the last plan asked it count too
    // (asked again: lookups in memory), so the plan follows the cluster.
    const planKey = `${[...shape].sort().join('\n')}#${usage.length}#${Math.floor(Math.log2(inc.signalCount + 1))}#${[r.namespaces, r.workloads, r.secrets, r.bindings, r.policies].map((l) => l.length).join('/')}`;
    const planned = this.planKeys.get(inc.id);
    const inventory = this.inventory;
    const asked = (answers: string) => (inventory ? `${planKey}#inventory\n${answers}` : planKey);
    if (planned?.key !== asked(inventory && planned ? answersKey(inventory, planned.queries) : '')) {
      const { remediations: _old, ...rest } = inc;
      const recording = inventory ? new RecordingInventory(inventory) : undefined;
      inc.remediations = planRemediations({ incident: rest, usage, inventory: recording });
      this.planKeys.set(inc.id, { key: asked(recording?.key() ?? ''), queries: recording?.queries() ?? [] });
    }
    inc.title = (
      inc.flood
        ? `Flood: ${inc.flood.actors} distinct actors, one pattern: ${this.story(inc)}`
        : `${describeActing(inc.actor, inc.timeline)}: ${this.story(inc)}`
    ).slice(0, 200);
  }

  /**
   * The most severe correlation names the incident; otherwise its most severe signal does (a record
   * of a change only when there is nothing else), in its own words when its title is clean, else
   * in words made from its kind and target (a title whose template found no value shows `?`).
   */
  private story(inc: Incident): string {
    const sev = (id: string) => severityRank(this.engine.correlations.find((c) => c.id === id)?.severity ?? 'info');
    const titles = [...new Map(inc.correlations.map((c) => [c.ruleId, c] as const)).values()]
      .sort((a, b) => sev(b.ruleId) - sev(a.ruleId))
      .map((c) => c.title.trim())
      .filter(Boolean);
    if (titles.length) return titles.length > 1 ? `${titles[0]} (+${titles.length - 1} more pattern${titles.length > 2 ? 's' : ''})` : titles[0]!;
    const rank = (e: Incident['timeline'][number]) => severityRank(e.severity) + (hasTrait(e.kind, 'activity-trail') ? -SEVERITIES.length : 0);
    const worst = [...inc.timeline].sort((a, b) => rank(b) - rank(a))[0];
    return worst ? readableTitle(worst) : 'suspicious activity';
  }
}
