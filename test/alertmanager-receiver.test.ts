import { gzipSync } from 'node:zlib';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../connectors/alertmanager/normalize.js';
import { alertmanagerReceiver } from '../connectors/alertmanager/receiver.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError } from '../correlator/errors.js';
import type { IngestSink } from '../correlator/ports.js';
import { readReal } from './helpers/fixtures.js';
import { listen, type Listening } from './helpers/http.js';

/** Records what reached it; can refuse like a full bus, or hold each batch until released. */
class RecordingSink implements IngestSink {
  events: SourceEvent[] = [];
  calls = 0;
  refuse = false;
  gate?: Promise<void>;
  async ingest(events: readonly SourceEvent[]) {
    this.calls++;
    if (this.gate) await this.gate;
    if (this.refuse) throw new BackpressureError('test bus', 1, 7);
    this.events.push(...events);
    return { signals: events.length };
  }
  names(): string[] {
    return this.events.map((e) => `${(e.raw as AlertRecord).labels.alertname}/${(e.raw as AlertRecord).status}`);
  }
}

const captureLines = readReal('alertmanager/webhook-v4-am0.27-capture.jsonl').trim().split('\n');
const captureBodies = captureLines.map((l) => JSON.stringify((JSON.parse(l) as { body: unknown }).body));
const firing2019 = readReal('alertmanager/webhook-v4-am-2019-alertmonitor-firing.json');
const resolved2019 = readReal('alertmanager/webhook-v4-am-2019-alertmonitor-resolved.json');

const alert = (name: string, extra: Record<string, unknown> = {}) => ({
  status: 'firing',
  labels: { alertname: name, severity: 'warning' },
  annotations: {},
  startsAt: '2025-03-01T10:00:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: '',
  fingerprint: `fp-${name}`,
  ...extra,
});
const payload = (alerts: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    receiver: 'kubevigil',
    status: 'firing',
    alerts,
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://am:9093',
    version: '4',
    groupKey: '{}:{}',
    truncatedAlerts: 0,
    ...extra,
  });

