/**
 * The Loki poller against a local stand-in of Loki's query_range API: cursor persistence, no
 * duplicates across polls (including late lines with the cursor's own timestamp), bounded paging,
 * and every failure counted instead of thrown.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LokiSourceEvent } from '../connectors/loki/normalize.js';
import { cursorKey, LokiPoller, type LokiPollerOptions } from '../connectors/loki/poller.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError, ConfigError } from '../correlator/errors.js';
import type { IngestSink } from '../correlator/ports.js';
import { readReal } from './helpers/fixtures.js';
import { startLokiStandin, type LokiStandin, type StandinEntry } from './helpers/loki-standin.js';

class RecordingSink implements IngestSink {
  events: LokiSourceEvent[] = [];
  refuse = false;
  async ingest(events: readonly SourceEvent[]) {
    if (this.refuse) throw new BackpressureError('test bus', 1, 3);
    this.events.push(...(events as LokiSourceEvent[]));
    return { signals: 0 };
  }
}

const meshLines = readReal('mesh/istio-access-log-text-samples.log')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));
const NOW = Date.parse('2026-11-29T10:10:00Z');
/** Nanoseconds `ms` before NOW, plus `extra` ns. */
const ago = (ms: number, extra = 0) => (BigInt(NOW - ms) * 1_000_000n + BigInt(extra)).toString();
const sidecar = { namespace: 'payments', pod: 'postgres-0', container: 'istio-proxy' };
const denial = (i: number) => meshLines[2]!.replace('66146f25-bad9-438d-bbe8-c08ceb51be1e', `req-${i}`);

