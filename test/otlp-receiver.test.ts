/**
 * The OTLP/HTTP receiver with real clients: the official OpenTelemetry JS exporters (HTTP JSON and
 * HTTP protobuf) send spans from a pod resource to the receiver running in-process on a free port;
 * then bad input of every kind, answered as the OTLP/HTTP specification says, while the server keeps
 * serving.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { diag, DiagLogLevel, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type IdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { otlpReceiver } from '../connectors/otlp/receiver.js';
import type { OtlpSpan } from '../connectors/otlp/parse.js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from '../connectors/otlp/schema.js';
import { OTLP_SOURCE } from '../connectors/otlp/source.js';
import { compileRules } from '../correlator/detection/compile.js';
import { Detector } from '../correlator/detection/engine.js';
import { formatProblem } from '../correlator/detection/problems.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError, KubevigilError } from '../correlator/errors.js';
import type { IngestOutcome, IngestSink } from '../correlator/ports.js';
import type { Signal } from '../correlator/signal.js';
import { listen, type Listening } from './helpers/http.js';

/** The span rules compiled against the OTLP source alone (it is registered in services/ separately). */
function otlpDetector(): Detector {
  const file = fileURLToPath(new URL('../rules/detections/otlp.yaml', import.meta.url));
  const compiled = compileRules([{ file, doc: parse(readFileSync(file, 'utf8')) as unknown }], [OTLP_SOURCE.schema]);
  if (compiled.problems.length) throw new Error(compiled.problems.map(formatProblem).join('\n'));
  return new Detector(compiled.rules, [OTLP_SOURCE.schema]);
}

/** A sink that runs the real span rules and records events and signals; it can be told to refuse. */
class RecordingSink implements IngestSink {
  events: SourceEvent[] = [];
  signals: Signal[] = [];
  refuse: Error[] = [];
  calls = 0;
  private readonly detector = otlpDetector();

  async ingest(events: readonly SourceEvent[]): Promise<IngestOutcome> {
    this.calls++;
    const err = this.refuse.shift();
    if (err) throw err;
    const found = events.flatMap((e) => this.detector.detect(e));
    this.events.push(...events);
    this.signals.push(...found);
    return { signals: found.length };
  }

  spans(): OtlpSpan[] {
    return this.events.map((e) => e.raw as OtlpSpan);
  }
}

const MAX_BODY = 256 * 1024;
const sink = new RecordingSink();
const requests: number[] = [];
const encodings: string[] = [];
let server: Listening;
let url: string;

beforeAll(async () => {
  const app = express();
  app.use((req, _res, next) => {
    encodings.push(`${String(req.headers['content-type'])} ${req.headers['content-encoding'] ?? 'identity'}`);
    next();
  });
  app.use(otlpReceiver({ sink, maxBodyBytes: MAX_BODY, stats: { spans: () => {}, request: (s) => requests.push(s) } }));
  server = await listen(app);
  url = `${server.url}/v1/traces`;
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  sink.events = [];
  sink.signals = [];
  sink.refuse = [];
  diag.disable();
});

const POD_RESOURCE = {
  'service.name': 'frontend',
  'k8s.namespace.name': 'frontend',
  'k8s.pod.name': 'frontend-7d9c4b5f6-xk2pq',
  'k8s.pod.ip': '10.244.1.17',
};

/** Sends one 403 client span (and optionally an OK one) through a real SDK pipeline and exporter. */
async function sendSpans(exporter: SpanExporter, opts: { idGenerator?: IdGenerator; extra?: number } = {}): Promise<{ traceIds: string[]; spanIds: string[] }> {
  const provider = new TracerProvider({
    resource: resourceFromAttributes(POD_RESOURCE),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 60_000 })],
    ...(opts.idGenerator ? { idGenerator: opts.idGenerator } : {}),
  });
  const tracer = provider.getTracer('kubevigil-test', '1.0.0');
  const traceIds: string[] = [];
  const spanIds: string[] = [];
  const span = tracer.startSpan('GET', {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 403,
      'server.address': 'payments.payments.svc.cluster.local',
      'server.port': 8080,
      'url.full': 'http://payments.payments.svc.cluster.local:8080/api/v1/cards',
      'retry.ok': true,
      'sample.ratio': 0.25,
      'http.request.header.accept': ['application/json', 'text/plain'],
    },
  });
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.addEvent('exception', { 'exception.type': 'HTTPError', 'exception.message': 'Forbidden' });
  traceIds.push(span.spanContext().traceId);
  spanIds.push(span.spanContext().spanId);
  span.end();
  for (let i = 0; i < (opts.extra ?? 0); i++) {
    const ok = tracer.startSpan(`ok-${i}`, { kind: SpanKind.SERVER, attributes: { 'http.response.status_code': 200 } });
    traceIds.push(ok.spanContext().traceId);
    spanIds.push(ok.spanContext().spanId);
    ok.end();
  }
  await provider.forceFlush();
  await provider.shutdown();
  return { traceIds, spanIds };
}

