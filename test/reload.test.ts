/**
 * Rule reload (issue #15), as Prometheus reloads: POST /-/reload and SIGHUP load and validate the
 * rules first; a valid set replaces the running one without losing open correlation windows, a
 * broken one is refused (400 listing the problems, gauge 0) and the running rules stay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Incident } from '../correlator/incident.js';
import type { Signal } from '../correlator/signal.js';
import { ReloadProblem } from '../services/api/schemas.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const API = 'api-token-for-reload-tests-0123456';
const READ = 'read-token-for-reload-tests-012345';
const auth = (token = API) => ({ authorization: `Bearer ${token}` });

const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

const PROBE_RULE = `
  - id: lab-configmap-probe
    title: Lab identity read a probe configmap
    description: >
      Test rule for reloads. False positives: none, it matches one test identity only.
    source: k8s-audit
    severity: low
    kind: rbac.permission_enumeration
    mitre: [T1613]
    output: "{actor.name} read configmap {objectRef.name}"
    condition:
      all:
        - { field: objectRef.resource, eq: configmaps }
        - { field: verb, eq: get }
        - { field: user.username, eq: "system:serviceaccount:lab:mallory" }
`;
const SECRET_RULE = `
  - id: lab-secret-probe
    title: Lab identity read a secret
    description: >
      Test rule added by a reload. False positives: none, it matches one test identity only.
    source: k8s-audit
    severity: low
    kind: secret.read
    mitre: [T1552.007]
    output: "{actor.name} read secret {objectRef.name}"
    condition:
      all:
        - { field: objectRef.resource, eq: secrets }
        - { field: verb, eq: get }
        - { field: user.username, eq: "system:serviceaccount:lab:mallory" }
`;
const TWO_PROBES = `
  - id: lab-two-probes
    title: Two probe configmap reads
    description: >
      Test correlation for reloads. False positives: none, it counts one test rule.
    type: event_count
    rules: [lab-configmap-probe]
    condition: { gte: 2 }
    timespan: 30m
    severity: high
    mitre: [T1613]
`;
// Put before lab-two-probes after the reload, so that its windows move to another position.
const OTHER_CORRELATION = `
  - id: lab-aaa-secret-burst
    title: Many lab secret reads
    description: >
      Test correlation added by a reload. False positives: none, it counts one test rule.
    type: event_count
    rules: [lab-secret-probe]
    condition: { gte: 50 }
    timespan: 10m
    severity: high
    mitre: [T1552.007]
`;

function writeRules(dir: string, detections: string[], correlations: string[]): void {
  writeFileSync(join(dir, 'lab.yaml'), `rules:${detections.join('')}`);
  writeFileSync(join(dir, 'lab-correlations.yaml'), `correlations:${correlations.join('')}`);
}

let seq = 0;
/** One audit event of the lab identity reading a configmap or a secret in namespace lab. */
function event(resource: 'configmaps' | 'secrets', name: string): Record<string, unknown> {
  const t = new Date().toISOString();
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/lab/${resource}/${name}`,
    verb: 'get',
    user: { username: 'system:serviceaccount:lab:mallory', groups: ['system:serviceaccounts', 'system:serviceaccounts:lab', 'system:authenticated'] },
    sourceIPs: ['10.0.0.9'],
    userAgent: 'lab-client/1.0',
    objectRef: { resource, namespace: 'lab', name, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: t,
    stageTimestamp: t,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
  };
}

async function send(kv: Running, ...events: Record<string, unknown>[]): Promise<void> {
  const res = await fetch(`${kv.url}/ingest/k8s-audit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(events) });
  expect(res.status).toBe(200);
  await kv.drained();
  await kv.drained();
}

const signalsOf = async (kv: Running, rule: string) =>
  ((await (await fetch(`${kv.url}/api/v1/signals?limit=1000`, { headers: auth() })).json()) as { items: Signal[] }).items.filter((s) => s.rule.id === rule);

