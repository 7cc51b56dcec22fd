import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { KubevigilError } from '../../correlator/errors.js';
import { MemoryStore } from './memory.js';
import { SCHEMA_VERSION, openSqliteStore } from './sqlite.js';
import { T0, makeIncident, makeSignal, storeContract } from './store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'kubevigil-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const freshFile = (): string => join(dir, `store-${++files}.db`);

storeContract('MemoryStore', async () => new MemoryStore());
storeContract('SqliteStore (file)', async () => openSqliteStore(freshFile()));
storeContract('SqliteStore (:memory:)', async () => openSqliteStore(':memory:'));

function pragma(file: string, name: string): unknown {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0];
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  it('keeps incidents, signals and state across close and reopen (a restart)', async () => {
    const file = freshFile();
    const open = makeIncident('inc-open', { version: 5, lastSeen: T0 });
    const resolved = makeIncident('inc-resolved', { status: 'resolved', lastSeen: T0 - 60_000 });
    const sigs = [makeSignal('audit-2', T0), makeSignal('audit-1', T0 - 5000)];
    const before = openSqliteStore(file);
    await before.upsert(
      [open, resolved],
      sigs.map((signal) => ({ incidentId: 'inc-open', signal })),
    );
    await before.setState('notifier.slack.cursor', 'inc-open@5');
    const firstPage = await before.list({ limit: 1 });
    await before.close();

    const after = openSqliteStore(file);
    try {
      expect(await after.get('inc-open')).toEqual(open);
      expect(await after.get('inc-resolved')).toEqual(resolved);
      expect(await after.open()).toEqual([open]);
      expect(await after.signals('inc-open', 10)).toEqual([sigs[1], sigs[0]]);
      expect(await after.getState('notifier.slack.cursor')).toBe('inc-open@5');
      expect((await after.list({ limit: 10, namespace: 'billing' })).items.map((i) => i.id)).toEqual(['inc-open', 'inc-resolved']);
      // A cursor handed out before the restart still continues the same listing.
      expect((await after.list({ limit: 1, cursor: firstPage.nextCursor! })).items).toEqual([resolved]);
      await after.upsert([makeIncident('inc-open', { version: 4, title: 'stale' })]);
      expect((await after.get('inc-open'))?.title).toBe(open.title);
    } finally {
      await after.close();
    }
  });

  it('records the schema version in user_version, runs in WAL mode, and does not migrate twice', async () => {
    const file = freshFile();
    await openSqliteStore(file).close();
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
    expect(pragma(file, 'user_version')).toBe(SCHEMA_VERSION);
    expect(pragma(file, 'journal_mode')).toBe('wal');
    // Migration 1 creates tables without IF NOT EXISTS: a second run would throw here.
    await openSqliteStore(file).close();
    expect(pragma(file, 'user_version')).toBe(SCHEMA_VERSION);
  });

  it('refuses a database written by a newer schema', () => {
    const file = freshFile();
    const db = new DatabaseSync(file);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    let error: unknown;
    try {
      openSqliteStore(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KubevigilError);
    expect(error).toMatchObject({ code: 'STORE_SCHEMA_TOO_NEW', retryable: false });
    expect(pragma(file, 'user_version')).toBe(SCHEMA_VERSION + 1);
  });

  it('creates the parent directory of its file', async () => {
    const file = join(dir, 'nested', 'data', 'incidents.db');
    const store = openSqliteStore(file);
    await store.setState('k', 'v');
    await store.close();
    expect(pragma(file, 'user_version')).toBe(SCHEMA_VERSION);
  });
});
