/**
 * A poller of Grafana Tempo: runs configured TraceQL queries (`{ span.http.response.status_code = 403 }`)
 * against `GET /api/search` on a node-cron schedule, fetches the traces of the spans they matched
 * (`/api/v2/traces/<id>`, or v1), and hands those spans to detection like the OTLP receiver does.
 *
 * Each query keeps a cursor (the end of the last window searched) in the injected state, so a
 * restart resumes where it stopped. Windows overlap by `overlapSeconds` because Tempo makes spans
 * searchable only after its ingesters flush them; spans seen in the overlap are recognised by
 * (trace id, span id) — in memory, and persisted with the cursor — so nothing is handed on twice.
 * A span is marked seen only once the sink took it: a failed fetch or a refused batch is retried
 * at the next poll. Tempo's search answers hold at most `limit` traces, newest first, so a full
 * page is followed by another ending where it stopped. Errors are counted, never thrown.
 */
import { createHash } from 'node:crypto';
import type { IngestSink } from '../../correlator/ports.js';
import type { SourceEvent } from '../../correlator/detection/source-event.js';
import { RecentKeys } from '../../correlator/recent-keys.js';
import { normalizeSpan } from './normalize.js';
import { decodeOtlpValue, normalizeSpanId, normalizeTraceId, OtlpPayloadError, type ParseLimits, DEFAULT_LIMITS } from './parse.js';
import { isObj } from '../../correlator/json-guards.js';
import { PollSchedule } from '../../platform/schedule.js';
import { CursorStateError, CursorStore, readBounded, ResponseTooLargeError, type CursorState } from '../kit/poller.js';

/** Where cursors are kept (the service's store in production; a Map in tests). */
export type PollerState = CursorState;

/** What went wrong, by kind: the labels of the poller's error counter. */
export type TempoPollErrorKind =
  'search' | 'search_rejected' | 'trace' | 'trace_not_found' | 'decode' | 'span_missing' | 'sink' | 'state' | 'truncated' | 'too_large';

/** Counters the poller reports through; the service wires them to Prometheus. */
export interface TempoPollerStats {
  polls(outcome: 'ok' | 'error'): void;
  spans(outcome: 'accepted' | 'duplicate', n: number): void;
  errors(kind: TempoPollErrorKind, n?: number): void;
}

/** Options of {@link TempoPoller}. */
export interface TempoPollerOptions {
  /** Tempo's HTTP base URL (query-frontend), e.g. http://tempo.monitoring:3200. */
  url: string;
  /** TraceQL queries; each has its own cursor. */
  queries: readonly string[];
  sink: IngestSink;
  state: PollerState;
  /** node-cron expression (five fields, or six with seconds); default every minute. */
  schedule?: string;
  /** Traces per search answer (Tempo's `limit`, default 100). */
  limit?: number;
  /** Matching spans returned per trace (Tempo's `spss`, default 50). */
  spansPerSpanSet?: number;
  /** How far back the first poll of a query looks (default 1 h). */
  lookbackSeconds?: number;
  /** How much each window overlaps the previous one, for spans Tempo indexed late (default 120 s). */
  overlapSeconds?: number;
  /** Search pages (each ending where the last full one stopped) per query and poll (default 10). */
  maxPages?: number;
  /** Which trace-by-id API to use: v2 (Tempo 2.3+, the default) or v1. */
  traceApi?: 'v1' | 'v2';
  /** Sent with every request: `X-Scope-OrgID` for a multi-tenant Tempo, `Authorization`. */
  headers?: Record<string, string>;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Largest response body read, in bytes (default 16 MiB); larger traces are skipped and counted. */
  maxResponseBytes?: number;
  /** Span keys remembered for deduplication across queries (default 100,000). */
  dedupEntries?: number;
  limits?: ParseLimits;
  stats?: TempoPollerStats;
  /** Told about each error with its context, for logs; the poller itself only counts. */
  onError?: (kind: TempoPollErrorKind, detail: string) => void;
  fetch?: typeof fetch;
  now?: () => number;
}

