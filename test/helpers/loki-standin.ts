/**
 * A local stand-in for Loki's query API (`GET /loki/api/v1/query_range`), for testing the poller
 * where no Loki can run. It holds pushed entries and answers log queries with the documented
 * response shape (test/fixtures/real/loki/query_range-streams-response.docs.json), enforcing what
 * Loki enforces: a parseable stream selector with a non-empty matcher, start ≤ ts < end, `limit`
 * within max_entries_limit_per_query, `direction` forward/backward, the tenant header when
 * multi-tenant; errors as Loki sends them (text/plain 400), 429 with Retry-After when told to.
 * It also serves a metric query's matrix result, so clients can be tested against one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readReal } from './fixtures.js';

/** One log entry held by the stand-in. */
export interface StandinEntry {
  labels: Record<string, string>;
  /** Nanoseconds since the epoch, as a decimal string. */
  time: string;
  line: string;
  metadata?: Record<string, string>;
}

/** A query as the stand-in received it. */
export interface StandinQuery {
  query: string;
  start?: string;
  end?: string;
  limit?: string;
  direction?: string;
  tenant?: string;
  status: number;
}

/** Options of {@link startLokiStandin}. */
export interface LokiStandinOptions {
  /** When set, requests must carry `X-Scope-OrgID` with this tenant (multi-tenant Loki). */
  tenant?: string;
  /** Loki's max_entries_limit_per_query (default 5000). */
  maxEntriesLimit?: number;
}

/** A running stand-in. */
export interface LokiStandin {
  url: string;
  /** Adds entries, as if pushed. */
  push(entries: StandinEntry[]): void;
  /** Every query received, in order. */
  readonly queries: StandinQuery[];
  /** The next `times` queries get this status (429 with `Retry-After`, or 500). */
  failNext(times: number, status: number, retryAfterSeconds?: number): void;
  /** The next query is answered with this JSON body verbatim (e.g. a fixture). */
  respondOnceWith(body: string): void;
  close(): Promise<void>;
}

type Matcher = { name: string; op: '=' | '!=' | '=~' | '!~'; value: string; re?: RegExp };
type LineFilter = { op: '|=' | '!=' | '|~' | '!~'; value: string; re?: RegExp };

class LogQLError extends Error {}

/** Parses the LogQL subset the stand-in serves: `{a="b", c=~"d.*"} |= "x" != "y" |~ "re"`. */
export function parseLogQL(q: string): { matchers: Matcher[]; filters: LineFilter[] } {
  let i = 0;
  const ws = () => {
    while (q[i] === ' ' || q[i] === '\t' || q[i] === '\n') i++;
  };
  const err = (what: string): never => {
    throw new LogQLError(`parse error at line 1, col ${i + 1}: syntax error: ${what}`);
  };
  const str = (): string => {
    const quote = q[i];
    if (quote !== '"' && quote !== '`') err(`unexpected ${q[i] ?? '$end'}, expecting STRING`);
    i++;
    let out = '';
    while (q[i] !== quote) {
      if (i >= q.length) err('unexpected $end, expecting STRING');
      if (quote === '"' && q[i] === '\\') {
        i++;
        out += q[i] === 'n' ? '\n' : (q[i] ?? '');
      } else out += q[i];
      i++;
    }
    i++;
    return out;
  };
  const re = (v: string): RegExp => {
    try {
      return new RegExp(v);
    } catch {
      return err(`invalid regex ${JSON.stringify(v)}`);
    }
  };
  ws();
  if (q[i] !== '{') err(`unexpected ${q[i] ?? '$end'}, expecting {`);
  i++;
  const matchers: Matcher[] = [];
  for (;;) {
    ws();
    if (q[i] === '}') {
      i++;
      break;
    }
    const start = i;
    while (i < q.length && /[a-zA-Z0-9_]/.test(q[i]!)) i++;
    const name = q.slice(start, i);
    if (!/^[a-zA-Z_]/.test(name)) err(`unexpected ${q[i] ?? '$end'}, expecting IDENTIFIER`);
    ws();
    const op = (['=~', '!~', '!=', '='] as const).find((o) => q.startsWith(o, i));
    if (!op) err(`unexpected ${q[i] ?? '$end'}, expecting = or != or =~ or !~`);
    i += op!.length;
    ws();
    const value = str();
    const full = op === '=~' || op === '!~' ? re(`^(?:${value})$`) : undefined;
    matchers.push({ name, op: op!, value, ...(full ? { re: full } : {}) });
    ws();
    if (q[i] === ',') i++;
    else if (q[i] !== '}') err(`unexpected ${q[i] ?? '$end'}, expecting , or }`);
  }
  const filters: LineFilter[] = [];
  for (;;) {
    ws();
    if (i >= q.length) break;
    const op = (['|=', '!=', '|~', '!~'] as const).find((o) => q.startsWith(o, i));
    if (!op) err(`unexpected ${q.slice(i, i + 10)}`);
    i += op!.length;
    ws();
    const value = str();
    filters.push({ op: op!, value, ...(op === '|~' || op === '!~' ? { re: re(value) } : {}) });
  }
  const selective = matchers.some((m) => (m.op === '=' && m.value !== '') || (m.op === '=~' && !m.re!.test('')));
  if (!selective)
    throw new LogQLError(
      'queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~".*" does not meet this requirement, but app=~".+" will',
    );
  return { matchers, filters };
}