/** Captures what the exporters report through the OpenTelemetry diagnostics logger. */
function captureDiag(): string[] {
  const lines: string[] = [];
  const log = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  diag.setLogger({ error: log, warn: log, info: log, debug: () => {}, verbose: () => {} }, DiagLogLevel.INFO);
  return lines;
}

function checkDelivered(ids: { traceIds: string[]; spanIds: string[] }): void {
  const spans = sink.spans();
  expect(spans).toHaveLength(1);
  const s = spans[0]!;
  expect(s.traceId).toBe(ids.traceIds[0]);
  expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(s.spanId).toBe(ids.spanIds[0]);
  expect(s).toMatchObject({
    name: 'GET',
    kind: 'client',
    status: { code: 'error' },
    scope: { name: 'kubevigil-test', version: '1.0.0' },
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 403,
      'server.port': 8080,
      'retry.ok': true,
      'sample.ratio': 0.25,
      'http.request.header.accept': ['application/json', 'text/plain'],
    },
  });
  expect({ ...s.resource }).toMatchObject(POD_RESOURCE);
  expect(s.events?.[0]).toMatchObject({ name: 'exception', attributes: { 'exception.message': 'Forbidden' } });
  expect(Number(s.startTimeUnixNano.slice(0, -6))).toBeGreaterThan(Date.now() - 60_000);

  expect(sink.signals).toHaveLength(1);
  expect(sink.signals[0]).toMatchObject({
    source: 'otlp',
    kind: 'service.auth_failed',
    rule: { id: 'otlp-service-auth-denied' },
    actor: { key: 'pod:frontend/frontend-7d9c4b5f6-xk2pq' },
    outcome: 'denied',
    target: { namespace: 'payments', name: 'payments', verb: 'GET' },
    attributes: { traceId: ids.traceIds[0], spanId: ids.spanIds[0], service: 'frontend', destination: 'payments/payments' },
  });
}

describe('the official OpenTelemetry JS exporters', () => {
  it('HTTP JSON: a 403 client span from a pod arrives with its ids, attributes and resource, and raises a signal', async () => {
    const log = captureDiag();
    const ids = await sendSpans(new JsonExporter({ url }));
    checkDelivered(ids);
    expect(log.filter((l) => /Partial Success|error/i.test(l))).toEqual([]);
  });

  it('HTTP protobuf: the same span, the same result', async () => {
    const log = captureDiag();
    const ids = await sendSpans(new ProtoExporter({ url }));
    checkDelivered(ids);
    expect(log.filter((l) => /Partial Success|error/i.test(l))).toEqual([]);
  });

  it('gzip-compressed JSON and protobuf (OTEL_EXPORTER_OTLP_COMPRESSION=gzip)', async () => {
    process.env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION = 'gzip';
    encodings.length = 0;
    try {
      for (const exporter of [new JsonExporter({ url }), new ProtoExporter({ url })]) {
        sink.events = [];
        sink.signals = [];
        checkDelivered(await sendSpans(exporter));
      }
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION;
    }
    expect(encodings).toEqual(['application/json gzip', 'application/x-protobuf gzip']);
  });

  it('a batch with an invalid span: 200 with partialSuccess, which both exporters read back; the valid spans are kept', async () => {
    // Every second trace id is all zeros, which OTLP defines as invalid.
    let n = 0;
    const random = () => Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
    const idGenerator: IdGenerator = { generateTraceId: () => (n++ % 2 === 1 ? '0'.repeat(32) : random()), generateSpanId: () => random().slice(0, 16) };
    for (const exporter of [new JsonExporter({ url }), new ProtoExporter({ url })]) {
      sink.events = [];
      sink.signals = [];
      n = 0;
      const log = captureDiag();
      const ids = await sendSpans(exporter, { idGenerator, extra: 3 });
      expect(
        sink
          .spans()
          .map((s) => s.traceId)
          .sort(),
      ).toEqual([ids.traceIds[0], ids.traceIds[2]].sort());
      const partial = log.find((l) => l.includes('Received Partial Success response'));
      expect(partial).toBeDefined();
      expect(partial).toMatch(/"rejectedSpans":"?2"?/);
      expect(partial).toContain('resourceSpans[0].scopeSpans[0].spans[1].traceId is all zeros, which OTLP defines as invalid');
    }
  });

  it('a refused batch is answered 503 with Retry-After, and the exporter retries it to success exactly once', async () => {
    sink.refuse.push(new KubevigilError('BUS_UNAVAILABLE', 'the bus is reconnecting', true, 1));
    const calls = sink.calls;
    const ids = await sendSpans(new ProtoExporter({ url, timeoutMillis: 10_000 }));
    expect(sink.calls - calls).toBe(2);
    checkDelivered(ids);
  });
});

