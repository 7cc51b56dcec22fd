/**
 * The console as kubevigil serves it (services/http/console.ts): its pages answer index.html with the
 * strict Content-Security-Policy and no-cache, its hashed assets a year-long immutable cache, nothing
 * else is reachable under /assets, and GET /api/v1/system answers behind the read token. The build
 * (`npm run build`, run by `npm test`'s pretest and by scripts/test-all.sh) must have run first.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SEED_SCENARIO, attackEvents } from '../connectors/k8s-audit/scenario.js';
import { SystemRates, type SystemStatus } from '../services/api/system.js';
import { loadConfig } from '../services/config.js';
import { CONSOLE_CSP, CONSOLE_DIR, consoleRoutes, loadConsole } from '../services/http/console.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { Metrics } from '../services/metrics.js';
import { SOURCE_LIST } from '../services/sources.js';
import { listen } from './helpers/http.js';

const API = 'api-token-for-console-tests-0123';
const READ = 'read-token-for-console-tests-0123';
const INGEST = 'ingest-token-for-console-tests-01';
const ASSETS = join(CONSOLE_DIR, 'assets');
/** The gzipped JavaScript and CSS the browser downloads, at most. */
const BUNDLE_BUDGET_BYTES = 80 * 1024;

const built = existsSync(join(CONSOLE_DIR, 'index.html'));

