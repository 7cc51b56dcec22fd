/**
 * The incident store: where the correlator keeps incidents and their signals, and the API and
 * notifiers read them. Implemented in memory (tests) and on SQLite (embedded); every
 * implementation passes the one suite in `store.contract.ts`.
 */
import { KubevigilError } from '../../correlator/errors.js';
import { INCIDENT_STATUSES, type Incident, type IncidentStatus } from '../../correlator/incident.js';
import { isSeverity, type Severity } from '../../correlator/severity.js';
import type { Signal } from '../../correlator/signal.js';
import type { Silence } from '../../correlator/silences.js';

/** Largest page {@link IncidentStore.list} returns. */
export const MAX_LIST_LIMIT = 500;

/** Filters and page of {@link IncidentStore.list}; every filter given must hold. */
export interface IncidentQuery {
  /** Any of these statuses; absent or empty means every status. */
  status?: IncidentStatus[];
  /** This severity or a more severe one. */
  minSeverity?: Severity;
  /** The acting identity's entity key, exactly (`sa:payments/api`). */
  actor?: string;
  /** Incidents whose blast radius includes this namespace. */
  namespace?: string;
  /** `lastSeen >= since` (ms since epoch). */
  since?: number;
  /** Page size, 1 to {@link MAX_LIST_LIMIT}. */
  limit: number;
  /** The `nextCursor` of the previous page, unchanged. */
  cursor?: string;
}

/** One page of incidents, newest `lastSeen` first; `nextCursor` is absent on the last page. */
export interface IncidentPage {
  items: Incident[];
  nextCursor?: string;
}

/** A signal to append to an incident's signal list. */
export interface IncidentSignal {
  incidentId: string;
  signal: Signal;
}

/**
 * What {@link IncidentStore.prune} deletes (ms since epoch): resolved incidents resolved before
 * `incidentsResolvedBefore`, with their signals, and the signals of resolved incidents with an event
 * time before `signalsBefore`. Open and acknowledged incidents and their signals are never pruned.
 */
export interface RetentionCutoffs {
  incidentsResolvedBefore?: number;
  signalsBefore?: number;
}

/** What a prune deleted. */
export interface PruneResult {
  incidents: number;
  signals: number;
}

/** Persistence for incidents, their signals and small component state. */
export interface IncidentStore {
  /**
   * Writes incidents and appends signals as one atomic batch. An incident replaces the stored one
   * with the same id unless the stored `version` is higher (stale writes are ignored). Signals are
   * idempotent on (incident id, signal id) and must name an incident stored or in the batch.
   */
  upsert(incidents: Incident[], signals?: IncidentSignal[]): Promise<void>;
  /** The incident with this id, or undefined. */
  get(id: string): Promise<Incident | undefined>;
  /** Incidents matching the query, ordered by `lastSeen` then `id`, both descending. */
  list(q: IncidentQuery): Promise<IncidentPage>;
  /** Every open or acknowledged incident, so the correlator can resume after a restart. */
  open(): Promise<Incident[]>;
  /** Up to `limit` signals of an incident, by event time ascending (ties by signal id). */
  signals(incidentId: string, limit: number): Promise<Signal[]>;
  /** A component's saved state (e.g. a notifier cursor), or undefined. */
  getState(key: string): Promise<string | undefined>;
  /** Saves a component's state, replacing any earlier value. */
  setState(key: string, value: string): Promise<void>;
  /** Retention (see {@link RetentionCutoffs}); a store on disk gives the space back afterwards. */
  prune(cutoffs: RetentionCutoffs): Promise<PruneResult>;
  /** Bytes the store takes on disk (for kubevigil_store_bytes); undefined when it keeps nothing on disk. */
  sizeBytes(): Promise<number | undefined>;
  /** The notifiers' durable outbox, kept in the same database. */
  readonly outbox: NotificationOutbox;
  /** Silences (embedded mode; distributed, they live in Redis: services/store/silences-redis.ts). */
  readonly silences: SilenceStore;
  /** Releases the store; idempotent. Later calls reject with {@link StoreClosedError}. */
  close(): Promise<void>;
}