describe('LokiPoller', () => {
  let loki: LokiStandin;
  let sink: RecordingSink;
  let state: Map<string, string>;
  let now: number;
  let errors: string[];
  let counts: Record<string, number>;
  const poller = (over: Partial<LokiPollerOptions> = {}) =>
    new LokiPoller({
      url: loki.url,
      queries: [{ name: 'mesh', query: '{container="istio-proxy"}' }],
      sink,
      state: { get: async (k) => state.get(k), set: async (k, v) => void state.set(k, v) },
      tenant: 'team-a',
      now: () => now,
      stats: { lines: (o, n) => void (counts[o] = (counts[o] ?? 0) + n), error: (r) => void errors.push(r), poll: () => {} },
      ...over,
    });

  beforeEach(async () => {
    loki = await startLokiStandin({ tenant: 'team-a' });
    sink = new RecordingSink();
    state = new Map();
    now = NOW;
    errors = [];
    counts = {};
  });
  afterEach(() => loki.close());

  it('reads the lookback window forward, hands recognized lines on and persists a cursor', async () => {
    loki.push([
      { labels: sidecar, time: ago(60_000), line: meshLines[2]! },
      { labels: sidecar, time: ago(50_000), line: 'not an access log line' },
      { labels: { ...sidecar, container: 'app' }, time: ago(40_000), line: meshLines[3]! },
      { labels: sidecar, time: ago(30_000), line: meshLines[6]! },
      { labels: sidecar, time: ago(10 * 60_000), line: meshLines[7]! }, // before the lookback
      { labels: sidecar, time: ago(1000), line: meshLines[9]! }, // younger than the delay
    ]);
    const [report] = await poller().pollOnce();
    expect(report).toEqual({ name: 'mesh', pages: 1, received: 3, detected: 2, duplicates: 0 });
    expect(sink.events.map((e) => e.raw.line)).toEqual([meshLines[2], meshLines[6]]);
    expect(sink.events[0]!.raw).toMatchObject({ tenant: 'team-a', labels: sidecar, time: ago(60_000) });
    expect(loki.queries[0]).toEqual({
      query: '{container="istio-proxy"}',
      start: ago(5 * 60_000),
      end: ago(5000),
      limit: '1000',
      direction: 'forward',
      tenant: 'team-a',
      status: 200,
    });
    expect(JSON.parse(state.get(cursorKey('mesh'))!)).toMatchObject({ ts: ago(30_000) });
    expect(counts).toMatchObject({ received: 3, detected: 2 });
  });

  it('never hands a line on twice across polls, and still reads late lines with the cursor timestamp', async () => {
    const t = ago(30_000);
    loki.push([{ labels: sidecar, time: t, line: denial(1) }]);
    const p = poller();
    await p.pollOnce();
    expect(sink.events).toHaveLength(1);

    now += 30_000;
    const [quiet] = await p.pollOnce();
    expect(quiet).toMatchObject({ received: 1, duplicates: 1, detected: 0 });
    expect(loki.queries[1]!.start).toBe(t); // overlap on the last timestamp
    expect(sink.events).toHaveLength(1);

    // A line that arrives late with exactly the cursor's timestamp, and a newer one.
    loki.push([
      { labels: sidecar, time: t, line: denial(2) },
      { labels: sidecar, time: ago(-10_000), line: denial(3) },
    ]);
    now += 30_000;
    await p.pollOnce();
    now += 30_000;
    await p.pollOnce();
    expect(sink.events.map((e) => e.derived.mesh?.requestId)).toEqual(['req-1', 'req-2', 'req-3']);

    // A restarted poller (same persisted state) continues where this one stopped.
    await poller().pollOnce();
    expect(sink.events).toHaveLength(3);
  });

  it('pages through results that fill the limit, within maxPages per poll, without duplicates', async () => {
    const entries: StandinEntry[] = [];
    for (let i = 0; i < 8; i++) entries.push({ labels: sidecar, time: ago(100_000 - i * 1000), line: denial(i) });
    // Two lines sharing a timestamp across a page boundary.
    entries.push({ labels: { ...sidecar, pod: 'postgres-1' }, time: ago(100_000 - 2000), line: denial(99) });
    loki.push(entries);
    const [first] = await poller({ limit: 3, maxPages: 2 }).pollOnce();
    expect(first!.pages).toBe(2);
    expect(sink.events.length).toBeLessThan(9);
    const [rest] = await poller({ limit: 3, maxPages: 10 }).pollOnce();
    expect(rest!.error).toBeUndefined();
    const ids = sink.events.map((e) => e.derived.mesh?.requestId);
    expect(new Set(ids).size).toBe(9);
    expect(ids).toHaveLength(9);
    expect(loki.queries.every((q) => q.limit === '3' && q.direction === 'forward')).toBe(true);
  });

  it('steps past a timestamp shared by more lines than the limit instead of looping', async () => {
    const t = ago(20_000);
    loki.push([0, 1, 2, 3].map((i) => ({ labels: { ...sidecar, pod: `postgres-${i}` }, time: t, line: denial(i) })));
    const [report] = await poller({ limit: 2 }).pollOnce();
    expect(report!.error?.reason).toBe('page_overflow');
    expect(report!.pages).toBeLessThanOrEqual(3);
    expect(JSON.parse(state.get(cursorKey('mesh'))!).ts).toBe((BigInt(t) + 1n).toString());
    expect(errors).toEqual(['page_overflow']);
  });

  it('counts a bad query, a metric query, a server error and an unreachable Loki without throwing', async () => {
    const p = poller({
      queries: [
        { name: 'bad', query: '{container="istio-proxy"' },
        { name: 'empty', query: '{container=~".*"}' },
        { name: 'filtered', query: '{container="x"} |= "y"' },
        { name: 'ok', query: '{container="istio-proxy"} |= "rbac_access_denied"' },
      ],
    });
    loki.push([{ labels: sidecar, time: ago(30_000), line: meshLines[2]! }]);
    const reports = await p.pollOnce();
    expect(reports.map((r) => r.error?.reason)).toEqual(['bad_query', 'bad_query', undefined, undefined]);
    expect(reports[0]!.error!.message).toMatch(/parse error at line 1/);
    expect(reports[1]!.error!.message).toMatch(/empty-compatible value/);
    expect(reports[3]!.detected).toBe(1);

    const metric = await poller({ queries: [{ name: 'm', query: '{a="b"}' }] });
    loki.respondOnceWith(readReal('loki/query_range-matrix-response.docs.json'));
    expect((await metric.pollOnce())[0]!.error).toMatchObject({ reason: 'bad_query', message: expect.stringMatching(/returned matrix, not log lines/) });

    loki.failNext(1, 500);
    expect((await poller().pollOnce())[0]!.error?.reason).toBe('server');

    const down = poller({ url: 'http://127.0.0.1:9', timeoutMs: 2000 });
    const [r] = await down.pollOnce();
    expect(r!.error?.reason).toBe('unreachable');
    expect(down.lastErrors.get('mesh')?.reason).toBe('unreachable');
    expect(errors).toEqual(['bad_query', 'bad_query', 'bad_query', 'server', 'unreachable']);
  });

  it('answers 401 without the tenant header, counted as a configuration problem', async () => {
    const [r] = await poller({ tenant: undefined }).pollOnce();
    expect(r!.error).toMatchObject({ reason: 'bad_query', message: expect.stringMatching(/401.*LOKI_TENANT/) });
  });

  it('backs off after 429 for Retry-After, then polls again', async () => {
    loki.push([{ labels: sidecar, time: ago(30_000), line: meshLines[2]! }]);
    const p = poller();
    loki.failNext(1, 429, 20);
    expect((await p.pollOnce())[0]!.error?.reason).toBe('rate_limited');
    now += 10_000;
    expect((await p.pollOnce())[0]!.error?.reason).toBe('rate_limited');
    expect(loki.queries).toHaveLength(1); // it did not ask Loki during the back-off
    now += 15_000;
    expect((await p.pollOnce())[0]!.error).toBeUndefined();
    expect(sink.events).toHaveLength(1);
  });

  it('keeps the cursor when the bus refuses, and hands the lines on at the next poll', async () => {
    loki.push([{ labels: sidecar, time: ago(30_000), line: meshLines[2]! }]);
    const p = poller();
    sink.refuse = true;
    expect((await p.pollOnce())[0]!.error?.reason).toBe('sink');
    expect(state.has(cursorKey('mesh'))).toBe(false);
    sink.refuse = false;
    await p.pollOnce();
    expect(sink.events).toHaveLength(1);
  });

  it('reads the documented response shapes: newest-first values, and categorize-labels structured metadata', async () => {
    const p = poller({ queries: [{ name: 'docs', query: '{job="varlogs"}' }], lookbackMs: 100 * 365 * 86_400_000 });
    loki.respondOnceWith(readReal('loki/query_range-streams-response.docs.json'));
    const [r] = await p.pollOnce();
    expect(r).toMatchObject({ received: 2, detected: 0 });
    expect(JSON.parse(state.get(cursorKey('docs'))!).ts).toBe('1569266497240578000');

    loki.push([{ labels: sidecar, time: ago(30_000), line: meshLines[2]!, metadata: { trace_id: 'abc' } }]);
    await poller().pollOnce();
    expect(sink.events[0]!.raw.metadata).toEqual({ trace_id: 'abc' });
    expect(sink.events[0]!.raw.labels).toEqual(sidecar);

    const q = poller({ queries: [{ name: 'cat', query: '{test="test"}' }], lookbackMs: 100 * 365 * 86_400_000 });
    loki.respondOnceWith(readReal('loki/query_range-streams-categorize-labels.marshal_test.json'));
    expect((await q.pollOnce())[0]).toMatchObject({ received: 3 });
  });

  it('rejects a bad configuration listing every problem', () => {
    const make = () =>
      poller({
        url: 'ftp://x',
        queries: [
          { name: 'a b', query: 'rate({a="b"}[1m])' },
          { name: 'a b', query: '{a="b"}' },
        ],
        schedule: 'every minute',
        limit: 9000,
      });
    expect(make).toThrow(ConfigError);
    try {
      make();
    } catch (e) {
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(7);
      for (const re of [/LOKI_URL \(ftp:\/\/x\)/, /used twice/, /must be a log query/, /LOKI_POLL_SCHEDULE \(every minute\)/, /limit \(9000\)/])
        expect(problems.some((p) => re.test(p))).toBe(true);
    }
  });

  it('polls on its cron schedule and stops cleanly', async () => {
    loki.push([{ labels: sidecar, time: ago(30_000), line: meshLines[2]! }]);
    const p = poller({ schedule: '* * * * * *' });
    p.start();
    await vi.waitFor(() => expect(sink.events).toHaveLength(1), { timeout: 5000, interval: 50 });
    await p.stop();
    const n = loki.queries.length;
    await p.stop();
    expect(loki.queries.length).toBe(n);
  });
});
