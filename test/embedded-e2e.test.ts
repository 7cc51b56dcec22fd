/**
 * The embedded product end to end, through the real HTTP audit webhook: the seed attack and an
 * attack under other names each become ONE incident with the binding named and the fix spelled
 * out; benign traffic alone opens nothing of medium severity; a restart in the middle of an attack
 * keeps the incident; the API's lifecycle and validation behave.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, interleave, SEED_SCENARIO, type AttackScenario } from '../connectors/k8s-audit/scenario.js';
import { syntheticAuditEvents } from '../connectors/k8s-audit/synth.js';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import type { Incident } from '../correlator/incident.js';
import { fourSourceAttack } from '../services/cli/scenario.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';

const API = 'api-token-for-e2e-tests-0123456789';
const INGEST = 'ingest-token-for-e2e-tests-012345';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir?: string): Promise<{ kv: Running; dir: string }> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'kv-e2e-'));
  if (!dataDir) dirs.push(dir);
  const config = loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_INGEST_TOKEN: INGEST });
  return { kv: await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false }), dir };
}

async function send(kv: Running, events: AuditEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 400) {
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
      body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events.slice(i, i + 400) }),
    });
    expect(res.status).toBe(200);
  }
  await kv.drained();
}

const api = (kv: Running, path: string, init: RequestInit = {}) =>
  fetch(`${kv.url}${path}`, { ...init, headers: { authorization: `Bearer ${API}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

async function incidents(kv: Running, query = 'severity=medium'): Promise<Incident[]> {
  const page = (await (await api(kv, `/api/v1/incidents?${query}`)).json()) as { items: { id: string }[] };
  return Promise.all(page.items.map(async (i) => (await (await api(kv, `/api/v1/incidents/${i.id}`)).json()) as Incident));
}

function background(n: number, start: number): AuditEvent[] {
  return syntheticAuditEvents(n, { start: start - 60_000, stepMs: 200, suspiciousShare: 0 });
}

function expectOneIncidentFor(found: Incident[], s: AttackScenario): Incident {
  expect(found).toHaveLength(1);
  const inc = found[0]!;
  expect(['high', 'critical']).toContain(inc.severity);
  expect(inc.actor.key).toBe(`sa:${s.namespace}/${s.serviceAccount}`);
  expect(inc.rootCause.enablingBinding).toMatchObject({ kind: 'ClusterRoleBinding', name: s.binding, roleName: s.clusterRole });
  expect(inc.rootCause.summary).toContain(`Service account ${s.namespace}/${s.serviceAccount}`);
  expect(inc.rootCause.summary).toContain(`ClusterRoleBinding ${s.binding}`);
  expect(inc.blastRadius.secrets).toEqual(expect.arrayContaining(s.secrets.map((x) => `${s.targetNamespace}/${x}`)));
  expect(inc.blastRadius.workloads).toContain(`${s.namespace}/${s.pod}`);
  const commands = inc.remediations.flatMap((r) => r.commands);
  expect(commands).toContain(`kubectl delete clusterrolebinding ${s.binding}`);
  expect(commands.some((c) => c.includes(`-n ${s.namespace}`) && c.includes(s.pod))).toBe(true);
  // The timeline tells the whole story, in order, starting with the reconnaissance.
  // (The same first request also shows the pod's token driven by kubectl: both entries share its time.)
  const first = inc.timeline.filter((e) => e.time === inc.timeline[0]!.time).map((e) => e.kind);
  expect(first).toContain('rbac.permission_enumeration');
  expect(inc.timeline.map((e) => e.time)).toEqual([...inc.timeline.map((e) => e.time)].sort((a, b) => a - b));
  for (const kind of ['secret.list_cluster_wide', 'secret.read_cross_namespace', 'pod.exec', 'rbac.escalation_attempt', 'admission.denied', 'pod.privileged'])
    expect(
      inc.timeline.map((e) => e.kind),
      kind,
    ).toContain(kind);
  return inc;
}

describe('embedded kubevigil, end to end through the audit webhook', () => {
  it('reports the seed attack inside benign traffic as one incident with root cause and remediation', async () => {
    const { kv } = await start();
    try {
      await send(kv, interleave(attackEvents(SEED_SCENARIO), background(3000, SEED_SCENARIO.start)));
      const inc = expectOneIncidentFor(await incidents(kv), SEED_SCENARIO);
      expect(inc.correlations.map((c) => c.ruleId)).toEqual(
        expect.arrayContaining(['zt-secret-list-then-use', 'zt-escalation-after-denial', 'zt-lateral-movement']),
      );
      expect(inc.mitre).toContain('T1552.007');
      const signals = (await (await api(kv, `/api/v1/incidents/${inc.id}/signals`)).json()) as { items: unknown[] };
      expect(signals.items).toHaveLength(inc.signalCount);
    } finally {
      await kv.stop();
    }
  });

  it('keeps one incident when the attack shows in all four sources: audit, mesh logs, an alert and traces', async () => {
    const { kv } = await start();
    try {
      const background = syntheticAuditEvents(1500, { start: SEED_SCENARIO.start - 60_000, stepMs: 150, suspiciousShare: 0 });
      for (const d of fourSourceAttack(SEED_SCENARIO, background)) {
        const res = await fetch(`${kv.url}${d.path}`, {
          method: 'POST',
          headers: { 'content-type': d.contentType, authorization: `Bearer ${INGEST}` },
          body: d.body,
        });
        expect(res.status, d.path).toBeLessThan(300);
      }
      await kv.drained();
      const found = await incidents(kv);
      const inc = expectOneIncidentFor(found, SEED_SCENARIO);
      expect([...inc.sources].sort()).toEqual(['alertmanager', 'k8s-audit', 'loki', 'otlp']);
      expect(new Set(inc.timeline.map((e) => e.source))).toEqual(new Set(['alertmanager', 'k8s-audit', 'loki', 'otlp']));
      // The mesh line named an IP and the spans a pod: both were resolved to the service account.
      expect(inc.timeline.filter((e) => e.source !== 'k8s-audit').every((e) => e.actor === 'sa:frontend/frontend')).toBe(true);
      expect(inc.entities).toEqual(
        expect.arrayContaining([
          `pod:${SEED_SCENARIO.namespace}/${SEED_SCENARIO.pod}`,
          `ip:${SEED_SCENARIO.podIP}`,
          `pod:${SEED_SCENARIO.targetNamespace}/${SEED_SCENARIO.targetPod}`,
          `binding:ClusterRoleBinding/${SEED_SCENARIO.binding}`,
        ]),
      );
      // Spans keep their trace ids so the incident links to the trace in Tempo.
      expect(inc.timeline.filter((e) => e.source === 'otlp').every((e) => /^[0-9a-f]{32}$/.test(e.attributes.traceId ?? ''))).toBe(true);
      expect(inc.rootCause.evidence.map((e) => e.type)).toContain('mesh');
    } finally {
      await kv.stop();
    }
  });

  it('finds the same attack under other names', async () => {
    const other: AttackScenario = {
      ...SEED_SCENARIO,
      namespace: 'storefront',
      serviceAccount: 'checkout-api',
      pod: 'checkout-api-5f7b9c-q8w2e',
      node: 'ip-10-1-2-3.ec2.internal',
      podIP: '10.1.7.9',
      binding: 'legacy-ops-access',
      clusterRole: 'ops-read-everything',
      ownBinding: 'checkout-deployer',
      targetNamespace: 'billing',
      secrets: ['ledger-db', 'psp-keys', 'smtp-relay'],
      targetPod: 'ledger-db-1',
      constraint: 'no-privileged',
      start: Date.UTC(2026, 5, 1, 22, 0, 0),
    };
    const { kv } = await start();
    try {
      await send(kv, interleave(attackEvents(other, 99), background(2000, other.start)));
      expectOneIncidentFor(await incidents(kv), other);
    } finally {
      await kv.stop();
    }
  });

  it('opens no incident of medium severity or above for benign traffic alone', async () => {
    const { kv } = await start();
    try {
      // Controllers, kubelets, leases, cert-manager watching secrets, CI deploys, humans listing pods.
      await send(kv, syntheticAuditEvents(8000, { suspiciousShare: 0, seed: 1234 }));
      expect(await incidents(kv, 'severity=medium&status=open,acknowledged,resolved')).toEqual([]);
    } finally {
      await kv.stop();
    }
  });

  it('continues the same incident after a restart in the middle of the attack, losing nothing', async () => {
    const events = interleave(attackEvents(SEED_SCENARIO), background(1000, SEED_SCENARIO.start));
    const cut = events.findIndex((e) => e.requestURI?.includes('/exec'));
    const first = await start();
    await send(first.kv, events.slice(0, cut));
    const before = await incidents(first.kv);
    expect(before).toHaveLength(1);
    await first.kv.stop();

    const second = await start(first.dir);
    try {
      await send(second.kv, events.slice(cut));
      const after = await incidents(second.kv);
      expect(after).toHaveLength(1);
      expect(after[0]!.id).toBe(before[0]!.id);
      expect(after[0]!.signalCount).toBeGreaterThan(before[0]!.signalCount);
      expectOneIncidentFor(after, SEED_SCENARIO);
    } finally {
      await second.kv.stop();
    }
  });

  it('acknowledges and resolves through PATCH, refuses invalid transitions and bad input, and streams changes', async () => {
    const { kv } = await start();
    try {
      const stream = await api(kv, '/api/v1/incidents/stream');
      expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = stream.body!.getReader();
      await send(kv, attackEvents(SEED_SCENARIO));
      let text = '';
      while (!text.includes('event: incident')) text += new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      const [inc] = await incidents(kv);
      expect(text).toContain(`id: ${inc!.id}:`);

      const patch = (body: unknown) => api(kv, `/api/v1/incidents/${inc!.id}`, { method: 'PATCH', body: JSON.stringify(body) });
      const ack = await patch({ status: 'acknowledged', note: 'on it', by: 'sre@example.com' });
      expect(ack.status).toBe(200);
      expect(((await ack.json()) as Incident).status).toBe('acknowledged');
      expect((await patch({ status: 'acknowledged' })).status).toBe(409);
      const bad = await patch({ status: 'closed' });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { detail: string }).detail).toMatch(/status \("closed"\) must be "acknowledged" or "resolved"/);
      expect((await patch({ status: 'resolved', extra: 1 })).status).toBe(400);
      const resolved = await patch({ status: 'resolved', note: 'binding removed' });
      expect(((await resolved.json()) as Incident).notes.map((n) => n.status)).toEqual(['acknowledged', 'resolved']);
      expect((await patch({ status: 'acknowledged' })).status).toBe(409);

      // A resolved incident is never reused: the next signal from the actor opens a new one.
      await send(kv, attackEvents({ ...SEED_SCENARIO, start: SEED_SCENARIO.start + 3_600_000 }, 8));
      const open = await incidents(kv, 'status=open');
      expect(open).toHaveLength(1);
      expect(open[0]!.id).not.toBe(inc!.id);

      expect((await api(kv, '/api/v1/incidents/inc_00000000000000000000')).status).toBe(404);
      expect((await api(kv, '/api/v1/incidents?severity=urgent')).status).toBe(400);
      expect((await api(kv, '/api/v1/incidents?cursor=!!!')).status).toBe(400);
      expect((await fetch(`${kv.url}/api/v1/incidents`)).status).toBe(401);
      const doc = (await (await fetch(`${kv.url}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/api/v1/incidents', '/api/v1/incidents/{id}', '/api/v1/incidents/stream', '/ingest/k8s-audit']),
      );
    } finally {
      await kv.stop();
    }
  });
});