const incidents = async (kv: Running) => ((await (await fetch(`${kv.url}/api/v1/incidents`, { headers: auth() })).json()) as { items: Incident[] }).items;

async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { headers: auth() })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

async function start(rulesDir: string): Promise<Running> {
  const config = loadConfig({
    KUBEVIGIL_PORT: '0',
    KUBEVIGIL_DATA_DIR: tempDir('kv-reload-data-'),
    KUBEVIGIL_INVENTORY: 'off',
    KUBEVIGIL_RULES_DIR: rulesDir,
    KUBEVIGIL_API_TOKEN: API,
    KUBEVIGIL_API_READ_TOKEN: READ,
  });
  const kv = await serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
  cleanups.push(() => kv.stop());
  return kv;
}

describe('POST /-/reload', () => {
  it('loads a new rule and keeps an open correlation window across the reload', async () => {
    const rules = tempDir('kv-reload-rules-');
    writeRules(rules, [PROBE_RULE], [TWO_PROBES]);
    const kv = await start(rules);

    // Before: one probe (half of lab-two-probes), and a secret read no rule of ours matches yet.
    await send(kv, event('configmaps', 'probe-1'), event('secrets', 'db-1'));
    expect(await signalsOf(kv, 'lab-configmap-probe')).toHaveLength(1);
    expect(await signalsOf(kv, 'lab-secret-probe')).toHaveLength(0);
    expect((await incidents(kv)).filter((i) => i.correlations.some((c) => c.ruleId === 'lab-two-probes'))).toEqual([]);

    writeRules(rules, [PROBE_RULE, SECRET_RULE], [OTHER_CORRELATION, TWO_PROBES]);
    const res = await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: auth() });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'reloaded', reloaded: ['rules'] });
    const listed = (await (await fetch(`${kv.url}/api/v1/rules`, { headers: auth() })).json()) as { items: { id: string }[]; correlations: { id: string }[] };
    expect(listed.items.map((r) => r.id)).toContain('lab-secret-probe');
    expect(listed.correlations.map((c) => c.id)).toContain('lab-aaa-secret-burst');

    // After: the new rule fires, and the second probe completes the window opened before the reload.
    await send(kv, event('secrets', 'db-2'), event('configmaps', 'probe-2'));
    expect((await signalsOf(kv, 'lab-secret-probe')).map((s) => s.target.name)).toEqual(['db-2']);
    const fired = (await incidents(kv)).filter((i) => i.correlations.some((c) => c.ruleId === 'lab-two-probes'));
    expect(fired).toHaveLength(1);
    const match = fired[0]!.correlations.find((c) => c.ruleId === 'lab-two-probes')!;
    expect(match.signalIds).toHaveLength(2);
    expect(await metric(kv.url, 'kubevigil_config_last_reload_successful')).toBe(1);
  });

  it('refuses a broken rule file with 400 listing the problem, and keeps the running rules', async () => {
    const rules = tempDir('kv-reload-rules-');
    writeRules(rules, [PROBE_RULE], [TWO_PROBES]);
    const kv = await start(rules);
    const before = await metric(kv.url, 'kubevigil_config_last_reload_success_timestamp_seconds');
    expect(before).toBeGreaterThan(0);

    writeFileSync(join(rules, 'lab.yaml'), `rules:${PROBE_RULE.replace('severity: low', 'severity: urgent')}${SECRET_RULE}`);
    const res = await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: auth() });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { detail: string; problems: { reloadable: string; file: string; item?: string; field: string }[] };
    expect(body.problems).toEqual([
      expect.objectContaining({ reloadable: 'rules', file: join(rules, 'lab.yaml'), item: 'lab-configmap-probe', field: 'severity' }),
    ]);
    expect(body.detail).toContain('the running configuration stays');
    // As the OpenAPI document describes it.
    expect(ReloadProblem.safeParse(body).success).toBe(true);
    expect(await metric(kv.url, 'kubevigil_config_last_reload_successful')).toBe(0);
    expect(await metric(kv.url, 'kubevigil_config_last_reload_success_timestamp_seconds')).toBe(before);

    // The old rules still run: the probe rule fires, the secret rule of the refused file does not.
    await send(kv, event('configmaps', 'probe-1'), event('secrets', 'db-1'));
    expect(await signalsOf(kv, 'lab-configmap-probe')).toHaveLength(1);
    expect(await signalsOf(kv, 'lab-secret-probe')).toHaveLength(0);
  });

  it('takes the API write token only', async () => {
    const rules = tempDir('kv-reload-rules-');
    writeRules(rules, [PROBE_RULE], [TWO_PROBES]);
    const kv = await start(rules);
    expect((await fetch(`${kv.url}/-/reload`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: auth('not-the-token-at-all-0123456789') })).status).toBe(401);
    expect((await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: auth(READ) })).status).toBe(403);
    expect((await fetch(`${kv.url}/-/reload`, { method: 'POST', headers: auth(API) })).status).toBe(200);
  });
});

