/**
 * Falco alerts end to end: the documented samples decode and raise the signals their rules say,
 * the receiver keeps Falco's and Falcosidekick's contract (token, 400 naming the field, a batch
 * keeps its good alerts, 413, 415, dedup by uuid, 503 when the bus refuses), and a shell in the
 * compromised frontend pod joins the incident of that pod's service account.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { falcoReceiver } from '../connectors/falco/receiver.js';
import { FALCO_SOURCE } from '../connectors/falco/source.js';
import { decodeFalcoBody, FalcoPayloadError } from '../connectors/falco/parse.js';
import { Detector } from '../correlator/detection/engine.js';
import type { SourceEvent } from '../correlator/detection/source-event.js';
import { BackpressureError } from '../correlator/errors.js';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { loadRules, SCHEMAS } from '../services/rules.js';
import { listen } from './helpers/http.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/falco/${name}`, import.meta.url), 'utf8');
const lines = (name: string) =>
  fixture(name)
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const attack = lines('frontend-attack.jsonl');
const shell = attack.find((e) => e.rule === 'Terminal shell in container')!;

describe('Falco alerts as Falco and Falcosidekick send them', () => {
  const rules = loadRules();
  const detector = new Detector(rules.rules, SCHEMAS);
  const signalsOf = (value: unknown) => {
    const { events, invalid } = FALCO_SOURCE.decode(value, Date.UTC(2026, 10, 29, 4));
    expect(invalid).toEqual([]);
    return events.flatMap((e) => detector.detect(e));
  };

  it('raises one signal per mapped behaviour from the documented samples, actors by pod, node or rule', () => {
    expect(signalsOf(JSON.parse(fixture('falcosidekick-readme.json'))).map((s) => [s.rule.id, s.actor.key])).toEqual([
      ['falco-write-below-binary-dir', 'node:localhost'],
    ]);
    expect(signalsOf(JSON.parse(fixture('k8s-daemonset-terminal-shell.json'))).map((s) => s.kind)).toEqual(['runtime.shell']);
    const found = attack.flatMap((e) => signalsOf(e));
    expect(found.map((s) => s.kind)).toEqual([
      'runtime.shell',
      'runtime.sensitive_read',
      'runtime.credential_search',
      'runtime.metadata_access',
      'runtime.drift',
      'runtime.drift',
      'runtime.remote_shell',
      'runtime.outbound_connection',
      'runtime.outbound_connection',
      'runtime.sensitive_read',
      'runtime.log_cleared',
      'runtime.privileged_container',
    ]);
    expect(new Set(found.slice(0, 11).map((s) => s.actor.key))).toEqual(new Set([`pod:${SEED_SCENARIO.namespace}/${SEED_SCENARIO.pod}`]));
    // Event time is Falco's, to the millisecond; MITRE ids come from the rule.
    expect(found[0]!.eventTime).toBe(Date.parse('2026-11-29T03:13:05.102Z'));
    expect(found[0]!.mitre).toEqual(['T1059', 'T1609']);
    expect(lines('benign.jsonl').flatMap((e) => signalsOf(e))).toEqual([]);
  });

  it('reads a JSON array and JSON lines, and says which alert of a batch is wrong and why', () => {
    expect(decodeFalcoBody(JSON.stringify(attack.slice(0, 3))).events).toHaveLength(3);
    const ndjson = decodeFalcoBody([JSON.stringify(attack[0]), '{"rule": "x"', JSON.stringify({ ...attack[1], priority: 'Urgent' })].join('\n'));
    expect(ndjson.events).toHaveLength(1);
    expect(ndjson.invalid).toEqual([
      { index: 1, field: '(line)', reason: expect.stringMatching(/^line 2 is not JSON/) },
      { index: 2, uuid: attack[1]!.uuid, rule: 'Read sensitive file untrusted', field: 'priority', reason: expect.stringContaining('got "Urgent"') },
    ]);
    expect(() => decodeFalcoBody('15:42:35.347416068: Warning Namespace change (setns) by unexpected program')).toThrow(FalcoPayloadError);
    expect(() => decodeFalcoBody('15:42:35.347416068: Warning Namespace change')).toThrow(/set json_output: true/);
    expect(decodeFalcoBody(JSON.stringify({ ...shell, time: 'yesterday' })).invalid[0]).toMatchObject({
      field: 'time',
      reason: expect.stringContaining('RFC 3339'),
    });
  });
});

describe('POST /ingest/falco on a running kubevigil', () => {
  const API = 'api-token-for-falco-tests-0123456789';
  const INGEST = 'ingest-token-for-falco-tests-012345';
  const FALCO = 'falco-only-token-for-tests-0123456789';
  const dir = mkdtempSync(join(tmpdir(), 'kv-falco-'));
  let kv: Running;
  beforeAll(async () => {
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
      KUBEVIGIL_INGEST_TOKEN_FALCO: FALCO,
      KUBEVIGIL_MAX_BODY_BYTES: String(64 * 1024),
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${kv.url}/ingest/falco`, {
      method: 'POST',
      body,
      // As Falcosidekick's webhook output sends it.
      headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Falcosidekick', authorization: `Bearer ${FALCO}`, ...headers },
    });
  it('requires a token: its own or the general ingest token', async () => {
    expect((await post(JSON.stringify(shell), { authorization: '' })).status).toBe(401);
    expect((await post(JSON.stringify(shell), { authorization: 'Bearer not-the-token-at-all-0123456789' })).status).toBe(401);
    const res = await post(JSON.stringify({ ...shell, uuid: 'token-check-1' }), { authorization: `Bearer ${INGEST}` });
    expect(res.status).toBe(200);
  });

  it('answers 400 naming the problem and the fix for a body that is not Falco JSON', async () => {
    const text = await post('20:47:13.591701934: Warning Netcat execution detected (user=root command=nc -l -p 1234)', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(((await text.json()) as { detail: string }).detail).toContain('json_output: true');
    const bad = await post('{"rule": "Terminal shell in container", "priority": ');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: '(body)', detail: expect.stringContaining('not valid JSON') });
    const noPriority = await post(JSON.stringify({ ...shell, priority: undefined }));
    expect(noPriority.status).toBe(400);
    expect(await noPriority.json()).toMatchObject({ field: 'priority', detail: expect.stringContaining('priority must be one of Emergency') });
  });

  it('keeps the valid alerts of a batch and reports the invalid one', async () => {
    const batch = [
      { ...attack[2], uuid: 'batch-1' },
      { ...attack[3], uuid: 'batch-2', time: 'not a time' },
      { ...attack[4], uuid: 'batch-3' },
    ];
    const res = await post(JSON.stringify(batch));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      accepted: 2,
      duplicates: 0,
      invalid: 1,
      signals: 2,
      errors: [
        { index: 1, uuid: 'batch-2', rule: 'Contact cloud metadata service from container', field: 'time', reason: expect.stringContaining('RFC 3339') },
      ],
    });
  });

  it('refuses a body over the limit with 413', async () => {
    const huge = JSON.stringify({ ...shell, uuid: 'huge', output: 'x'.repeat(70 * 1024) });
    const res = await post(huge);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toContain('KUBEVIGIL_MAX_BODY_BYTES');
  });

  it('drops an alert it has seen, by uuid', async () => {
    const once = JSON.stringify({ ...attack[10], uuid: 'dedup-1' });
    expect(await (await post(once)).json()).toMatchObject({ accepted: 1, duplicates: 0, signals: 1 });
    expect(await (await post(once)).json()).toMatchObject({ accepted: 0, duplicates: 1, signals: 0 });
  });
});

describe('a shell in the compromised pod, seen by Falco', () => {
  const API = 'api-token-for-falco-e2e-0123456789';
  const INGEST = 'ingest-token-for-falco-e2e-012345';
  const dir = mkdtempSync(join(tmpdir(), 'kv-falco-e2e-'));
  let kv: Running;
  beforeAll(async () => {
    const config = loadConfig({ KUBEVIGIL_PORT: '0', KUBEVIGIL_DATA_DIR: dir, KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_INGEST_TOKEN: INGEST });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const api = async <T>(path: string) => (await (await fetch(`${kv.url}${path}`, { headers: { authorization: `Bearer ${API}` } })).json()) as T;

  it('joins the incident of its service account, with the falco source listed', async () => {
    const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
      body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: attackEvents(SEED_SCENARIO) }),
    });
    expect(res.status).toBe(200);
    // Falco's alert for the same pod, a minute into the attack (the fixture's terminal shell), as Falco's http_output posts it.
    const falco = await fetch(`${kv.url}/ingest/falco`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'falcosecurity/falco', authorization: `Bearer ${INGEST}` },
      body: JSON.stringify(shell),
    });
    expect(await falco.json()).toMatchObject({ accepted: 1, signals: 1 });
    await kv.drained();

    const sa = `sa:${SEED_SCENARIO.namespace}/${SEED_SCENARIO.serviceAccount}`;
    const page = await api<{ items: { id: string }[] }>('/api/v1/incidents?limit=100');
    expect(page.items).toHaveLength(1);
    const inc = await api<Incident>(`/api/v1/incidents/${page.items[0]!.id}`);
    expect(inc.actor.key).toBe(sa);
    expect([...inc.sources].sort()).toEqual(['falco', 'k8s-audit']);
    const entry = inc.timeline.find((e) => e.kind === 'runtime.shell')!;
    // The pod named by Falco was resolved to its service account through the audit stream.
    expect(entry).toMatchObject({ source: 'falco', actor: sa });
    expect(entry.attributes).toMatchObject({ identityWas: `pod:${SEED_SCENARIO.namespace}/${SEED_SCENARIO.pod}`, uuid: shell.uuid });
    expect(inc.entities).toContain(`pod:${SEED_SCENARIO.namespace}/${SEED_SCENARIO.pod}`);
    expect(inc.timeline.some((e) => e.source === 'k8s-audit' && e.kind === 'secret.list_cluster_wide')).toBe(true);
  });
});

describe('the Falco receiver when the bus refuses', () => {
  it('answers 503 with Retry-After and remembers nothing as seen', async () => {
    let refuse = true;
    const got: SourceEvent[] = [];
    const app = express();
    app.use(
      falcoReceiver({
        sink: {
          ingest: async (events) => {
            if (refuse) throw new BackpressureError('test bus', 1, 3);
            got.push(...events);
            return { signals: events.length };
          },
        },
      }),
    );
    const srv = await listen(app);
    try {
      const send = () => fetch(`${srv.url}/ingest/falco`, { method: 'POST', body: JSON.stringify(shell), headers: { 'content-type': 'application/json' } });
      const res = await send();
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('3');
      refuse = false;
      expect(await (await send()).json()).toMatchObject({ accepted: 1, duplicates: 0 });
      expect(got.map((e) => e.key)).toEqual([shell.uuid]);
    } finally {
      await srv.close();
    }
  });
});