/** What one poll did, for tests and logs. */
export interface PollReport {
  /** Spans handed to the sink. */
  accepted: number;
  /** Matched spans already handed on by an earlier poll or query. */
  duplicates: number;
  /** Traces fetched. */
  traces: number;
  errors: number;
}

/** The persisted cursor of one query. */
interface Cursor {
  /** End of the last window searched, Unix seconds. */
  end: number;
  /** Span keys (`trace/span`) seen in the overlap, with their start second. */
  seen: [string, number][];
}

interface SearchSpan {
  spanID?: unknown;
  startTimeUnixNano?: unknown;
}
interface SearchTrace {
  traceID?: unknown;
  startTimeUnixNano?: unknown;
  spanSet?: { spans?: SearchSpan[] };
  spanSets?: { spans?: SearchSpan[] }[];
}

class PollError extends Error {
  constructor(
    readonly kind: TempoPollErrorKind,
    message: string,
  ) {
    super(message);
  }
}

const MAX_PERSISTED_SEEN = 10_000;

/** Splits `TEMPO_QUERIES` into TraceQL queries: one per line or `;`-separated (outside quoted strings). */
export function splitTraceQLQueries(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (!quoted && (c === ';' || c === '\n')) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((q) => q.trim()).filter((q) => q !== '');
}

/** The state key of a query's cursor. */
export function cursorKey(query: string): string {
  return `tempo:cursor:${createHash('sha256').update(query).digest('hex').slice(0, 16)}`;
}

function secondsOf(ns: unknown): number | undefined {
  if (typeof ns === 'string' && /^\d{10,}$/.test(ns)) return Number(ns.slice(0, -9));
  if (typeof ns === 'number' && Number.isFinite(ns)) return Math.floor(ns / 1e9);
  return undefined;
}

/** Polls Tempo with TraceQL queries on a schedule; see the module header. */
export class TempoPoller {
  private readonly o: Required<Omit<TempoPollerOptions, 'headers' | 'onError' | 'stats'>> & Pick<TempoPollerOptions, 'headers' | 'onError' | 'stats'>;
  private readonly seen: RecentKeys;
  private readonly schedule: PollSchedule<PollReport>;
  private readonly cursors: CursorStore<Cursor>;

  constructor(opts: TempoPollerOptions) {
    const schedule = opts.schedule ?? '* * * * *';
    if (opts.queries.length === 0)
      throw new RangeError('TEMPO_QUERIES is empty; give at least one TraceQL query such as { span.http.response.status_code = 403 }');
    this.o = {
      schedule,
      limit: 100,
      spansPerSpanSet: 50,
      lookbackSeconds: 3600,
      overlapSeconds: 120,
      maxPages: 10,
      traceApi: 'v2',
      timeoutMs: 10_000,
      maxResponseBytes: 16 * 1024 * 1024,
      dedupEntries: 100_000,
      limits: DEFAULT_LIMITS,
      fetch: globalThis.fetch,
      now: Date.now,
      ...opts,
      url: opts.url.replace(/\/+$/, ''),
    };
    this.seen = new RecentKeys(this.o.dedupEntries);
    try {
      this.schedule = new PollSchedule('tempo-poller', schedule, () => this.pollAll());
    } catch {
      throw new RangeError(`TEMPO_POLL_SCHEDULE "${schedule}" is not a cron expression; "* * * * *" polls every minute`);
    }
    this.cursors = new CursorStore(this.o.state, cursorKey, (c) =>
      isObj(c) && typeof c.end === 'number' && Array.isArray(c.seen)
        ? { end: c.end, seen: c.seen.filter((x): x is [string, number] => Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'number') }
        : undefined,
    );
  }

  /** Starts polling on the schedule; a poll still running when the next is due is not doubled. */
  start(): void {
    this.schedule.start();
  }

  /** Stops the schedule and waits for a poll in progress. */
  async stop(): Promise<void> {
    await this.schedule.stop();
  }

  /** Runs every query once; never rejects. */
  pollOnce(): Promise<PollReport> {
    return this.schedule.pollOnce();
  }

