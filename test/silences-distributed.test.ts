/**
 * Silences in distributed mode, against a real Kafka broker and Redis (scripts/with-services.sh;
 * skipped without KAFKA_BROKERS and REDIS_URL): a silence created through one process's API
 * reaches the correlator running in another process (through Redis), which then keeps the
 * silenced actor's attack from opening an incident while another actor's attack still opens one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO, type AttackScenario } from '../connectors/k8s-audit/scenario.js';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import type { Incident } from '../correlator/incident.js';

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;
const BIN = new URL('../bin/kubevigil.js', import.meta.url).pathname;
const children = new Set<ChildProcess>();
const dirs: string[] = [];

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts `kubevigil serve` as its own process; resolves its URL from the "listening" log line. */
function kubevigil(roles: string, prefix: string): { child: ChildProcess; url: Promise<string> } {
  const dir = mkdtempSync(join(tmpdir(), 'kv-sil-'));
  dirs.push(dir);
  const child = spawn(process.execPath, [BIN, 'serve', '--role', roles], {
    env: {
      ...process.env,
      KAFKA_BROKERS: KAFKA,
      REDIS_URL: REDIS,
      KUBEVIGIL_TOPIC_PREFIX: prefix,
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_PARTITIONS: '2',
      KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      KUBEVIGIL_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('kubevigil listening')) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on('exit', (code) => reject(new Error(`kubevigil ${roles} exited with ${code}: ${stderr.slice(-40).join('\n')}`)));
  });
  return { child, url };
}

/** Polls until `check` returns a value (waits on the system under test, not on time). */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function send(url: string, events: AuditEvent[]): Promise<void> {
  const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events });
  await until('ingest to accept the batch', async () => {
    const r = await fetch(`${url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return r.status === 200 ? r : undefined;
  });
}

const metric = async (url: string, series: string): Promise<number | undefined> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe.skipIf(!KAFKA || !REDIS)('silences in distributed mode', () => {
  it("a silence created through one process's API silences signals in another process's correlator", async () => {
    const prefix = `kvs-${randomBytes(4).toString('hex')}`;
    const front = kubevigil('ingest,api', prefix);
    const correlator = kubevigil('correlator', prefix);
    const [url, curl] = await Promise.all([front.url, correlator.url]);
    await until('readiness', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));

    const res = await fetch(`${url}/api/v1/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'actor', value: 'sa:frontend/frontend', isRegex: false, isEqual: true }],
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'test',
        comment: 'red team exercise',
      }),
    });
    expect(res.status).toBe(200);
    const { silenceID } = (await res.json()) as { silenceID: string };
    // The correlator reads Redis every 2 s: wait until it knows the silence, then attack.
    await until('the correlator to know the silence', async () => ((await metric(curl, 'kubevigil_silences{state="active"}')) === 1 ? true : undefined));

    await send(url, attackEvents(SEED_SCENARIO));
    const other: AttackScenario = {
      ...SEED_SCENARIO,
      namespace: 'storefront',
      serviceAccount: 'checkout-api',
      pod: 'checkout-api-5f7b9c-q8w2e',
      podIP: '10.1.7.9',
    };
    await send(url, attackEvents(other, 2));

    // Every signal of the silenced actor reached the correlator and was silenced there.
    const signals = await until('the silenced signals in the API', async () => {
      const page = (await (await fetch(`${url}/api/v1/signals?actor=sa:frontend/frontend&limit=1000`)).json()) as { items: unknown[] };
      return page.items.length >= 19 ? page.items.length : undefined;
    });
    await until('the correlator to count them', async () =>
      (await metric(curl, `kubevigil_silenced_signals_total{silence="${silenceID}"}`)) === signals ? true : undefined,
    );
    // The other actor's attack still opens its incident; the silenced one opened none.
    const incidents = await until('the other incident', async () => {
      const page = (await (await fetch(`${url}/api/v1/incidents?status=open,acknowledged,resolved`)).json()) as { items: Incident[] };
      return page.items.some((i) => i.actor.key === 'sa:storefront/checkout-api') ? page.items : undefined;
    });
    expect(incidents.map((i) => i.actor.key)).toEqual(['sa:storefront/checkout-api']);
    for (const p of [front, correlator]) p.child.kill('SIGTERM');
  }, 180_000);
});
