/**
 * The Tempo poller against a stand-in serving Tempo's documented answers (shapes checked against
 * test/fixtures/real/otlp): TraceQL search with a persisted cursor, trace fetches, ids normalized,
 * no duplicates across polls or restarts, errors counted and retried rather than thrown.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import type { OtlpSpan } from '../connectors/otlp/parse.js';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import { cursorKey, splitTraceQLQueries, TempoPoller, type TempoPollerOptions, type TempoPollErrorKind } from '../connectors/otlp/tempo-poller.js';
import { compileRules } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError } from '../correlator/errors.js';
import type { IngestOutcome, IngestSink } from '../correlator/ports.js';
import type { Signal } from '../correlator/signal.js';
import { readReal } from './helpers/fixtures.js';
import { startTempoStandin, type TempoStandin } from './helpers/tempo-standin.js';

function otlpDetector(): Detector {
  const file = fileURLToPath(new URL('../rules/detections/otlp.yaml', import.meta.url));
  const compiled = compileRules([{ file, doc: parse(readFileSync(file, 'utf8')) as unknown }], [OTLP_SOURCE.schema]);
  expect(compiled.problems).toEqual([]);
  return new Detector(compiled.rules, [OTLP_SOURCE.schema]);
}

class RecordingSink implements IngestSink {
  events: SourceEvent[] = [];
  signals: Signal[] = [];
  refuse = 0;
  private readonly detector = otlpDetector();
  async ingest(events: readonly SourceEvent[]): Promise<IngestOutcome> {
    if (this.refuse > 0) {
      this.refuse--;
      throw new BackpressureError('signal queue', 100);
    }
    this.events.push(...events);
    const found = events.flatMap((e) => this.detector.detect(e));
    this.signals.push(...found);
    return { signals: found.length };
  }
  keys(): string[] {
    return this.events.map((e) => e.key).sort();
  }
}

const T0 = 1_760_000_000; // Unix seconds of the fake clock's start
const Q403 = '{ span.http.response.status_code = 403 }';

/** A trace as an SDK would export it: a 403 client span from a pod, and a successful child. */
function trace403(traceId: string, atSeconds: number, pod = 'frontend-7d9c4b5f6-xk2pq'): Record<string, unknown> {
  const ns = BigInt(atSeconds) * 1_000_000_000n;
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'frontend' } },
            { key: 'k8s.namespace.name', value: { stringValue: 'frontend' } },
            { key: 'k8s.pod.name', value: { stringValue: pod } },
          ],
        },
        scopeSpans: [
          {
            scope: { name: '@opentelemetry/instrumentation-http', version: '0.57.0' },
            spans: [
              {
                traceId,
                spanId: 'b7ad6b7169203331',
                name: 'GET',
                kind: 3,
                startTimeUnixNano: String(ns),
                endTimeUnixNano: String(ns + 20_000_000n),
                attributes: [
                  { key: 'http.response.status_code', value: { intValue: 403 } },
                  { key: 'server.address', value: { stringValue: 'payments.payments.svc.cluster.local' } },
                ],
                status: { code: 2 },
              },
              {
                traceId,
                spanId: 'c7ad6b7169203332',
                parentSpanId: 'b7ad6b7169203331',
                name: 'dns.lookup',
                kind: 1,
                startTimeUnixNano: String(ns + 1_000_000n),
                endTimeUnixNano: String(ns + 2_000_000n),
                attributes: [{ key: 'http.response.status_code', value: { intValue: 200 } }],
              },
            ],
          },
        ],
      },
    ],
  };
}

let tempo: TempoStandin;
let sink: RecordingSink;
let clock: number;
let state: Map<string, string>;
let errors: TempoPollErrorKind[];

beforeEach(async () => {
  tempo = await startTempoStandin();
  sink = new RecordingSink();
  clock = T0 * 1000;
  state = new Map();
  errors = [];
});
afterEach(async () => {
  await tempo.close();
});

function poller(opts: Partial<TempoPollerOptions> = {}): TempoPoller {
  return new TempoPoller({
    url: `${tempo.url}/`,
    queries: [Q403],
    sink,
    state: { get: (k) => state.get(k), set: (k, v) => void state.set(k, v) },
    now: () => clock,
    stats: { polls: () => {}, spans: () => {}, errors: (k) => errors.push(k) },
    ...opts,
  });
}

