/**
 * KUBEVIGIL_WORKERS: audit bodies decoded and detected on worker threads give the same answers,
 * signals and incidents as detection on the event loop (identity learnt from the audit stream still
 * resolves the other sources' actors); a worker that dies before answering never costs an
 * acknowledged batch (503, the re-sent batch is processed in full); a rule reload reaches workers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { auditReceiver, type AuditOffload } from '../connectors/k8s-audit/receiver.js';
import { SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import { KubevigilError } from '../correlator/errors.js';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import { topics } from '../services/bus/topics.js';
import { fourSourceAttack } from '../services/cli/scenario.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { loadRules } from '../services/rules.js';
import { DetectionPool, type DetectedSink } from '../services/workers/pool.js';
import { listen } from './helpers/http.js';

const API = 'api-token-for-worker-tests-0123456';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

async function start(env: Record<string, string>): Promise<{ kv: Running; signals: Signal[] }> {
  const config = loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: tempDir('kv-workers-'), KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_INVENTORY: 'off', ...env });
  const kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  const signals: Signal[] = [];
  await kv.bus.subscribe(topics().signals, 'test-signals', async (batch) => {
    for (const m of batch) if ('observedTime' in m.value) signals.push(m.value);
  });
  return { kv, signals };
}

const api = async (kv: Running, path: string) => (await fetch(`${kv.url}${path}`, { headers: { authorization: `Bearer ${API}` } })).json();

/** The demo attack over four sources among benign audit traffic, one batch re-sent and one invalid event; every answer and what came of it. */
async function run(workers: string) {
  const { kv, signals } = await start({ KUBEVIGIL_WORKERS: workers });
  try {
    const background = syntheticAuditEvents(1500, { start: SEED_SCENARIO.start - 60_000, stepMs: 200, suspiciousShare: 0.02, seed: 5 });
    const deliveries = fourSourceAttack(SEED_SCENARIO, background);
    // Re-sent (every event a duplicate), and a batch with an invalid event in it.
    deliveries.splice(2, 0, deliveries[0]!, {
      path: '/ingest/k8s-audit',
      contentType: 'application/x-ndjson',
      body: ['{"not":"an event"}', JSON.stringify(syntheticAuditEvents(3, { seed: 9, suspiciousShare: 1 })[1])].join('\n'),
    });
    const answers: unknown[] = [];
    for (const d of deliveries) {
      const res = await fetch(`${kv.url}${d.path}`, { method: 'POST', headers: { 'content-type': d.contentType }, body: d.body });
      expect(res.status, d.path).toBeLessThan(300);
      answers.push(d.path === '/ingest/k8s-audit' ? await res.json() : res.status);
    }
    await kv.drained();
    await kv.drained();
    const page = (await api(kv, '/api/v1/incidents?severity=info&limit=200')) as { items: { id: string }[] };
    const incidents = await Promise.all(page.items.map(async (i) => (await api(kv, `/api/v1/incidents/${i.id}`)) as Incident));
    return {
      answers,
      signals: signals.map((s) => `${s.id} ${s.kind} ${s.severity} ${s.actor.key} ${s.attributes.identityFrom ?? ''}`).sort(),
      incidents: incidents
        .map((i) => ({
          actor: i.actor.key,
          severity: i.severity,
          sources: [...i.sources].sort(),
          signals: i.timeline.map((e) => `${e.signalId} ${e.actor}`).sort(),
          correlations: i.correlations.map((c) => c.ruleId).sort(),
        }))
        .sort((a, b) => a.actor.localeCompare(b.actor) || a.signals[0]!.localeCompare(b.signals[0]!)),
    };
  } finally {
    await kv.stop();
  }
}

