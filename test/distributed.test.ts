/**
 * Distributed mode against a real Kafka broker and Redis (started by scripts/with-services.sh; the
 * tests are skipped without KAFKA_BROKERS and REDIS_URL): separate kubevigil processes for ingest +
 * API and for two correlators, the same incidents as the embedded mode, and a correlator killed
 * with SIGKILL in the middle of a stream without losing or doubling anything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import { attackEvents, interleave, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import { allIncidents, everySignalIn, incidentSummary, numberedScenario } from './helpers/distributed.js';
import { waitFor } from './helpers/prometheus.js';

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;
const BIN = new URL('../bin/kubevigil.js', import.meta.url).pathname;
const children = new Set<ChildProcess>();
const dirs: string[] = [];

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  url: Promise<string>;
}

/** Starts `kubevigil serve` as its own process; resolves its URL from the "listening" log line. */
function kubevigil(roles: string, prefix: string, extra: Record<string, string> = {}): Proc {
  const dir = mkdtempSync(join(tmpdir(), 'kv-dist-'));
  dirs.push(dir);
  const child = spawn(process.execPath, [BIN, 'serve', '--role', roles], {
    env: {
      ...process.env,
      KAFKA_BROKERS: KAFKA,
      REDIS_URL: REDIS,
      KUBEVIGIL_TOPIC_PREFIX: prefix,
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_PARTITIONS: '4',
      KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000',
      KUBEVIGIL_LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const url = new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (line.includes('kubevigil listening')) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on('exit', (code) => reject(new Error(`kubevigil ${roles} exited with ${code}`)));
  });
  return { child, url };
}

/** Polls until `check` returns a value or the deadline passes (waits on the system under test, not on time). */
const until = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> => waitFor(what, check, timeoutMs, 250);

async function send(url: string, events: AuditEvent[], batch = 400): Promise<void> {
  for (let i = 0; i < events.length; i += batch) {
    const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i, i + batch) });
    const res = await until('ingest to accept a batch', async () => {
      const r = await fetch(`${url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return r.status === 200 ? r : undefined;
    });
    expect(res.status).toBe(200);
  }
}

/** The same input through an embedded kubevigil: the baseline. */
async function embeddedBaseline(events: AuditEvent[]): Promise<Incident[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-base-'));
  dirs.push(dir);
  const kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  try {
    await send(kv.url, events);
    await kv.drained();
    return (await allIncidents(kv.url)).filter((i) => i.resolution !== 'merged');
  } finally {
    await kv.stop();
  }
}

const summary = (incs: Incident[]) => incidentSummary(incs);

describe.skipIf(!KAFKA || !REDIS)('distributed mode on Kafka and Redis', () => {
  it('finds the same incidents as the embedded mode with ingest, API and two correlators in separate processes', async () => {
    const events = interleave(
      attackEvents(SEED_SCENARIO),
      syntheticAuditEvents(2000, { start: SEED_SCENARIO.start - 60_000, stepMs: 120, suspiciousShare: 0 }),
    );
    const baseline = await embeddedBaseline(events);
    expect(baseline).toHaveLength(1);

    const prefix = `kvt-${randomBytes(4).toString('hex')}`;
    const front = kubevigil('ingest,api', prefix);
    const c1 = kubevigil('correlator', prefix);
    const c2 = kubevigil('correlator', prefix);
    const [url] = await Promise.all([front.url, c1.url, c2.url]);
    await until('readiness', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    await send(url, events);
    const found = await until('the incident to reach the API', async () => {
      const incs = await allIncidents(url);
      return incs.length && incs[0]!.signalCount === baseline[0]!.signalCount ? incs : undefined;
    });
    expect(summary(found)).toEqual(summary(baseline));

    // Lifecycle commands travel through Kafka to the owning correlator and back.
    const id = found[0]!.id;
    const ack = await fetch(`${url}/api/v1/incidents/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'acknowledged', note: 'looking' }),
    });
    expect(ack.status).toBe(200);
    expect(((await ack.json()) as Incident).status).toBe('acknowledged');
    const again = await fetch(`${url}/api/v1/incidents/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'acknowledged' }),
    });
    expect(again.status).toBe(409);
    for (const p of [front, c1, c2]) p.child.kill('SIGTERM');
  }, 180_000);

  it('loses and doubles nothing when one of two correlators is killed with SIGKILL mid-stream', async () => {
    const attacks = Array.from({ length: 120 }, (_, i) => attackEvents(numberedScenario(i), i + 1));
    const events = interleave(
      attacks.flat().sort((a, b) => Date.parse(a.stageTimestamp!) - Date.parse(b.stageTimestamp!)),
      syntheticAuditEvents(3000, { start: SEED_SCENARIO.start - 60_000, stepMs: 50, suspiciousShare: 0, seed: 5 }),
    );
    const baseline = await embeddedBaseline(events);
    expect(baseline.length).toBe(120);

    const prefix = `kvt-${randomBytes(4).toString('hex')}`;
    const front = kubevigil('ingest,api', prefix);
    const c1 = kubevigil('correlator', prefix);
    const c2 = kubevigil('correlator', prefix);
    const [url, , url2] = await Promise.all([front.url, c1.url, c2.url]);
    await until('readiness', async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined));
    // Wait until the consumer group is stable with both correlators in it, each owning partitions.
    const admin = new Kafka({ clientId: 'kv-test-admin', brokers: KAFKA!.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await until('both correlators in the consumer group', async () => {
      const { groups } = await admin.describeGroups([`${prefix}.correlator`]);
      const g = groups[0];
      return g && g.state === 'Stable' && g.members.length === 2 ? true : undefined;
    });
    await admin.disconnect();
    const correlated = async (u: string) => Number(/^kubevigil_correlator_signals_total (\d+)/m.exec(await (await fetch(`${u}/metrics`)).text())?.[1] ?? 0);
    // Stream in chunks; once both correlators have processed signals of their partitions (and at
    // least a third of the stream is in), one dies without a goodbye and the rest keeps coming.
    let killed = false;
    for (let i = 0; i < events.length; i += 200) {
      await send(url, events.slice(i, i + 200), 200);
      if (!killed && i >= events.length / 3 && (await correlated(url2)) > 0 && (await correlated(await c1.url)) > 0) {
        c2.child.kill('SIGKILL');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    const found = await everySignalIn(url, baseline);
    expect(summary(found)).toEqual(summary(baseline));
    // The survivor took the dead one's windows over by reading their signals back from the topic.
    const restored = async (result: string) =>
      Number(
        new RegExp(`^kubevigil_correlator_restored_signals_total\\{result="${result}"\\} (\\d+)`, 'm').exec(
          await (await fetch(`${await c1.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    expect(await restored('restored')).toBeGreaterThan(0);
    expect(await restored('missing')).toBe(0);
    for (const p of [front, c1]) p.child.kill('SIGTERM');
  }, 300_000);
});