/** The key structure of a JSON value (arrays by their first element), to compare shapes. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k])]),
    );
  return typeof v;
}

describe('the Tempo stand-in', () => {
  it('answers in the shapes of the documented Tempo responses, and 400 on a bad query or parameters', async () => {
    const v2 = JSON.parse(readReal('otlp/api-v2-traces-response.docs.json')) as { trace: Record<string, unknown> };
    tempo.addTempoTrace(v2.trace);
    const search = (await (
      await fetch(`${tempo.url}/api/search?q=${encodeURIComponent('{ resource.service.name = "my.service" }')}&start=1689969000&end=1689970100&limit=20`)
    ).json()) as Record<string, unknown>;
    expect(shape(search)).toEqual(shape(JSON.parse(readReal('otlp/api-search-traceql-response.docs.json'))));
    expect(search).toMatchObject({
      traces: [
        {
          traceID: '5b8efff798038103d269b633813fc700',
          rootServiceName: 'my.service',
          rootTraceName: 'I am a span!',
          spanSet: { spans: [{ spanID: 'eee19b7ec3c1b100' }], matched: 1 },
        },
      ],
    });
    const trace = await (await fetch(`${tempo.url}/api/v2/traces/5B8EFFF798038103D269B633813FC700`)).json();
    expect(trace).toEqual(v2);

    for (const bad of ['q=%7B%20span.http.status_code%20%3D%3D%3D%20403%20%7D', 'q=span.x%3D1', 'q=%7B%7D&start=10&end=5', 'q=%7B%7D&limit=ten', '']) {
      const res = await fetch(`${tempo.url}/api/search?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(await res.text(), bad).toMatch(/invalid|must be/);
    }
    expect((await fetch(`${tempo.url}/api/v2/traces/not-hex`)).status).toBe(400);
    expect((await fetch(`${tempo.url}/api/v2/traces/${'1'.repeat(32)}`)).status).toBe(404);
  });
});

describe('TempoPoller', () => {
  it('reads TEMPO_QUERIES as queries separated by newlines or semicolons outside strings', () => {
    expect(splitTraceQLQueries('{ span.http.response.status_code = 403 };\n{ span.x = "a;b" && status = error }\n\n')).toEqual([
      '{ span.http.response.status_code = 403 }',
      '{ span.x = "a;b" && status = error }',
    ]);
  });

  it('searches with the TraceQL query over its window, fetches the trace, and hands on only the matched span, ids normalized', async () => {
    // Tempo trims leading zeros from trace ids in search answers; the poller pads them back.
    const traceId = '00000000000000004bf92f3577b34da6';
    tempo.addTrace(trace403(traceId, T0 - 30));
    const report = await poller().pollOnce();
    expect(report).toEqual({ accepted: 1, duplicates: 0, traces: 1, errors: 0 });

    const search = tempo.calls.find((c) => c.path === '/api/search')!;
    expect(search.query).toEqual({ q: Q403, start: String(T0 - 3600), end: String(T0), limit: '100', spss: '50' });
    expect(tempo.calls.map((c) => c.path)).toEqual(['/api/search', `/api/v2/traces/${traceId}`]);

    const span = sink.events[0]!.raw as OtlpSpan;
    expect(span).toMatchObject({
      traceId,
      spanId: 'b7ad6b7169203331',
      kind: 'client',
      status: { code: 'error' },
      attributes: { 'http.response.status_code': 403 },
    });
    expect({ ...span.resource }).toEqual({ 'service.name': 'frontend', 'k8s.namespace.name': 'frontend', 'k8s.pod.name': 'frontend-7d9c4b5f6-xk2pq' });
    expect(sink.signals).toHaveLength(1);
    expect(sink.signals[0]).toMatchObject({
      rule: { id: 'otlp-service-auth-denied' },
      actor: { key: 'pod:frontend/frontend-7d9c4b5f6-xk2pq' },
      attributes: { traceId, spanId: 'b7ad6b7169203331' },
    });
    expect(JSON.parse(state.get(cursorKey(Q403))!)).toEqual({ end: T0, seen: [[`${traceId}/b7ad6b7169203331`, T0 - 30]] });
  });

  it('no duplicates across polls or across a restart; the cursor moves on with an overlap', async () => {
    tempo.addTrace(trace403('4bf92f3577b34da6a3ce929d0e0e4736', T0 - 30));
    const p = poller();
    await p.pollOnce();
    clock += 60_000;
    tempo.addTrace(trace403('5bf92f3577b34da6a3ce929d0e0e4736', T0 + 40));
    expect(await p.pollOnce()).toEqual({ accepted: 1, duplicates: 1, traces: 1, errors: 0 });
    const second = tempo.calls.filter((c) => c.path === '/api/search')[1]!;
    expect(second.query).toMatchObject({ start: String(T0 - 120), end: String(T0 + 60) });

    // A new process with the same state: the overlap still holds both spans, neither is handed on again.
    clock += 30_000;
    tempo.addTrace(trace403('6bf92f3577b34da6a3ce929d0e0e4736', T0 + 80, 'frontend-other'));
    expect(await poller().pollOnce()).toEqual({ accepted: 1, duplicates: 2, traces: 1, errors: 0 });
    expect(sink.keys()).toEqual([
      '4bf92f3577b34da6a3ce929d0e0e4736/b7ad6b7169203331',
      '5bf92f3577b34da6a3ce929d0e0e4736/b7ad6b7169203331',
      '6bf92f3577b34da6a3ce929d0e0e4736/b7ad6b7169203331',
    ]);
    expect(tempo.calls.filter((c) => c.path.startsWith('/api/v2/traces/'))).toHaveLength(3);
  });

  it('counts errors instead of throwing, and retries what failed at the next poll', async () => {
    tempo.addTrace(trace403('4bf92f3577b34da6a3ce929d0e0e4736', T0 - 30));
    const p = poller({ queries: [Q403, '{ span.http.response.status_code === 403 }'] });

    tempo.failNext('/api/search', 500);
    let r = await p.pollOnce();
    expect(r.accepted).toBe(0);
    expect(errors).toEqual(['search', 'search_rejected']);

    tempo.failNext('/api/v2/traces/', 503);
    clock += 60_000;
    r = await p.pollOnce();
    expect(r.accepted).toBe(0);
    expect(errors.slice(2)).toEqual(['trace', 'search_rejected']);

    sink.refuse = 1;
    clock += 60_000;
    r = await p.pollOnce();
    expect(r.accepted).toBe(0);
    expect(errors.slice(4)).toEqual(['sink', 'search_rejected']);
    // Nothing was lost: the failed window was kept and the span is handed on once it can be.
    expect(JSON.parse(state.get(cursorKey(Q403)) ?? '{"end":0}').end).toBeLessThan(T0);

    clock += 60_000;
    r = await p.pollOnce();
    expect(r).toMatchObject({ accepted: 1, errors: 1 });
    expect(sink.keys()).toEqual(['4bf92f3577b34da6a3ce929d0e0e4736/b7ad6b7169203331']);
    clock += 30_000;
    expect(await p.pollOnce()).toMatchObject({ accepted: 0 });
    expect(sink.events).toHaveLength(1);
  });

  it('follows full pages of search results down to the start of the window', async () => {
    for (let i = 0; i < 7; i++) tempo.addTrace(trace403(`${i + 1}bf92f3577b34da6a3ce929d0e0e4736`, T0 - 600 + i * 60));
    expect(await poller({ limit: 2 }).pollOnce()).toMatchObject({ accepted: 7, errors: 0 });
    expect(new Set(sink.keys()).size).toBe(7);
    expect(tempo.calls.filter((c) => c.path === '/api/search').length).toBeGreaterThanOrEqual(4);
  });

  it('uses the v1 trace API and a tenant header when told to', async () => {
    await tempo.close();
    tempo = await startTempoStandin({ tenant: 'team-a' });
    tempo.addTrace(trace403('4bf92f3577b34da6a3ce929d0e0e4736', T0 - 30));
    expect(await poller({ headers: { 'X-Scope-OrgID': 'other' } }).pollOnce()).toMatchObject({ accepted: 0, errors: 1 });
    expect(await poller({ traceApi: 'v1', headers: { 'X-Scope-OrgID': 'team-a' } }).pollOnce()).toMatchObject({ accepted: 1, errors: 0 });
    expect(tempo.calls.at(-1)!.path).toBe('/api/traces/4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('rejects a bad schedule or no queries at construction; polls on its schedule once started', async () => {
    expect(() => poller({ schedule: 'every minute' })).toThrow(/TEMPO_POLL_SCHEDULE/);
    expect(() => poller({ queries: [] })).toThrow(/TEMPO_QUERIES/);
    tempo.addTrace(trace403('4bf92f3577b34da6a3ce929d0e0e4736', Math.floor(Date.now() / 1000) - 30));
    const p = poller({ schedule: '* * * * * *', now: Date.now });
    p.start();
    try {
      await vi.waitFor(() => expect(sink.events).toHaveLength(1), { timeout: 5000, interval: 50 });
    } finally {
      await p.stop();
    }
  });
});
