/**
 * Pulls log lines from a Loki server: configured LogQL queries run against
 * `GET /loki/api/v1/query_range` on a node-cron schedule, for clusters where adding a push target
 * to Promtail/Alloy is not an option.
 *
 * No duplicates across polls: each query keeps a persisted cursor — the newest timestamp handed
 * on, and hashes of the lines at exactly that timestamp. The next query starts AT that timestamp
 * (Loki's start is inclusive), so lines that arrive late with the same timestamp are still read,
 * and the hashed ones are skipped. A page that fills `limit` is followed by another from its last
 * timestamp, up to `maxPages` per poll; the rest waits for the next poll. The cursor only moves
 * after the sink accepted the page, so a refused page is read again. Errors are counted and
 * remembered, never thrown: a poller must outlive a Loki outage.
 */
import { createHash } from 'node:crypto';
import { validate } from 'node-cron';
import { ConfigError } from '../../correlator/errors.js';
import type { IngestSink } from '../../correlator/ports.js';
import { formatLabelSet } from './labels.js';
import { normalizeLokiEntry, type LokiSourceEvent } from './normalize.js';
import { DEFAULT_TENANT, type LokiEntry } from './push.js';
import { isObj } from '../../correlator/json-guards.js';
import { PollSchedule } from '../../platform/schedule.js';
import { CursorStateError, CursorStore, readBounded, ResponseTooLargeError, type CursorState } from '../kit/poller.js';

/** Where cursors are kept (the incident store's getState/setState). */
export type LokiPollerState = CursorState;

/** One configured query: a name (its cursor's key) and a LogQL log query. */
export interface LokiQuery {
  name: string;
  query: string;
}

/** Why a poll of a query failed. */
export type LokiPollError = 'bad_query' | 'rate_limited' | 'server' | 'unreachable' | 'invalid_response' | 'sink' | 'state' | 'page_overflow';

/** Counters the poller reports through; the service wires them to Prometheus. */
export interface LokiPollerStats {
  /** `received`: lines read; `detected`: recognized lines sent to detection; `duplicate`: already handed on. */
  lines(outcome: 'received' | 'detected' | 'duplicate', n: number): void;
  error(reason: LokiPollError): void;
  /** One query polled, successfully or not. */
  poll(ok: boolean): void;
}

/** Options of {@link LokiPoller}. */
export interface LokiPollerOptions {
  /** Base URL of Loki (or its query frontend / gateway), e.g. `http://loki-gateway.monitoring`. */
  url: string;
  queries: LokiQuery[];
  sink: IngestSink;
  state: LokiPollerState;
  /** `X-Scope-OrgID` sent with each query and the tenant of the events (default: none sent, events `fake`). */
  tenant?: string;
  /** Extra request headers (e.g. Authorization for a gateway). */
  headers?: Record<string, string>;
  /** node-cron expression (default every 30 s: `*\/30 * * * * *`). */
  schedule?: string;
  /** Entries per request (default 1000; Loki's max_entries_limit_per_query is 5000). */
  limit?: number;
  /** Pages per query and poll (default 10). */
  maxPages?: number;
  /** How far back the first poll (and a quiet query) looks, in ms (default 5 min). */
  lookbackMs?: number;
  /** Lines younger than this are left for the next poll, to let slow shippers catch up (default 5 s). */
  delayMs?: number;
  /** Per-request timeout in ms (default 15 s). */
  timeoutMs?: number;
  /** Largest response body read, in bytes (default 32 MiB). */
  maxResponseBytes?: number;
  stats?: LokiPollerStats;
  /** Told about each failed query poll with its reason and message, for logs; the poller itself only counts. */
  onError?: (query: string, reason: LokiPollError, message: string) => void;
  now?: () => number;
  fetch?: typeof fetch;
}

/** What one poll of one query did. */
export interface QueryPollReport {
  name: string;
  pages: number;
  received: number;
  detected: number;
  duplicates: number;
  error?: { reason: LokiPollError; message: string };
}

/** The cursor persisted per query. */
interface Cursor {
  /** Nanoseconds since the epoch of the newest line handed on. */
  ts: string;
  /** Hashes of the lines handed on with exactly that timestamp. */
  seen: string[];
}

const MAX_SEEN = 10_000;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

