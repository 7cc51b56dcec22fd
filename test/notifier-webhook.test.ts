/**
 * The signed webhook sink and the Alertmanager sink against local receivers on a fake clock:
 * signatures verify with the exported helper, a replayed or altered request does not, failures are
 * retried with backoff through the outbox under one delivery id, and incidents become Alertmanager
 * alerts that end when the incident resolves (checked against the real Alertmanager when installed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Incident } from '../correlator/incident.js';
import { apiIncident } from '../services/api/schemas.js';
import { createLogger } from '../services/logging.js';
import { ALERT_NAME, type PostableAlert } from '../services/notifier/alertmanager.js';
import { loadNotifierConfig } from '../services/notifier/config.js';
import { ManualScheduler } from '../services/notifier/dispatcher.js';
import { startNotifier, type Notifier } from '../services/notifier/index.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from '../services/notifier/webhook/signature.js';
import { MemoryStore } from '../services/store/memory.js';
import { makeIncident, T0 } from '../services/store/store.contract.js';

const SECRET = 'webhook-signing-secret-for-tests-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** Whether the signature verified when the request arrived. */
  verified: boolean;
  status: number;
}

/** A webhook receiver that verifies each request with {@link verifySignature} and answers as told. */
async function receiver(now: () => number, answers: number[] = []) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const h = (n: string) => String(req.headers[n.toLowerCase()] ?? '');
      const verified = verifySignature(SECRET, h(TIMESTAMP_HEADER), body, h(SIGNATURE_HEADER), now());
      const status = !verified ? 401 : (answers.shift() ?? 204);
      received.push({ path: req.url ?? '', headers: req.headers, body, at: now(), verified, status });
      res.writeHead(status, status === 429 ? { 'retry-after': '7' } : {});
      res.end(status >= 400 ? 'nope' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/kubevigil`;
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url, received };
}

function notifierFor(env: NodeJS.ProcessEnv, scheduler: ManualScheduler): { notifier: Notifier; registry: Registry; store: MemoryStore } {
  const store = new MemoryStore();
  const registry = new Registry();
  const notifier = startNotifier({
    config: loadNotifierConfig({ KUBEVIGIL_WEBHOOK_SECRET: SECRET, KUBEVIGIL_NOTIFY_GROUP_WAIT_MS: '0', ...env }),
    store,
    logger: createLogger('silent'),
    registry,
    scheduler,
  });
  cleanups.push(() => notifier.stop());
  return { notifier, registry, store };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { values } = (await registry.getSingleMetric(name)?.get()) ?? { values: [] };
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

describe('signed webhooks', () => {
  it('POSTs each incident change as its JSON, signed, in version order, to every URL', async () => {
    const scheduler = new ManualScheduler(T0);
    const [a, b] = [await receiver(() => scheduler.now()), await receiver(() => scheduler.now())];
    const { notifier } = notifierFor({ KUBEVIGIL_WEBHOOK_URLS: `${a.url},${b.url}` }, scheduler);
    const v1 = makeIncident('inc_hook', { version: 1 });
    const v2: Incident = { ...v1, version: 2, severity: 'critical' };
    const v3: Incident = { ...v2, version: 3, status: 'resolved', resolvedAt: T0 + 60_000, resolution: 'manual' };
    await notifier.handle([v1, v2]);
    await notifier.handle([v3]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    for (const r of [a, b]) {
      expect(r.received.map((x) => [x.verified, x.headers[EVENT_HEADER.toLowerCase()], x.headers[DELIVERY_HEADER.toLowerCase()]])).toEqual([
        [true, 'opened', 'inc_hook@1'],
        [true, 'updated', 'inc_hook@2'],
        [true, 'resolved', 'inc_hook@3'],
      ]);
      expect(r.received.map((x) => JSON.parse(x.body) as unknown)).toEqual([v1, v2, v3].map(apiIncident));
      expect(r.received[0]!.headers['content-type']).toBe('application/json');
      expect(r.received[0]!.headers[TIMESTAMP_HEADER.toLowerCase()]).toBe(String(Math.floor(T0 / 1000)));
      expect(r.received[0]!.headers[SIGNATURE_HEADER.toLowerCase()]).toMatch(/^sha256=[0-9a-f]{64}$/);
    }
  });

  it('retries with backoff under the same delivery id, without holding up the other URL', async () => {
    const scheduler = new ManualScheduler(T0);
    const flaky = await receiver(() => scheduler.now(), [503, 503, 429]);
    const healthy = await receiver(() => scheduler.now());
    const { notifier, registry, store } = notifierFor({ KUBEVIGIL_WEBHOOK_URLS: `${flaky.url},${healthy.url}` }, scheduler);
    await notifier.handle([makeIncident('inc_retry', { version: 1 })]);
    const end = await notifier.dispatcher.runUntilIdle(scheduler);
    // 503 → 1 s backoff, 503 → 2 s, 429 → its Retry-After of 7 s, then delivered.
    expect(flaky.received.map((x) => [x.at - T0, x.status, x.headers[DELIVERY_HEADER.toLowerCase()]])).toEqual([
      [0, 503, 'inc_retry@1'],
      [1000, 503, 'inc_retry@1'],
      [3000, 429, 'inc_retry@1'],
      [10_000, 204, 'inc_retry@1'],
    ]);
    expect(healthy.received.map((x) => x.at - T0)).toEqual([0]);
    expect(end - T0).toBe(10_000);
    expect(await metric(registry, 'kubevigil_notifier_retries_total', { sink: 'webhook', reason: 'http_503' })).toBe(2);
    expect(await metric(registry, 'kubevigil_notifier_retries_total', { sink: 'webhook', reason: 'ratelimited' })).toBe(1);
    expect(await metric(registry, 'kubevigil_notifier_sent_total', { sink: 'webhook' })).toBe(2);
    expect(await store.outbox.list({ limit: 10, status: 'pending' })).toEqual([]);
  });

  it('gives up on a 4xx other than 408 and 429', async () => {
    const scheduler = new ManualScheduler(T0);
    const gone = await receiver(() => scheduler.now(), [410]);
    const { notifier, registry } = notifierFor({ KUBEVIGIL_WEBHOOK_URLS: gone.url }, scheduler);
    await notifier.handle([makeIncident('inc_gone')]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    expect(gone.received).toHaveLength(1);
    expect(await metric(registry, 'kubevigil_notifier_failed_total', { sink: 'webhook', reason: 'http_410' })).toBe(1);
  });

  it('lets a receiver reject a replayed or altered request', async () => {
    const scheduler = new ManualScheduler(T0);
    const r = await receiver(() => scheduler.now());
    const { notifier } = notifierFor({ KUBEVIGIL_WEBHOOK_URLS: r.url }, scheduler);
    await notifier.handle([makeIncident('inc_replay')]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    const captured = r.received[0]!;
    expect(captured.verified).toBe(true);
    const resend = (body: string, headers: IncomingHttpHeaders) =>
      fetch(r.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: String(headers[SIGNATURE_HEADER.toLowerCase()]),
          [TIMESTAMP_HEADER]: String(headers[TIMESTAMP_HEADER.toLowerCase()]),
        },
        body,
      });
    // Within the tolerance the same bytes verify (a receiver drops the repeat by its delivery id)…
    scheduler.advanceTo(T0 + 60_000);
    expect((await resend(captured.body, captured.headers)).status).toBe(204);
    // …an altered body or timestamp does not, and neither does the same request ten minutes later.
    expect((await resend(captured.body.replace('"severity":"high"', '"severity":"low"'), captured.headers)).status).toBe(401);
    expect((await resend(captured.body, { ...captured.headers, [TIMESTAMP_HEADER.toLowerCase()]: String(Math.floor(T0 / 1000) + 600) })).status).toBe(401);
    scheduler.advanceTo(T0 + 10 * 60_000);
    expect((await resend(captured.body, captured.headers)).status).toBe(401);
  });
});

describe('Alertmanager sink', () => {
  it('posts one alert per incident with the routing labels, ends the old-severity alert, and ends the alert on resolve', async () => {
    const scheduler = new ManualScheduler(T0);
    const posts: { path: string; alerts: PostableAlert[] }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ path: req.url ?? '', alerts: JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostableAlert[] });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { notifier } = notifierFor(
      { KUBEVIGIL_ALERTMANAGER_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, KUBEVIGIL_PUBLIC_URL: 'https://kubevigil.example.com' },
      scheduler,
    );
    const v1 = makeIncident('inc_am', { version: 1 });
    await notifier.handle([v1]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    await notifier.handle([{ ...v1, version: 2, severity: 'critical' }]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    await notifier.handle([{ ...v1, version: 3, severity: 'critical', status: 'resolved', resolvedAt: T0 + 5000, resolution: 'quiet' }]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    expect(posts.map((p) => p.path)).toEqual(['/api/v2/alerts', '/api/v2/alerts', '/api/v2/alerts']);
    const [first, second, third] = posts.map((p) => p.alerts) as [PostableAlert[], PostableAlert[], PostableAlert[]];
    expect(first).toEqual([
      {
        labels: { alertname: ALERT_NAME, severity: 'high', namespace: 'payments', actor: 'sa:payments/payments-api', incident_id: 'inc_am' },
        annotations: expect.objectContaining({ summary: v1.title, description: v1.rootCause.summary, status: 'open' }),
        startsAt: new Date(v1.firstSeen).toISOString(),
        endsAt: new Date(T0 + 24 * 3_600_000).toISOString(),
        generatorURL: 'https://kubevigil.example.com/api/v1/incidents/inc_am',
      },
    ]);
    expect(second.map((a) => [a.labels.severity, a.endsAt])).toEqual([
      ['critical', new Date(T0 + 24 * 3_600_000).toISOString()],
      ['high', new Date(T0).toISOString()],
    ]);
    expect(third.map((a) => [a.labels.severity, a.endsAt])).toEqual([['critical', new Date(T0 + 5000).toISOString()]]);
  });

  const alertmanagerBin = '/usr/bin/prometheus-alertmanager';
  it.skipIf(!existsSync(alertmanagerBin))('is accepted by a real Alertmanager, which shows the alert firing and then resolved', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createNetServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const dir = mkdtempSync(join(tmpdir(), 'kv-am-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'alertmanager.yml'), 'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n');
    const am: ChildProcess = spawn(
      alertmanagerBin,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='],
      { stdio: 'ignore' },
    );
    cleanups.push(async () => {
      am.kill('SIGTERM');
      await new Promise((resolve) => am.once('exit', resolve));
    });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`${base}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Alertmanager judges alerts by its own clock: this test's notifier runs on real time.
    const scheduler = new ManualScheduler(Date.now());
    const { notifier, registry } = notifierFor({ KUBEVIGIL_ALERTMANAGER_URL: base }, scheduler);
    const now = scheduler.now();
    const v1 = makeIncident('inc_real_am', { version: 1, firstSeen: now - 60_000, lastSeen: now });
    await notifier.handle([v1]);
    await notifier.dispatcher.runUntilIdle(scheduler);
    expect(await metric(registry, 'kubevigil_notifier_sent_total', { sink: 'alertmanager' })).toBe(1);
    type Listed = { labels: Record<string, string>; status: { state: string } };
    const alerts = async () => (await (await fetch(`${base}/api/v2/alerts?filter=alertname%3D%22${ALERT_NAME}%22`)).json()) as Listed[];
    expect(await alerts()).toEqual([
      expect.objectContaining({
        labels: { alertname: ALERT_NAME, severity: 'high', namespace: 'payments', actor: 'sa:payments/payments-api', incident_id: 'inc_real_am' },
        status: expect.objectContaining({ state: 'active' }),
      }),
    ]);
    await notifier.handle([{ ...v1, version: 2, status: 'resolved', resolvedAt: Date.now() - 1000, resolution: 'manual' }]);
    scheduler.advanceTo(Date.now());
    await notifier.dispatcher.runUntilIdle(scheduler);
    expect(await metric(registry, 'kubevigil_notifier_sent_total', { sink: 'alertmanager' })).toBe(2);
    expect(await alerts()).toEqual([]);
  });
});