/** A raw GET: the path goes out exactly as written (fetch would resolve `..` first). */
function rawGet(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console build', () => {
  it('is there (run `npm run build` first)', () => {
    expect(built, `${CONSOLE_DIR}/index.html is missing: run npm run build before the tests`).toBe(true);
  });

  it('has no inline script: every script has a src under /assets', () => {
    const html = readFileSync(join(CONSOLE_DIR, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/assets\/[\w.-]+\.js"/);
      expect(body!.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son\w+\s*=/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it(`stays within the size budget: the gzipped JavaScript and CSS under ${BUNDLE_BUDGET_BYTES / 1024} KiB`, () => {
    const files = readdirSync(ASSETS).filter((f) => /\.(js|css)$/.test(f));
    const sizes = files.map((f) => {
      const body = readFileSync(join(ASSETS, f));
      return { file: f, bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
    });
    const total = sizes.reduce((n, s) => n + s.gzip, 0);
    console.log(
      `console bundle: ${(total / 1024).toFixed(1)} KiB gzipped (${sizes.map((s) => `${s.file} ${(s.bytes / 1024).toFixed(1)} KiB → ${(s.gzip / 1024).toFixed(1)} KiB`).join(', ')})`,
    );
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThan(BUNDLE_BUDGET_BYTES);
  });
});

describe('kubevigil serves the console (embedded, with API tokens)', () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-console-'));
  const js = built ? readdirSync(ASSETS).find((f) => f.endsWith('.js')) : undefined;
  const css = built ? readdirSync(ASSETS).find((f) => f.endsWith('.css')) : undefined;

  beforeAll(async () => {
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_API_READ_TOKEN: READ,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
      KUBEVIGIL_CLUSTER_NAME: 'prod-eu-1',
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const expectConsoleHeaders = (res: Response) => {
    expect(res.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  };

  it('serves index.html at / and at every page path, without a token, with the strict CSP and no-cache', async () => {
    const index = readFileSync(join(CONSOLE_DIR, 'index.html'), 'utf8');
    for (const path of ['/', '/incidents', '/incidents/inc_85e13a31c940034a3f6d', '/signals', '/rules', '/system', '/?severity=high&since=24h']) {
      const res = await fetch(`${kv.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expectConsoleHeaders(res);
      expect(await res.text()).toBe(index);
    }
    // The CSP holds what the console needs and nothing more.
    expect(CONSOLE_CSP).toContain("script-src 'self';");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-|\*|https?:/);
  });

  it('revalidates index.html with its ETag, and answers HEAD without a body', async () => {
    const first = await fetch(`${kv.url}/`);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await fetch(`${kv.url}/incidents`, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    const head = await fetch(`${kv.url}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('serves the hashed assets with the right type and a year-long immutable cache, gzipped when asked', async () => {
    expect(js && css).toBeTruthy();
    const plain = await rawGet(kv.url, `/assets/${js}`);
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(plain.body.equals(readFileSync(join(ASSETS, js!)))).toBe(true);
    const zipped = await rawGet(kv.url, `/assets/${js}`, { 'accept-encoding': 'gzip, deflate, br' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('Accept-Encoding');
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    const refused = await rawGet(kv.url, `/assets/${js}`, { 'accept-encoding': 'gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
    const style = await fetch(`${kv.url}/assets/${css}`);
    expect(style.status).toBe(200);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(style.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });

  it('serves nothing else: traversal, encoded traversal, unknown assets and other methods are 404', async () => {
    for (const path of [
      '/assets/../package.json',
      '/assets/%2e%2e/package.json',
      '/assets/%2e%2e%2fpackage.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/',
      '/assets/index-00000000.js',
      `/assets/${js}/x`,
      '/assets/.%2e/.%2e/.%2e/etc/passwd',
      '/index.html',
      '/package.json',
      '/console/src/main.tsx',
      '/src/main.tsx',
      '/incidents/x/y',
    ]) {
      const res = await rawGet(kv.url, path);
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type'], path).toMatch(/^application\/problem\+json/);
      expect(res.body.toString(), path).not.toContain('"version"');
    }
    const post = await fetch(`${kv.url}/`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(404);
  });

  it('keeps the API JSON: unknown /api paths answer a 404 problem, not the page', async () => {
    const res = await fetch(`${kv.url}/api/v1/nope`, { headers: { authorization: `Bearer ${READ}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    const rules = await fetch(`${kv.url}/api/v1/rules`, { headers: { authorization: `Bearer ${READ}` } });
    expect(rules.headers.get('content-type')).toMatch(/^application\/json/);
    expect(rules.headers.get('cache-control')).toBe('no-store');
  });

  it('answers GET /api/v1/system with the read token only, every source listed', async () => {
    expect((await fetch(`${kv.url}/api/v1/system`)).status).toBe(401);
    expect((await fetch(`${kv.url}/api/v1/system`, { headers: { authorization: `Bearer ${INGEST}` } })).status).toBe(401);
    const post = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      body: JSON.stringify(attackEvents(SEED_SCENARIO)),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
    });
    expect(post.status).toBe(200);
    await kv.drained();
    const res = await fetch(`${kv.url}/api/v1/system`, { headers: { authorization: `Bearer ${READ}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as SystemStatus;
    expect(body).toMatchObject({
      status: 'ready',
      mode: 'embedded',
      roles: ['api', 'correlator', 'ingest', 'notifier'],
      cluster: 'prod-eu-1',
      bus: { kind: 'memory', lagMessages: 0 },
      stream: { clients: 0 },
    });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(body.ingest.map((i) => i.source)).toEqual(SOURCE_LIST.map((s) => s.name));
    const audit = body.ingest.find((i) => i.source === 'k8s-audit')!;
    expect(audit.eventsTotal).toBe(attackEvents(SEED_SCENARIO).length);
    expect(audit.rejectedTotal).toBe(0);
    for (const i of body.ingest) expect(i.eventsPerSecond).toBeGreaterThanOrEqual(0);
    expect(body.ingest.filter((i) => i.source !== 'k8s-audit').every((i) => i.eventsTotal === 0)).toBe(true);
    expect(body.signalsPerSecond).toBeGreaterThanOrEqual(0);
    expect(body.incidentsOpen).toBeGreaterThanOrEqual(1);
    expect(body.budget?.openIncidents.used).toBe(body.incidentsOpen);
    // The write token reads too.
    expect((await fetch(`${kv.url}/api/v1/system`, { headers: { authorization: `Bearer ${API}` } })).status).toBe(200);
  });
});

describe('without a build', () => {
  it('answers the pages 503 naming the fix, and nothing under /assets', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'kv-console-none-'));
    const app = express();
    app.use(consoleRoutes(loadConsole(empty)));
    app.use((_req, res) => void res.status(404).end());
    const srv = await listen(app);
    try {
      const res = await fetch(`${srv.url}/incidents`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { detail: string }).detail).toContain('npm run build');
      expect((await fetch(`${srv.url}/assets/index.js`)).status).toBe(404);
    } finally {
      await srv.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('the rates of GET /api/v1/system', () => {
  it('are per second over the oldest of the last 12 samples, every source listed, 0 before a second has passed', async () => {
    const metrics = new Metrics();
    let now = 1_000_000;
    const rates = new SystemRates(metrics, { now: () => now });
    await rates.sample();
    expect((await rates.current()).ingest.every((i) => i.eventsPerSecond === 0)).toBe(true);
    // 14 samples 5 s apart, 50 events each: the ring keeps the last 12, 55 s apart.
    for (let i = 0; i < 14; i++) {
      now += 5000;
      metrics.ingestEvents.inc({ source: 'loki', outcome: 'accepted' }, 40);
      metrics.ingestEvents.inc({ source: 'loki', outcome: 'duplicate' }, 10);
      metrics.signals.inc({ source: 'loki', kind: 'mesh.mtls_failure', severity: 'low' }, 5);
      await rates.sample();
    }
    metrics.ingestRejected.inc({ source: 'loki', reason: 'rate' }, 3);
    const r = await rates.current();
    expect(r.ingest.map((i) => i.source)).toEqual(SOURCE_LIST.map((s) => s.name));
    expect(r.ingest.find((i) => i.source === 'loki')).toEqual({ source: 'loki', eventsPerSecond: 10, eventsTotal: 700, rejectedTotal: 3 });
    expect(r.ingest.find((i) => i.source === 'otlp')).toEqual({ source: 'otlp', eventsPerSecond: 0, eventsTotal: 0, rejectedTotal: 0 });
    expect(r.signalsPerSecond).toBe(1);
  });

  it('sample on their own timer between start and stop', async () => {
    vi.useFakeTimers();
    try {
      const rates = new SystemRates(new Metrics(), { intervalMs: 10 });
      const ring = () => (rates as unknown as { ring: unknown[] }).ring.length;
      rates.start();
      // One sample at start, then one every 10 ms.
      await vi.advanceTimersByTimeAsync(50);
      expect(ring()).toBe(6);
      rates.stop();
      await vi.advanceTimersByTimeAsync(50);
      expect(ring()).toBe(6);
    } finally {
      vi.useRealTimers();
    }
  });
});
