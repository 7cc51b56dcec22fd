/**
 * Past saturation: ingest answers 503 with Retry-After instead of buffering without limit, and
 * every event it acknowledged with a 2xx is processed — none lost, none counted twice. Two ways to
 * saturate: a consumer that stalls (the in-flight bound and the bus push back), and more requests
 * than the CPU keeps up with (admission by queue delay refuses early).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { topics } from '../services/bus/topics.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';

describe('ingest under overload', () => {
  it('turns senders away with 503 + Retry-After and processes everything it acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-load-'));
    const kv = await serve(
      loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_BUS_CAPACITY: '100', KUBEVIGIL_INGEST_MAX_INFLIGHT: '8' }),
      createLogger('silent'),
      { processMetrics: false, sweepSchedule: false },
    );
    const t = topics();
    // A consumer that stalls until released: its bounded queue fills and the bus pushes back.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const stalled = kv.bus.subscribe(t.signals, 'stalled', () => gate);
    const received = new Set<string>();
    let deliveries = 0;
    const counting = kv.bus.subscribe(t.signals, 'counting', async (batch) => {
      for (const m of batch)
        if ('id' in m.value) {
          received.add(m.value.id);
          deliveries++;
        }
    });
    const heapBefore = process.memoryUsage().heapUsed;
    try {
      const results = await Promise.all(
        Array.from({ length: 80 }, async (_, i) => {
          const events = attackEvents({ ...SEED_SCENARIO, namespace: `ns-${i}`, serviceAccount: `sa-${i}`, start: SEED_SCENARIO.start + i * 1000 }, 1000 + i);
          const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(events),
          });
          const body = (await res.json()) as { signals?: number };
          return { status: res.status, retryAfter: res.headers.get('retry-after'), signals: body.signals ?? 0 };
        }),
      );
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      expect(ok.length + refused.length).toBe(results.length);
      expect(refused.length).toBeGreaterThan(0);
      expect(ok.length).toBeGreaterThan(0);
      for (const r of refused) expect(r.retryAfter).toMatch(/^\d+$/);
      release();
      await kv.drained();
      const acknowledged = ok.reduce((n, r) => n + r.signals, 0);
      expect(deliveries).toBe(acknowledged);
      expect(received.size).toBe(acknowledged);
      const metrics = await (await fetch(`${kv.url}/metrics`)).text();
      expect(metrics).toMatch(/kubevigil_ingest_requests_total\{source="k8s-audit",code="503"\} \d+/);
      const grewMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
      expect(grewMb).toBeLessThan(200);
    } finally {
      release();
      await stalled();
      await counting();
      await kv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses early by queue delay when the CPU cannot keep up, with 503 + Retry-After, and loses nothing it acknowledged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-load-'));
    // Neither the in-flight bound nor the bus may be what refuses: only the queue delay (a low
    // target, so that the load of this test saturates a fast machine too).
    const kv = await serve(
      loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_INGEST_MAX_INFLIGHT: '10000', KUBEVIGIL_INGEST_MAX_QUEUE_DELAY: '20ms' }),
      createLogger('silent'),
      { processMetrics: false, sweepSchedule: false },
    );
    const received = new Set<string>();
    let deliveries = 0;
    const counting = kv.bus.subscribe(topics().signals, 'counting', async (batch) => {
      for (const m of batch)
        if ('id' in m.value) {
          received.add(m.value.id);
          deliveries++;
        }
    });
    // Batches of 400 distinct events, as the apiserver sends them, over 64 kept-alive connections
    // all busy at once (as a sender that has been sending all along).
    const N = 200;
    const events = syntheticAuditEvents(N * 400, { suspiciousShare: 0.05, seed: 7, stepMs: 2 });
    const bodies = Array.from({ length: N }, (_, i) =>
      Buffer.from(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i * 400, (i + 1) * 400) })),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const post = (path: string, body?: Buffer) =>
      new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
        const req = request(
          `${kv.url}${path}`,
          { method: body ? 'POST' : 'GET', agent, headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {} },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      await Promise.all(Array.from({ length: 64 }, () => post('/healthz')));
      const results = await Promise.all(bodies.map((b) => post('/ingest/k8s-audit', b)));
      const ok = results.filter((r) => r.status === 200);
      const refused = results.filter((r) => r.status === 503);
      expect(ok.length + refused.length).toBe(results.length);
      expect(refused.length).toBeGreaterThan(0);
      expect(ok.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.retryAfter).toMatch(/^\d+$/);
        expect(r.text).toMatch(/KUBEVIGIL_INGEST_MAX_QUEUE_DELAY/);
      }
      await kv.drained();
      const acknowledged = ok.reduce((n, r) => n + (JSON.parse(r.text) as { signals: number }).signals, 0);
      expect(acknowledged).toBeGreaterThan(0);
      expect(deliveries).toBe(acknowledged);
      expect(received.size).toBe(acknowledged);
      const metrics = await (await fetch(`${kv.url}/metrics`)).text();
      const counted = /kubevigil_ingest_rejected_total\{source="k8s-audit",reason="queue_delay"\} (\d+)/.exec(metrics);
      expect(Number(counted?.[1])).toBe(refused.length);
    } finally {
      agent.destroy();
      await counting();
      await kv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
