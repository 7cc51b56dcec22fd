/**
 * Silences through the API of an embedded kubevigil: create, list, get and expire with the write
 * token (the read token only reads), validation that names the field and the fix, and end to end
 * through the audit webhook: a silenced actor's attack opens no incident but its signals are kept
 * and counted; a partly silenced attack's incident lists what was hidden; "mark benign".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackEvents, SEED_SCENARIO } from '../connectors/k8s-audit/scenario.js';
import type { AuditEvent } from '../connectors/k8s-audit/parse.js';
import type { Incident } from '../correlator/incident.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { run } from '../services/cli/program.js';
import { serve, type Running } from '../services/main.js';

const API = 'api-token-for-silence-tests-01234567';
const READ = 'read-token-for-silence-tests-0123456';
const INGEST = 'ingest-token-for-silence-tests-01234';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-silence-'));
  dirs.push(dir);
  const config = loadConfig({
    KUBEVIGIL_PORT: '0',
    KUBEVIGIL_DATA_DIR: dir,
    KUBEVIGIL_API_TOKEN: API,
    KUBEVIGIL_API_READ_TOKEN: READ,
    KUBEVIGIL_INGEST_TOKEN: INGEST,
  });
  return serve(config, createLogger('silent'), { processMetrics: false, sweepSchedule: false });
}

const call = (kv: Running, path: string, init: RequestInit & { token?: string | null } = {}) => {
  const token = init.token === undefined ? API : init.token;
  return fetch(`${kv.url}${path}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
};
const post = (kv: Running, path: string, body: unknown, token?: string | null) => call(kv, path, { method: 'POST', body: JSON.stringify(body), token });

const hour = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();
const actorSilence = (actor: string, extra: Record<string, unknown> = {}) => ({
  matchers: [{ name: 'actor', value: actor, isRegex: false, isEqual: true }],
  startsAt: hour(-1),
  endsAt: hour(1),
  createdBy: 'alice',
  comment: 'CI deploys every hour',
  ...extra,
});

async function send(kv: Running, events: AuditEvent[]): Promise<void> {
  const res = await fetch(`${kv.url}/ingest/k8s-audit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items: events }),
  });
  expect(res.status).toBe(200);
  await kv.drained();
}

async function incidents(kv: Running): Promise<Incident[]> {
  const page = (await (await call(kv, '/api/v1/incidents?status=open,acknowledged,resolved')).json()) as { items: { id: string }[] };
  return Promise.all(page.items.map(async (i) => (await (await call(kv, `/api/v1/incidents/${i.id}`)).json()) as Incident));
}

describe('the silence API', () => {
  let kv: Running;
  beforeAll(async () => {
    kv = await start();
    return () => kv.stop();
  });

  it('creates, lists, gets and expires silences, with their state', async () => {
    const res = await post(kv, '/api/v1/silences', actorSilence('sa:ci/deployer'));
    expect(res.status).toBe(200);
    const { silenceID } = (await res.json()) as { silenceID: string };
    expect(silenceID).toMatch(/^[0-9a-f-]{36}$/);
    const pending = (await (await post(kv, '/api/v1/silences', actorSilence('sa:ci/later', { startsAt: hour(1), endsAt: hour(2) }))).json()) as {
      silenceID: string;
    };

    const got = (await (await call(kv, `/api/v1/silences/${silenceID}`, { token: READ })).json()) as Record<string, unknown>;
    expect(got).toMatchObject({
      id: silenceID,
      status: { state: 'active' },
      matchers: [{ name: 'actor', value: 'sa:ci/deployer', isRegex: false, isEqual: true }],
      createdBy: 'alice',
      comment: 'CI deploys every hour',
    });
    const list = (await (await call(kv, '/api/v1/silences', { token: READ })).json()) as { items: { id: string; status: { state: string } }[] };
    expect(list.items.map((s) => [s.id, s.status.state])).toEqual([
      [silenceID, 'active'],
      [pending.silenceID, 'pending'],
    ]);

    const expired = await call(kv, `/api/v1/silences/${silenceID}`, { method: 'DELETE' });
    expect(expired.status).toBe(200);
    expect(await expired.json()).toMatchObject({ id: silenceID, status: { state: 'expired' } });
    // Kept for history, listed last.
    const after = (await (await call(kv, '/api/v1/silences')).json()) as { items: { id: string; status: { state: string } }[] };
    expect(after.items.map((s) => [s.id, s.status.state])).toEqual([
      [pending.silenceID, 'pending'],
      [silenceID, 'expired'],
    ]);
    expect((await call(kv, '/api/v1/silences/0b7f1d2e-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call(kv, '/api/v1/silences/nope', { method: 'DELETE' })).status).toBe(404);
  });

  it('needs the write token to create and expire; the read token only reads', async () => {
    expect((await post(kv, '/api/v1/silences', actorSilence('sa:a/b'), null)).status).toBe(401);
    const forbidden = await post(kv, '/api/v1/silences', actorSilence('sa:a/b'), READ);
    expect(forbidden.status).toBe(403);
    const { silenceID } = (await (await post(kv, '/api/v1/silences', actorSilence('sa:a/b'))).json()) as { silenceID: string };
    expect((await call(kv, `/api/v1/silences/${silenceID}`, { method: 'DELETE', token: READ })).status).toBe(403);
    expect((await call(kv, `/api/v1/silences/${silenceID}`, { method: 'DELETE', token: null })).status).toBe(401);
    expect((await call(kv, '/api/v1/silences', { token: null })).status).toBe(401);
    expect((await call(kv, '/api/v1/silences', { token: READ })).status).toBe(200);
  });

  it('refuses bad silences with a 400 that names the field and the fix', async () => {
    const bad = async (body: unknown, ...expected: RegExp[]) => {
      const res = await post(kv, '/api/v1/silences', body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const { detail } = (await res.json()) as { detail: string };
      for (const e of expected) expect(detail).toMatch(e);
    };
    await bad(actorSilence('x', { matchers: [{ name: 'actor', value: 'sa:(ci', isRegex: true, isEqual: true }] }), /matchers\.0\.value/, /regular expression/);
    await bad(actorSilence('x', { startsAt: hour(2), endsAt: hour(1) }), /endsAt/, /after startsAt/);
    await bad(actorSilence('x', { matchers: [] }), /matchers/, /at least one matcher/);
    await bad(actorSilence('x', { matchers: [{ name: 'actor', value: '.*', isRegex: true, isEqual: true }] }), /matchers/, /every signal/);
    await bad(actorSilence('x', { matchers: [{ name: 'user', value: 'x', isRegex: false, isEqual: true }] }), /matchers\.0\.name/, /attributes\.user/);
    await bad(
      actorSilence('x', { matchers: Array.from({ length: 17 }, () => ({ name: 'actor', value: 'x', isRegex: false })) }),
      /matchers/,
      /at most 16 matchers/,
    );
    await bad(actorSilence('x', { comment: 'x'.repeat(1001) }), /comment/, /at most 1000 characters/);
    await bad(actorSilence('x', { endsAt: 'tomorrow' }), /endsAt/, /RFC 3339/);
    await bad(actorSilence('x', { extra: 1 }), /unknown field\(s\) extra/);
    await bad(actorSilence('x', { matchers: 'actor=x' }), /matchers/, /list of matchers/);
    await bad(actorSilence('x', { matchers: [null] }), /matchers\.0/);
    await bad({}, /matchers/, /endsAt/, /createdBy/, /comment/);
    await bad([], /JSON object/);
    const invalidJson = await call(kv, '/api/v1/silences', { method: 'POST', body: '{' });
    expect(invalidJson.status).toBe(400);
  });
});

describe('silences end to end through the audit webhook', () => {
  it("opens no incident for a silenced actor's attack, and still keeps and counts its signals", async () => {
    const kv = await start();
    try {
      const { silenceID } = (await (await post(kv, '/api/v1/silences', actorSilence('sa:frontend/frontend'))).json()) as { silenceID: string };
      await send(kv, attackEvents(SEED_SCENARIO));
      expect(await incidents(kv)).toEqual([]);
      const signals = (await (await call(kv, '/api/v1/signals?actor=sa:frontend/frontend')).json()) as { items: unknown[] };
      expect(signals.items.length).toBeGreaterThan(10);
      const metrics = await (await call(kv, '/metrics')).text();
      const counted = new RegExp(`kubevigil_silenced_signals_total\\{silence="${silenceID}"\\} (\\d+)`).exec(metrics);
      expect(Number(counted?.[1])).toBe(signals.items.length);
    } finally {
      await kv.stop();
    }
  });

  it('lists on the incident the signals a silence hid, and marks an incident benign', async () => {
    const kv = await start();
    try {
      const body = actorSilence('sa:frontend/frontend', {
        matchers: [
          { name: 'actor', value: 'sa:frontend/.*', isRegex: true, isEqual: true },
          { name: 'rule', value: 'k8s-rbac-denied|k8s-admission-denied', isRegex: true, isEqual: true },
        ],
      });
      const { silenceID } = (await (await post(kv, '/api/v1/silences', body)).json()) as { silenceID: string };
      await send(kv, attackEvents(SEED_SCENARIO));
      const [inc, ...rest] = await incidents(kv);
      expect(rest).toEqual([]);
      expect(inc!.timeline.some((e) => e.ruleId === 'k8s-rbac-denied' || e.ruleId === 'k8s-admission-denied')).toBe(false);
      expect(inc!.silenced).toEqual([{ silenceId: silenceID, signalIds: expect.any(Array), count: 3 }]);
      const stored = (await (await call(kv, `/api/v1/incidents/${inc!.id}/signals`)).json()) as { items: { id: string; rule: { id: string } }[] };
      const hidden = stored.items.filter((s) => inc!.silenced![0]!.signalIds.includes(s.id));
      expect(hidden.map((s) => s.rule.id).sort()).toEqual(['k8s-admission-denied', 'k8s-rbac-denied', 'k8s-rbac-denied']);

      // Mark benign: a silence of the actor and the incident's rules, linked to it.
      expect((await post(kv, `/api/v1/incidents/${inc!.id}/benign`, {}, READ)).status).toBe(403);
      expect((await post(kv, `/api/v1/incidents/${inc!.id}/benign`, { duration: 'soon' })).status).toBe(400);
      expect((await post(kv, '/api/v1/incidents/inc_00000000000000000000/benign', {})).status).toBe(404);
      const res = await post(kv, `/api/v1/incidents/${inc!.id}/benign`, { duration: '2d', comment: 'pentest' });
      expect(res.status).toBe(200);
      const { silenceID: benign } = (await res.json()) as { silenceID: string };
      const s = (await (await call(kv, `/api/v1/silences/${benign}`)).json()) as {
        matchers: { name: string; value: string; isRegex: boolean }[];
        comment: string;
        startsAt: string;
        endsAt: string;
        status: { state: string };
      };
      expect(s.status.state).toBe('active');
      expect(s.matchers[0]).toEqual({ name: 'actor', value: 'sa:frontend/frontend', isRegex: false, isEqual: true });
      expect(s.matchers[1]).toMatchObject({ name: 'rule', isRegex: true });
      const rules = new Set(inc!.rules);
      for (const e of inc!.timeline) expect(rules.has(e.ruleId), e.ruleId).toBe(true);
      expect(new Set(s.matchers[1]!.value.split('|').map((r) => r.replace(/\\/g, '')))).toEqual(rules);
      expect(s.comment).toContain(inc!.id);
      expect(s.comment).toContain('pentest');
      expect(Date.parse(s.endsAt) - Date.parse(s.startsAt)).toBe(2 * 86_400_000);
    } finally {
      await kv.stop();
    }
  });
});

describe('kubevigil silence add|list|expire', () => {
  it('creates, lists and expires silences through the API, with the token from the environment', async () => {
    const kv = await start();
    try {
      const cli = async (args: string[], env: NodeJS.ProcessEnv = { KUBEVIGIL_API_TOKEN: API, KUBEVIGIL_URL: kv.url, USER: 'bob' }) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await run(args, { out: (l) => out.push(l), err: (l) => err.push(l), env, stdoutIsTTY: false, stderrIsTTY: false });
        return { code, out, err };
      };
      const added = await cli([
        'silence',
        'add',
        '--matcher',
        'actor=sa:ci/deployer',
        '--matcher',
        'rule=~"k8s-rbac-.*"',
        '--comment',
        'deploys',
        '--duration',
        '2h',
      ]);
      expect(added).toMatchObject({ code: 0, err: [] });
      const id = added.out[0]!;
      const s = (await (await call(kv, `/api/v1/silences/${id}`)).json()) as { matchers: unknown[]; createdBy: string; startsAt: string; endsAt: string };
      expect(s.matchers).toEqual([
        { name: 'actor', value: 'sa:ci/deployer', isRegex: false, isEqual: true },
        { name: 'rule', value: 'k8s-rbac-.*', isRegex: true, isEqual: true },
      ]);
      expect(s.createdBy).toBe('bob');
      expect(Date.parse(s.endsAt) - Date.parse(s.startsAt)).toBe(2 * 3_600_000);

      const listed = await cli(['silence', 'list']);
      expect(listed.code).toBe(0);
      expect(listed.out[1]).toMatch(new RegExp(`^${id} +active .*actor="sa:ci/deployer" rule=~"k8s-rbac-\\.\\*"  deploys$`));
      expect((await cli(['silence', 'expire', id])).out).toEqual([`expired ${id}`]);
      const json = await cli(['silence', 'list', '--format', 'json']);
      expect(JSON.parse(json.out[0]!)).toMatchObject({ id, status: { state: 'expired' } });

      // The server's 400 and a missing token are one line each, exit 1; a bad matcher is a usage error, exit 2.
      const refused = await cli(['silence', 'add', '--matcher', 'actor=~.*', '--comment', 'x']);
      expect(refused.code).toBe(1);
      expect(refused.err[0]).toMatch(/answered 400: matchers .*every signal/);
      const noToken = await cli(['silence', 'add', '--matcher', 'actor=x', '--comment', 'x'], { KUBEVIGIL_URL: kv.url });
      expect(noToken.code).toBe(1);
      expect(noToken.err[0]).toMatch(/answered 401.*KUBEVIGIL_API_TOKEN/);
      expect((await cli(['silence', 'add', '--matcher', 'actor', '--comment', 'x'])).code).toBe(2);
    } finally {
      await kv.stop();
    }
  });
});