class PollError extends Error {
  constructor(
    readonly reason: LokiPollError,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** The state key of a query's cursor. */
export const cursorKey = (name: string): string => `loki.poller.cursor.${name}`;

const msToNs = (ms: number): bigint => BigInt(Math.max(0, Math.trunc(ms))) * 1_000_000n;
const entryHash = (labels: string, line: string) => createHash('sha256').update(labels).update('\u0000').update(line).digest('hex').slice(0, 24);
const isStringMap = (v: unknown): v is Record<string, string> => isObj(v) && Object.values(v).every((x) => typeof x === 'string');

/** Validates poller options; every problem is listed. */
export function checkPollerOptions(o: Pick<LokiPollerOptions, 'url' | 'queries' | 'schedule' | 'limit' | 'maxPages'>): string[] {
  const problems: string[] = [];
  try {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`LOKI_URL (${o.url}) must be an http(s) URL such as http://loki-gateway.monitoring`);
  } catch {
    problems.push(`LOKI_URL (${o.url}) is not a URL; use e.g. http://loki-gateway.monitoring:80`);
  }
  if (o.queries.length === 0)
    problems.push('LOKI_QUERIES is empty; give at least one {name, query}, e.g. [{"name":"istio","query":"{container=\\"istio-proxy\\"}"}]');
  const names = new Set<string>();
  for (const q of o.queries) {
    if (!NAME.test(q.name)) problems.push(`query name ${JSON.stringify(q.name)} must be 1-64 letters, digits, "_", "." or "-" (it names the cursor)`);
    if (names.has(q.name)) problems.push(`query name ${q.name} is used twice; names key the cursors`);
    names.add(q.name);
    if (!q.query.trim().startsWith('{'))
      problems.push(`query ${q.name} (${q.query.slice(0, 60)}) must be a log query starting with a stream selector such as {namespace="istio-system"}`);
  }
  if (o.schedule !== undefined && !validate(o.schedule))
    problems.push(`LOKI_POLL_SCHEDULE (${o.schedule}) is not a cron expression; every 30 s is "*/30 * * * * *"`);
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > 5000))
    problems.push(`limit (${o.limit}) must be 1 to 5000 (Loki's max_entries_limit_per_query default)`);
  if (o.maxPages !== undefined && (!Number.isInteger(o.maxPages) || o.maxPages < 1)) problems.push(`maxPages (${o.maxPages}) must be at least 1`);
  return problems;
}

/** Runs configured LogQL queries against Loki on a schedule and hands recognized lines to the sink. */
export class LokiPoller {
  private readonly schedule: PollSchedule<QueryPollReport[]>;
  private readonly cursors: CursorStore<Cursor>;
  private backoffUntil = 0;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private readonly limit: number;
  private readonly maxPages: number;
  /** The last error per query, for health reporting. */
  readonly lastErrors = new Map<string, { at: number; reason: LokiPollError; message: string }>();

  constructor(private readonly opts: LokiPollerOptions) {
    const problems = checkPollerOptions(opts);
    if (problems.length) throw new ConfigError(problems);
    this.now = opts.now ?? Date.now;
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.limit = opts.limit ?? 1000;
    this.maxPages = opts.maxPages ?? 10;
    this.schedule = new PollSchedule('loki-poller', opts.schedule ?? '*/30 * * * * *', () => this.pollAll());
    this.cursors = new CursorStore(opts.state, cursorKey, (v) =>
      isObj(v) && typeof v.ts === 'string' && /^\d{1,19}$/.test(v.ts) && Array.isArray(v.seen)
        ? { ts: v.ts, seen: v.seen.filter((x): x is string => typeof x === 'string') }
        : undefined,
    );
  }

  /** Starts polling on the schedule. */
  start(): void {
    this.schedule.start();
  }

  /** Stops the schedule and waits for a poll in progress. */
  async stop(): Promise<void> {
    await this.schedule.stop();
  }

  /** Polls every query once (in order); concurrent calls share the poll in progress. Never rejects. */
  pollOnce(): Promise<QueryPollReport[]> {
    return this.schedule.pollOnce();
  }