  private async pollAll(): Promise<PollReport> {
    const report: PollReport = { accepted: 0, duplicates: 0, traces: 0, errors: 0 };
    for (const q of this.o.queries) {
      try {
        await this.pollQuery(q, report);
      } catch (e) {
        this.error(report, e instanceof PollError ? e.kind : 'search', `${q}: ${(e as Error).message}`);
      }
    }
    this.o.stats?.polls(report.errors ? 'error' : 'ok');
    return report;
  }

  private error(report: PollReport, kind: TempoPollErrorKind, detail: string): void {
    report.errors++;
    this.o.stats?.errors(kind);
    this.o.onError?.(kind, detail);
  }

  private async loadCursor(query: string): Promise<Cursor | undefined> {
    try {
      return await this.cursors.load(query);
    } catch (e) {
      throw e instanceof CursorStateError ? new PollError('state', e.message) : e;
    }
  }

  private async pollQuery(query: string, report: PollReport): Promise<void> {
    const end = Math.floor(this.o.now() / 1000);
    const cursor = await this.loadCursor(query);
    const start = Math.min(end - 1, Math.max(end - this.o.lookbackSeconds, cursor ? cursor.end - this.o.overlapSeconds : -Infinity));
    // Keys seen in the overlap by an earlier poll, possibly by an earlier process.
    const recent = new Map<string, number>(cursor?.seen.filter(([, s]) => s >= start));
    let complete = true;
    let pageEnd = end;
    let page = 0;
    for (; page < this.o.maxPages; page++) {
      const traces = await this.search(query, start, pageEnd);
      let oldest = pageEnd;
      const batch: SourceEvent[] = [];
      const keys: [string, number][] = [];
      for (const t of traces) {
        const traceId = normalizeTraceId(t.traceID);
        const tStart = secondsOf(t.startTimeUnixNano);
        if (tStart !== undefined) oldest = Math.min(oldest, tStart);
        if (!traceId) {
          this.error(report, 'decode', `search answer holds trace id ${JSON.stringify(t.traceID)}, which is not hex`);
          continue;
        }
        const wanted = new Map<string, number>();
        const listed = new Set<string>();
        // Tempo lists matches in spanSet and again in spanSets (one per span set since 2.2).
        for (const s of [...(t.spanSet?.spans ?? []), ...(t.spanSets ?? []).flatMap((ss) => ss.spans ?? [])]) {
          const spanId = normalizeSpanId(s.spanID);
          if (!spanId) continue;
          const key = `${traceId}/${spanId}`;
          if (listed.has(key)) continue;
          listed.add(key);
          if (recent.has(key) || this.seen.has(key)) {
            report.duplicates++;
            this.o.stats?.spans('duplicate', 1);
            recent.set(key, recent.get(key) ?? secondsOf(s.startTimeUnixNano) ?? tStart ?? end);
            continue;
          }
          wanted.set(key, secondsOf(s.startTimeUnixNano) ?? tStart ?? end);
        }
        if (wanted.size === 0) continue;
        try {
          const events = await this.fetchTrace(traceId, wanted);
          report.traces++;
          for (const ev of events) {
            batch.push(ev);
            keys.push([ev.key, wanted.get(ev.key) ?? end]);
          }
          const missing = wanted.size - events.length;
          if (missing > 0) {
            complete = false;
            this.error(
              report,
              'span_missing',
              `trace ${traceId} has no span ${[...wanted.keys()].filter((k) => !events.some((e) => e.key === k)).join(', ')} yet`,
            );
          }
        } catch (e) {
          complete = false;
          this.error(report, e instanceof PollError ? e.kind : 'trace', `trace ${traceId}: ${(e as Error).message}`);
        }
      }
      if (batch.length) {
        try {
          await this.o.sink.ingest(batch);
        } catch (e) {
          // Not marked seen and the cursor stays: the next poll fetches these spans again.
          this.error(report, 'sink', `${batch.length} spans refused: ${(e as Error).message}`);
          return;
        }
        for (const [k, s] of keys) {
          recent.set(k, s);
          this.seen.add(k);
        }
        report.accepted += batch.length;
        this.o.stats?.spans('accepted', batch.length);
      }
      if (traces.length < this.o.limit) break;
      // A full page: Tempo returned the newest traces; continue with the older ones.
      if (oldest <= start || oldest >= pageEnd) break;
      pageEnd = oldest;
    }
    if (page === this.o.maxPages) {
      complete = false;
      this.error(
        report,
        'truncated',
        `${query}: more than ${this.o.maxPages} pages of ${this.o.limit} traces in ${end - start}s; raise the limit or poll more often`,
      );
    }
    // Moving the cursor past spans that could not be fetched would lose them, unless they fall
    // out of the lookback window anyway.
    const next = Math.min(end, complete ? end : (cursor?.end ?? start + this.o.overlapSeconds));
    const keep = [...recent.entries()].filter(([, s]) => s >= next - this.o.overlapSeconds).slice(-MAX_PERSISTED_SEEN);
    try {
      await this.cursors.save(query, { end: next, seen: keep });
    } catch (e) {
      this.error(report, 'state', (e as Error).message);
    }
  }

