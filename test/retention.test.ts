/**
 * Retention (issue #15): KUBEVIGIL_RETENTION_SIGNALS / _INCIDENTS, the pruning job on an injected
 * clock over the memory and SQLite stores, giving the space back on disk, and kubevigil_store_bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../correlator/errors.js';
import { loadConfig } from '../services/config.js';
import { createLogger } from '../services/logging.js';
import { Retention } from '../services/retention.js';
import { MemoryStore } from '../services/store/memory.js';
import { openSqliteStore } from '../services/store/sqlite.js';
import { makeIncident, makeSignal, T0 } from '../services/store/store.contract.js';
import type { IncidentStore } from '../services/store/store.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'kv-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshFile = () => join(dir, `store-${++files}.db`);

function pragma(file: string, name: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return Number(Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0]);
  } finally {
    db.close();
  }
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const m = registry.getSingleMetric(name);
  if (!m) return undefined;
  const { values } = await m.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

/** A resolved incident with `n` signals of about 2 KB each, resolved at `resolvedAt`. */
async function fill(store: IncidentStore, id: string, resolvedAt: number, n: number): Promise<void> {
  const inc = makeIncident(id, { status: 'resolved', resolvedAt, resolution: 'quiet', lastSeen: resolvedAt - DAY, firstSeen: resolvedAt - 2 * DAY });
  const signals = Array.from({ length: n }, (_, i) => ({
    incidentId: id,
    signal: makeSignal(`${id}-${i}`, resolvedAt - DAY - i, { excerpt: { padding: 'x'.repeat(2000) } }),
  }));
  await store.upsert([inc], signals);
}

describe('retention settings', () => {
  it('default to 14d for signals and 90d for incidents, take m/h/d durations or 0, and name the variable when wrong', () => {
    expect(loadConfig({}).retention).toEqual({ signalsMs: 14 * DAY, incidentsMs: 90 * DAY });
    expect(loadConfig({ KUBEVIGIL_RETENTION_SIGNALS: '36h', KUBEVIGIL_RETENTION_INCIDENTS: '0' }).retention).toEqual({
      signalsMs: 36 * 3_600_000,
      incidentsMs: 0,
    });
    let err: unknown;
    try {
      loadConfig({ KUBEVIGIL_RETENTION_SIGNALS: '2 weeks', KUBEVIGIL_RETENTION_INCIDENTS: '10m' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      expect.stringMatching(/^KUBEVIGIL_RETENTION_SIGNALS \("2 weeks"\) must be a duration from 1h to 3650d such as 36h or 14d, or 0/),
      expect.stringMatching(/^KUBEVIGIL_RETENTION_INCIDENTS \("10m"\) must be a duration from 1h/),
    ]);
  });
});

for (const [name, make] of [
  ['MemoryStore', async () => new MemoryStore()],
  ['SqliteStore', async () => openSqliteStore(freshFile())],
] as const)
  describe(`the retention job (${name})`, () => {
    it('prunes on its clock: resolved incidents once past their retention, old signals sooner, open incidents never', async () => {
      const store = await make();
      let now = T0;
      const registry = new Registry();
      const job = new Retention({
        store,
        signalsMs: 14 * DAY,
        incidentsMs: 90 * DAY,
        clock: { now: () => now },
        logger: createLogger('silent'),
        registry,
        schedule: false,
      });
      await fill(store, 'inc-resolved', T0, 3);
      const open = makeIncident('inc-open', { status: 'open', firstSeen: T0 - 2 * DAY, lastSeen: T0 - DAY });
      await store.upsert([open], [{ incidentId: 'inc-open', signal: makeSignal('open-1', T0 - 2 * DAY) }]);

      now = T0 + 10 * DAY;
      expect(await job.prune()).toEqual({ incidents: 0, signals: 0 });
      // The signals happened a day before resolution: 14 days after them, they go; the incident stays.
      now = T0 + 14 * DAY;
      expect(await job.prune()).toEqual({ incidents: 0, signals: 3 });
      expect(await store.get('inc-resolved')).toBeDefined();
      now = T0 + 90 * DAY + 1;
      expect(await job.prune()).toEqual({ incidents: 1, signals: 0 });
      expect(await store.get('inc-resolved')).toBeUndefined();
      now = T0 + 1000 * DAY;
      expect(await job.prune()).toEqual({ incidents: 0, signals: 0 });
      expect(await store.get('inc-open')).toEqual(open);
      expect(await store.signals('inc-open', 10)).toHaveLength(1);
      expect(await metric(registry, 'kubevigil_store_pruned_total', { what: 'signals' })).toBe(3);
      expect(await metric(registry, 'kubevigil_store_pruned_total', { what: 'incidents' })).toBe(1);
      await job.stop();
      await store.close();
    });
  });

describe('the SQLite store on disk', () => {
  it('is created with incremental auto-vacuum, shrinks after a prune, and reports its size as kubevigil_store_bytes', async () => {
    const file = freshFile();
    const store = openSqliteStore(file);
    expect(pragma(file, 'auto_vacuum')).toBe(2);
    const registry = new Registry();
    const job = new Retention({
      store,
      signalsMs: 14 * DAY,
      incidentsMs: 90 * DAY,
      clock: { now: () => T0 + 100 * DAY },
      logger: createLogger('silent'),
      registry,
      schedule: false,
    });
    await fill(store, 'inc-big', T0, 2000);
    await fill(store, 'inc-kept', T0 + 99 * DAY, 10);
    const before = (await store.sizeBytes())!;
    expect(before).toBeGreaterThan(4_000_000);
    expect(await metric(registry, 'kubevigil_store_bytes')).toBe(before);
    expect(await job.prune()).toEqual({ incidents: 1, signals: 2000 });
    const after = (await store.sizeBytes())!;
    expect(after).toBeLessThan(before / 4);
    expect(await metric(registry, 'kubevigil_store_bytes')).toBe(after);
    expect(await store.signals('inc-kept', 100)).toHaveLength(10);
    await store.close();
  });

  it('rewrites a file made before auto-vacuum once a large prune freed a quarter of it, switching it to incremental', async () => {
    const file = freshFile();
    const legacy = new DatabaseSync(file);
    legacy.exec('PRAGMA auto_vacuum = NONE; CREATE TABLE legacy_marker (x INTEGER)');
    legacy.close();
    const store = openSqliteStore(file);
    expect(pragma(file, 'auto_vacuum')).toBe(0);
    await fill(store, 'inc-big', T0, 1000);
    const before = (await store.sizeBytes())!;
    expect(await store.prune({ incidentsResolvedBefore: T0 + DAY })).toEqual({ incidents: 1, signals: 1000 });
    expect((await store.sizeBytes())!).toBeLessThan(before / 4);
    await store.close();
    expect(pragma(file, 'auto_vacuum')).toBe(2);
  });
});
