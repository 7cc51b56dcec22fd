/**
 * A local stand-in for Grafana Tempo's query API, for the poller's tests (Tempo cannot run here).
 * It serves what the real one serves, in the shapes of test/fixtures/real/otlp
 * (api-search-traceql-response.docs.json, api-v2-traces-response.docs.json):
 *
 * - `GET /api/search?q=<TraceQL>&start&end&limit&spss`: `q` required and parsed (a small TraceQL
 *   subset: `{ cond && cond }` with span./resource./unscoped attributes and the status, kind and
 *   name intrinsics), start/end in Unix seconds with start <= end, limit and spss positive; anything
 *   else is a 400 with a plain-text message like Tempo's. Traces overlapping [start, end] whose spans
 *   match, newest first, at most `limit`; trace ids with leading zeros trimmed, as Tempo does.
 * - `GET /api/v2/traces/<id>` → `{"trace": {"resourceSpans": …}}` and `GET /api/traces/<id>` →
 *   `{"batches": …}`, in Tempo's gogo-jsonpb flavour (base64 ids, enum names, int64 as strings);
 *   400 for an id that is not hex, 404 for an unknown one.
 *
 * Traces are added as OTLP/JSON (hex ids, integer enums). Every request is recorded; failures can
 * be injected.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

const KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUSES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

/** One request as the stand-in saw it. */
export interface TempoCall {
  path: string;
  query: Record<string, string>;
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** A running stand-in. */
export interface TempoStandin {
  url: string;
  calls: TempoCall[];
  /** Adds a trace given as an OTLP/JSON ExportTraceServiceRequest (hex ids, integer enums). */
  addTrace(request: Json): void;
  /** Adds a trace given in Tempo's own JSON (a v2 answer's `trace`). */
  addTempoTrace(trace: Json): void;
  /** The next `times` requests to paths starting with `pathPrefix` get `status`. */
  failNext(pathPrefix: string, status: number, times?: number): void;
  close(): Promise<void>;
}

/** A flattened view of a stored span, for matching. */
interface IndexedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  status: string;
  start: bigint;
  end: bigint;
  span: Map<string, unknown>;
  resource: Map<string, unknown>;
  attributes: Json[];
}

interface StoredTrace {
  /** Tempo's own JSON: resourceSpans with base64 ids and enum names. */
  resourceSpans: Json[];
  spans: IndexedSpan[];
}

const hexToB64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const b64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

function anyValue(v: unknown): unknown {
  if (!isObj(v)) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return v.boolValue;
  return undefined;
}

function attrMap(list: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (Array.isArray(list)) for (const kv of list) if (isObj(kv) && typeof kv.key === 'string') m.set(kv.key, anyValue(kv.value));
  return m;
}

/** OTLP/JSON → Tempo's gogo-jsonpb flavour. */
function toTempoFlavour(request: Json): Json[] {
  const rs = request.resourceSpans;
  if (!Array.isArray(rs)) throw new Error('addTrace takes an ExportTraceServiceRequest with resourceSpans');
  const int64 = (v: unknown) => (v === undefined ? undefined : String(v));
  const attrs = (list: unknown) =>
    Array.isArray(list)
      ? list.map((kv: Json) => (isObj(kv.value) && 'intValue' in kv.value ? { key: kv.key, value: { intValue: String(kv.value.intValue) } } : kv))
      : undefined;
  return rs.map((r: Json) => ({
    resource: { attributes: attrs((r.resource as Json | undefined)?.attributes) ?? [] },
    scopeSpans: (r.scopeSpans as Json[]).map((ss) => ({
      scope: ss.scope,
      spans: (ss.spans as Json[]).map((s) => {
        const st = isObj(s.status) ? s.status : {};
        const out: Json = {
          traceId: hexToB64(String(s.traceId)),
          spanId: hexToB64(String(s.spanId)),
          ...(s.parentSpanId ? { parentSpanId: hexToB64(String(s.parentSpanId)) } : {}),
          name: s.name,
          kind: KINDS[Number(s.kind ?? 0)],
          startTimeUnixNano: int64(s.startTimeUnixNano),
          endTimeUnixNano: int64(s.endTimeUnixNano),
          attributes: attrs(s.attributes) ?? [],
          status: st.code ? { ...st, code: STATUSES[Number(st.code)] } : {},
        };
        return out;
      }),
    })),
  }));
}