/** A list or signals query the store cannot run: `BAD_CURSOR` for the cursor, `BAD_QUERY` otherwise. */
export class StoreQueryError extends KubevigilError {
  constructor(
    code: 'BAD_CURSOR' | 'BAD_QUERY',
    /** The query field at fault. */
    readonly field: string,
    message: string,
  ) {
    super(code, message, false);
    this.name = 'StoreQueryError';
  }
}

/** A batch appends a signal to an incident that is neither stored nor in the batch; nothing was written. */
export class UnknownIncidentError extends KubevigilError {
  constructor(
    readonly incidentId: string,
    signalId: string,
  ) {
    super(
      'UNKNOWN_INCIDENT',
      `signal ${signalId} names incident ${JSON.stringify(incidentId)}, which is neither stored nor in this batch; upsert the incident in the same batch as its signals or before them`,
      false,
    );
    this.name = 'UnknownIncidentError';
  }
}

/** The store was used after {@link IncidentStore.close}. */
export class StoreClosedError extends KubevigilError {
  constructor(store: string) {
    super('STORE_CLOSED', `${store} is closed; open a new store instead of reusing a closed one`, false);
    this.name = 'StoreClosedError';
  }
}

/** Where a page ends: the sort key of its last item. */
export interface CursorPosition {
  lastSeen: number;
  id: string;
}

/** The opaque cursor for a position: base64url of `[lastSeen, id]`. */
export function encodeCursor(p: CursorPosition): string {
  return Buffer.from(JSON.stringify([p.lastSeen, p.id]), 'utf8').toString('base64url');
}

const CURSOR_SHAPE = /^[A-Za-z0-9_-]{1,2048}$/;

/** Reads a cursor made by {@link encodeCursor}; throws {@link StoreQueryError} (`BAD_CURSOR`) otherwise. */
export function decodeCursor(cursor: string): CursorPosition {
  const bad = (why: string): StoreQueryError => {
    // The cursor comes from the caller (an API query string): quote only a bounded prefix.
    const shown = cursor.length > 40 ? `${cursor.slice(0, 40)}…` : cursor;
    return new StoreQueryError(
      'BAD_CURSOR',
      'cursor',
      `cursor (${JSON.stringify(shown)}) ${why}; pass the nextCursor of the previous page unchanged, or omit cursor for the first page`,
    );
  };
  if (!CURSOR_SHAPE.test(cursor)) throw bad('is not base64url text of at most 2048 characters');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad('does not decode to a page position');
  }
  if (!Array.isArray(value) || value.length !== 2) throw bad('does not decode to a page position');
  const [lastSeen, id] = value as unknown[];
  if (typeof lastSeen !== 'number' || !Number.isFinite(lastSeen) || typeof id !== 'string') {
    throw bad('does not decode to a page position');
  }
  return { lastSeen, id };
}

/** A query checked and normalized, ready for a store to run. */
export interface CheckedQuery {
  statuses?: IncidentStatus[];
  minSeverity?: Severity;
  actor?: string;
  namespace?: string;
  since?: number;
  limit: number;
  after?: CursorPosition;
}

