/**
 * The distributed correlator on worker threads (KUBEVIGIL_CORRELATOR_WORKERS) against a real Kafka
 * broker and Redis (skipped without KAFKA_BROKERS and REDIS_URL): the same incidents and
 * remediations as the embedded mode, a worker that dies mid-stream without losing or doubling a
 * signal, and messages no worker can parse parked on the dead-letter topic.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import { normalizeAuditEvent } from '../connectors/k8s-audit/normalize.js';
import { attackEvents, interleave, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import type { Incident } from '../correlator/incident.js';
import { DLQ_HEADERS } from '../services/bus/kafka.js';
import { encodeSignalsMessage } from '../services/bus/topics.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type ServeOptions } from '../services/main.js';
import { loadDetector } from '../services/rules.js';
import { workerScript } from '../services/workers/script.js';
import { allIncidents, everySignalIn, incidentSummary, metricValue, numberedScenario, postAudit } from './helpers/distributed.js';
import { waitFor } from './helpers/prometheus.js';

const KAFKA = process.env.KAFKA_BROKERS;
const REDIS = process.env.REDIS_URL;
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kv-threads-'));
  dirs.push(d);
  return d;
}

/** An in-process kubevigil; distributed when `env` names the broker. */
async function start(env: Record<string, string | undefined>, opts: ServeOptions = {}) {
  const dir = tempDir();
  const kv = await serve(
    loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_PARTITIONS: '4', KUBEVIGIL_KAFKA_SESSION_TIMEOUT_MS: '6000', ...env }),
    createLogger('silent'),
    { processMetrics: false, sweepSchedule: false, ...opts },
  );
  return { kv, dir };
}

/** Posts the events in batches of `batch`; resolves to the number of signals ingest published. */
async function send(url: string, events: AuditEvent[], batch = 400): Promise<number> {
  let signals = 0;
  for (let i = 0; i < events.length; i += batch) signals += await postAudit(url, events.slice(i, i + batch));
  return signals;
}

/** What must come out the same, remediations included. */
const summary = (incs: Incident[]) => incidentSummary(incs, { remediations: true });

/** The same input through an embedded kubevigil: the baseline. */
async function embeddedBaseline(events: AuditEvent[]): Promise<Incident[]> {
  const { kv } = await start({});
  try {
    await send(kv.url, events);
    await kv.drained();
    return (await allIncidents(kv.url)).filter((i) => i.resolution !== 'merged');
  } finally {
    await kv.stop();
  }
}

/** Many attacks among benign traffic, in time order. */
function attackStream(attacks: number, benign: number): AuditEvent[] {
  return interleave(
    Array.from({ length: attacks }, (_, i) => attackEvents(numberedScenario(i), i + 1))
      .flat()
      .sort((a, b) => Date.parse(a.stageTimestamp!) - Date.parse(b.stageTimestamp!)),
    syntheticAuditEvents(benign, { start: SEED_SCENARIO.start - 60_000, stepMs: 50, suspiciousShare: 0, seed: 5 }),
  );
}

const distributed = (prefix: string, workers: number) => ({
  KAFKA_BROKERS: KAFKA,
  REDIS_URL: REDIS,
  KUBEVIGIL_TOPIC_PREFIX: prefix,
  KUBEVIGIL_CORRELATOR_WORKERS: String(workers),
});