// Spawns the built command (`npm run build` first), as a pod would run it.
const BIN = join(ROOT, 'bin/kubevigil.js');
describe.skipIf(!existsSync(join(ROOT, 'dist/services/cli/main.js')))('SIGHUP', () => {
  it('reloads the rules of the process it is sent to', async () => {
    const rules = tempDir('kv-reload-rules-');
    writeRules(rules, [PROBE_RULE], [TWO_PROBES]);
    const child: ChildProcess = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        PATH: process.env.PATH,
        KUBEVIGIL_PORT: '0',
        KUBEVIGIL_DATA_DIR: tempDir('kv-reload-data-'),
        KUBEVIGIL_INVENTORY: 'off',
        KUBEVIGIL_RULES_DIR: rules,
        KUBEVIGIL_API_TOKEN: API,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    const lines: Record<string, unknown>[] = [];
    const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(line);
      for (const w of waiters.filter((x) => x.msg === line.msg)) w.resolve(line);
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const logged = (msg: string) =>
      new Promise<Record<string, unknown>>((r, reject) => {
        waiters.push({ msg, resolve: r });
        void exited.then(() => setImmediate(() => reject(new Error(`kubevigil exited without logging "${msg}"\n${stderr}`))));
      });
    const listening = await logged('kubevigil listening');
    const url = String(listening.url);
    const rulesOf = async () =>
      ((await (await fetch(`${url}/api/v1/rules`, { headers: auth() })).json()) as { items: { id: string }[] }).items.map((r) => r.id);
    expect(await rulesOf()).not.toContain('lab-secret-probe');
    const before = await metric(url, 'kubevigil_config_last_reload_success_timestamp_seconds');

    writeRules(rules, [PROBE_RULE, SECRET_RULE], [TWO_PROBES]);
    const reloaded = logged('configuration reloaded');
    child.kill('SIGHUP');
    expect((await reloaded).trigger).toBe('SIGHUP');
    expect(await rulesOf()).toContain('lab-secret-probe');
    expect(await metric(url, 'kubevigil_config_last_reload_successful')).toBe(1);
    expect(await metric(url, 'kubevigil_config_last_reload_success_timestamp_seconds')).toBeGreaterThanOrEqual(before!);

    // A broken file on the next SIGHUP: logged, gauge 0, the process keeps serving its rules.
    writeFileSync(join(rules, 'lab.yaml'), 'rules: [');
    const failed = logged('configuration reload failed; the running configuration stays');
    child.kill('SIGHUP');
    expect(String((await failed).problems)).toContain('lab.yaml');
    expect(await metric(url, 'kubevigil_config_last_reload_successful')).toBe(0);
    expect(await rulesOf()).toContain('lab-secret-probe');
  });
});
