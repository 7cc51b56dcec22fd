/**
 * kubevigil's own traces: with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set, one batch is one trace from
 * the webhook through detection, publication, correlation and the store, exported over OTLP/HTTP
 * (here to a recording endpoint); without OTEL_* settings nothing is exported.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import { tracingFromEnv } from '../services/tracing.js';

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

describe('tracing switched on by OTEL_* variables', () => {
  it('reads the standard variables', () => {
    expect(tracingFromEnv({})).toBeUndefined();
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      url: 'http://collector:4318/v1/traces',
      serviceName: 'kubevigil',
    });
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/traces', OTEL_SERVICE_NAME: 'kv-1' })).toEqual({
      url: 'http://c/v1/traces',
      serviceName: 'kv-1',
    });
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' })).toBeUndefined();
  });

  const received: OtlpSpan[] = [];
  let collector: Server;
  let url = '';
  beforeAll(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const doc = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
  });
  afterAll(() => new Promise<void>((r) => collector.close(() => r())));

  it('exports one trace per batch from ingest through correlation and the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-trace-'));
    const kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), {
      processMetrics: false,
      sweepSchedule: false,
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    });
    try {
      const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(attackEvents(SEED_SCENARIO)),
      });
      expect(res.status).toBe(200);
      await kv.drained();
    } finally {
      await kv.stop(); // flushes the spans
      rmSync(dir, { recursive: true, force: true });
    }
    const names = received.map((s) => s.name);
    for (const n of ['kubevigil.ingest', 'kubevigil.publish', 'kubevigil.correlate', 'kubevigil.store']) expect(names).toContain(n);
    const ingest = received.find((s) => s.name === 'kubevigil.ingest')!;
    const publish = received.find((s) => s.name === 'kubevigil.publish')!;
    const correlate = received.find((s) => s.name === 'kubevigil.correlate')!;
    expect(publish.traceId).toBe(ingest.traceId);
    expect(publish.parentSpanId).toBe(ingest.spanId);
    expect(correlate.traceId).toBe(ingest.traceId);
  });
});
