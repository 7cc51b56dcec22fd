/**
 * Silences from a file (KUBEVIGIL_SILENCES_FILE, issue #15): loaded at start (a broken file refuses
 * the start, naming the file, the entry and the field), listed by the API with source "file",
 * applied to the correlator like API silences, reloaded by POST /-/reload (validated first; a broken
 * file keeps the old set and is reported), and not expirable through the API (409 naming the file).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import type { Incident } from '../correlator/incident.js';
import { GettableSilence, SilenceList } from '../services/api/schemas.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { serve, type Running } from '../services/main.js';
import { loadSilencesFile, SilencesFileError, UNTIL_REMOVED } from '../services/silences-file.js';

const API = 'api-token-for-silence-file-tests-0123';
const INGEST = 'ingest-token-for-silence-file-test-01';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'kv-silence-file-'));
  dirs.push(d);
  return d;
};

const ID = '3f0c5e0a-8d1b-4c52-9a77-2b1f6c0d9e41';
const FRONTEND = `
- id: ${ID}
  matchers:
    - { name: actor, value: "sa:frontend/frontend", isRegex: false }
  comment: the frontend's CI deploys every hour
`;
const OTHER = `
- matchers:
    - { name: actor, value: "sa:ci/other", isRegex: false }
  endsAt: "2999-01-01T00:00:00Z"
  createdBy: bob
  comment: another one
`;

function start(dir: string, file: string): Promise<Running> {
  const config = loadConfig({
    KUBEVIGIL_PORT: '0',
    KUBEVIGIL_DATA_DIR: dir,
    KUBEVIGIL_API_TOKEN: API,
    KUBEVIGIL_INGEST_TOKEN: INGEST,
    KUBEVIGIL_SILENCES_FILE: file,
  });
  return serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
}

const call = (kv: Running, path: string, init: RequestInit = {}) =>
  fetch(`${kv.url}${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${API}` } });
const list = async (kv: Running) => SilenceList.parse(await (await call(kv, '/api/v1/silences')).json()).items;

describe('loadSilencesFile', () => {
  it('reads YAML or JSON, derives stable ids, and defaults createdBy and endsAt', () => {
    const dir = tempDir();
    const file = join(dir, 's.yaml');
    writeFileSync(file, FRONTEND + OTHER);
    const a = loadSilencesFile(file);
    expect(a.problems).toEqual([]);
    expect(a.silences.map((s) => s.id)[0]).toBe(ID);
    expect(a.silences[0]).toMatchObject({ createdBy: `file:${file}`, endsAt: UNTIL_REMOVED, startsAt: 0, file });
    expect(a.silences[1]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(loadSilencesFile(file).silences[1]!.id).toBe(a.silences[1]!.id);
    const json = join(dir, 's.json');
    writeFileSync(json, JSON.stringify([{ matchers: [{ name: 'actor', value: 'x', isRegex: false }], comment: 'c' }]));
    expect(loadSilencesFile(json).silences).toHaveLength(1);
  });

  it('names the file, the entry index and the field of every problem', () => {
    const file = join(tempDir(), 's.yaml');
    writeFileSync(file, `${FRONTEND}\n- matchers: [{ name: actor, value: "(", isRegex: true }]\n  comment: c\n- id: nope\n  matchers: []\n  comment: c\n`);
    const { silences, problems } = loadSilencesFile(file);
    expect(silences).toEqual([]);
    expect(problems).toEqual([
      expect.objectContaining({ file, item: 'silences[1]', field: 'matchers.0.value' }),
      expect.objectContaining({ file, item: 'silences[2]', field: 'id' }),
    ]);
  });
});

describe('KUBEVIGIL_SILENCES_FILE in a running kubevigil', () => {
  it('refuses to start on a broken file, naming the file, the entry and the field', async () => {
    const dir = tempDir();
    const file = join(dir, 'silences.yaml');
    writeFileSync(file, `- matchers: [{ name: actor, value: x, isRegex: false }]\n  endsAt: tomorrow\n  comment: c\n`);
    const err = await start(dir, file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SilencesFileError);
    expect((err as Error).message).toContain(`${file}: silences[0]: endsAt:`);
  });

  it("silences an actor's signals, lists file silences, refuses DELETE, reloads, and keeps the old set on a broken file", async () => {
    const dir = tempDir();
    const file = join(dir, 'silences.yaml');
    writeFileSync(file, FRONTEND);
    const kv = await start(dir, file);
    try {
      const items = await list(kv);
      expect(items).toEqual([expect.objectContaining({ id: ID, source: 'file', file, status: { state: 'active' } })]);
      GettableSilence.parse(await (await call(kv, `/api/v1/silences/${ID}`)).json());

      // Applies to the correlator like an API silence.
      const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
        body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: attackEvents(SEED_SCENARIO) }),
      });
      expect(res.status).toBe(200);
      await kv.drained();
      const page = (await (await call(kv, '/api/v1/incidents?status=open,acknowledged,resolved')).json()) as { items: Incident[] };
      expect(page.items).toEqual([]);
      const metrics = await (await call(kv, '/metrics')).text();
      expect(Number(new RegExp(`kubevigil_silenced_signals_total\\{silence="${ID}"\\} (\\d+)`).exec(metrics)?.[1])).toBeGreaterThan(10);

      // Not expirable through the API.
      const del = await call(kv, `/api/v1/silences/${ID}`, { method: 'DELETE' });
      expect(del.status).toBe(409);
      expect(((await del.json()) as { detail: string }).detail).toContain(file);

      // An edit plus POST /-/reload changes the set.
      writeFileSync(file, OTHER);
      const ok = await call(kv, '/-/reload', { method: 'POST' });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { reloaded: string[] }).reloaded).toContain('silences');
      const after = await list(kv);
      expect(after).toEqual([expect.objectContaining({ source: 'file', createdBy: 'bob', comment: 'another one' })]);

      // A broken file: 400 naming the problem, the old set stays, the gauge says so.
      writeFileSync(file, `- matchers: [{ name: nope, value: x, isRegex: false }]\n  comment: c\n`);
      const bad = await call(kv, '/-/reload', { method: 'POST' });
      expect(bad.status).toBe(400);
      const body = (await bad.json()) as { problems: { reloadable: string; file: string; item: string; field: string }[] };
      expect(body.problems).toEqual([expect.objectContaining({ reloadable: 'silences', file, item: 'silences[0]', field: 'matchers.0.name' })]);
      expect(await list(kv)).toEqual(after);
      expect(await (await call(kv, '/metrics')).text()).toMatch(/kubevigil_config_last_reload_successful 0/);
    } finally {
      await kv.stop();
    }
  });
});
