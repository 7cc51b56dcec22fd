/**
 * kubevigil's own zero-trust defaults: mutual TLS on ingest (what kube-apiserver's webhook
 * kubeconfig presents), read and write scopes on the API, per-source ingest tokens, security headers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { missingBinaries, startPrometheusStack, waitFor } from './helpers/prometheus.js';

const dir = mkdtempSync(join(tmpdir(), 'kv-tls-'));
const f = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

/** A CA, and a certificate it signs for `cn` (with SAN 127.0.0.1 for the server). */
function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`);
}
function makeCert(name: string, ca: string, server: boolean): void {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
  writeFileSync(f(`${name}.ext`), server ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f(`${ca}.crt`),
    '-CAkey',
    f(`${ca}.key`),
    '-CAcreateserial',
    '-out',
    f(`${name}.crt`),
    '-days',
    '2',
    '-extfile',
    f(`${name}.ext`),
  );
}

function call(
  url: string,
  path: string,
  o: { method?: string; body?: string; cert?: string; token?: string } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: o.method ?? 'GET',
        ca: readFileSync(f('server-ca.crt')),
        ...(o.cert ? { cert: readFileSync(f(`${o.cert}.crt`)), key: readFileSync(f(`${o.cert}.key`)) } : {}),
        headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const API = 'api-write-token-0123456789abcdef';
const READ = 'api-read-token-0123456789abcdef';

describe('TLS, mutual TLS and scoped tokens', () => {
  let kv: Running;
  beforeAll(async () => {
    makeCa('server-ca');
    makeCert('server', 'server-ca', true);
    makeCa('client-ca');
    makeCert('apiserver', 'client-ca', false);
    makeCa('other-ca');
    makeCert('intruder', 'other-ca', false);
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: join(dir, 'data'),
      KUBEVIGIL_TLS_CERT_FILE: f('server.crt'),
      KUBEVIGIL_TLS_KEY_FILE: f('server.key'),
      KUBEVIGIL_TLS_CLIENT_CA_FILE: f('client-ca.crt'),
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_API_READ_TOKEN: READ,
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts audit batches only from a client certificate signed by the configured CA', async () => {
    const body = JSON.stringify(attackEvents(SEED_SCENARIO));
    expect(kv.url).toMatch(/^https:/);
    const ok = await call(kv.url, '/ingest/k8s-audit', { method: 'POST', body, cert: 'apiserver' });
    expect(ok.status).toBe(200);
    const other = await call(kv.url, '/ingest/k8s-audit', { method: 'POST', body, cert: 'intruder' });
    expect(other.status).toBe(401);
    expect(JSON.parse(other.body).detail).toMatch(/client certificate signed by the configured CA/);
    const none = await call(kv.url, '/ingest/k8s-audit', { method: 'POST', body });
    expect(none.status).toBe(401);
  });

  it('lets the read token read and refuses it writes; the write token does both', async () => {
    await kv.drained();
    const list = await call(kv.url, '/api/v1/incidents', { token: READ });
    expect(list.status).toBe(200);
    const id = (JSON.parse(list.body) as { items: { id: string }[] }).items[0]!.id;
    const denied = await call(kv.url, `/api/v1/incidents/${id}`, { method: 'PATCH', token: READ, body: JSON.stringify({ status: 'acknowledged' }) });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).detail).toMatch(/read-only/);
    const ack = await call(kv.url, `/api/v1/incidents/${id}`, { method: 'PATCH', token: API, body: JSON.stringify({ status: 'acknowledged' }) });
    expect(ack.status).toBe(200);
    expect((await call(kv.url, '/api/v1/incidents', { token: 'not-the-token-at-all-0000' })).status).toBe(401);
    expect((await call(kv.url, '/api/v1/incidents')).status).toBe(401);
  });

  it('sends security headers and no CORS', async () => {
    const r = await call(kv.url, '/healthz');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('per-source ingest tokens', () => {
  it('accepts the audit token on the audit receiver, and the general token everywhere', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kv-tok-'));
    const kv2 = await serve(
      loadConfig({
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: d,
        KUBEVIGIL_INGEST_TOKEN_AUDIT: 'audit-only-token-0123456789',
        KUBEVIGIL_INGEST_TOKEN: 'general-ingest-token-0123456',
      }),
      createLogger('silent'),
      { processMetrics: false, sweepSchedule: false },
    );
    try {
      const post = (token: string) =>
        fetch(`${kv2.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '[]' });
      expect((await post('audit-only-token-0123456789')).status).toBe(200);
      expect((await post('general-ingest-token-0123456')).status).toBe(200);
      expect((await post('another-token-entirely-000')).status).toBe(401);
    } finally {
      await kv2.stop();
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('GET /metrics behind a token (it tells an attacker which actions are detected)', () => {
  const METRICS = 'metrics-only-token-0123456789ab';
  const INGEST = 'ingest-token-for-metrics-test-01';
  /** A kubevigil with these settings, for the duration of `use`. */
  async function withKubevigil(env: Record<string, string>, use: (url: string) => Promise<void>): Promise<void> {
    const d = mkdtempSync(join(tmpdir(), 'kv-metrics-'));
    const kv2 = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: d, ...env }), createLogger('silent'), {
      processMetrics: false,
      sweepSchedule: false,
    });
    try {
      await use(kv2.url);
    } finally {
      await kv2.stop();
      rmSync(d, { recursive: true, force: true });
    }
  }
  const get = (url: string, token?: string) => fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const exposition = /^kubevigil_build_info\{/m;

  it('with tokens set: 401 without a token or with another one; the metrics, read and API tokens read it', async () => {
    await withKubevigil(
      { KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_API_READ_TOKEN: READ, KUBEVIGIL_METRICS_TOKEN: METRICS, KUBEVIGIL_INGEST_TOKEN: INGEST },
      async (url) => {
        const none = await get(`${url}/metrics`);
        expect(none.status).toBe(401);
        expect(none.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
        expect(none.headers.get('content-type')).toMatch(/problem\+json/);
        expect(await none.text()).not.toMatch(exposition);
        const wrong = await get(`${url}/metrics`, INGEST);
        expect(wrong.status).toBe(401);
        expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer realm="metrics", error="invalid_token"/);
        for (const token of [METRICS, READ, API]) {
          const ok = await get(`${url}/metrics`, token);
          expect(ok.status, token).toBe(200);
          expect(await ok.text()).toMatch(exposition);
        }
      },
    );
  });

  it('the metrics token opens nothing else: not the API, not ingest', async () => {
    await withKubevigil(
      { KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_API_READ_TOKEN: READ, KUBEVIGIL_METRICS_TOKEN: METRICS, KUBEVIGIL_INGEST_TOKEN: INGEST },
      async (url) => {
        expect((await get(`${url}/api/v1/incidents`, METRICS)).status).toBe(401);
        expect((await get(`${url}/api/v1/signals`, METRICS)).status).toBe(401);
        const ingest = await fetch(`${url}/ingest/k8s-audit`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${METRICS}` },
          body: '[]',
        });
        expect(ingest.status).toBe(401);
        expect((await get(`${url}/api/v1/incidents`, READ)).status).toBe(200);
      },
    );
  });

  it('with only the API token set, it is needed on /metrics too', async () => {
    await withKubevigil({ KUBEVIGIL_API_TOKEN: API }, async (url) => {
      expect((await get(`${url}/metrics`)).status).toBe(401);
      expect((await get(`${url}/metrics`, API)).status).toBe(200);
    });
  });

  it.skipIf(missingBinaries().length > 0)(
    'a real Prometheus scrapes it with the metrics token (skipped without scripts/prometheus.sh install)',
    async () => {
      await withKubevigil({ KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_METRICS_TOKEN: METRICS }, async (url) => {
        const stack = await startPrometheusStack({
          scrapeTarget: new URL(url).host,
          scrapeToken: METRICS,
          rules: 'groups: []\n',
          webhookUrl: 'http://127.0.0.1:9/',
        });
        try {
          const query = async (q: string) => {
            const res = await fetch(`${stack.prometheus.url}/api/v1/query?query=${encodeURIComponent(q)}`);
            return ((await res.json()) as { data: { result: { value: [number, string] }[] } }).data.result;
          };
          // up is 0 while the scrape gets 401: wait for a successful one.
          await waitFor(
            'a successful scrape of kubevigil',
            async () => ((await query('up{job="kubevigil-test"}'))[0]?.value[1] === '1' ? true : undefined),
            30_000,
            250,
          );
          expect(await query('kubevigil_build_info{job="kubevigil-test"}')).toHaveLength(1);
        } finally {
          await stack.stop();
        }
      });
    },
    60_000,
  );

  it('without any token (the loopback default) /metrics stays open', async () => {
    await withKubevigil({}, async (url) => {
      const open = await get(`${url}/metrics`);
      expect(open.status).toBe(200);
      expect(await open.text()).toMatch(exposition);
    });
  });
});