  private async pollAll(): Promise<QueryPollReport[]> {
    const reports: QueryPollReport[] = [];
    for (const q of this.opts.queries) {
      const report: QueryPollReport = { name: q.name, pages: 0, received: 0, detected: 0, duplicates: 0 };
      if (this.now() < this.backoffUntil) {
        report.error = { reason: 'rate_limited', message: `Loki asked to wait until ${new Date(this.backoffUntil).toISOString()}` };
        reports.push(report);
        continue;
      }
      try {
        await this.pollQuery(q, report);
        this.opts.stats?.poll(true);
      } catch (e) {
        const err = e instanceof PollError ? e : new PollError('unreachable', (e as Error).message);
        report.error = { reason: err.reason, message: err.message };
        this.lastErrors.set(q.name, { at: this.now(), reason: err.reason, message: err.message });
        this.opts.stats?.error(err.reason);
        this.opts.stats?.poll(false);
        this.opts.onError?.(q.name, err.reason, err.message);
        if (err.reason === 'rate_limited') this.backoffUntil = this.now() + (err.retryAfterSeconds ?? 30) * 1000;
      }
      reports.push(report);
    }
    return reports;
  }

  private async readCursor(name: string): Promise<Cursor | undefined> {
    try {
      return await this.cursors.load(name);
    } catch (e) {
      throw e instanceof CursorStateError ? new PollError('state', e.message) : e;
    }
  }

  private async writeCursor(name: string, c: Cursor): Promise<void> {
    try {
      await this.cursors.save(name, c);
    } catch (e) {
      throw e instanceof CursorStateError ? new PollError('state', e.message) : e;
    }
  }

  private async pollQuery(q: LokiQuery, report: QueryPollReport): Promise<void> {
    const now = this.now();
    const end = msToNs(now - (this.opts.delayMs ?? 5000));
    const floor = msToNs(now - (this.opts.lookbackMs ?? 5 * 60_000));
    let cursor = await this.readCursor(q.name);
    let start = cursor ? BigInt(cursor.ts) : floor;
    let progressed = false;
    for (let page = 0; page < this.maxPages && start < end; page++) {
      const entries = await this.queryRange(q.query, start, end);
      report.pages++;
      report.received += entries.length;
      this.opts.stats?.lines('received', entries.length);
      const seen = new Set(cursor?.seen ?? []);
      const fresh: { entry: LokiEntry; hash: string }[] = [];
      let dups = 0;
      for (const { entry, hash } of entries) {
        if (cursor && entry.time === cursor.ts && seen.has(hash)) dups++;
        else if (!cursor || BigInt(entry.time) >= BigInt(cursor.ts)) fresh.push({ entry, hash });
      }
      report.duplicates += dups;
      this.opts.stats?.lines('duplicate', dups);
      if (fresh.length) {
        const observed = this.now();
        const events: LokiSourceEvent[] = [];
        for (const f of fresh) {
          const ev = normalizeLokiEntry(f.entry, observed);
          if (ev.understood) events.push(ev);
        }
        if (events.length) {
          try {
            await this.opts.sink.ingest(events);
          } catch (e) {
            throw new PollError('sink', `the bus refused ${events.length} events of ${q.name}: ${(e as Error).message}`);
          }
        }
        report.detected += events.length;
        this.opts.stats?.lines('detected', events.length);
        const maxTs = fresh[fresh.length - 1]!.entry.time;
        const atMax = fresh.filter((f) => f.entry.time === maxTs).map((f) => f.hash);
        const carried = cursor && cursor.ts === maxTs ? cursor.seen : [];
        cursor = { ts: maxTs, seen: [...carried, ...atMax].slice(-MAX_SEEN) };
        await this.writeCursor(q.name, cursor);
        progressed = true;
      }
      if (entries.length < this.limit) return this.settle(q, cursor, progressed, floor);
      const last = BigInt(entries[entries.length - 1]!.entry.time);
      if (!fresh.length && last === start) {
        // A whole page of lines with one timestamp, all seen: more of them than `limit` exist and
        // Loki cannot page inside one timestamp. Step past it rather than loop forever.
        cursor = { ts: (start + 1n).toString(), seen: [] };
        await this.writeCursor(q.name, cursor);
        throw new PollError(
          'page_overflow',
          `${q.name}: more than ${this.limit} lines share timestamp ${start}; raise the limit (at most 5000) — lines beyond it at that timestamp were skipped`,
        );
      }
      start = last;
    }
    return this.settle(q, cursor, progressed, floor);
  }

  /** A quiet query's cursor follows the lookback window, so its query range stays bounded. */
  private async settle(q: LokiQuery, cursor: Cursor | undefined, progressed: boolean, floor: bigint): Promise<void> {
    if (!progressed && cursor && BigInt(cursor.ts) < floor) await this.writeCursor(q.name, { ts: floor.toString(), seen: [] });
  }

