/**
 * The embedded incident store on SQLite (Node's built-in `node:sqlite`: no native addon to build,
 * so an install on one Node version never breaks on another). Incidents and signals are kept as JSON
 * bodies beside the columns the queries filter and sort on; the schema evolves by numbered
 * migrations recorded in `PRAGMA user_version`.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { KubevigilError } from '../../correlator/errors.js';
import { writtenJson } from '../bus/bus.js';
import type { Incident } from '../../correlator/incident.js';
import { severityRank } from '../../correlator/severity.js';
import type { Signal } from '../../correlator/signal.js';
import {
  StoreClosedError,
  UnknownIncidentError,
  checkQuery,
  checkSignalLimit,
  encodeCursor,
  type CheckedQuery,
  type IncidentPage,
  type IncidentQuery,
  type IncidentSignal,
  type IncidentStore,
  type NotificationOutbox,
  type OutboxEntry,
  type OutboxItem,
  type OutboxQuery,
  type OutboxStatus,
  type PruneResult,
  type RetentionCutoffs,
  type SilenceStore,
} from './store.js';
import type { Silence } from '../../correlator/silences.js';

/**
 * Schema steps in order; step i brings the database to `user_version` i + 1. Append new steps,
 * never edit a released one: existing databases have already run it.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    actor TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX incidents_by_last_seen ON incidents (last_seen DESC, id DESC);
  CREATE INDEX incidents_by_status ON incidents (status, last_seen DESC, id DESC);
  CREATE INDEX incidents_by_actor ON incidents (actor, last_seen DESC, id DESC);

  CREATE TABLE incident_namespaces (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    PRIMARY KEY (incident_id, namespace)
  ) WITHOUT ROWID;
  CREATE INDEX incident_namespaces_by_namespace ON incident_namespaces (namespace, incident_id);

  CREATE TABLE signals (
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    signal_id TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (incident_id, signal_id)
  );
  CREATE INDEX signals_by_time ON signals (incident_id, event_time, signal_id);

  CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    sink TEXT NOT NULL,
    lane TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    last_error TEXT,
    note TEXT,
    UNIQUE (incident_id, version, sink)
  );
  CREATE INDEX outbox_pending ON outbox (status, lane, seq);
  CREATE INDEX outbox_finished ON outbox (finished_at) WHERE finished_at IS NOT NULL;
  `,
  `
  CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  `,
];

/** The schema version this code writes (`PRAGMA user_version` after every migration has run). */
export const SCHEMA_VERSION = MIGRATIONS.length;

const BUSY_TIMEOUT_MS = 5000;
/** Rows deleted per transaction by {@link SqliteStore.prune}. */
const PRUNE_BATCH = 5000;

interface IncidentRow {
  id: string;
  status: string;
  severityRank: number;
  actor: string;
  firstSeen: number;
  lastSeen: number;
  version: number;
  body: string;
}

interface ListRow {
  id: string;
  lastSeen: number;
  body: string;
}

/** Runs `fn` in a transaction that takes the write lock first (BEGIN IMMEDIATE); rolls back on a throw. */
function immediate<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** The value of a pragma that returns one row of one column. */
function pragmaValue(db: DatabaseSync, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get();
  return row && Object.values(row)[0];
}

/** Runs the migrations the database has not yet run, each in its own transaction. */
function migrate(db: DatabaseSync, path: string): void {
  const current = Number(pragmaValue(db, 'user_version'));
  if (current > MIGRATIONS.length) {
    throw new KubevigilError(
      'STORE_SCHEMA_TOO_NEW',
      `store ${path} has schema version ${current}, newer than this kubevigil knows (${MIGRATIONS.length}); run a kubevigil at least as new as the one that wrote it`,
      false,
    );
  }
  MIGRATIONS.forEach((step, i) => {
    if (i < current) return;
    immediate(db, () => {
      db.exec(step);
      // user_version is part of the database header, so it commits or rolls back with the step.
      db.exec(`PRAGMA user_version = ${i + 1}`);
    });
  });
}