describe('detection on worker threads (KUBEVIGIL_WORKERS)', () => {
  it('gives the same answers, signals and incidents with 2 workers as on the event loop', async () => {
    const inProcess = await run('0');
    const workers = await run('2');
    expect(workers).toEqual(inProcess);
    // The run means something: the re-sent batch was all duplicates, the invalid event was reported,
    // and the mesh line and spans were resolved to the attacker's service account from the audit stream.
    expect(inProcess.answers[2]).toMatchObject({ accepted: 0, duplicates: expect.any(Number) });
    expect(inProcess.answers[3]).toMatchObject({ accepted: 1, invalid: 1 });
    const attack = inProcess.incidents.find((i) => i.actor === 'sa:frontend/frontend');
    expect(attack?.sources).toEqual(['alertmanager', 'k8s-audit', 'loki', 'otlp']);
    expect(inProcess.signals.some((s) => / sa:frontend\/frontend \w+$/.test(s))).toBe(true);
  }, 60_000);

  it('answers 503 when a worker dies before answering, and processes the re-sent batch in full', async () => {
    const published: number[][] = [];
    const sink: DetectedSink = {
      publishDetected: async (_source, count, d) => {
        published.push([count, d.signals.length]);
        return { signals: d.signals.length };
      },
    };
    const rules = loadRules();
    const workerRules = { files: rules.detectionFiles!, minSeverity: 'info' as const };
    // A worker that exits on the first body it is given.
    const crashing = join(tempDir('kv-crash-'), 'crash.mjs');
    writeFileSync(
      crashing,
      "import { parentPort } from 'node:worker_threads'; parentPort.on('message', (m) => { if (m.type === 'audit') process.exit(3); });\n",
    );
    const broken = new DetectionPool(1, workerRules, sink, { script: { url: new URL(`file://${crashing}`) } });
    const good = new DetectionPool(1, workerRules, sink);
    let current: AuditOffload = broken;
    const offload: AuditOffload = { detect: (...a) => current.detect(...a), publish: (...a) => current.publish(...a) };
    const app = express();
    app.use(auditReceiver({ sink: { ingest: () => Promise.reject(new Error('not used')) }, offload, maxBodyBytes: 1 << 24, dedupEntries: 1000 }));
    const srv = await listen(app);
    try {
      const body = JSON.stringify(syntheticAuditEvents(200, { seed: 4, suspiciousShare: 0.2 }));
      const post = () => fetch(`${srv.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const refused = await post();
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/detection worker stopped/);
      expect(published).toEqual([]);
      expect(broken.crashes).toBe(1);
      // The pool replaces the worker; this one dies again, still without acknowledging anything.
      await expect(broken.detect(Buffer.from(body), false, Date.now())).rejects.toSatisfy((e) => e instanceof KubevigilError && e.retryable);
      current = good;
      const accepted = await post();
      expect(accepted.status).toBe(200);
      const answer = (await accepted.json()) as { accepted: number; duplicates: number; signals: number };
      expect(answer).toMatchObject({ accepted: 200, duplicates: 0 });
      expect(answer.signals).toBeGreaterThan(0);
      expect(published).toEqual([[200, answer.signals]]);
      // Acknowledged once: the next re-send is all duplicates and publishes nothing new.
      expect(await (await post()).json()).toMatchObject({ accepted: 0, duplicates: 200, signals: 0 });
    } finally {
      await srv.close();
      await broken.stop();
      await good.stop();
    }
  }, 60_000);

  it('reloads the rules on every worker (POST /-/reload)', async () => {
    const rules = tempDir('kv-workers-rules-');
    const { kv, signals } = await start({ KUBEVIGIL_WORKERS: '2', KUBEVIGIL_RULES_DIR: rules });
    try {
      let n = 0;
      const probe = () => ({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        level: 'Metadata',
        auditID: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
        stage: 'ResponseComplete',
        requestURI: '/api/v1/namespaces/lab/configmaps/probe',
        verb: 'get',
        user: { username: 'system:serviceaccount:lab:mallory' },
        sourceIPs: ['10.0.0.9'],
        objectRef: { resource: 'configmaps', namespace: 'lab', name: 'probe', apiVersion: 'v1' },
        responseStatus: { code: 200 },
        requestReceivedTimestamp: new Date().toISOString(),
        stageTimestamp: new Date().toISOString(),
      });
      // Several bodies in flight, so that both workers answer some.
      const sendAll = () =>
        Promise.all(
          Array.from({ length: 8 }, async () => {
            const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify([probe()]),
            });
            expect(res.status).toBe(200);
          }),
        );
      await sendAll();
      await kv.drained();
      const fromProbe = () => signals.filter((s) => s.rule.id === 'lab-worker-probe').length;
      expect(fromProbe()).toBe(0);
      writeFileSync(
        join(rules, 'lab.yaml'),
        `rules:
  - id: lab-worker-probe
    title: Lab identity read a probe configmap
    description: >
      Test rule for reloads on workers. False positives: none, it matches one test identity only.
    source: k8s-audit
    severity: low
    kind: rbac.permission_enumeration
    mitre: [T1613]
    output: "{actor.name} read configmap {objectRef.name}"
    condition:
      all:
        - { field: objectRef.resource, eq: configmaps }
        - { field: user.username, eq: "system:serviceaccount:lab:mallory" }
`,
      );
      const res = await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: { authorization: `Bearer ${API}` } });
      expect(res.status).toBe(200);
      await sendAll();
      await kv.drained();
      expect(fromProbe()).toBe(8);
    } finally {
      await kv.stop();
    }
  }, 30_000);

  it('bounds the heap of each worker: a worker past it dies alone, the body is refused retryably, and a new worker takes the next', async () => {
    const rules = loadRules();
    const hungry = join(tempDir('kv-hungry-'), 'hungry-worker.mjs');
    // Keeps everything it allocates for a body that says "eat"; answers the others as unusable.
    writeFileSync(
      hungry,
      "import { parentPort } from 'node:worker_threads'; const keep = []; parentPort.on('message', (m) => { if (m.type !== 'audit') return; if (new TextDecoder().decode(m.body) === 'eat') for (;;) keep.push(new Array(1e5).fill(keep.length)); parentPort.postMessage({ id: m.id, result: { problem: 'not a batch' } }); });\n",
    );
    let crashes = 0;
    const pool = new DetectionPool(
      1,
      { files: rules.detectionFiles!, minSeverity: 'info' },
      { publishDetected: async () => ({ signals: 0 }) },
      {
        script: { url: new URL(`file://${hungry}`) },
        heapMb: 32,
        onCrash: () => crashes++,
      },
    );
    try {
      await expect(pool.detect(Buffer.from('eat'), false, 0)).rejects.toMatchObject({
        code: 'WORKER_UNAVAILABLE',
        retryable: true,
        message: expect.stringMatching(/memory limit/),
      });
      expect(crashes).toBe(1);
      await expect(pool.detect(Buffer.from('[]'), false, 0)).resolves.toEqual({ problem: 'not a batch' });
    } finally {
      await pool.stop();
    }
  }, 30_000);

  it('refuses bodies once stopped, retryably', async () => {
    const rules = loadRules();
    const pool = new DetectionPool(1, { files: rules.detectionFiles!, minSeverity: 'info' }, { publishDetected: async () => ({ signals: 0 }) });
    await pool.stop();
    await expect(pool.detect(Buffer.from('[]'), false, 0)).rejects.toMatchObject({ code: 'WORKER_UNAVAILABLE', retryable: true });
  });

  it('answers a body unusable as a whole with 400, as on the event loop', async () => {
    const { kv } = await start({ KUBEVIGIL_WORKERS: '1' });
    try {
      const post = (body: string | Buffer) => fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const notJson = await post('{"kind": ');
      expect(notJson.status).toBe(400);
      const notUtf8 = await post(Buffer.from([0x5b, 0xff, 0x5d]));
      expect(notUtf8.status).toBe(400);
      expect(((await notUtf8.json()) as { detail: string }).detail).toMatch(/UTF-8/);
    } finally {
      await kv.stop();
    }
  }, 30_000);
});