/** Posts a body as a raw client would. */
async function post(body: string | Uint8Array, headers: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body });
}

const JSON_H = { 'content-type': 'application/json' };
const PROTO_H = { 'content-type': 'application/x-protobuf' };

function validRequest(traceId = '5b8efff798038103d269b633813fc60c'): Record<string, unknown> {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'k8s.pod.name', value: { stringValue: 'p' } },
            { key: 'k8s.namespace.name', value: { stringValue: 'ns' } },
          ],
        },
        scopeSpans: [
          {
            scope: { name: 's' },
            spans: [
              {
                traceId,
                spanId: 'eee19b7ec3c1b174',
                name: 'x',
                kind: 3,
                startTimeUnixNano: 1544712660000000000,
                attributes: [{ key: 'http.response.status_code', value: { intValue: 403 } }],
              },
            ],
          },
        ],
      },
    ],
  };
}

/** The server still answers a good request after a bad one. */
async function stillServing(): Promise<void> {
  const before = sink.events.length;
  const res = await post(JSON.stringify(validRequest()), JSON_H);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({});
  expect(sink.events.length).toBe(before + 1);
}

async function jsonStatus(res: Response): Promise<{ code: number; message: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as { code: number; message: string };
}

async function protoStatus(res: Response): Promise<{ code: number; message: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/x-protobuf/);
  return RpcStatus.toObject(RpcStatus.decode(new Uint8Array(await res.arrayBuffer()))) as { code: number; message: string };
}