function matches(e: StandinEntry, labels: Record<string, string>, sel: ReturnType<typeof parseLogQL>): boolean {
  for (const m of sel.matchers) {
    const v = labels[m.name] ?? '';
    const ok = m.op === '=' ? v === m.value : m.op === '!=' ? v !== m.value : m.op === '=~' ? m.re!.test(v) : !m.re!.test(v);
    if (!ok) return false;
  }
  for (const f of sel.filters) {
    const ok = f.op === '|=' ? e.line.includes(f.value) : f.op === '!=' ? !e.line.includes(f.value) : f.op === '|~' ? f.re!.test(e.line) : !f.re!.test(e.line);
    if (!ok) return false;
  }
  return true;
}

/** Loki accepts nanosecond integers, float seconds and RFC 3339 for start/end. */
function parseTime(v: string | null): bigint | undefined {
  if (v === null) return undefined;
  if (/^\d+$/.test(v)) return v.length <= 10 ? BigInt(v) * 1_000_000_000n : BigInt(v);
  if (/^\d+\.\d+$/.test(v)) return BigInt(Math.round(Number(v) * 1e6)) * 1000n;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : undefined;
}

const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

/** Starts the stand-in on a free loopback port. */
export async function startLokiStandin(opts: LokiStandinOptions = {}): Promise<LokiStandin> {
  const entries: StandinEntry[] = [];
  const queries: StandinQuery[] = [];
  const maxLimit = opts.maxEntriesLimit ?? 5000;
  let failures: { times: number; status: number; retryAfter?: number } | undefined;
  let canned: string | undefined;

  const text = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${body}\n`);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    if (req.method !== 'GET' || url.pathname !== '/loki/api/v1/query_range') return text(res, 404, '404 page not found');
    const p = url.searchParams;
    const tenant = typeof req.headers['x-scope-orgid'] === 'string' ? req.headers['x-scope-orgid'] : undefined;
    const rec: StandinQuery = { query: p.get('query') ?? '', status: 200 };
    for (const k of ['start', 'end', 'limit', 'direction'] as const) {
      const v = p.get(k);
      if (v !== null) rec[k] = v;
    }
    if (tenant) rec.tenant = tenant;
    queries.push(rec);
    const reply = (status: number, body: string) => {
      rec.status = status;
      text(res, status, body);
    };
    if (opts.tenant && tenant !== opts.tenant) return reply(401, 'no org id');
    if (failures && failures.times > 0) {
      failures.times--;
      if (failures.retryAfter !== undefined) res.setHeader('Retry-After', String(failures.retryAfter));
      return reply(failures.status, failures.status === 429 ? 'Ingestion rate limit exceeded (too many outstanding requests)' : 'internal server error');
    }
    if (canned !== undefined) {
      const body = canned;
      canned = undefined;
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(body);
    }
    const q = p.get('query');
    if (!q) return reply(400, 'parse error : syntax error: unexpected $end');
    const limitRaw = p.get('limit') ?? '100';
    if (!/^\d+$/.test(limitRaw) || Number(limitRaw) === 0) return reply(400, `invalid limit: ${limitRaw}`);
    const limit = Number(limitRaw);
    if (limit > maxLimit) return reply(400, `max entries limit per query exceeded, limit > max_entries_limit_per_query (${limit} > ${maxLimit})`);
    const direction = p.get('direction') ?? 'backward';
    if (direction !== 'forward' && direction !== 'backward') return reply(400, `invalid direction '${direction}'`);
    const start = parseTime(p.get('start'));
    const end = parseTime(p.get('end'));
    if (start === undefined || end === undefined) return reply(400, 'could not parse start or end');
    if (end <= start) return reply(400, 'end timestamp must not be before or equal to start time');
    if (/^\s*(sum|rate|count_over_time|bytes_over_time)\b/.test(q)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(readReal('loki/query_range-matrix-response.docs.json'));
    }
    let sel: ReturnType<typeof parseLogQL>;
    try {
      sel = parseLogQL(q);
    } catch (e) {
      return reply(400, (e as Error).message);
    }
    const categorize = String(req.headers['x-loki-response-encoding-flags'] ?? '').includes('categorize-labels');
    // Without categorize-labels, Loki returns structured metadata merged into the stream labels.
    const viewLabels = (e: StandinEntry) => (categorize ? e.labels : { ...e.labels, ...(e.metadata ?? {}) });
    const hits = entries
      .filter((e) => BigInt(e.time) >= start && BigInt(e.time) < end && matches(e, viewLabels(e), sel))
      .sort((a, b) => (BigInt(a.time) < BigInt(b.time) ? -1 : BigInt(a.time) > BigInt(b.time) ? 1 : 0));
    if (direction === 'backward') hits.reverse();
    const streams = new Map<string, { stream: Record<string, string>; values: unknown[][] }>();
    for (const e of hits.slice(0, limit)) {
      const labels = viewLabels(e);
      const k = key(labels);
      let s = streams.get(k);
      if (!s) streams.set(k, (s = { stream: labels, values: [] }));
      s.values.push(categorize ? [e.time, e.line, e.metadata ? { structuredMetadata: e.metadata } : {}] : [e.time, e.line]);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        status: 'success',
        data: { resultType: 'streams', ...(categorize ? { encodingFlags: ['categorize-labels'] } : {}), result: [...streams.values()], stats: {} },
      }),
    );
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    push: (es) => void entries.push(...es),
    queries,
    failNext: (times, status, retryAfterSeconds) => {
      failures = { times, status, ...(retryAfterSeconds !== undefined ? { retryAfter: retryAfterSeconds } : {}) };
    },
    respondOnceWith: (body) => {
      canned = body;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