function indexTrace(resourceSpans: Json[]): IndexedSpan[] {
  const out: IndexedSpan[] = [];
  for (const r of resourceSpans) {
    const resource = attrMap((r.resource as Json | undefined)?.attributes);
    for (const ss of (r.scopeSpans as Json[] | undefined) ?? []) {
      for (const s of (ss.spans as Json[] | undefined) ?? []) {
        const st = isObj(s.status) ? s.status : {};
        out.push({
          traceId: b64ToHex(String(s.traceId)),
          spanId: b64ToHex(String(s.spanId)),
          parentSpanId: s.parentSpanId ? b64ToHex(String(s.parentSpanId)) : '',
          name: String(s.name ?? ''),
          kind: String(s.kind ?? 'SPAN_KIND_UNSPECIFIED')
            .replace('SPAN_KIND_', '')
            .toLowerCase(),
          status: String(st.code ?? 'STATUS_CODE_UNSET')
            .replace('STATUS_CODE_', '')
            .toLowerCase(),
          start: BigInt(String(s.startTimeUnixNano ?? '0')),
          end: BigInt(String(s.endTimeUnixNano ?? s.startTimeUnixNano ?? '0')),
          span: attrMap(s.attributes),
          resource,
          attributes: (s.attributes as Json[] | undefined) ?? [],
        });
      }
    }
  }
  return out;
}

/** A parsed TraceQL condition. */
interface Cond {
  scope: 'span' | 'resource' | 'any' | 'intrinsic';
  name: string;
  op: string;
  value: string | number | boolean;
}

class TraceQLError extends Error {}

const TOKEN = /\s*(\{|\}|&&|\|\||!=|>=|<=|=~|=|>|<|"(?:[^"\\]|\\.)*"|[A-Za-z_.][A-Za-z0-9_.\-/]*|-?\d+(?:\.\d+)?)/y;

/** Parses the TraceQL subset the stand-in understands; errors read like Tempo's parser errors. */
export function parseTraceQL(q: string): Cond[] {
  const tokens: { t: string; col: number }[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < q.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(q);
    if (!m) {
      if (q.slice(at).trim() === '') break;
      throw new TraceQLError(`parse error at line 1, col ${at + 1}: syntax error: unexpected character ${JSON.stringify(q.slice(at).trim()[0])}`);
    }
    tokens.push({ t: m[1]!, col: at + 1 + (m[0].length - m[1]!.length) });
  }
  let i = 0;
  const next = (what: string) => {
    const tok = tokens[i++];
    if (!tok) throw new TraceQLError(`parse error at line 1, col ${q.length + 1}: syntax error: unexpected $end, expecting ${what}`);
    return tok;
  };
  const open = next('{');
  if (open.t !== '{') throw new TraceQLError(`parse error at line 1, col ${open.col}: syntax error: unexpected IDENTIFIER, expecting {`);
  const conds: Cond[] = [];
  for (;;) {
    const lhs = next('an attribute');
    if (lhs.t === '}' && conds.length === 0) break;
    if (!/^[A-Za-z_.]/.test(lhs.t)) throw new TraceQLError(`parse error at line 1, col ${lhs.col}: syntax error: unexpected ${lhs.t}`);
    const op = next('an operator');
    if (!['=', '!=', '>', '>=', '<', '<=', '=~'].includes(op.t))
      throw new TraceQLError(`parse error at line 1, col ${op.col}: syntax error: unexpected ${op.t}, expecting comparison operator`);
    const rhs = next('a value');
    let value: string | number | boolean;
    if (rhs.t.startsWith('"')) value = JSON.parse(rhs.t) as string;
    else if (/^-?\d/.test(rhs.t)) value = Number(rhs.t);
    else if (rhs.t === 'true' || rhs.t === 'false') value = rhs.t === 'true';
    else if (/^[a-z]+$/.test(rhs.t)) value = rhs.t;
    else throw new TraceQLError(`parse error at line 1, col ${rhs.col}: syntax error: unexpected ${rhs.t}`);
    let scope: Cond['scope'];
    let name: string;
    if (lhs.t.startsWith('span.')) [scope, name] = ['span', lhs.t.slice(5)];
    else if (lhs.t.startsWith('resource.')) [scope, name] = ['resource', lhs.t.slice(9)];
    else if (lhs.t.startsWith('.')) [scope, name] = ['any', lhs.t.slice(1)];
    else if (['status', 'kind', 'name'].includes(lhs.t)) [scope, name] = ['intrinsic', lhs.t];
    else throw new TraceQLError(`parse error at line 1, col ${lhs.col}: syntax error: unexpected IDENTIFIER`);
    conds.push({ scope, name, op: op.t, value });
    const sep = next('&& or }');
    if (sep.t === '}') break;
    if (sep.t !== '&&') throw new TraceQLError(`parse error at line 1, col ${sep.col}: syntax error: unexpected ${sep.t}, expecting && or }`);
  }
  if (i < tokens.length) throw new TraceQLError(`parse error at line 1, col ${tokens[i]!.col}: syntax error: unexpected ${tokens[i]!.t}`);
  return conds;
}