/** Validates a list query (every store does the same checks); throws {@link StoreQueryError}. */
export function checkQuery(q: IncidentQuery): CheckedQuery {
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIST_LIMIT) {
    throw new StoreQueryError('BAD_QUERY', 'limit', `limit (${q.limit}) must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  const out: CheckedQuery = { limit: q.limit };
  if (q.status && q.status.length > 0) {
    for (const s of q.status) {
      if (!INCIDENT_STATUSES.includes(s)) {
        throw new StoreQueryError('BAD_QUERY', 'status', `status (${JSON.stringify(s)}) must be one of ${INCIDENT_STATUSES.join(', ')}`);
      }
    }
    out.statuses = [...new Set(q.status)];
  }
  if (q.minSeverity !== undefined) {
    if (!isSeverity(q.minSeverity)) {
      throw new StoreQueryError('BAD_QUERY', 'minSeverity', `minSeverity (${JSON.stringify(q.minSeverity)}) must be one of info, low, medium, high, critical`);
    }
    out.minSeverity = q.minSeverity;
  }
  if (q.since !== undefined) {
    if (!Number.isFinite(q.since)) {
      throw new StoreQueryError('BAD_QUERY', 'since', `since (${q.since}) must be a time in ms since the epoch`);
    }
    out.since = q.since;
  }
  if (q.actor !== undefined) out.actor = q.actor;
  if (q.namespace !== undefined) out.namespace = q.namespace;
  if (q.cursor !== undefined) out.after = decodeCursor(q.cursor);
  return out;
}

/** Validates the `limit` of {@link IncidentStore.signals}; throws {@link StoreQueryError}. */
export function checkSignalLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new StoreQueryError('BAD_QUERY', 'limit', `limit (${limit}) must be a positive integer`);
  }
}

/** Where a notification stands: waiting (or being delivered), delivered, or given up on. */
export type OutboxStatus = 'pending' | 'done' | 'failed';

/** A notification to deliver: one incident version to one sink. */
export interface OutboxEntry {
  incidentId: string;
  version: number;
  /** The destination, stable across restarts (`slack:C0123ABC`, `webhook:3f2a…`). */
  sink: string;
  /** Deliveries in one lane are paced together (one Slack channel, one webhook URL). */
  lane: string;
  /** What to deliver, as the notifier serialized it. */
  payload: string;
  /** Not before this time (ms since epoch). */
  dueAt: number;
}

/** An outbox entry with its delivery state. */
export interface OutboxItem extends OutboxEntry {
  /** Assigned by the store, increasing in insertion order. */
  seq: number;
  status: OutboxStatus;
  /** Claims so far, the current one included. */
  attempts: number;
  createdAt: number;
  /** A claim holds the item until this time; 0 when unclaimed. */
  leaseUntil: number;
  finishedAt?: number;
  lastError?: string;
  /** Why it finished without a delivery of its own (`superseded`, `digest`), when it did. */
  note?: string;
}

/** Filters of {@link NotificationOutbox.list}. */
export interface OutboxQuery {
  status?: OutboxStatus;
  incidentId?: string;
  sink?: string;
  limit: number;
}

/**
 * A durable queue of notifications, so a restart neither loses nor repeats one: entries are
 * idempotent per (incident id, version, sink); a claim leases items, so an item whose deliverer
 * died is offered again once its lease ends.
 */
export interface NotificationOutbox {
  /** Adds entries; one whose (incidentId, version, sink) is already in the outbox is left as it is. Resolves with how many were added. */
  enqueue(entries: OutboxEntry[], now: number): Promise<number>;
  /** Lanes with a pending, unleased item due at `now`. */
  lanesDue(now: number): Promise<string[]>;
  /** Leases up to `limit` due items of a lane until `now + leaseMs`, counting an attempt on each; in insertion order, so one incident's versions stay in order. */
  claim(lane: string, now: number, limit: number, leaseMs: number): Promise<OutboxItem[]>;
  /** Marks a pending item delivered (or, with a note, finished without its own delivery). */
  complete(seq: number, now: number, note?: string): Promise<void>;
  /** A failed attempt: the item waits until `dueAt`, its attempt counted. */
  retry(seq: number, dueAt: number, error: string): Promise<void>;
  /** Hands a claimed item back untried, due at `dueAt`, its attempt not counted. */
  release(seq: number, dueAt: number): Promise<void>;
  /** Gives up on a pending item. */
  fail(seq: number, now: number, error: string): Promise<void>;
  /** The earliest time a pending item can be claimed (due and unleased), or undefined when none is pending. */
  nextDue(): Promise<number | undefined>;
  /** Items by insertion order. */
  list(q: OutboxQuery): Promise<OutboxItem[]>;
  /** Deletes items that finished (done or failed) before `finishedBefore`; resolves with how many. */
  prune(finishedBefore: number): Promise<number>;
}

/** Where silences are kept: every one, expired ones included until pruned (history). */
export interface SilenceStore {
  /** Creates or replaces a silence (by id). */
  put(silence: Silence): Promise<void>;
  get(id: string): Promise<Silence | undefined>;
  /** Every stored silence, most recently updated first. */
  list(): Promise<Silence[]>;
  /** Deletes these silences; resolves with how many were deleted. */
  delete(ids: string[]): Promise<number>;
}
