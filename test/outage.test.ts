/**
 * Outages of the real components (skipped without KAFKA_BROKERS and REDIS_URL, which the test script
 * provides): a Redis restart pauses the correlator's checkpoints and loses nothing; a broker outage
 * turns ingest into 503 + Retry-After and readiness false, and everything acknowledged before and
 * after is processed once the broker is back. Each test runs its own server so it can kill it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import type { BusMessage } from '../services/bus/bus.js';
import { loadConfig } from '../services/config.js';
import type { SignalsMessage } from '../services/bus/topics.js';
import { PartitionedCorrelator } from '../services/correlate-partitioned.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import { loadDetector, loadRules } from '../services/rules.js';
import { connectRedis, RedisCorrelatorState } from '../services/store/correlator-state.js';
import { waitFor } from './helpers/prometheus.js';

const ENABLED = !!process.env.KAFKA_BROKERS && !!process.env.REDIS_URL;
const ROOT = new URL('..', import.meta.url).pathname;
const dirs: string[] = [];
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Polls until `check` returns a value or the deadline passes (waits on the system under test, not on time). */
const until = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> => waitFor(what, check, timeoutMs, 200);

describe.skipIf(!ENABLED)('outages of real components', () => {
  it('pauses checkpoints while Redis restarts, then continues with nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-redis-'));
    dirs.push(dir);
    const port = await freePort();
    const startRedis = () => {
      // Persistence on (AOF), as the README asks of a production Redis, so a restart keeps checkpoints.
      const c = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir],
        { stdio: 'ignore' },
      );
      children.add(c);
      c.on('exit', () => children.delete(c));
      return c;
    };
    let server = startRedis();
    const url = `redis://127.0.0.1:${port}`;
    const ping = async () => {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        return (await r.ping()) === 'PONG' ? true : undefined;
      } finally {
        r.disconnect();
      }
    };
    await until('redis', ping);

    const detector = loadDetector();
    const signals: Signal[] = attackEvents(SEED_SCENARIO).flatMap((e) => detector.detect(normalizeAuditEvent(e, Date.parse(e.stageTimestamp!))));
    const published: Incident[] = [];
    const redis = connectRedis(url);
    const state = new RedisCorrelatorState(redis, `kvt${port}`);
    const c = new PartitionedCorrelator({
      correlations: loadRules().correlations,
      state,
      publish: async (i) => void published.push(...i),
      clock: { now: () => SEED_SCENARIO.start },
      logger: createLogger('silent'),
    });
    await until('the correlator to connect', async () => ((await state.ready()) ? true : undefined));
    const msgs = (from: number, to: number): BusMessage<SignalsMessage>[] =>
      signals.slice(from, to).map((s, i) => ({ key: s.actor.key, value: s, partition: 0, offset: String(from + i) }));
    const half = Math.floor(signals.length / 2);
    await c.handle(msgs(0, half));

    server.kill('SIGTERM');
    await until('redis to stop', async () => (children.has(server) ? undefined : true));
    await expect(c.handle(msgs(half, signals.length))).rejects.toThrow(/STATE_UNAVAILABLE|Redis/);
    expect(await state.ready()).toBe(false);

    server = startRedis();
    await until('the correlator to reconnect', async () => ((await state.ready()) ? true : undefined));
    await c.handle(msgs(half, signals.length)); // the bus redelivers the uncommitted batch
    const fresh = new RedisCorrelatorState(connectRedis(url), `kvt${port}`);
    await until('a second correlator to connect', async () => ((await fresh.ready()) ? true : undefined));
    const loaded = await fresh.load(0);
    await fresh.close();
    expect(loaded.offset).toBe(String(signals.length - 1));
    expect(loaded.incidents).toHaveLength(1);
    expect(loaded.incidents[0]!.signalCount).toBe(signals.length);
    redis.disconnect();
  }, 120_000);

  it('answers 503 while the broker is down, turns unready, and processes everything acknowledged', async () => {
    // A broker of its own (the jars are already cached by the test script), so stopping it disturbs no other test.
    const cache = mkdtempSync(join(tmpdir(), 'kv-kafka-'));
    dirs.push(cache);
    mkdirSync(join(cache, 'kafka'), { recursive: true });
    if (existsSync(join(ROOT, '.cache/kafka/lib'))) symlinkSync(join(ROOT, '.cache/kafka/lib'), join(cache, 'kafka/lib'));
    const env = { ...process.env, KUBEVIGIL_CACHE_DIR: cache, KAFKA_PORT: String(await freePort()), KAFKA_CONTROLLER_PORT: String(await freePort()) };
    const kafka = (cmd: string) => execFileSync('bash', [join(ROOT, 'scripts/kafka.sh'), cmd], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const brokers = kafka('start')
      .trim()
      .replace(/^KAFKA_BROKERS=/, '');
    kafka('wait');
    const data = mkdtempSync(join(tmpdir(), 'kv-outage-'));
    dirs.push(data);
    const kv = await serve(
      loadConfig({
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: data,
        KAFKA_BROKERS: brokers,
        REDIS_URL: process.env.REDIS_URL,
        KUBEVIGIL_TOPIC_PREFIX: `kvo${Date.now()}`,
        KUBEVIGIL_PARTITIONS: '2',
        KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      }),
      createLogger('silent'),
      { processMetrics: false, sweepSchedule: false },
    );
    try {
      const events = attackEvents(SEED_SCENARIO);
      const post = (items: unknown[]) =>
        fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(items) });
      const first = await post(events.slice(0, 3));
      expect(first.status).toBe(200);
      const before = ((await first.json()) as { signals: number }).signals;

      kafka('stop');
      const refused = await post(events.slice(3));
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await fetch(`${kv.url}/readyz`)).status).toBe(503);

      kafka('start');
      kafka('wait');
      await until('readiness', async () => ((await fetch(`${kv.url}/readyz`)).status === 200 ? true : undefined));
      // The sender retries the refused batch, as kube-apiserver does after a 503.
      const again = await until('ingest to accept the retried batch', async () => {
        const r = await post(events.slice(3));
        return r.status === 200 ? r : undefined;
      });
      const after = ((await again.json()) as { signals: number }).signals;
      const incident = await until(
        'every acknowledged signal in the incident',
        async () => {
          const page = (await (await fetch(`${kv.url}/api/v1/incidents`)).json()) as { items: Incident[] };
          return page.items.length === 1 && page.items[0]!.signalCount === before + after ? page.items[0] : undefined;
        },
        90_000,
      );
      expect(incident.actor.key).toBe('sa:frontend/frontend');
    } finally {
      await kv.stop();
      kafka('stop');
    }
  }, 180_000);
});
