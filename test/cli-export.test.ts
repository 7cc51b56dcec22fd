/**
 * `kubevigil export` (issue #15): incidents and/or signals of a time range from the store in the
 * data directory, as NDJSON on stdout, shaped as the API sends them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Incident as IncidentSchema, Signal as SignalSchema } from '../services/api/schemas.js';
import { run } from '../services/cli/program.js';
import { openSqliteStore } from '../services/store/sqlite.js';
import { makeIncident, makeSignal, T0 } from '../services/store/store.contract.js';

const HOUR = 3_600_000;
// API-shaped ids: inc_ and 20 hex digits.
const [BEFORE, INSIDE, ACROSS, AFTER] = ['inc_b0000000000000000001', 'inc_1000000000000000000a', 'inc_a0000000000000000002', 'inc_af000000000000000003'];
const iso = (ms: number) => new Date(ms).toISOString();
const dir = mkdtempSync(join(tmpdir(), 'kv-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const store = openSqliteStore(join(dir, 'kubevigil.db'));
  await store.upsert(
    [
      makeIncident(BEFORE, { firstSeen: T0 - 10 * HOUR, lastSeen: T0 - 9 * HOUR, status: 'resolved', resolvedAt: T0 - 8 * HOUR }),
      makeIncident(INSIDE, { firstSeen: T0 - 2 * HOUR, lastSeen: T0 - HOUR }),
      makeIncident(ACROSS, { firstSeen: T0 - 4 * HOUR, lastSeen: T0 + 2 * HOUR }),
      makeIncident(AFTER, { firstSeen: T0 + 5 * HOUR, lastSeen: T0 + 6 * HOUR }),
    ],
    [
      { incidentId: BEFORE, signal: makeSignal('a-1', T0 - 10 * HOUR) },
      { incidentId: INSIDE, signal: makeSignal('b-1', T0 - 2 * HOUR) },
      { incidentId: INSIDE, signal: makeSignal('b-2', T0 - HOUR) },
      { incidentId: ACROSS, signal: makeSignal('c-1', T0 - 4 * HOUR) },
      { incidentId: ACROSS, signal: makeSignal('c-2', T0 + HOUR) },
      { incidentId: AFTER, signal: makeSignal('d-1', T0 + 5 * HOUR) },
    ],
  );
  await store.close();
});

async function kubevigil(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (l) => out.push(l), err: (l) => err.push(l), env, stdoutIsTTY: false, stderrIsTTY: false });
  return { code, records: out.map((l) => JSON.parse(l) as { type: string; id: string; incidentId?: string; eventTime?: string }), err };
}

describe('kubevigil export', () => {
  const range = ['--since', iso(T0 - 3 * HOUR), '--until', iso(T0 + 3 * HOUR), '--data-dir', dir];

  it('writes the incidents active in the range and the signals whose event time is in it, as the API sends them', async () => {
    const r = await kubevigil(['export', ...range]);
    expect(r.code).toBe(0);
    const incidents = r.records.filter((x) => x.type === 'incident');
    const signals = r.records.filter((x) => x.type === 'signal');
    expect(incidents.map((i) => i.id).sort()).toEqual([ACROSS, INSIDE].sort());
    const pairs = (xs: { incidentId?: string; eventTime?: string }[]) => xs.map((x) => `${x.incidentId} ${x.eventTime}`).sort();
    expect(pairs(signals)).toEqual(
      pairs([
        { incidentId: ACROSS, eventTime: iso(T0 + HOUR) },
        { incidentId: INSIDE, eventTime: iso(T0 - 2 * HOUR) },
        { incidentId: INSIDE, eventTime: iso(T0 - HOUR) },
      ]),
    );
    for (const { type: _t, ...i } of incidents) expect(IncidentSchema.safeParse(i).success).toBe(true);
    for (const { type: _t, incidentId: _i, ...s } of signals) expect(SignalSchema.safeParse(s).success).toBe(true);
    expect(r.err).toEqual(['exported 2 incident(s) and 3 signal(s)']);
  });

  it('--what incidents or signals writes only those; KUBEVIGIL_DATA_DIR names the store', async () => {
    const only = (await kubevigil(['export', ...range.slice(0, 4), '--what', 'incidents'], { KUBEVIGIL_DATA_DIR: dir })).records;
    expect(new Set(only.map((x) => x.type))).toEqual(new Set(['incident']));
    const sigs = (await kubevigil(['export', ...range, '--what', 'signals'])).records;
    expect(sigs.map((x) => x.type)).toEqual(['signal', 'signal', 'signal']);
  });

  it('says what is wrong with the command line or the data directory', async () => {
    expect((await kubevigil(['export', '--until', iso(T0), '--data-dir', dir])).code).toBe(2);
    const bad = await kubevigil(['export', '--since', 'yesterday', '--data-dir', dir]);
    expect([bad.code, bad.err[0]]).toEqual([2, expect.stringContaining('--since yesterday is not a time')]);
    expect((await kubevigil(['export', '--since', iso(T0), '--until', iso(T0 - HOUR), '--data-dir', dir])).code).toBe(2);
    expect((await kubevigil(['export', ...range, '--what', 'alerts'])).code).toBe(2);
    const missing = await kubevigil(['export', '--since', '7d', '--data-dir', join(dir, 'nothing-here')]);
    expect([missing.code, missing.err[0]]).toEqual([1, expect.stringMatching(/^kubevigil: no store at .*nothing-here\/kubevigil\.db; give --data-dir/)]);
  });

  it('runs as a command, writing NDJSON to stdout', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [new URL('../bin/kubevigil.js', import.meta.url).pathname, 'export', ...range], {
      env: { ...process.env },
    });
    expect(stdout.trim().split('\n')).toHaveLength(5);
  });
});