  private async queryRange(query: string, start: bigint, end: bigint): Promise<{ entry: LokiEntry; hash: string }[]> {
    const url = new URL(this.opts.url);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/loki/api/v1/query_range`;
    url.search = new URLSearchParams({ query, start: start.toString(), end: end.toString(), limit: String(this.limit), direction: 'forward' }).toString();
    const headers: Record<string, string> = { accept: 'application/json', 'x-loki-response-encoding-flags': 'categorize-labels', ...(this.opts.headers ?? {}) };
    if (this.opts.tenant) headers['x-scope-orgid'] = this.opts.tenant;
    let res: Response;
    try {
      res = await this.fetch(url, { headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000) });
    } catch (e) {
      throw new PollError('unreachable', `GET ${url.origin}${url.pathname} failed: ${(e as Error).message}`);
    }
    const body = await this.readBody(res);
    if (res.status === 429) {
      const ra = Number(res.headers.get('retry-after'));
      throw new PollError('rate_limited', `Loki answered 429: ${body.slice(0, 200).trim()}`, Number.isFinite(ra) && ra > 0 ? ra : undefined);
    }
    if (res.status === 400) throw new PollError('bad_query', `Loki refused the query ${JSON.stringify(query.slice(0, 120))}: ${body.slice(0, 300).trim()}`);
    if (res.status >= 500) throw new PollError('server', `Loki answered ${res.status}: ${body.slice(0, 200).trim()}`);
    if (res.status !== 200)
      throw new PollError(
        res.status === 401 || res.status === 403 ? 'bad_query' : 'server',
        `Loki answered ${res.status}: ${body.slice(0, 200).trim()} (is LOKI_TENANT / the Authorization header right?)`,
      );
    return this.parseStreams(body, query);
  }

  private async readBody(res: Response): Promise<string> {
    try {
      return await readBounded(res, this.opts.maxResponseBytes ?? 32 * 1024 * 1024);
    } catch (e) {
      if (e instanceof ResponseTooLargeError) throw new PollError('invalid_response', `${e.message}; lower the poller's limit`);
      throw new PollError('unreachable', `reading the response failed: ${(e as Error).message}`);
    }
  }

  private parseStreams(body: string, query: string): { entry: LokiEntry; hash: string }[] {
    let v: unknown;
    try {
      v = JSON.parse(body);
    } catch {
      throw new PollError('invalid_response', `the response is not JSON: ${body.slice(0, 120)}`);
    }
    if (!isObj(v) || v.status !== 'success' || !isObj(v.data))
      throw new PollError('invalid_response', `the response is not {"status":"success","data":{…}}: ${body.slice(0, 120)}`);
    if (v.data.resultType !== 'streams')
      throw new PollError(
        'bad_query',
        `the query ${JSON.stringify(query.slice(0, 120))} returned ${String(v.data.resultType)}, not log lines; use a log query (no rate(), count_over_time()…)`,
      );
    if (!Array.isArray(v.data.result)) throw new PollError('invalid_response', 'data.result is not an array');
    const tenant = this.opts.tenant ?? DEFAULT_TENANT;
    const out: { entry: LokiEntry; hash: string; n: bigint }[] = [];
    for (const [i, s] of v.data.result.entries()) {
      if (!isObj(s) || !isStringMap(s.stream) || !Array.isArray(s.values)) throw new PollError('invalid_response', `data.result[${i}] is not {stream, values}`);
      const labels = Object.freeze({ ...s.stream });
      const labelText = formatLabelSet(labels);
      for (const [j, val] of s.values.entries()) {
        if (!Array.isArray(val) || typeof val[0] !== 'string' || !/^\d{1,19}$/.test(val[0]) || typeof val[1] !== 'string')
          throw new PollError('invalid_response', `data.result[${i}].values[${j}] is not ["<unix ns>", "<line>"]`);
        const meta: unknown = val[2];
        // categorize-labels: {structuredMetadata, parsed}; otherwise metadata is merged into the stream labels.
        const sm = isObj(meta) && isStringMap(meta.structuredMetadata) ? meta.structuredMetadata : {};
        out.push({
          entry: { line: val[1], labels, metadata: Object.freeze({ ...sm }), tenant, time: val[0] },
          hash: entryHash(labelText, val[1]),
          n: BigInt(val[0]),
        });
      }
    }
    // Streams come one after another; merge them in time order (stable for equal timestamps).
    out.sort((a, b) => (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
    return out.map(({ entry, hash }) => ({ entry, hash }));
  }
}