describe('bad input is answered as an OTLP server must, and the server keeps serving', () => {
  it('malformed JSON → 400 with a JSON Status naming the problem', async () => {
    const res = await post('{"resourceSpans": [', JSON_H);
    expect(res.status).toBe(400);
    expect(await jsonStatus(res)).toMatchObject({ code: 3, message: expect.stringContaining('not valid JSON') });
    await stillServing();
  });

  it('wrong types above the spans → 400 naming the field; in a span → 200 partialSuccess naming the span field', async () => {
    let res = await post(JSON.stringify({ resourceSpans: { oops: 1 } }), JSON_H);
    expect(res.status).toBe(400);
    expect((await jsonStatus(res)).message).toContain('resourceSpans must be a list');
    res = await post(JSON.stringify([1, 2]), JSON_H);
    expect(res.status).toBe(400);
    expect((await jsonStatus(res)).message).toContain('must be a JSON object');

    const req = validRequest();
    const spans = ((req.resourceSpans as Record<string, unknown>[])[0]!.scopeSpans as Record<string, unknown>[])[0]!.spans as Record<string, unknown>[];
    spans.push({ ...spans[0], spanId: 'eee19b7ec3c1b175', traceId: 42 });
    spans.push({ ...spans[0], spanId: 'eee19b7ec3c1b176', kind: 'SIDEWAYS' });
    spans.push({ ...spans[0], spanId: 'eee19b7ec3c1b177', attributes: [{ key: 'n', value: { intValue: 'lots' } }] });
    res = await post(JSON.stringify(req), JSON_H);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    expect(body.partialSuccess.rejectedSpans).toBe('3');
    expect(body.partialSuccess.errorMessage).toContain('resourceSpans[0].scopeSpans[0].spans[1].traceId: expected a hex string, got number 42');
    expect(body.partialSuccess.errorMessage).toContain('spans[2].kind: expected a SpanKind');
    expect(body.partialSuccess.errorMessage).toContain('spans[3].attributes[0].value.intValue: expected a 64-bit integer');
    expect(sink.events).toHaveLength(1);
    await stillServing();
  });

  it('truncated protobuf → 400 with a protobuf Status', async () => {
    const bytes = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          { scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 7), spanId: Buffer.alloc(8, 9), name: 'a span with a long enough name', kind: 2 }] }] },
        ],
      }),
    ).finish();
    const res = await post(bytes.subarray(0, bytes.length - 7), PROTO_H);
    expect(res.status).toBe(400);
    expect(await protoStatus(res)).toMatchObject({ code: 3, message: expect.stringContaining('not a protobuf ExportTraceServiceRequest') });
    const ok = await post(bytes, PROTO_H);
    expect(ok.status).toBe(200);
    expect(ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(new Uint8Array(await ok.arrayBuffer())))).toEqual({});
    expect(sink.spans()[0]).toMatchObject({ traceId: '07'.repeat(16), spanId: '09'.repeat(8), kind: 'server' });
    await stillServing();
  });

  it('a body too large, plain or as a gzip bomb → 413', async () => {
    const big = JSON.stringify({ resourceSpans: [], pad: 'x'.repeat(MAX_BODY) });
    let res = await post(big, JSON_H);
    expect(res.status).toBe(413);
    expect((await jsonStatus(res)).message).toContain(`exceeds ${MAX_BODY} bytes after decompression`);
    const bomb = gzipSync(Buffer.from(big));
    expect(bomb.length).toBeLessThan(MAX_BODY / 50);
    res = await post(bomb, { ...PROTO_H, 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
    expect((await protoStatus(res)).message).toContain('after decompression');
    await stillServing();
  });

  it('gzip that does not decompress → 400; an unknown Content-Encoding → 415', async () => {
    let res = await post('{"resourceSpans": []}', { ...JSON_H, 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect((await jsonStatus(res)).message).toMatch(/could not be read.*gzip/);
    const gz = gzipSync(Buffer.from(JSON.stringify(validRequest())));
    res = await post(gz.subarray(0, gz.length - 10), { ...JSON_H, 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    res = await post('{}', { ...JSON_H, 'content-encoding': 'snappy' });
    expect(res.status).toBe(415);
    expect((await jsonStatus(res)).message).toContain('snappy');
    res = await post(gz, { ...JSON_H, 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
    await stillServing();
  });

  it('another content type → 415; invalid UTF-8 → 400; an empty request → 200', async () => {
    let res = await post('hello', { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expect((await jsonStatus(res)).message).toContain('application/x-protobuf or application/json');
    res = await post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), JSON_H);
    expect(res.status).toBe(400);
    expect((await jsonStatus(res)).message).toContain('UTF-8');
    res = await post(new Uint8Array(0), PROTO_H);
    expect(res.status).toBe(200);
    res = await post('{}', { 'content-type': 'application/json; charset=utf-8' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    await stillServing();
  });

  it('the bus refusing: 429 for backpressure, 503 for other retryable errors, both with Retry-After; nothing is kept', async () => {
    sink.refuse.push(new BackpressureError('signal queue', 10_000, 2));
    let res = await post(JSON.stringify(validRequest()), JSON_H);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect((await jsonStatus(res)).message).toContain('signal queue is full');
    sink.refuse.push(new KubevigilError('BUS_UNAVAILABLE', 'broker unreachable', true, 5));
    res = await post(JSON.stringify(validRequest()), JSON_H);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(sink.events).toHaveLength(0);
    await stillServing();
  });
});