describe('POST /ingest/alertmanager', () => {
  let sink: RecordingSink;
  let srv: Listening;
  const counted: Record<string, number> = {};
  const requests: number[] = [];
  const post = (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${srv.url}/ingest/alertmanager`, { method: 'POST', body, headers });
  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;

  beforeEach(async () => {
    sink = new RecordingSink();
    for (const k of Object.keys(counted)) delete counted[k];
    requests.length = 0;
    const app = express();
    app.use(
      alertmanagerReceiver({
        sink,
        maxBodyBytes: 64 * 1024,
        dedupEntries: 1000,
        now: () => 1234,
        stats: { events: (o, n) => void (counted[o] = (counted[o] ?? 0) + n), request: (s) => void requests.push(s) },
      }),
    );
    srv = await listen(app);
  });
  afterEach(() => srv.close());

  it('accepts every delivery Alertmanager 0.27 made, and the resolutions as their own alerts', async () => {
    for (const body of captureBodies) {
      const res = await post(body);
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ accepted: 1, duplicates: 0, invalid: 0, signals: 1 });
    }
    expect(sink.events.map((e) => e.key)).toEqual([
      '0eeee852e85422ff/2026-08-24T10:34:30.583Z/firing',
      '7f55ecd578853462/2026-08-24T10:34:30.583Z/firing',
      '13d86469efcf3ccc/2026-08-24T10:34:45.583Z/firing',
      '13d86469efcf3ccc/2026-08-24T10:34:45.583Z/resolved',
      'c1cf16569b44acd6/2026-08-24T10:39:30.583Z/firing',
      '0eeee852e85422ff/2026-08-24T10:34:30.583Z/resolved',
      '7f55ecd578853462/2026-08-24T10:34:30.583Z/resolved',
      'c1cf16569b44acd6/2026-08-24T10:39:30.583Z/resolved',
    ]);
    const first = sink.events[0]!;
    expect(first.observedTime).toBe(1234);
    expect(first.details().actor.key).toBe('user:alertmanager/ServiceHighErrorRate');
    expect((first.raw as AlertRecord).group).toMatchObject({
      receiver: 'faultline',
      groupKey: '{}:{alertname="ServiceHighErrorRate", service_name="frontend"}',
    });
    expect(requests.every((s) => s === 200)).toBe(true);
  });

  it('deduplicates repeat and HA deliveries per alert on (fingerprint, startsAt, status)', async () => {
    expect(await json(await post(firing2019))).toMatchObject({ accepted: 3, duplicates: 0 });
    // repeat_interval, or the other member of an HA pair: same alerts again.
    expect(await json(await post(firing2019))).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(await json(await post(resolved2019))).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(await json(await post(resolved2019))).toMatchObject({ accepted: 0, duplicates: 3 });
    // A new firing of the same label set starts at a new time: a new alert.
    const again = JSON.parse(firing2019) as { alerts: { startsAt: string }[] };
    again.alerts[0]!.startsAt = '2019-09-28T08:00:00Z';
    expect(await json(await post(JSON.stringify(again)))).toMatchObject({ accepted: 1, duplicates: 2 });
    expect(sink.events).toHaveLength(7);
    expect(counted).toEqual({ accepted: 7, duplicate: 8, invalid: 0 });
  });

  it('drops an alert repeated inside one payload', async () => {
    const res = await post(payload([alert('A'), alert('A'), alert('B')]));
    expect(await json(res)).toMatchObject({ accepted: 2, duplicates: 1 });
  });

  it('hands the same alerts arriving at once from both members of an HA pair to the sink once', async () => {
    let release!: () => void;
    sink.gate = new Promise((r) => (release = r));
    const body = payload([alert('A'), alert('B')]);
    const first = post(body);
    await new Promise((r) => setTimeout(r, 50));
    const second = post(body);
    await new Promise((r) => setTimeout(r, 50));
    release();
    const [a, b] = await Promise.all([first, second]);
    expect([await json(a), await json(b)]).toEqual([
      { accepted: 2, duplicates: 0, invalid: 0, signals: 2 },
      { accepted: 0, duplicates: 2, invalid: 0, signals: 0 },
    ]);
    expect(sink.calls).toBe(1);
    expect(sink.names()).toEqual(['A/firing', 'B/firing']);
  });

  it('answers 200 for a payload with bad alerts, keeping the good ones and listing the bad', async () => {
    const res = await post(
      payload([alert('Good'), { ...alert('NoStart'), startsAt: 5 }, 'junk', { ...alert('BadLabels'), labels: { alertname: 'BadLabels', n: 1 } }], {
        truncatedAlerts: 2,
      }),
    );
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      accepted: 1,
      duplicates: 0,
      invalid: 3,
      signals: 1,
      errors: [
        { index: 1, fingerprint: 'fp-NoStart', alertname: 'NoStart', reason: 'startsAt must be an RFC 3339 time string (got 5)' },
        { index: 2, reason: 'expected an alert object, got string' },
        { index: 3, fingerprint: 'fp-BadLabels', alertname: 'BadLabels', reason: 'labels.n must be a string, got number' },
      ],
      warnings: ['Alertmanager left out 2 alert(s) of this group (max_alerts of the webhook receiver); raise or remove max_alerts so kubevigil sees them'],
    });
    expect(counted).toMatchObject({ accepted: 1, invalid: 3 });
  });

  it('answers 400 problem+json naming the field for bodies that are not webhook payloads', async () => {
    const cases: [string | Buffer, string, RegExp][] = [
      ['{"alerts": [', '(body)', /not valid JSON/],
      ['', '(body)', /not valid JSON/],
      ['[]', '(body)', /must be a JSON object.*got an array/],
      ['"alerts"', '(body)', /got string/],
      ['{"receiver": "x", "status": "firing"}', 'alerts', /alerts is missing/],
      ['{"alerts": {"a": 1}}', 'alerts', /alerts must be a list of alerts, got object/],
      ['{"alerts": null}', 'alerts', /alerts is missing/],
      // Grafana's legacy (pre-8) webhook has no alerts list.
      ['{"title": "t", "ruleId": 1, "state": "alerting", "evalMatches": []}', 'alerts', /alerts is missing/],
      [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), '(body)', /not valid UTF-8/],
    ];
    for (const [body, field, detail] of cases) {
      const res = await post(body);
      expect(res.status, String(body)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const p = await json(res);
      expect(p).toMatchObject({ status: 400, title: 'Bad Request', field });
      expect(p.detail).toMatch(detail);
    }
    expect(sink.calls).toBe(0);
  });

  it('answers 413 for a body over the limit, 415 for a non-JSON content type, and accepts gzip', async () => {
    const huge = payload(Array.from({ length: 400 }, (_, i) => alert(`A${i}`, { annotations: { description: 'x'.repeat(200) } })));
    expect(huge.length).toBeGreaterThan(64 * 1024);
    const big = await post(huge);
    expect(big.status).toBe(413);
    expect((await json(big)).detail).toMatch(/exceeds 65536 bytes.*max_alerts/);
    // Compressed small but inflating past the limit is refused the same way.
    expect((await post(gzipSync(huge), { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(413);

    const text = await post(payload([alert('A')]), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect((await json(text)).detail).toMatch(/application\/json/);

    const gz = await post(gzipSync(payload([alert('Z')])), { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'gzip' });
    expect(await json(gz)).toMatchObject({ accepted: 1 });
    const bad = await post(Buffer.from('not gzip'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(bad.status).toBe(400);
    expect(requests).toEqual([413, 413, 415, 200, 400]);
  });

  it('answers 503 with Retry-After when the bus refuses, and remembers nothing, so the retry is processed in full', async () => {
    sink.refuse = true;
    const res = await post(firing2019);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await json(res)).detail).toMatch(/could not be handed to the bus.*retry after 7s/);
    sink.refuse = false;
    expect(await json(await post(firing2019))).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(requests).toEqual([503, 200]);
  });

  it('answers 503 also when the sink throws instead of rejecting', async () => {
    const app = express();
    const throwing: IngestSink = {
      ingest() {
        throw new Error('bus closed');
      },
    };
    app.use(alertmanagerReceiver({ sink: throwing }));
    const other = await listen(app);
    try {
      const res = await fetch(`${other.url}/ingest/alertmanager`, {
        method: 'POST',
        body: payload([alert('A')]),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      await other.close();
    }
  });

  it('does not call the sink when every alert was seen already, so a full bus cannot fail a pure repeat', async () => {
    await post(payload([alert('A')]));
    sink.refuse = true;
    const res = await post(payload([alert('A')]));
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(sink.calls).toBe(1);
  });

  it('keeps serving after bad input', async () => {
    await post('{');
    await post(Buffer.alloc(70 * 1024, 0x20));
    expect((await post(payload([alert('Still')]))).status).toBe(200);
  });
});