  private async get(path: string, accept = 'application/json'): Promise<{ status: number; text: string }> {
    const res = await this.o.fetch(`${this.o.url}${path}`, { headers: { accept, ...this.o.headers }, signal: AbortSignal.timeout(this.o.timeoutMs) });
    let text: string;
    try {
      text = await readBounded(res, this.o.maxResponseBytes);
    } catch (e) {
      throw e instanceof ResponseTooLargeError ? new PollError('too_large', e.message) : e;
    }
    return { status: res.status, text };
  }

  private async search(query: string, start: number, end: number): Promise<SearchTrace[]> {
    const params = new URLSearchParams({ q: query, start: String(start), end: String(end), limit: String(this.o.limit), spss: String(this.o.spansPerSpanSet) });
    let r: { status: number; text: string };
    try {
      r = await this.get(`/api/search?${params.toString()}`);
    } catch (e) {
      throw new PollError(e instanceof PollError ? e.kind : 'search', `search failed: ${(e as Error).message}`);
    }
    if (r.status === 400) throw new PollError('search_rejected', `Tempo rejected the query (400): ${r.text.slice(0, 300)}; check the TraceQL in TEMPO_QUERIES`);
    if (r.status !== 200) throw new PollError('search', `search answered ${r.status}: ${r.text.slice(0, 200)}`);
    let body: unknown;
    try {
      body = JSON.parse(r.text);
    } catch {
      throw new PollError('search', 'search answer is not JSON');
    }
    if (!isObj(body)) throw new PollError('search', 'search answer is not a JSON object');
    if (body.traces === undefined || body.traces === null) return [];
    if (!Array.isArray(body.traces)) throw new PollError('search', 'search answer has no traces list');
    return body.traces.filter(isObj) as SearchTrace[];
  }

  private async fetchTrace(traceId: string, wanted: Map<string, number>): Promise<SourceEvent[]> {
    const path = this.o.traceApi === 'v1' ? `/api/traces/${traceId}` : `/api/v2/traces/${traceId}`;
    let r: { status: number; text: string };
    try {
      r = await this.get(path);
    } catch (e) {
      throw e instanceof PollError ? e : new PollError('trace', `fetch failed: ${(e as Error).message}`);
    }
    if (r.status === 404) throw new PollError('trace_not_found', 'Tempo does not have it (yet)');
    if (r.status !== 200) throw new PollError('trace', `answered ${r.status}: ${r.text.slice(0, 200)}`);
    let batch;
    try {
      batch = decodeOtlpValue(JSON.parse(r.text) as unknown, this.o.limits);
    } catch (e) {
      if (e instanceof SyntaxError || e instanceof OtlpPayloadError) throw new PollError('decode', `the trace is not Tempo JSON: ${e.message}`);
      throw e;
    }
    const observed = this.o.now();
    return batch.spans.filter((s) => wanted.has(`${s.traceId}/${s.spanId}`)).map((s) => normalizeSpan(s, observed));
  }
}
