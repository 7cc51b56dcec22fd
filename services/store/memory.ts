/**
 * The in-memory incident store, for tests and throwaway runs. It keeps each incident and signal as
 * JSON text, exactly as the SQLite store does, so both return the same data and no caller can
 * mutate what is stored through an object it passed in or got back.
 */
import type { Incident } from '../../correlator/incident.js';
import { severityRank } from '../../correlator/severity.js';
import type { Signal } from '../../correlator/signal.js';
import {
  StoreClosedError,
  UnknownIncidentError,
  checkQuery,
  checkSignalLimit,
  encodeCursor,
  type IncidentPage,
  type IncidentQuery,
  type IncidentSignal,
  type IncidentStore,
  type NotificationOutbox,
  type OutboxEntry,
  type OutboxItem,
  type OutboxQuery,
  type PruneResult,
  type RetentionCutoffs,
  type SilenceStore,
} from './store.js';
import type { Silence } from '../../correlator/silences.js';

interface StoredIncident {
  id: string;
  status: Incident['status'];
  severityRank: number;
  actor: string;
  lastSeen: number;
  version: number;
  namespaces: ReadonlySet<string>;
  body: string;
}

interface StoredSignal {
  id: string;
  eventTime: number;
  body: string;
}

function newestFirst(a: StoredIncident, b: StoredIncident): number {
  if (a.lastSeen !== b.lastSeen) return b.lastSeen - a.lastSeen;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** {@link IncidentStore} held in process memory; lost on exit. */
export class MemoryStore implements IncidentStore {
  private readonly incidents = new Map<string, StoredIncident>();
  private readonly signalsByIncident = new Map<string, Map<string, StoredSignal>>();
  private readonly state = new Map<string, string>();
  private closed = false;
  readonly outbox: NotificationOutbox = new MemoryOutbox(() => this.assertOpen());
  readonly silences: SilenceStore = new MemorySilences(() => this.assertOpen());

  async upsert(incidents: Incident[], signals: IncidentSignal[] = []): Promise<void> {
    this.assertOpen();
    // Check everything before changing anything, so a rejected batch leaves no trace.
    const known = new Set(incidents.map((i) => i.id));
    for (const s of signals) {
      if (!known.has(s.incidentId) && !this.incidents.has(s.incidentId)) throw new UnknownIncidentError(s.incidentId, s.signal.id);
    }
    for (const inc of incidents) {
      const stored = this.incidents.get(inc.id);
      if (stored && stored.version > inc.version) continue;
      this.incidents.set(inc.id, {
        id: inc.id,
        status: inc.status,
        severityRank: severityRank(inc.severity),
        actor: inc.actor.key,
        lastSeen: inc.lastSeen,
        version: inc.version,
        namespaces: new Set(inc.blastRadius.namespaces),
        body: JSON.stringify(inc),
      });
    }
    for (const { incidentId, signal } of signals) {
      let list = this.signalsByIncident.get(incidentId);
      if (!list) this.signalsByIncident.set(incidentId, (list = new Map()));
      if (!list.has(signal.id)) list.set(signal.id, { id: signal.id, eventTime: signal.eventTime, body: JSON.stringify(signal) });
    }
  }

  async get(id: string): Promise<Incident | undefined> {
    this.assertOpen();
    const stored = this.incidents.get(id);
    return stored && (JSON.parse(stored.body) as Incident);
  }

  async list(q: IncidentQuery): Promise<IncidentPage> {
    this.assertOpen();
    const c = checkQuery(q);
    const minRank = c.minSeverity === undefined ? undefined : severityRank(c.minSeverity);
    const matches = [...this.incidents.values()]
      .filter(
        (i) =>
          (!c.statuses || c.statuses.includes(i.status)) &&
          (minRank === undefined || i.severityRank >= minRank) &&
          (c.actor === undefined || i.actor === c.actor) &&
          (c.namespace === undefined || i.namespaces.has(c.namespace)) &&
          (c.since === undefined || i.lastSeen >= c.since) &&
          (!c.after || i.lastSeen < c.after.lastSeen || (i.lastSeen === c.after.lastSeen && i.id < c.after.id)),
      )
      .sort(newestFirst);
    const page = matches.slice(0, c.limit);
    const last = page.at(-1);
    const items = page.map((i) => JSON.parse(i.body) as Incident);
    return matches.length > c.limit && last ? { items, nextCursor: encodeCursor(last) } : { items };
  }

  async open(): Promise<Incident[]> {
    this.assertOpen();
    return [...this.incidents.values()]
      .filter((i) => i.status === 'open' || i.status === 'acknowledged')
      .sort(newestFirst)
      .map((i) => JSON.parse(i.body) as Incident);
  }

  async signals(incidentId: string, limit: number): Promise<Signal[]> {
    this.assertOpen();
    checkSignalLimit(limit);
    return [...(this.signalsByIncident.get(incidentId)?.values() ?? [])]
      .sort((a, b) => a.eventTime - b.eventTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit)
      .map((s) => JSON.parse(s.body) as Signal);
  }

  async getState(key: string): Promise<string | undefined> {
    this.assertOpen();
    return this.state.get(key);
  }

  async setState(key: string, value: string): Promise<void> {
    this.assertOpen();
    this.state.set(key, value);
  }

  async prune(c: RetentionCutoffs): Promise<PruneResult> {
    this.assertOpen();
    const out: PruneResult = { incidents: 0, signals: 0 };
    for (const [id, stored] of this.incidents) {
      if (stored.status !== 'resolved') continue;
      const inc = JSON.parse(stored.body) as Incident;
      const list = this.signalsByIncident.get(id);
      if (c.incidentsResolvedBefore !== undefined && (inc.resolvedAt ?? inc.updatedAt) < c.incidentsResolvedBefore) {
        this.incidents.delete(id);
        this.signalsByIncident.delete(id);
        out.incidents++;
        out.signals += list?.size ?? 0;
      } else if (c.signalsBefore !== undefined && list)
        for (const [sid, s] of list)
          if (s.eventTime < c.signalsBefore) {
            list.delete(sid);
            out.signals++;
          }
    }
    return out;
  }

  async sizeBytes(): Promise<number | undefined> {
    this.assertOpen();
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('MemoryStore');
  }
}

/** The {@link NotificationOutbox} of a {@link MemoryStore}. */
class MemoryOutbox implements NotificationOutbox {
  private readonly items = new Map<number, OutboxItem>();
  private readonly keys = new Set<string>();
  private seq = 0;

  constructor(private readonly assertOpen: () => void) {}

  async enqueue(entries: OutboxEntry[], now: number): Promise<number> {
    this.assertOpen();
    let added = 0;
    for (const e of entries) {
      const key = JSON.stringify([e.incidentId, e.version, e.sink]);
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      const seq = ++this.seq;
      this.items.set(seq, { ...e, seq, status: 'pending', attempts: 0, createdAt: now, leaseUntil: 0 });
      added++;
    }
    return added;
  }

  async lanesDue(now: number): Promise<string[]> {
    this.assertOpen();
    return [...new Set(this.due(now).map((i) => i.lane))];
  }

  async claim(lane: string, now: number, limit: number, leaseMs: number): Promise<OutboxItem[]> {
    this.assertOpen();
    const claimed = this.due(now)
      .filter((i) => i.lane === lane)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, limit);
    for (const i of claimed) {
      i.leaseUntil = now + leaseMs;
      i.attempts++;
    }
    return claimed.map((i) => ({ ...i }));
  }

  async complete(seq: number, now: number, note?: string): Promise<void> {
    this.finish(seq, now, 'done', undefined, note);
  }

  async retry(seq: number, dueAt: number, error: string): Promise<void> {
    const i = this.pending(seq);
    if (!i) return;
    Object.assign(i, { dueAt, leaseUntil: 0, lastError: error });
  }

  async release(seq: number, dueAt: number): Promise<void> {
    const i = this.pending(seq);
    if (!i) return;
    Object.assign(i, { dueAt, leaseUntil: 0, attempts: Math.max(0, i.attempts - 1) });
  }

  async fail(seq: number, now: number, error: string): Promise<void> {
    this.finish(seq, now, 'failed', error);
  }

  async nextDue(): Promise<number | undefined> {
    this.assertOpen();
    let next: number | undefined;
    for (const i of this.items.values()) {
      if (i.status !== 'pending') continue;
      const at = Math.max(i.dueAt, i.leaseUntil);
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  async list(q: OutboxQuery): Promise<OutboxItem[]> {
    this.assertOpen();
    return [...this.items.values()]
      .filter(
        (i) =>
          (q.status === undefined || i.status === q.status) &&
          (q.incidentId === undefined || i.incidentId === q.incidentId) &&
          (q.sink === undefined || i.sink === q.sink),
      )
      .sort((a, b) => a.seq - b.seq)
      .slice(0, q.limit)
      .map((i) => ({ ...i }));
  }

  async prune(finishedBefore: number): Promise<number> {
    this.assertOpen();
    let removed = 0;
    for (const [seq, i] of this.items) {
      if (i.status === 'pending' || i.finishedAt === undefined || i.finishedAt >= finishedBefore) continue;
      this.items.delete(seq);
      this.keys.delete(JSON.stringify([i.incidentId, i.version, i.sink]));
      removed++;
    }
    return removed;
  }

  private due(now: number): OutboxItem[] {
    return [...this.items.values()].filter((i) => i.status === 'pending' && i.dueAt <= now && i.leaseUntil <= now);
  }

  private pending(seq: number): OutboxItem | undefined {
    this.assertOpen();
    const i = this.items.get(seq);
    return i?.status === 'pending' ? i : undefined;
  }

  private finish(seq: number, now: number, status: 'done' | 'failed', error?: string, note?: string): void {
    const i = this.pending(seq);
    if (!i) return;
    Object.assign(i, { status, finishedAt: now, leaseUntil: 0 }, error === undefined ? {} : { lastError: error }, note === undefined ? {} : { note });
  }
}

/** The {@link SilenceStore} of a {@link MemoryStore}: JSON text per id, as SQLite keeps it. */
export class MemorySilences implements SilenceStore {
  private readonly byId = new Map<string, string>();

  constructor(private readonly assertOpen: () => void = () => undefined) {}

  async put(silence: Silence): Promise<void> {
    this.assertOpen();
    this.byId.set(silence.id, JSON.stringify(silence));
  }

  async get(id: string): Promise<Silence | undefined> {
    this.assertOpen();
    const body = this.byId.get(id);
    return body === undefined ? undefined : (JSON.parse(body) as Silence);
  }

  async list(): Promise<Silence[]> {
    this.assertOpen();
    return [...this.byId.values()].map((b) => JSON.parse(b) as Silence).sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1));
  }

  async delete(ids: string[]): Promise<number> {
    this.assertOpen();
    let n = 0;
    for (const id of ids) if (this.byId.delete(id)) n++;
    return n;
  }
}