/** A prepared statement with its parameter and row types (node:sqlite's own are untyped). */
interface Statement<P extends unknown[], R = unknown> {
  run(...params: P): { changes: number | bigint };
  get(...params: P): R | undefined;
  all(...params: P): R[];
}

/** Prepares `sql` on `db`, typed by what the caller binds and reads. */
function prepare<P extends unknown[], R = unknown>(db: DatabaseSync, sql: string): Statement<P, R> {
  return db.prepare(sql) as StatementSync as unknown as Statement<P, R>;
}

/** Every fixed statement, prepared once per connection. */
function prepareStatements(db: DatabaseSync) {
  return {
    upsertIncident: prepare<[IncidentRow]>(
      db,
      `INSERT INTO incidents (id, status, severity_rank, actor, first_seen, last_seen, version, body)
       VALUES (@id, @status, @severityRank, @actor, @firstSeen, @lastSeen, @version, @body)
       ON CONFLICT (id) DO UPDATE SET
         status = excluded.status, severity_rank = excluded.severity_rank, actor = excluded.actor,
         first_seen = excluded.first_seen, last_seen = excluded.last_seen, version = excluded.version,
         body = excluded.body
       WHERE excluded.version >= incidents.version`,
    ),
    deleteNamespaces: prepare<[string]>(db, 'DELETE FROM incident_namespaces WHERE incident_id = ?'),
    insertNamespace: prepare<[string, string]>(db, 'INSERT INTO incident_namespaces (incident_id, namespace) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    incidentExists: prepare<[string], { one: number }>(db, 'SELECT 1 AS one FROM incidents WHERE id = ?'),
    insertSignal: prepare<[string, string, number, string]>(
      db,
      `INSERT INTO signals (incident_id, signal_id, event_time, body) VALUES (?, ?, ?, ?)
       ON CONFLICT (incident_id, signal_id) DO NOTHING`,
    ),
    getIncident: prepare<[string], { body: string }>(db, 'SELECT body FROM incidents WHERE id = ?'),
    openIncidents: prepare<[], { body: string }>(db, `SELECT body FROM incidents WHERE status IN ('open', 'acknowledged') ORDER BY last_seen DESC, id DESC`),
    signalsOf: prepare<[string, number], { body: string }>(db, 'SELECT body FROM signals WHERE incident_id = ? ORDER BY event_time, signal_id LIMIT ?'),
    getState: prepare<[string], { value: string }>(db, 'SELECT value FROM state WHERE key = ?'),
    setState: prepare<[string, string]>(db, 'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}

/** {@link IncidentStore} in a SQLite file (or `:memory:`). */
export class SqliteStore implements IncidentStore {
  private readonly db: DatabaseSync;
  private readonly listStatements = new Map<string, Statement<unknown[], ListRow>>();
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly writeBatch: (incidents: Incident[], signals: IncidentSignal[]) => void;
  readonly outbox: NotificationOutbox;
  readonly silences: SilenceStore;

  /** Opens (creating it and its parent directory when missing) and migrates the database at `path`. */
  constructor(readonly path: string) {
    if (path !== ':memory:' && path !== '') mkdirSync(dirname(resolve(path)), { recursive: true });
    this.db = new DatabaseSync(path === '' ? ':memory:' : path);
    try {
      // Only takes effect on a new file (before its first table): pruning then gives pages back with
      // incremental_vacuum. An older file is switched by the VACUUM after its first large prune.
      this.db.exec('PRAGMA auto_vacuum = INCREMENTAL');
      this.db.exec('PRAGMA journal_mode = WAL');
      this.db.exec('PRAGMA synchronous = NORMAL');
      this.db.exec('PRAGMA foreign_keys = ON');
      this.db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      migrate(this.db, path);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.stmt = prepareStatements(this.db);
    // IMMEDIATE takes the write lock before the first statement, so a concurrent writer (another
    // process on the same file) makes the batch wait up to busy_timeout rather than fail with
    // SQLITE_BUSY when a read lock would have to be upgraded.
    this.writeBatch = (incidents, signals) => immediate(this.db, () => this.write(incidents, signals));
    this.outbox = new SqliteOutbox(this.db, () => this.assertOpen());
    this.silences = new SqliteSilences(this.db, () => this.assertOpen());
  }

  async upsert(incidents: Incident[], signals: IncidentSignal[] = []): Promise<void> {
    this.assertOpen();
    if (incidents.length === 0 && signals.length === 0) return;
    this.writeBatch(incidents, signals);
  }

  /**
   * Deletes in batches of {@link PRUNE_BATCH} rows, each its own transaction, yielding between them
   * so that a large first prune does not hold the write lock (or the event loop) for long.
   */
  async prune(c: RetentionCutoffs): Promise<PruneResult> {
    this.assertOpen();
    const out: PruneResult = { incidents: 0, signals: 0 };
    // A resolved incident without resolvedAt (stored before it existed) counts from its last update.
    const expired = `status = 'resolved' AND COALESCE(json_extract(body, '$.resolvedAt'), json_extract(body, '$.updatedAt')) < ?`;
    const steps: [keyof PruneResult, string, number | undefined][] = [
      [
        'signals',
        `DELETE FROM signals WHERE rowid IN (SELECT s.rowid FROM signals s JOIN incidents i ON i.id = s.incident_id WHERE i.${expired.replaceAll('json_extract(body', 'json_extract(i.body')} LIMIT ${PRUNE_BATCH})`,
        c.incidentsResolvedBefore,
      ],
      ['incidents', `DELETE FROM incidents WHERE rowid IN (SELECT rowid FROM incidents WHERE ${expired} LIMIT ${PRUNE_BATCH})`, c.incidentsResolvedBefore],
      [
        'signals',
        `DELETE FROM signals WHERE rowid IN (SELECT s.rowid FROM signals s JOIN incidents i ON i.id = s.incident_id WHERE i.status = 'resolved' AND s.event_time < ? LIMIT ${PRUNE_BATCH})`,
        c.signalsBefore,
      ],
    ];
    for (const [what, sql, cutoff] of steps) {
      if (cutoff === undefined) continue;
      const stmt = prepare<[number]>(this.db, sql);
      for (;;) {
        this.assertOpen();
        const n = Number(immediate(this.db, () => stmt.run(cutoff).changes));
        out[what] += n;
        if (n < PRUNE_BATCH) break;
        await new Promise((r) => setImmediate(r));
      }
    }
    if (out.incidents + out.signals > 0) this.compact();
    return out;
  }

  /** Gives freed pages back to the file system. */
  private compact(): void {
    const mode = Number(pragmaValue(this.db, 'auto_vacuum'));
    if (mode === 2) this.db.exec('PRAGMA incremental_vacuum');
    else if (mode === 0 && Number(pragmaValue(this.db, 'freelist_count')) * 4 > Number(pragmaValue(this.db, 'page_count'))) {
      // A file created before auto_vacuum was set: rewrite it once a quarter of it is free (this
      // also switches it to incremental vacuum, set in the constructor).
      this.db.exec('VACUUM');
    }
  }

  async sizeBytes(): Promise<number | undefined> {
    this.assertOpen();
    return Number(pragmaValue(this.db, 'page_count')) * Number(pragmaValue(this.db, 'page_size'));
  }

  async get(id: string): Promise<Incident | undefined> {
    this.assertOpen();
    const row = this.stmt.getIncident.get(id);
    return row && (JSON.parse(row.body) as Incident);
  }

  async list(q: IncidentQuery): Promise<IncidentPage> {
    this.assertOpen();
    const c = checkQuery(q);
    const { sql, params } = listSql(c);
    let stmt = this.listStatements.get(sql);
    if (!stmt) this.listStatements.set(sql, (stmt = prepare<unknown[], ListRow>(this.db, sql)));
    // One row more than the page tells whether another page follows without a second query.
    const rows = stmt.all(...params, c.limit + 1);
    const page = rows.slice(0, c.limit);
    const items = page.map((r) => JSON.parse(r.body) as Incident);
    const last = page.at(-1);
    return rows.length > c.limit && last ? { items, nextCursor: encodeCursor(last) } : { items };
  }

  async open(): Promise<Incident[]> {
    this.assertOpen();
    return this.stmt.openIncidents.all().map((r) => JSON.parse(r.body) as Incident);
  }

  async signals(incidentId: string, limit: number): Promise<Signal[]> {
    this.assertOpen();
    checkSignalLimit(limit);
    return this.stmt.signalsOf.all(incidentId, limit).map((r) => JSON.parse(r.body) as Signal);
  }

  async getState(key: string): Promise<string | undefined> {
    this.assertOpen();
    return this.stmt.getState.get(key)?.value;
  }

  async setState(key: string, value: string): Promise<void> {
    this.assertOpen();
    this.stmt.setState.run(key, value);
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }

  private write(incidents: Incident[], signals: IncidentSignal[]): void {
    for (const inc of incidents) {
      const { changes } = this.stmt.upsertIncident.run({
        id: inc.id,
        status: inc.status,
        severityRank: severityRank(inc.severity),
        actor: inc.actor.key,
        firstSeen: inc.firstSeen,
        lastSeen: inc.lastSeen,
        version: inc.version,
        // The JSON written with the correlator's snapshot, when there is one (services/correlate.ts).
        body: writtenJson(inc) ?? JSON.stringify(inc),
      });
      // No change means the stored version was newer: its namespaces must stay too.
      if (Number(changes) === 0) continue;
      this.stmt.deleteNamespaces.run(inc.id);
      for (const ns of inc.blastRadius.namespaces) this.stmt.insertNamespace.run(inc.id, ns);
    }
    const known = new Set<string>();
    for (const { incidentId, signal } of signals) {
      if (!known.has(incidentId)) {
        // Checked here rather than left to the foreign key so the error names the incident.
        if (!this.stmt.incidentExists.get(incidentId)) throw new UnknownIncidentError(incidentId, signal.id);
        known.add(incidentId);
      }
      this.stmt.insertSignal.run(incidentId, signal.id, signal.eventTime, JSON.stringify(signal));
    }
  }

  private assertOpen(): void {
    if (!this.db.isOpen) throw new StoreClosedError(`SqliteStore ${this.path}`);
  }
}

/** The list query for a checked query's shape, with its parameters (the page size comes last). */
function listSql(c: CheckedQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (c.statuses) {
    where.push(`status IN (${c.statuses.map(() => '?').join(', ')})`);
    params.push(...c.statuses);
  }
  if (c.minSeverity !== undefined) {
    where.push('severity_rank >= ?');
    params.push(severityRank(c.minSeverity));
  }
  if (c.actor !== undefined) {
    where.push('actor = ?');
    params.push(c.actor);
  }
  if (c.namespace !== undefined) {
    where.push('id IN (SELECT incident_id FROM incident_namespaces WHERE namespace = ?)');
    params.push(c.namespace);
  }
  if (c.since !== undefined) {
    where.push('last_seen >= ?');
    params.push(c.since);
  }
  if (c.after) {
    where.push('(last_seen, id) < (?, ?)');
    params.push(c.after.lastSeen, c.after.id);
  }
  const sql = `SELECT id, last_seen AS lastSeen, body FROM incidents${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY last_seen DESC, id DESC LIMIT ?`;
  return { sql, params };
}

/** Opens the SQLite store at `path` (`:memory:` for a private in-memory database). */
export function openSqliteStore(path: string): SqliteStore {
  return new SqliteStore(path);
}

interface OutboxRow {
  seq: number;
  incidentId: string;
  version: number;
  sink: string;
  lane: string;
  payload: string;
  status: OutboxStatus;
  attempts: number;
  dueAt: number;
  leaseUntil: number;
  createdAt: number;
  finishedAt: number | null;
  lastError: string | null;
  note: string | null;
}

const OUTBOX_COLUMNS = `seq, incident_id AS incidentId, version, sink, lane, payload, status, attempts, due_at AS dueAt,
  lease_until AS leaseUntil, created_at AS createdAt, finished_at AS finishedAt, last_error AS lastError, note`;

function outboxItem(r: OutboxRow): OutboxItem {
  const { finishedAt, lastError, note, ...rest } = r;
  return {
    ...rest,
    ...(finishedAt === null ? {} : { finishedAt }),
    ...(lastError === null ? {} : { lastError }),
    ...(note === null ? {} : { note }),
  };
}

/** The {@link NotificationOutbox} of a {@link SqliteStore}: the `outbox` table. */
class SqliteOutbox implements NotificationOutbox {
  private readonly stmt;
  private readonly enqueueTx: (entries: OutboxEntry[], now: number) => number;
  private readonly claimTx: (lane: string, now: number, limit: number, leaseUntil: number) => OutboxRow[];
  private readonly listStatements = new Map<string, Statement<unknown[], OutboxRow>>();

  constructor(
    private readonly db: DatabaseSync,
    private readonly assertOpen: () => void,
  ) {
    this.stmt = {
      insert: prepare<[OutboxEntry & { now: number }]>(
        db,
        `INSERT INTO outbox (incident_id, version, sink, lane, payload, due_at, created_at)
         VALUES (@incidentId, @version, @sink, @lane, @payload, @dueAt, @now)
         ON CONFLICT (incident_id, version, sink) DO NOTHING`,
      ),
      lanesDue: prepare<[number, number], { lane: string }>(
        db,
        `SELECT DISTINCT lane FROM outbox WHERE status = 'pending' AND due_at <= ? AND lease_until <= ? ORDER BY lane`,
      ),
      claim: prepare<[number, string, number, number, number], OutboxRow>(
        db,
        `UPDATE outbox SET lease_until = ?, attempts = attempts + 1
         WHERE seq IN (SELECT seq FROM outbox WHERE status = 'pending' AND lane = ? AND due_at <= ? AND lease_until <= ?
                       ORDER BY seq LIMIT ?)
         RETURNING ${OUTBOX_COLUMNS}`,
      ),
      finish: prepare<[{ seq: number; status: OutboxStatus; now: number; error: string | null; note: string | null }]>(
        db,
        `UPDATE outbox SET status = @status, finished_at = @now, lease_until = 0,
           last_error = coalesce(@error, last_error), note = coalesce(@note, note)
         WHERE seq = @seq AND status = 'pending'`,
      ),
      retry: prepare<[number, string, number]>(db, `UPDATE outbox SET due_at = ?, lease_until = 0, last_error = ? WHERE seq = ? AND status = 'pending'`),
      release: prepare<[number, number]>(
        db,
        `UPDATE outbox SET due_at = ?, lease_until = 0, attempts = max(0, attempts - 1) WHERE seq = ? AND status = 'pending'`,
      ),
      nextDue: prepare<[], { at: number | null }>(db, `SELECT min(max(due_at, lease_until)) AS at FROM outbox WHERE status = 'pending'`),
      prune: prepare<[number]>(db, `DELETE FROM outbox WHERE status != 'pending' AND finished_at < ?`),
    };
    this.enqueueTx = (entries, now) =>
      immediate(db, () => {
        let added = 0;
        for (const e of entries) added += Number(this.stmt.insert.run({ ...e, now }).changes);
        return added;
      });
    // Immediate: two processes claiming from one file must not both read the same due items.
    this.claimTx = (lane, now, limit, leaseUntil) => immediate(db, () => this.stmt.claim.all(leaseUntil, lane, now, now, limit));
  }

  async enqueue(entries: OutboxEntry[], now: number): Promise<number> {
    this.assertOpen();
    if (entries.length === 0) return 0;
    return this.enqueueTx(entries, now);
  }

  async lanesDue(now: number): Promise<string[]> {
    this.assertOpen();
    return this.stmt.lanesDue.all(now, now).map((r) => r.lane);
  }

  async claim(lane: string, now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    this.assertOpen();
    // RETURNING gives rows in no defined order.
    return this.claimTx(lane, now, limit, now + leaseMs)
      .sort((a, b) => a.seq - b.seq)
      .map(outboxItem);
  }

  async complete(seq: number, now: number, note?: string): Promise<void> {
    this.assertOpen();
    this.stmt.finish.run({ seq, status: 'done', now, error: null, note: note ?? null });
  }

  async retry(seq: number, dueAt: number, error: string): Promise<void> {
    this.assertOpen();
    this.stmt.retry.run(dueAt, error, seq);
  }

  async release(seq: number, dueAt: number): Promise<void> {
    this.assertOpen();
    this.stmt.release.run(dueAt, seq);
  }

  async fail(seq: number, now: number, error: string): Promise<void> {
    this.assertOpen();
    this.stmt.finish.run({ seq, status: 'failed', now, error, note: null });
  }

  async nextDue(): Promise<number | undefined> {
    this.assertOpen();
    return this.stmt.nextDue.get()?.at ?? undefined;
  }

  async list(q: OutboxQuery): Promise<OutboxItem[]> {
    this.assertOpen();
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of [
      ['status', q.status],
      ['incident_id', q.incidentId],
      ['sink', q.sink],
    ] as const) {
      if (value === undefined) continue;
      where.push(`${column} = ?`);
      params.push(value);
    }
    const sql = `SELECT ${OUTBOX_COLUMNS} FROM outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    let stmt = this.listStatements.get(sql);
    if (!stmt) this.listStatements.set(sql, (stmt = prepare<unknown[], OutboxRow>(this.db, sql)));
    return stmt.all(...params, q.limit).map(outboxItem);
  }

  async prune(finishedBefore: number): Promise<number> {
    this.assertOpen();
    return Number(this.stmt.prune.run(finishedBefore).changes);
  }
}

/** The {@link SilenceStore} of a {@link SqliteStore}: the `silences` table. */
class SqliteSilences implements SilenceStore {
  private readonly stmt;

  constructor(
    db: DatabaseSync,
    private readonly assertOpen: () => void,
  ) {
    this.stmt = {
      put: prepare<[string, number, string]>(
        db,
        'INSERT INTO silences (id, updated_at, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, body = excluded.body',
      ),
      get: prepare<[string], { body: string }>(db, 'SELECT body FROM silences WHERE id = ?'),
      list: prepare<[], { body: string }>(db, 'SELECT body FROM silences ORDER BY updated_at DESC, id'),
      delete: prepare<[string]>(db, 'DELETE FROM silences WHERE id = ?'),
    };
  }

  async put(silence: Silence): Promise<void> {
    this.assertOpen();
    this.stmt.put.run(silence.id, silence.updatedAt, JSON.stringify(silence));
  }

  async get(id: string): Promise<Silence | undefined> {
    this.assertOpen();
    const row = this.stmt.get.get(id);
    return row && (JSON.parse(row.body) as Silence);
  }

  async list(): Promise<Silence[]> {
    this.assertOpen();
    return this.stmt.list.all().map((r) => JSON.parse(r.body) as Silence);
  }

  async delete(ids: string[]): Promise<number> {
    this.assertOpen();
    let n = 0;
    for (const id of ids) n += Number(this.stmt.delete.run(id).changes);
    return n;
  }
}
