import { mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import type { Signal } from '../correlator/signal.js';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { loadDetector } from '../services/rules.js';
import { readReal } from './helpers/fixtures.js';

const INGEST = 'ingest-token-0123456789abcdef';
const API = 'api-token-0123456789abcdef-api';

describe('kubevigil serve (embedded, every role in one process)', () => {
  let kv: Running;
  // A data directory of its own: the default ./data would leave this test's incidents in the checkout.
  const dir = mkdtempSync(join(tmpdir(), 'kv-serve-'));
  beforeAll(async () => {
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_LOG_LEVEL: 'silent',
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ingest = (body: string, token = INGEST) =>
    fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', body, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });

  it('answers health and readiness', async () => {
    expect((await fetch(`${kv.url}/healthz`)).status).toBe(200);
    // With the budgets of the correlator's state in use (issue #19): nothing held yet.
    expect(await (await fetch(`${kv.url}/readyz`)).json()).toEqual({
      status: 'ready',
      budget: {
        openIncidents: { used: 0, max: 2000 },
        windowEntries: { used: 0, max: 100_000 },
        prologueSignals: { used: 0, max: 30_000 },
        floodIncidents: 0,
      },
    });
  });

  it('refuses ingest and API calls without the right bearer token', async () => {
    const noAuth = await fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } });
    expect(noAuth.status).toBe(401);
    expect(noAuth.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await ingest('[]', 'wrong-token-wrong-token')).status).toBe(401);
    expect((await ingest('[]', API)).status).toBe(401); // the API token is not an ingest token
    expect((await fetch(`${kv.url}/api/v1/signals`, { headers: { authorization: `Bearer ${INGEST}` } })).status).toBe(401);
  });

  it('turns a real audit log into signals, served by the API and counted in /metrics', async () => {
    const lines = readReal('k8s-audit/audit2rbac/demo.log')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    const res = await ingest(JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: lines }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; signals: number };
    expect(body.accepted).toBe(37);
    expect(body.signals).toBeGreaterThanOrEqual(11);
    await kv.drained();

    const api = await fetch(`${kv.url}/api/v1/signals?kind=rbac.denied&limit=1000`, { headers: { authorization: `Bearer ${API}` } });
    expect(api.status).toBe(200);
    const { items } = (await api.json()) as { items: Signal[] };
    expect(items).toHaveLength(11);
    // The impersonator is the actor; the identities it wore are context.
    expect(new Set(items.map((s) => s.actor.key))).toEqual(new Set(['user:system:admin']));
    expect(new Set(items.map((s) => s.attributes.impersonated))).toEqual(new Set(['alice', 'bob', 'system:serviceaccount:ns1:sa1']));
    expect(items[0]!.matched.length).toBeGreaterThan(0);

    // With API tokens set, /metrics asks for one too (here the API token; Prometheus gets KUBEVIGIL_METRICS_TOKEN).
    const metrics = await (await fetch(`${kv.url}/metrics`, { headers: { authorization: `Bearer ${API}` } })).text();
    expect(metrics).toMatch(/kubevigil_ingest_events_total\{source="k8s-audit",outcome="accepted"\} 37/);
    expect(metrics).toMatch(/kubevigil_signals_emitted_total\{source="k8s-audit",kind="rbac.denied",severity="low"\} 11/);
    expect(metrics).toMatch(/kubevigil_ingest_requests_total\{source="k8s-audit",code="200"\} 1/);
    expect(metrics).toMatch(/kubevigil_bus_lag_messages\{topic="kubevigil.signals",group="correlator",partition="0"\} 0/);

    // The same batch again (the apiserver re-sends on any failure): nothing new.
    const again = await ingest(JSON.stringify(lines));
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 37, signals: 0 });
  });

  it('validates API parameters with a message that names the field', async () => {
    const res = await fetch(`${kv.url}/api/v1/signals?limit=0`, { headers: { authorization: `Bearer ${API}` } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/limit \(0\) must be an integer from 1 to 1000/);
    const nf = await fetch(`${kv.url}/nope`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('refuses a repeated or nested query parameter instead of ignoring it', async () => {
    const h = { authorization: `Bearer ${API}` };
    const twice = await fetch(`${kv.url}/api/v1/incidents?severity=high&severity=low`, { headers: h });
    expect(twice.status).toBe(400);
    expect(((await twice.json()) as { detail: string }).detail).toBe(
      'query parameter "severity" is given 2 times; give it once (status takes a comma-separated list)',
    );
    const nested = await fetch(`${kv.url}/api/v1/signals?limit[x]=1`, { headers: h });
    expect(nested.status).toBe(400);
    expect(((await nested.json()) as { detail: string }).detail).toMatch(/query parameter "limit\[x\]" must be a plain name=value/);
    expect((await fetch(`${kv.url}/api/v1/incidents?severity=high`, { headers: h })).status).toBe(200);
  });
});

const { KAFKA_BROKERS, REDIS_URL } = process.env;

describe.skipIf(!KAFKA_BROKERS || !REDIS_URL)('kubevigil serve --role ingest,correlator (no api role; needs KAFKA_BROKERS and REDIS_URL)', () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-serve-roles-'));
  const logs: { msg: string; signal?: { id: string; severity: string } }[] = [];
  beforeAll(async () => {
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_ROLES: 'ingest,correlator',
      KAFKA_BROKERS,
      REDIS_URL,
      KUBEVIGIL_TOPIC_PREFIX: `kvtest-roles-${Date.now().toString(36)}`,
      KUBEVIGIL_PARTITIONS: '2',
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as (typeof logs)[number]);
        done();
      },
    });
    kv = await serve(config, createLogger('info', sink), { processMetrics: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves no recent signals, and logs each serious signal once, from the process that detected it', async () => {
    const events = attackEvents(SEED_SCENARIO);
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      body: JSON.stringify(events),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
    });
    expect(res.status).toBe(200);
    // Without the api role, nothing reads the signals topic a second time for GET /api/v1/signals.
    expect((await fetch(`${kv.url}/api/v1/signals`, { headers: { authorization: `Bearer ${API}` } })).status).toBe(404);
    const serious = events.flatMap((e) => loadDetector().detect(normalizeAuditEvent(e, 0))).filter((s) => s.severity === 'high' || s.severity === 'critical');
    expect(serious.length).toBeGreaterThan(0);
    const logged = logs.filter((l) => l.msg === 'signal').map((l) => l.signal!.id);
    expect(logged.sort()).toEqual(serious.map((s) => s.id).sort());
  });
});