function matches(s: IndexedSpan, c: Cond): boolean {
  let actual: unknown;
  if (c.scope === 'intrinsic') actual = c.name === 'status' ? s.status : c.name === 'kind' ? s.kind : s.name;
  else if (c.scope === 'span') actual = s.span.get(c.name);
  else if (c.scope === 'resource') actual = s.resource.get(c.name);
  else actual = s.span.has(c.name) ? s.span.get(c.name) : s.resource.get(c.name);
  if (actual === undefined) return false;
  switch (c.op) {
    case '=':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case '=~':
      return typeof actual === 'string' && new RegExp(`^(?:${String(c.value)})$`).test(actual);
    default: {
      if (typeof actual !== 'number' || typeof c.value !== 'number') return false;
      return c.op === '>' ? actual > c.value : c.op === '>=' ? actual >= c.value : c.op === '<' ? actual < c.value : actual <= c.value;
    }
  }
}

/** Starts a stand-in on a free loopback port. */
export async function startTempoStandin(opts: { tenant?: string } = {}): Promise<TempoStandin> {
  const traces = new Map<string, StoredTrace>();
  const calls: TempoCall[] = [];
  const failures: { prefix: string; status: number; times: number }[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const u = new URL(req.url ?? '/', 'http://standin');
    const query = Object.fromEntries(u.searchParams.entries());
    const call: TempoCall = { path: u.pathname, query, status: 200, headers: req.headers };
    calls.push(call);
    const reply = (status: number, body: unknown) => {
      call.status = status;
      if (typeof body === 'string') res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
      else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return reply(405, 'method not allowed');
    const inject = failures.find((f) => u.pathname.startsWith(f.prefix) && f.times > 0);
    if (inject) {
      inject.times--;
      return reply(inject.status, `injected failure ${inject.status}`);
    }
    if (opts.tenant && req.headers['x-scope-orgid'] !== opts.tenant) return reply(401, 'no org id');

    if (u.pathname === '/api/search') {
      const q = query.q;
      if (!q) return reply(400, 'invalid TraceQL query: parse error at line 1, col 1: syntax error: unexpected $end');
      let conds: Cond[];
      try {
        conds = parseTraceQL(q);
      } catch (e) {
        if (!(e instanceof TraceQLError)) throw e;
        return reply(400, `invalid TraceQL query: ${e.message}`);
      }
      const num = (name: string, def: number | undefined): number | undefined | 'bad' => {
        const v = query[name];
        if (v === undefined) return def;
        return /^\d+$/.test(v) ? Number(v) : 'bad';
      };
      const start = num('start', undefined);
      const end = num('end', undefined);
      const limit = num('limit', 20);
      const spss = num('spss', 3);
      for (const [k, v] of Object.entries({ start, end, limit, spss }))
        if (v === 'bad') return reply(400, `invalid ${k}: ${query[k]} is not a non-negative integer`);
      if (typeof start === 'number' && typeof end === 'number' && start > end)
        return reply(400, `http request failed: invalid start (${start}) is after end (${end})`);
      if (limit === 0 || spss === 0) return reply(400, 'limit and spss must be greater than 0');
      const from = typeof start === 'number' ? BigInt(start) * 1_000_000_000n : 0n;
      const to = typeof end === 'number' ? BigInt(end + 1) * 1_000_000_000n : BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000_000n;
      const found = [...traces.values()]
        .map((t) => {
          const tStart = t.spans.reduce((a, s) => (s.start < a ? s.start : a), t.spans[0]!.start);
          const tEnd = t.spans.reduce((a, s) => (s.end > a ? s.end : a), t.spans[0]!.end);
          return { t, tStart, tEnd, hits: t.spans.filter((s) => conds.every((c) => matches(s, c))) };
        })
        .filter((x) => x.hits.length > 0 && x.tEnd >= from && x.tStart < to)
        .sort((a, b) => (b.tStart > a.tStart ? 1 : b.tStart < a.tStart ? -1 : 0))
        .slice(0, limit as number);
      const asSpan = (s: IndexedSpan) => ({
        spanID: s.spanId,
        startTimeUnixNano: String(s.start),
        durationNanos: String(s.end - s.start),
        attributes: [
          ...(s.resource.has('service.name') ? [{ key: 'service.name', value: { stringValue: String(s.resource.get('service.name')) } }] : []),
          ...s.attributes.filter((kv) => conds.some((c) => c.scope !== 'intrinsic' && c.name === kv.key)),
        ],
      });
      return reply(200, {
        traces: found.map(({ t, tStart, tEnd, hits }) => {
          const root = t.spans.find((s) => !s.parentSpanId) ?? t.spans[0]!;
          const spanSet = { spans: hits.slice(0, spss as number).map(asSpan), matched: hits.length };
          return {
            traceID: root.traceId.replace(/^0+/, ''),
            rootServiceName: String(root.resource.get('service.name') ?? '<root span not yet received>'),
            rootTraceName: root.name,
            startTimeUnixNano: String(tStart),
            durationMs: Number((tEnd - tStart) / 1_000_000n),
            spanSet,
            spanSets: [spanSet],
          };
        }),
        metrics: { inspectedBytes: String(traces.size * 1024), completedJobs: 1, totalJobs: 1 },
      });
    }
    const m = /^\/api(\/v2)?\/traces\/([^/]+)$/.exec(u.pathname);
    if (m) {
      const id = m[2]!;
      if (!/^[0-9a-fA-F]{1,32}$/.test(id)) return reply(400, `invalid trace id: ${id}`);
      const t = traces.get(id.toLowerCase().padStart(32, '0'));
      if (!t) return reply(404, 'trace not found');
      return reply(200, m[1] ? { trace: { resourceSpans: t.resourceSpans } } : { batches: t.resourceSpans });
    }
    return reply(404, '404 page not found');
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const store = (resourceSpans: Json[]) => {
    const spans = indexTrace(resourceSpans);
    const id = spans[0]?.traceId;
    if (!id) throw new Error('a trace needs at least one span');
    const prev = traces.get(id);
    traces.set(id, prev ? { resourceSpans: [...prev.resourceSpans, ...resourceSpans], spans: [...prev.spans, ...spans] } : { resourceSpans, spans });
  };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    addTrace: (request) => store(toTempoFlavour(request)),
    addTempoTrace: (trace) => store(trace.resourceSpans as Json[]),
    failNext: (prefix, status, times = 1) => failures.push({ prefix, status, times }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
