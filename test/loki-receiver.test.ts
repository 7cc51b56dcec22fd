/**
 * The Loki push receiver as Promtail, Alloy and Fluent Bit reach it: JSON (with structured
 * metadata), gzip JSON and snappy-compressed protobuf built from Loki's push.proto schema, and every
 * kind of bad input answered as Loki answers it, while the process keeps serving.
 */
import { gzipSync } from 'node:zlib';
import express, { type NextFunction, type Request, type Response } from 'express';
import snappy from 'snappyjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LokiSourceEvent } from '../connectors/loki/normalize.js';
import { encodePushProtobuf, PushRequestType } from '../connectors/loki/push.js';
import { lokiReceiver } from '../connectors/loki/receiver.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError, KubevigilError } from '../correlator/errors.js';
import type { IngestSink } from '../correlator/ports.js';
import { readReal } from './helpers/fixtures.js';
import { listen, type Listening } from './helpers/http.js';

/** A sink that records what reached it and can be told to refuse, like a full bus. */
class RecordingSink implements IngestSink {
  events: LokiSourceEvent[] = [];
  refuse: Error | undefined;
  async ingest(events: readonly SourceEvent[]) {
    if (this.refuse) throw this.refuse;
    this.events.push(...(events as LokiSourceEvent[]));
    return { signals: 0 };
  }
}

const meshLines = readReal('mesh/istio-access-log-text-samples.log')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'));
const sidecar = { namespace: 'payments', pod: 'postgres-0', container: 'istio-proxy' };
const NS = '1764410400123456789';

