/**
 * Distributed mode against a real Kafka broker and Redis (started by scripts/with-services.sh; the
 * tests are skipped without KAFKA_BROKERS and REDIS_URL): separate kubevigil processes for ingest +
 * API and for two correlators, the same incidents as the embedded mode, and a correlator killed
 * with SIGKILL in the middle of a stream without losing or doubling anything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import { attackEvents, interleave, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve } from '../services/main.js';
import {
  allIncidents,
  cleanUp,
  everySignalIn,
  incidentSummary,
  metricTotal,
  metricValue,
  numberedScenario,
  startKubevigil,
  type KubevigilProcess,
} from './helpers/distributed.js';
import { waitFor } from './helpers/prometheus.js';

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;
afterAll(cleanUp);

/**
 * `kubevigil serve --role roles` in a process of its own, on the shared topics of `prefix`. The
 * correlators sweep every second, so that sweeps fall between the batches of every attack: the
 * streams are dated days back, and a sweep that expired windows by the clock alone emptied them.
 */
const kubevigil = (roles: string, prefix: string): KubevigilProcess =>
  startKubevigil(roles, {
    KAFKA_BROKERS: KAFKA!,
    REDIS_URL: REDIS!,
    KUBEVIGIL_TOPIC_PREFIX: prefix,
    KUBEVIGIL_PARTITIONS: '4',
    KUBEVIGIL_SWEEP_SCHEDULE: '* * * * * *',
  });

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
  const kv = await serve(loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir }), createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  try {
    await send(kv.url, events);
    await kv.drained();
    return (await allIncidents(kv.url)).filter((i) => i.resolution !== 'merged');
  } finally {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const summary = (incs: Incident[]) => incidentSummary(incs);

/** The partitions a correlator process loaded state for, by its log. */
const loadedPartitions = (p: KubevigilProcess): number[] => p.logs().flatMap((l) => (l.msg === 'correlator state loaded' ? [l.partition as number] : []));

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
    const survivor = await c1.url;
    const correlating = async () =>
      (await metricValue(url2, 'kubevigil_correlator_signals_total')) > 0 && (await metricValue(survivor, 'kubevigil_correlator_signals_total')) > 0;
    // Stream in chunks; once both correlators have checkpointed signals of their partitions (and
    // at least a third of the stream is in), one dies without a goodbye and the rest keeps coming.
    // A correlator that lags behind the whole stream dies once it has checkpointed something.
    let killed = false;
    const kill = () => {
      const owned = new Set(loadedPartitions(c2));
      c2.child.kill('SIGKILL');
      killed = true;
      return owned;
    };
    let theirs = new Set<number>();
    for (let i = 0; i < events.length; i += 200) {
      await send(url, events.slice(i, i + 200), 200);
      if (!killed && i >= events.length / 3 && (await correlating())) theirs = kill();
    }
    if (!killed) theirs = await until('both correlators to checkpoint signals', async () => ((await correlating()) ? kill() : undefined));
    const found = await everySignalIn(url, baseline);
    // The survivor took the dead one's partitions over from their checkpoints (signals it refers
    // to read back from the topic; signals the baseline annotated are in the checkpoint itself).
    // Its counters go with the comparison, so that a failure says whether a read-back fell short.
    const restored = (result: string) => metricValue(survivor, `kubevigil_correlator_restored_signals_total{result="${result}"}`);
    expect({
      incidents: summary(found),
      missing: await restored('missing'),
      rebuilds: await metricTotal(survivor, 'kubevigil_correlator_state_rebuilds_total'),
    }).toEqual({
      incidents: summary(baseline),
      missing: 0,
      rebuilds: 0,
    });
    const resumed = c1.logs().filter((l) => l.msg === 'correlator state loaded' && theirs.has(l.partition as number) && l.offset !== undefined);
    expect(resumed.length).toBeGreaterThan(0);
    for (const p of [front, c1]) p.child.kill('SIGTERM');
  }, 300_000);
});
