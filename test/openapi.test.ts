/**
 * The API document is checked two ways: Redocly's recommended ruleset (the linter API designers
 * use) reports no error on it, and every response a real kubevigil gives — success and error, on
 * every route — validates against the schema the document declares for that route, status and
 * media type (JSON Schema 2020-12, as OpenAPI 3.1 uses).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import { openApiDocument } from '../services/api/openapi.js';
import { fourSourceAttack } from '../services/cli/scenario.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';

type Json = Record<string, unknown>;
const API = 'api-token-for-openapi-tests-0123';
const READ = 'read-token-for-openapi-tests-0123';
const INGEST = 'ingest-token-for-openapi-tests-01';
const doc = openApiDocument();
const paths = doc.paths as Record<string, Record<string, Json>>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const operations = Object.entries(paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => ({ path, method: m, op: item[m] as Json })));

describe('the OpenAPI document', () => {
  it("passes Redocly's recommended ruleset with no error", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: '/openapi.json', config });
    const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
    expect(errors).toEqual([]);
    // Warnings that remain are deliberate: health, readiness, metrics and this document have no 4xx answer.
    const warnings = problems.filter((p) => p.severity === 'warn').map((p) => `${p.ruleId} ${p.location[0]?.pointer ?? ''}`);
    expect(warnings.every((w) => w.startsWith('operation-4xx-response'))).toBe(true);
    expect(warnings.length).toBeLessThanOrEqual(4);
  });

  it('gives every operation a unique operationId, declared security and a server to call', () => {
    const ids = operations.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations) expect(Array.isArray(op.security), `${method} ${path}`).toBe(true);
    expect(doc.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });
});

/** Validates response bodies against the document's schema for their operation, status and media type. */
class ResponseChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  /** (method path status) seen, to check that the run covered every operation. */
  readonly seen = new Set<string>();

  constructor() {
    addFormats.default(this.ajv);
    this.ajv.addSchema(doc, 'openapi.json');
  }

  async check(res: Response, method: string, template: string): Promise<unknown> {
    const op = paths[template]?.[method];
    expect(op, `${method} ${template} is not in the document`).toBeDefined();
    const responses = op!.responses as Record<string, Json>;
    const status = String(res.status);
    expect(Object.keys(responses), `${method.toUpperCase()} ${template} answered ${status}, which the document does not list`).toContain(status);
    this.seen.add(`${method} ${template}`);
    let declared = responses[status]!;
    if (typeof declared.$ref === 'string') declared = (doc.components as { responses: Record<string, Json> }).responses[declared.$ref.split('/').pop()!]!;
    const content = declared.content as Record<string, Json> | undefined;
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (!content) {
      expect(await res.text(), `${method} ${template} ${status} has no documented body`).toBe('');
      return undefined;
    }
    expect(Object.keys(content), `${method} ${template} ${status}: media type ${type}`).toContain(type);
    const text = await res.text();
    if (!type.endsWith('json')) return text;
    const body = JSON.parse(text) as unknown;
    const validate = this.ajv.compile({
      $ref: `openapi.json#${pointerTo(template, method, status, declared === responses[status] ? undefined : String(responses[status]!.$ref), type)}`,
    });
    const ok = validate(body);
    expect(
      ok ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`),
      `${method.toUpperCase()} ${template} ${status}`,
    ).toEqual([]);
    return body;
  }
}

const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
function pointerTo(template: string, method: string, status: string, responseRef: string | undefined, type: string): string {
  const base = responseRef ? responseRef.slice(1) : `/paths/${escape(template)}/${method}/responses/${status}`;
  return `${base}/content/${escape(type)}/schema`;
}

describe('every response of a real kubevigil matches the document', () => {
  let kv: Running;
  const dir = mkdtempSync(join(tmpdir(), 'kv-openapi-'));
  const checker = new ResponseChecker();
  beforeAll(async () => {
    const config = loadConfig({
      KUBEVIGIL_PORT: '0',
      KUBEVIGIL_DATA_DIR: dir,
      KUBEVIGIL_API_TOKEN: API,
      KUBEVIGIL_API_READ_TOKEN: READ,
      KUBEVIGIL_INGEST_TOKEN: INGEST,
    });
    kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  });
  afterAll(async () => {
    await kv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token = API, ...rest } = init;
    return fetch(`${kv.url}${path}`, { ...rest, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(rest.headers ?? {}) } });
  };

  it('ingest: the receivers, their successes and their errors', async () => {
    for (const d of fourSourceAttack(SEED_SCENARIO)) {
      const res = await call(d.path, { method: 'POST', token: INGEST, body: d.body, headers: { 'content-type': d.contentType } });
      await checker.check(res, 'post', d.path);
    }
    // Falco: a batch with one alert that is not usable, reported in errors[].
    const shell = readFileSync(new URL('./fixtures/falco/frontend-attack.jsonl', import.meta.url), 'utf8').split('\n')[0]!;
    const falcoBatch = `[${shell},${JSON.stringify({ ...(JSON.parse(shell) as object), uuid: 'openapi-bad', priority: 'Loud' })}]`;
    await checker.check(
      await call('/ingest/falco', { method: 'POST', token: INGEST, body: falcoBatch, headers: { 'content-type': 'application/json' } }),
      'post',
      '/ingest/falco',
    );
    await kv.drained();
    for (const path of ['/ingest/k8s-audit', '/ingest/alertmanager', '/loki/api/v1/push', '/v1/traces', '/ingest/falco']) {
      await checker.check(await call(path, { method: 'POST', token: null, body: '{}', headers: { 'content-type': 'application/json' } }), 'post', path);
      await checker.check(await call(path, { method: 'POST', token: INGEST, body: '{"broken', headers: { 'content-type': 'application/json' } }), 'post', path);
      await checker.check(await call(path, { method: 'POST', token: INGEST, body: 'x', headers: { 'content-type': 'application/xml' } }), 'post', path);
    }
  });

  it('health, metrics, rules, signals and the document itself', async () => {
    await checker.check(await call('/healthz', { token: null }), 'get', '/healthz');
    await checker.check(await call('/readyz', { token: null }), 'get', '/readyz');
    const exposition = (await checker.check(await call('/metrics', { token: READ }), 'get', '/metrics')) as string;
    // Every family a whole process registers (receivers, bus, correlator, notifier) as Prometheus wants it.
    const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
    if (promtool) {
      const r = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
      expect(r.stdout + r.stderr).toBe('');
    }
    expect(exposition).toMatch(/^kubevigil_build_info\{version="[^"]+",nodejs_version="[^"]+"\} 1$/m);
    await checker.check(await call('/api/v1/openapi.json', { token: null }), 'get', '/api/v1/openapi.json');
    await checker.check(await call('/api/v1/rules', { token: READ }), 'get', '/api/v1/rules');
    await checker.check(await call('/api/v1/rules', { token: null }), 'get', '/api/v1/rules');
    await checker.check(await call('/api/v1/system', { token: READ }), 'get', '/api/v1/system');
    await checker.check(await call('/api/v1/system', { token: null }), 'get', '/api/v1/system');
    const signals = (await checker.check(await call('/api/v1/signals?limit=1000', { token: READ }), 'get', '/api/v1/signals')) as {
      items: { eventTime: string }[];
    };
    expect(signals.items.length).toBeGreaterThan(5);
    expect(signals.items[0]!.eventTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await checker.check(await call('/api/v1/signals?limit=0'), 'get', '/api/v1/signals');
    await checker.check(await call('/-/reload', { method: 'POST' }), 'post', '/-/reload');
    await checker.check(await call('/-/reload', { method: 'POST', token: READ }), 'post', '/-/reload');
    await checker.check(await call('/-/reload', { method: 'POST', token: null }), 'post', '/-/reload');
  });

  it('incidents: list, one, its signals, PATCH and their errors', async () => {
    const page = (await checker.check(await call('/api/v1/incidents?limit=1', { token: READ }), 'get', '/api/v1/incidents')) as {
      items: { id: string; firstSeen: string }[];
    };
    expect(page.items).toHaveLength(1);
    const id = page.items[0]!.id;
    expect(Date.parse(page.items[0]!.firstSeen)).toBeGreaterThan(0);
    await checker.check(await call('/api/v1/incidents?severity=urgent'), 'get', '/api/v1/incidents');
    await checker.check(await call('/api/v1/incidents', { token: 'not-a-token-not-a-token' }), 'get', '/api/v1/incidents');
    const one = (await checker.check(await call(`/api/v1/incidents/${id}`, { token: READ }), 'get', '/api/v1/incidents/{id}')) as {
      timeline: { time: string }[];
      lastSeen: string;
    };
    expect(one.timeline.at(-1)!.time <= one.lastSeen).toBe(true);
    await checker.check(await call('/api/v1/incidents/inc_00000000000000000000'), 'get', '/api/v1/incidents/{id}');
    await checker.check(await call(`/api/v1/incidents/${id}/signals?limit=10`), 'get', '/api/v1/incidents/{id}/signals');
    await checker.check(await call(`/api/v1/incidents/${id}/signals?limit=0`), 'get', '/api/v1/incidents/{id}/signals');
    await checker.check(await call('/api/v1/incidents/inc_00000000000000000000/signals'), 'get', '/api/v1/incidents/{id}/signals');
    const patch = (body: string, token = API) =>
      call(`/api/v1/incidents/${id}`, { method: 'PATCH', token, body, headers: { 'content-type': 'application/json' } });
    const acked = (await checker.check(await patch('{"status":"acknowledged","note":"on it","by":"sre"}'), 'patch', '/api/v1/incidents/{id}')) as {
      notes: { time: string }[];
    };
    expect(acked.notes[0]!.time).toMatch(/Z$/);
    await checker.check(await patch('{"status":"acknowledged"}'), 'patch', '/api/v1/incidents/{id}');
    await checker.check(await patch('{"status":"closed","extra":1}'), 'patch', '/api/v1/incidents/{id}');
    await checker.check(await patch('{"status":"resolved"}', READ), 'patch', '/api/v1/incidents/{id}');
    await checker.check(await patch('{"status":"resolved"}', 'not-a-token-not-a-token'), 'patch', '/api/v1/incidents/{id}');
    await checker.check(
      await call('/api/v1/incidents/inc_00000000000000000000', {
        method: 'PATCH',
        body: '{"status":"resolved"}',
        headers: { 'content-type': 'application/json' },
      }),
      'patch',
      '/api/v1/incidents/{id}',
    );
    await checker.check(await patch(JSON.stringify({ status: 'resolved', note: 'x'.repeat(70_000) })), 'patch', '/api/v1/incidents/{id}');
  });

  it('the event stream answers as documented', async () => {
    const res = await call('/api/v1/incidents/stream', { token: READ });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    checker.seen.add('get /api/v1/incidents/stream');
    await res.body!.cancel();
    await checker.check(await call('/api/v1/incidents/stream', { token: null }), 'get', '/api/v1/incidents/stream');
  });

  it('silences: create, list, one, expire, mark benign and their errors', async () => {
    const json = { 'content-type': 'application/json' };
    const silence = (over: Record<string, unknown> = {}) =>
      JSON.stringify({
        matchers: [{ name: 'actor', value: 'sa:ci/deployer', isRegex: false, isEqual: true }],
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'sre',
        comment: 'deploys',
        ...over,
      });
    const created = (await checker.check(await call('/api/v1/silences', { method: 'POST', body: silence(), headers: json }), 'post', '/api/v1/silences')) as {
      silenceID: string;
    };
    await checker.check(await call('/api/v1/silences', { method: 'POST', body: silence({ matchers: [] }), headers: json }), 'post', '/api/v1/silences');
    await checker.check(await call('/api/v1/silences', { method: 'POST', token: READ, body: silence(), headers: json }), 'post', '/api/v1/silences');
    await checker.check(await call('/api/v1/silences', { method: 'POST', token: null, body: silence(), headers: json }), 'post', '/api/v1/silences');
    await checker.check(await call('/api/v1/silences', { token: READ }), 'get', '/api/v1/silences');
    await checker.check(await call('/api/v1/silences?state=active'), 'get', '/api/v1/silences');
    await checker.check(await call(`/api/v1/silences/${created.silenceID}`, { token: READ }), 'get', '/api/v1/silences/{id}');
    await checker.check(await call('/api/v1/silences/nope'), 'get', '/api/v1/silences/{id}');
    await checker.check(await call(`/api/v1/silences/${created.silenceID}`, { method: 'DELETE', token: READ }), 'delete', '/api/v1/silences/{id}');
    await checker.check(await call(`/api/v1/silences/${created.silenceID}`, { method: 'DELETE' }), 'delete', '/api/v1/silences/{id}');
    await checker.check(await call('/api/v1/silences/nope', { method: 'DELETE' }), 'delete', '/api/v1/silences/{id}');
    const page = (await (await call('/api/v1/incidents?limit=1')).json()) as { items: { id: string }[] };
    const benign = (id: string, body: string, token = API) => call(`/api/v1/incidents/${id}/benign`, { method: 'POST', token, body, headers: json });
    await checker.check(await benign(page.items[0]!.id, '{"duration":"1d"}'), 'post', '/api/v1/incidents/{id}/benign');
    await checker.check(await benign(page.items[0]!.id, '{"duration":"forever"}'), 'post', '/api/v1/incidents/{id}/benign');
    await checker.check(await benign(page.items[0]!.id, '{}', READ), 'post', '/api/v1/incidents/{id}/benign');
    await checker.check(await benign('inc_00000000000000000000', '{}'), 'post', '/api/v1/incidents/{id}/benign');
  });

  it('Slack interactions: 404 naming the setting while the signing secret is unset', async () => {
    const res = await call('/slack/interactions', {
      method: 'POST',
      token: null,
      body: 'payload=%7B%7D',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const body = (await checker.check(res, 'post', '/slack/interactions')) as { detail: string };
    expect(body.detail).toContain('KUBEVIGIL_SLACK_SIGNING_SECRET');
  });

  it('covered every operation of the document', () => {
    expect([...checker.seen].sort()).toEqual(operations.map((o) => `${o.method} ${o.path}`).sort());
  });
});