describe('POST /loki/api/v1/push', () => {
  let sink: RecordingSink;
  let srv: Listening;
  let counts: Record<string, number>;
  let statuses: number[];
  const post = (body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${srv.url}/loki/api/v1/push`, { method: 'POST', body, headers });
  const pushJson = (lines: string[], labels: Record<string, string> = sidecar) =>
    JSON.stringify({ streams: [{ stream: labels, values: lines.map((l, i) => [String(BigInt(NS) + BigInt(i)), l]) }] });
  const detail = async (res: globalThis.Response) => ((await res.json()) as { detail: string }).detail;

  beforeEach(async () => {
    sink = new RecordingSink();
    counts = {};
    statuses = [];
    const app = express();
    app.use(
      lokiReceiver({
        sink,
        maxBodyBytes: 256 * 1024,
        maxLineLength: 4096,
        dedupEntries: 1000,
        now: () => 42,
        stats: { lines: (o, n) => void (counts[o] = (counts[o] ?? 0) + n), request: (s) => void statuses.push(s) },
      }),
    );
    app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(500).json({ error: 'internal' });
    });
    srv = await listen(app);
  });
  afterEach(() => srv.close());

  it('accepts the documented JSON push bodies (with and without structured metadata) with 204', async () => {
    for (const f of ['loki/push-request-json.docs.json', 'loki/push-request-json-structured-metadata.docs.json']) {
      const res = await post(readReal(f));
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    }
    // "fizzbuzz" is no line kubevigil understands: counted, not sent to detection.
    expect(counts).toMatchObject({ received: 2, detected: 0 });
    expect(sink.events).toEqual([]);
    expect(statuses).toEqual([204, 204]);
  });

  it('sends recognized lines to detection with labels, structured metadata, tenant and nanosecond time', async () => {
    const body = JSON.stringify({
      streams: [
        {
          stream: sidecar,
          values: [
            [NS, meshLines[2], { trace_id: '0242ac120002', user_id: 'superUser123' }],
            [NS, 'GET /healthz 200'],
          ],
        },
        { stream: { ...sidecar, pod: 'postgres-1' }, values: meshLines.slice(6, 8).map((l, i) => [`${NS.slice(0, -1)}${i}`, l]) },
      ],
    });
    const res = await post(body, { 'content-type': 'application/json; charset=utf-8', 'x-scope-orgid': 'team-a' });
    expect(res.status).toBe(204);
    expect(counts).toMatchObject({ received: 4, detected: 3 });
    expect(sink.events).toHaveLength(3);
    const first = sink.events[0]!;
    expect(first.raw).toEqual({
      line: meshLines[2],
      labels: sidecar,
      metadata: { trace_id: '0242ac120002', user_id: 'superUser123' },
      tenant: 'team-a',
      time: NS,
    });
    expect(first.observedTime).toBe(42);
    expect(first.derived.mesh).toMatchObject({ authzDenied: true, policy: 'starfleet/probe-deny-status' });
    expect(first.key).toMatch(/^team-a\/1764410400123456789\/[0-9a-f]{20}\/[0-9a-f]{20}$/);
    expect(sink.events.slice(1).map((e) => e.derived.mesh?.mtlsFailure)).toEqual([true, true]);
  });

  it('accepts gzip JSON', async () => {
    const res = await post(gzipSync(pushJson(meshLines.slice(2, 4))), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(204);
    expect(sink.events.map((e) => e.derived.format)).toEqual(['istio', 'istio']);
  });

  it('accepts snappy-compressed protobuf PushRequests, with or without Content-Type and Content-Encoding: snappy', async () => {
    const pb = encodePushProtobuf([
      { labels: sidecar, entries: [{ time: NS, line: meshLines[5]!, metadata: { trace_id: 'abc' } }] },
      {
        labels: { namespace: 'gatekeeper-system', pod: 'gatekeeper-controller-manager-0' },
        entries: readReal('admission/gatekeeper-controller-log-denies.jsonl')
          .trim()
          .split('\n')
          .map((line, i) => ({ time: `17226224439484184${i}0`, line })),
      },
    ]);
    expect((await post(pb, { 'content-type': 'application/x-protobuf' })).status).toBe(204);
    expect(sink.events).toHaveLength(4);
    expect(sink.events[0]!.raw).toEqual({ line: meshLines[5], labels: sidecar, metadata: { trace_id: 'abc' }, tenant: 'fake', time: NS });
    expect(sink.events.slice(1).map((e) => e.derived.gatekeeper?.constraint.kind)).toEqual([
      'K8sAzureV2NoPrivilege',
      'K8sAzureV2NoPrivilege',
      'K8sAzureV2NoPrivilege',
    ]);
    expect(sink.events[1]!.raw.labels).toEqual({ namespace: 'gatekeeper-system', pod: 'gatekeeper-controller-manager-0' });

    // Built directly from the schema, as a Go client's generated code would: label text with odd spacing and escapes.
    const raw = PushRequestType.encode({
      streams: [
        {
          labels: '{app="x\\"y", namespace = "payments" ,pod="postgres-0",}',
          entries: [{ timestamp: { seconds: 1764410401, nanos: 5 }, line: meshLines[6]! }],
        },
      ],
    }).finish();
    const res = await post(snappy.compress(raw), { 'content-encoding': 'snappy' });
    expect(res.status).toBe(204);
    const last = sink.events.at(-1)!;
    expect(last.raw.labels).toEqual({ app: 'x"y', namespace: 'payments', pod: 'postgres-0' });
    expect(last.raw.time).toBe('1764410401000000005');
  });

  it('drops entries it has already handed on when a client re-sends a batch', async () => {
    const body = pushJson(meshLines.slice(2, 5));
    expect((await post(body)).status).toBe(204);
    expect((await post(body)).status).toBe(204);
    expect(sink.events).toHaveLength(3);
    expect(counts).toMatchObject({ received: 6, detected: 3, duplicate: 3 });
  });

  it('answers 429 with Retry-After when the bus refuses, remembers nothing, and takes the re-sent batch', async () => {
    sink.refuse = new BackpressureError('test bus', 10, 7);
    const body = pushJson(meshLines.slice(2, 4));
    const res = await post(body);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await detail(res)).toMatch(/test bus is full/);
    sink.refuse = undefined;
    expect((await post(body)).status).toBe(204);
    expect(sink.events).toHaveLength(2);
  });

  it('answers 500 (retried by clients) when the sink fails in a way that is not backpressure', async () => {
    sink.refuse = new KubevigilError('BUS_REJECTED', 'store broke', false);
    expect((await post(pushJson(meshLines.slice(2, 3)))).status).toBe(500);
    expect(statuses).toEqual([500]);
  });

  it.each([
    ['malformed JSON', '{"streams":[', 400, /malformed JSON/],
    ['an empty body', '', 400, /body is empty/],
    ['an array', '[]', 400, /expected a JSON object/],
    ['missing streams', '{"stream":[]}', 400, /streams is missing/],
    ['streams that are not a list', '{"streams":{}}', 400, /streams must be an array/],
    ['a stream without labels', '{"streams":[{"stream":{},"values":[]}]}', 400, /streams\[0\]\.stream: at least one label pair/],
    ['a label value that is not a string', '{"streams":[{"stream":{"app":1},"values":[]}]}', 400, /streams\[0\]\.stream\.app must be a string/],
    ['a bad label name', '{"streams":[{"stream":{"bad-name":"x"},"values":[]}]}', 400, /label name "bad-name" is invalid/],
    [
      'a numeric timestamp',
      '{"streams":[{"stream":{"a":"b"},"values":[[1570818238000000000,"x"]]}]}',
      400,
      /streams\[0\]\.values\[0\]\[0\] \(timestamp\) must be a string of nanoseconds/,
    ],
    ['an RFC 3339 timestamp', '{"streams":[{"stream":{"a":"b"},"values":[["2024-01-01T00:00:00Z","x"]]}]}', 400, /values\[0\]\[0\] \(timestamp\)/],
    [
      'a line that is not a string',
      '{"streams":[{"stream":{"a":"b"},"values":[["1","x"],["2",{"msg":"x"}]]}]}',
      400,
      /streams\[0\]\.values\[1\]\[1\] \(line\) must be a string/,
    ],
    ['a value with four elements', '{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},1]]}]}', 400, /streams\[0\]\.values\[0\] must be/],
    [
      'metadata that is not a string map',
      '{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"n":1}]]}]}',
      400,
      /values\[0\]\[2\]\.n \(structured metadata\) must be a string/,
    ],
  ])('answers %s with %i naming the field', async (_name, body, status, message) => {
    const res = await post(body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await detail(res)).toMatch(message);
    expect(sink.events).toEqual([]);
  });

  it('answers 400 for truncated protobuf, bad snappy, bad label text and bad gzip; 400 for a bad tenant', async () => {
    const full = PushRequestType.encode({
      streams: [{ labels: '{a="b"}', entries: [{ timestamp: { seconds: 1, nanos: 0 }, line: 'x'.repeat(100) }] }],
    }).finish();
    const truncated = await post(snappy.compress(full.subarray(0, full.length - 20)), { 'content-type': 'application/x-protobuf' });
    expect(truncated.status).toBe(400);
    expect(await detail(truncated)).toMatch(/not a protobuf PushRequest/);

    const bad = await post(Buffer.concat([Buffer.from([0x20]), Buffer.from('not snappy at all, nor protobuf')]), { 'content-type': 'application/x-protobuf' });
    expect(bad.status).toBe(400);
    expect(await detail(bad)).toMatch(/snappy/);

    const noLength = await post(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), { 'content-type': 'application/x-protobuf' });
    expect(noLength.status).toBe(400);
    expect(await detail(noLength)).toMatch(/raw snappy block/);

    const labels = await post(encodeRawLabels('app="no-braces"'), { 'content-type': 'application/x-protobuf' });
    expect(labels.status).toBe(400);
    expect(await detail(labels)).toMatch(/streams\[0\]\.labels: .*expected "\{"/);

    const noTs = await post(snappy.compress(PushRequestType.encode({ streams: [{ labels: '{a="b"}', entries: [{ line: 'x' }] }] }).finish()), {
      'content-type': 'application/x-protobuf',
    });
    expect(noTs.status).toBe(400);
    expect(await detail(noTs)).toMatch(/streams\[0\]\.entries\[0\]\.timestamp is missing/);

    const gz = await post(Buffer.from('not gzip'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(gz.status).toBe(400);

    const tenant = await post(pushJson(['x']), { 'content-type': 'application/json', 'x-scope-orgid': 'a/b' });
    expect(tenant.status).toBe(400);
    expect(await detail(tenant)).toMatch(/X-Scope-OrgID/);
  });

  it('answers 413 past the limit, for plain, gzip-inflated and snappy-declared sizes; 415 for other media types', async () => {
    const big = pushJson(['x'.repeat(300 * 1024)]);
    const r1 = await post(big);
    expect(r1.status).toBe(413);
    expect(await detail(r1)).toMatch(/KUBEVIGIL_MAX_BODY_BYTES/);
    const bomb = gzipSync(Buffer.from(pushJson([' '.repeat(4 * 1024 * 1024)])));
    expect(bomb.length).toBeLessThan(256 * 1024);
    expect((await post(bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status).toBe(413);
    // A snappy block whose header declares 100 MiB is refused before anything is decompressed.
    const declared = Buffer.from([0x80, 0x80, 0x80, 0x32, 0x00]);
    const r3 = await post(declared, { 'content-type': 'application/x-protobuf' });
    expect(r3.status).toBe(413);
    expect(await detail(r3)).toMatch(/decompresses to 104857600 bytes/);
    const r4 = await post('x', { 'content-type': 'text/plain' });
    expect(r4.status).toBe(415);
    expect(await detail(r4)).toMatch(/application\/x-protobuf/);
    const r5 = await post(pushJson(['x']), { 'content-type': 'application/json', 'content-encoding': 'compress' });
    expect(r5.status).toBe(415);
  });

  it('truncates lines past the line limit instead of refusing the batch', async () => {
    const long = `${meshLines[2]} ${'x'.repeat(5000)}`;
    expect((await post(pushJson([long, meshLines[3]!]))).status).toBe(204);
    expect(counts).toMatchObject({ received: 2, truncated: 1 });
  });

  it('keeps serving after every kind of bad input', async () => {
    for (const b of ['{', '[]', '{"streams":1}', Buffer.from([0xff, 0xfe])]) await post(b);
    await post(Buffer.from([1, 2, 3]), { 'content-type': 'application/x-protobuf' });
    const res = await post(pushJson(meshLines.slice(6, 7)));
    expect(res.status).toBe(204);
    expect(sink.events).toHaveLength(1);
  });
});

/** A PushRequest whose label text is given verbatim (not canonical). */
function encodeRawLabels(labels: string): Uint8Array {
  return snappy.compress(PushRequestType.encode({ streams: [{ labels, entries: [{ timestamp: { seconds: 1, nanos: 0 }, line: 'x' }] }] }).finish());
}