describe.skipIf(!KAFKA || !REDIS)('the distributed correlator on worker threads', () => {
  it('finds the same incidents and remediations as the embedded mode on two worker threads, and applies lifecycle commands', async () => {
    const events = attackStream(12, 1500);
    const baseline = await embeddedBaseline(events);
    expect(baseline).toHaveLength(12);

    const { kv } = await start(distributed(`kvth-${randomBytes(4).toString('hex')}`, 2));
    try {
      expect(kv.partitioned).toBeUndefined(); // not on the event loop
      // Ready once the workers reach Redis.
      expect((await fetch(`${kv.url}/readyz`)).status).toBe(200);
      await send(kv.url, events);
      const found = await everySignalIn(kv.url, baseline);
      // Remediations included: the least-privilege roles rest on the permission use ingest counted
      // on the event loop, copied to the workers.
      expect(summary(found)).toEqual(summary(baseline));

      // A lifecycle command travels through Kafka to the worker that owns the incident's partition.
      const id = found[0]!.id;
      const ack = await fetch(`${kv.url}/api/v1/incidents/${id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'acknowledged', note: 'looking' }),
      });
      expect(ack.status).toBe(200);
      expect(((await ack.json()) as Incident).status).toBe('acknowledged');

      // The workers' metrics are in the process's scrape: their signals counted, build info once.
      const signals = baseline.reduce((n, i) => n + i.signalCount, 0);
      expect(await metricValue(kv.url, 'kubevigil_correlator_signals_total')).toBeGreaterThanOrEqual(signals);
      expect(await metricValue(kv.url, 'kubevigil_incidents_open{severity="critical"}')).toBe(found.filter((i) => i.severity === 'critical').length);
      expect((await (await fetch(`${kv.url}/metrics`)).text()).match(/^kubevigil_build_info\{.*\} 1$/gm)).toHaveLength(1);
    } finally {
      await kv.stop();
    }
  }, 180_000);

  it('loses and doubles nothing when a correlation worker dies mid-stream', async () => {
    const events = attackStream(40, 2000);
    const baseline = await embeddedBaseline(events);
    expect(baseline).toHaveLength(40);

    const script = workerScript(new URL('./helpers/crashing-correlate-worker', import.meta.url));
    const { kv, dir } = await start(distributed(`kvth-${randomBytes(4).toString('hex')}`, 1), { correlatorWorkerScript: script });
    try {
      // The first half checkpointed everywhere, then the worker dies at the next checkpoint, with
      // the batches of the second half it applied since.
      const half = Math.floor(events.length / 2);
      const first = await send(kv.url, events.slice(0, half), 100);
      await waitFor('the first half checkpointed', async () => ((await metricValue(kv.url, 'kubevigil_correlator_signals_total')) >= first ? true : undefined));
      writeFileSync(join(dir, 'crash-correlate-worker'), '');
      await send(kv.url, events.slice(half), 100);
      const found = await everySignalIn(kv.url, baseline);
      expect(existsSync(join(dir, 'correlate-worker-crashed'))).toBe(true);
      expect(summary(found)).toEqual(summary(baseline));
    } finally {
      await kv.stop();
    }
  }, 240_000);

  it('parks a message no worker can parse on the dead-letter topic and correlates the ones after it', async () => {
    const prefix = `kvth-${randomBytes(4).toString('hex')}`;
    const { kv } = await start({ ...distributed(prefix, 1), KUBEVIGIL_ROLES: 'correlator' });
    const kafka = new Kafka({ clientId: 'kv-threads-test', brokers: KAFKA!.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: `${prefix}.test-dlq` });
    try {
      const detector = loadDetector();
      const signals = attackEvents(SEED_SCENARIO).flatMap((e) => detector.detect(normalizeAuditEvent(e, 0)));
      expect(signals.length).toBeGreaterThan(3);
      const key = signals[0]!.actor.key;
      await producer.connect();
      // Same key: the same partition, the broken message first.
      await producer.send({
        topic: `${prefix}.signals`,
        messages: [
          { key, value: '{"id":"broken", "kind":', headers: { 'content-type': 'application/json' } },
          ...signals.map((s) => {
            const { json, headers } = encodeSignalsMessage(s);
            return { key, value: json, headers: { 'content-type': 'application/json', ...headers } };
          }),
        ],
      });
      await waitFor('every valid signal correlated', async () =>
        (await kv.metrics.total('kubevigil_correlator_signals_total')) >= signals.length ? true : undefined,
      );
      await consumer.connect();
      await consumer.subscribe({ topics: [`${prefix}.dead-letter`], fromBeginning: true });
      const parked = await new Promise<{ value: string; reason: string; offset: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) =>
            resolve({
              value: message.value!.toString(),
              reason: message.headers![DLQ_HEADERS.reason]!.toString(),
              offset: message.headers![DLQ_HEADERS.offset]!.toString(),
            }),
        });
      });
      expect(parked.value).toBe('{"id":"broken", "kind":');
      expect(parked.reason).toMatch(/^value is not JSON/);
      expect(parked.offset).toBe('0');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await kv.stop();
    }
  }, 120_000);
});
